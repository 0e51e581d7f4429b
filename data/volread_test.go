package data

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data/metaimage"
	"github.com/jmedseg/jmedseg/data/nifti"
	"github.com/jmedseg/jmedseg/data/npy"
	"github.com/jmedseg/jmedseg/data/nrrd"
	"github.com/jmedseg/jmedseg/internal/oracle/py"
)

// writeVolT writes v in the format of p's ending (NIfTI, NRRD or
// MetaImage), compressed.
func writeVolT(t testing.TB, p string, v *nifti.Volume, dt int16) {
	t.Helper()
	var b bytes.Buffer
	switch FormatOf(p) {
	case FormatNIfTI:
		require.NoError(t, nifti.Encode(&b, v, dt, nifti.IsGzipName(p)))
	case FormatNRRD:
		require.NoError(t, nrrd.Encode(&b, v, dt, true))
	case FormatMetaImage:
		require.NoError(t, metaimage.Encode(&b, v, dt, true))
	default:
		t.Fatalf("no volume format for %s", p)
	}
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, b.Bytes(), 0o644))
}

// convertTree rewrites every .nii.gz under src as ending under dst (and
// dataset.json's file_ending), the same arrays and affines.
func convertTree(t *testing.T, src, dst, ending string) {
	t.Helper()
	require.NoError(t, filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if !strings.HasSuffix(p, ".nii.gz") {
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			b = bytes.ReplaceAll(b, []byte(".nii.gz"), []byte(ending))
			require.NoError(t, os.MkdirAll(filepath.Dir(out), 0o755))
			return os.WriteFile(out, b, 0o644)
		}
		v, err := nifti.ReadFile(p)
		require.NoError(t, err)
		writeVolT(t, strings.TrimSuffix(out, ".nii.gz")+ending, v, v.Datatype)
		return nil
	}))
}

// An nnU-Net data set and a MONAI data list of NRRD or MetaImage volumes
// give the samples, images and masks of the same data set in NIfTI.
func TestVolumeFormatDatasets(t *testing.T) {
	nii := t.TempDir()
	makeNNUNet3D(t, nii, 4)
	ref, err := OpenWith(nii, OpenOptions{Folds: 4})
	require.NoError(t, err)
	refTr, err := ref.Split("train")
	require.NoError(t, err)
	for _, ending := range []string{".nrrd", ".mha"} {
		t.Run(ending, func(t *testing.T) {
			dir := t.TempDir()
			convertTree(t, nii, dir, ending)
			d, err := OpenWith(dir, OpenOptions{Folds: 4})
			require.NoError(t, err)
			tr, err := d.Split("train")
			require.NoError(t, err)
			require.Len(t, tr, len(refTr))
			for i, s := range tr {
				assert.Equal(t, refTr[i].ID, s.ID)
				want, err := ReadImage(refTr[i].Image)
				require.NoError(t, err)
				got, err := ReadImage(s.Image)
				require.NoError(t, err)
				assert.Equal(t, want, got, s.ID)
				wm, err := ReadMask(refTr[i].Mask)
				require.NoError(t, err)
				gm, err := ReadMask(s.Mask)
				require.NoError(t, err)
				assert.Equal(t, wm, gm, s.ID)
			}
			rep, err := Check(context.Background(), dir, CheckOptions{})
			require.NoError(t, err)
			assert.Empty(t, rep.Issues)

			// A MONAI data list of the same files.
			var entries []map[string]any
			for c := range 4 {
				entries = append(entries, map[string]any{"image": fmt.Sprintf("imagesTr/vol_%03d_0000%s", c, ending),
					"label": fmt.Sprintf("labelsTr/vol_%03d%s", c, ending)})
			}
			list := filepath.Join(dir, "list.json")
			writeJSONT(t, list, map[string]any{"training": entries[:3], "validation": entries[3:]})
			dl, err := Open(list)
			require.NoError(t, err)
			va, err := dl.Split("val")
			require.NoError(t, err)
			assert.Len(t, va, 5, "the five axial slices of one case")
			_, err = ReadMask(va[4].Mask)
			require.NoError(t, err)
		})
	}
}

// A 2-D NRRD or MetaImage reads as ReadImage reads the same array in NPY:
// grey, and colour from a channel axis.
func TestVolumeFormatImages(t *testing.T) {
	dir := t.TempDir()
	grey := &nifti.Volume{Dim: [4]int{5, 3, 1, 1}, Affine: [3][4]float64{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}}}
	rgb := &nifti.Volume{Dim: [4]int{5, 3, 1, 3}, Affine: grey.Affine}
	for i := range 15 {
		grey.Data = append(grey.Data, float64(i*17))
	}
	for c := range 3 {
		for i := range 15 {
			rgb.Data = append(rgb.Data, float64(i*10+c*50))
		}
	}
	writeNPYT(t, filepath.Join(dir, "grey.npy"), "u1", []int{3, 5}, grey.Data)
	writeNPYT(t, filepath.Join(dir, "rgb.npy"), "u1", []int{3, 3, 5}, rgb.Data)
	for _, ext := range []string{".nrrd", ".mha"} {
		for _, name := range []string{"grey", "rgb"} {
			v := map[string]*nifti.Volume{"grey": grey, "rgb": rgb}[name]
			p := filepath.Join(dir, name+ext)
			writeVolT(t, p, v, nifti.DTUint8)
			want, err := ReadImage(filepath.Join(dir, name+".npy"))
			require.NoError(t, err)
			got, err := ReadImage(p)
			require.NoError(t, err)
			assert.Equal(t, want, got, p)
		}
		m, err := ReadMask(filepath.Join(dir, "grey"+ext))
		require.NoError(t, err)
		assert.Equal(t, int32(17*7), m.At(2, 1))
		vol := filepath.Join(dir, "vol"+ext)
		writeVolT(t, vol, &nifti.Volume{Dim: [4]int{2, 2, 2, 1}, Affine: grey.Affine, Data: make([]float64, 8)}, nifti.DTUint8)
		_, err = ReadImage(vol)
		assert.ErrorContains(t, err, vol+": a 2x2x2 volume, not a 2D image (slice it first)")
	}
}

// itkData is where the installed (or cached) insighttoolkit5-examples
// package keeps its images: written by ITK's own MetaImage and NRRD
// writers, with PNG twins of the same pixels.
func itkData(t *testing.T) string {
	t.Helper()
	requireDebs(t)
	d, err := FetchDeb(context.Background(), PkgITKExamples, itkExamplesData+"/KmeansTest_T1UCharRaw.nii.gz", DefaultCacheDir())
	require.NoError(t, err)
	return d.Path(itkExamplesData)
}

func grey(t *testing.T, img image.Image) []uint8 {
	t.Helper()
	b := img.Bounds()
	out := make([]uint8, 0, b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out = append(out, color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y)
		}
	}
	return out
}

// Files ITK wrote (MetaImage raw and zlib .zraw, NRRD detached raw) read
// to the pixels of their PNG twins, and the rotated pairs to the same
// affine in both formats: an oracle independent of this package's writers.
func TestITKExampleFiles(t *testing.T) {
	dir := itkData(t)
	cases := []struct{ file, png string }{
		{"BrainProtonDensitySliceBorder20.mhd", "BrainProtonDensitySliceBorder20.png"},
		{"BrainProtonDensitySliceBorder20.nhdr", "BrainProtonDensitySliceBorder20.png"},
		{"BrainProtonDensitySliceBorder20DirectionPlus30.mhd", "BrainProtonDensitySliceBorder20.png"},
		{"BrainProtonDensitySliceBorder20DirectionPlus30.nhdr", "BrainProtonDensitySliceBorder20.png"},
		{"BrainT1SliceBorder20DirectionPlus30.mhd", "BrainT1SliceBorder20.png"},
		{"BrainT1SliceBorder20DirectionPlus30.nhdr", "BrainT1SliceBorder20.png"},
		{"BrainProtonDensitySliceShifted13x17y.mhd", "BrainProtonDensitySliceShifted13x17y.png"},
		{"BrainProtonDensitySliceShifted13x17y.nhdr", "BrainProtonDensitySliceShifted13x17y.png"},
	}
	for _, c := range cases {
		img, err := ReadImage(filepath.Join(dir, c.file))
		require.NoError(t, err, c.file)
		ref, err := ReadImage(filepath.Join(dir, c.png))
		require.NoError(t, err)
		assert.Equal(t, ref.Bounds(), img.Bounds(), c.file)
		assert.Equal(t, grey(t, ref), grey(t, img), c.file)
	}
	// The +30 degree rotation: the same affine from ITK's MetaImage
	// TransformMatrix and its NRRD space directions, in RAS (x, y negated).
	for _, stem := range []string{"BrainProtonDensitySliceBorder20DirectionPlus30", "BrainT1SliceBorder20DirectionPlus30"} {
		m, err := ReadVolume(filepath.Join(dir, stem+".mhd"))
		require.NoError(t, err)
		n, err := ReadVolume(filepath.Join(dir, stem+".nhdr"))
		require.NoError(t, err)
		want := [3][4]float64{{-0.8660254, 0.5, 0, 0}, {-0.5, -0.8660254, 0, 0}, {0, 0, 1, 0}}
		for i := range 3 {
			for j := range 4 {
				assert.InDelta(t, want[i][j], m.Affine[i][j], 1e-6, "%s.mhd [%d][%d]", stem, i, j)
				assert.InDelta(t, want[i][j], n.Affine[i][j], 1e-6, "%s.nhdr [%d][%d]", stem, i, j)
			}
		}
		assert.Equal(t, m.Data, n.Data)
	}
	// A 3-D MetaImage slices axially; four interleaved float channels
	// become frames.
	depth, is3D, err := AxialDepth(filepath.Join(dir, "BrainProtonDensity3Slices.mha"))
	require.NoError(t, err)
	assert.Equal(t, 3, depth)
	assert.True(t, is3D)
	s, err := ReadImage(SlicePath(filepath.Join(dir, "BrainProtonDensity3Slices.mha"), 2))
	require.NoError(t, err)
	assert.Equal(t, image.Rect(0, 0, 181, 217), s.Bounds())
	v, err := ReadVolume(filepath.Join(dir, "BayesianClassifierInitializerMemberships.mhd"))
	require.NoError(t, err)
	assert.Equal(t, [4]int{181, 217, 1, 4}, v.Dim)
	// NumPy reads the interleaved float32 file on its own: (y, x, class)
	// transposed to (class, y, x), the frames' order.
	out := filepath.Join(t.TempDir(), "memberships.npy")
	script := "import numpy as np, sys\n" +
		"a = np.fromfile(sys.argv[1], dtype='<f4').reshape(217, 181, 4)\n" +
		"np.save(sys.argv[2], np.ascontiguousarray(a.transpose(2, 0, 1)).astype('<f8'))\n"
	cmd := exec.Command(py.Python(t), "-c", script, filepath.Join(dir, "BayesianClassifierInitializerMemberships.raw"), out)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	a, err := npy.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, []int{4, 217, 181}, a.Shape)
	assert.Equal(t, a.Data, v.Data)
}

// Colin27 (ch2.nii.gz, 181x217x181) and its AAL labels written as NRRD
// and MetaImage read back to the same voxels, affine and axial slices.
func TestColin27Formats(t *testing.T) {
	if testing.Short() {
		t.Skip("reads and writes the 7-million-voxel Colin27 volume")
	}
	requireDebs(t)
	d, err := FetchDeb(context.Background(), PkgMricronData, mricronDir+"/ch2.nii.gz", DefaultCacheDir())
	require.NoError(t, err)
	src, lbl := d.Path(mricronDir+"/ch2.nii.gz"), d.Path(mricronDir+"/aal.nii.gz")
	v, err := nifti.ReadFile(src)
	require.NoError(t, err)
	lv, err := nifti.ReadFile(lbl)
	require.NoError(t, err)
	dir := t.TempDir()
	for _, ext := range []string{".nrrd", ".mha"} {
		img, lab := filepath.Join(dir, "ch2"+ext), filepath.Join(dir, "aal"+ext)
		writeVolT(t, img, v, v.Datatype)
		writeVolT(t, lab, lv, lv.Datatype)
		got, err := ReadVolume(img)
		require.NoError(t, err)
		assert.Equal(t, v.Dim, got.Dim)
		assert.Equal(t, v.Data, got.Data)
		assert.Equal(t, v.Orientation(), got.Orientation())
		for i := range 3 {
			for j := range 4 {
				assert.InDelta(t, v.Affine[i][j], got.Affine[i][j], 1e-9)
			}
		}
		depth, _, err := AxialDepth(img)
		require.NoError(t, err)
		want, _, err := AxialDepth(src)
		require.NoError(t, err)
		require.Equal(t, want, depth)
		for _, k := range []int{0, depth / 3, depth / 2, depth - 1} {
			a, err := ReadImage(SlicePath(src, k))
			require.NoError(t, err)
			b, err := ReadImage(SlicePath(img, k))
			require.NoError(t, err)
			assert.Equal(t, a, b, "slice %d of %s", k, img)
			ma, err := ReadMask(SlicePath(lbl, k))
			require.NoError(t, err)
			mb, err := ReadMask(SlicePath(lab, k))
			require.NoError(t, err)
			assert.Equal(t, ma, mb, "label slice %d of %s", k, lab)
		}
	}
}
