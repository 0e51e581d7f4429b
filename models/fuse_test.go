package models_test

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/fusetest"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// fuseTol bounds |fused − unfused| relative to the output's largest
// magnitude (at least 1): float32 round-off through a whole network.
const fuseTol = 1e-5

// notAfterConv counts, per model, the BatchNorms that follow no
// convolution in the forward, so that there is nothing to fold them into:
// multires's bn_1 (after a concatenation) and bn_2 and its residual paths'
// bn (after ReLU(shortcut + ...)), 9·2 + 10; dense's bn_list.1..3 of each
// of its 9 levels, whose convolution's output is first summed with the
// level's earlier outputs. Every other BatchNorm of every model must fold:
// a regression in any fusion path shows as a count below the total.
var notAfterConv = map[string]int{"multires": 28, "dense": 27}

// distinctBatchNorms counts m's BatchNorms, each once however often it is
// registered (resunet registers its backbone's under two names).
func distinctBatchNorms(m nn.Node) int {
	seen := map[*nn.BatchNorm]bool{}
	for _, nm := range m.NamedModules() {
		if bn, ok := nm.Node.(*nn.BatchNorm); ok {
			seen[bn] = true
		}
	}
	return len(seen)
}

// Every registered model, fused, gives its unfused evaluation-mode outputs
// to fuseTol at its test width and smallest input, with every BatchNorm
// that follows a convolution folded.
func TestFuseEveryModel(t *testing.T) {
	total := 0
	for _, name := range models.Names() {
		t.Run(name, func(t *testing.T) {
			s := spec(t, name)
			torch.ManualSeed(11)
			m := build(t, s, 3, 2)
			fusetest.RandomiseBatchNorms(t, m)
			bns := distinctBatchNorms(m)
			m.Eval()
			side := s.MinSide()
			x := torch.Randn([]int64{2, 3, side, side})
			defer x.Free()
			forward := func() []float32 { return fusetest.Forward(t, m, x) }
			ref := forward()
			params := len(m.Parameters())
			var rep nn.FuseReport
			live, leaked := leakCheck(func() {
				var err error
				rep, err = models.Fuse(m)
				require.NoError(t, err)
			})
			// Folding leaves nothing behind but the biases it registers on
			// convolutions that had none.
			assert.Equal(t, int64(len(m.Parameters())-params), live, "live tensor handles after Fuse")
			assert.Zero(t, leaked)
			got := forward()
			require.Len(t, got, len(ref))
			scale, worst := 1.0, 0.0
			for i := range ref {
				scale = math.Max(scale, math.Abs(float64(ref[i])))
				worst = math.Max(worst, math.Abs(float64(got[i]-ref[i])))
			}
			assert.LessOrEqual(t, worst/scale, fuseTol, "largest difference %g at output scale %g", worst, scale)
			assert.Len(t, rep.Folded, bns-notAfterConv[name], "every BatchNorm after a convolution folds")
			assert.Empty(t, rep.Skipped)
			t.Logf("%s: %d of %d BatchNorms folded, %d ReLUs in place, %d pairs skipped; worst difference %.3g (scale %.3g)",
				name, len(rep.Folded), bns, rep.InPlace, len(rep.Skipped), worst, scale)
			for _, sk := range rep.Skipped {
				t.Logf("  skipped %s", sk)
			}
			total += len(rep.Folded)
		})
	}
	assert.Greater(t, total, 0)
}

// A fused model refuses to train: its BatchNorms are gone from the forward.
func TestFusedRefusesTraining(t *testing.T) {
	m, err := models.New("unet", models.Config{Width: 4})
	require.NoError(t, err)
	defer m.Free()
	m.Eval()
	rep, err := models.Fuse(m)
	require.NoError(t, err)
	require.NotEmpty(t, rep.Folded)
	m.Train(true)
	x := torch.Randn([]int64{1, 3, 16, 16})
	defer x.Free()
	y := m.Forward(x)
	require.Error(t, y.Err())
	assert.Contains(t, y.Err().Error(), "inference only")
}

func TestFuseNeedsEval(t *testing.T) {
	m, err := models.New("unet", models.Config{Width: 4})
	require.NoError(t, err)
	defer m.Free()
	_, err = models.Fuse(m)
	require.ErrorContains(t, err, "training mode")
}

// A convolution registered in two places (shared) is not folded.
func TestFuseSkipsShared(t *testing.T) {
	conv := nn.NewConv2d(2, 3, 3, nn.Padding(1))
	bn := nn.NewBatchNorm2d(3)
	m := nn.Seq(nn.Seq(conv, bn), nn.Seq(conv))
	defer m.Free()
	m.Eval()
	rep, err := nn.FuseSequentials(m)
	require.NoError(t, err)
	assert.Empty(t, rep.Folded)
	require.Len(t, rep.Skipped, 1)
	assert.Contains(t, rep.Skipped[0], "more than one place")
}

// On CUDA (scripts/gpu-check.sh): unet and deeplab give the CPU's outputs,
// fused too. Skipped without a GPU.
func TestCUDAForwardAndFuse(t *testing.T) {
	if !torch.CUDAAvailable() {
		t.Skip("no CUDA device")
	}
	for _, name := range []string{"unet", "deeplab"} {
		t.Run(name, func(t *testing.T) {
			s := spec(t, name)
			torch.ManualSeed(5)
			m := build(t, s, 3, 2)
			fusetest.RandomiseBatchNorms(t, m)
			m.Eval()
			side := s.MinSide()
			x := torch.Randn([]int64{2, 3, side, side})
			defer x.Free()
			out := func(d torch.Device) []float32 {
				var v []float32
				torch.InferenceMode(func() {
					sc := torch.NewScope()
					defer sc.Close()
					y := m.Forward(sc.Track(x.ToDevice(d)))
					var err error
					v, err = y.Float32s()
					require.NoError(t, err)
				})
				return v
			}
			cpu := out(torch.CPU)
			require.NoError(t, m.To(torch.CUDA(0)))
			gpu := out(torch.CUDA(0))
			_, err := models.Fuse(m)
			require.NoError(t, err)
			fused := out(torch.CUDA(0))
			for i := range cpu {
				// cuDNN may use TF32 or other algorithms: 1e-3 of the scale.
				require.InDelta(t, cpu[i], gpu[i], 1e-3*math.Max(1, math.Abs(float64(cpu[i]))))
				require.InDelta(t, gpu[i], fused[i], 1e-3*math.Max(1, math.Abs(float64(gpu[i]))))
			}
		})
	}
}

// resunet folds its backbone through the backbone's names: its aliases
// (layer0..layer3) still name the very tensors of backbone.*, which now
// hold the folded weights, and no fold is reported under an alias.
func TestFuseResUNetThroughAliases(t *testing.T) {
	s := spec(t, "resunet")
	m := build(t, s, 3, 2)
	fusetest.RandomiseBatchNorms(t, m)
	m.Eval()
	rep, err := models.Fuse(m)
	require.NoError(t, err)
	require.NotEmpty(t, rep.Folded)
	for _, p := range rep.Folded {
		assert.NotRegexp(t, `^(layer[0-3]|pooling0)\.`, p)
	}
	byKey := map[string]*torch.Tensor{}
	for _, p := range m.StateDict() {
		byKey[p.Name] = p.Tensor
	}
	aliased := 0
	for _, a := range [][2]string{{"layer0.", "backbone.conv1."}, {"layer1.", "backbone.layer1."}, {"layer2.", "backbone.layer2."}, {"layer3.", "backbone.layer3."}} {
		for k, v := range byKey {
			if strings.HasPrefix(k, a[0]) {
				aliased++
				assert.Same(t, byKey[a[1]+k[len(a[0]):]], v, k)
			}
		}
	}
	// The folds gave the backbone's bias-free convolutions a bias, under
	// both names.
	assert.Contains(t, byKey, "backbone.layer1.0.conv1.bias")
	assert.Contains(t, byKey, "layer1.0.conv1.bias")
	assert.Greater(t, aliased, 0)
}
