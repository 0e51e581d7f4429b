// Package infer runs a trained model on images and volumes: 2D images
// (PNG, JPEG, NPY, 2D NIfTI, DICOM) give label-map PNG or NPY files, NIfTI
// volumes give a NIfTI label volume on the same voxel grid.
package infer

import (
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/disintegration/gift"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/data/npy"
	"github.com/jmedseg/jmedseg/report"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/train"
)

// Predictor holds a model ready for inference.
type Predictor struct {
	model nn.Module
	info  train.ModelInfo
	dev   torch.Device
}

// Load reads a model checkpoint for inference on dev.
func Load(checkpoint string, dev torch.Device) (*Predictor, error) {
	m, info, err := train.LoadModel(checkpoint)
	if err != nil {
		return nil, err
	}
	if err := m.To(dev); err != nil {
		m.Free()
		return nil, err
	}
	m.Eval()
	return &Predictor{model: m, info: info, dev: dev}, nil
}

// Close frees the model.
func (p *Predictor) Close() { p.model.Free() }

// Info describes the loaded model.
func (p *Predictor) Info() train.ModelInfo { return p.info }

// Image predicts the label map of img at its own size: the image is resized
// to the model's input size, and the prediction back with nearest
// neighbours. The result is row-major, h×w.
func (p *Predictor) Image(img image.Image) ([]int64, error) {
	b := img.Bounds()
	h, w := p.info.Size[0], p.info.Size[1]
	in := img
	if b.Dx() != w || b.Dy() != h {
		g := gift.New(gift.Resize(w, h, gift.LinearResampling))
		dst := image.NewRGBA64(g.Bounds(b))
		g.Draw(dst, img)
		in = dst
	}
	chw, err := data.ToCHW(in, int(p.info.Config.InChannels))
	if err != nil {
		return nil, err
	}
	var pred []int64
	var perr error
	torch.InferenceMode(func() {
		s := torch.NewScope()
		defer s.Close()
		x := torch.FromSlice(chw.Data, []int64{1, int64(chw.Shape[0]), int64(chw.Shape[1]), int64(chw.Shape[2])}, s).ToDevice(p.dev)
		pred, perr = p.model.Forward(x).Argmax(1, false).Int64s()
	})
	if perr != nil {
		return nil, perr
	}
	return resizeLabels(pred, w, h, b.Dx(), b.Dy()), nil
}

// resizeLabels resamples a w×h label map to ow×oh by nearest neighbour.
func resizeLabels(src []int64, w, h, ow, oh int) []int64 {
	if w == ow && h == oh {
		return src
	}
	out := make([]int64, ow*oh)
	for y := 0; y < oh; y++ {
		sy := min(h-1, int((float64(y)+0.5)*float64(h)/float64(oh)))
		for x := 0; x < ow; x++ {
			sx := min(w-1, int((float64(x)+0.5)*float64(w)/float64(ow)))
			out[y*ow+x] = src[sy*w+sx]
		}
	}
	return out
}

// IsVolume reports whether path is a NIfTI file (predicted as a volume).
func IsVolume(path string) bool {
	l := strings.ToLower(path)
	return strings.HasSuffix(l, ".nii") || strings.HasSuffix(l, ".nii.gz")
}

// File predicts one input file and writes the result to out: a NIfTI
// volume gives a NIfTI label volume; any image gives a PNG (class ids as
// grey levels) or, when out ends in .npy, an int64 NPY.
func (p *Predictor) File(in, out string) error {
	if IsVolume(in) {
		return p.Volume(in, out)
	}
	img, err := data.ReadImage(in)
	if err != nil {
		return err
	}
	pred, err := p.Image(img)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	b := img.Bounds()
	return writeLabels(out, pred, b.Dx(), b.Dy())
}

func writeLabels(path string, pred []int64, w, h int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if strings.EqualFold(filepath.Ext(path), ".npy") {
		a := &npy.Array{DType: "u1", Shape: []int{h, w}, Data: make([]float64, len(pred))}
		for i, v := range pred {
			a.Data[i] = float64(v)
			if v > 255 {
				a.DType = "i8"
			}
		}
		return npy.WriteFile(path, a)
	}
	if slices.Max(pred) < 256 {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for i, v := range pred {
			g.Pix[i] = uint8(v)
		}
		return report.SavePNG(path, g)
	}
	img := image.NewGray16(image.Rect(0, 0, w, h))
	for i, v := range pred {
		img.SetGray16(i%w, i/w, color.Gray16{Y: uint16(v)})
	}
	return report.SavePNG(path, img)
}
