package train_test

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/data/nifti"
	"github.com/jmedseg/jmedseg/data/npy"
	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/train"
)

// channelDisc is channel k of a multi-channel case: disc's image with a
// contrast of its own per channel (channel 1 inverted), and disc's mask.
func channelDisc(w, h, cx, cy, r, k int) (*image.Gray, *image.Gray) {
	img, m := disc(w, h, cx, cy, r)
	for i, v := range img.Pix {
		switch k % 3 {
		case 1:
			img.Pix[i] = 255 - v
		case 2:
			img.Pix[i] = v/2 + uint8(9*k)
		}
	}
	return img, m
}

// writeChannelSet writes an nnU-Net raw data set of n 2-D cases of c PNG
// channel files (w×h).
func writeChannelSet(t *testing.T, dir string, n, c, w, h int) {
	names := map[string]string{}
	for k := range c {
		names[fmt.Sprint(k)] = fmt.Sprintf("mod%d", k)
	}
	writeFileT(t, filepath.Join(dir, "dataset.json"), func(f *os.File) error {
		_, err := fmt.Fprintf(f, `{"channel_names": %s, "labels": {"background": 0, "disc": 1}, "numTraining": %d, "file_ending": ".png"}`, jsonOf(names), n)
		return err
	})
	for i := range n {
		for k := range c {
			img, m := channelDisc(w, h, w/3+2*i, h/2, w/5, k)
			writeFileT(t, filepath.Join(dir, "imagesTr", fmt.Sprintf("mc_%03d_%04d.png", i, k)), func(f *os.File) error { return png.Encode(f, img) })
			if k == 0 {
				writeFileT(t, filepath.Join(dir, "labelsTr", fmt.Sprintf("mc_%03d.png", i)), func(f *os.File) error { return png.Encode(f, m) })
			}
		}
	}
}

func jsonOf(m map[string]string) string {
	s := "{"
	for k := range len(m) {
		if k > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%q: %q", fmt.Sprint(k), m[fmt.Sprint(k)])
	}
	return s + "}"
}

// eagerProbs is the softmax of the model file's forward on the stacked
// channel files (8-bit PNG: v/255, then the recorded normalisation).
func eagerProbs(t *testing.T, ckpt string, files []string) []float32 {
	m, info, err := models.Load(ckpt)
	require.NoError(t, err)
	defer m.Free()
	m.Eval()
	var x []float32
	var h, w int
	for _, f := range files {
		img, err := data.ReadImage(f)
		require.NoError(t, err)
		g := img.(*image.Gray)
		h, w = g.Rect.Dy(), g.Rect.Dx()
		for _, v := range g.Pix {
			x = append(x, float32(v)/255)
		}
	}
	require.NoError(t, info.Norm.Apply(x, len(files)))
	var out []float32
	torch.NoGrad(func() {
		require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
			y := m.Forward(torch.FromSlice(x, []int64{1, int64(len(files)), int64(h), int64(w)}, s)).Softmax(1)
			var err error
			out, err = y.Float32s()
			return err
		}))
	})
	return out
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// TestMultiChannelNNUNet trains and tests on nnU-Net raw data sets of 2 and
// 4 channel files per case (with geometric and colour augmentation and a
// per-channel normalisation), then predicts their cases: the probabilities
// equal the model's eager forward on the stacked channel files, plain and
// with the sliding window at the model's size; a larger case predicts with
// the sliding window at its own size.
func TestMultiChannelNNUNet(t *testing.T) {
	for _, c := range []int{2, 4} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			root := t.TempDir()
			set := filepath.Join(root, "set")
			writeChannelSet(t, set, 6, c, 32, 32)
			norm := &models.Normalization{}
			for k := range c {
				norm.Mean = append(norm.Mean, 0.2+0.1*float32(k))
				norm.Std = append(norm.Std, 0.3+0.05*float32(k))
			}
			out := filepath.Join(root, "run")
			tr, err := train.New(train.Options{Model: "unet", Net: models.Config{Width: 4}, Data: set, Out: out, Epochs: 1, Batch: 2,
				Fold: 0, Folds: 3, Workers: 1, Seed: 1, Device: "cpu", Geometric: true, Aug: true, Normalize: norm})
			require.NoError(t, err)
			run, err := tr.Run(context.Background())
			tr.Close()
			require.NoError(t, err)
			require.Len(t, run.History, 1)
			ckpt := filepath.Join(out, train.BestFile)
			info, err := models.ReadInfo(ckpt)
			require.NoError(t, err)
			assert.Equal(t, int64(c), info.Config.InChannels)
			assert.Equal(t, norm.Mean, info.Norm.Mean)
			rep, err := train.TestWith(context.Background(), ckpt, set, data.OpenOptions{Fold: 0, Folds: 3}, []string{"val"}, filepath.Join(root, "test"), "cpu", 2)
			require.NoError(t, err)
			require.Len(t, rep.Tests, 1)

			p, err := infer.NewPredictorWith(ckpt, torch.CPU, infer.LoadOptions{NoFuse: true})
			require.NoError(t, err)
			defer p.Close()
			cases, singles, err := infer.Cases(filepath.Join(set, "imagesTr"), c)
			require.NoError(t, err)
			assert.Empty(t, singles)
			require.Len(t, cases, 6)
			assert.Equal(t, "mc_000", cases[0].ID)
			assert.Equal(t, "mc_000.png", cases[0].OutName("png"))
			want := eagerProbs(t, ckpt, cases[0].Files)
			for _, o := range []infer.Options{{}, {SlidingWindow: true}} {
				mask, probs := filepath.Join(root, "pred.png"), filepath.Join(root, "pred.npy")
				require.NoError(t, p.CaseWith(cases[0].Files, mask, probs, o))
				a, err := npy.ReadFile(probs)
				require.NoError(t, err)
				assert.Equal(t, []int{2, 32, 32}, a.Shape)
				got := make([]float32, len(a.Data))
				for i, v := range a.Data {
					got[i] = float32(v)
				}
				assert.Less(t, maxDiff(want, got), 1e-5, "%+v: prediction against the eager forward on the stacked tensor", o)
				m, err := data.ReadMask(mask)
				require.NoError(t, err)
				for i, l := range m.Pix {
					if math.Abs(float64(want[i]-want[1024+i])) > 1e-4 {
						require.Equal(t, int32(map[bool]int{true: 1, false: 0}[want[1024+i] > want[i]]), l, "pixel %d", i)
					}
				}
			}

			big := filepath.Join(root, "big")
			var files []string
			for k := range c {
				img, _ := channelDisc(64, 48, 30, 20, 10, k)
				f := filepath.Join(big, fmt.Sprintf("big_%04d.png", k))
				writeFileT(t, f, func(w *os.File) error { return png.Encode(w, img) })
				files = append(files, f)
			}
			mask := filepath.Join(root, "big.png")
			require.NoError(t, p.CaseWith(files, mask, "", infer.Options{SlidingWindow: true, Overlap: 0.5, TTA: true}))
			m, err := data.ReadMask(mask)
			require.NoError(t, err)
			assert.Equal(t, [2]int{64, 48}, [2]int{m.W, m.H})

			// Errors name the file.
			err = p.CaseWith(files[:c-1], mask, "", infer.Options{})
			assert.ErrorContains(t, err, fmt.Sprintf("%s: the case has %d channel files, the model (unet) takes %d", files[0], c-1, c))
			small := filepath.Join(big, "small.png")
			img, _ := channelDisc(60, 48, 30, 20, 10, 1)
			writeFileT(t, small, func(w *os.File) error { return png.Encode(w, img) })
			err = p.CaseWith(append(files[:1:1], append([]string{small}, files[2:]...)...), mask, "", infer.Options{})
			assert.ErrorContains(t, err, small+": channel 1 is 60x48 but channel 0")
			require.NoError(t, os.Remove(files[c-1]))
			_, _, err = infer.Cases(big, c)
			assert.ErrorContains(t, err, files[c-1]+": channel file")
			_, ok, err := infer.CaseOf(files[0], c)
			assert.False(t, ok)
			assert.ErrorContains(t, err, files[c-1])
			err = p.FileWith(cases[0].Files[0], mask, "", infer.Options{})
			assert.ErrorContains(t, err, cases[0].Files[0])
			assert.ErrorContains(t, err, fmt.Sprintf("the model takes %d: give one grey file per channel", c))
		})
	}
}

// TestMultiChannelVolumes trains on an nnU-Net data set of two NIfTI
// volumes per case (cut into axial slices) and predicts a case: from its
// two files, and from one 4-D NIfTI of the two as frames, alike.
func TestMultiChannelVolumes(t *testing.T) {
	root := t.TempDir()
	set := filepath.Join(root, "set")
	writeFileT(t, filepath.Join(set, "dataset.json"), func(f *os.File) error {
		_, err := f.WriteString(`{"channel_names": {"0": "T2", "1": "ADC"}, "labels": {"background": 0, "ball": 1}, "numTraining": 4, "file_ending": ".nii.gz"}`)
		return err
	})
	vol := func(i, k int) (*nifti.Volume, *nifti.Volume) {
		v := &nifti.Volume{Dim: [4]int{32, 32, 3, 1}, Spacing: [3]float64{1, 1, 2}, Affine: [3][4]float64{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 2, 0}}}
		l := *v
		for z := range 3 {
			img, m := channelDisc(32, 32, 12+i, 14+z, 5+z, k)
			for _, p := range img.Pix {
				v.Data = append(v.Data, float64(p)*(2.5+float64(k)))
			}
			for _, p := range m.Pix {
				l.Data = append(l.Data, float64(p))
			}
		}
		return v, &l
	}
	for i := range 4 {
		for k := range 2 {
			v, l := vol(i, k)
			writeFileT(t, filepath.Join(set, "imagesTr", fmt.Sprintf("ball_%03d_%04d.nii.gz", i, k)), func(f *os.File) error { return nifti.Encode(f, v, nifti.DTFloat32, true) })
			if k == 0 {
				writeFileT(t, filepath.Join(set, "labelsTr", fmt.Sprintf("ball_%03d.nii.gz", i)), func(f *os.File) error { return nifti.Encode(f, l, nifti.DTUint8, true) })
			}
		}
	}
	out := filepath.Join(root, "run")
	tr, err := train.New(train.Options{Model: "unet", Net: models.Config{Width: 4}, Data: set, Out: out, Epochs: 1, Batch: 4,
		Fold: 0, Folds: 2, Workers: 1, Seed: 1, Device: "cpu"})
	require.NoError(t, err)
	_, err = tr.Run(context.Background())
	tr.Close()
	require.NoError(t, err)
	ckpt := filepath.Join(out, train.BestFile)
	p, err := infer.NewPredictor(ckpt, torch.CPU)
	require.NoError(t, err)
	defer p.Close()
	cases, _, err := infer.Cases(filepath.Join(set, "imagesTr"), 2)
	require.NoError(t, err)
	require.Len(t, cases, 4)
	assert.Equal(t, "ball_000.nii.gz", cases[0].OutName("png"))

	v0, _ := vol(0, 0)
	v1, _ := vol(0, 1)
	four := *v0
	four.Dim[3] = 2
	four.Data = append(append([]float64(nil), v0.Data...), v1.Data...)
	fourPath := filepath.Join(root, "ball_4d.nii.gz")
	writeFileT(t, fourPath, func(f *os.File) error { return nifti.Encode(f, &four, nifti.DTFloat32, true) })
	for _, o := range []infer.Options{{}, {SlidingWindow: true}} {
		a, b := filepath.Join(root, "a.nii.gz"), filepath.Join(root, "b.nii.gz")
		require.NoError(t, p.CaseWith(cases[0].Files, a, filepath.Join(root, "a.npy"), o))
		if o.SlidingWindow {
			require.NoError(t, p.FileWith(fourPath, b, filepath.Join(root, "b.npy"), o))
			pa, err := npy.ReadFile(filepath.Join(root, "a.npy"))
			require.NoError(t, err)
			pb, err := npy.ReadFile(filepath.Join(root, "b.npy"))
			require.NoError(t, err)
			assert.Equal(t, []int{2, 3, 32, 32}, pa.Shape)
			assert.Equal(t, pa.Data, pb.Data, "probabilities alike")
			lo, hi := 1.0, 0.0
			for _, v := range pa.Data[3*32*32:] {
				lo, hi = min(lo, v), max(hi, v)
			}
			assert.Greater(t, hi-lo, 1e-3, "the foreground probability varies over the volume")
		} else {
			require.NoError(t, p.File(fourPath, b))
		}
		va, err := nifti.ReadFile(a)
		require.NoError(t, err)
		vb, err := nifti.ReadFile(b)
		require.NoError(t, err)
		assert.Equal(t, [4]int{32, 32, 3, 1}, va.Dim)
		assert.Equal(t, va.Data, vb.Data, "%+v: two channel files and one 4-D file of them predict alike", o)
	}
	bad := *v1
	bad.Dim = [4]int{32, 16, 6, 1}
	badPath := filepath.Join(root, "bad_0001.nii.gz")
	writeFileT(t, badPath, func(f *os.File) error { return nifti.Encode(f, &bad, nifti.DTFloat32, true) })
	err = p.CaseWith([]string{cases[0].Files[0], badPath}, filepath.Join(root, "c.nii.gz"), "", infer.Options{})
	assert.ErrorContains(t, err, badPath+": channel 1 is [32 16 6 1] voxels")
}
