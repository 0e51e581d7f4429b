package train

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/loss"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/report"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// Run trains, then tests the best checkpoint on every test split and writes
// the report (report.md, report.json, curves, overlays) into the run
// directory. The report is written even when training stops early on a
// NaN loss or an interrupt, as long as a best checkpoint exists.
func (t *Trainer) Run(ctx context.Context) (*report.Run, error) {
	fitErr := t.Fit(ctx)
	bestPath := filepath.Join(t.opt.Out, BestFile)
	if t.prog.BestEpoch == 0 {
		// No epoch of this run (or of the run it resumes) was saved as the
		// best: a best.safetensors there is another run's; report nothing.
		if fitErr != nil {
			return nil, fitErr
		}
		return nil, fmt.Errorf("train: no epoch was validated, so there is no best checkpoint at %s", bestPath)
	}
	if _, err := os.Stat(bestPath); err != nil && t.rank0() {
		if fitErr != nil {
			return nil, fitErr
		}
		return nil, fmt.Errorf("train: no best checkpoint at %s", bestPath)
	}
	// Interrupted: leave quickly, the state is saved. Distributed ranks go
	// by Fit's agreed stop, so that none is left alone in a collective.
	if (t.world() < 2 && ctx.Err() != nil) || errors.Is(fitErr, context.Canceled) {
		return nil, fitErr
	}
	if t.world() > 1 && fitErr != nil {
		return nil, fitErr // testing takes every rank, and one has failed
	}
	best, info, err := t.bestModel(bestPath)
	if err != nil {
		return nil, err
	}
	defer best.Free()
	r := &report.Run{Title: fmt.Sprintf("%s on %s", t.info.Model, filepath.Base(filepath.Clean(t.opt.Data))), Model: info.Model,
		Params: best.NumParams(), Config: t.opt, Data: t.opt.Data, Device: t.dev.String(), Started: t.started,
		History: t.prog.History, BestEpoch: info.Epoch}
	if fitErr != nil {
		r.Notes = append(r.Notes, "Training stopped early: "+fitErr.Error())
	}
	setup := t.evalSetup(best)
	setup.info, setup.classes = info, info.Classes
	testCtx := ctx
	if t.world() > 1 {
		setup.group = t.opt.Group
		testCtx = context.WithoutCancel(ctx) // every rank takes part to the end
	}
	tests, skipped, err := testSplitsOf(testCtx, setup, t.testSplits(), false, t.opt.Out, t.opt.Overlays, t.emit)
	if err != nil {
		return nil, err
	}
	if !t.rank0() {
		return r, fitErr // rank 0 writes the report
	}
	for _, s := range skipped {
		r.Notes = append(r.Notes, s)
	}
	r.Tests = tests
	r.WallSeconds = time.Since(t.started).Seconds()
	if _, err := report.Curves(t.opt.Out, t.prog.History); err != nil {
		return nil, err
	}
	if err := report.Write(t.opt.Out, *r); err != nil {
		return nil, err
	}
	return r, fitErr
}

// bestModel is the model to test: best.safetensors, which rank 0 reads
// and, in a distributed run, broadcasts into the other ranks' copies of
// the model (their --out need not be on a shared file system).
func (t *Trainer) bestModel(path string) (nn.Module, models.Info, error) {
	if t.world() < 2 {
		m, info, err := models.Load(path)
		if err == nil {
			if err = m.To(t.dev); err != nil {
				m.Free()
			}
		}
		return m, info, err
	}
	g := t.opt.Group
	var m nn.Module
	var info models.Info
	var err error
	if g.Rank() == 0 {
		if m, info, err = models.Load(path); err == nil {
			if err = m.To(t.dev); err != nil {
				m.Free()
			}
		}
	} else if m, err = models.New(t.opt.Model, t.info.Config); err == nil {
		if t.opt.STN {
			m = models.NewWithSTN(t.info.Config.InChannels, m)
		}
		if err = m.To(t.dev); err != nil {
			m.Free()
		}
		info = t.info
		info.Epoch, info.ValDice = t.prog.BestEpoch, t.prog.Best
	}
	// Every rank takes part in the broadcast even after a failure here;
	// the failed one then leaves, and the others' next collective says so.
	if err != nil {
		return nil, info, err
	}
	if err := broadcastState(g, m.StateDict()); err != nil {
		m.Free()
		return nil, info, distErr(g, "broadcasting the best weights", err)
	}
	return m, info, nil
}

// testSplits are every split with masks other than train and val.
func (t *Trainer) testSplits() []string {
	var out []string
	for _, s := range t.ds.Splits() {
		if s != t.opt.TrainSplit && s != t.opt.ValSplit {
			out = append(out, s)
		}
	}
	return out
}

// testSplitsOf evaluates a model on splits of its data set, draws overlays of
// the best and worst images of each, and returns the report sections. Every
// image of a split tested must have a mask: one without is an error naming
// it. A split named by the person (named) must have images; of the splits
// chosen by default, an empty one or one without any mask (unlabelled) is
// skipped, and skipped says so.
func testSplitsOf(ctx context.Context, e evalSetup, splits []string, named bool, out string, overlays int, emit func(Event)) (tests []report.Test, skipped []string, err error) {
	for _, split := range splits {
		samples, err := e.ds.Split(split)
		if err != nil {
			return nil, nil, err
		}
		var noMask []string
		for _, s := range samples {
			if s.Mask == "" {
				noMask = append(noMask, s.Image)
			}
		}
		switch {
		case len(samples) == 0 && named:
			return nil, nil, fmt.Errorf("testing %s: split %q of %s has no images", split, split, e.ds.Dir)
		case len(samples) == 0:
			skipped = append(skipped, fmt.Sprintf("split %s has no images: not tested", split))
			continue
		case len(noMask) == len(samples) && !named:
			skipped = append(skipped, fmt.Sprintf("split %s has no masks (unlabelled): not tested", split))
			continue
		case len(noMask) > 0:
			return nil, nil, fmt.Errorf("testing %s: %d of its %d images have no mask, the first %s; every image tested needs one (jmedseg data check %s lists them)",
				split, len(noMask), len(samples), noMask[0], e.ds.Dir)
		}
		// Two passes would double the cost; keep every map (small at these sizes).
		var ev *Evaluation
		if e.group != nil {
			ev, err = distEvaluate(ctx, e, e.group, samples, func(string) bool { return true })
		} else {
			var loader *data.Loader
			if loader, err = e.loader(samples); err != nil {
				return nil, nil, fmt.Errorf("testing %s: %w", split, err)
			}
			es := e
			if emit != nil {
				es.images = func(done int) { emit(Event{Kind: "test_images", Split: split, Step: done, Steps: len(samples)}) }
			}
			ev, err = evaluate(ctx, es, loader, bySample(samples), func(string) bool { return true })
		}
		if err != nil {
			return nil, nil, fmt.Errorf("testing %s: %w", split, err)
		}
		test := report.Test{Split: split, Metrics: ev.Metrics}
		if e.group == nil || e.group.Rank() == 0 { // rank 0 alone writes
			paths, err := drawOverlays(out, split, ev, overlays)
			if err != nil {
				return nil, nil, err
			}
			test.Overlays = paths
		}
		tests = append(tests, test)
		if emit != nil {
			d := float64(ev.Metrics.Split.Foreground.Dice)
			emit(Event{Kind: "test", Split: split, ForegroundDSC: &d})
		}
	}
	return tests, skipped, nil
}

func drawOverlays(out, split string, ev *Evaluation, n int) ([]string, error) {
	return report.SaveOverlays(out, split, ev.Metrics, n, func(id string) (report.Sample, error) {
		img, err := data.ReadImage(ev.Path[id])
		if err != nil {
			return report.Sample{}, err
		}
		return report.Sample{Image: resizeImage(img, ev.Size[1], ev.Size[0]), Truth: ev.Truth[id], Pred: ev.Pred[id], W: ev.Size[1], H: ev.Size[0]}, nil
	})
}

// Test loads a model checkpoint and evaluates it on splits of a data set,
// writing metrics, overlays and a report into out.
func Test(ctx context.Context, checkpoint, dataDir string, splits []string, out string, device string, batch int) (*report.Run, error) {
	return TestWith(ctx, checkpoint, dataDir, data.OpenOptions{}, splits, out, device, batch)
}

// TestWith is Test on a data set opened with open (a cross-validation
// fold: its val split is that fold's held-out cases).
func TestWith(ctx context.Context, checkpoint, dataDir string, open data.OpenOptions, splits []string, out string, device string, batch int) (*report.Run, error) {
	return TestWithProgress(ctx, checkpoint, dataDir, open, splits, out, device, batch, nil)
}

// TestWithProgress is TestWith reporting to onEvent (when not nil) a
// "test_images" event after each batch (Step images of the split's Steps
// scored) and a "test" event after each split.
func TestWithProgress(ctx context.Context, checkpoint, dataDir string, open data.OpenOptions, splits []string, out string, device string, batch int, onEvent func(Event)) (*report.Run, error) {
	return TestPrepared(ctx, checkpoint, dataDir, open, splits, out, device, batch, onEvent, nil)
}

// Prepare turns a loaded model, on dev, into the module a test runs (its
// BatchNorms folded, another layout or engine: infer.LoadOptions.Prepare).
// The module returned owns m: its Free frees m.
type Prepare func(m nn.Module, info models.Info, dev torch.Device) (nn.Module, error)

// TestPrepared is TestWithProgress running the module prepare makes of
// the loaded model (nil: the model as loaded). The report's parameter
// count is the loaded model's.
func TestPrepared(ctx context.Context, checkpoint, dataDir string, open data.OpenOptions, splits []string, out string, device string, batch int, onEvent func(Event), prepare Prepare) (*report.Run, error) {
	dev, err := torch.ParseDevice(device)
	if err != nil {
		return nil, err
	}
	m, info, err := models.Load(checkpoint)
	if err != nil {
		return nil, err
	}
	defer func() { m.Free() }() // the prepared module, once there is one
	if err := m.To(dev); err != nil {
		return nil, err
	}
	params := m.NumParams()
	if prepare != nil {
		pm, err := prepare(m, info, dev)
		if err != nil {
			return nil, fmt.Errorf("test: %s: %w", checkpoint, err)
		}
		m = pm
	}
	ds, err := data.OpenWith(dataDir, open)
	if err != nil {
		return nil, err
	}
	// Without dataset.json (the reference layout) the data set does not say
	// its classes; the model's are taken.
	if n := ds.NumClasses(); n != len(info.Classes) && (n != 0 || ds.Manifest != nil) {
		return nil, fmt.Errorf("test: %s has %d classes, the model in %s predicts %d", dataDir, n, checkpoint, len(info.Classes))
	}
	named := len(splits) > 0
	if !named {
		for _, s := range ds.Splits() {
			if s != "train" && s != "val" {
				splits = append(splits, s)
			}
		}
	}
	for _, s := range splits {
		if _, err := ds.Split(s); err != nil {
			return nil, fmt.Errorf("test: --split: %w", err)
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	if batch <= 0 {
		batch = 8
	}
	setup := evalSetup{model: m, dev: dev, info: info, classes: info.Classes, ds: ds, batch: batch, spacing: spacingOf(ds, info.Size),
		lossFn: loss.CrossEntropy{IgnoreIndex: loss.NoIgnore}} // the checkpoint does not record its training loss
	start := time.Now()
	tests, skipped, err := testSplitsOf(ctx, setup, splits, named, out, 3, onEvent)
	if err != nil {
		return nil, fmt.Errorf("test: %w", err)
	}
	if len(tests) == 0 {
		return nil, fmt.Errorf("test: %s has no split to test (every split but train and val, with masks): %s; name one with --split",
			dataDir, strings.Join(skipped, "; "))
	}
	r := &report.Run{Notes: skipped, Title: fmt.Sprintf("%s tested on %s", info.Model, filepath.Base(filepath.Clean(dataDir))), Model: info.Model,
		Params: params, Config: info, Data: dataDir, Device: dev.String(), Started: start, BestEpoch: info.Epoch,
		Tests: tests, WallSeconds: time.Since(start).Seconds()}
	return r, report.Write(out, *r)
}
