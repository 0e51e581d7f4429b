package infer_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/data/metaimage"
	"github.com/jmedseg/jmedseg/data/nifti"
	"github.com/jmedseg/jmedseg/data/nrrd"
	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// writeAs writes v as p's format (NIfTI, NRRD or MetaImage), compressed.
func writeAs(t testing.TB, p string, v *nifti.Volume, dt int16) {
	t.Helper()
	var b bytes.Buffer
	switch data.FormatOf(p) {
	case data.FormatNRRD:
		require.NoError(t, nrrd.Encode(&b, v, dt, true))
	case data.FormatMetaImage:
		require.NoError(t, metaimage.Encode(&b, v, dt, true))
	default:
		require.NoError(t, nifti.Encode(&b, v, dt, nifti.IsGzipName(p)))
	}
	require.NoError(t, os.WriteFile(p, b.Bytes(), 0o644))
}

func assertGrid(t *testing.T, want, got *nifti.Volume, what string) {
	t.Helper()
	assert.Equal(t, want.Dim, got.Dim, what)
	for i := range 3 {
		for j := range 4 {
			assert.InDelta(t, want.Affine[i][j], got.Affine[i][j], 1e-5, "%s affine[%d][%d]", what, i, j)
		}
	}
}

// A volume in NRRD or MetaImage predicts to the labels (and
// probabilities) of the same volume in NIfTI, written in the output's
// format on the input's grid, whichever pair of formats.
func TestVolumeFormatsPredict(t *testing.T) {
	p, err := infer.NewPredictor(modelFile(t, models.DefaultNormalization()), torch.CPU)
	require.NoError(t, err)
	defer p.Close()
	dir := t.TempDir()
	v := &nifti.Volume{Dim: [4]int{40, 40, 4, 1}, Spacing: [3]float64{1, 1, 2},
		Affine: [3][4]float64{{-1, 0, 0, 20}, {0, 0, 2, -5}, {0, -1, 0, 12}}} // LIP-ish: axes permuted and flipped
	for _, x := range head() {
		v.Data = append(v.Data, float64(x))
	}
	nii := filepath.Join(dir, "in.nii.gz")
	writeAs(t, nii, v, nifti.DTFloat32)
	ref := filepath.Join(dir, "ref.nii.gz")
	require.NoError(t, p.Volume(nii, ref))
	want := readLabels(t, ref)
	requireMixed(t, want.Data)
	o := infer.Options{SlidingWindow: true}
	refP := filepath.Join(dir, "ref-p.nii.gz")
	require.NoError(t, p.FileWith(nii, filepath.Join(dir, "ref-sw.nii.gz"), refP, o))
	wantP, err := nifti.ReadFile(refP)
	require.NoError(t, err)
	for _, in := range []string{"in.nrrd", "in.mha"} {
		inp := filepath.Join(dir, in)
		writeAs(t, inp, v, nifti.DTFloat32)
		for _, out := range []string{"out.nrrd", "out.mha", "out.nii"} {
			outp := filepath.Join(dir, in+"-"+out)
			require.NoError(t, p.File(inp, outp))
			got, err := data.ReadVolume(outp)
			require.NoError(t, err)
			assert.Equal(t, want.Data, got.Data, "%s -> %s", in, out)
			assertGrid(t, want, got, in+" -> "+out)
		}
		probs := filepath.Join(dir, in+"-p.nrrd")
		require.NoError(t, p.FileWith(inp, filepath.Join(dir, in+"-sw.mha"), probs, o))
		gotP, err := data.ReadVolume(probs)
		require.NoError(t, err)
		assert.Equal(t, wantP.Data, gotP.Data, "probabilities of %s", in)
		assertGrid(t, wantP, gotP, "probabilities of "+in)
	}
	// A NIfTI input may be written as NRRD too.
	require.NoError(t, p.File(nii, filepath.Join(dir, "nii.nrrd")))
	got, err := data.ReadVolume(filepath.Join(dir, "nii.nrrd"))
	require.NoError(t, err)
	assert.Equal(t, want.Data, got.Data)

	in := filepath.Join(dir, "in.nrrd")
	assert.ErrorContains(t, infer.CheckOutput(in, "x.png"), "end the output x.png in .nii, .nii.gz, .nrrd or .mha")
	assert.ErrorContains(t, infer.CheckOutput(in, "x.mhd"), "write the single-file x.mha")
	assert.ErrorContains(t, infer.CheckOutput("a.png", "x.nrrd"), "the output x.nrrd is a volume, but the input a.png is not")
	assert.Equal(t, "a.mha", infer.LabelVolumeName("a.mhd"))
	assert.Equal(t, "a.nrrd", infer.LabelVolumeName("a.nhdr"))
	assert.Equal(t, "a.nii.gz", infer.LabelVolumeName("a.nii.gz"))
}

// Colin27 as NRRD and MetaImage predicts to exactly the labels of its
// NIfTI (its 181 native axial slices, sliding window, through a seeded
// random model).
func TestColin27FormatsPredict(t *testing.T) {
	if testing.Short() {
		t.Skip("predicts the 181 slices of Colin27 three times")
	}
	deb, err := data.FetchDeb(context.Background(), data.PkgMricronData, "usr/share/mricron/templates/ch2.nii.gz", data.DefaultCacheDir())
	if err != nil {
		t.Skipf("Colin27 (mricron-data) is not available: %v", err)
	}
	src := deb.Path("usr/share/mricron/templates/ch2.nii.gz")
	v, err := nifti.ReadFile(src)
	require.NoError(t, err)
	p, err := infer.NewPredictor(randomModel(t, 7, 1.0), torch.CPU) // random weights: labels vary over the head
	require.NoError(t, err)
	defer p.Close()
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.nii.gz")
	o := infer.Options{SlidingWindow: true} // native slices (the framed ones of this model are constant)
	require.NoError(t, p.FileWith(src, ref, "", o))
	want := readLabels(t, ref)
	requireMixed(t, want.Data)
	for _, in := range []string{"ch2.nrrd", "ch2.mha"} {
		inp := filepath.Join(dir, in)
		writeAs(t, inp, v, v.Datatype)
		out := filepath.Join(dir, "seg-"+in)
		require.NoError(t, p.FileWith(inp, out, "", o))
		got, err := data.ReadVolume(out)
		require.NoError(t, err)
		assert.Equal(t, want.Data, got.Data, in)
		assertGrid(t, want, got, in)
	}
}

// requireMixed fails unless labels has at least two classes, so that
// comparing predictions is not comparing two blank volumes.
func requireMixed(t *testing.T, labels []float64) {
	t.Helper()
	n := map[float64]int{}
	for _, l := range labels {
		n[l]++
	}
	t.Logf("label counts %v", n)
	require.Greater(t, len(n), 1, "the reference prediction has one class only")
}

// randomModel is a unet (width 4, 32², 2 classes) with normal(0, std)
// weights drawn from seed: an untrained model's prediction is constant.
func randomModel(t testing.TB, seed uint64, std float64) string {
	t.Helper()
	torch.ManualSeed(seed)
	info := models.Info{Model: "unet", Config: models.Config{InChannels: 1, Classes: 2, Width: 4}, Classes: []string{"bg", "fg"},
		Size: [2]int{32, 32}, Norm: models.DefaultNormalization()}
	m, err := models.Build(info)
	require.NoError(t, err)
	defer m.Free()
	torch.NoGrad(func() {
		for _, e := range m.StateDict() {
			if strings.HasSuffix(e.Name, "weight") || strings.HasSuffix(e.Name, "bias") {
				require.NoError(t, e.Tensor.NormalInPlace(0, std))
			}
		}
	})
	path := filepath.Join(t.TempDir(), "model.safetensors")
	require.NoError(t, models.Save(path, m, info))
	return path
}
