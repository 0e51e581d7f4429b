package dicom

import (
	"image"
	"os"
	"path/filepath"
	"testing"

	"github.com/jmedseg/jmedseg/data"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadFile(t *testing.T) {
	tests := []struct {
		file     string
		min, max float64
		at       func(im image.Image, x, y int) float64
		want     func(x, y int) float64
	}{
		{"mono16.dcm", 0, 230, grey16, func(x, y int) float64 { return float64(100*y+10*x) / 230 }},
		{"ct_signed.dcm", -1224, -764, grey16, func(x, y int) float64 { return float64(2*(100*y+10*x-100)-1024+1224) / 460 }},
		{"mono1_8bit.dcm", 0, 230, grey16, func(x, y int) float64 { return 1 - float64(min(255, 100*y+10*x))/230 }},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			im, err := ReadFile(filepath.Join("testdata", tc.file))
			require.NoError(t, err)
			assert.Equal(t, "MR", im.Modality)
			assert.Equal(t, [2]float64{0.75, 0.5}, im.PixelSpacing)
			assert.Equal(t, image.Rect(0, 0, 4, 3), im.Image.Bounds())
			assert.Equal(t, tc.min, im.Min)
			assert.Equal(t, tc.max, im.Max)
			for y := range 3 {
				for x := range 4 {
					assert.InDelta(t, tc.want(x, y), tc.at(im.Image, x, y), 1e-4, "(%d,%d)", x, y)
				}
			}
		})
	}
	rgb, err := ReadFile("testdata/rgb8.dcm")
	require.NoError(t, err)
	m := rgb.Image.(*image.NRGBA)
	assert.Equal(t, []uint8{255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 9, 9, 9, 255}, m.Pix)
}

func grey16(im image.Image, x, y int) float64 {
	return float64(im.(*image.Gray16).Gray16At(x, y).Y) / 65535
}

func TestViaDataReadImage(t *testing.T) {
	im, err := data.ReadImage("testdata/mono16.dcm")
	require.NoError(t, err)
	assert.IsType(t, &image.Gray16{}, im)
}

func TestCorrupt(t *testing.T) {
	good, err := os.ReadFile("testdata/mono16.dcm")
	require.NoError(t, err)
	dir := t.TempDir()
	for name, b := range map[string][]byte{
		"empty.dcm":     nil,
		"text.dcm":      []byte("hello, this is not dicom at all, not even close....................................................................................................."),
		"truncated.dcm": good[:len(good)-10],
		"header.dcm":    good[:200],
	} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o644))
		_, err := data.ReadImage(p)
		assert.Error(t, err, name)
		if err != nil {
			assert.Contains(t, err.Error(), name)
		}
	}
}

func FuzzReadFile(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.dcm")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "f.dcm")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = ReadFile(p)
	})
}
