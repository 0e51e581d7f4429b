package models_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/oracle/py"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// cenet's smallest input, 192×192, is above the registry parity test's
// 96×96 limit, so cenet is compared with its twin here, as TestMatchesPyTorch
// does (eval mode at the smallest size, training mode at two sizes, every
// weight with a non-zero gradient somewhere), at 192×192 and 224×192.
func TestCENetMatchesPyTorchAtMinSize(t *testing.T) {
	py.Python(t)
	s, ok := models.Lookup("cenet")
	require.True(t, ok)
	root := t.TempDir()
	var jobs []*parityJob
	for i, hw := range [][2]int64{{192, 192}, {224, 192}} {
		for _, train := range []bool{false, true} {
			if !train && i > 0 {
				continue
			}
			mode := map[bool]string{false: "eval", true: "train"}[train]
			j := &parityJob{Name: "cenet/" + mode + "/" + sizeName(hw), Twin: s.Twin, Width: s.TestWidth, InChannels: 2, Classes: 3,
				Dir: filepath.Join(root, mode, sizeName(hw)), Train: train}
			require.NoError(t, os.MkdirAll(j.Dir, 0o755))
			prepareParity(t, s, j, hw)
			jobs = append(jobs, j)
		}
	}
	b, err := json.Marshal(jobs)
	require.NoError(t, err)
	p := filepath.Join(root, "jobs.json")
	require.NoError(t, os.WriteFile(p, b, 0o644))
	py.Run(t, "twin_check.py", p, fmt.Sprint(torch.NumThreads()))
	var dead map[string]bool
	for _, j := range jobs {
		t.Run(strings.TrimPrefix(j.Name, "cenet/"), func(t *testing.T) {
			zero := compareParity(t, j)
			if !j.Train {
				return
			}
			if dead == nil {
				dead = zero
				return
			}
			for k := range dead {
				if !zero[k] {
					delete(dead, k)
				}
			}
		})
	}
	var names []string
	for k := range dead {
		if !strings.HasSuffix(k, ".bias") {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	require.Empty(t, names, "weights whose gradient is zero on both sides at every training-mode size")
}

// cenet's keys are the reference's: the ResNet-34 taken apart as firstconv,
// firstbn, encoder1..4, then dblock, spp, decoder4..1 and the final convs.
func TestCENetStateDictKeys(t *testing.T) {
	m, err := models.New("cenet", models.Config{Width: 4})
	require.NoError(t, err)
	defer m.Free()
	k := stateKeys(m.StateDict())
	assert.Equal(t, "firstconv.weight", k[0])
	assert.Equal(t, "finalconv3.bias", k[len(k)-1])
	for _, h := range []string{"firstbn.running_mean", "encoder1.2.conv2.weight", "encoder2.0.downsample.1.weight",
		"encoder4.2.bn2.num_batches_tracked", "dblock.dilate3.weight", "dblock.conv1x1.bias", "spp.conv.weight",
		"decoder4.conv1.weight", "decoder1.deconv2.weight", "decoder1.norm3.running_var", "finaldeconv1.weight", "finalconv2.bias"} {
		assert.True(t, slices.Contains(k, h), "missing %s", h)
	}
	// The DAC block's biases start at zero, as the reference's.
	for _, p := range m.NamedParameters() {
		if strings.HasPrefix(p.Name, "dblock.") && strings.HasSuffix(p.Name, ".bias") {
			v, err := p.Tensor.Float32s()
			require.NoError(t, err)
			assert.False(t, slices.ContainsFunc(v, func(f float32) bool { return f != 0 }), p.Name)
		}
	}
}

// Below 192 (RMP's 6×6 pooling at 1/32), or off the multiple of 32, cenet
// says what it takes; so does a width that is not a multiple of 4.
func TestCENetSizes(t *testing.T) {
	m := models.NewCENet(models.Config{InChannels: 1, Classes: 2, Width: 4})
	require.NoError(t, m.Err())
	defer m.Free()
	for _, hw := range [][2]int64{{128, 128}, {160, 192}, {192, 200}} {
		s := torch.NewScope()
		y := m.Forward(torch.Randn([]int64{1, 1, hw[0], hw[1]}, s))
		require.Error(t, y.Err(), "%v", hw)
		assert.Contains(t, y.Err().Error(), "cenet")
		assert.Contains(t, y.Err().Error(), "192")
		s.Close()
	}
	_, err := models.New("cenet", models.Config{Width: 6})
	require.ErrorContains(t, err, "multiple of 4")
}
