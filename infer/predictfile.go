package infer

import (
	"bytes"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/data/nifti"
	"github.com/jmedseg/jmedseg/data/npy"
)

// CheckProbabilities reports whether FileWith can write the probabilities
// of in to path: NPY (.npy) for any input, NIfTI (.nii, .nii.gz) for a
// NIfTI volume input, and only with SlidingWindow for a volume (its
// native slices; the framed slices of plain volume prediction cover part
// of the volume).
func CheckProbabilities(in, path string, o Options) error {
	l := strings.ToLower(path)
	switch {
	case IsVolume(in) && !o.SlidingWindow:
		return fmt.Errorf("infer: the probabilities of the volume %s need the sliding window (--sliding-window: every voxel of its native slices)", in)
	case strings.HasSuffix(l, ".npy"):
		return nil
	case IsVolume(path) && IsVolume(in):
		return nil
	case IsVolume(path):
		return fmt.Errorf("infer: probabilities %s: NIfTI takes its grid from a NIfTI input, and %s is not one: write .npy", path, in)
	}
	return fmt.Errorf("infer: probabilities %s: end it in .npy (NIfTI inputs: .npy, .nii or .nii.gz)", path)
}

// FileWith is File with o, and, when probs is not "", the class
// probabilities written there: NPY float32 of shape (Classes, H, W) for an
// image, (Classes, Nz, Ny, Nx) for a volume on its stored grid, or a 4-D
// float32 NIfTI (x, y, z, class) with the input's header. A volume is
// predicted on its native axial slices with SlidingWindow, on the framed
// slices of Volume otherwise.
func (p *Predictor) FileWith(in, out, probs string, o Options) error {
	if err := o.check(); err != nil {
		return err
	}
	if err := CheckOutput(in, out); err != nil {
		return err
	}
	if probs != "" {
		if err := CheckProbabilities(in, probs, o); err != nil {
			return err
		}
	}
	if IsVolume(in) {
		if o.SlidingWindow {
			return p.volumeNative(in, out, probs, o)
		}
		return p.volume(in, out, func(imgs []image.Image) ([]*data.Mask, error) { return p.framed(imgs, o) }, o.LargestComponent)
	}
	img, err := data.ReadImage(in)
	if err != nil {
		return err
	}
	pr, err := p.PredictWith(img, o)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := writeMask(out, pr.Mask); err != nil {
		return err
	}
	if probs == "" {
		return nil
	}
	return writeNPY(probs, pr.Probs.Data, pr.Probs.Shape)
}

// framed predicts model-size images (Volume's framed slices) with o's
// TTA; the largest component is taken over the whole volume afterwards.
func (p *Predictor) framed(imgs []image.Image, o Options) ([]*data.Mask, error) {
	h, w := p.info.Size[0], p.info.Size[1]
	c := int(p.info.Config.InChannels)
	out := make([]*data.Mask, 0, len(imgs))
	for start := 0; start < len(imgs); start += o.batch() {
		chunk := imgs[start:min(start+o.batch(), len(imgs))]
		buf := make([]float32, 0, len(chunk)*c*h*w)
		for _, img := range chunk {
			t, err := p.Preprocess(img)
			if err != nil {
				return nil, err
			}
			buf = append(buf, t.Data...)
		}
		pr, err := p.forwardProbs(buf, len(chunk), o.TTA)
		if err != nil {
			return nil, err
		}
		k := len(pr) / (len(chunk) * h * w)
		for i := range chunk {
			out = append(out, argmax(&data.Tensor[float32]{Data: pr[i*k*h*w : (i+1)*k*h*w], Shape: []int{k, h, w}}))
		}
	}
	return out, nil
}

// volumeNative predicts every native axial slice of a volume with the
// sliding window, the windows of all slices batched together.
func (p *Predictor) volumeNative(in, out, probs string, o Options) error {
	v, err := nifti.ReadFile(in)
	if err != nil {
		return err
	}
	if v.Dim[3] > 1 {
		return fmt.Errorf("%s: a 4-D volume of %d frames (%dx%dx%dx%d); predict takes one 3-D volume: extract the frame to segment first (e.g. fslroi IN OUT T 1)",
			in, v.Dim[3], v.Dim[0], v.Dim[1], v.Dim[2], v.Dim[3])
	}
	var noData []int
	for i, x := range v.Data {
		if math.IsNaN(x) {
			noData = append(noData, i)
		}
	}
	a, err := data.Axial(v)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	xs := make([]*data.Tensor[float32], len(a.Images))
	for k, img := range a.Images {
		if xs[k], err = p.native(img); err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
	}
	ps, err := p.slide(xs, o)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	n := v.Dim[0] * v.Dim[1] * v.Dim[2]
	k := ps[0].Shape[0]
	labels := make([]int64, n)
	var pv []float32
	if probs != "" {
		pv = make([]float32, k*n)
	}
	for z, pr := range ps {
		m := argmax(pr)
		for y := range a.H {
			for x := range a.W {
				i := a.StoredIndex(z, x, y)
				labels[i] = int64(m.Pix[y*a.W+x])
				if pv != nil {
					for c := range k {
						pv[c*n+i] = pr.Data[(c*a.H+y)*a.W+x]
					}
				}
			}
		}
	}
	for _, i := range noData { // no data: background, certainly
		labels[i] = 0
		if pv != nil {
			for c := range k {
				pv[c*n+i] = 0
			}
			pv[i] = 1
		}
	}
	if o.LargestComponent {
		largestComponent(labels, [3]int{v.Dim[0], v.Dim[1], v.Dim[2]})
	}
	if err := writeLabelVolume(in, out, labels); err != nil {
		return err
	}
	if probs == "" {
		return nil
	}
	if strings.HasSuffix(strings.ToLower(probs), ".npy") {
		return writeNPY(probs, pv, []int{k, v.Dim[2], v.Dim[1], v.Dim[0]})
	}
	return writeProbVolume(in, probs, pv, k)
}

// writeNPY writes float32 values of a shape as NPY, atomically.
func writeNPY(path string, vals []float32, shape []int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	a := &npy.Array{DType: "f4", Shape: shape, Data: make([]float64, len(vals))}
	for i, v := range vals {
		a.Data[i] = float64(v)
	}
	return npy.WriteFile(path, a)
}

// writeProbVolume writes k probability volumes (class-major, each on the
// stored grid) as one 4-D float32 NIfTI with the input's header: same
// grid and affine, a fourth dimension of k, atomically.
func writeProbVolume(in, out string, vals []float32, k int) error {
	raw, bo, err := inputHeader(in)
	if err != nil {
		return err
	}
	hdr := raw
	bo.PutUint16(hdr[40:42], 4)         // dim[0]
	bo.PutUint16(hdr[48:50], uint16(k)) // dim[4]
	for d := 5; d <= 7; d++ {
		bo.PutUint16(hdr[40+2*d:42+2*d], 1)
	}
	bo.PutUint32(hdr[92:96], math.Float32bits(1)) // pixdim[4]
	bo.PutUint16(hdr[70:72], 16)                  // float32
	bo.PutUint16(hdr[72:74], 32)
	bo.PutUint32(hdr[108:112], math.Float32bits(352))
	bo.PutUint32(hdr[112:116], math.Float32bits(1))
	bo.PutUint32(hdr[116:120], math.Float32bits(0))
	bo.PutUint32(hdr[124:128], math.Float32bits(1)) // cal_max
	bo.PutUint32(hdr[128:132], math.Float32bits(0))
	copy(hdr[344:348], "n+1\x00")
	var body bytes.Buffer
	body.Write(hdr)
	body.Write([]byte{0, 0, 0, 0})
	buf := make([]byte, 4)
	for _, v := range vals {
		bo.PutUint32(buf, math.Float32bits(v))
		body.Write(buf)
	}
	return writeVolumeFile(out, body.Bytes())
}
