package augment

import (
	"image"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data"
)

// planesBlob is blob's example with c planes: plane k is blob's image
// scaled and offset per channel (16-bit), so no two planes are equal.
func planesBlob(w, h, c int) *data.Example {
	ex := blob(w, h)
	g := ex.Image.(*image.Gray)
	p := data.NewPlanes(c, w, h)
	for k, pl := range p.Chans {
		for i, v := range g.Pix {
			y := uint16(min(65535, int(v)*(200+37*k)+1000*k+13*(i%7)))
			pl.Pix[2*i], pl.Pix[2*i+1] = uint8(y>>8), uint8(y)
		}
	}
	ex.Image = p
	return ex
}

// A transform applied to a multi-channel image gives, on every channel,
// what it gives applied to that channel alone with the same random
// generator, and moves the mask as it moves a single image's: geometric
// transforms move every channel alike; blur and colour jitter treat each
// channel as a grey image with the same drawn parameters.
func TestPlanesPerChannel(t *testing.T) {
	ts := geometric()
	delete(ts, "phone") // RGB only: refused below
	ts["blur"] = GaussianBlur{SigmaMin: 0.5, SigmaMax: 2}
	ts["jitter"] = ColorJitter{Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Hue: 0.1}
	ts["sas"] = SASSupervised()
	for name, tf := range ts {
		for _, c := range []int{2, 4} {
			t.Run(name, func(t *testing.T) {
				for seed := range uint64(3) {
					ex := planesBlob(40, 32, c)
					src := ex.Image.(*data.Planes)
					require.NoError(t, tf.Apply(rng(seed), ex))
					got, ok := ex.Image.(*data.Planes)
					require.True(t, ok, "a multi-channel image stays one")
					require.Equal(t, c, got.Channels())
					require.NoError(t, got.Check())
					for k := range c {
						one := &data.Example{Name: "one", Image: src.Chans[k], Mask: blob(40, 32).Mask}
						require.NoError(t, tf.Apply(rng(seed), one))
						want := data.Gray16Of(one.Image)
						require.Equal(t, want.Rect, got.Chans[k].Rect, "channel %d", k)
						assert.Equal(t, want.Pix, got.Chans[k].Pix, "seed %d channel %d", seed, k)
						assert.Equal(t, one.Mask.Pix, ex.Mask.Pix, "seed %d: the mask moves as with channel %d alone", seed, k)
					}
				}
			})
		}
	}
}

func TestPlanesNormalizeAndRefusals(t *testing.T) {
	ex := planesBlob(8, 6, 4)
	p := ex.Image.(*data.Planes)
	mean, std := []float32{0.1, 0.2, 0.3, 0.4}, []float32{0.5, 1, 2, 4}
	require.NoError(t, Normalize{Mean: mean, Std: std}.Apply(nil, ex))
	require.Equal(t, []int{4, 6, 8}, ex.Float.Shape)
	for c := range 4 {
		for i := range 48 {
			v := float32(p.Chans[c].Gray16At(i%8, i/8).Y) / 65535
			assert.InDelta(t, (v-mean[c])/std[c], ex.Float.Data[c*48+i], 1e-6)
		}
	}
	for _, tc := range []struct {
		tf  data.Transform
		msg string
	}{
		{Normalize{Mean: mean[:3], Std: std[:3]}, "the image has 4 channels, the model takes 3"},
		{Normalize{Mean: ImageNetMean[:1], Std: ImageNetStd[:1]}, "the image has 4 channels, the model takes 1"},
		{PhonePhoto(), "takes grey or RGB images, not 4 channels"},
	} {
		err := tc.tf.Apply(rng(1), planesBlob(8, 6, 4))
		assert.ErrorContains(t, err, tc.msg)
		assert.ErrorContains(t, err, "blob.png")
	}
}
