package sas_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/internal/oracle"
	"github.com/jmedseg/jmedseg/internal/oracle/py"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/sas"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
)

func norm(x *torch.Tensor) *torch.Tensor { return x.Div(x.Norm(2, []int64{1}, true)) }

func TestInfoNCEMatchesPyTorch(t *testing.T) {
	const py = "F.cross_entropy(torch.cat([(a * b).sum(1, keepdim=True), a @ c.t()], 1) / 0.07, torch.zeros(a.shape[0], dtype=torch.long))"
	oracle.Check(t, []oracle.Case{{
		Name: "infonce", In: []oracle.Input{oracle.F64(4, 8), oracle.F64(4, 8), oracle.NoGrad(oracle.F64(16, 8))},
		Setup: "a = a / a.norm(dim=1, keepdim=True); b = b / b.norm(dim=1, keepdim=True); c = c / c.norm(dim=1, keepdim=True)",
		Py:    py,
		Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return oracle.One(sas.InfoNCE(norm(x[0]), norm(x[1]), norm(x[2]), 0.07))
		},
	}})
}

// SimCLR's NT-Xent against the usual PyTorch formulation: similarities of
// the 2N embeddings, the diagonal masked with −inf, the other view the
// target; values and the gradients of both views.
func TestNTXentMatchesPyTorch(t *testing.T) {
	for _, n := range []int64{1, 4} {
		oracle.Check(t, []oracle.Case{{
			Name: fmt.Sprintf("ntxent-%d", n), In: []oracle.Input{oracle.F64(n, 6), oracle.F64(n, 6)},
			Setup: fmt.Sprintf("a = a / a.norm(dim=1, keepdim=True); b = b / b.norm(dim=1, keepdim=True); z = torch.cat([a, b]); "+
				"s = (z @ z.t() / 0.5).masked_fill(torch.eye(%d, dtype=torch.bool), float('-inf')); "+
				"y = torch.cat([torch.arange(%d, %d), torch.arange(0, %d)])", 2*n, n, 2*n, n),
			Py: "F.cross_entropy(s, y)",
			Fn: func(x []*torch.Tensor) []*torch.Tensor {
				return oracle.One(sas.NTXent(norm(x[0]), norm(x[1]), 0.5))
			},
		}})
	}
}

func TestTop1AndMomentumUpdate(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	logits := torch.FromSlice([]float32{3, 1, 2, 0, 5, 1, 1, 1, 9}, []int64{3, 3}, s)
	hits, err := sas.Top1(logits, torch.FromSlice([]int64{0, 0, 2}, []int64{3}, s))
	require.NoError(t, err)
	assert.Equal(t, 2, hits)

	key := torch.FromSlice([]float32{1, 2}, []int64{2}, s)
	query := torch.FromSlice([]float32{3, -2}, []int64{2}, s)
	require.NoError(t, sas.MomentumUpdate([]*torch.Tensor{key}, []*torch.Tensor{query}, 0.75))
	got, _ := key.Float32s()
	assert.InDeltaSlice(t, []float64{0.75*1 + 0.25*3, 0.75*2 + 0.25*-2}, []float64{float64(got[0]), float64(got[1])}, 1e-6)
	assert.ErrorContains(t, sas.MomentumUpdate([]*torch.Tensor{key}, nil, 0.5), "1 key tensors from 0")
}

// tiny is an encoder small enough for the oracle: conv (no bias: before a
// BatchNorm its gradient is rounding noise, which Adam would amplify), BN,
// ReLU, a strided conv. Its layout is sas_oracle.py's Tiny.
type tiny struct {
	nn.Base
	conv, conv2 *nn.Conv2d
	bn          *nn.BatchNorm
}

func newTiny(in, c int64) *tiny {
	m := &tiny{}
	m.conv = nn.Register(&m.Base, "conv", nn.NewConv2d(in, c, 3, nn.Padding(1), nn.NoBias()))
	m.bn = nn.Register(&m.Base, "bn", nn.NewBatchNorm2d(c))
	m.conv2 = nn.Register(&m.Base, "conv2", nn.NewConv2d(c, c, 3, nn.Padding(1), nn.Stride(2)))
	return m
}

func (m *tiny) Encode(x *torch.Tensor) *torch.Tensor {
	return m.conv2.Forward(m.bn.Forward(m.conv.Forward(x)).Relu())
}

func (m *tiny) Forward(x *torch.Tensor) *torch.Tensor { return m.Encode(x) }

func prefixed(prefix string, ns []nn.Named) []nn.Named {
	out := make([]nn.Named, len(ns))
	for i, n := range ns {
		out[i] = nn.Named{Name: prefix + n.Name, Tensor: n.Tensor}
	}
	return out
}

// Two steps of each method on a tiny encoder against sas_oracle.py's
// PyTorch formulation (MoCo's builder.py, NT-Xent, the reference's memory
// bank) with torch.optim.Adam: the losses, the top-1 hits, the encoder
// and head after the steps (BatchNorm statistics too), MoCo's momentum-
// updated key encoder and head, and the queue. One Python process runs
// every method (importing torch is the slow part).
func TestLearnerMatchesPyTorch(t *testing.T) {
	py.Python(t)
	const steps = 2
	type run struct {
		method  sas.Method
		enc     *tiny
		l       *sas.Learner
		res     [steps]sas.StepResult
		in, out string
	}
	dir := t.TempDir()
	n0, _ := torch.Live()
	s := torch.NewScope()
	var runs []*run
	args := []string{"1"}
	for _, method := range sas.Methods {
		torch.ManualSeed(7)
		r := &run{method: method, enc: newTiny(1, 4)}
		defer r.enc.Free()
		o := sas.PretrainOptions{Method: method, LR: 1e-2, Queue: 12, Temperature: 0.1, Dim: 8, Momentum: 0.9,
			Size: [2]int{8, 8}, Channels: 1, Device: torch.CPU,
			NewKey: func() (sas.Encoder, error) { return newTiny(1, 4), nil }}
		var err error
		r.l, err = sas.NewLearner(r.enc, o)
		require.NoError(t, err)
		defer r.l.Close()
		in := append(prefixed("enc.", r.enc.StateDict()), prefixed("head.", r.l.Head().StateDict())...)
		if q := r.l.Queue(); q != nil {
			in = append(in, nn.Named{Name: "queue", Tensor: q})
		}
		var views [steps][2]*torch.Tensor
		for i := range views {
			for j := range views[i] {
				views[i][j] = s.Track(torch.Randn([]int64{4, 1, 8, 8}))
				in = append(in, nn.Named{Name: fmt.Sprintf("v%d.%d", j+1, i), Tensor: views[i][j]})
			}
		}
		r.in, r.out = filepath.Join(dir, string(method)+"-in.safetensors"), filepath.Join(dir, string(method)+"-out.safetensors")
		require.NoError(t, ckpt.WriteTensors(r.in, in, map[string]string{"method": string(method), "temperature": "0.1",
			"momentum": "0.9", "lr": "0.01", "steps": fmt.Sprint(steps)}))
		for i := range views {
			r.res[i], err = r.l.Step(views[i][0], views[i][1])
			require.NoError(t, err)
		}
		runs = append(runs, r)
		args = append(args, r.in, r.out)
	}
	py.Run(t, "sas_oracle.py", args...)
	for _, r := range runs {
		t.Run(string(r.method), func(t *testing.T) {
			want, _, err := ckpt.ReadTensors(r.out)
			require.NoError(t, err)
			defer ckpt.Free(want)
			ref := map[string]*torch.Tensor{}
			for _, n := range want {
				ref[n.Name] = n.Tensor
			}
			for i, res := range r.res {
				pl, _ := ref[fmt.Sprintf("loss.%d", i)].Item()
				ph, _ := ref[fmt.Sprintf("hits.%d", i)].Item()
				assert.InDelta(t, pl, res.Loss, 1e-5*math.Max(1, pl), "step %d loss", i)
				assert.Equal(t, int(ph), res.Hits, "step %d top-1 hits", i)
			}
			got := append(prefixed("enc.", r.enc.StateDict()), prefixed("head.", r.l.Head().StateDict())...)
			key, kh := r.l.Key()
			assert.Equal(t, r.method == sas.MoCo, key != nil, "only MoCo has a key encoder")
			if key != nil {
				got = append(got, append(prefixed("key.", key.StateDict()), prefixed("keyhead.", kh.StateDict())...)...)
			}
			if q := r.l.Queue(); q != nil {
				got = append(got, nn.Named{Name: "queue", Tensor: q})
			}
			assert.Len(t, got, len(want)-2*steps, "every tensor the oracle wrote is compared")
			sc := torch.NewScope()
			defer sc.Close()
			for _, g := range got {
				w := ref[g.Name]
				require.NotNil(t, w, g.Name)
				gv, err := sc.Track(g.Tensor.ToDType(torch.Float64)).Float64s()
				require.NoError(t, err)
				wv, err := sc.Track(w.ToDType(torch.Float64)).Float64s()
				require.NoError(t, err)
				require.Len(t, gv, len(wv), g.Name)
				for i := range gv {
					if !assert.InDelta(t, wv[i], gv[i], 2e-5+2e-5*math.Abs(wv[i]), "%s[%d]", g.Name, i) {
						break
					}
				}
			}
			if key != nil {
				// The key encoder moved by (1−m) of the way: it is not the
				// query encoder.
				kw, _ := key.StateDict()[0].Tensor.Float32s()
				qw, _ := r.enc.StateDict()[0].Tensor.Float32s()
				assert.NotEqual(t, kw, qw)
			}
		})
	}
	s.Close()
	for _, r := range runs {
		r.l.Close()
		r.enc.Free()
	}
	n1, _ := torch.Live()
	assert.Equal(t, n0, n1, "the learners free what they made")
}

var brainOnce = sync.OnceValues(func() (string, error) {
	dir, err := tempDir()
	if err != nil {
		return "", err
	}
	dir = filepath.Join(dir, "brain")
	_, err = data.Prepare(context.Background(), data.PrepareOptions{Out: dir, Size: 64})
	return dir, err
})

func trainSamples(t *testing.T) []data.Sample {
	dir, err := brainOnce()
	require.NoError(t, err)
	ds, err := data.Open(dir)
	require.NoError(t, err)
	samples, err := ds.Split("train")
	require.NoError(t, err)
	return samples
}

// Every method pretrains UNet and DeepLab (the models with an encoder):
// finite losses, an accuracy in [0, 1], weights that move, nothing leaked.
func TestPretrain(t *testing.T) {
	samples := trainSamples(t)[:16]
	for _, model := range []string{"unet", "deeplab"} {
		for _, method := range sas.Methods {
			t.Run(model+"/"+string(method), func(t *testing.T) {
				torch.ManualSeed(1)
				cfg := models.Config{InChannels: 1, Classes: 2, Width: 4}
				m, err := models.New(model, cfg)
				require.NoError(t, err)
				defer m.Free()
				before, _ := m.StateDict()[0].Tensor.Float32s()
				n0, _ := torch.Live()
				var seen []sas.EpochStats
				hist, err := sas.Pretrain(context.Background(), m.(sas.Encoder), samples, sas.PretrainOptions{Method: method, Epochs: 2, Batch: 8,
					LR: 1e-3, Queue: 20, Size: [2]int{64, 64}, Channels: 1, Workers: 2, Device: torch.CPU,
					NewKey: func() (sas.Encoder, error) {
						k, err := models.New(model, cfg)
						if err != nil {
							return nil, err
						}
						return k.(sas.Encoder), nil
					},
					OnEpoch: func(e sas.EpochStats) { seen = append(seen, e) }})
				require.NoError(t, err)
				require.Len(t, hist, 2)
				assert.Equal(t, hist, seen)
				for i, e := range hist {
					assert.Equal(t, i+1, e.Epoch)
					assert.Equal(t, 2, e.Steps)
					assert.False(t, math.IsNaN(e.Loss))
					assert.Greater(t, e.Loss, 0.0)
					assert.GreaterOrEqual(t, e.Accuracy, 0.0)
					assert.LessOrEqual(t, e.Accuracy, 1.0)
				}
				after, _ := m.StateDict()[0].Tensor.Float32s()
				assert.NotEqual(t, before, after, "the encoder was trained")
				n1, _ := torch.Live()
				assert.Equal(t, n0, n1, "pretraining frees what it creates")
			})
		}
	}
	m, err := models.New("unet", models.Config{InChannels: 1, Classes: 2, Width: 4})
	require.NoError(t, err)
	defer m.Free()
	for _, tc := range []struct {
		o       sas.PretrainOptions
		samples []data.Sample
		err     string
	}{
		{sas.PretrainOptions{Size: [2]int{64, 64}, Channels: 1}, samples[:1], "at least 2 images"},
		{sas.PretrainOptions{Method: sas.MoCo, Size: [2]int{64, 64}, Channels: 1}, samples, "needs a key encoder"},
		{sas.PretrainOptions{Method: "byol", Size: [2]int{64, 64}, Channels: 1}, samples, `unknown pretraining method "byol"`},
		{sas.PretrainOptions{Momentum: 1, Size: [2]int{64, 64}, Channels: 1}, samples, "momentum 1"},
		{sas.PretrainOptions{Size: [2]int{64, 64}, Channels: 1, Norm: models.Normalization{Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{1, 1, 1}}}, samples, "3 means"},
		{sas.PretrainOptions{Size: [2]int{60, 60}, Channels: 1}, samples, "multiples of 16"},
	} {
		_, err := sas.Pretrain(context.Background(), m.(sas.Encoder), tc.samples, tc.o)
		assert.ErrorContains(t, err, tc.err)
	}
}

func TestChance(t *testing.T) {
	assert.InDelta(t, 1.0/1025, sas.PretrainOptions{}.Chance(), 1e-12)
	assert.InDelta(t, 1.0/65, sas.PretrainOptions{Method: sas.MoCo, Queue: 64}.Chance(), 1e-12)
	assert.InDelta(t, 1.0/15, sas.PretrainOptions{Method: sas.SimCLR, Batch: 8}.Chance(), 1e-12)
}

// The views are normalised as fine-tuning normalises: [0, 1] alone by
// default, and (x − mean)/std when a normalisation is set.
func TestViewNormalization(t *testing.T) {
	samples := trainSamples(t)[:4]
	for _, tc := range []struct {
		norm   models.Normalization
		lo, hi float32
	}{
		{models.DefaultNormalization(), 0, 1},
		{models.Normalization{Scale: models.ScaleUnit, Mean: []float32{0.5}, Std: []float32{0.25}}, -2, 2},
	} {
		l, err := data.NewLoader(samples, data.LoaderOptions{BatchSize: 4, Workers: 1, Transform: sas.View(64, 64, tc.norm), Channels: 1, Views: 2, NoMask: true})
		require.NoError(t, err)
		for b, err := range l.Epoch(context.Background(), 0) {
			require.NoError(t, err)
			lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
			for _, v := range append(append([]float32(nil), b.Image.Data...), b.Views[0].Data...) {
				lo, hi = min(lo, v), max(hi, v)
			}
			assert.GreaterOrEqual(t, lo, tc.lo)
			assert.LessOrEqual(t, hi, tc.hi)
			if len(tc.norm.Mean) > 0 {
				assert.Less(t, lo, float32(-0.5), "the mean was subtracted (dark background at −2)")
			}
		}
	}
}

// The encoder's state is the part of the state dict Encode uses: for the
// U-Net inc and down1..down4 with their BatchNorm statistics, nothing of the
// decoder. Saved as an encoder file, it initialises a new model through
// models.LoadPretrained, and models.Load refuses it.
func TestEncoderStateRoundTrip(t *testing.T) {
	torch.ManualSeed(2)
	cfg := models.Config{InChannels: 1, Classes: 2, Width: 4}
	m, err := models.New("unet", cfg)
	require.NoError(t, err)
	defer m.Free()
	m.Train(true)
	n0, _ := torch.Live()
	state, err := sas.EncoderState(m.(sas.Encoder), 1, [2]int{32, 32}, torch.CPU)
	require.NoError(t, err)
	n1, _ := torch.Live()
	assert.Equal(t, n0, n1, "EncoderState leaves no tensor behind")
	assert.True(t, m.Training(), "the training mode is restored")
	keys := map[string]bool{}
	for _, n := range state {
		keys[n.Name] = true
		assert.Regexp(t, `^(inc|down[1-4])\.`, n.Name)
	}
	assert.True(t, keys["inc.double_conv.0.weight"] && keys["down4.maxpool_conv.1.double_conv.4.running_mean"], "weights and statistics")
	for _, p := range m.NamedParameters() {
		g := p.Tensor.Grad()
		assert.Nil(t, g, "%s: gradients are cleared", p.Name)
		if g != nil {
			g.Free()
		}
	}

	path := filepath.Join(t.TempDir(), "enc.safetensors")
	require.NoError(t, models.SaveEncoder(path, state, models.Info{Model: "unet", Config: cfg, Extra: map[string]string{"jmedseg.pretrain_losses": "[1.5]"}}))
	info, err := models.ReadInfo(path)
	require.NoError(t, err)
	assert.Equal(t, models.KindEncoder, info.Kind)
	assert.Equal(t, cfg, info.Config)
	assert.Equal(t, "[1.5]", info.Extra["jmedseg.pretrain_losses"])

	fresh, err := models.New("unet", cfg)
	require.NoError(t, err)
	defer fresh.Free()
	_, rep, err := models.LoadPretrained(path, fresh, "unet")
	require.NoError(t, err)
	assert.Empty(t, rep.Unexpected)
	assert.Len(t, rep.Missing, len(fresh.StateDict())-len(state), "only the decoder is missing")
	want, _ := state[0].Tensor.Float32s()
	got, _ := fresh.StateDict()[0].Tensor.Float32s()
	assert.Equal(t, want, got)

	_, _, err = models.LoadPretrained(path, fresh, "deeplab")
	assert.ErrorContains(t, err, "holds unet weights")
	_, _, err = models.Load(path)
	assert.ErrorContains(t, err, "pretrained encoder")
}
