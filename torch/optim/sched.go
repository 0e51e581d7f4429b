package optim

import (
	"fmt"
	"math"
	"sort"
	"strconv"
)

// Schedule gives the learning rate at epoch (scheduler step) e for a group
// whose initial learning rate is base. Schedules are closed forms of
// torch.optim.lr_scheduler's.
type Schedule func(base float64, e int) float64

// StepDecay is StepLR: base·gamma^⌊e/size⌋.
func StepDecay(size int, gamma float64) Schedule {
	return func(base float64, e int) float64 { return base * math.Pow(gamma, float64(e/max(size, 1))) }
}

// MultiStep is MultiStepLR: base·gamma^(number of milestones ≤ e).
func MultiStep(milestones []int, gamma float64) Schedule {
	ms := append([]int(nil), milestones...)
	sort.Ints(ms)
	return func(base float64, e int) float64 {
		n := sort.Search(len(ms), func(i int) bool { return ms[i] > e })
		return base * math.Pow(gamma, float64(n))
	}
}

// Exponential is ExponentialLR: base·gamma^e.
func Exponential(gamma float64) Schedule {
	return func(base float64, e int) float64 { return base * math.Pow(gamma, float64(e)) }
}

// Cosine is CosineAnnealingLR: etaMin + (base-etaMin)·(1+cos(π·e/tMax))/2.
func Cosine(tMax int, etaMin float64) Schedule {
	return func(base float64, e int) float64 {
		return etaMin + (base-etaMin)*(1+math.Cos(math.Pi*float64(e)/float64(tMax)))/2
	}
}

// Poly is PolynomialLR: base·(1 - min(e, total)/total)^power; the usual
// segmentation schedule has power 0.9.
func Poly(total int, power float64) Schedule {
	return func(base float64, e int) float64 {
		return base * math.Pow(1-float64(min(e, total))/float64(total), power)
	}
}

// LinearWarmup is LinearLR: the factor moves linearly from start to end over
// total steps, then stays at end.
func LinearWarmup(start, end float64, total int) Schedule {
	return func(base float64, e int) float64 {
		return base * (start + (end-start)*float64(min(e, total))/float64(total))
	}
}

// Warmup ramps linearly from start·base over steps steps and then follows
// then, counted from the end of the warm-up.
func Warmup(steps int, start float64, then Schedule) Schedule {
	return func(base float64, e int) float64 {
		if e < steps {
			return base * (start + (1-start)*float64(e)/float64(steps))
		}
		return then(base, e-steps)
	}
}

// Scheduler sets an optimizer's learning rates by a Schedule. Like a
// PyTorch scheduler, creating it applies epoch 0, and Step advances one
// epoch (or iteration, for per-iteration schedules such as Poly).
type Scheduler struct {
	opt   Optimizer
	base  []float64
	epoch int
	f     Schedule
}

// NewScheduler takes the groups' current learning rates as their bases.
func NewScheduler(opt Optimizer, f Schedule) *Scheduler {
	s := &Scheduler{opt: opt, f: f}
	for _, g := range opt.Groups() {
		s.base = append(s.base, g.LR)
	}
	s.apply()
	return s
}

func (s *Scheduler) apply() {
	for i, g := range s.opt.Groups() {
		g.LR = s.f(s.base[i], s.epoch)
	}
}

// Step advances one epoch and sets the learning rates.
func (s *Scheduler) Step() {
	s.epoch++
	s.apply()
}

// Epoch is the number of Steps taken (PyTorch's last_epoch).
func (s *Scheduler) Epoch() int { return s.epoch }

// LR returns the current learning rate of each group.
func (s *Scheduler) LR() []float64 {
	var out []float64
	for _, g := range s.opt.Groups() {
		out = append(out, g.LR)
	}
	return out
}

// StateDict returns "last_epoch" and "base_lr.<group>".
func (s *Scheduler) StateDict() map[string]float64 {
	m := map[string]float64{"last_epoch": float64(s.epoch)}
	for i, b := range s.base {
		m["base_lr."+strconv.Itoa(i)] = b
	}
	return m
}

// LoadStateDict restores a state and sets the learning rates.
func (s *Scheduler) LoadStateDict(m map[string]float64) error {
	e, ok := m["last_epoch"]
	if !ok || e < 0 || e != math.Trunc(e) {
		return fmt.Errorf("optim: scheduler state has no valid last_epoch")
	}
	base := make([]float64, len(s.base))
	for i := range base {
		b, ok := m["base_lr."+strconv.Itoa(i)]
		if !ok {
			return fmt.Errorf("optim: scheduler state has no base_lr.%d", i)
		}
		base[i] = b
	}
	s.epoch, s.base = int(e), base
	s.apply()
	return nil
}
