package infer_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// JITTol bounds |jit − eager| / (1 + |eager|) for the engine's outputs.
const jitTol = 1e-5

// randomiseStats gives m's BatchNorms running statistics other than 0 and
// 1, so that folding them is tested, and puts m in evaluation mode.
func randomiseStats(t *testing.T, m nn.Module) {
	t.Helper()
	for _, b := range m.NamedBuffers() {
		var src *torch.Tensor
		switch {
		case strings.HasSuffix(b.Name, "running_mean"):
			src = torch.Randn(b.Tensor.Shape()).MulScalar(0.1)
		case strings.HasSuffix(b.Name, "running_var"):
			src = torch.Rand(b.Tensor.Shape()).AddScalar(0.5)
		default:
			continue
		}
		torch.NoGrad(func() { require.NoError(t, b.Tensor.CopyFrom(src)) })
		src.Free()
	}
	m.Eval()
}

// logitsOf runs f on x in inference mode and returns its values.
func logitsOf(t *testing.T, f nn.Module, x *torch.Tensor) []float32 {
	t.Helper()
	var v []float32
	var err error
	torch.InferenceMode(func() {
		s := torch.NewScope()
		defer s.Close()
		v, err = s.Track(f.Forward(s.Track(x.Shallow()))).Float32s()
	})
	require.NoError(t, err)
	return v
}

// The optimised trace gives the eager Go forward's outputs to 1e-5 on
// models of every kind (plain convolutional, dilated, attention gates,
// transformers, multi-resolution, a spatial transformer in front), at the
// test width and smallest input, batch 2, with the model's BatchNorms as
// they are and folded (models.Fuse, the Predictor's default); a second
// call reuses the shape's module, a new shape gets its own; nothing leaks.
func TestJITMatchesEager(t *testing.T) {
	names := []string{"unet", "deeplab", "attunet", "multires", "setr", "segnet", "unet+stn"}
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			stn := strings.HasSuffix(name, "+stn")
			s, ok := models.Lookup(strings.TrimSuffix(name, "+stn"))
			require.True(t, ok, name)
			side := int(s.MinSide())
			torch.ManualSeed(uint64(i + 1))
			info := models.Info{Model: s.Name, Config: models.Config{InChannels: 3, Classes: 3, Width: s.TestWidth}, Size: [2]int{side, side}, STN: stn}
			for _, fuse := range []bool{false, true} {
				m, err := models.Build(info)
				require.NoError(t, err)
				randomiseStats(t, m)
				if fuse {
					_, err := models.Fuse(m)
					require.NoError(t, err)
				}
				x := torch.Randn([]int64{2, 3, int64(side), int64(side)})
				want := logitsOf(t, m, x)
				l0 := torch.SettleLeaks()
				live, _ := torch.Live()
				j, err := infer.NewJIT(m, name)
				require.NoError(t, err)
				start := time.Now()
				got := logitsOf(t, j, x)
				built := time.Since(start)
				start = time.Now()
				again := logitsOf(t, j, x)
				ran := time.Since(start)
				rel, abs := relDiff(got, want)
				t.Logf("fuse=%v: max rel %.2g (abs %.2g); first call %v, second %v", fuse, rel, abs, built.Round(time.Millisecond), ran.Round(time.Millisecond))
				assert.LessOrEqual(t, rel, jitTol, "fuse=%v", fuse)
				assert.Equal(t, got, again, "the same module, the same result")
				assert.Equal(t, 1, j.Shapes())

				one := x.Narrow(0, 0, 1)
				rel1, _ := relDiff(logitsOf(t, j, one), want[:len(want)/2])
				assert.LessOrEqual(t, rel1, jitTol, "batch 1")
				assert.Equal(t, 2, j.Shapes(), "a module per shape")
				one.Free()
				after, _ := torch.Live()
				assert.Equal(t, live, after, "live tensors: the engine's calls leave none")
				assert.Equal(t, l0, torch.SettleLeaks(), "tensors the garbage collector freed")
				j.Free() // frees m
				x.Free()
			}
		})
	}
}

// relDiff is max |a − b| / (1 + |b|) and max |a − b|.
func relDiff(a, b []float32) (rel, abs float64) {
	if len(a) != len(b) {
		return 1e30, 1e30
	}
	for i := range b {
		d := float64(a[i]) - float64(b[i])
		if d < 0 {
			d = -d
		}
		w := float64(b[i])
		if w < 0 {
			w = -w
		}
		rel, abs = max(rel, d/(1+w)), max(abs, d)
	}
	return rel, abs
}

// valueDependent scales its input by the sign of its mean: a decision on a
// tensor's value, which a trace fixes at the traced input's.
type valueDependent struct{ nn.Base }

func (v *valueDependent) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		m, err := x.Narrow(3, 0, 1).Mean().Item()
		if err != nil {
			return torch.FromError(err)
		}
		if m > 0 {
			return x.MulScalar(2)
		}
		return x.MulScalar(-3)
	})
}

// failing fails its forward.
type failing struct{ nn.Base }

func (failing) Forward(*torch.Tensor) *torch.Tensor {
	return torch.FromError(errors.New("no forward here"))
}

// Failures are errors naming the model: a forward the trace cannot follow
// (caught by the check on the flipped input), a forward that fails, a
// model in training mode, an unknown engine, jit with autocast. Only
// modules in use survive past MaxJITShapes shapes.
func TestJITErrorsAndCache(t *testing.T) {
	x := torch.Randn([]int64{1, 1, 8, 8})
	defer x.Free()
	// The mean of the first column decides; flipped, the last column's does.
	torch.NoGrad(func() {
		col := x.Narrow(3, 0, 1)
		defer col.Free()
		require.NoError(t, col.CopyFrom(col.Abs().AddScalar(1)))
		last := x.Narrow(3, 7, 1)
		defer last.Free()
		require.NoError(t, last.CopyFrom(last.Abs().Neg().AddScalar(-1)))
	})
	vd := &valueDependent{}
	vd.Eval()
	j, err := infer.NewJIT(vd, "valuenet")
	require.NoError(t, err)
	defer j.Free()
	y := j.Forward(x)
	assert.ErrorContains(t, y.Err(), "valuenet")
	assert.ErrorContains(t, y.Err(), "does not reproduce the model")
	y = j.Forward(x) // the failure is remembered, not rebuilt
	assert.ErrorContains(t, y.Err(), "does not reproduce the model")

	f := &failing{}
	f.Eval()
	jf, err := infer.NewJIT(f, "failnet")
	require.NoError(t, err)
	defer jf.Free()
	y = jf.Forward(x)
	assert.ErrorContains(t, y.Err(), "failnet (input [1 1 8 8]): the model does not trace: jit: tracing forward: no forward here")

	tr := &failing{}
	tr.Train(true)
	_, err = infer.NewJIT(tr, "trainnet")
	assert.ErrorContains(t, err, "training mode")

	assert.ErrorContains(t, infer.CheckEngine("fast", ""), `engine "fast": want eager or jit`)
	assert.ErrorContains(t, infer.CheckEngine("jit", "bf16"), "does not combine with amp")
	assert.NoError(t, infer.CheckEngine("", ""))
	assert.NoError(t, infer.CheckEngine("JIT", ""))

	// The cache keeps MaxJITShapes modules.
	torch.ManualSeed(3)
	m, err := models.New("unet", models.Config{InChannels: 1, Classes: 2, Width: 4})
	require.NoError(t, err)
	m.Eval()
	ju, err := infer.NewJIT(m, "unet")
	require.NoError(t, err)
	defer ju.Free()
	l0 := torch.SettleLeaks()
	live, _ := torch.Live()
	for n := int64(1); n <= infer.MaxJITShapes+2; n++ {
		xb := torch.Randn([]int64{n, 1, 16, 16})
		v := logitsOf(t, ju, xb)
		want := logitsOf(t, m, xb)
		rel, _ := relDiff(v, want)
		assert.LessOrEqual(t, rel, jitTol, "batch %d", n)
		xb.Free()
	}
	assert.Equal(t, infer.MaxJITShapes, ju.Shapes())
	after, _ := torch.Live()
	assert.Equal(t, live, after)
	assert.Equal(t, l0, torch.SettleLeaks(), "tensors the garbage collector freed")
}

// A Predictor with the jit engine predicts what the eager one does: plain
// logits, a sliding window with TTA (window batches of two shapes), and
// from several goroutines at once.
func TestPredictorJITEngine(t *testing.T) {
	path := modelFile(t, models.DefaultNormalization())
	imgs := images(3)
	eager, err := infer.NewPredictorWith(path, torch.CPU, infer.LoadOptions{})
	require.NoError(t, err)
	defer eager.Close()
	jp, err := infer.NewPredictorWith(path, torch.CPU, infer.LoadOptions{Engine: "jit"})
	require.NoError(t, err)
	defer jp.Close()
	a, err := eager.Logits(imgs)
	require.NoError(t, err)
	b, err := jp.Logits(imgs)
	require.NoError(t, err)
	require.Len(t, b, len(a))
	for i := range a {
		rel, _ := relDiff(b[i].Data, a[i].Data)
		assert.LessOrEqual(t, rel, jitTol, "image %d", i)
	}
	o := infer.Options{SlidingWindow: true, Overlap: 0.5, WindowBatch: 3, TTA: true}
	img := images(1)[0]
	pe, err := eager.PredictWith(img, o)
	require.NoError(t, err)
	pj, err := jp.PredictWith(img, o)
	require.NoError(t, err)
	rel, _ := relDiff(pj.Probs.Data, pe.Probs.Data)
	assert.LessOrEqual(t, rel, jitTol)

	// Concurrent calls on a fresh engine: one goroutine builds each shape,
	// the others wait for it; all get the eager logits.
	jc, err := infer.NewPredictorWith(path, torch.CPU, infer.LoadOptions{Engine: "jit"})
	require.NoError(t, err)
	defer jc.Close()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	rels := make([]float64, 4)
	for g := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls, err := jc.Logits(imgs[:1+g%2])
			if errs[g] = err; err == nil {
				rels[g], _ = relDiff(ls[0].Data, a[0].Data)
			}
		}()
	}
	wg.Wait()
	for g := range errs {
		require.NoError(t, errs[g], "goroutine %d", g)
		assert.LessOrEqual(t, rels[g], jitTol, "goroutine %d", g)
	}

	_, err = infer.NewPredictorWith(path, torch.CPU, infer.LoadOptions{Engine: "jit", AMP: "bf16"})
	assert.ErrorContains(t, err, "does not combine with amp")
	_, err = infer.NewPredictorWith(path, torch.CPU, infer.LoadOptions{Engine: "turbo"})
	assert.ErrorContains(t, err, `engine "turbo"`)
}
