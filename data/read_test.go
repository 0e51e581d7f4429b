package data

import (
	"image"
	"image/color"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadImage(t *testing.T) {
	dir := t.TempDir()
	rgb := image.NewNRGBA(image.Rect(0, 0, 5, 4))
	for i := range rgb.Pix {
		rgb.Pix[i] = uint8(i)
	}
	g16 := image.NewGray16(image.Rect(0, 0, 5, 4))
	g16.SetGray16(1, 1, color.Gray16{Y: 40000})
	rgb64 := image.NewRGBA64(image.Rect(0, 0, 5, 4))
	rgb64.SetRGBA64(2, 3, color.RGBA64{R: 1000, G: 2000, B: 3000, A: 65535})
	writePNGT(t, filepath.Join(dir, "grey.png"), greyImage(5, 4))
	writePNGT(t, filepath.Join(dir, "rgb.png"), rgb)
	writePNGT(t, filepath.Join(dir, "g16.png"), g16)
	writePNGT(t, filepath.Join(dir, "rgb16.png"), rgb64)
	writeJPEGT(t, filepath.Join(dir, "grey.jpg"), greyImage(5, 4))
	writeJPEGT(t, filepath.Join(dir, "rgb.jpeg"), rgb)
	writeNPYT(t, filepath.Join(dir, "hw.npy"), "u1", []int{4, 5}, make([]float64, 20))
	writeNPYT(t, filepath.Join(dir, "hwc.npy"), "u1", []int{4, 5, 3}, make([]float64, 60))
	writeNPYT(t, filepath.Join(dir, "chw.npy"), "f4", []int{3, 4, 5}, make([]float64, 60))
	writeNPYT(t, filepath.Join(dir, "u2.npy"), "u2", []int{4, 5}, make([]float64, 20))
	writeNPYT(t, filepath.Join(dir, "bad_c.npy"), "u1", []int{5, 6, 2}, make([]float64, 60))
	writeNPYT(t, filepath.Join(dir, "vol.npy"), "u1", []int{2, 4, 5, 5}, make([]float64, 200))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "corrupt.png"), []byte("\x89PNG\r\n\x1a\nbroken"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x.tiff"), []byte("II*"), 0o644))
	tests := []struct {
		file string
		w, h int
		want any // type of the decoded image
		err  string
	}{
		{"grey.png", 5, 4, &image.Gray{}, ""},
		{"rgb.png", 5, 4, &image.NRGBA{}, ""},
		{"g16.png", 5, 4, &image.Gray16{}, ""},
		{"rgb16.png", 5, 4, &image.NRGBA64{}, ""},
		{"grey.jpg", 5, 4, &image.Gray{}, ""},
		{"rgb.jpeg", 5, 4, &image.YCbCr{}, ""},
		{"hw.npy", 5, 4, &image.Gray{}, ""},
		{"hwc.npy", 5, 4, &image.NRGBA{}, ""},
		{"chw.npy", 5, 4, &image.NRGBA64{}, ""},
		{"u2.npy", 5, 4, &image.Gray16{}, ""},
		{"testdata/image_f4_4x3.nii", 4, 3, &image.Gray16{}, ""},
		{"bad_c.npy", 0, 0, nil, "wrong channel count"},
		{"vol.npy", 0, 0, nil, "not a 2D image"},
		{"nifti/testdata/u1_sform.nii", 0, 0, nil, "not a 2D image"},
		{"corrupt.png", 0, 0, nil, "corrupt image"},
		{"missing.png", 0, 0, nil, "no such file"},
		{"x.tiff", 0, 0, nil, "unknown image format"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			p := filepath.Join(dir, tc.file)
			if filepath.Dir(tc.file) != "." {
				p = tc.file
			}
			img, err := ReadImage(p)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.Contains(t, err.Error(), filepath.Base(tc.file), "error names the file")
				var fe *FileError
				assert.ErrorAs(t, err, &fe)
				return
			}
			require.NoError(t, err)
			assert.IsType(t, tc.want, img)
			assert.Equal(t, image.Rect(0, 0, tc.w, tc.h), img.Bounds())
		})
	}
}

func TestReadImageNIfTIValues(t *testing.T) {
	img, err := ReadImage("testdata/image_f4_4x3.nii")
	require.NoError(t, err)
	g := img.(*image.Gray16)
	// Values i/11 in [0,1] are intensities: (x + 4y)/11 * 65535.
	assert.Equal(t, uint16(0), g.Gray16At(0, 0).Y)
	assert.Equal(t, uint16(65535), g.Gray16At(3, 2).Y)
	assert.InDelta(t, 5.0/11*65535, float64(g.Gray16At(1, 1).Y), 1)
}

func TestReadMask(t *testing.T) {
	dir := t.TempDir()
	pal := image.NewPaletted(image.Rect(0, 0, 3, 2), color.Palette{color.Black, color.White, color.Gray{Y: 9}})
	pal.Pix = []uint8{0, 1, 2, 2, 1, 0}
	g16 := image.NewGray16(image.Rect(0, 0, 3, 2))
	g16.SetGray16(2, 1, color.Gray16{Y: 300})
	rgbGrey := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	rgbCol := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	for i := 0; i < len(rgbGrey.Pix); i += 4 {
		v := uint8(i / 4)
		copy(rgbGrey.Pix[i:], []uint8{v, v, v, 255})
		copy(rgbCol.Pix[i:], []uint8{v, 0, 9, 255})
	}
	writePNGT(t, filepath.Join(dir, "grey.png"), labelImage(3, 2, 3))
	writePNGT(t, filepath.Join(dir, "pal.png"), pal)
	writePNGT(t, filepath.Join(dir, "g16.png"), g16)
	writePNGT(t, filepath.Join(dir, "rgbgrey.png"), rgbGrey)
	writePNGT(t, filepath.Join(dir, "rgbcol.png"), rgbCol)
	writeJPEGT(t, filepath.Join(dir, "m.jpg"), labelImage(3, 2, 3))
	writeNPYT(t, filepath.Join(dir, "i8.npy"), "i8", []int{2, 3}, []float64{0, 1, 2, 0, 1, 5})
	writeNPYT(t, filepath.Join(dir, "chw.npy"), "u1", []int{1, 2, 3}, []float64{0, 1, 2, 0, 1, 5})
	writeNPYT(t, filepath.Join(dir, "frac.npy"), "f4", []int{2, 3}, []float64{0, 0.5, 1, 0, 1, 1})
	writeNPYT(t, filepath.Join(dir, "neg.npy"), "i2", []int{2, 3}, []float64{0, -1, 1, 0, 1, 1})
	writeNPYT(t, filepath.Join(dir, "rgb.npy"), "u1", []int{2, 3, 3}, make([]float64, 18))
	tests := []struct {
		file string
		pix  []int32
		err  string
	}{
		{"grey.png", []int32{0, 1, 2, 0, 1, 2}, ""},
		{"pal.png", []int32{0, 1, 2, 2, 1, 0}, ""},
		{"g16.png", []int32{0, 0, 0, 0, 0, 300}, ""},
		{"rgbgrey.png", []int32{0, 1, 2, 3, 4, 5}, ""},
		{"i8.npy", []int32{0, 1, 2, 0, 1, 5}, ""},
		{"chw.npy", []int32{0, 1, 2, 0, 1, 5}, ""},
		{"testdata/mask_u1_4x3.nii", []int32{0, 0, 1, 1, 0, 2, 2, 1, 0, 0, 0, 1}, ""},
		{"rgbcol.png", nil, "wrong channel count"},
		{"rgb.npy", nil, "wrong channel count"},
		{"m.jpg", nil, "JPEG masks are not supported"},
		{"frac.npy", nil, "not a class label"},
		{"neg.npy", nil, "not a class label"},
		{"none.png", nil, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			p := filepath.Join(dir, tc.file)
			if filepath.Dir(tc.file) != "." {
				p = tc.file
			}
			m, err := ReadMask(p)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.Contains(t, err.Error(), filepath.Base(tc.file))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.pix, m.Pix)
		})
	}
}

func TestMask(t *testing.T) {
	m := NewMask(3, 2)
	m.Set(2, 1, 4)
	m.Set(0, 0, 1)
	assert.Equal(t, []int32{0, 1, 4}, m.Labels())
	assert.Equal(t, int32(4), m.Max())
	assert.NoError(t, m.CheckRange(5))
	assert.ErrorContains(t, m.CheckRange(4), "label 4 at (2,1) is out of range [0,4)")
	c := m.Clone()
	c.Set(0, 0, 2)
	assert.Equal(t, int32(1), m.At(0, 0))
	img, err := m.Image()
	require.NoError(t, err)
	assert.IsType(t, &image.Gray{}, img)
	m.Set(1, 1, 1000)
	img, err = m.Image()
	require.NoError(t, err)
	assert.IsType(t, &image.Gray16{}, img)
	back, err := imageMask(img)
	require.NoError(t, err)
	assert.Equal(t, m.Pix, back.Pix)
	m.Set(1, 1, -1)
	_, err = m.Image()
	assert.Error(t, err)
}

func FuzzArrayImage(f *testing.F) {
	f.Add([]byte{2, 3, 1}, []byte{1, 2, 3, 4, 5, 6}, uint8(0))
	f.Add([]byte{3, 2, 2}, []byte{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}, uint8(3))
	dtypes := []string{"u1", "i1", "b1", "u2", "i4", "f4", "f8"}
	f.Fuzz(func(t *testing.T, dims []byte, vals []byte, dt uint8) {
		if len(dims) > 4 {
			return
		}
		shape := make([]int, len(dims))
		n := 1
		for i, d := range dims {
			shape[i] = int(d % 8)
			n *= shape[i]
		}
		data := make([]float64, n)
		for i := range data {
			if len(vals) > 0 {
				data[i] = float64(int8(vals[i%len(vals)])) / 3
			}
		}
		_, _ = arrayImage(shape, data, dtypes[int(dt)%len(dtypes)])
		_, _ = arrayMask(shape, data)
	})
}
