package nifti

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func want(i, j, k int) float64 { return float64(i + 10*j + 100*k) }

func TestReadGolden(t *testing.T) {
	tests := []struct {
		file   string
		dt     int16
		scale  func(float64) float64
		source string
		orient string
	}{
		{"u1_sform.nii", DTUint8, nil, "sform", "RAS"},
		{"u1_sform.nii.gz", DTUint8, nil, "sform", "RAS"},
		{"i2_sform.nii", DTInt16, nil, "sform", "RAS"},
		{"i2_be_sform.nii", DTInt16, nil, "sform", "RAS"},
		{"i4_sform.nii", DTInt32, nil, "sform", "RAS"},
		{"f4_sform.nii", DTFloat32, nil, "sform", "RAS"},
		{"f8_sform.nii", DTFloat64, nil, "sform", "RAS"},
		{"i2_scaled.nii", DTInt16, func(x float64) float64 { return x*0.5 - 1 }, "sform", "RAS"},
		{"u1_qform_lsa.nii", DTUint8, nil, "qform", "LSA"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			v, err := ReadFile(filepath.Join("testdata", tc.file))
			require.NoError(t, err)
			assert.Equal(t, [4]int{3, 4, 2, 1}, v.Dim)
			assert.Equal(t, tc.dt, v.Datatype)
			assert.Equal(t, tc.source, v.AffineSource)
			assert.Equal(t, tc.orient, v.Orientation())
			assert.Equal(t, "golden", v.Description)
			for k := range 2 {
				for j := range 4 {
					for i := range 3 {
						w := want(i, j, k)
						if tc.scale != nil {
							w = tc.scale(w)
						}
						require.Equal(t, w, v.At(i, j, k), "voxel %d,%d,%d", i, j, k)
					}
				}
			}
		})
	}
}

func TestAffine(t *testing.T) {
	v, err := ReadFile("testdata/f4_sform.nii")
	require.NoError(t, err)
	assert.Equal(t, [3][4]float64{{2, 0, 0, -10}, {0, 3, 0, -20}, {0, 0, 4, -30}}, v.Affine)
	assert.Equal(t, [3]float64{2, 3, 4}, v.Spacing)

	q, err := ReadFile("testdata/u1_qform_lsa.nii")
	require.NoError(t, err)
	exp := [3][4]float64{{-2, 0, 0, 0}, {0, 0, 3, -254}, {0, 2, 0, 0}}
	for i := range 3 {
		for j := range 4 {
			assert.InDelta(t, exp[i][j], q.Affine[i][j], 1e-5, "affine[%d][%d]", i, j)
		}
	}
}

func TestToRASAndSlice(t *testing.T) {
	v, err := ReadFile("testdata/u1_qform_lsa.nii")
	require.NoError(t, err)
	r := v.ToRAS()
	assert.Equal(t, "RAS", r.Orientation())
	// Old axes (i: L, j: S, k: A) become (R: flipped i, A: k, S: j).
	assert.Equal(t, [4]int{3, 2, 4, 1}, r.Dim)
	assert.Equal(t, [3]float64{2, 3, 2}, r.Spacing)
	for z := range 4 {
		for y := range 2 {
			for x := range 3 {
				require.Equal(t, want(2-x, z, y), r.At(x, y, z))
			}
		}
	}
	// World coordinates of a voxel are unchanged by reorientation.
	world := func(v *Volume, i, j, k float64) [3]float64 {
		var w [3]float64
		for r := range 3 {
			w[r] = v.Affine[r][0]*i + v.Affine[r][1]*j + v.Affine[r][2]*k + v.Affine[r][3]
		}
		return w
	}
	a, b := world(v, 0, 3, 1), world(r, 2, 1, 3)
	for i := range 3 {
		assert.InDelta(t, a[i], b[i], 1e-4)
	}

	tests := []struct {
		axis, index, w, h int
		spacing           [2]float64
		at                func(x, y int) float64
	}{
		{2, 1, 3, 4, [2]float64{2, 3}, func(x, y int) float64 { return want(x, y, 1) }},
		{1, 3, 3, 2, [2]float64{2, 4}, func(x, y int) float64 { return want(x, 3, y) }},
		{0, 2, 4, 2, [2]float64{3, 4}, func(x, y int) float64 { return want(2, x, y) }},
	}
	f, err := ReadFile("testdata/f4_sform.nii")
	require.NoError(t, err)
	for _, tc := range tests {
		s, err := f.Slice(tc.axis, tc.index)
		require.NoError(t, err)
		assert.Equal(t, tc.w, s.W)
		assert.Equal(t, tc.h, s.H)
		assert.Equal(t, tc.spacing, s.Spacing)
		for y := 0; y < s.H; y++ {
			for x := 0; x < s.W; x++ {
				require.Equal(t, tc.at(x, y), s.Data[x+s.W*y])
			}
		}
	}
	_, err = f.Slice(3, 0)
	assert.ErrorContains(t, err, "axis")
	_, err = f.Slice(2, 2)
	assert.ErrorContains(t, err, "out of range")
}

func TestDecodeErrors(t *testing.T) {
	good, err := os.ReadFile("testdata/i2_sform.nii")
	require.NoError(t, err)
	patch := func(off int, b ...byte) []byte {
		c := bytes.Clone(good)
		copy(c[off:], b)
		return c
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "header truncated"},
		{"short", good[:100], "header truncated"},
		{"not nifti", bytes.Repeat([]byte{7}, 400), "not a NIfTI-1 file"},
		{"bad magic", patch(344, 'x', 'x', 'x', 0), "bad magic"},
		{"pair", patch(344, 'n', 'i', '1', 0), "two-file"},
		{"rgb", patch(70, 128, 0, 24, 0), "unsupported voxel type rgb24"},
		{"bitpix", patch(72, 8, 0), "bitpix"},
		{"dims", patch(40, 9, 0), "number of dimensions"},
		{"zero dim", patch(42, 0, 0), "has size 0"},
		{"huge", patch(42, 0xff, 0x7f, 0xff, 0x7f, 0xff, 0x7f), "too large"},
		{"truncated data", good[:len(good)-3], "voxel data truncated"},
		{"corrupt gzip", []byte{0x1f, 0x8b, 1, 2, 3}, "gzip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(bytes.NewReader(tc.in))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err = ReadFile("testdata/missing.nii")
	assert.ErrorContains(t, err, "missing.nii")
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.nii*")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(v.Data) != v.Dim[0]*v.Dim[1]*v.Dim[2]*v.Dim[3] {
			t.Fatalf("dims %v but %d voxels", v.Dim, len(v.Data))
		}
		r := v.ToRAS()
		if _, err := r.Slice(2, 0); err != nil {
			t.Fatal(err)
		}
	})
}
