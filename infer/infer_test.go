package infer_test

import (
	"errors"
	"image"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/augment"
	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// modelFile writes an (untrained, seeded) unet of width 4 taking 1-channel
// 32×32 images to a model file and returns its path.
func modelFile(t testing.TB, norm models.Normalization) string {
	t.Helper()
	torch.ManualSeed(11)
	info := models.Info{Model: "unet", Config: models.Config{InChannels: 1, Classes: 3, Width: 4}, Classes: []string{"bg", "a", "b"},
		Size: [2]int{32, 32}, Norm: norm}
	m, err := models.Build(info)
	require.NoError(t, err)
	defer m.Free()
	path := filepath.Join(t.TempDir(), "model.safetensors")
	require.NoError(t, models.Save(path, m, info))
	return path
}

// images returns n random grey images of assorted sizes.
func images(n int) []image.Image {
	r := rand.New(rand.NewPCG(3, 4))
	out := make([]image.Image, n)
	for i := range out {
		w, h := 24+8*(i%3), 32+4*(i%2)
		g := image.NewGray(image.Rect(0, 0, w, h))
		for j := range g.Pix {
			g.Pix[j] = uint8(r.IntN(256))
		}
		out[i] = g
	}
	return out
}

func TestPredictShapesAndAgreement(t *testing.T) {
	p, err := infer.NewPredictor(modelFile(t, models.DefaultNormalization()), torch.CPU)
	require.NoError(t, err)
	defer p.Close()
	imgs := images(5)
	masks, err := p.PredictBatch(imgs)
	require.NoError(t, err)
	require.Len(t, masks, len(imgs))
	probs, err := p.Probabilities(imgs)
	require.NoError(t, err)
	logits, err := p.Logits(imgs)
	require.NoError(t, err)
	for i, img := range imgs {
		b := img.Bounds()
		assert.Equal(t, [2]int{b.Dx(), b.Dy()}, [2]int{masks[i].W, masks[i].H}, "the mask has the image's size")
		require.NoError(t, masks[i].CheckRange(3))
		assert.Equal(t, []int{3, 32, 32}, probs[i].Shape)
		assert.Equal(t, []int{3, 32, 32}, logits[i].Shape)
		// Probabilities sum to 1 per pixel.
		for px := 0; px < 32*32; px += 97 {
			s := probs[i].Data[px] + probs[i].Data[1024+px] + probs[i].Data[2048+px]
			assert.InDelta(t, 1, s, 1e-5)
		}
	}
	// An image at the model's size: the mask is the argmax of the logits.
	one := images(4)[3] // 32x36
	g := image.NewGray(image.Rect(0, 0, 32, 32))
	copy(g.Pix, one.(*image.Gray).Pix)
	m, err := p.Predict(g)
	require.NoError(t, err)
	l, err := p.Logits([]image.Image{g})
	require.NoError(t, err)
	for px := range m.Pix {
		best, arg := float32(math.Inf(-1)), int32(0)
		for c := range 3 {
			if v := l[0].Data[c*1024+px]; v > best {
				best, arg = v, int32(c)
			}
		}
		require.Equal(t, arg, m.Pix[px], "pixel %d", px)
	}
	// The batch call splits long batches; results equal single calls.
	many := images(infer.MaxBatch + 3)
	batch, err := p.PredictBatch(many)
	require.NoError(t, err)
	for i := range many {
		single, err := p.Predict(many[i])
		require.NoError(t, err)
		assert.Equal(t, single.Pix, batch[i].Pix, "image %d", i)
	}

	_, err = p.Predict(nil)
	assert.ErrorContains(t, err, "no image")
	info := p.Info()
	assert.Equal(t, "unet", info.Model)
	info.Classes[0] = "changed"
	assert.Equal(t, "bg", p.Info().Classes[0], "Info returns a copy")
}

// The input is prepared as in training: ToCHW's [0, 1] scaling, then the
// normalisation the model file records, with augment.Normalize's numbers.
func TestPreprocessMatchesTraining(t *testing.T) {
	norm := models.Normalization{Scale: models.ScaleUnit, Mean: []float32{0.3}, Std: []float32{0.2}}
	p, err := infer.NewPredictor(modelFile(t, norm), torch.CPU)
	require.NoError(t, err)
	defer p.Close()
	img := images(3)[2]
	small := image.NewGray(image.Rect(0, 0, 32, 32))
	copy(small.Pix, img.(*image.Gray).Pix)
	ex := &data.Example{Name: "x", Image: small}
	require.NoError(t, augment.Normalize{Mean: norm.Mean, Std: norm.Std}.Apply(nil, ex))
	got, err := p.Preprocess(small)
	require.NoError(t, err)
	assert.Equal(t, ex.Float.Data, got.Data)
	assert.Equal(t, []int{1, 32, 32}, got.Shape)
	assert.Equal(t, norm, p.Info().Norm)
}

// Many goroutines predicting at once get what sequential calls get, and
// no call leaves grad mode changed on its thread. Run under -race.
func TestConcurrentPredictions(t *testing.T) {
	p, err := infer.NewPredictor(modelFile(t, models.DefaultNormalization()), torch.CPU)
	require.NoError(t, err)
	defer p.Close()
	imgs := images(6)
	want := make([][]int32, len(imgs))
	wantProb := make([][]float32, len(imgs))
	for i, img := range imgs {
		m, err := p.Predict(img)
		require.NoError(t, err)
		want[i] = m.Pix
		pr, err := p.Probabilities([]image.Image{img})
		require.NoError(t, err)
		wantProb[i] = pr[0].Data
	}
	const goroutines = 8
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // to look at this thread's grad mode afterwards
			defer runtime.UnlockOSThread()
			for k := range 3 {
				i := (g + k) % len(imgs)
				m, err := p.Predict(imgs[i])
				if err != nil {
					errs <- err
					return
				}
				if !equal(m.Pix, want[i]) {
					errs <- errors.New("a concurrent prediction differs from the sequential one")
					return
				}
				pr, err := p.Probabilities([]image.Image{imgs[i]})
				if err != nil {
					errs <- err
					return
				}
				if !equal(pr[0].Data, wantProb[i]) {
					errs <- errors.New("concurrent probabilities differ from the sequential ones")
					return
				}
				if !torch.GradEnabled() {
					errs <- errors.New("a prediction left grad mode off on its thread")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Close waits for calls under way; calls after it fail cleanly. A
// prediction frees what it creates.
func TestCloseAndLeaks(t *testing.T) {
	p, err := infer.NewPredictor(modelFile(t, models.DefaultNormalization()), torch.CPU)
	require.NoError(t, err)
	imgs := images(3)
	_, err = p.PredictBatch(imgs) // warm-up
	require.NoError(t, err)
	n0, _ := torch.Live()
	for range 3 {
		_, err = p.PredictBatch(imgs)
		require.NoError(t, err)
		_, err = p.Probabilities(imgs)
		require.NoError(t, err)
	}
	n1, _ := torch.Live()
	assert.Equal(t, n0, n1, "live tensors after predictions")
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := p.Predict(imgs[0])
			if err != nil && !errors.Is(err, infer.ErrClosed) {
				t.Error(err)
			}
		}()
	}
	p.Close()
	wg.Wait()
	_, err = p.Predict(imgs[0])
	assert.ErrorIs(t, err, infer.ErrClosed)
	p.Close() // twice is harmless
}

func TestNewPredictorErrors(t *testing.T) {
	_, err := infer.NewPredictor(filepath.Join(t.TempDir(), "none.safetensors"), torch.CPU)
	assert.ErrorContains(t, err, "none.safetensors")
}
