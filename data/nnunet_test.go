package data

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data/nifti"
	"github.com/jmedseg/jmedseg/internal/oracle/py"
)

func writeJSONT(t testing.TB, p string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, b, 0o644))
}

func writeNIfTIT(t testing.TB, p string, v *nifti.Volume, dt int16) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	f, err := os.Create(p)
	require.NoError(t, err)
	require.NoError(t, nifti.Encode(f, v, dt, nifti.IsGzipName(p)))
	require.NoError(t, f.Close())
}

// makeNNUNet2D writes an nnU-Net raw data set of n training cases (and 2
// test cases) of three grey PNG channels each, 16x12, labels 0..2.
func makeNNUNet2D(t testing.TB, dir string, n int) {
	t.Helper()
	writeJSONT(t, filepath.Join(dir, "dataset.json"), map[string]any{
		"channel_names": map[string]string{"0": "R", "1": "G", "2": "B"},
		"labels":        map[string]int{"background": 0, "a": 1, "b": 2},
		"numTraining":   n, "file_ending": ".png", "name": "Dataset999_Toy"})
	write := func(sub string, id int, label bool) {
		for c := range 3 {
			g := image.NewGray(image.Rect(0, 0, 16, 12))
			for i := range g.Pix {
				g.Pix[i] = uint8(10*c + i + id)
			}
			writePNGT(t, filepath.Join(dir, "images"+sub, fmt.Sprintf("toy_%03d_%04d.png", id, c)), g)
		}
		if label {
			writePNGT(t, filepath.Join(dir, "labels"+sub, fmt.Sprintf("toy_%03d.png", id)), labelImage(16, 12, 3))
		}
	}
	for i := range n {
		write("Tr", i, true)
	}
	write("Ts", 100, true)
	write("Ts", 101, false)
}

// rasLPS is an affine whose voxel axes point left, posterior, superior: a
// flip of x and y from RAS.
var rasLPS = [3][4]float64{{-1, 0, 0, 7}, {0, -2, 0, 10}, {0, 0, 3, 0}}

// makeNNUNet3D writes n cases of one 3-D NIfTI channel, 8x6x5 voxels in LPS
// orientation: intensity i + 10j + 100k, labels 1 where i >= 4.
func makeNNUNet3D(t testing.TB, dir string, n int) {
	t.Helper()
	writeJSONT(t, filepath.Join(dir, "dataset.json"), map[string]any{
		"channel_names": map[string]string{"0": "MRI"}, "labels": map[string]int{"background": 0, "right": 1},
		"numTraining": n, "file_ending": ".nii.gz"})
	for c := range n {
		img := &nifti.Volume{Dim: [4]int{8, 6, 5, 1}, Spacing: [3]float64{1, 2, 3}, Affine: rasLPS}
		lbl := *img
		for k := range 5 {
			for j := range 6 {
				for i := range 8 {
					img.Data = append(img.Data, float64(i+10*j+100*k+c))
					lbl.Data = append(lbl.Data, float64(min(1, i/4)))
				}
			}
		}
		writeNIfTIT(t, filepath.Join(dir, "imagesTr", fmt.Sprintf("vol_%03d_0000.nii.gz", c)), img, nifti.DTFloat32)
		writeNIfTIT(t, filepath.Join(dir, "labelsTr", fmt.Sprintf("vol_%03d.nii.gz", c)), &lbl, nifti.DTUint8)
	}
}

func TestMT19937Reference(t *testing.T) {
	// The reference outputs of init_genrand(5489): the first, and the
	// 10000th that C++'s std::mt19937 is specified to produce.
	m := newMT19937(5489)
	assert.Equal(t, uint32(3499211612), m.uint32())
	for range 9998 {
		m.uint32()
	}
	assert.Equal(t, uint32(4123659995), m.uint32())
}

// TestKFoldNumPy checks the case order behind the folds against NumPy's
// legacy RandomState(12345).shuffle, and the fold sizes against sklearn
// KFold's rule (the first n % k folds one longer).
func TestKFoldNumPy(t *testing.T) {
	// NumPy alone: py.Python's probe imports torch too, which takes long.
	python := py.Interpreter
	if out, err := exec.Command(python, "-c", "import numpy").CombinedOutput(); err != nil {
		if py.OnCI() {
			t.Fatalf("NumPy oracle missing on CI (apt-get install python3-numpy): %v: %s", err, out)
		}
		t.Skipf("NumPy oracle (python3-numpy) not installed: %v", err)
	}
	sizes := []int{2, 5, 7, 13, 64, 301}
	script := `import numpy as np, sys, json
out = {}
for n in map(int, sys.argv[1:]):
    idx = np.arange(n); np.random.RandomState(12345).shuffle(idx); out[n] = idx.tolist()
print(json.dumps(out))`
	args := []string{"-c", script}
	for _, n := range sizes {
		args = append(args, fmt.Sprint(n))
	}
	cmd := exec.Command(python, args...)
	cmd.Dir = t.TempDir()
	b, err := cmd.Output()
	require.NoError(t, err)
	var want map[string][]int
	require.NoError(t, json.Unmarshal(b, &want))
	for _, n := range sizes {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("case_%04d", i)
		}
		k := min(5, n)
		folds, err := KFold(ids, k)
		require.NoError(t, err)
		var got []int
		for f, fold := range folds {
			wantLen := n / k
			if f < n%k {
				wantLen++
			}
			assert.Len(t, fold, wantLen, "n=%d fold %d", n, f)
			for _, id := range fold {
				var i int
				fmt.Sscanf(id, "case_%04d", &i)
				got = append(got, i)
			}
		}
		assert.Equal(t, want[fmt.Sprint(n)], got, "n=%d", n)
	}
}

func TestKFoldProperties(t *testing.T) {
	ids := []string{"e", "b", "a", "d", "c", "g", "f"}
	a, err := KFold(ids, 3)
	require.NoError(t, err)
	rev := slices.Clone(ids)
	slices.Reverse(rev)
	b, err := KFold(rev, 3) // the input order does not matter

	require.NoError(t, err)
	assert.Equal(t, a, b)
	var all []string
	for _, f := range a {
		all = append(all, f...)
	}
	slices.Sort(all)
	assert.Equal(t, []string{"a", "b", "c", "d", "e", "f", "g"}, all, "each case in exactly one fold")
	for _, tc := range []struct {
		ids []string
		k   int
		msg string
	}{
		{ids, 1, "want 2 to 7 folds"}, {ids, 8, "want 2 to 7 folds"}, {[]string{"a", "a", "b"}, 2, `"a" is listed twice`},
	} {
		_, err := KFold(tc.ids, tc.k)
		assert.ErrorContains(t, err, tc.msg)
	}
}

func caseSet(ss []Sample) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s.Group] {
			seen[s.Group] = true
			out = append(out, s.Group)
		}
	}
	slices.Sort(out)
	return out
}

// checkFolds opens every fold of a data set and checks that the val
// splits are disjoint, cover every case, and never share a case with
// their train split.
func checkFolds(t *testing.T, dir string, k int, cases []string) {
	t.Helper()
	var vals []string
	for f := range k {
		d, err := OpenWith(dir, OpenOptions{Fold: f, Folds: k})
		require.NoError(t, err)
		tr, err := d.Split("train")
		require.NoError(t, err)
		va, err := d.Split("val")
		require.NoError(t, err)
		trc, vac := caseSet(tr), caseSet(va)
		assert.NotEmpty(t, vac)
		for _, c := range vac {
			assert.NotContains(t, trc, c, "fold %d: case %s in train and val", f, c)
		}
		assert.Equal(t, len(cases), len(trc)+len(vac))
		vals = append(vals, vac...)
		again, err := OpenWith(dir, OpenOptions{Fold: f, Folds: k})
		require.NoError(t, err)
		va2, _ := again.Split("val")
		assert.Equal(t, va, va2, "deterministic")
	}
	slices.Sort(vals)
	assert.Equal(t, cases, vals, "the val splits of all folds cover every case once")
}

func TestOpenNNUNet2D(t *testing.T) {
	dir := t.TempDir()
	makeNNUNet2D(t, dir, 7)
	d, err := Open(dir)
	require.NoError(t, err)
	assert.Equal(t, LayoutNNUNet, d.Layout)
	assert.Equal(t, []string{"background", "a", "b"}, d.Manifest.Classes)
	assert.Equal(t, 3, d.Manifest.Channels)
	assert.Equal(t, []string{"train", "val", "test"}, d.Splits())
	tr, _ := d.Split("train")
	va, _ := d.Split("val")
	te, _ := d.Split("test")
	assert.Len(t, va, 2, "fold 0 of 5 over 7 cases holds 2")
	assert.Len(t, tr, 5)
	assert.Len(t, te, 2)
	s := tr[0]
	require.Len(t, s.Channels, 3)
	assert.Equal(t, s.Channels[0], s.Image)
	img, err := ReadSampleImage(s)
	require.NoError(t, err)
	c := color.NRGBA64Model.Convert(img.At(3, 2)).(color.NRGBA64)
	i := 2*16 + 3
	var id int
	fmt.Sscanf(s.ID, "toy_%03d", &id)
	assert.Equal(t, [3]uint16{uint16(i+id) * 257, uint16(10+i+id) * 257, uint16(20+i+id) * 257}, [3]uint16{c.R, c.G, c.B}, "channel files are R, G, B")
	ex, err := LoadExample(s, false, 3)
	require.NoError(t, err)
	assert.Equal(t, 16, ex.Mask.W)

	rep, err := Check(context.Background(), dir, CheckOptions{})
	require.NoError(t, err)
	// The unlabelled test case is the only issue.
	require.Len(t, rep.Issues, 1, "%v", rep.Issues)
	assert.Equal(t, IssueMissingMask, rep.Issues[0].Kind)
	assert.Equal(t, 5, rep.Splits["train"].Valid)
	checkFolds(t, dir, 5, []string{"toy_000", "toy_001", "toy_002", "toy_003", "toy_004", "toy_005", "toy_006"})
	checkFolds(t, dir, 3, []string{"toy_000", "toy_001", "toy_002", "toy_003", "toy_004", "toy_005", "toy_006"})
}

func TestOpenNNUNet3D(t *testing.T) {
	dir := t.TempDir()
	makeNNUNet3D(t, dir, 5)
	d, err := OpenWith(dir, OpenOptions{Fold: 1, Folds: 5})
	require.NoError(t, err)
	tr, err := d.Split("train")
	require.NoError(t, err)
	va, err := d.Split("val")
	require.NoError(t, err)
	assert.Len(t, tr, 4*5, "every axial slice of four cases")
	assert.Len(t, va, 5)
	s := va[2]
	assert.Equal(t, fmt.Sprintf("%s_z002", s.Group), s.ID)
	img, err := ReadImage(s.Image)
	require.NoError(t, err)
	assert.Equal(t, image.Rect(0, 0, 8, 6), img.Bounds())
	m, err := ReadMask(s.Mask)
	require.NoError(t, err)
	// LPS stored: RAS x = 7-i, RAS y = 5-j; rows run anterior (y=5) first,
	// so pixel (x, row) holds stored i = 7-x, j = row; the right half of
	// the image (x >= 4) is the subject's right, stored i <= 3: label 0.
	var c int
	fmt.Sscanf(s.Group, "vol_%03d", &c)
	for _, p := range [][2]int{{0, 0}, {7, 5}, {3, 2}} {
		x, row := p[0], p[1]
		i, j := 7-x, row
		assert.Equal(t, int32(min(1, i/4)), m.At(x, row), "label at (%d,%d)", x, row)
		_ = j
	}
	// Intensities are ordered as the stored voxels i + 10j + 100k + c.
	g := img.(*image.Gray16)
	assert.Greater(t, g.Gray16At(0, 5).Y, g.Gray16At(7, 0).Y, "voxel (7,5) is brighter than (0,0)")
	rep, err := Check(context.Background(), dir, CheckOptions{})
	require.NoError(t, err)
	assert.Empty(t, rep.Issues)
	assert.Equal(t, 25, rep.Splits["train"].Valid+rep.Splits["val"].Valid)
	checkFolds(t, dir, 5, []string{"vol_000", "vol_001", "vol_002", "vol_003", "vol_004"})
}

func TestAxialOrientation(t *testing.T) {
	// A RAS volume's slice k is plane k with anterior (high j) at the top.
	v := &nifti.Volume{Dim: [4]int{3, 2, 2, 1}, Spacing: [3]float64{1, 1, 1},
		Affine: [3][4]float64{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}}}
	for i := range 12 {
		v.Data = append(v.Data, float64(i))
	}
	a, err := Axial(v)
	require.NoError(t, err)
	require.Len(t, a.Images, 2)
	assert.Equal(t, 1*3*2+1*3+0, a.StoredIndex(1, 0, 0), "slice 1, top-left: i=0, j=1 (anterior), k=1")
	assert.Equal(t, 0*3*2+0*3+2, a.StoredIndex(0, 2, 1))
	assert.Equal(t, uint16(65535), a.Images[1].Gray16At(2, 0).Y, "the brightest voxel, 11, is (2,1,1)")
}

func TestOpenNNUNetProblems(t *testing.T) {
	dir := t.TempDir()
	makeNNUNet2D(t, dir, 6)
	require.NoError(t, os.Remove(filepath.Join(dir, "imagesTr", "toy_002_0001.png")))
	d, err := Open(dir)
	require.NoError(t, err)
	rep, err := Check(context.Background(), dir, CheckOptions{})
	require.NoError(t, err)
	var kinds []string
	for _, is := range rep.Issues {
		kinds = append(kinds, is.Kind+": "+is.Message)
	}
	joined := strings.Join(kinds, "\n")
	assert.Contains(t, joined, "case toy_002: channel file 0001 is missing (channel_names lists 3 channels; the case has 2 files)")
	assert.Contains(t, joined, "numTraining is 6 but imagesTr/ holds 5 cases")
	_, err = d.Split("train")
	assert.ErrorContains(t, err, "toy_002", "a case with a missing channel is refused, not dropped")

	for _, tc := range []struct {
		labels any
		ending string
		msg    string
	}{
		{map[string]any{"background": 0, "whole": []int{1, 2}}, ".png", "region-based nnU-Net labels are not supported"},
		{map[string]any{"background": 0, "a": 2}, ".png", "without gaps"},
		{map[string]any{"background": 0, "a": 1}, ".tif", "convert others"},
		{nil, ".png", "no \"labels\""},
	} {
		d := t.TempDir()
		writeJSONT(t, filepath.Join(d, "dataset.json"), map[string]any{"channel_names": map[string]string{"0": "x"}, "labels": tc.labels, "file_ending": tc.ending})
		_, err := Open(d)
		assert.ErrorContains(t, err, tc.msg)
		assert.ErrorContains(t, err, filepath.Join(d, "dataset.json"))
	}

	two := t.TempDir()
	writeJSONT(t, filepath.Join(two, "dataset.json"), map[string]any{"channel_names": map[string]string{"0": "T2", "1": "ADC"},
		"labels": map[string]int{"background": 0, "p": 1}, "file_ending": ".png"})
	for i := range 3 {
		for c := range 2 {
			writePNGT(t, filepath.Join(two, "imagesTr", fmt.Sprintf("p_%d_%04d.png", i, c)), greyImage(8, 8))
		}
		writePNGT(t, filepath.Join(two, "labelsTr", fmt.Sprintf("p_%d.png", i)), labelImage(8, 8, 2))
	}
	d2, err := OpenWith(two, OpenOptions{Folds: 3})
	require.NoError(t, err)
	tr2, err := d2.Split("train")
	require.NoError(t, err, "two channel files per case train (as Planes)")
	img2, err := ReadSampleImage(tr2[0])
	require.NoError(t, err)
	require.IsType(t, &Planes{}, img2)
	assert.Equal(t, 2, img2.(*Planes).Channels())

	_, err = OpenWith(dir, OpenOptions{Folds: 7})
	assert.ErrorContains(t, err, "7 folds of 5 training cases")
	_, err = OpenWith(dir, OpenOptions{Fold: 5, Folds: 5})
	assert.ErrorContains(t, err, "want 0 <= fold < folds")

	own := t.TempDir()
	makeDataset(t, own, map[string]int{"train": 2, "val": 1}, 8, 8, 2)
	_, err = OpenWith(own, OpenOptions{Fold: 1, Folds: 5})
	assert.ErrorContains(t, err, "has its own train and val splits")
}

func TestNNUNetSplitsFinal(t *testing.T) {
	dir := t.TempDir()
	makeNNUNet2D(t, dir, 4)
	writeJSONT(t, filepath.Join(dir, splitsFile), []map[string][]string{
		{"train": {"toy_002", "toy_003"}, "val": {"toy_000", "toy_001"}},
		{"train": {"toy_000", "toy_001"}, "val": {"toy_002", "toy_003"}}})
	d, err := OpenWith(dir, OpenOptions{Fold: 1})
	require.NoError(t, err)
	va, _ := d.Split("val")
	assert.Equal(t, []string{"toy_002", "toy_003"}, caseSet(va))
	_, err = OpenWith(dir, OpenOptions{Folds: 5})
	assert.ErrorContains(t, err, "holds 2 folds, --folds asks for 5")
}

func TestDataList(t *testing.T) {
	dir := t.TempDir()
	makeNNUNet3D(t, filepath.Join(dir, "raw"), 4)
	var entries []map[string]any
	for c := range 4 {
		entries = append(entries, map[string]any{"image": fmt.Sprintf("raw/imagesTr/vol_%03d_0000.nii.gz", c),
			"label": fmt.Sprintf("./raw/labelsTr/vol_%03d.nii.gz", c)})
	}
	// Folds by KFold when the list has no validation.
	list := filepath.Join(dir, "list.json")
	writeJSONT(t, list, map[string]any{"training": entries, "test": []string{"raw/imagesTr/vol_000_0000.nii.gz"}})
	d, err := OpenWith(list, OpenOptions{Folds: 4, Fold: 3})
	require.NoError(t, err)
	assert.Equal(t, LayoutDataList, d.Layout)
	assert.Nil(t, d.Manifest, "no labels in a plain data list: train asks for --classes")
	te, err := d.Split("test")
	require.NoError(t, err)
	assert.Len(t, te, 5)
	assert.Empty(t, te[0].Mask)
	checkFolds(t, list, 4, []string{"vol_000_0000", "vol_001_0000", "vol_002_0000", "vol_003_0000"})
	rep, err := Check(context.Background(), list, CheckOptions{Classes: 2})
	require.NoError(t, err)
	for _, is := range rep.Issues {
		assert.Equal(t, IssueMissingMask, is.Kind, "%v", is)
	}

	// A validation list, and multi-channel entries.
	writeJSONT(t, list, map[string]any{"training": entries[:3], "validation": entries[3:],
		"labels": map[string]string{"0": "background", "1": "right"}})
	d, err = Open(list)
	require.NoError(t, err)
	va, _ := d.Split("val")
	assert.Equal(t, []string{"vol_003_0000"}, caseSet(va))
	assert.Equal(t, []string{"background", "right"}, d.Manifest.Classes)
	_, err = OpenWith(list, OpenOptions{Folds: 3})
	assert.ErrorContains(t, err, "has a \"validation\" list")

	// Fold keys, and a Decathlon directory (dataset.json with "training").
	for i, e := range entries {
		e["fold"] = i % 2
	}
	writeJSONT(t, filepath.Join(dir, "dataset.json"), map[string]any{"training": entries, "labels": map[string]string{"0": "bg", "1": "r"}})
	d, err = OpenWith(dir, OpenOptions{Fold: 1})
	require.NoError(t, err)
	va, _ = d.Split("val")
	assert.Equal(t, []string{"vol_001_0000", "vol_003_0000"}, caseSet(va))
	_, err = OpenWith(dir, OpenOptions{Folds: 5})
	assert.ErrorContains(t, err, "entries give 2 folds")

	entries[0]["image"] = "raw/imagesTr/missing.nii.gz"
	writeJSONT(t, list, map[string]any{"training": entries})
	d, err = Open(list)
	require.NoError(t, err)
	rep, err = Check(context.Background(), list, CheckOptions{Classes: 2})
	require.NoError(t, err)
	require.NotEmpty(t, rep.Issues)
	assert.Equal(t, IssueMissingImage, rep.Issues[0].Kind)
	assert.Contains(t, rep.Issues[0].File, "missing.nii.gz")
}
