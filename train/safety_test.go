package train_test

import (
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/train"
)

// Issue 12: a run directory holding a trained model is not replaced without
// Force (or continued without Resume), and a run that fails before its
// first epoch rewrites neither the model nor the report there.
func TestRefusesTrainedRunDir(t *testing.T) {
	out := t.TempDir()
	o := small(t, out)
	o.Epochs, o.LimitBatches = 1, 1
	tr, err := train.New(o)
	require.NoError(t, err)
	_, err = tr.Run(context.Background())
	tr.Close()
	require.NoError(t, err)
	files := []string{train.BestFile, train.LastFile, "report.md", "report.json"}
	read := func() map[string]string {
		m := map[string]string{}
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(out, f))
			require.NoError(t, err)
			m[f] = string(b)
		}
		return m
	}
	before := read()

	_, err = train.New(o)
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(out, train.BestFile))
	assert.Contains(t, err.Error(), "--resume")
	assert.Contains(t, err.Error(), "--force")

	o.Resume, o.Force = true, true
	_, err = train.New(o)
	assert.ErrorContains(t, err, "give one")

	// Forced, failing at batch 1: the old model and report stay.
	o.Resume = false
	o.Optimizer, o.LR, o.LimitBatches = "sgd", 1e30, 3 // not finite at batch 2
	tr, err = train.New(o)
	require.NoError(t, err)
	run, err := tr.Run(context.Background())
	tr.Close()
	require.ErrorIs(t, err, train.ErrNonFinite)
	assert.Nil(t, run)
	assert.Equal(t, before, read(), "a failed run rewrites nothing")
}

func TestBadNumericOptions(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*train.Options)
		want string
	}{
		{"weight decay adam", func(o *train.Options) { o.Decay = -1 }, "--weight-decay -1"},
		{"weight decay adamw", func(o *train.Options) { o.Decay, o.Optimizer = -1, "adamw" }, "--weight-decay -1"},
		{"weight decay sgd", func(o *train.Options) { o.Decay, o.Optimizer = -1, "sgd" }, "--weight-decay -1"},
		{"weight decay NaN", func(o *train.Options) { o.Decay = nan() }, "--weight-decay NaN"},
		{"lr NaN", func(o *train.Options) { o.LR = nan() }, "--lr NaN"},
		{"lr Inf", func(o *train.Options) { o.LR = inf() }, "--lr +Inf"},
		{"lr negative", func(o *train.Options) { o.LR = -1 }, "--lr -1"},
		{"epochs negative", func(o *train.Options) { o.Epochs = -1 }, "--epochs -1"},
		{"batch negative", func(o *train.Options) { o.Batch = -2 }, "--batch -2"},
		{"batch 1 pooled BN", func(o *train.Options) { o.Model, o.Batch, o.Size = "pspnet", 1, [2]int{96, 96} }, "--batch 1: pspnet batch-normalises a 1×1 pooled map"},
		{"threads negative", func(o *train.Options) { o.Threads = -1 }, "--threads -1"},
		{"threads too many", func(o *train.Options) { o.Threads = 100000 }, "more than " + strconv.Itoa(4*runtime.NumCPU())},
		{"workers negative", func(o *train.Options) { o.Workers = -1 }, "--workers -1"},
		{"limit batches", func(o *train.Options) { o.LimitBatches = -1 }, "--limit-batches -1"},
		{"width", func(o *train.Options) { o.Net.Width = -4 }, "--width -4"},
		{"in channels", func(o *train.Options) { o.Net.InChannels = -2 }, "--in-channels -2"},
		{"in channels huge", func(o *train.Options) { o.Net.InChannels = 1000 }, "--in-channels 1000"},
		{"size", func(o *train.Options) { o.Size = [2]int{1 << 20, 64} }, "--size"},
		{"loss zero weight", func(o *train.Options) { o.Loss = "ce:0" }, "--loss"},
		{"loss class weights", func(o *train.Options) { o.Loss = "ce(weight=0.2/0.3/0.5)" }, "3 class weights for 2 classes"},
		{"loss smoothing", func(o *train.Options) { o.Loss = "ce(smoothing=2)" }, "smoothing=2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := small(t, t.TempDir())
			tc.mod(&o)
			var tr *train.Trainer
			var err error
			require.NotPanics(t, func() {
				tr, err = train.New(o)
				if err == nil {
					tr.Close()
				}
			})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func nan() float64 { z := 0.0; return z / z }
func inf() float64 { z := 0.0; return 1 / z }

// An unwritable run directory is an error from New, before any epoch.
func TestUnwritableOut(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "ro")
	require.NoError(t, os.Mkdir(out, 0o555))
	if f, err := os.CreateTemp(out, "x"); err == nil { // root ignores the mode
		f.Close()
		os.Remove(f.Name())
		out = "/proc/self"
	}
	o := small(t, out)
	tr, err := train.New(o)
	if err == nil {
		tr.Close()
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--out")
	assert.Contains(t, err.Error(), "not writable")
}

// ce(ignore=255), as documented, trains on masks that hold 255 where the
// label is unknown: the loader accepts the void label, the loss and the
// metrics skip it. Without the ignore option such masks are refused.
func TestIgnoreVoidLabel(t *testing.T) {
	ds := filepath.Join(t.TempDir(), "brain")
	require.NoError(t, os.CopyFS(ds, os.DirFS(brain(t))))
	masks, err := filepath.Glob(filepath.Join(ds, "*", "masks", "*.png"))
	require.NoError(t, err)
	require.NotEmpty(t, masks)
	for _, p := range masks {
		m, err := data.ReadMask(p)
		require.NoError(t, err)
		img := image.NewGray(image.Rect(0, 0, m.W, m.H))
		for i, v := range m.Pix {
			img.Pix[i] = uint8(v)
		}
		for x := range m.W { // an unlabelled top row
			img.Pix[x] = 255
		}
		f, err := os.Create(p)
		require.NoError(t, err)
		require.NoError(t, png.Encode(f, img))
		require.NoError(t, f.Close())
	}
	o := small(t, t.TempDir())
	o.Data, o.Epochs, o.LimitBatches = ds, 1, 1
	o.Loss = "ce(ignore=255)+dice(ignore=255)"
	tr, err := train.New(o)
	require.NoError(t, err)
	run, err := tr.Run(context.Background())
	tr.Close()
	require.NoError(t, err)
	require.NotEmpty(t, run.Tests)

	o.Out, o.Loss = t.TempDir(), "ce"
	tr, err = train.New(o)
	if err == nil {
		err = tr.Fit(context.Background())
		tr.Close()
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), "out of range")
}
