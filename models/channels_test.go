package models_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// Every registered model, and the STN in front of one, builds with 2 and 4
// input channels (nnU-Net's prostate T2+ADC, BraTS's 4 modalities), gives
// logits of the input's size, and uses every channel: changing one
// channel's values alone changes the logits.
func TestInputChannels(t *testing.T) {
	type net struct {
		name  string
		build func(t *testing.T, in int64) (nn.Module, [2]int64)
	}
	var nets []net
	for _, name := range models.Names() {
		nets = append(nets, net{name, func(t *testing.T, in int64) (nn.Module, [2]int64) {
			s := spec(t, name)
			return build(t, s, in, 2), smallest(s)
		}})
	}
	nets = append(nets, net{"unet+stn", func(t *testing.T, in int64) (nn.Module, [2]int64) {
		s := spec(t, "unet")
		m, err := models.New("unet", models.Config{InChannels: in, Classes: 2, Width: s.TestWidth})
		require.NoError(t, err)
		w := models.NewWithSTN(in, m)
		require.NoError(t, w.Err())
		t.Cleanup(w.Free)
		return w, smallest(s)
	}})
	for _, n := range nets {
		for _, in := range []int64{2, 4} {
			t.Run(n.name+"/"+string(rune('0'+in)), func(t *testing.T) {
				torch.ManualSeed(7)
				m, hw := n.build(t, in)
				// Train mode: batch statistics carry the signal of an
				// untrained net (in eval mode some barely depend on their
				// input at all); dropout draws the same masks every
				// forward, reseeded.
				m.Train(true)
				shape := []int64{2, in, hw[0], hw[1]}
				plane := int(hw[0] * hw[1])
				r := rand.New(rand.NewPCG(1, uint64(in)))
				x := make([]float32, 2*int(in)*plane)
				for i := range x {
					x[i] = float32(r.NormFloat64())
				}
				forward := func(x []float32) []float32 {
					torch.ManualSeed(11)
					var out []float32
					torch.NoGrad(func() {
						require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
							y := m.Forward(torch.FromSlice(x, shape, s))
							if err := y.Err(); err != nil {
								return err
							}
							assert.Equal(t, []int64{2, 2, hw[0], hw[1]}, y.Shape())
							var err error
							out, err = y.Float32s()
							return err
						}))
					})
					return out
				}
				base := forward(x)
				for c := range int(in) {
					xc := append([]float32(nil), x...)
					for n := range 2 {
						for i := (n*int(in) + c) * plane; i < (n*int(in)+c+1)*plane; i++ {
							xc[i] = -xc[i] + 1
						}
					}
					diff := 0.0
					for i, v := range forward(xc) {
						diff = max(diff, math.Abs(float64(v-base[i])))
					}
					scale := 0.0
					for _, v := range base {
						scale = max(scale, math.Abs(float64(v)))
					}
					assert.Greater(t, diff, 1e-6, "channel %d of %d does not reach the logits (|logits| up to %g)", c, in, scale)
				}
			})
		}
	}
}
