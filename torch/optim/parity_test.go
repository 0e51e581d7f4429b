package optim_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/oracle/py"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/optim"
)

type ocase struct {
	name      string
	groups    []pgroup
	opt       string // Python constructor over groups
	sched     string // Python scheduler over opt, or ""
	clipNorm  float64
	normType  float64
	clipValue float64
	build     func(gs []optim.Group) (optim.Optimizer, error)
	schedule  optim.Schedule
}

type pgroup struct {
	idx   []int
	extra map[string]float64 // Python per-group settings
	g     optim.Group        // Go per-group settings (Params filled in)
}

var shapes = [][]int64{{4, 3}, {5}, {2, 2, 2}}

func all() []pgroup { return []pgroup{{idx: []int{0, 1, 2}}} }

func two() []pgroup {
	return []pgroup{
		{idx: []int{0, 2}},
		{idx: []int{1}, extra: map[string]float64{"lr": 0.003, "weight_decay": 0.05}, g: optim.Group{LR: 0.003, WeightDecay: optim.Float(0.05)}},
	}
}

func sgd(cfg optim.SGDConfig) func([]optim.Group) (optim.Optimizer, error) {
	return func(gs []optim.Group) (optim.Optimizer, error) { return optim.NewSGD(cfg, gs...) }
}

func adam(cfg optim.AdamConfig) func([]optim.Group) (optim.Optimizer, error) {
	return func(gs []optim.Group) (optim.Optimizer, error) { return optim.NewAdam(cfg, gs...) }
}

func adamw(cfg optim.AdamConfig) func([]optim.Group) (optim.Optimizer, error) {
	return func(gs []optim.Group) (optim.Optimizer, error) { return optim.NewAdamW(cfg, gs...) }
}

func rmsprop(cfg optim.RMSpropConfig) func([]optim.Group) (optim.Optimizer, error) {
	return func(gs []optim.Group) (optim.Optimizer, error) { return optim.NewRMSprop(cfg, gs...) }
}

func optCases() []ocase {
	return []ocase{
		{name: "sgd", groups: all(), opt: "torch.optim.SGD(groups, lr=0.1)", build: sgd(optim.SGDConfig{LR: 0.1})},
		{name: "sgd_momentum_wd", groups: all(), opt: "torch.optim.SGD(groups, lr=0.05, momentum=0.9, weight_decay=1e-2, dampening=0.1)", build: sgd(optim.SGDConfig{LR: 0.05, Momentum: 0.9, WeightDecay: 1e-2, Dampening: 0.1})},
		{name: "sgd_nesterov_groups", groups: two(), opt: "torch.optim.SGD(groups, lr=0.05, momentum=0.9, nesterov=True)", build: sgd(optim.SGDConfig{LR: 0.05, Momentum: 0.9, Nesterov: true})},
		{name: "adam", groups: all(), opt: "torch.optim.Adam(groups, lr=0.01)", build: adam(optim.AdamConfig{LR: 0.01})},
		{name: "adam_amsgrad_wd", groups: all(), opt: "torch.optim.Adam(groups, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True)", build: adam(optim.AdamConfig{LR: 0.01, Betas: [2]float64{0.8, 0.99}, Eps: 1e-6, WeightDecay: 0.1, AMSGrad: true})},
		{name: "adam_groups", groups: two(), opt: "torch.optim.Adam(groups, lr=0.01)", build: adam(optim.AdamConfig{LR: 0.01})},
		{name: "adamw", groups: all(), opt: "torch.optim.AdamW(groups, lr=0.01, weight_decay=0.05)", build: adamw(optim.AdamConfig{LR: 0.01, WeightDecay: 0.05})},
		{name: "adamw_amsgrad", groups: two(), opt: "torch.optim.AdamW(groups, lr=0.02, weight_decay=0.01, amsgrad=True)", build: adamw(optim.AdamConfig{LR: 0.02, WeightDecay: 0.01, AMSGrad: true})},
		{name: "rmsprop", groups: all(), opt: "torch.optim.RMSprop(groups, lr=0.01)", build: rmsprop(optim.RMSpropConfig{LR: 0.01})},
		{name: "rmsprop_centered_momentum", groups: two(), opt: "torch.optim.RMSprop(groups, lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.01, momentum=0.5, centered=True)", build: rmsprop(optim.RMSpropConfig{LR: 0.01, Alpha: 0.9, Eps: 1e-6, WeightDecay: 0.01, Momentum: 0.5, Centered: true})},
		{name: "clip_norm", groups: all(), opt: "torch.optim.SGD(groups, lr=0.1, momentum=0.9)", clipNorm: 0.5, normType: 2, build: sgd(optim.SGDConfig{LR: 0.1, Momentum: 0.9})},
		{name: "clip_norm_inf", groups: all(), opt: "torch.optim.SGD(groups, lr=0.1)", clipNorm: 0.3, normType: math.Inf(1), build: sgd(optim.SGDConfig{LR: 0.1})},
		{name: "clip_value", groups: all(), opt: "torch.optim.Adam(groups, lr=0.01)", clipValue: 0.2, build: adam(optim.AdamConfig{LR: 0.01})},
		{name: "step_lr", groups: two(), opt: "torch.optim.SGD(groups, lr=0.1)", sched: "torch.optim.lr_scheduler.StepLR(opt, 3, 0.5)", schedule: optim.StepDecay(3, 0.5), build: sgd(optim.SGDConfig{LR: 0.1})},
		{name: "multistep_lr", groups: all(), opt: "torch.optim.SGD(groups, lr=0.1)", sched: "torch.optim.lr_scheduler.MultiStepLR(opt, [2, 5, 6], 0.3)", schedule: optim.MultiStep([]int{2, 5, 6}, 0.3), build: sgd(optim.SGDConfig{LR: 0.1})},
		{name: "exponential_lr", groups: all(), opt: "torch.optim.Adam(groups, lr=0.01)", sched: "torch.optim.lr_scheduler.ExponentialLR(opt, 0.8)", schedule: optim.Exponential(0.8), build: adam(optim.AdamConfig{LR: 0.01})},
		{name: "cosine_lr", groups: two(), opt: "torch.optim.Adam(groups, lr=0.01)", sched: "torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10, 1e-4)", schedule: optim.Cosine(10, 1e-4), build: adam(optim.AdamConfig{LR: 0.01})},
		{name: "poly_lr", groups: all(), opt: "torch.optim.SGD(groups, lr=0.1, momentum=0.9)", sched: "torch.optim.lr_scheduler.PolynomialLR(opt, 10, 0.9)", schedule: optim.Poly(10, 0.9), build: sgd(optim.SGDConfig{LR: 0.1, Momentum: 0.9})},
		{name: "sgd_momentum_wd_foreach", groups: all(), opt: "torch.optim.SGD(groups, lr=0.05, momentum=0.9, weight_decay=1e-2, dampening=0.1, foreach=True)", build: sgd(optim.SGDConfig{LR: 0.05, Momentum: 0.9, WeightDecay: 1e-2, Dampening: 0.1, Impl: optim.ImplForeach})},
		{name: "sgd_nesterov_groups_foreach", groups: two(), opt: "torch.optim.SGD(groups, lr=0.05, momentum=0.9, nesterov=True, foreach=True)", build: sgd(optim.SGDConfig{LR: 0.05, Momentum: 0.9, Nesterov: true, Impl: optim.ImplForeach})},
		{name: "adam_foreach", groups: all(), opt: "torch.optim.Adam(groups, lr=0.01, foreach=True)", build: adam(optim.AdamConfig{LR: 0.01, Impl: optim.ImplForeach})},
		{name: "adam_amsgrad_wd_foreach", groups: all(), opt: "torch.optim.Adam(groups, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True, foreach=True)", build: adam(optim.AdamConfig{LR: 0.01, Betas: [2]float64{0.8, 0.99}, Eps: 1e-6, WeightDecay: 0.1, AMSGrad: true, Impl: optim.ImplForeach})},
		{name: "adamw_amsgrad_foreach", groups: two(), opt: "torch.optim.AdamW(groups, lr=0.02, weight_decay=0.01, amsgrad=True, foreach=True)", build: adamw(optim.AdamConfig{LR: 0.02, WeightDecay: 0.01, AMSGrad: true, Impl: optim.ImplForeach})},
		{name: "linear_warmup", groups: all(), opt: "torch.optim.AdamW(groups, lr=0.01)", sched: "torch.optim.lr_scheduler.LinearLR(opt, 0.1, 1.0, 4)", schedule: optim.LinearWarmup(0.1, 1, 4), build: adamw(optim.AdamConfig{LR: 0.01, WeightDecay: 0.01})},
	}
}

type arr struct {
	Shape []int64   `json:"shape"`
	Data  []float64 `json:"data"`
}

func randArr(rng *rand.Rand, shape []int64) arr {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	a := arr{Shape: shape, Data: make([]float64, n)}
	for i := range a.Data {
		a.Data[i] = float64(float32(rng.NormFloat64()))
	}
	return a
}

const steps = 10

// train runs the same loop as the oracle and returns the final parameters
// and the learning rates after each step.
func train(t *testing.T, c ocase, params, coef []arr) ([][]float64, [][]float64) {
	ps := make([]*torch.Tensor, len(params))
	cs := make([]*torch.Tensor, len(coef))
	for i := range params {
		ps[i] = torch.FromSlice(toF32(params[i].Data), params[i].Shape, torch.RequiresGrad)
		cs[i] = torch.FromSlice(toF32(coef[i].Data), coef[i].Shape)
	}
	defer func() {
		for i := range ps {
			ps[i].Free()
			cs[i].Free()
		}
	}()
	var gs []optim.Group
	for _, g := range c.groups {
		gg := g.g
		for _, i := range g.idx {
			gg.Params = append(gg.Params, ps[i])
		}
		gs = append(gs, gg)
	}
	opt, err := c.build(gs)
	require.NoError(t, err)
	defer opt.Free()
	var sched *optim.Scheduler
	if c.schedule != nil {
		sched = optim.NewScheduler(opt, c.schedule)
	}
	var lrs [][]float64
	for step := 0; step < steps; step++ {
		require.NoError(t, opt.ZeroGrad())
		require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
			var loss *torch.Tensor
			for i, p := range ps {
				term := s.Track(p.Sin()).Mul(cs[i]).Sum().Add(s.Track(p.Mul(p)).Sum().MulScalar(0.1))
				if loss == nil {
					loss = term
				} else {
					loss = loss.Add(term)
				}
			}
			return loss.Backward()
		}))
		if c.clipNorm > 0 {
			_, err := optim.ClipGradNorm(ps, c.clipNorm, c.normType)
			require.NoError(t, err)
		}
		if c.clipValue > 0 {
			require.NoError(t, optim.ClipGradValue(ps, c.clipValue))
		}
		require.NoError(t, opt.Step())
		if sched != nil {
			sched.Step()
		}
		var lr []float64
		for _, g := range opt.Groups() {
			lr = append(lr, g.LR)
		}
		lrs = append(lrs, lr)
	}
	out := make([][]float64, len(ps))
	for i, p := range ps {
		out[i], err = p.Float64s()
		require.NoError(t, err)
	}
	return out, lrs
}

func toF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// optTol bounds |go-torch| / (1+|torch|) after ten steps: float32 round-off.
const optTol = 1e-6

func TestOptimizersMatchPyTorch(t *testing.T) {
	py.Python(t) // skip (or fail on CI) before generating anything
	rng := rand.New(rand.NewSource(5))
	var params, coef []arr
	for _, s := range shapes {
		params = append(params, randArr(rng, s))
		coef = append(coef, randArr(rng, s))
	}
	type pyGroup struct {
		Idx   []int              `json:"idx"`
		Extra map[string]float64 `json:"extra,omitempty"`
	}
	type pyCase struct {
		Name      string    `json:"name"`
		Groups    []pyGroup `json:"groups"`
		Opt       string    `json:"opt"`
		Sched     string    `json:"sched,omitempty"`
		ClipNorm  float64   `json:"clip_norm,omitempty"`
		NormType  any       `json:"norm_type,omitempty"`
		ClipValue float64   `json:"clip_value,omitempty"`
	}
	cases := optCases()
	var pcs []pyCase
	for _, c := range cases {
		pc := pyCase{Name: c.name, Opt: c.opt, Sched: c.sched, ClipNorm: c.clipNorm, ClipValue: c.clipValue}
		if c.clipNorm > 0 {
			pc.NormType = c.normType
			if math.IsInf(c.normType, 1) {
				pc.NormType = json.RawMessage("1e400") // json has no infinity; Python parses it as inf
			}
		}
		for _, g := range c.groups {
			pc.Groups = append(pc.Groups, pyGroup{Idx: g.idx, Extra: g.extra})
		}
		pcs = append(pcs, pc)
	}
	dir := t.TempDir()
	b, err := json.Marshal(map[string]any{"params": params, "coef": coef, "cases": pcs, "steps": steps})
	require.NoError(t, err)
	in, out := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	require.NoError(t, os.WriteFile(in, b, 0o644))
	py.Run(t, "optim_oracle.py", in, out, fmt.Sprint(torch.NumThreads()))
	b, err = os.ReadFile(out)
	require.NoError(t, err)
	var want map[string]struct {
		Params [][]float64 `json:"params"`
		LRs    [][]float64 `json:"lrs"`
	}
	require.NoError(t, json.Unmarshal(b, &want))
	worstAll := 0.0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, ok := want[c.name]
			require.True(t, ok)
			got, lrs := train(t, c, params, coef)
			for i := range got {
				for j := range got[i] {
					d := math.Abs(got[i][j]-w.Params[i][j]) / (1 + math.Abs(w.Params[i][j]))
					worstAll = math.Max(worstAll, d)
					require.LessOrEqual(t, d, optTol, "param %d element %d: want %v got %v", i, j, w.Params[i][j], got[i][j])
				}
				// the parameters moved
				require.NotEqual(t, params[i].Data[0], got[i][0])
			}
			for s := range lrs {
				for g := range lrs[s] {
					require.InEpsilon(t, w.LRs[s][g]+1e-300, lrs[s][g]+1e-300, 1e-12, "lr of group %d after step %d", g, s+1)
				}
			}
		})
	}
	t.Logf("largest relative difference from torch.optim after %d steps: %.3g", steps, worstAll)
}
