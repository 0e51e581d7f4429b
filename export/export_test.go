package export_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/export"
	"github.com/jmedseg/jmedseg/internal/oracle/py"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// tol bounds |PyTorch − Go| / (1 + |Go|) for the logits, in float32.
const tol = 1e-4

// job is one exported model, as jit_check.py reads it.
type job struct {
	Name       string `json:"name"`
	Dir        string `json:"dir"`
	Twin       string `json:"twin"`
	InChannels int64  `json:"in_channels"`
	Classes    int64  `json:"classes"`
	Width      int64  `json:"width"`

	info      models.Info
	want      []float32 // Go's logits for the raw input, image by image
	wantBatch []float32 // Go's logits for the batch of 2 at once
	keys      []string  // Go's state-dict keys, in order
	report    *export.Report
	err       error
	took      time.Duration
}

// prepare gives m's batch norms running statistics away from the identity
// and every all-zero parameter (zero-initialised output layers, attention
// scales) small random values, so that the export is tested on weights
// that all matter, then puts m in evaluation mode.
func prepare(t *testing.T, m nn.Module) {
	set := func(dst, src *torch.Tensor) {
		defer src.Free()
		torch.NoGrad(func() { require.NoError(t, dst.CopyFrom(src)) })
	}
	for _, b := range m.NamedBuffers() {
		switch {
		case strings.HasSuffix(b.Name, "running_mean"):
			set(b.Tensor, torch.Randn(b.Tensor.Shape()).MulScalar(0.1))
		case strings.HasSuffix(b.Name, "running_var"):
			set(b.Tensor, torch.Rand(b.Tensor.Shape()).AddScalar(0.5))
		}
	}
	for _, p := range m.NamedParameters() {
		v, err := p.Tensor.Float32s()
		require.NoError(t, err)
		if !slices.ContainsFunc(v, func(f float32) bool { return f != 0 }) {
			set(p.Tensor, torch.Randn(p.Tensor.Shape()).MulScalar(0.1))
		}
	}
	m.Eval()
}

// rawImages returns n random 8-bit images c×h×w as float32 pixel values.
func rawImages(r *rand.Rand, n, c, h, w int) []float32 {
	x := make([]float32, n*c*h*w)
	for i := range x {
		x[i] = float32(r.IntN(256))
	}
	return x
}

// goPipeline normalises raw pixels the way training fed the model
// (data.ToCHW's float32(v)·(1/255), then Normalization.Apply), image by
// image, independently of the export.
func goPipeline(t *testing.T, raw []float32, n, c int, norm models.Normalization) []float32 {
	const k8 = 1.0 / 255
	out := make([]float32, len(raw))
	plane := len(raw) / n
	for i := range n {
		img := out[i*plane : (i+1)*plane]
		for j, v := range raw[i*plane : (i+1)*plane] {
			img[j] = v * k8
		}
		require.NoError(t, norm.Apply(img, c))
	}
	return out
}

// goLogits runs m on x ([N, ...]) image by image, as the exported module
// does, and as one batch, on at::conv2d's kernels as the module does (r2's
// InstanceNorms over 2×2 maps make oneDNN's round-off visible at 1e-3).
func goLogits(t *testing.T, m nn.Module, x *torch.Tensor) (single, batch []float32) {
	s := torch.NewScope()
	defer s.Close()
	var err error
	torch.WithoutOneDNNConv(func() {
		torch.NoGrad(func() {
			for i := range x.Size(0) {
				var v []float32
				v, err = s.Track(m.Forward(x.Narrow(0, i, 1))).Float32s()
				require.NoError(t, err)
				single = append(single, v...)
			}
			batch, err = s.Track(m.Forward(x)).Float32s()
			require.NoError(t, err)
		})
	})
	return single, batch
}

// relDiff is max |a − b| / (1 + |b|) and max |a − b|.
func relDiff(a, b []float32) (rel, abs float64) {
	for i := range b {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		rel, abs = max(rel, d/(1+math.Abs(float64(b[i])))), max(abs, d)
	}
	return rel, abs
}

// Every registered model at its test width and smallest input, exported to
// TorchScript and loaded by Python's torch.jit.load, gives Go's logits for
// raw pixels (preprocessing inside) to 1e-4, for a batch of 2 (the module
// runs its batch-1 trace per image); its state dict is Go's, key for key
// and bit for bit, in eval mode, read as attributes (halving the weights
// changes the logits); its attributes hold the configuration; a wrong-size
// input raises the module's own error. The safetensors export loaded
// strictly into the model's PyTorch twin gives the same logits. Models with
// 3 input channels and 3 classes, every other one with a mean/std
// normalisation; unet also with a spatial transformer. One Python process
// for all.
func TestTorchScriptMatchesGo(t *testing.T) {
	py.Python(t)
	root := t.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	jobs := []*job{}
	names := models.Names()
	for i, name := range append(slices.Clone(names), "unet+stn") {
		stn := strings.HasSuffix(name, "+stn")
		s, ok := models.Lookup(strings.TrimSuffix(name, "+stn"))
		require.True(t, ok)
		side := int(s.MinSide())
		info := models.Info{Model: s.Name, Config: models.Config{InChannels: 3, Classes: 3, Width: s.TestWidth},
			Classes: []string{"background", "grey matter", "white matter"}, Size: [2]int{side, side}, STN: stn,
			Norm: models.DefaultNormalization(), Epoch: 3, ValDice: 0.5}
		if i%2 == 1 {
			info.Norm.Mean, info.Norm.Std = []float32{0.485, 0.456, 0.406}, []float32{0.229, 0.224, 0.225}
		}
		j := &job{Name: name, Dir: filepath.Join(root, name), InChannels: 3, Classes: 3, Width: s.TestWidth, info: info}
		if !stn {
			j.Twin = s.Twin
		}
		require.NoError(t, os.MkdirAll(j.Dir, 0o755))
		torch.ManualSeed(uint64(i + 1))
		m, err := models.Build(info)
		require.NoError(t, err, name)
		prepare(t, m)
		for _, st := range m.StateDict() {
			j.keys = append(j.keys, st.Name)
		}

		raw := rawImages(r, 2, 3, side, side)
		norm := goPipeline(t, raw, 2, 3, info.Norm)
		shape := []int64{2, 3, int64(side), int64(side)}
		x, xn := torch.FromSlice(raw, shape), torch.FromSlice(norm, shape)
		j.want, j.wantBatch = goLogits(t, m, xn)
		require.NoError(t, ckpt.WriteTensors(filepath.Join(j.Dir, "input.safetensors"), []nn.Named{{Name: "x", Tensor: x}, {Name: "x_norm", Tensor: xn}}, nil))
		x.Free()
		xn.Free()

		start := time.Now()
		j.report, j.err = export.WriteTorchScript(filepath.Join(j.Dir, "model.pt"), m, info)
		j.took = time.Since(start)
		if j.err == nil {
			_, j.err = export.WriteSafeTensors(filepath.Join(j.Dir, "state.safetensors"), m, info)
		}
		m.Free()
		if j.err == nil {
			jobs = append(jobs, j)
		} else {
			t.Errorf("%s: %v", name, j.err)
		}
	}
	b, err := json.Marshal(jobs)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(root, "jobs.json"), b, 0o644))
	py.Run(t, "jit_check.py", filepath.Join(root, "jobs.json"), fmt.Sprint(torch.NumThreads()))

	for _, j := range jobs {
		t.Run(j.Name, func(t *testing.T) {
			if b, err := os.ReadFile(filepath.Join(j.Dir, "error.txt")); err == nil {
				t.Fatalf("jit_check.py failed:\n%s", b)
			}
			out, _, err := ckpt.ReadTensors(filepath.Join(j.Dir, "out.safetensors"))
			require.NoError(t, err)
			defer ckpt.Free(out)
			got := map[string][]float32{}
			for _, o := range out {
				got[o.Name], err = o.Tensor.Float32s()
				require.NoError(t, err)
			}
			require.Len(t, got["y"], len(j.want))
			rel, abs := relDiff(got["y"], j.want)
			brel, _ := relDiff(got["y"], j.wantBatch)
			t.Logf("torch.jit.load vs Go: max rel %.2e, max abs %.2e (%d logits), vs Go's batch of 2 %.2e; export %.1fs, in-process check %.2e; constants %d (%d elements) for %d tensors (%d elements)",
				rel, abs, len(j.want), brel, j.took.Seconds(), j.report.MaxDiff, j.report.Constants, j.report.ConstantElements, j.report.Tensors, j.report.Elements)
			// The module runs its batch-1 trace per image, so Go's reference
			// is its forward image by image; Go's own logits move a little with
			// the batch (brel, logged: r2's InstanceNorm over 2×2 maps the most).
			assert.LessOrEqual(t, rel, tol, "TorchScript logits against Go's, image by image")
			if len(j.info.Norm.Mean) > 0 {
				assert.EqualValues(t, 2, j.report.Constants, "the normalisation's mean and scale are the only constants")
			} else {
				assert.Zero(t, j.report.Constants, "no tensor constants: the weights are attributes")
			}
			if j.Twin != "" {
				require.Len(t, got["y_twin"], len(j.want))
				trel, _ := relDiff(got["y_twin"], j.wantBatch)
				t.Logf("twin with the safetensors export vs Go: max rel %.2e", trel)
				assert.LessOrEqual(t, trel, tol, "twin logits with the safetensors export")
			}

			var res struct {
				Attrs         map[string]any  `json:"attrs"`
				Keys          []string        `json:"keys"`
				Equal         map[string]bool `json:"equal"`
				Training      []string        `json:"training"`
				BadInputError string          `json:"bad_input_error"`
				ReadsWeights  bool            `json:"reads_weights"`
				Optimized     bool            `json:"optimized"`
			}
			b, err := os.ReadFile(filepath.Join(j.Dir, "result.json"))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &res))
			if !res.Optimized {
				t.Log("PyTorch ran the module without the graph executor's optimisations (PyTorch 2.x: see jit_check.py)")
			}
			// PyTorch lists a tensor shared by two paths once per path, as Go does.
			assert.Equal(t, j.keys, res.Keys, "state-dict keys of the loaded module")
			for k, eq := range res.Equal {
				assert.True(t, eq, "%s differs from the model's", k)
			}
			assert.Empty(t, res.Training, "submodules in training mode")
			assert.True(t, res.ReadsWeights, "the logits do not change with the weights: they were traced as constants")
			assert.Contains(t, res.BadInputError, "want raw pixel values [N, 3,")
			assert.Equal(t, j.info.Model, res.Attrs["model"])
			assert.Equal(t, []any{"background", "grey matter", "white matter"}, res.Attrs["class_names"])
			assert.EqualValues(t, 3, res.Attrs["in_channels"])
			assert.EqualValues(t, 3, res.Attrs["num_classes"])
			assert.Equal(t, []any{float64(j.info.Size[0]), float64(j.info.Size[1])}, res.Attrs["input_size"])
			assert.EqualValues(t, 255, res.Attrs["pixel_scale"])
			assert.Len(t, res.Attrs["norm_mean"], len(j.info.Norm.Mean))
			var cfg map[string]any
			require.NoError(t, json.Unmarshal([]byte(res.Attrs["jmedseg_info"].(string)), &cfg))
			assert.Equal(t, j.info.STN, cfg["stn"])
			assert.EqualValues(t, j.Width, cfg["config"].(map[string]any)["width"])
		})
	}
}
