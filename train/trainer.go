package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/jmedseg/jmedseg/augment"
	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/loss"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/report"
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

// Event reports progress; Kind is "step", "epoch", "test_images" (Step of
// Steps images of a test split scored), "test" or "info".
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

// Trainer runs one training run from Options: a Job (see Fit) built from
// a data set directory, names and flags, with checkpoints in a run
// directory, exact resumption and the report on top.
type Trainer struct {
	opt     Options
	OnEvent func(Event) // progress; may be nil

	dev       torch.Device
	ds        *data.Dataset
	classes   []string
	spec      models.Spec
	info      models.Info
	model     nn.Module
	optim     optim.Optimizer
	sched     *optim.Scheduler
	lossFn    loss.Loss
	train     *data.Loader
	shard     *shardLoader // distributed: this rank's share of train's batches
	val       []data.Sample
	valLoader *data.Loader
	prog      Progress // where the run stands (restored when resuming)
	started   time.Time
	spacing   func(path string) [2]float64
	pending   []Event // emitted before OnEvent was set
	void      int     // a label outside the classes the loss ignores (0: none)
}

// checkRunDir refuses a run directory that holds a trained model (a best or
// last checkpoint) unless the run resumes it or Force replaces it.
func checkRunDir(opt Options) error {
	if opt.Resume || opt.Force {
		return nil
	}
	for _, f := range []string{BestFile, LastFile} {
		p := filepath.Join(opt.Out, f)
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("train: --out %s already holds a trained model (%s): continue it with --resume, replace it with --force, or choose another --out", opt.Out, p)
		}
	}
	return nil
}

// checkWritable makes sure checkpoints can be written into dir before any
// epoch is spent.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".jmedseg-write-check-*")
	if err != nil {
		return fmt.Errorf("train: --out %s is not writable (checkpoints go there after every epoch): %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// emit reports an event; those of New, before OnEvent can be set, wait
// for the first Fit.
func (t *Trainer) emit(e Event) {
	if t.OnEvent == nil {
		t.pending = append(t.pending, e)
		return
	}
	for _, p := range t.pending {
		t.OnEvent(p)
	}
	t.pending = nil
	t.OnEvent(e)
}

// New prepares a run: opens the data, builds the model, optimizer, schedule
// and loss, and restores the last state when resuming.
func New(opt Options) (*Trainer, error) {
	opt.defaults()
	if err := opt.validate(); err != nil {
		return nil, err
	}
	if err := checkRunDir(opt); err != nil {
		return nil, err
	}
	t := &Trainer{opt: opt, started: time.Now()}
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
		return nil, fmt.Errorf("train: --loss: %w", err)
	}
	var ok bool
	if t.spec, ok = models.Lookup(opt.Model); !ok {
		_, err := models.New(opt.Model, models.Config{})
		return nil, err
	}
	if t.ds, err = data.OpenWith(opt.Data, data.OpenOptions{Fold: opt.Fold, Folds: opt.Folds}); err != nil {
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
	if c := int(opt.Net.Classes); c > 0 {
		if ncls > 0 && ncls != c {
			return nil, fmt.Errorf("train: --classes %d, but %s/%s lists %d classes", c, opt.Data, data.ManifestFile, ncls)
		}
		ncls = c
	}
	switch {
	case ncls == 0 && t.ds.Manifest == nil:
		return nil, fmt.Errorf("train: %s has no %s naming its classes (%s layout): give their number, background included, with --classes N",
			opt.Data, data.ManifestFile, t.ds.Layout)
	case ncls < 2:
		return nil, fmt.Errorf("train: %s: need at least 2 classes, %s lists %d", opt.Data, data.ManifestFile, ncls)
	}
	void, err := loss.CheckClasses(t.lossFn, ncls)
	if err != nil {
		return nil, fmt.Errorf("train: --loss %s: %w (%s has %d classes)", opt.Loss, err, opt.Data, ncls)
	}
	if void != loss.NoIgnore {
		t.void = int(void)
	}
	t.classes = make([]string, ncls)
	for i := range t.classes {
		t.classes[i] = fmt.Sprintf("class %d", i)
	}
	channels := 3
	var spacing []float64
	if m := t.ds.Manifest; m != nil {
		copy(t.classes, m.Classes)
		if m.Channels > 0 { // nnU-Net's channel_names: 2 or 4 files make Planes
			channels = m.Channels
		}
		spacing = m.PixelSpacing
	}
	if opt.Net.InChannels != 0 {
		channels = int(opt.Net.InChannels)
	}
	size := opt.Size
	if size == [2]int{} {
		ex, err := data.LoadExample(trainSamples[0], true, 0) // its size only
		if err != nil {
			return nil, err
		}
		b := ex.Image.Bounds()
		size = [2]int{b.Dy(), b.Dx()}
	}
	if err := t.spec.CheckSize(int64(size[0]), int64(size[1])); err != nil {
		return nil, fmt.Errorf("train: %w (choose --size)", err)
	}
	if int64(opt.Batch) < t.spec.MinTrainBatch {
		return nil, fmt.Errorf("train: --batch %d: %s batch-normalises a 1×1 pooled map, which takes at least %d images a step (PyTorch refuses one too)", opt.Batch, t.spec.Name, t.spec.MinTrainBatch)
	}
	cfg := opt.Net
	cfg.InChannels, cfg.Classes = int64(channels), int64(ncls)
	cfg = t.spec.Resolve(cfg)
	norm := models.DefaultNormalization()
	if opt.Normalize != nil {
		norm = *opt.Normalize
		norm.Scale = models.ScaleUnit
	}
	if err := norm.Check(cfg.InChannels); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	t.info = models.Info{Model: t.spec.Name, Config: cfg, Classes: t.classes, Size: size, Spacing: spacing, STN: opt.STN, Norm: norm}
	t.spacing = spacingOf(t.ds, size)

	if t.model, err = models.New(opt.Model, cfg); err != nil {
		return nil, err
	}
	if opt.STN {
		w := models.NewWithSTN(cfg.InChannels, t.model)
		if err := w.Err(); err != nil {
			w.Free()
			t.model = nil
			return nil, err
		}
		t.model = w
	}
	if opt.Pretrained != "" {
		if err := t.loadPretrained(); err != nil {
			t.Close()
			return nil, err
		}
	}
	if err := t.model.To(dev); err != nil {
		t.Close()
		return nil, err
	}
	if opt.SyncBN && t.world() > 1 {
		n := syncBN(t.model, opt.Group)
		t.emit(Event{Kind: "info", Message: fmt.Sprintf("--sync-bn: %d BatchNorm layers normalise with the statistics of all %d ranks", n, t.world())})
	}
	var tf data.Transform
	var chain augment.Pipeline
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
	if chain = inputTransform(t.info, chain); len(chain) > 0 {
		tf = chain
	}
	lopt := data.LoaderOptions{BatchSize: opt.Batch, Workers: opt.Workers, Shuffle: true,
		Seed: opt.Seed, Transform: tf, Channels: channels, Classes: ncls, Ignore: t.void, DropLast: len(trainSamples) > opt.Batch, SkipBad: opt.SkipBad}
	if t.world() > 1 {
		if t.shard, err = newShardLoader(trainSamples, lopt, opt.Group.Rank(), t.world()); err == nil {
			t.train = t.shard.global
		}
	} else {
		t.train, err = data.NewLoader(trainSamples, lopt)
	}
	if err != nil {
		t.Close()
		return nil, err
	}
	if t.valLoader, err = t.evalSetup(t.model).loader(t.val); err != nil {
		t.Close()
		return nil, err
	}
	if err := t.buildOptimizer(); err != nil { // after the loader: poly needs the steps per epoch
		t.Close()
		return nil, err
	}
	if err := t.useAMP(); err != nil {
		t.Close()
		return nil, err
	}
	if t.rank0() { // the only rank that writes
		if err := os.MkdirAll(opt.Out, 0o755); err != nil {
			t.Close()
			return nil, fmt.Errorf("train: --out: %w", err)
		}
		if err := checkWritable(opt.Out); err != nil {
			t.Close()
			return nil, err
		}
	}
	if opt.Resume {
		if err := t.restore(); err != nil {
			t.Close()
			return nil, err
		}
	}
	if t.world() > 1 {
		// Every rank built and seeded the same model (and restored the same
		// checkpoint); rank 0's state is copied anyway, as DDP does.
		if err := broadcastState(opt.Group, t.model.StateDict()); err != nil {
			t.Close()
			return nil, fmt.Errorf("train: %w", distErr(opt.Group, "broadcasting rank 0's weights", err))
		}
	}
	return t, nil
}

// loadPretrained initialises the model (the network, and the spatial
// transformer when both have one) from --pretrained, after checking that
// the file describes the model this run builds.
func (t *Trainer) loadPretrained() error {
	path := t.opt.Pretrained
	if have, err := models.ReadInfo(path); err == nil { // a jmedseg file; otherwise a plain state dict
		if d := models.Mismatch(have, t.info); d != "" {
			return fmt.Errorf("train: --pretrained %s: %s", path, d)
		}
		if have.Kind != models.KindEncoder && have.Size != t.info.Size {
			t.emit(Event{Kind: "info", Message: fmt.Sprintf("pretrained %s was trained at %dx%d; this run trains at %dx%d",
				path, have.Size[0], have.Size[1], t.info.Size[0], t.info.Size[1])})
		}
	}
	pi, rep, err := models.LoadPretrained(path, t.model, t.spec.Name)
	if err != nil {
		return fmt.Errorf("train: --pretrained: %w", err)
	}
	n := len(t.model.StateDict())
	switch {
	case pi.Kind == models.KindEncoder && len(rep.Unexpected) == 0:
		t.emit(Event{Kind: "info", Message: fmt.Sprintf("pretrained encoder %s: %d of %d tensors loaded; the rest start untrained", path, n-len(rep.Missing), n)})
	case !rep.OK():
		msg := fmt.Sprintf("pretrained %s: %d of this model's %d tensors loaded", path, n-len(rep.Missing), n)
		if len(rep.Missing) > 0 {
			msg += fmt.Sprintf("; %d start untrained (e.g. %q)", len(rep.Missing), rep.Missing[0])
		}
		if len(rep.Unexpected) > 0 {
			msg += fmt.Sprintf("; %d of the file's are not this model's (e.g. %q)", len(rep.Unexpected), rep.Unexpected[0])
		}
		t.emit(Event{Kind: "info", Message: msg})
	}
	return nil
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
	// t.optim is set only on success: a failed constructor's nil pointer
	// in the interface would not be nil for Close.
	var err error
	switch t.opt.Optimizer {
	case "sgd":
		var o *optim.SGD
		if o, err = optim.NewSGD(optim.SGDConfig{LR: t.opt.LR, Momentum: t.opt.Momentum, WeightDecay: t.opt.Decay}, groups...); err == nil {
			t.optim = o
		}
	case "adamw":
		var o *optim.Adam
		if o, err = optim.NewAdamW(optim.AdamConfig{LR: t.opt.LR, WeightDecay: t.opt.Decay}, groups...); err == nil {
			t.optim = o
		}
	default:
		var o *optim.Adam
		if o, err = optim.NewAdam(optim.AdamConfig{LR: t.opt.LR, WeightDecay: t.opt.Decay}, groups...); err == nil {
			t.optim = o
		}
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
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
func (t *Trainer) Info() models.Info { return t.info }

// Metadata keys of a training checkpoint besides the model file's.
const (
	metaHistory  = "jmedseg.history"
	metaOptions  = "jmedseg.options"
	metaBest     = "jmedseg.best"
	metaBatchPos = "jmedseg.batch_in_epoch"
	// metaPartial is the unfinished epoch's training loss sum and batch
	// count, "sum@count" (exact: shortest round-trip formatting).
	metaPartial = "jmedseg.partial_train_loss"
)

func (t *Trainer) saveLast(p Progress) error {
	h, _ := json.Marshal(p.History)
	o, _ := json.Marshal(t.opt)
	best := math.Inf(-1)
	if p.BestEpoch > 0 {
		best = p.Best
	}
	meta := t.info.Metadata()
	meta[metaHistory] = string(h)
	meta[metaOptions] = string(o)
	meta[metaBest] = strconv.FormatFloat(best, 'g', -1, 64) + "@" + strconv.Itoa(p.BestEpoch)
	meta[metaBatchPos] = strconv.Itoa(p.Batch)
	meta[metaPartial] = strconv.FormatFloat(p.LossSum, 'g', -1, 64) + "@" + strconv.Itoa(p.LossBatches)
	return SaveCheckpoint(filepath.Join(t.opt.Out, LastFile), &Checkpoint{Model: t.model, Optimizer: t.optim, Scheduler: t.sched,
		Epoch: int64(p.Epoch), Step: p.Step, Meta: meta})
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
	have, err := models.ParseInfo(path, md)
	if err != nil {
		return fmt.Errorf("train: --resume: %w", err)
	}
	d := models.Mismatch(have, t.info)
	switch {
	case d != "":
	case have.Size != t.info.Size:
		d = fmt.Sprintf("it was trained at %dx%d, this run at %dx%d (--size)", have.Size[0], have.Size[1], t.info.Size[0], t.info.Size[1])
	case !slices.Equal(have.Classes, t.info.Classes):
		d = fmt.Sprintf("its classes are %q, the data set's %q", have.Classes, t.info.Classes)
	}
	if d == "" {
		// The global batch is world × --batch: another world size would not
		// continue the same run.
		var was struct {
			World int `json:"world_size"`
		}
		if json.Unmarshal([]byte(md[metaOptions]), &was) == nil && max(was.World, 1) != t.world() {
			d = fmt.Sprintf("it was trained on %d processes, this run has %d (resume with the same --nproc or WORLD_SIZE)", max(was.World, 1), t.world())
		}
	}
	if d != "" {
		return fmt.Errorf("train: --resume: %s: %s", path, d)
	}
	tr := &Checkpoint{Model: t.model, Optimizer: t.optim, Scheduler: t.sched}
	if err := LoadCheckpoint(path, tr); err != nil {
		return err
	}
	p := Progress{Epoch: int(tr.Epoch), Step: tr.Step}
	p.Batch, _ = strconv.Atoi(md[metaBatchPos])
	if err := json.Unmarshal([]byte(md[metaHistory]), &p.History); err != nil {
		return fmt.Errorf("train: --resume: %s: bad history: %v", path, err)
	}
	if b, ep, ok := cutFloat(md[metaBest]); ok && ep > 0 {
		p.Best, p.BestEpoch = b, ep
	}
	if sum, n, ok := cutFloat(md[metaPartial]); ok && p.Batch > 0 {
		if math.IsNaN(sum) || math.IsInf(sum, 0) || n < 0 || n > p.Batch {
			return fmt.Errorf("train: --resume: %s: bad partial loss %q in its metadata", path, md[metaPartial])
		}
		p.LossSum, p.LossBatches = sum, n
	}
	t.prog = p
	t.emit(Event{Kind: "info", Message: fmt.Sprintf("resumed from %s at epoch %d, batch %d", path, p.Epoch+1, p.Batch)})
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

// Job returns the run as a Job of values: its model, optimizer, schedule,
// loss, loaders and progress. Fit (the method) runs it with the run
// directory's checkpoints; the package's Fit runs it without.
func (t *Trainer) Job() Job {
	return Job{Model: t.model, Optimizer: t.optim, Scheduler: t.sched, Loss: t.lossFn, Train: t.train, Val: t.valLoader,
		Classes: t.classes, Spacing: t.spacing, Epochs: t.opt.Epochs, StepsPerEpoch: t.opt.LimitBatches, Device: t.dev,
		Start: t.prog, OnEvent: t.OnEvent, Dist: t.dist()}
}

// dist is the Job's Dist when this run is one rank of several.
func (t *Trainer) dist() *Dist {
	if t.world() < 2 {
		return nil
	}
	g := t.opt.Group
	return &Dist{Group: g, Batches: t.shard.Epoch, Steps: t.shard.global.Len(),
		Validate: func(ctx context.Context) (*Evaluation, error) {
			return distEvaluate(ctx, t.evalSetup(t.model), g, t.val, nil)
		}}
}

// Fit trains for the remaining epochs, saving best.safetensors whenever
// the validation foreground Dice improves and last.safetensors after every
// epoch. Cancelling ctx (Ctrl-C) stops after the current step and saves the
// state so that --resume continues exactly. A NaN or infinite loss stops
// training with ErrNonFinite; the checkpoints of the last good epoch are
// kept.
func (t *Trainer) Fit(ctx context.Context) error {
	job := t.Job()
	if t.OnEvent != nil { // New's events first
		for _, p := range t.pending {
			t.OnEvent(p)
		}
		t.pending = nil
	}
	saved := false
	job.OnEpoch = func(p Progress, rec report.Epoch, best bool) error {
		t.prog = p
		if !t.rank0() {
			return nil
		}
		if best {
			t.info.Epoch, t.info.ValDice = p.BestEpoch, p.Best
			if err := models.Save(filepath.Join(t.opt.Out, BestFile), t.model, t.info); err != nil {
				return err
			}
		}
		return t.saveLast(p)
	}
	job.OnInterrupt = func(p Progress) error {
		t.prog = p
		if !t.rank0() {
			return nil
		}
		if err := t.saveLast(p); err != nil {
			return fmt.Errorf("train: interrupted, and saving the state failed: %w", err)
		}
		saved = true
		return nil
	}
	_, err := Fit(ctx, job)
	last := filepath.Join(t.opt.Out, LastFile)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNonFinite):
		kept := "no epoch had finished, so nothing was saved"
		if _, serr := os.Stat(last); serr == nil {
			kept = "the last good state stays in " + last
		}
		return fmt.Errorf("%w; %s", err, kept)
	case saved && errors.Is(err, context.Canceled):
		return fmt.Errorf("train: interrupted at epoch %d, batch %d; state saved to %s (continue with --resume): %w",
			t.prog.Epoch+1, t.prog.Batch, last, ctx.Err())
	}
	return err
}

// History returns the per-epoch records so far.
func (t *Trainer) History() report.History { return t.prog.History }

// BestEpoch is the epoch whose weights are in best.safetensors (1-based).
func (t *Trainer) BestEpoch() int { return t.prog.BestEpoch }
