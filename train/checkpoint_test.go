package train_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/torch/optim"
	"github.com/jmedseg/jmedseg/train"
)

// newTinyNet is a small model: conv, batch norm, dropout, then a linear
// head (its last two parameters).
func newTinyNet() *nn.Sequential {
	return nn.Seq(nn.NewConv2d(2, 4, 3, nn.Padding(1)), nn.NewBatchNorm2d(4), nn.ReLU(), nn.NewDropout2d(0.3),
		nn.NewAdaptiveAvgPool2d(1, 1), nn.Flatten(1, -1), nn.NewLinear(4, 3))
}

// tinyRun is a tiny net with its optimizer (the head in a group of its
// own) and schedule.
type tinyRun struct {
	m     *nn.Sequential
	opt   optim.Optimizer
	sched *optim.Scheduler
	step  int64
}

func newTinyRun(t *testing.T) *tinyRun {
	m := newTinyNet()
	require.NoError(t, m.Err())
	ps := m.Parameters()
	opt, err := optim.NewAdamW(optim.AdamConfig{LR: 0.01, WeightDecay: 0.01, AMSGrad: true},
		optim.Group{Params: ps[:len(ps)-2]}, optim.Group{Params: ps[len(ps)-2:], LR: 0.02})
	require.NoError(t, err)
	return &tinyRun{m: m, opt: opt, sched: optim.NewScheduler(opt, optim.Warmup(2, 0.1, optim.Cosine(6, 1e-4)))}
}

func (r *tinyRun) free() { r.m.Free(); r.opt.Free() }

// train runs n steps on random data drawn from libtorch's generator (so the
// RNG state matters, as it does for dropout).
func (r *tinyRun) train(t *testing.T, n int) {
	for i := 0; i < n; i++ {
		require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
			x := torch.Randn([]int64{4, 2, 6, 6}, s)
			y := torch.RandInt(0, 3, []int64{4}, s)
			require.NoError(t, r.opt.ZeroGrad())
			loss := torch.CrossEntropy(r.m.Forward(x), y, nil, torch.ReduceMean, torch.NoIgnoreIndex, 0)
			if err := loss.Backward(); err != nil {
				return err
			}
			if _, err := optim.ClipGradNorm(r.m.Parameters(), 1, 2); err != nil {
				return err
			}
			if err := r.opt.Step(); err != nil {
				return err
			}
			r.sched.Step()
			r.step++
			return nil
		}))
	}
}

func stateOf(t *testing.T, m nn.Node) map[string][]float64 {
	out := map[string][]float64{}
	for _, e := range m.StateDict() {
		v, err := e.Tensor.Float64s()
		require.NoError(t, err)
		out[e.Name] = v
	}
	return out
}

func TestResumeIsBitExact(t *testing.T) {
	const n = 8
	path := filepath.Join(t.TempDir(), "state.safetensors")

	torch.ManualSeed(11)
	a := newTinyRun(t)
	defer a.free()
	a.train(t, n)
	want := stateOf(t, a.m)
	wantLR := a.sched.LR()

	torch.ManualSeed(11)
	b := newTinyRun(t)
	b.train(t, n/2)
	require.NoError(t, train.SaveCheckpoint(path, &train.Checkpoint{Model: b.m, Optimizer: b.opt, Scheduler: b.sched,
		Epoch: 1, Step: b.step, Meta: map[string]string{"model": "net"}}))
	b.free()

	torch.ManualSeed(999) // the restored RNG state must win
	c := newTinyRun(t)
	defer c.free()
	st := &train.Checkpoint{Model: c.m, Optimizer: c.opt, Scheduler: c.sched}
	require.NoError(t, train.LoadCheckpoint(path, st))
	require.Equal(t, int64(1), st.Epoch)
	require.Equal(t, int64(n/2), st.Step)
	require.Equal(t, "net", st.Meta["model"])
	c.step = st.Step
	c.train(t, n/2)
	require.Equal(t, want, stateOf(t, c.m), "weights after resuming differ")
	require.Equal(t, wantLR, c.sched.LR())
	require.Equal(t, n/2+n/2, int(c.sched.Epoch()))
}

// A training checkpoint's model part loads with ckpt.Load and models.Load;
// a model file is not a training checkpoint.
func TestCheckpointModelLoads(t *testing.T) {
	dir := t.TempDir()
	a := newTinyNet()
	defer a.Free()
	tp := filepath.Join(dir, "t.safetensors")
	require.NoError(t, train.SaveCheckpoint(tp, &train.Checkpoint{Model: a}))
	c := newTinyNet()
	defer c.Free()
	_, _, err := ckpt.Load(tp, c, true)
	require.NoError(t, err)
	require.Equal(t, stateOf(t, a), stateOf(t, c))

	path := filepath.Join(dir, "m.safetensors")
	require.NoError(t, ckpt.Save(path, a, nil))
	require.ErrorContains(t, train.LoadCheckpoint(path, &train.Checkpoint{Model: c}), "not a training checkpoint")

	info := models.Info{Model: "unet", Config: models.Config{InChannels: 1, Classes: 2, Width: 4}, Classes: []string{"bg", "fg"},
		Size: [2]int{32, 32}, Extra: map[string]string{"jmedseg.history": "[]"}}
	u, err := models.Build(info)
	require.NoError(t, err)
	defer u.Free()
	up := filepath.Join(dir, "last.safetensors")
	require.NoError(t, train.SaveCheckpoint(up, &train.Checkpoint{Model: u, Epoch: 3, Meta: info.Metadata()}))
	got, gi, err := models.Load(up)
	require.NoError(t, err)
	defer got.Free()
	require.Equal(t, models.KindTraining, gi.Kind)
	require.Equal(t, "[]", gi.Extra["jmedseg.history"])
	require.Equal(t, stateOf(t, u), stateOf(t, got))
}

// A damaged or mismatched training checkpoint restores nothing, and the
// error names the file and what is wrong.
func TestCheckpointBadFiles(t *testing.T) {
	dir := t.TempDir()
	m := newTinyNet()
	defer m.Free()
	good := filepath.Join(dir, "good.safetensors")
	require.NoError(t, train.SaveCheckpoint(good, &train.Checkpoint{Model: m}))
	raw, err := os.ReadFile(good)
	require.NoError(t, err)
	hlen := binary.LittleEndian.Uint64(raw)
	header := func(old, new string) []byte {
		h := string(raw[8 : 8+hlen])
		require.Contains(t, h, old)
		b := append([]byte(nil), raw...)
		copy(b[8:], strings.Replace(h, old, new, 1))
		return b
	}
	huge := append([]byte(nil), raw...)
	binary.LittleEndian.PutUint64(huge, 1<<40)

	// a well-formed checkpoint whose float weight is stored as int64
	intw := filepath.Join(dir, "int.safetensors")
	ints := torch.Zeros(m.StateDict()[0].Tensor.Shape(), torch.Int64)
	defer ints.Free()
	rng := torch.RNGState()
	defer rng.Free()
	var named []nn.Named
	for i, e := range m.StateDict() {
		if i == 0 {
			e.Tensor = ints
		}
		named = append(named, nn.Named{Name: ckpt.ModelPrefix + e.Name, Tensor: e.Tensor})
	}
	named = append(named, nn.Named{Name: "rng.cpu", Tensor: rng})
	require.NoError(t, ckpt.WriteTensors(intw, named, map[string]string{ckpt.MetaKind: ckpt.KindTraining, "jmedseg.epoch": "0", "jmedseg.step": "0"}))

	model := filepath.Join(dir, "model.safetensors")
	require.NoError(t, ckpt.Save(model, m, nil))

	cases := []struct {
		name, want, path string
		data             []byte
	}{
		{name: "truncated", data: raw[:len(raw)-7], want: "truncated"},
		{name: "short", data: raw[:5], want: "truncated"},
		{name: "header too large", data: huge, want: "header"},
		{name: "offsets out of range", data: header(`"data_offsets":[0,`, `"data_offsets":[9,`), want: "offset"},
		{name: "unknown dtype", data: header(`"F32"`, `"F99"`), want: "dtype"},
		{name: "missing", path: filepath.Join(dir, "nope.safetensors"), want: "no such file"},
		{name: "int for float", path: intw, want: `tensor "0.weight" has dtype int64 in the checkpoint but float32 in the model`},
		{name: "model file", path: model, want: "not a training checkpoint"},
		{name: "no RNG", data: header(`"rng.cpu"`, `"rng.xyz"`), want: "no RNG state"},
		{name: "bad step", data: header(`"jmedseg.step":"0"`, `"jmedseg.step":"x"`), want: `bad epoch "0" or step "x"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.path
			if p == "" {
				p = filepath.Join(dir, "bad.safetensors")
				require.NoError(t, os.WriteFile(p, c.data, 0o644))
			}
			fresh := newTinyNet()
			defer fresh.Free()
			before := stateOf(t, fresh)
			err := train.LoadCheckpoint(p, &train.Checkpoint{Model: fresh})
			require.Error(t, err)
			require.Contains(t, err.Error(), p, "the error names the file")
			require.Contains(t, err.Error(), c.want)
			require.Equal(t, before, stateOf(t, fresh), "nothing is loaded from a bad file")
		})
	}
}
