package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/jmedseg/jmedseg/augment"
	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/loss"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/report"
	"github.com/jmedseg/jmedseg/sas"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/torch/optim"
)

// Files a run directory holds.
const (
	LastFile = "last.safetensors" // full training state, for --resume
	BestFile = "best.safetensors" // model weights with the best validation Dice
)

// ErrNonFinite is returned (wrapped) when the loss becomes NaN or infinite.
var ErrNonFinite = errors.New("train: the loss is not finite")

// Event reports progress; Kind is "step", "epoch", "test" or "info".
type Event struct {
	Kind          string        `json:"event"`
	Epoch         int           `json:"epoch,omitempty"`
	Epochs        int           `json:"epochs,omitempty"`
	Step          int           `json:"step,omitempty"`
	Steps         int           `json:"steps,omitempty"`
	Loss          float64       `json:"loss,omitempty"`
	LR            float64       `json:"lr,omitempty"`
	ImagesPerSec  float64       `json:"images_per_second,omitempty"`
	ETA           time.Duration `json:"eta_ns,omitempty"`
	Record        *report.Epoch `json:"record,omitempty"`
	Best          bool          `json:"best,omitempty"`
	Split         string        `json:"split,omitempty"`
	ForegroundDSC *float64      `json:"foreground_dice,omitempty"` // test events
	Message       string        `json:"message,omitempty"`
}

// Trainer runs one training job.
type Trainer struct {
	opt     Options
	OnEvent func(Event) // progress; may be nil

	dev     torch.Device
	ds      *data.Dataset
	classes []string
	spec    models.Spec
	info    ModelInfo
	model   nn.Module
	optim   optim.Optimizer
	sched   *optim.Scheduler
	lossFn  loss.Loss
	train   *data.Loader
	val     []data.Sample
	history report.History
	best    float64
	bestEp  int
	step    int64
	startEp int
	skip    int // batches of startEp already done (resume after an interrupt)
	started time.Time
	spacing func(path string) [2]float64
}

func (t *Trainer) emit(e Event) {
	if t.OnEvent != nil {
		t.OnEvent(e)
	}
}

// New prepares a run: opens the data, builds the model, optimizer, schedule
// and loss, and restores the last state when resuming.
func New(opt Options) (*Trainer, error) {
	opt.defaults()
	if err := opt.validate(); err != nil {
		return nil, err
	}
	t := &Trainer{opt: opt, best: math.Inf(-1), started: time.Now()}
	if err := torch.CheckVersion(); err != nil {
		return nil, err
	}
	dev, err := torch.ParseDevice(opt.Device)
	if err != nil {
		return nil, err
	}
	t.dev = dev
	if opt.Threads > 0 {
		torch.SetNumThreads(opt.Threads)
	}
	torch.ManualSeed(opt.Seed)
	if t.lossFn, err = loss.Parse(opt.Loss); err != nil {
		return nil, err
	}
	var ok bool
	if t.spec, ok = models.Lookup(opt.Model); !ok {
		_, err := models.New(opt.Model, models.Config{})
		return nil, err
	}
	if t.ds, err = data.Open(opt.Data); err != nil {
		return nil, err
	}
	trainSamples, err := t.ds.Split(opt.TrainSplit)
	if err != nil {
		return nil, err
	}
	if t.val, err = t.ds.Split(opt.ValSplit); err != nil {
		return nil, err
	}
	if len(trainSamples) == 0 || len(t.val) == 0 {
		return nil, fmt.Errorf("train: %s: the %s and %s splits must not be empty", opt.Data, opt.TrainSplit, opt.ValSplit)
	}
	ncls := t.ds.NumClasses()
	if ncls < 2 {
		return nil, fmt.Errorf("train: %s: need at least 2 classes, dataset.json lists %d", opt.Data, ncls)
	}
	t.classes = make([]string, ncls)
	for i := range t.classes {
		t.classes[i] = fmt.Sprintf("class %d", i)
	}
	channels := 3
	var spacing []float64
	if m := t.ds.Manifest; m != nil {
		copy(t.classes, m.Classes)
		if m.Channels == 1 || m.Channels == 3 {
			channels = m.Channels
		}
		spacing = m.PixelSpacing
	}
	if opt.Net.InChannels != 0 {
		channels = int(opt.Net.InChannels)
	}
	size := opt.Size
	if size == [2]int{} {
		ex, err := data.LoadExample(trainSamples[0], false, ncls)
		if err != nil {
			return nil, err
		}
		b := ex.Image.Bounds()
		size = [2]int{b.Dy(), b.Dx()}
	}
	if err := t.spec.CheckSize(int64(size[0]), int64(size[1])); err != nil {
		return nil, fmt.Errorf("train: %w (choose --size)", err)
	}
	cfg := opt.Net
	cfg.InChannels, cfg.Classes = int64(channels), int64(ncls)
	cfg = t.spec.Resolve(cfg)
	t.info = ModelInfo{Model: t.spec.Name, Config: cfg, Classes: t.classes, Size: size, Spacing: spacing, STN: opt.STN}
	t.spacing = spacingOf(t.ds, size)

	if t.model, err = models.New(opt.Model, cfg); err != nil {
		return nil, err
	}
	if opt.Pretrained != "" {
		// Into the bare network: pretrained weights have its layout.
		_, rep, err := ckpt.Load(opt.Pretrained, t.model, false)
		if err != nil {
			t.Close()
			return nil, err
		}
		if rep != nil && !rep.OK() {
			t.emit(Event{Kind: "info", Message: fmt.Sprintf("pretrained %s: %s", opt.Pretrained, rep)})
		}
	}
	if opt.STN {
		w := sas.NewWithSTN(cfg.InChannels, t.model)
		if err := w.Err(); err != nil {
			w.Free()
			t.model = nil
			return nil, err
		}
		t.model = w
	}
	if err := t.model.To(dev); err != nil {
		t.Close()
		return nil, err
	}
	var tf data.Transform
	var chain augment.Pipeline
	if size != [2]int{} {
		chain = append(chain, augment.Resize{Width: size[1], Height: size[0]})
	}
	if opt.Geometric {
		var pairs [][2]int
		if m := t.ds.Manifest; m != nil {
			pairs = m.FlipPairs
		}
		chain = append(chain, augment.Geometric(pairs)...)
	}
	if opt.Aug {
		chain = append(chain, augment.SASSupervised()...)
	}
	if len(chain) > 0 {
		tf = chain
	}
	t.train, err = data.NewLoader(trainSamples, data.LoaderOptions{BatchSize: opt.Batch, Workers: opt.Workers, Shuffle: true,
		Seed: opt.Seed, Transform: tf, Channels: channels, Classes: ncls, DropLast: len(trainSamples) > opt.Batch, SkipBad: opt.SkipBad})
	if err != nil {
		t.Close()
		return nil, err
	}
	if err := t.buildOptimizer(); err != nil { // after the loader: poly needs the steps per epoch
		t.Close()
		return nil, err
	}
	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		t.Close()
		return nil, fmt.Errorf("train: %w", err)
	}
	if opt.Resume {
		if err := t.restore(); err != nil {
			t.Close()
			return nil, err
		}
	}
	return t, nil
}

func (t *Trainer) stepsPerEpoch() int {
	n := t.train.Len()
	if t.opt.LimitBatches > 0 && t.opt.LimitBatches < n {
		n = t.opt.LimitBatches
	}
	return n
}

func (t *Trainer) buildOptimizer() error {
	groups := []optim.Group{optim.Params(t.model.Parameters())}
	var err error
	switch t.opt.Optimizer {
	case "sgd":
		t.optim, err = optim.NewSGD(optim.SGDConfig{LR: t.opt.LR, Momentum: t.opt.Momentum, WeightDecay: t.opt.Decay}, groups...)
	case "adamw":
		t.optim, err = optim.NewAdamW(optim.AdamConfig{LR: t.opt.LR, WeightDecay: t.opt.Decay}, groups...)
	default:
		t.optim, err = optim.NewAdam(optim.AdamConfig{LR: t.opt.LR, WeightDecay: t.opt.Decay}, groups...)
	}
	if err != nil {
		return err
	}
	sched := optim.Schedule(func(base float64, _ int) float64 { return base })
	if t.opt.Poly {
		sched = optim.Poly(t.opt.Epochs*t.stepsPerEpoch(), 0.9)
	}
	t.sched = optim.NewScheduler(t.optim, sched)
	return nil
}

// Close frees the model and optimizer.
func (t *Trainer) Close() {
	if t.optim != nil {
		t.optim.Free()
		t.optim = nil
	}
	if t.model != nil {
		t.model.Free()
		t.model = nil
	}
}

// Model returns the model being trained.
func (t *Trainer) Model() nn.Module { return t.model }

// Info returns what a checkpoint of this run records.
func (t *Trainer) Info() ModelInfo { return t.info }

func (t *Trainer) saveLast(epoch, batchInEpoch int) error {
	h, _ := json.Marshal(t.history)
	o, _ := json.Marshal(t.opt)
	meta := t.info.meta()
	meta[metaHistory] = string(h)
	meta[metaOptions] = string(o)
	meta[metaBest] = strconv.FormatFloat(t.best, 'g', -1, 64) + "@" + strconv.Itoa(t.bestEp)
	meta[metaBatchPos] = strconv.Itoa(batchInEpoch)
	return ckpt.SaveTraining(filepath.Join(t.opt.Out, LastFile), &ckpt.Training{Model: t.model, Optimizer: t.optim, Scheduler: t.sched,
		Epoch: int64(epoch), Step: t.step, Meta: meta})
}

func (t *Trainer) restore() error {
	path := filepath.Join(t.opt.Out, LastFile)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("train: --resume: %s: %w", path, err)
	}
	md, err := ckpt.ReadMetadata(path)
	if err != nil {
		return err
	}
	if md[metaModel] != t.info.Model || md[metaConfig] != t.info.meta()[metaConfig] {
		return fmt.Errorf("train: --resume: %s holds %s %s, this run builds %s %s", path, md[metaModel], md[metaConfig], t.info.Model, t.info.meta()[metaConfig])
	}
	tr := &ckpt.Training{Model: t.model, Optimizer: t.optim, Scheduler: t.sched}
	if err := ckpt.LoadTraining(path, tr); err != nil {
		return err
	}
	t.startEp, t.step = int(tr.Epoch), tr.Step
	t.skip, _ = strconv.Atoi(md[metaBatchPos])
	if err := json.Unmarshal([]byte(md[metaHistory]), &t.history); err != nil {
		return fmt.Errorf("train: --resume: %s: bad history: %v", path, err)
	}
	if b, ep, ok := cutFloat(md[metaBest]); ok {
		t.best, t.bestEp = b, ep
	}
	t.emit(Event{Kind: "info", Message: fmt.Sprintf("resumed from %s at epoch %d, batch %d", path, t.startEp+1, t.skip)})
	return nil
}

func cutFloat(s string) (float64, int, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '@' {
			f, err1 := strconv.ParseFloat(s[:i], 64)
			n, err2 := strconv.Atoi(s[i+1:])
			return f, n, err1 == nil && err2 == nil
		}
	}
	return 0, 0, false
}

// batchTensors moves a collated batch onto the device inside scope s.
func (t *Trainer) batchTensors(b *data.Batch, s *torch.Scope) (x, y *torch.Tensor) {
	x = torch.FromSlice(b.Image.Data, shape64(b.Image.Shape), s).ToDevice(t.dev)
	if b.Mask != nil {
		y = torch.FromSlice(b.Mask.Data, shape64(b.Mask.Shape), s).ToDevice(t.dev)
	}
	return x, y
}

func shape64(s []int) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = int64(v)
	}
	return out
}

// Fit trains for the remaining epochs. Cancelling ctx (Ctrl-C) stops after
// the current step and saves the state so that --resume continues exactly.
// A NaN or infinite loss stops training with ErrNonFinite; the checkpoints
// of the last good epoch are kept.
func (t *Trainer) Fit(ctx context.Context) error {
	// One OS thread for every libtorch call of the run: glibc gives each
	// thread its own malloc arena, and a goroutine hopping between threads
	// spreads the step's tensors over several, raising peak memory.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	steps := t.stepsPerEpoch()
	for epoch := t.startEp; epoch < t.opt.Epochs; epoch++ {
		t.model.Train(true)
		start := time.Now()
		var sum float64
		var n, images int
		done := 0
		for b, err := range t.train.Epoch(ctx, epoch) {
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				return fmt.Errorf("train: epoch %d: %w", epoch+1, err)
			}
			if done >= steps {
				break
			}
			for _, bad := range b.Skipped {
				t.emit(Event{Kind: "info", Message: "skipped: " + bad.Error()})
			}
			if epoch == t.startEp && done < t.skip {
				done++ // already trained before the interruption
				continue
			}
			l, err := t.trainStep(b)
			if err != nil {
				return fmt.Errorf("train: epoch %d, batch %d: %w", epoch+1, done+1, err)
			}
			if math.IsNaN(l) || math.IsInf(l, 0) {
				kept := "no epoch had finished, so nothing was saved"
				if _, err := os.Stat(filepath.Join(t.opt.Out, LastFile)); err == nil {
					kept = "the last good state stays in " + filepath.Join(t.opt.Out, LastFile)
				}
				return fmt.Errorf("%w at epoch %d, batch %d (%v, lr %g): training stopped before the weights were touched; %s",
					ErrNonFinite, epoch+1, done+1, l, t.optim.Groups()[0].LR, kept)
			}
			sum += l
			n++
			done++
			images += len(b.Names)
			el := time.Since(start).Seconds()
			ips := float64(images) / el
			left := time.Duration(float64(steps-done)*el/float64(max(n, 1))*1e9) + time.Duration(float64((t.opt.Epochs-epoch-1)*steps)*el/float64(max(n, 1))*1e9)
			t.emit(Event{Kind: "step", Epoch: epoch + 1, Epochs: t.opt.Epochs, Step: done, Steps: steps, Loss: l, LR: t.optim.Groups()[0].LR, ImagesPerSec: ips, ETA: left})
			if ctx.Err() != nil {
				break
			}
		}
		if ctx.Err() != nil {
			if err := t.saveLast(epoch, done); err != nil {
				return fmt.Errorf("train: interrupted, and saving the state failed: %w", err)
			}
			t.skip = 0
			return fmt.Errorf("train: interrupted at epoch %d, batch %d; state saved to %s (continue with --resume): %w",
				epoch+1, done, filepath.Join(t.opt.Out, LastFile), ctx.Err())
		}
		t.skip = 0
		rec := report.Epoch{Epoch: epoch + 1, TrainLoss: sum / float64(max(n, 1)), LR: t.optim.Groups()[0].LR}
		if n > 0 {
			rec.ImagesPerSecond = float64(images) / time.Since(start).Seconds()
		}
		ev, err := t.Evaluate(ctx, t.val, nil)
		if err != nil {
			return fmt.Errorf("train: validating epoch %d: %w", epoch+1, err)
		}
		rec.ValLoss = ev.Loss
		rec.ValDice = float64(ev.Metrics.Split.Foreground.Dice)
		rec.ValIoU = float64(ev.Metrics.Split.Foreground.IoU)
		rec.Seconds = time.Since(start).Seconds()
		t.history = append(t.history, rec)
		best := rec.ValDice > t.best || (math.IsNaN(t.best) || math.IsInf(t.best, -1))
		if best {
			t.best, t.bestEp = rec.ValDice, epoch+1
			t.info.Epoch, t.info.ValDice = epoch+1, rec.ValDice
			if err := SaveModel(filepath.Join(t.opt.Out, BestFile), t.model, t.info); err != nil {
				return err
			}
		}
		if err := t.saveLast(epoch+1, 0); err != nil {
			return err
		}
		t.emit(Event{Kind: "epoch", Epoch: epoch + 1, Epochs: t.opt.Epochs, Record: &rec, Best: best})
	}
	return nil
}

// trainStep runs one optimisation step and returns the loss.
func (t *Trainer) trainStep(b *data.Batch) (float64, error) {
	s := torch.NewScope()
	defer s.Close()
	x, y := t.batchTensors(b, s)
	l := t.lossFn.Forward(t.model.Forward(x), y)
	v, err := l.Item()
	if err != nil {
		return 0, err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v, nil // the caller stops before the weights are touched
	}
	if err := l.Backward(); err != nil {
		return 0, err
	}
	if err := t.optim.Step(); err != nil {
		return 0, err
	}
	if err := t.optim.ZeroGrad(); err != nil {
		return 0, err
	}
	t.sched.Step()
	t.step++
	return v, nil
}

// History returns the per-epoch records so far.
func (t *Trainer) History() report.History { return t.history }

// BestEpoch is the epoch whose weights are in best.safetensors (1-based).
func (t *Trainer) BestEpoch() int { return t.bestEp }
