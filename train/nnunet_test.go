package train_test

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/data/nifti"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/train"
)

func writeFileT(t *testing.T, p string, write func(f *os.File) error) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	f, err := os.Create(p)
	require.NoError(t, err)
	require.NoError(t, write(f))
	require.NoError(t, f.Close())
}

// disc is a w×h grey image of a bright disc at (cx, cy) and its mask.
func disc(w, h, cx, cy, r int) (*image.Gray, *image.Gray) {
	img, m := image.NewGray(image.Rect(0, 0, w, h)), image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Pix[y*w+x] = uint8(20 + (x*y)%17)
			if (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r {
				img.Pix[y*w+x], m.Pix[y*w+x] = 200, 1
			}
		}
	}
	return img, m
}

// TestNNUNetRawTrainsAndTests trains one epoch on nnU-Net raw data sets as
// they are (2-D PNG with three channel files per case; 3-D NIfTI cut into
// axial slices) and a MONAI data list, then tests the held-out fold.
func TestNNUNetRawTrainsAndTests(t *testing.T) {
	root := t.TempDir()
	png2d := filepath.Join(root, "Dataset001_Disc")
	js := func(p string, v any) {
		writeFileT(t, p, func(f *os.File) error { return json.NewEncoder(f).Encode(v) })
	}
	js(filepath.Join(png2d, "dataset.json"), map[string]any{"channel_names": map[string]string{"0": "R", "1": "G", "2": "B"},
		"labels": map[string]int{"background": 0, "disc": 1}, "numTraining": 6, "file_ending": ".png"})
	for i := range 6 {
		img, m := disc(32, 32, 10+2*i, 16, 6)
		for c := range 3 {
			writeFileT(t, filepath.Join(png2d, "imagesTr", fmt.Sprintf("disc_%03d_%04d.png", i, c)), func(f *os.File) error { return png.Encode(f, img) })
		}
		writeFileT(t, filepath.Join(png2d, "labelsTr", fmt.Sprintf("disc_%03d.png", i)), func(f *os.File) error { return png.Encode(f, m) })
	}
	vol3d := filepath.Join(root, "Dataset002_Ball")
	js(filepath.Join(vol3d, "dataset.json"), map[string]any{"channel_names": map[string]string{"0": "MRI"},
		"labels": map[string]int{"background": 0, "ball": 1}, "numTraining": 4, "file_ending": ".nii.gz"})
	var entries []map[string]string
	for i := range 4 {
		v := &nifti.Volume{Dim: [4]int{32, 32, 4, 1}, Spacing: [3]float64{1, 1, 2}, Affine: [3][4]float64{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 2, 0}}}
		l := *v
		for k := range 4 {
			img, m := disc(32, 32, 12+i, 14+k, 5+k)
			for _, p := range img.Pix {
				v.Data = append(v.Data, float64(p)*3.5) // not 8-bit: scaled by the volume's percentiles
			}
			for _, p := range m.Pix {
				l.Data = append(l.Data, float64(p))
			}
		}
		img := filepath.Join(vol3d, "imagesTr", fmt.Sprintf("ball_%03d_0000.nii.gz", i))
		lbl := filepath.Join(vol3d, "labelsTr", fmt.Sprintf("ball_%03d.nii.gz", i))
		writeFileT(t, img, func(f *os.File) error { return nifti.Encode(f, v, nifti.DTFloat32, true) })
		writeFileT(t, lbl, func(f *os.File) error { return nifti.Encode(f, &l, nifti.DTUint8, true) })
		entries = append(entries, map[string]string{"image": img, "label": lbl})
	}
	list := filepath.Join(root, "datalist.json")
	js(list, map[string]any{"training": entries[:3], "validation": entries[3:], "labels": map[string]string{"0": "background", "1": "ball"}})

	for _, tc := range []struct {
		name, data            string
		fold, folds, channels int
	}{
		{"png-3ch", png2d, 1, 3, 3},
		{"nifti-3d", vol3d, 0, 2, 1},
		{"datalist", list, 0, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(root, "run-"+tc.name)
			tr, err := train.New(train.Options{Model: "unet", Net: models.Config{Width: 4}, Data: tc.data, Out: out, Epochs: 1, Batch: 4,
				Fold: tc.fold, Folds: tc.folds, Workers: 1, Seed: 1, Device: "cpu"})
			require.NoError(t, err)
			run, err := tr.Run(context.Background())
			tr.Close()
			require.NoError(t, err)
			require.Len(t, run.History, 1)
			info, err := models.ReadInfo(filepath.Join(out, train.BestFile))
			require.NoError(t, err)
			assert.Equal(t, int64(tc.channels), info.Config.InChannels)
			assert.Equal(t, 2, len(info.Classes))
			rep, err := train.TestWith(context.Background(), filepath.Join(out, train.BestFile), tc.data,
				data.OpenOptions{Fold: tc.fold, Folds: tc.folds}, []string{"val"}, filepath.Join(root, "test-"+tc.name), "cpu", 4)
			require.NoError(t, err)
			require.Len(t, rep.Tests, 1)
			assert.Equal(t, "val", rep.Tests[0].Split)
		})
	}
}
