package zoo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/internal/atomicfile"
	"github.com/jmedseg/jmedseg/metric"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/report"
	"github.com/jmedseg/jmedseg/train"
)

// Protocol is what every model of a zoo is trained with. An output
// directory holds the rows of one protocol.
type Protocol struct {
	Epochs    int     `json:"epochs"`    // 20
	Batch     int     `json:"batch"`     // 8
	LR        float64 `json:"lr"`        // 1e-4 (Adam, AdamW) or 1e-2 (SGD)
	Optimizer string  `json:"optimizer"` // adam | adamw | sgd
	Decay     float64 `json:"weight_decay"`
	Poly      bool    `json:"poly"`
	Loss      string  `json:"loss"` // ce
	Aug       bool    `json:"aug"`  // the SAS colour/blur augmentation
	Geometric bool    `json:"geometric"`
	// Size is the training and test input, {height, width}; zero is the
	// data's own size (resolved when the zoo runs, and recorded).
	Size [2]int `json:"size"`
	// WidthScale scales every model's reference width (see ScaleWidth); 0
	// is 1, the reference widths. MinWidth, when positive, is a floor
	// under the scaled width (never above the reference's; WidthRule).
	WidthScale float64 `json:"width_scale"`
	MinWidth   int64   `json:"min_width,omitempty"`
	Seed       uint64  `json:"seed"`
	// LimitBatches, when positive, caps the batches of an epoch.
	LimitBatches int `json:"limit_batches,omitempty"`
	// FitSize trains a model that cannot take Size at the smallest size
	// it takes that is at least Size (FitSize), recorded in its row,
	// instead of giving it a failure row.
	FitSize bool `json:"fit_size,omitempty"`
}

func (p *Protocol) defaults() {
	if p.Epochs == 0 {
		p.Epochs = 20
	}
	if p.Batch == 0 {
		p.Batch = 8
	}
	p.Optimizer = strings.ToLower(p.Optimizer)
	if p.Optimizer == "" {
		p.Optimizer = "adam"
	}
	if p.LR == 0 {
		p.LR = 1e-4
		if p.Optimizer == "sgd" {
			p.LR = 1e-2
		}
	}
	if p.Loss == "" {
		p.Loss = "ce"
	}
	if p.WidthScale == 0 {
		p.WidthScale = 1
	}
}

func (p Protocol) validate() error {
	switch {
	case p.Epochs < 1:
		return fmt.Errorf("zoo: --epochs %d: must be at least 1", p.Epochs)
	case p.Batch < 1:
		return fmt.Errorf("zoo: --batch %d: must be at least 1", p.Batch)
	case !(p.LR > 0):
		return fmt.Errorf("zoo: --lr %g: must be positive", p.LR)
	case !(p.WidthScale > 0) || math.IsInf(p.WidthScale, 0):
		return fmt.Errorf("zoo: --width-scale %g: must be positive", p.WidthScale)
	case p.Size[0] < 0 || p.Size[1] < 0:
		return fmt.Errorf("zoo: --size %dx%d: must be positive", p.Size[0], p.Size[1])
	case p.MinWidth < 0:
		return fmt.Errorf("zoo: --min-width %d: must not be negative", p.MinWidth)
	case p.LimitBatches < 0:
		return fmt.Errorf("zoo: --limit-batches %d: must not be negative", p.LimitBatches)
	}
	switch p.Optimizer {
	case "adam", "adamw", "sgd":
	default:
		return fmt.Errorf("zoo: --optimizer %q: want adam, adamw or sgd", p.Optimizer)
	}
	return nil
}

// diff names the first field in which two protocols differ, "" if none.
func (p Protocol) diff(q Protocol) string {
	a, _ := json.Marshal(p)
	b, _ := json.Marshal(q)
	var ma, mb map[string]any
	_ = json.Unmarshal(a, &ma)
	_ = json.Unmarshal(b, &mb)
	keys := make([]string, 0, len(ma)+len(mb))
	for k := range ma {
		keys = append(keys, k)
	}
	for k := range mb {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		va, _ := json.Marshal(ma[k])
		vb, _ := json.Marshal(mb[k])
		if string(va) != string(vb) {
			return fmt.Sprintf("%s %s, not %s", k, va, vb)
		}
	}
	return ""
}

// Options configure a zoo run.
type Options struct {
	// Data is the data set directory; Out the zoo's directory, holding
	// zoo.md, zoo.json, the figures and a run directory per model.
	Data, Out string
	// Models are the names to train, in any order (the table follows the
	// registry's); nil, or "all", is every registered model.
	Models   []string
	Protocol Protocol
	// Device, Threads and Workers are passed to every child.
	Device  string
	Threads int
	Workers int
	// Exe is the jmedseg binary the children run (os.Executable() for the
	// command line); Runner, when set, runs them instead.
	Exe    string
	Runner Runner
	// Timeout, when positive, stops a model's training after this long;
	// it gets a failure row and continues from its last epoch when
	// retried.
	Timeout time.Duration
	// RetryFailed trains the models whose rows say they failed again.
	RetryFailed bool
	// OnEvent receives progress; it is called from one goroutine at a
	// time. May be nil.
	OnEvent func(Event)
}

// Event reports a zoo's progress. Kind is "start" (N models), "model" (the
// k-th of N starts training), "epoch" (one of its epochs finished), "skip"
// (a finished row kept), "row" (a model's row is done), "info" or "done"
// (the files written).
type Event struct {
	Kind   string        `json:"event"`
	K      int           `json:"k,omitempty"`
	N      int           `json:"n,omitempty"`
	Model  string        `json:"model,omitempty"`
	Width  int64         `json:"width,omitempty"`
	Params int64         `json:"params,omitempty"`
	Epoch  int           `json:"epoch,omitempty"`
	Epochs int           `json:"epochs,omitempty"`
	Record *report.Epoch `json:"record,omitempty"`
	// ETA is the model's remaining training time, ZooETA the whole zoo's
	// (estimated from the models trained so far), both when known.
	ETA     time.Duration `json:"eta_ns,omitempty"`
	ZooETA  time.Duration `json:"zoo_eta_ns,omitempty"`
	Row     *Row          `json:"row,omitempty"`
	Message string        `json:"message,omitempty"`
	Files   []string      `json:"files,omitempty"`
}

// Files a zoo directory holds.
const (
	MarkdownFile = "zoo.md"
	JSONFile     = "zoo.json"
	// RowFile, in a model's run directory, is its finished row.
	RowFile = "zoo-row.json"
	// LogFile, in a model's run directory, collects its children's output.
	LogFile = "zoo.log"
	// PredictionFile, in a model's run directory, is its mask for the
	// figure image.
	PredictionFile = "zoo-prediction.png"
	// PredictionsPNG is the small-multiples figure.
	PredictionsPNG = "zoo-predictions.png"
)

// Run trains and tests every selected model (skipping those with a
// finished row), and writes zoo.md, zoo.json and the figures into
// opt.Out, updated after every model. It returns the table. Cancelling
// ctx interrupts the model in training (which saves its state) and
// returns an error wrapping ctx.Err() without writing a row for it.
func Run(ctx context.Context, opt Options) (*Table, error) {
	z, err := newRun(opt)
	if err != nil {
		return nil, err
	}
	return z.run(ctx)
}

type zooRun struct {
	opt      Options
	runner   Runner
	ds       *data.Dataset
	names    []string // selected, in registry order
	rows     map[string]Row
	table    Table
	cfg      models.Config // channels and classes of the data
	figure   *figureImage
	started  time.Time
	trained  []time.Duration // walls of the models trained by this run
	todo     int             // models left to train, the current one included
	curStart time.Time
}

func newRun(opt Options) (*zooRun, error) {
	p := &opt.Protocol
	p.defaults()
	if err := p.validate(); err != nil {
		return nil, err
	}
	switch {
	case opt.Data == "":
		return nil, errors.New("zoo: --data: no data set directory given")
	case opt.Out == "":
		return nil, errors.New("zoo: --out: no output directory given")
	case opt.Runner == nil && opt.Exe == "":
		return nil, errors.New("zoo: no jmedseg binary to run the models in")
	}
	if opt.Device == "" {
		opt.Device = "cpu"
	}
	z := &zooRun{opt: opt, runner: opt.Runner, rows: map[string]Row{}, started: time.Now()}
	if z.runner == nil {
		z.runner = ExecRunner{Exe: opt.Exe}
	}
	names, err := Select(opt.Models)
	if err != nil {
		return nil, err
	}
	z.names = names
	if z.ds, err = data.Open(opt.Data); err != nil {
		return nil, fmt.Errorf("zoo: --data: %w", err)
	}
	ncls := z.ds.NumClasses()
	if ncls < 2 {
		return nil, fmt.Errorf("zoo: --data %s: need at least 2 classes in %s, it lists %d", opt.Data, data.ManifestFile, ncls)
	}
	z.cfg = models.Config{InChannels: 3, Classes: int64(ncls)}
	if m := z.ds.Manifest; m != nil && (m.Channels == 1 || m.Channels == 3) {
		z.cfg.InChannels = int64(m.Channels)
	}
	if p.Size == [2]int{} {
		if p.Size, err = z.ds.ImageSize(); err != nil {
			return nil, fmt.Errorf("zoo: --data %s: %w (choose --size)", opt.Data, err)
		}
	}
	z.table = Table{Protocol: *p, Data: opt.Data, Device: opt.Device, Threads: opt.Threads, Machine: thisMachine()}
	if m := z.ds.Manifest; m != nil {
		z.table.DataName = m.Name
	}
	for _, s := range z.ds.Splits() {
		if s != "train" && s != "val" {
			z.table.Splits = append(z.table.Splits, s)
		}
	}
	if z.figure, err = pickFigureImage(z.ds, z.table.Splits); err != nil {
		return nil, err
	}
	if z.figure != nil {
		z.table.FigureImage = z.figure.label()
	}
	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		return nil, fmt.Errorf("zoo: --out: %w", err)
	}
	if err := z.loadRows(); err != nil {
		return nil, err
	}
	return z, nil
}

// FitSize is the smallest input size at least size that spec takes: each
// side rounded up to a multiple of spec.Multiple, and at least its
// minimum.
func FitSize(spec models.Spec, size [2]int) [2]int {
	m, lo := int(max(spec.Multiple, 1)), int(spec.MinSide())
	var out [2]int
	for i, v := range size {
		v = max(v, lo)
		out[i] = (v + m - 1) / m * m
	}
	return out
}

// Select resolves a --models list: nil, empty or "all" is every
// registered model; otherwise the named ones (each registered), in the
// registry's order, without repeats.
func Select(names []string) ([]string, error) {
	all := models.Names()
	var want []string
	for _, n := range names {
		for _, part := range strings.Split(n, ",") {
			if part = strings.ToLower(strings.TrimSpace(part)); part != "" {
				want = append(want, part)
			}
		}
	}
	if len(want) == 0 || slices.Contains(want, "all") {
		if len(want) > 1 {
			return nil, fmt.Errorf("zoo: --models: \"all\" cannot be combined with names")
		}
		return all, nil
	}
	for _, n := range want {
		if _, ok := models.Lookup(n); !ok {
			return nil, fmt.Errorf("zoo: --models: unknown model %q (registered: %s)", n, strings.Join(all, ", "))
		}
	}
	var out []string
	for _, n := range all {
		if slices.Contains(want, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// loadRows reads the finished rows in the output directory: every
// OUT/*/zoo-row.json, of any model, selected or not. A row of another
// protocol is an error.
func (z *zooRun) loadRows() error {
	paths, err := filepath.Glob(filepath.Join(z.opt.Out, "*", RowFile))
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
			return fmt.Errorf("zoo: %s: %w (remove it to train the model again)", p, err)
		}
		if d := r.Protocol.diff(z.table.Protocol); d != "" {
			return fmt.Errorf("zoo: --out %s holds another protocol: %s has %s here; use another --out, or remove that run to train it anew",
				z.opt.Out, p, d)
		}
		z.rows[r.Model] = r
	}
	return nil
}

func (z *zooRun) emit(e Event) {
	if z.opt.OnEvent != nil {
		z.opt.OnEvent(e)
	}
}

func (z *zooRun) run(ctx context.Context) (*Table, error) {
	n := len(z.names)
	z.emit(Event{Kind: "start", N: n, Epochs: z.table.Protocol.Epochs,
		Message: fmt.Sprintf("%d models, %s; output %s", n, z.table.Protocol.summary(), z.opt.Out)})
	for _, name := range z.names {
		if !z.done(name) {
			z.todo++
		}
	}
	if err := z.write(); err != nil {
		return nil, err
	}
	for k, name := range z.names {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("zoo: interrupted before %s: %w", name, err)
		}
		if z.done(name) {
			r := z.rows[name]
			if z.needsPrediction(r) {
				z.predict(ctx, &r)
				if err := z.saveRow(r); err != nil {
					return nil, err
				}
				if err := z.write(); err != nil {
					return nil, err
				}
			}
			z.emit(Event{Kind: "skip", K: k + 1, N: n, Model: name, Row: &r})
			continue
		}
		r, err := z.model(ctx, k, name)
		if err != nil {
			return nil, err
		}
		z.todo--
		if err := z.saveRow(r); err != nil {
			return nil, err
		}
		if err := z.write(); err != nil {
			return nil, err
		}
		z.emit(Event{Kind: "row", K: k + 1, N: n, Model: name, Row: &r, ZooETA: z.zooETA(0, false)})
	}
	z.emit(Event{Kind: "done", N: n, Files: z.table.Files(), Message: z.table.tally()})
	return &z.table, nil
}

// done reports whether name has a row to keep.
func (z *zooRun) done(name string) bool {
	r, ok := z.rows[name]
	return ok && (r.Status == StatusOK || !z.opt.RetryFailed)
}

func (z *zooRun) saveRow(r Row) error {
	z.rows[r.Model] = r
	dir := filepath.Join(z.opt.Out, r.Model)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("zoo: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("zoo: row of %s: %w", r.Model, err)
	}
	return atomicfile.Write(filepath.Join(dir, RowFile), func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// model trains, tests and predicts one model and returns its row; the
// error is only for an interrupted zoo or a child that cannot be run.
func (z *zooRun) model(ctx context.Context, k int, name string) (Row, error) {
	p := z.table.Protocol
	spec, _ := models.Lookup(name)
	dir := filepath.Join(z.opt.Out, name)
	r := Row{Model: name, Status: StatusFailed, RefWidth: spec.DefaultWidth, RefParams: spec.RefParams, Run: name, Protocol: p,
		SecondsPerEpoch: metric.Score(math.NaN()), ImagesPerSecond: metric.Score(math.NaN())}
	n := len(z.names)
	fail := func(reason, msg string) (Row, error) {
		r.Reason, r.Error = reason, msg
		r.Finished = time.Now().UTC()
		return r, nil
	}
	r.Size = p.Size
	if err := spec.CheckSize(int64(p.Size[0]), int64(p.Size[1])); err != nil {
		if !p.FitSize {
			return fail(ReasonSize, err.Error())
		}
		r.Size = FitSize(spec, p.Size)
		r.SizeNote = fmt.Sprintf("trained and tested at %d×%d, not %d×%d: %v", r.Size[0], r.Size[1], p.Size[0], p.Size[1], err)
	}
	w, err := ResolveWidth(spec, WidthRule{Scale: p.WidthScale, Min: p.MinWidth}, z.cfg)
	r.Width, r.Params, r.WidthNote = w.Width, w.Params, w.Note
	if err != nil {
		r.Width = w.Scaled
		return fail(ReasonWidth, err.Error())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, fmt.Errorf("zoo: %w", err)
	}
	prev, hadRow := z.rows[name]
	resume := false
	if _, err := os.Stat(filepath.Join(dir, train.LastFile)); err == nil {
		resume = !hadRow || prev.Reason == ReasonTimeout
	}
	for _, f := range []string{report.JSONFile, RowFile, PredictionFile} {
		_ = os.Remove(filepath.Join(dir, f)) // stale: this attempt writes them anew
	}
	z.curStart = time.Now()
	z.emit(Event{Kind: "model", K: k + 1, N: n, Model: name, Width: r.Width, Params: r.Params, Epochs: p.Epochs,
		ZooETA: z.zooETA(0, true), Message: strings.TrimSpace(r.WidthNote + "\n" + r.SizeNote)})
	log, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return r, fmt.Errorf("zoo: %w", err)
	}
	defer log.Close()
	args := z.trainArgs(name, r.Width, r.Size, dir, resume)
	fmt.Fprintf(log, "=== %s: jmedseg %s\n", time.Now().UTC().Format(time.RFC3339), strings.Join(args, " "))

	mctx, cancel := ctx, context.CancelFunc(func() {})
	if z.opt.Timeout > 0 {
		mctx, cancel = context.WithTimeout(ctx, z.opt.Timeout)
	}
	defer cancel()
	var secs []float64
	onLine := func(line []byte) {
		var e train.Event
		if json.Unmarshal(line, &e) != nil {
			return
		}
		if e.Kind == "info" && e.Message != "" {
			z.emit(Event{Kind: "info", K: k + 1, N: n, Model: name, Message: e.Message})
		}
		if e.Kind != "epoch" || e.Record == nil {
			return
		}
		secs = append(secs, e.Record.Seconds)
		eta := time.Duration(mean(secs) * float64(e.Epochs-e.Epoch) * float64(time.Second))
		z.emit(Event{Kind: "epoch", K: k + 1, N: n, Model: name, Epoch: e.Epoch, Epochs: e.Epochs, Record: e.Record,
			ETA: eta, ZooETA: z.zooETA(eta, true)})
	}
	ex, err := z.runner.Run(mctx, args, onLine, log)
	if err != nil {
		return r, err
	}
	if ctx.Err() != nil {
		return r, fmt.Errorf("zoo: interrupted while training %s (its state is saved; rerun to continue): %w", name, ctx.Err())
	}
	r.PeakRSS, r.WallSeconds, r.CPUSeconds = ex.PeakRSS, ex.Wall.Seconds(), ex.CPU.Seconds()
	rep, rerr := readReport(filepath.Join(dir, report.JSONFile))
	if rep != nil {
		r.fromReport(rep)
	}
	timedOut := mctx.Err() != nil
	switch {
	case ex.Code == 0 && rep != nil:
		r.Status = StatusOK
	case ex.Code == 0:
		r.Reason, r.Error = ReasonError, fmt.Sprintf("training finished but %v", rerr)
	default:
		r.Reason, r.Error = classify(ex, timedOut, z.opt.Timeout)
		if rep != nil {
			r.Status = StatusStopped // the best checkpoint was tested all the same
		}
	}
	if r.Status != StatusFailed {
		z.predict(ctx, &r)
	}
	z.trained = append(z.trained, time.Since(z.curStart))
	r.Finished = time.Now().UTC()
	return r, nil
}

// classify turns a failed child's exit into a reason and a message.
func classify(ex Exit, timedOut bool, timeout time.Duration) (string, string) {
	msg := ex.ErrorLine()
	low := strings.ToLower(msg)
	switch {
	case timedOut:
		return ReasonTimeout, fmt.Sprintf("stopped after the --model-timeout of %s (the state is saved; --retry-failed continues it)", timeout)
	case strings.Contains(low, "out of memory") || strings.Contains(low, "bad_alloc") || strings.Contains(low, "cannot allocate memory"):
		return ReasonOOM, msg
	case ex.Signal == "killed":
		if msg == "" {
			msg = "no message"
		}
		return ReasonOOM, "killed (SIGKILL), most likely by the kernel's out-of-memory killer; last output: " + msg
	case strings.Contains(low, "not finite"): // train.ErrNonFinite
		return ReasonNaN, msg
	case ex.Signal != "":
		return ReasonCrash, fmt.Sprintf("ended by signal %s: %s", ex.Signal, msg)
	}
	if msg == "" {
		msg = "exit status " + strconv.Itoa(ex.Code)
	}
	return ReasonError, msg
}

func (z *zooRun) trainArgs(name string, width int64, size [2]int, dir string, resume bool) []string {
	p := z.table.Protocol
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	a := []string{"train", "--model", name, "--data", z.opt.Data, "--out", dir, "--json",
		"--epochs", strconv.Itoa(p.Epochs), "--batch", strconv.Itoa(p.Batch), "--lr", f(p.LR), "--optimizer", p.Optimizer,
		"--loss", p.Loss, "--size", fmt.Sprintf("%dx%d", size[0], size[1]),
		"--seed", strconv.FormatUint(p.Seed, 10), "--device", z.opt.Device}
	if width > 0 {
		a = append(a, "--width", strconv.FormatInt(width, 10))
	}
	if p.Decay != 0 {
		a = append(a, "--weight-decay", f(p.Decay))
	}
	for _, b := range []struct {
		on   bool
		flag string
	}{{p.Poly, "--poly"}, {p.Aug, "--aug"}, {p.Geometric, "--geometric"}, {resume, "--resume"}} {
		if b.on {
			a = append(a, b.flag)
		}
	}
	if p.LimitBatches > 0 {
		a = append(a, "--limit-batches", strconv.Itoa(p.LimitBatches))
	}
	if z.opt.Threads > 0 {
		a = append(a, "--threads", strconv.Itoa(z.opt.Threads))
	}
	if z.opt.Workers > 0 {
		a = append(a, "--workers", strconv.Itoa(z.opt.Workers))
	}
	return a
}

// zooETA estimates the time left for the whole zoo with cur left for the
// model in training (if one is: training counts it in todo): the models
// after it at the mean time of those trained so far (or at the current
// one's projected time).
func (z *zooRun) zooETA(cur time.Duration, training bool) time.Duration {
	rest := z.todo
	if training {
		rest--
	}
	if rest < 0 {
		rest = 0
	}
	var per time.Duration
	switch {
	case len(z.trained) > 0:
		for _, d := range z.trained {
			per += d
		}
		per /= time.Duration(len(z.trained))
	case training && cur > 0:
		per = time.Since(z.curStart) + cur
	default:
		return 0
	}
	return cur + time.Duration(rest)*per
}

func readReport(path string) (*report.Run, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("no %s", path)
	}
	var r report.Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// metricMean is the mean of the finite values, NaN when there are none.
func metricMean(v []float64) metric.Score {
	var fin []float64
	for _, x := range v {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			fin = append(fin, x)
		}
	}
	return metric.Score(mean(fin))
}
