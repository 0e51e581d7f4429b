package sas

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
	"strings"
	"time"

	"github.com/jmedseg/jmedseg/augment"
	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/report"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/train"
)

// The experiment's default protocol: unet at width 8 on the data's own
// size (128×128 for the default brain data), 25 epochs, one MoCo encoder
// of 30 epochs per seed. Estimated from 1-epoch runs timed by CPU time at
// one thread (plain-like runs 2.3 s an epoch + 2.1 s of tests, STN runs
// 6.3 s + 4.4 s, MoCo 1.35 s an epoch): 8 variants × 3 seeds take about
// 2,800 CPU seconds, 46 minutes at one thread and less at two, within an
// hour on a 2-core CPU. The queue (64) is below the 73 training images of
// the default data, and the momentum (0.99) lets the key encoder follow
// within the 270 steps of pretraining (0.999 would leave it near its
// initial weights).
const (
	DefaultModel          = "unet"
	DefaultWidth          = 8
	DefaultEpochs         = 25
	DefaultBatch          = 8
	DefaultLR             = 3e-3
	DefaultLoss           = "ce:0.5+dice:0.5"
	DefaultSeeds          = 3
	DefaultPretrainEpochs = 30
	DefaultPretrainLR     = 1e-3
	DefaultQueue          = 64
	DefaultPretrainMethod = MoCo
	// ShiftSuffix names a test split's phone-photo twin (test → test_phone).
	ShiftSuffix = "_phone"
)

// PretrainProtocol is how the ssl variants' encoders are pretrained
// (PretrainOptions; batch, temperature, dimension and momentum default as
// there).
type PretrainProtocol struct {
	Method      Method  `json:"method"`
	Epochs      int     `json:"epochs"`
	Batch       int     `json:"batch"`
	LR          float64 `json:"lr"`
	Queue       int     `json:"queue"`
	Temperature float64 `json:"temperature"`
	Momentum    float64 `json:"momentum"`
}

// Protocol is what every run of the experiment is trained with; an output
// directory holds the runs of one protocol. The seeds are not part of it:
// each run has its own.
type Protocol struct {
	Model string `json:"model"`
	Width int64  `json:"width"`
	// Size is the training and test input {height, width}; zero is the
	// data's own size (resolved when the experiment runs, and recorded).
	Size      [2]int  `json:"size"`
	Epochs    int     `json:"epochs"`
	Batch     int     `json:"batch"`
	LR        float64 `json:"lr"`
	Optimizer string  `json:"optimizer"`
	Poly      bool    `json:"poly"`
	Loss      string  `json:"loss"`
	// LimitBatches, when positive, caps the batches of an epoch (tests).
	LimitBatches int              `json:"limit_batches,omitempty"`
	Pretrain     PretrainProtocol `json:"pretrain"`
	// ShiftSeed seeds the phone-photo splits built when absent (as
	// `jmedseg data shift --seed`).
	ShiftSeed uint64 `json:"shift_seed"`
}

// DefaultProtocol is the protocol of `jmedseg experiment sas` without
// flags.
func DefaultProtocol() Protocol {
	return Protocol{Model: DefaultModel, Width: DefaultWidth, Epochs: DefaultEpochs, Batch: DefaultBatch, LR: DefaultLR,
		Optimizer: "adam", Poly: true, Loss: DefaultLoss,
		Pretrain: PretrainProtocol{Method: DefaultPretrainMethod, Epochs: DefaultPretrainEpochs, Batch: DefaultBatch, LR: DefaultPretrainLR,
			Queue: DefaultQueue, Temperature: 0.07, Momentum: 0.99}}
}

func (p *Protocol) defaults() {
	d := DefaultProtocol()
	if p.Model == "" {
		p.Model = d.Model
	}
	p.Model = strings.ToLower(p.Model)
	if p.Epochs == 0 {
		p.Epochs = d.Epochs
	}
	if p.Batch == 0 {
		p.Batch = d.Batch
	}
	if p.Optimizer == "" {
		p.Optimizer = d.Optimizer
	}
	p.Optimizer = strings.ToLower(p.Optimizer)
	if p.LR == 0 {
		p.LR = d.LR
	}
	if p.Loss == "" {
		p.Loss = d.Loss
	}
	q := &p.Pretrain
	if q.Method == "" {
		q.Method = d.Pretrain.Method
	}
	if q.Epochs == 0 {
		q.Epochs = d.Pretrain.Epochs
	}
	if q.Batch == 0 {
		q.Batch = p.Batch
	}
	if q.LR == 0 {
		q.LR = d.Pretrain.LR
	}
	if q.Queue == 0 {
		q.Queue = d.Pretrain.Queue
	}
	if q.Temperature == 0 {
		q.Temperature = d.Pretrain.Temperature
	}
	if q.Momentum == 0 {
		q.Momentum = d.Pretrain.Momentum
	}
}

func (p Protocol) validate() error {
	finitePos := func(v float64) bool { return v > 0 && !math.IsInf(v, 0) }
	switch {
	case p.Width < 0:
		return fmt.Errorf("--width %d: want a positive width (0: the reference's)", p.Width)
	case p.Epochs < 1:
		return fmt.Errorf("--epochs %d: want at least 1", p.Epochs)
	case p.Batch < 1:
		return fmt.Errorf("--batch %d: want at least 1", p.Batch)
	case !finitePos(p.LR):
		return fmt.Errorf("--lr %g: want a positive finite learning rate", p.LR)
	case p.Size[0] < 0 || p.Size[1] < 0 || p.Size[0] > train.MaxSize || p.Size[1] > train.MaxSize:
		return fmt.Errorf("--size %dx%d: want sides from 1 to %d", p.Size[0], p.Size[1], train.MaxSize)
	case p.LimitBatches < 0:
		return fmt.Errorf("--limit-batches %d: want 0 (no limit) or more", p.LimitBatches)
	case p.Pretrain.Epochs < 1:
		return fmt.Errorf("--pretrain-epochs %d: want at least 1", p.Pretrain.Epochs)
	case p.Pretrain.Batch < 2:
		return fmt.Errorf("--pretrain-batch %d: want at least 2", p.Pretrain.Batch)
	case !finitePos(p.Pretrain.LR):
		return fmt.Errorf("--pretrain-lr %g: want a positive finite learning rate", p.Pretrain.LR)
	case p.Pretrain.Queue < 1:
		return fmt.Errorf("--queue %d: want at least 1", p.Pretrain.Queue)
	case !finitePos(p.Pretrain.Temperature):
		return fmt.Errorf("--temperature %g: want a positive finite number", p.Pretrain.Temperature)
	case !(p.Pretrain.Momentum > 0 && p.Pretrain.Momentum < 1):
		return fmt.Errorf("--momentum %g: want a number between 0 and 1", p.Pretrain.Momentum)
	}
	switch p.Optimizer {
	case "adam", "adamw", "sgd":
	default:
		return fmt.Errorf("--optimizer %q: want adam, adamw or sgd", p.Optimizer)
	}
	if _, err := ParseMethod(string(p.Pretrain.Method)); err != nil {
		return fmt.Errorf("--method: %w", err)
	}
	return nil
}

// summary is the protocol in one line.
func (p Protocol) summary() string {
	poly := ""
	if p.Poly {
		poly = " poly"
	}
	s := fmt.Sprintf("%s width %d at %dx%d, %d epochs, batch %d, %s lr %g%s, loss %s; pretraining %s %d epochs, lr %g",
		p.Model, p.Width, p.Size[0], p.Size[1], p.Epochs, p.Batch, p.Optimizer, p.LR, poly, p.Loss, p.Pretrain.Method, p.Pretrain.Epochs, p.Pretrain.LR)
	if p.Pretrain.Method.usesQueue() {
		s += fmt.Sprintf(", queue %d", p.Pretrain.Queue)
	}
	if p.Pretrain.Method == MoCo {
		s += fmt.Sprintf(", momentum %g", p.Pretrain.Momentum)
	}
	if p.LimitBatches > 0 {
		s += fmt.Sprintf(", at most %d batches an epoch", p.LimitBatches)
	}
	return s
}

// diff names the first field in which two protocols differ, "" if none.
func (p Protocol) diff(q Protocol) string {
	return jsonDiff(p, q)
}

func jsonDiff(a, b any) string {
	flat := func(v any) map[string]string {
		raw, _ := json.Marshal(v)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		out := map[string]string{}
		var walk func(prefix string, v any)
		walk = func(prefix string, v any) {
			if mm, ok := v.(map[string]any); ok {
				for k, x := range mm {
					walk(prefix+k+".", x)
				}
				return
			}
			b, _ := json.Marshal(v)
			out[strings.TrimSuffix(prefix, ".")] = string(b)
		}
		walk("", m)
		return out
	}
	fa, fb := flat(a), flat(b)
	var keys []string
	for k := range fa {
		keys = append(keys, k)
	}
	for k := range fb {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if fa[k] != fb[k] {
			va, vb := fa[k], fb[k]
			if va == "" {
				va = "nothing"
			}
			if vb == "" {
				vb = "nothing"
			}
			return fmt.Sprintf("%s %s, not %s", k, va, vb)
		}
	}
	return ""
}

// Options configure the SAS experiment.
type Options struct {
	// Data is the data set directory: its test splits, and their phone-
	// photo twins (built there when absent). Out is the experiment's
	// directory: sas.md, sas.json, the figure, the pretrained encoders
	// (pretrain/seed<k>/) and a run directory per variant and seed
	// (<variant>/seed<k>/).
	Data, Out string
	// Variants are the arms to run (nil: all, in the table's order).
	Variants []Variant
	// Seeds are the runs' seeds (nil: 1, 2, 3); every variant runs with
	// each.
	Seeds    []uint64
	Protocol Protocol
	Device   string
	Threads  int
	Workers  int
	// RetryFailed runs the runs whose rows say they failed again.
	RetryFailed bool
	// FigureImages is the number of phone-photo test images in the figure
	// (0: 3).
	FigureImages int
	// OnEvent receives progress, from one goroutine at a time; may be nil.
	OnEvent func(Event)
}

// Event reports the experiment's progress. Kind is "start", "info",
// "pretrain" (an encoder starts), "pretrain_epoch", "pretrained",
// "run" (a run starts), "epoch", "skip" (a finished row kept), "row" (a
// run's row is done) or "done".
type Event struct {
	Kind    string        `json:"event"`
	K       int           `json:"k,omitempty"`
	N       int           `json:"n,omitempty"`
	Variant string        `json:"variant,omitempty"`
	Seed    uint64        `json:"seed,omitempty"`
	Epoch   int           `json:"epoch,omitempty"`
	Epochs  int           `json:"epochs,omitempty"`
	Record  *report.Epoch `json:"record,omitempty"`
	Stats   *EpochStats   `json:"pretrain,omitempty"`
	Row     *Row          `json:"row,omitempty"`
	ETA     time.Duration `json:"eta_ns,omitempty"`
	Message string        `json:"message,omitempty"`
	Files   []string      `json:"files,omitempty"`
}

// Files the experiment's directory holds.
const (
	MarkdownFile = "sas.md"
	JSONFile     = "sas.json"
	FigureFile   = "sas-figure.png"
	// ProtocolFile records the directory's protocol, written first.
	ProtocolFile = "sas-protocol.json"
	// RowFile, in a run directory, is its finished row.
	RowFile = "sas-row.json"
	// EncoderFile, in pretrain/seed<k>/, is the seed's pretrained encoder.
	EncoderFile = "encoder.safetensors"
)

// Row statuses.
const (
	StatusOK      = "ok"      // trained every epoch and tested
	StatusStopped = "stopped" // stopped early (a NaN loss); the best checkpoint was tested
	StatusFailed  = "failed"  // no test results; Error says why
)

// Row is one run: a variant trained with one seed, and its scores.
type Row struct {
	Variant string `json:"variant"`
	Seed    uint64 `json:"seed"`
	Status  string `json:"status"`
	Error   string `json:"error,omitempty"`
	// Run is the run directory, Pretrained the encoder it started from,
	// both relative to the experiment's directory.
	Run         string    `json:"run"`
	Pretrained  string    `json:"pretrained,omitempty"`
	Epochs      int       `json:"epochs"`
	BestEpoch   int       `json:"best_epoch"`
	WallSeconds float64   `json:"wall_seconds"`
	Tests       []Scores  `json:"tests"`
	Notes       []string  `json:"notes,omitempty"`
	Protocol    Protocol  `json:"protocol"`
	Finished    time.Time `json:"finished"`
}

// Scores are a run's headline scores on one test split (report.SplitScores).
type Scores = report.SplitScores

// scores returns the row's scores on split.
func (r Row) scores(split string) (Scores, bool) {
	for _, s := range r.Tests {
		if s.Split == split {
			return s, true
		}
	}
	return Scores{}, false
}

type experiment struct {
	opt      Options
	ds       *data.Dataset
	channels int
	classes  int
	rows     map[string]Row // by variant/seed
	table    Table
	encoders map[uint64]string // seed → encoder file, "" when it failed
	encErr   map[uint64]error
	walls    []time.Duration // of the runs trained by this invocation
	todo     int
	started  time.Time
}

func rowKey(variant string, seed uint64) string { return variant + "/" + strconv.FormatUint(seed, 10) }

// RunDir is the run directory of a variant and seed, relative to the
// experiment's directory.
func RunDir(variant string, seed uint64) string {
	return filepath.Join(variant, "seed"+strconv.FormatUint(seed, 10))
}

// EncoderPath is the pretrained encoder of a seed, relative to the
// experiment's directory.
func EncoderPath(seed uint64) string {
	return filepath.Join("pretrain", "seed"+strconv.FormatUint(seed, 10), EncoderFile)
}

// Run runs the SAS experiment: it builds the phone-photo twin of every
// clean test split that lacks one, pretrains one encoder per seed (for the
// ssl variants), trains every selected variant with every seed (skipping
// runs with a finished row; resuming an interrupted one), tests each on
// every test split, and writes sas.md and sas.json after every run and the
// figure at the end. Cancelling ctx stops the run in training (which saves
// its state) and returns an error wrapping ctx.Err().
func Run(ctx context.Context, opt Options) (*Table, error) {
	e, err := newExperiment(ctx, opt)
	if err != nil {
		return nil, err
	}
	return e.run(ctx)
}

func newExperiment(ctx context.Context, opt Options) (*experiment, error) {
	p := &opt.Protocol
	p.defaults()
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("experiment sas: %w", err)
	}
	switch {
	case opt.Data == "":
		return nil, errors.New("experiment sas: --data: no data set directory given")
	case opt.Out == "":
		return nil, errors.New("experiment sas: --out: no output directory given")
	case opt.FigureImages < 0:
		return nil, fmt.Errorf("experiment sas: %d figure images: want 0 (3) or more", opt.FigureImages)
	}
	if opt.Variants == nil {
		opt.Variants = slices.Clone(Variants)
	}
	if len(opt.Variants) == 0 {
		return nil, errors.New("experiment sas: --variants: no variant selected")
	}
	if opt.Seeds == nil {
		for k := 1; k <= DefaultSeeds; k++ {
			opt.Seeds = append(opt.Seeds, uint64(k))
		}
	}
	if len(opt.Seeds) == 0 {
		return nil, errors.New("experiment sas: --seeds: no seed selected")
	}
	if opt.FigureImages == 0 {
		opt.FigureImages = 3
	}
	if opt.Device == "" {
		opt.Device = "cpu"
	}
	spec, ok := models.Lookup(p.Model)
	if !ok {
		_, err := models.New(p.Model, models.Config{})
		return nil, fmt.Errorf("experiment sas: --model: %w", err)
	}
	p.Model = spec.Name
	e := &experiment{opt: opt, rows: map[string]Row{}, encoders: map[uint64]string{}, encErr: map[uint64]error{}, started: time.Now()}
	var err error
	if e.ds, err = data.Open(opt.Data); err != nil {
		return nil, fmt.Errorf("experiment sas: --data: %w", err)
	}
	if e.classes = e.ds.NumClasses(); e.classes < 2 {
		return nil, fmt.Errorf("experiment sas: --data %s: need at least 2 classes in %s, it lists %d", opt.Data, data.ManifestFile, e.classes)
	}
	e.channels = 3
	if m := e.ds.Manifest; m != nil && (m.Channels == 1 || m.Channels == 3) {
		e.channels = m.Channels
	}
	if p.Size == [2]int{} {
		if p.Size, err = e.ds.ImageSize(); err != nil {
			return nil, fmt.Errorf("experiment sas: --data %s: %w (choose --size)", opt.Data, err)
		}
	}
	if err := spec.CheckSize(int64(p.Size[0]), int64(p.Size[1])); err != nil {
		return nil, fmt.Errorf("experiment sas: --size: %w", err)
	}
	if p.Width == 0 {
		p.Width = spec.DefaultWidth
	}
	e.opt.Protocol = *p // resolved: what the directory records
	if slices.ContainsFunc(opt.Variants, func(v Variant) bool { return v.SSL }) {
		if err := CheckEncoder(spec.Name, models.Config{InChannels: int64(e.channels), Classes: int64(e.classes), Width: p.Width}); err != nil {
			return nil, fmt.Errorf("experiment sas: --model: %w; the ssl variants need one (choose others with --variants)", err)
		}
	}
	trainSamples, _ := e.ds.Split("train")
	if len(trainSamples) < 2 {
		return nil, fmt.Errorf("experiment sas: --data %s: the train split has %d images", opt.Data, len(trainSamples))
	}
	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		return nil, fmt.Errorf("experiment sas: --out: %w", err)
	}
	if err := e.checkProtocol(); err != nil {
		return nil, err
	}
	if err := e.buildShifted(ctx); err != nil {
		return nil, err
	}
	e.table = Table{Protocol: *p, Data: opt.Data, Device: opt.Device, Threads: opt.Threads, Seeds: opt.Seeds, Machine: thisMachine()}
	if m := e.ds.Manifest; m != nil {
		e.table.DataName = m.Name
	}
	e.table.Splits, e.table.Shifted = testSplits(e.ds)
	if err := e.loadRows(); err != nil {
		return nil, err
	}
	return e, nil
}

// checkProtocol refuses an output directory of another protocol, and
// records this one in a new directory.
func (e *experiment) checkProtocol() error {
	path := filepath.Join(e.opt.Out, ProtocolFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b, _ := json.MarshalIndent(e.opt.Protocol, "", "  ")
		return writeFile(path, append(b, '\n'))
	}
	if err != nil {
		return fmt.Errorf("experiment sas: %w", err)
	}
	var have Protocol
	if err := json.Unmarshal(b, &have); err != nil {
		return fmt.Errorf("experiment sas: %s: %w (remove it only if the directory holds no runs)", path, err)
	}
	if d := have.diff(e.opt.Protocol); d != "" {
		return fmt.Errorf("experiment sas: --out %s holds runs of another protocol (%s has %s); use another --out, or give the same flags",
			e.opt.Out, ProtocolFile, d)
	}
	return nil
}

// testSplits are the data set's test splits (every split but train and
// val), each clean one followed by its phone-photo twin, and the map from
// clean to twin.
func testSplits(ds *data.Dataset) ([]string, map[string]string) {
	all := ds.Splits()
	var out []string
	shifted := map[string]string{}
	for _, s := range all {
		if s == "train" || s == "val" || strings.HasSuffix(s, ShiftSuffix) {
			continue
		}
		out = append(out, s)
		if slices.Contains(all, s+ShiftSuffix) {
			out = append(out, s+ShiftSuffix)
			shifted[s] = s + ShiftSuffix
		}
	}
	for _, s := range all { // twins whose clean split is gone
		if strings.HasSuffix(s, ShiftSuffix) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, shifted
}

// buildShifted writes the phone-photo twin of every clean test split with
// masks that has none (augment.PhonePhoto, as `jmedseg data shift`).
func (e *experiment) buildShifted(ctx context.Context) error {
	clean, shifted := testSplits(e.ds)
	built := false
	for _, s := range clean {
		if strings.HasSuffix(s, ShiftSuffix) || shifted[s] != "" {
			continue
		}
		samples, err := e.ds.Split(s)
		if err != nil {
			return err
		}
		if len(samples) == 0 || slices.ContainsFunc(samples, func(x data.Sample) bool { return x.Mask == "" }) {
			continue // not a split the runs test
		}
		to := s + ShiftSuffix
		if p := filepath.Join(e.opt.Data, to); fileExists(p) {
			return fmt.Errorf("experiment sas: %s exists but is not a split of %s; move it away so that the phone-photo split %s can be built", p, e.opt.Data, to)
		}
		n, err := augment.WriteShifted(ctx, e.opt.Data, s, to, augment.PhonePhoto(), e.opt.Protocol.ShiftSeed)
		if err != nil {
			return fmt.Errorf("experiment sas: building the phone-photo split %s: %w", to, err)
		}
		e.emit(Event{Kind: "info", Message: fmt.Sprintf("built the phone-photo split %s of %s: %d images (as jmedseg data shift --from %s --to %s --seed %d)",
			to, e.opt.Data, n, s, to, e.opt.Protocol.ShiftSeed)})
		built = true
	}
	if built {
		ds, err := data.Open(e.opt.Data)
		if err != nil {
			return err
		}
		e.ds = ds
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// loadRows reads the finished rows in the output directory: every
// OUT/*/seed*/sas-row.json, of any variant and seed.
func (e *experiment) loadRows() error {
	paths, err := filepath.Glob(filepath.Join(e.opt.Out, "*", "seed*", RowFile))
	if err != nil {
		return err
	}
	for _, p := range paths {
		var r Row
		b, err := os.ReadFile(p)
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err != nil {
			return fmt.Errorf("experiment sas: %s: %w (remove it to run that variant and seed again)", p, err)
		}
		if d := r.Protocol.diff(e.table.Protocol); d != "" {
			return fmt.Errorf("experiment sas: --out %s holds another protocol: %s has %s; use another --out", e.opt.Out, p, d)
		}
		if variantIndex(r.Variant) == len(Variants) {
			return fmt.Errorf("experiment sas: %s: unknown variant %q", p, r.Variant)
		}
		e.rows[rowKey(r.Variant, r.Seed)] = r
	}
	return nil
}

func (e *experiment) emit(ev Event) {
	if e.opt.OnEvent != nil {
		e.opt.OnEvent(ev)
	}
}

// done reports whether a run has a row to keep.
func (e *experiment) done(v Variant, seed uint64) bool {
	r, ok := e.rows[rowKey(v.Name, seed)]
	return ok && (r.Status != StatusFailed || !e.opt.RetryFailed)
}

func (e *experiment) run(ctx context.Context) (*Table, error) {
	n := len(e.opt.Variants) * len(e.opt.Seeds)
	for _, seed := range e.opt.Seeds {
		for _, v := range e.opt.Variants {
			if !e.done(v, seed) {
				e.todo++
			}
		}
	}
	e.emit(Event{Kind: "start", N: n, Message: fmt.Sprintf("%d variants × %d seeds (%d to run), %s; output %s",
		len(e.opt.Variants), len(e.opt.Seeds), e.todo, e.table.Protocol.summary(), e.opt.Out)})
	if err := e.write(false); err != nil {
		return nil, err
	}
	k := 0
	for _, seed := range e.opt.Seeds {
		for _, v := range e.opt.Variants {
			k++
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("experiment sas: interrupted before %s seed %d: %w", v.Name, seed, err)
			}
			if e.done(v, seed) {
				r := e.rows[rowKey(v.Name, seed)]
				e.emit(Event{Kind: "skip", K: k, N: n, Variant: v.Name, Seed: seed, Row: &r})
				continue
			}
			start := time.Now()
			r, err := e.runOne(ctx, k, n, v, seed)
			if err != nil {
				return nil, err
			}
			e.walls = append(e.walls, time.Since(start))
			e.todo--
			if err := e.saveRow(r); err != nil {
				return nil, err
			}
			if err := e.write(false); err != nil {
				return nil, err
			}
			e.emit(Event{Kind: "row", K: k, N: n, Variant: v.Name, Seed: seed, Row: &r, ETA: e.eta()})
		}
	}
	if err := e.write(true); err != nil {
		return nil, err
	}
	e.emit(Event{Kind: "done", N: n, Files: e.table.files(), Message: e.table.tally()})
	return &e.table, nil
}

// eta is the time left at the mean wall time of the runs trained so far.
func (e *experiment) eta() time.Duration {
	if len(e.walls) == 0 {
		return 0
	}
	var sum time.Duration
	for _, w := range e.walls {
		sum += w
	}
	return sum / time.Duration(len(e.walls)) * time.Duration(e.todo)
}

func (e *experiment) saveRow(r Row) error {
	e.rows[rowKey(r.Variant, r.Seed)] = r
	dir := filepath.Join(e.opt.Out, r.Run)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("experiment sas: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, RowFile), append(b, '\n'))
}

// encoder returns the seed's pretrained encoder (relative to the output
// directory), pretraining it first when it does not exist.
func (e *experiment) encoder(ctx context.Context, seed uint64) (string, error) {
	if p, ok := e.encoders[seed]; ok {
		return p, e.encErr[seed]
	}
	rel := EncoderPath(seed)
	path := filepath.Join(e.opt.Out, rel)
	p := e.table.Protocol
	cfg := models.Config{InChannels: int64(e.channels), Classes: int64(e.classes), Width: p.Width}
	spec, _ := models.Lookup(p.Model)
	cfg = spec.Resolve(cfg)
	dev, err := deviceOf(e.opt.Device)
	if err != nil {
		return "", err
	}
	o := PretrainOptions{Method: p.Pretrain.Method, Epochs: p.Pretrain.Epochs, Batch: p.Pretrain.Batch, LR: p.Pretrain.LR,
		Queue: p.Pretrain.Queue, Temperature: p.Pretrain.Temperature, Momentum: p.Pretrain.Momentum, Size: p.Size,
		Channels: e.channels, Norm: models.DefaultNormalization(), Workers: e.opt.Workers, Seed: seed, Device: dev}
	if info, err := models.ReadInfo(path); err == nil {
		have, ok := ReadSettings(info)
		if d := jsonDiff(have, o.Settings()); !ok || d != "" || info.Model != spec.Name || info.Config != cfg {
			if d == "" {
				d = "its model: " + info.Describe()
			}
			return "", fmt.Errorf("experiment sas: %s was pretrained otherwise (%s); remove it to pretrain it anew", path, d)
		}
		e.encoders[seed] = rel
		e.emit(Event{Kind: "info", Seed: seed, Message: fmt.Sprintf("seed %d: reusing the pretrained encoder %s", seed, path)})
		return rel, nil
	}
	samples, err := e.ds.Split("train")
	if err != nil {
		return "", err
	}
	e.emit(Event{Kind: "pretrain", Seed: seed, Epochs: o.Epochs, Message: fmt.Sprintf("seed %d: pretraining the encoder (%s, %d epochs, %d train images)",
		seed, o.Method, o.Epochs, len(samples))})
	o.OnEpoch = func(s EpochStats) {
		e.emit(Event{Kind: "pretrain_epoch", Seed: seed, Epoch: s.Epoch, Epochs: o.Epochs, Stats: &s})
	}
	if e.opt.Threads > 0 {
		torch.SetNumThreads(e.opt.Threads)
	}
	torch.ManualSeed(seed) // the encoder's initial weights, as train seeds the model
	rep, err := PretrainModel(ctx, ModelJob{Model: spec.Name, Config: cfg, Samples: samples, Data: e.opt.Data, Splits: []string{"train"},
		Options: o, Out: path})
	if ctx.Err() != nil {
		return "", fmt.Errorf("experiment sas: interrupted while pretraining the encoder of seed %d (rerun to pretrain it again): %w", seed, ctx.Err())
	}
	if err != nil {
		e.encoders[seed], e.encErr[seed] = "", err
		return "", err
	}
	e.encoders[seed] = rel
	last := rep.History[len(rep.History)-1]
	e.emit(Event{Kind: "pretrained", Seed: seed, Message: fmt.Sprintf("seed %d: encoder %s: loss %.4f, positive-pair top-1 %.3f (chance %.3f), %.0f s",
		seed, path, last.Loss, last.Accuracy, rep.Chance, rep.WallSeconds), Files: []string{path, ReportFiles(path)[1]}})
	return rel, nil
}

// runOne trains and tests one variant with one seed and returns its row;
// the error is only for an interrupted experiment.
func (e *experiment) runOne(ctx context.Context, k, n int, v Variant, seed uint64) (Row, error) {
	p := e.table.Protocol
	rel := RunDir(v.Name, seed)
	dir := filepath.Join(e.opt.Out, rel)
	r := Row{Variant: v.Name, Seed: seed, Status: StatusFailed, Run: filepath.ToSlash(rel), Protocol: p}
	fail := func(err error) (Row, error) {
		r.Error = err.Error()
		r.Finished = time.Now().UTC()
		return r, nil
	}
	o := train.Options{Model: p.Model, Data: e.opt.Data, Out: dir, Net: models.Config{Width: p.Width}, Epochs: p.Epochs, Batch: p.Batch,
		LR: p.LR, Optimizer: p.Optimizer, Poly: p.Poly, Loss: p.Loss, Aug: v.Aug, STN: v.STN, Size: p.Size, Workers: e.opt.Workers,
		Seed: seed, Device: e.opt.Device, Threads: e.opt.Threads, LimitBatches: p.LimitBatches}
	if v.SSL {
		enc, err := e.encoder(ctx, seed)
		if ctx.Err() != nil {
			return r, err
		}
		if err != nil {
			return fail(fmt.Errorf("pretraining the encoder of seed %d: %w", seed, err))
		}
		r.Pretrained = filepath.ToSlash(enc)
		o.Pretrained = filepath.Join(e.opt.Out, enc)
	}
	_, hadRow := e.rows[rowKey(v.Name, seed)]
	switch {
	case hadRow: // a failed row retried: start anew
		o.Force = true
	case fileExists(filepath.Join(dir, train.LastFile)):
		o.Resume = true // interrupted before its row: continue it
	}
	_ = os.Remove(filepath.Join(dir, RowFile))
	e.emit(Event{Kind: "run", K: k, N: n, Variant: v.Name, Seed: seed, Epochs: p.Epochs, ETA: e.eta(),
		Message: map[bool]string{true: "resuming", false: "training"}[o.Resume]})
	start := time.Now()
	t, err := train.New(o)
	if err != nil {
		return fail(err)
	}
	defer t.Close()
	t.OnEvent = func(ev train.Event) {
		switch ev.Kind {
		case "epoch":
			e.emit(Event{Kind: "epoch", K: k, N: n, Variant: v.Name, Seed: seed, Epoch: ev.Epoch, Epochs: ev.Epochs, Record: ev.Record})
		case "info":
			e.emit(Event{Kind: "info", K: k, N: n, Variant: v.Name, Seed: seed, Message: ev.Message})
		}
	}
	run, err := t.Run(ctx)
	if ctx.Err() != nil {
		return r, fmt.Errorf("experiment sas: interrupted while training %s seed %d (its state is saved; rerun to continue): %w", v.Name, seed, ctx.Err())
	}
	r.WallSeconds = time.Since(start).Seconds()
	r.Finished = time.Now().UTC()
	if run == nil {
		if err == nil {
			err = errors.New("training gave no report")
		}
		return fail(err)
	}
	r.Status = StatusOK
	if err != nil {
		r.Status, r.Error = StatusStopped, err.Error()
	}
	r.Epochs, r.BestEpoch = len(run.History), run.BestEpoch
	for _, tt := range run.Tests {
		r.Tests = append(r.Tests, tt.Scores())
	}
	for _, note := range run.Notes {
		if !strings.HasPrefix(note, "Training stopped early: ") {
			r.Notes = append(r.Notes, note)
		}
	}
	return r, nil
}
