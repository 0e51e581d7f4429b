package jit_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/jit"
)

// conv is a one-layer network whose weights live outside any scope, as a
// model's parameters do.
type conv struct{ w, b *torch.Tensor }

func newConv() *conv {
	return &conv{w: torch.Randn([]int64{4, 3, 3, 3}), b: torch.Randn([]int64{4})}
}

func (c *conv) free() { c.w.Free(); c.b.Free() }

func (c *conv) forward(x *torch.Tensor) *torch.Tensor {
	return torch.Conv2d(x.MulScalar(0.5), c.w, c.b, [2]int64{1, 1}, [2]int64{1, 1}, [2]int64{1, 1}, 1).Relu()
}

// run calls method on x into a [1, 4, 8, 8] result.
func run(t *testing.T, m *jit.Module, method string, x *torch.Tensor) []float32 {
	t.Helper()
	out := torch.Zeros([]int64{1, 4, 8, 8})
	defer out.Free()
	require.NoError(t, m.Run(method, x, out))
	return values(t, out)
}

func values(t *testing.T, x *torch.Tensor) []float32 {
	t.Helper()
	v, err := x.Float32s()
	require.NoError(t, err)
	return v
}

// A traced method reads the registered tensors as attributes (no tensor
// constants, and a change of the weight after tracing changes its
// result), computes what the Go function computes, on another input too,
// and survives Save and Load (torch::jit::load); tracing leaves no live
// tensor behind.
func TestTraceSaveLoad(t *testing.T) {
	torch.ManualSeed(1)
	c := newConv()
	defer c.free()
	live, _ := torch.Live()

	m, err := jit.New("conv net")
	require.NoError(t, err)
	defer m.Free()
	require.NoError(t, m.Register("layer.0.weight", c.w, false))
	require.NoError(t, m.Register("layer.0.bias", c.b, false))
	require.NoError(t, m.SetStrings("class_names", []string{"a", "b"}))
	require.NoError(t, m.SetInts("input_size", []int64{8, 8}))
	x := torch.Randn([]int64{1, 3, 8, 8})
	defer x.Free()
	require.NoError(t, m.Trace("forward", x, c.forward))
	n, numel, err := m.Constants("forward")
	require.NoError(t, err)
	assert.Zero(t, n, "tensor constants (%d elements): the weights were not mapped to attributes", numel)
	after, _ := torch.Live()
	assert.Equal(t, live+1, after, "live handles: only x is new")
	assert.Equal(t, x.Numel(), jit.HandleNumel(x), "the shim's view of a handle")

	x2 := torch.Randn([]int64{1, 3, 8, 8})
	defer x2.Free()
	s := torch.NewScope()
	defer s.Close()
	want := values(t, s.Track(c.forward(x2)))
	got := run(t, m, "forward", x2)
	assert.InDeltaSlice(t, want, got, 1e-6)

	var buf bytes.Buffer
	require.NoError(t, m.Save(&buf))
	path := filepath.Join(t.TempDir(), "m.pt")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	l, err := jit.Load(path)
	require.NoError(t, err)
	defer l.Free()
	assert.True(t, l.HasAttr("class_names"))
	assert.True(t, l.HasAttr("layer"))
	assert.Equal(t, got, run(t, l, "forward", x2), "loaded module")

	// The module shares the weight: changing it changes the traced result.
	torch.NoGrad(func() { require.NoError(t, c.w.MulScalarInPlace(2)) })
	changed := run(t, m, "forward", x2)
	assert.NotEqual(t, got, changed)
	assert.InDeltaSlice(t, values(t, s.Track(c.forward(x2))), changed, 1e-5)
}

// Failures are errors that say what failed, and leave the thread able to
// trace again: a failing function, a panicking one, one that makes a tensor
// from Go memory, a duplicate path, a second method of the same name, an
// attribute named like a method or tensor, bad TorchScript, a raise in a
// method, a result of another shape than the caller's, a missing file, a
// freed module.
func TestErrors(t *testing.T) {
	c := newConv()
	defer c.free()
	x := torch.Randn([]int64{1, 3, 8, 8})
	defer x.Free()
	m, err := jit.New("m")
	require.NoError(t, err)
	defer m.Free()
	require.NoError(t, m.Register("w", c.w, false))
	require.NoError(t, m.Register("b", c.b, true))

	err = m.Register("w", c.b, false)
	assert.ErrorContains(t, err, "w is registered already")
	err = m.Register("w.x", c.b, false)
	assert.ErrorContains(t, err, "not a module")

	boom := errors.New("boom")
	err = m.Trace("forward", x, func(*torch.Tensor) *torch.Tensor { return torch.FromError(boom) })
	assert.ErrorIs(t, err, boom)
	err = m.Trace("forward", x, func(*torch.Tensor) *torch.Tensor { panic("oops") })
	assert.ErrorContains(t, err, "panicked: oops")
	// A tensor made from Go memory inside the trace would be recorded as
	// uninitialised memory: refused, not silently wrong.
	err = m.Trace("forward", x, func(x *torch.Tensor) *torch.Tensor {
		k := torch.FromSlice([]float32{2}, []int64{1})
		defer k.Free()
		return x.Mul(k)
	})
	assert.ErrorContains(t, err, "uninitialised memory")
	// The tracer's state was reset: tracing works again on this thread.
	require.NoError(t, m.Trace("forward", x, c.forward))
	assert.ErrorContains(t, m.Trace("forward", x, c.forward), "already has a method forward")

	assert.ErrorContains(t, m.Define("def broken(self, x):\n    return undefined_name(x)\n"), "undefined_name")
	require.NoError(t, m.Define("def twice(self, x: Tensor) -> Tensor:\n    if x.dim() != 4:\n        raise ValueError(\"want 4-D\")\n    return self.forward(x) * 2\n"))
	bad := torch.Randn([]int64{3, 8, 8})
	defer bad.Free()
	out := torch.Zeros([]int64{1, 4, 8, 8})
	defer out.Free()
	assert.ErrorContains(t, m.Run("twice", bad, out), "want 4-D")
	assert.ErrorContains(t, m.Run("nothing", x, out), "nothing")
	small := torch.Zeros([]int64{1, 4, 4, 4})
	defer small.Free()
	assert.ErrorContains(t, m.Run("forward", x, small), "expected")
	assert.ErrorContains(t, m.SetInt("w", 1), "already has an attribute w")
	assert.ErrorContains(t, m.SetInt("twice", 1), "already has a method twice")

	_, err = jit.Load(filepath.Join(t.TempDir(), "missing.pt"))
	assert.ErrorContains(t, err, "missing.pt")

	m.Free()
	m.Free()
	assert.ErrorIs(t, m.Register("z", c.w, false), torch.ErrFreed)
	assert.ErrorIs(t, m.Run("forward", x, out), torch.ErrFreed)
}

// The shim reads a handle as jmedseg.cc lays it out (an at::Tensor first).
func TestHandleLayout(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	for _, shape := range [][]int64{{3}, {2, 5, 7}, {}} {
		x := torch.Zeros(shape, s)
		assert.Equal(t, x.Numel(), jit.HandleNumel(x), "%v", shape)
	}
}

// The optimised copy (freeze, optimize_for_inference) computes what the
// traced method does, keeps its own constants (a later change of the
// module's weight does not reach it), and needs a forward.
func TestOptimized(t *testing.T) {
	torch.ManualSeed(2)
	c := newConv()
	defer c.free()
	m, err := jit.New("conv")
	require.NoError(t, err)
	defer m.Free()
	_, err = m.Optimized()
	assert.ErrorContains(t, err, "no forward")
	require.NoError(t, m.Register("w", c.w, false))
	require.NoError(t, m.Register("b", c.b, false))
	x := torch.Randn([]int64{1, 3, 8, 8})
	defer x.Free()
	require.NoError(t, m.Trace("forward", x, c.forward))
	o, err := m.Optimized()
	require.NoError(t, err)
	defer o.Free()
	want := run(t, m, "forward", x)
	for _, opt := range []bool{false, true} {
		out := torch.Zeros([]int64{1, 4, 8, 8})
		require.NoError(t, o.Forward(x, out, opt))
		assert.InDeltaSlice(t, want, values(t, out), 1e-5, "optimize=%v", opt)
		out.Free()
	}
	torch.NoGrad(func() { require.NoError(t, c.w.MulScalarInPlace(2)) })
	out := torch.Zeros([]int64{1, 4, 8, 8})
	defer out.Free()
	require.NoError(t, o.Forward(x, out, false))
	assert.InDeltaSlice(t, want, values(t, out), 1e-5, "frozen: the old weight")
	small := torch.Zeros([]int64{1, 4, 4, 4})
	defer small.Free()
	assert.ErrorContains(t, o.Forward(x, small, false), "expected")
	o.Free()
	assert.ErrorContains(t, o.Forward(x, out, false), "freed")
}
