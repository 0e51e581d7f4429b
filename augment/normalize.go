package augment

import (
	"fmt"
	"math/rand/v2"

	"github.com/jmedseg/jmedseg/data"
)

// ImageNet channel statistics used by torchvision's pretrained models and
// by the reference SAS pipeline.
var (
	ImageNetMean = []float32{0.485, 0.456, 0.406}
	ImageNetStd  = []float32{0.229, 0.224, 0.225}
)

// Normalize converts the image to float32 C×H×W in [0,1] and then maps each
// channel c to (x - Mean[c]) / Std[c]. The channel count is len(Mean): 1 or
// 3 for a single image (grey images are replicated to 3 channels), or a
// multi-channel image's (*data.Planes) count. It sets ex.Float, so it must
// be the last transform of a pipeline.
type Normalize struct {
	Mean, Std []float32
}

// ImageNet returns Normalize with the ImageNet statistics.
func ImageNet() Normalize { return Normalize{Mean: ImageNetMean, Std: ImageNetStd} }

// Apply implements data.Transform.
func (n Normalize) Apply(_ *rand.Rand, ex *data.Example) error {
	if err := checkExample(ex); err != nil {
		return err
	}
	if len(n.Mean) != len(n.Std) || len(n.Mean) < 1 || len(n.Mean) > data.MaxChannels {
		return fmt.Errorf("augment: Normalize needs one mean per channel (1 to %d) and as many stds, have %d and %d", data.MaxChannels, len(n.Mean), len(n.Std))
	}
	t, err := data.ToCHW(ex.Image, len(n.Mean))
	if err != nil {
		return fmt.Errorf("%s: %w", ex.Name, err)
	}
	plane := len(t.Data) / len(n.Mean)
	for c := range n.Mean {
		if n.Std[c] == 0 {
			return fmt.Errorf("augment: Normalize std %d is zero", c)
		}
		m, s := n.Mean[c], 1/n.Std[c]
		px := t.Data[c*plane : (c+1)*plane]
		for i, v := range px {
			px[i] = (v - m) * s
		}
	}
	ex.Float = t
	return nil
}
