package infer_test

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data/nifti"
	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// writeNIfTI writes a float32 NIfTI-1 file of dims (nx, ny, nz[, nt]) with
// 1 mm voxels and an identity sform.
func writeNIfTI(t testing.TB, path string, dims []int, vox []float32) {
	t.Helper()
	h := make([]byte, 352)
	le := binary.LittleEndian
	le.PutUint32(h[0:], 348)
	le.PutUint16(h[40:], uint16(len(dims)))
	for i, d := range dims {
		le.PutUint16(h[42+2*i:], uint16(d))
	}
	le.PutUint16(h[70:], nifti.DTFloat32)
	le.PutUint16(h[72:], 32)
	for i := range 4 {
		le.PutUint32(h[76+4*i:], math.Float32bits(1))
	}
	le.PutUint32(h[108:], math.Float32bits(352))
	le.PutUint32(h[112:], math.Float32bits(1))
	le.PutUint16(h[254:], 1)
	for i := range 3 {
		le.PutUint32(h[280+16*i+4*i:], math.Float32bits(1))
	}
	copy(h[344:], "n+1\x00")
	var b bytes.Buffer
	b.Write(h)
	for _, v := range vox {
		_ = binary.Write(&b, le, v)
	}
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
}

// head is a 40×40×4 volume: zero outside a disc, a ramp inside (zeros too).
func head() []float32 {
	v := make([]float32, 40*40*4)
	for k := range 4 {
		for j := range 40 {
			for i := range 40 {
				if dx, dy := float64(i-20), float64(j-20); dx*dx+dy*dy < 15*15 {
					v[i+40*(j+40*k)] = float32((i*7+j*3+k*11)%200 + 1)
				}
			}
		}
	}
	return v
}

func readLabels(t *testing.T, path string) *nifti.Volume {
	t.Helper()
	v, err := nifti.ReadFile(path)
	require.NoError(t, err)
	return v
}

// Issue 12: NaN voxels (the "no data" value some tools write outside the
// head) are read as the volume's lowest intensity and labelled background;
// before, one NaN made the percentiles NaN and the whole volume background.
func TestVolumeNaNBackground(t *testing.T) {
	p, err := infer.NewPredictor(modelFile(t, models.DefaultNormalization()), torch.CPU)
	require.NoError(t, err)
	defer p.Close()
	dir := t.TempDir()
	zero := head()
	withNaN := head()
	nan := 0
	for i, x := range withNaN {
		if x == 0 && i%3 != 0 { // most of the background, not all of it
			withNaN[i] = float32(math.NaN())
			nan++
		}
	}
	writeNIfTI(t, filepath.Join(dir, "zero.nii"), []int{40, 40, 4}, zero)
	writeNIfTI(t, filepath.Join(dir, "nan.nii"), []int{40, 40, 4}, withNaN)
	require.NoError(t, p.Volume(filepath.Join(dir, "zero.nii"), filepath.Join(dir, "zero_mask.nii")))
	require.NoError(t, p.Volume(filepath.Join(dir, "nan.nii"), filepath.Join(dir, "nan_mask.nii")))
	a, b := readLabels(t, filepath.Join(dir, "zero_mask.nii")), readLabels(t, filepath.Join(dir, "nan_mask.nii"))
	fg := 0
	for i, x := range withNaN {
		if math.IsNaN(float64(x)) {
			require.Zero(t, b.Data[i], "voxel %d is NaN: background", i)
			continue
		}
		require.Equal(t, a.Data[i], b.Data[i], "voxel %d", i)
		if a.Data[i] != 0 {
			fg++
		}
	}
	assert.Positive(t, fg, "the untrained model predicts something besides background")

	all := make([]float32, 40*40*4)
	for i := range all {
		all[i] = float32(math.NaN())
	}
	writeNIfTI(t, filepath.Join(dir, "allnan.nii"), []int{40, 40, 4}, all)
	err = p.Volume(filepath.Join(dir, "allnan.nii"), filepath.Join(dir, "allnan_mask.nii"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "allnan.nii")
	assert.Contains(t, err.Error(), "NaN")
	assert.NoFileExists(t, filepath.Join(dir, "allnan_mask.nii"))
}

// Issue 12: one infinite voxel is an error naming the file and the voxel,
// not a silently shifted result.
func TestVolumeInfinite(t *testing.T) {
	p, err := infer.NewPredictor(modelFile(t, models.DefaultNormalization()), torch.CPU)
	require.NoError(t, err)
	defer p.Close()
	dir := t.TempDir()
	v := head()
	v[5+40*(6+40*2)] = float32(math.Inf(1))
	writeNIfTI(t, filepath.Join(dir, "inf.nii"), []int{40, 40, 4}, v)
	err = p.Volume(filepath.Join(dir, "inf.nii"), filepath.Join(dir, "inf_mask.nii"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "inf.nii")
	assert.Contains(t, err.Error(), "infinite")
	assert.Contains(t, err.Error(), "(5, 6, 2)")
	assert.NoFileExists(t, filepath.Join(dir, "inf_mask.nii"))
}

// Issue 12: a 4-D volume is refused (it predicted frame 0 only and wrote a
// header claiming every frame).
func TestVolume4D(t *testing.T) {
	p, err := infer.NewPredictor(modelFile(t, models.DefaultNormalization()), torch.CPU)
	require.NoError(t, err)
	defer p.Close()
	dir := t.TempDir()
	v := append(head(), head()...)
	writeNIfTI(t, filepath.Join(dir, "fmri.nii"), []int{40, 40, 4, 2}, v)
	err = p.Volume(filepath.Join(dir, "fmri.nii"), filepath.Join(dir, "fmri_mask.nii"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "fmri.nii")
	assert.Contains(t, err.Error(), "2 frames")
	assert.NoFileExists(t, filepath.Join(dir, "fmri_mask.nii"))
}

// Fault test of the label-volume and mask write paths: an output whose
// directory cannot be made is an error naming it; a prediction refused
// (an infinite voxel) leaves an existing output as it was.
func TestVolumeWriteFaults(t *testing.T) {
	p, err := infer.NewPredictor(modelFile(t, models.DefaultNormalization()), torch.CPU)
	require.NoError(t, err)
	defer p.Close()
	dir := t.TempDir()
	in := filepath.Join(dir, "head.nii")
	writeNIfTI(t, in, []int{40, 40, 4}, head())
	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, []byte("x"), 0o644))
	err = p.File(in, filepath.Join(blocker, "mask.nii.gz"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), blocker)

	img := filepath.Join(dir, "slice.png")
	f, err := os.Create(img)
	require.NoError(t, err)
	require.NoError(t, png.Encode(f, image.NewGray(image.Rect(0, 0, 20, 20))))
	require.NoError(t, f.Close())
	err = p.File(img, filepath.Join(blocker, "mask.png"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), blocker)

	out := filepath.Join(dir, "kept.nii")
	require.NoError(t, os.WriteFile(out, []byte("old"), 0o644))
	v := head()
	v[0] = float32(math.Inf(-1))
	writeNIfTI(t, in, []int{40, 40, 4}, v)
	require.Error(t, p.File(in, out))
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "old", string(b))
}
