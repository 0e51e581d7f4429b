// Package infer runs trained models for Go programs and the command line:
// a Predictor turns images into masks, class probabilities or logits, and
// files into label files: 2D images (PNG, JPEG, NPY, 2D NIfTI, DICOM) give
// label-map PNG or NPY files, NIfTI volumes a NIfTI label volume on the
// same voxel grid.
//
// The package needs models, data and torch only: a program that predicts
// links no training code (no train, loss, optim or sas).
package infer

import (
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/data/npy"
	"github.com/jmedseg/jmedseg/internal/atomicfile"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// MaxBatch is the most images a Predictor runs through the model at once;
// longer batch calls are split into runs of MaxBatch.
const MaxBatch = 16

// ErrClosed is returned by a Predictor used after Close.
var ErrClosed = errors.New("infer: the predictor is closed")

// Predictor holds a trained model ready for inference.
//
// A Predictor is safe for concurrent use by many goroutines. The model is
// only read; every call runs the model in its own libtorch inference-mode
// guard on the calling goroutine, locked to its OS thread for the duration
// of that call only (grad mode never leaks to other calls or goroutines),
// and frees what it creates before it returns. Close waits for the calls
// under way; later calls return ErrClosed.
type Predictor struct {
	mu     sync.RWMutex // calls hold it for reading, Close for writing
	model  nn.Module
	info   models.Info
	dev    torch.Device
	closed bool
}

// NewPredictor loads a model file (a run's best.safetensors, or any file
// models.Load reads) for inference on dev, with the default LoadOptions:
// its BatchNorms folded into the convolutions before them (models.Fuse; the
// same outputs to float32 round-off, faster).
func NewPredictor(checkpoint string, dev torch.Device) (*Predictor, error) {
	return NewPredictorWith(checkpoint, dev, LoadOptions{})
}

// NewPredictorWith is NewPredictor with options for speed (see LoadOptions).
func NewPredictorWith(checkpoint string, dev torch.Device, opt LoadOptions) (*Predictor, error) {
	m, info, err := models.Load(checkpoint)
	if err != nil {
		return nil, err
	}
	if err := info.Norm.Check(info.Config.InChannels); err != nil {
		m.Free()
		return nil, fmt.Errorf("infer: %s: %w", checkpoint, err)
	}
	if err := m.To(dev); err != nil {
		m.Free()
		return nil, fmt.Errorf("infer: %s: moving the model to %s: %w", checkpoint, dev, err)
	}
	m.Eval()
	fast, err := opt.apply(m, dev)
	if err != nil {
		m.Free()
		return nil, fmt.Errorf("infer: %s: %w", checkpoint, err)
	}
	run, err := opt.withEngine(fast, info.Model)
	if err != nil {
		fast.Free()
		return nil, fmt.Errorf("infer: %s: %w", checkpoint, err)
	}
	return &Predictor{model: run, info: info, dev: dev}, nil
}

// Close frees the model, after the calls under way have returned.
func (p *Predictor) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.model.Free()
		p.closed = true
	}
}

// Info describes the loaded model: name, configuration, classes, input
// size, normalisation. The caller may modify the copy it gets.
func (p *Predictor) Info() models.Info {
	i := p.info
	i.Classes = slices.Clone(i.Classes)
	i.Spacing = slices.Clone(i.Spacing)
	i.Norm.Mean, i.Norm.Std = slices.Clone(i.Norm.Mean), slices.Clone(i.Norm.Std)
	return i
}

// Preprocess makes the model input of img as in training: resized to the
// model's input size (bilinear), scaled to [0, 1] with the model's channel
// count (data.ToCHW) and normalised as the model file records. The result
// is C×H×W.
func (p *Predictor) Preprocess(img image.Image) (*data.Tensor[float32], error) {
	if img == nil {
		return nil, errors.New("infer: no image")
	}
	b := img.Bounds()
	if b.Empty() {
		return nil, fmt.Errorf("infer: empty image (%dx%d)", b.Dx(), b.Dy())
	}
	h, w := p.info.Size[0], p.info.Size[1]
	in := data.Opaque(img) // alpha ignored, as data.ReadImage does for training
	if b.Dx() != w || b.Dy() != h {
		in = resizeInput(in, w, h) // a *data.Planes plane by plane
	}
	ch := int(p.info.Config.InChannels)
	t, err := data.ToCHW(in, ch)
	if err != nil {
		return nil, fmt.Errorf("infer: %w", err)
	}
	if err := p.info.Norm.Apply(t.Data, ch); err != nil {
		return nil, fmt.Errorf("infer: %w", err)
	}
	return t, nil
}

// Predict returns the label map of img at img's own size: the model's
// prediction at its input size, resized back by nearest neighbour.
func (p *Predictor) Predict(img image.Image) (*data.Mask, error) {
	ms, err := p.PredictBatch([]image.Image{img})
	if err != nil {
		return nil, err
	}
	return ms[0], nil
}

// PredictBatch is Predict for several images (of any sizes) in batches of
// up to MaxBatch.
func (p *Predictor) PredictBatch(imgs []image.Image) ([]*data.Mask, error) {
	out := make([]*data.Mask, 0, len(imgs))
	h, w := p.info.Size[0], p.info.Size[1]
	err := p.run(imgs, func(logits *torch.Tensor, chunk []image.Image) error {
		pred, err := logits.Argmax(1, false).Int64s()
		if err != nil {
			return err
		}
		for i, img := range chunk {
			b := img.Bounds()
			out = append(out, resizeLabels(pred[i*h*w:(i+1)*h*w], w, h, b.Dx(), b.Dy()))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Probabilities returns each image's class probabilities (the softmax of
// the logits over classes), Classes×H×W at the model's input size
// Info().Size.
func (p *Predictor) Probabilities(imgs []image.Image) ([]*data.Tensor[float32], error) {
	return p.scores(imgs, true)
}

// Logits returns each image's raw class scores, Classes×H×W at the model's
// input size Info().Size.
func (p *Predictor) Logits(imgs []image.Image) ([]*data.Tensor[float32], error) {
	return p.scores(imgs, false)
}

func (p *Predictor) scores(imgs []image.Image, softmax bool) ([]*data.Tensor[float32], error) {
	out := make([]*data.Tensor[float32], 0, len(imgs))
	err := p.run(imgs, func(logits *torch.Tensor, chunk []image.Image) error {
		if softmax {
			logits = logits.Softmax(1)
		}
		v, err := logits.Float32s()
		if err != nil {
			return err
		}
		c, h, w := int(logits.Size(1)), int(logits.Size(2)), int(logits.Size(3))
		n := c * h * w
		for i := range chunk {
			out = append(out, &data.Tensor[float32]{Data: v[i*n : (i+1)*n : (i+1)*n], Shape: []int{c, h, w}})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// run preprocesses imgs and runs the model on batches of up to MaxBatch,
// handing each batch's logits [n, Classes, H, W] to use inside the call's
// inference mode and scope.
func (p *Predictor) run(imgs []image.Image, use func(logits *torch.Tensor, chunk []image.Image) error) error {
	if len(imgs) == 0 {
		return nil
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	c, h, w := int(p.info.Config.InChannels), p.info.Size[0], p.info.Size[1]
	plane := c * h * w
	for start := 0; start < len(imgs); start += MaxBatch {
		chunk := imgs[start:min(start+MaxBatch, len(imgs))]
		buf := make([]float32, len(chunk)*plane)
		for i, img := range chunk {
			t, err := p.Preprocess(img)
			if err != nil {
				return fmt.Errorf("image %d: %w", start+i, err)
			}
			copy(buf[i*plane:], t.Data)
		}
		var err error
		torch.InferenceMode(func() {
			s := torch.NewScope()
			defer s.Close()
			x := torch.FromSlice(buf, []int64{int64(len(chunk)), int64(c), int64(h), int64(w)}, s).ToDevice(p.dev)
			logits := p.model.Forward(x)
			if err = logits.Err(); err != nil {
				return
			}
			err = use(logits, chunk)
		})
		if err != nil {
			return fmt.Errorf("infer: %s: %w", p.info.Model, err)
		}
	}
	return nil
}

// resizeLabels resamples a w×h label map to ow×oh by nearest neighbour.
func resizeLabels(src []int64, w, h, ow, oh int) *data.Mask {
	m := data.NewMask(ow, oh)
	for y := 0; y < oh; y++ {
		sy := min(h-1, int((float64(y)+0.5)*float64(h)/float64(oh)))
		for x := 0; x < ow; x++ {
			sx := min(w-1, int((float64(x)+0.5)*float64(w)/float64(ow)))
			m.Pix[y*ow+x] = int32(src[sy*w+sx])
		}
	}
	return m
}

// IsVolume reports whether path is a NIfTI, NRRD or MetaImage file
// (predicted as a volume).
func IsVolume(path string) bool { return data.IsVolumeFormat(data.FormatOf(path)) }

// File predicts one input file and writes the result to out, in the
// format out's extension names: a NIfTI input gives a NIfTI label volume
// (out ends in .nii or .nii.gz); any other image a PNG (.png: class ids as
// grey levels) or an NPY of class ids (.npy). Another extension is an
// error, before anything is predicted.
func (p *Predictor) File(in, out string) error {
	if err := CheckOutput(in, out); err != nil {
		return err
	}
	if p.channelFrames(in) { // a 4-D NIfTI of one frame per input channel
		return p.FileWith(in, out, "", Options{})
	}
	if IsVolume(in) {
		return p.Volume(in, out)
	}
	img, err := data.ReadImage(in)
	if err != nil {
		return err
	}
	m, err := p.Predict(img)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	return writeMask(out, m)
}

// CheckOutput reports whether File can write the prediction of in to out:
// a volume (NIfTI, NRRD, MetaImage) to .nii, .nii.gz, .nrrd or .mha, any
// other image to .png or .npy.
func CheckOutput(in, out string) error {
	l := strings.ToLower(out)
	switch {
	case IsVolume(in):
		return volumeOutput(out) // NIfTI, NRRD or MetaImage
	case IsVolume(out):
		return fmt.Errorf("infer: the output %s is a volume, but the input %s is not (a label volume takes its grid from a volume input): write .png or .npy", out, in)
	case strings.HasSuffix(l, ".png"), strings.HasSuffix(l, ".npy"):
		return nil
	}
	return fmt.Errorf("infer: the output %s has no mask format jmedseg writes: end it in .png or .npy (NIfTI inputs: .nii or .nii.gz)", out)
}

// writeMask writes a label map as NPY (uint8, int64 past 255) when path
// ends in .npy, else as PNG (8-bit grey, 16-bit past 255), atomically.
func writeMask(path string, m *data.Mask) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if strings.EqualFold(filepath.Ext(path), ".npy") {
		return npy.WriteFile(path, maskArray(m))
	}
	img, err := m.Image()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.Write(path, func(w io.Writer) error { return png.Encode(w, img) })
}

// maskArray is a label map as an NPY array: uint8, int64 past 255.
func maskArray(m *data.Mask) *npy.Array {
	a := &npy.Array{DType: "u1", Shape: []int{m.H, m.W}, Data: make([]float64, len(m.Pix))}
	for i, v := range m.Pix {
		a.Data[i] = float64(v)
		if v > 255 {
			a.DType = "i8"
		}
	}
	return a
}

// EncodeMask writes a label map in format "png" or "npy": the bytes File
// writes to a .png or .npy file (a server answers with them).
func EncodeMask(w io.Writer, m *data.Mask, format string) error {
	switch format {
	case "npy":
		return npy.Write(w, maskArray(m))
	case "png":
		img, err := m.Image()
		if err != nil {
			return err
		}
		return png.Encode(w, img)
	}
	return fmt.Errorf("infer: mask format %q: want png or npy", format)
}
