package infer

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/disintegration/gift"

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
	if p.channelFrames(in) { // one frame per input channel: native slices, every voxel
		if probs != "" {
			if err := CheckProbabilities(in, probs, Options{SlidingWindow: true}); err != nil {
				return err
			}
		}
		return p.framesVolume(in, out, probs, o)
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
	v, err := data.ReadVolume(in)
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
	return writeVolumePrediction(in, out, probs, labels, pv, k, [3]int{v.Dim[0], v.Dim[1], v.Dim[2]}, noData, o)
}

// writeVolumePrediction finishes a volume's prediction on the input's grid
// (dim): voxels with no data become background, certainly; the largest
// component per class is kept if asked; then the labels and, when probs
// is set, the k class probabilities (pv, class-major; nil without probs)
// are written.
func writeVolumePrediction(in, out, probs string, labels []int64, pv []float32, k int, dim [3]int, noData []int, o Options) error {
	n := dim[0] * dim[1] * dim[2]
	for _, i := range noData {
		labels[i] = 0
		if pv != nil {
			for c := range k {
				pv[c*n+i] = 0
			}
			pv[i] = 1
		}
	}
	if o.LargestComponent {
		largestComponent(labels, dim)
	}
	if err := writeLabelVolume(in, out, labels); err != nil {
		return err
	}
	if probs == "" {
		return nil
	}
	if strings.HasSuffix(strings.ToLower(probs), ".npy") {
		return writeNPY(probs, pv, []int{k, dim[2], dim[1], dim[0]})
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

// Case is one input stored one file per channel, as nnU-Net names them:
// ID_0000<ext> (channel 0), ID_0001<ext>, ... in one directory.
type Case struct {
	// ID is the case name, the file names' part before _XXXX.
	ID string
	// Files are the channel files, channel c at c.
	Files []string
	// Ext is the files' ending (".png", ".nii.gz", ...).
	Ext string
}

// OutName is the case's mask file name in an output directory: ID.nii.gz
// (the input's ending) for volumes, as nnU-Net names its predictions, and
// ID.format (png or npy) for 2-D images.
func (c Case) OutName(format string) string {
	if IsVolume(c.Files[0]) {
		return c.ID + c.Ext
	}
	return c.ID + "." + format
}

// splitCaseName splits ID_XXXX<ext> into its ID, channel and ending.
func splitCaseName(name string) (id string, ch int, ext string, ok bool) {
	if data.FormatOf(name) == "" {
		return "", 0, "", false
	}
	ext = filepath.Ext(name)
	if strings.EqualFold(ext, ".gz") {
		ext = filepath.Ext(strings.TrimSuffix(name, ext)) + ext
	}
	st := strings.TrimSuffix(name, ext)
	u := strings.LastIndexByte(st, '_')
	if u <= 0 || len(st)-u-1 != 4 {
		return "", 0, "", false
	}
	for _, r := range st[u+1:] {
		if r < '0' || r > '9' {
			return "", 0, "", false
		}
	}
	n := 0
	for _, r := range st[u+1:] {
		n = 10*n + int(r-'0')
	}
	return st[:u], n, ext, true
}

// Cases groups the image files of dir into the cases of a model of
// channels inputs, by nnU-Net's names (ID_XXXX<ext>). It returns the cases,
// sorted by ID, and the image files it did not group, which are inputs of
// their own (one image or volume each): every file when channels is 1, and
// for 3 channels a lone ID_0000 file too (an RGB image so named). A group
// whose channel files are not exactly _0000 to the model's last channel is
// an error naming the missing or extra file.
func Cases(dir string, channels int) ([]Case, []string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	type group struct {
		files map[int]string
		ext   string
	}
	groups := map[string]*group{}
	var singles []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || data.FormatOf(name) == "" {
			continue
		}
		id, ch, ext, ok := splitCaseName(name)
		if !ok || channels == 1 {
			singles = append(singles, filepath.Join(dir, name))
			continue
		}
		g := groups[id+"\x00"+ext]
		if g == nil {
			g = &group{files: map[int]string{}, ext: ext}
			groups[id+"\x00"+ext] = g
		}
		g.files[ch] = filepath.Join(dir, name)
	}
	var out []Case
	for key, g := range groups {
		id := key[:strings.IndexByte(key, 0)]
		if channels == 3 && len(g.files) == 1 && g.files[0] != "" {
			singles = append(singles, g.files[0])
			continue
		}
		c := Case{ID: id, Ext: g.ext, Files: make([]string, channels)}
		for ch := range channels {
			p, ok := g.files[ch]
			if !ok {
				return nil, nil, fmt.Errorf("infer: %s: channel file %04d of case %s is missing (the model takes %d channels, one file each: %s_0000%s to %s_%04d%s)",
					filepath.Join(dir, fmt.Sprintf("%s_%04d%s", id, ch, g.ext)), ch, id, channels, id, g.ext, id, channels-1, g.ext)
			}
			c.Files[ch] = p
		}
		for ch, p := range g.files {
			if ch >= channels {
				return nil, nil, fmt.Errorf("infer: %s: case %s has channel %04d, but the model takes %d channels (_0000 to _%04d)", p, id, ch, channels, channels-1)
			}
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Case) int { return strings.Compare(a.ID+a.Ext, b.ID+b.Ext) })
	slices.Sort(singles)
	return out, singles, nil
}

// CaseOf finds the case of a channel-0 file path (ID_0000<ext>) for a
// model of channels inputs: its sibling channel files in the same
// directory. ok is false when path is no channel-0 file of a case (it is
// an input of its own); a case with a channel file missing is an error
// naming it.
func CaseOf(path string, channels int) (c Case, ok bool, err error) {
	id, ch, ext, named := splitCaseName(filepath.Base(path))
	if !named || ch != 0 || channels < 2 {
		return Case{}, false, nil
	}
	dir := filepath.Dir(path)
	c = Case{ID: id, Ext: ext, Files: make([]string, channels)}
	for k := range channels {
		p := filepath.Join(dir, fmt.Sprintf("%s_%04d%s", id, k, ext))
		if _, err := os.Stat(p); err != nil {
			if k == 1 && channels == 3 { // an RGB image named ID_0000
				return Case{}, false, nil
			}
			return Case{}, false, fmt.Errorf("infer: %s: channel file %04d of case %s is missing (the model takes %d channels, one file each)", p, k, id, channels)
		}
		c.Files[k] = p
	}
	return c, true, nil
}

// CaseWith predicts a case stored one file per channel (channel c in
// files[c]) and writes its mask to out, as FileWith does for one file:
// 2-D images give a PNG or NPY mask; 3-D NIfTI volumes (every channel on
// one voxel grid) a NIfTI label volume on the first file's grid, predicted
// on their native axial slices (each channel's intensities mapped as
// training maps them, data.Axial), with the sliding window when
// o.SlidingWindow, else each slice resized to the model's input size and
// back. probs, when not "", receives the class probabilities as FileWith
// writes them. The channel count must be the model's; errors name the file.
func (p *Predictor) CaseWith(files []string, out, probs string, o Options) error {
	if err := o.check(); err != nil {
		return err
	}
	if len(files) == 0 {
		return errors.New("infer: a case without files")
	}
	if c := int(p.info.Config.InChannels); len(files) != c {
		return fmt.Errorf("infer: %s: the case has %d channel files, the model (%s) takes %d", files[0], len(files), p.info.Model, c)
	}
	if err := CheckOutput(files[0], out); err != nil {
		return err
	}
	if probs != "" {
		if err := CheckProbabilities(files[0], probs, Options{SlidingWindow: true}); err != nil {
			return err
		}
	}
	if IsVolume(files[0]) {
		depth, is3D, err := data.AxialDepth(files[0])
		if err != nil {
			return err
		}
		if is3D || depth > 1 {
			vs := make([]*nifti.Volume, len(files))
			for c, f := range files {
				if !IsVolume(f) {
					return fmt.Errorf("infer: %s: channel %d is not a NIfTI volume, channel 0 (%s) is", f, c, files[0])
				}
				if vs[c], err = nifti.ReadFile(f); err != nil {
					return err
				}
			}
			return p.channelVolume(files, vs, out, probs, o)
		}
	}
	imgs := make([]image.Image, len(files))
	for c, f := range files {
		img, err := data.ReadImage(f)
		if err != nil {
			return err
		}
		if c > 0 {
			if b, b0 := img.Bounds(), imgs[0].Bounds(); b.Size() != b0.Size() {
				return fmt.Errorf("infer: %s: channel %d is %dx%d but channel 0 (%s) is %dx%d", f, c, b.Dx(), b.Dy(), files[0], b0.Dx(), b0.Dy())
			}
		}
		imgs[c] = img
	}
	img, err := data.StackChannels(imgs)
	if err != nil {
		return fmt.Errorf("infer: %s: %w", files[0], err)
	}
	pr, err := p.PredictWith(img, o)
	if err != nil {
		return fmt.Errorf("%s: %w", files[0], err)
	}
	if err := writeMask(out, pr.Mask); err != nil {
		return err
	}
	if probs == "" {
		return nil
	}
	return writeNPY(probs, pr.Probs.Data, pr.Probs.Shape)
}

// channelFrames reports whether in is a 4-D NIfTI whose frames are the
// model's input channels (more than one): a multi-channel volume in one
// file, predicted frame c as channel c.
func (p *Predictor) channelFrames(in string) bool {
	if !IsVolume(in) || p.info.Config.InChannels < 2 {
		return false
	}
	v, err := nifti.ReadHeader(in)
	return err == nil && v.Dim[2] > 1 && int64(v.Dim[3]) == p.info.Config.InChannels
}

// framesVolume predicts a 4-D NIfTI of one frame per input channel as
// CaseWith predicts a case of one volume per channel.
func (p *Predictor) framesVolume(in, out, probs string, o Options) error {
	v, err := nifti.ReadFile(in)
	if err != nil {
		return err
	}
	n := v.Dim[0] * v.Dim[1] * v.Dim[2]
	if len(v.Data) < n*v.Dim[3] {
		return fmt.Errorf("%s: %d voxels, its dimensions %v need %d", in, len(v.Data), v.Dim, n*v.Dim[3])
	}
	vs := make([]*nifti.Volume, v.Dim[3])
	files := make([]string, v.Dim[3])
	for t := range vs {
		f := *v
		f.Dim[3] = 1
		f.Data = v.Data[t*n : (t+1)*n : (t+1)*n]
		vs[t] = &f
		files[t] = fmt.Sprintf("%s (frame %d)", in, t)
	}
	return p.channelVolume(files, vs, out, probs, o)
}

// channelVolume predicts the native axial slices of a multi-channel
// volume, channel c in vs[c] (named files[c] in errors), and writes the
// labels (and probabilities) on channel 0's grid, with the header of
// the NIfTI file files[0] names (a frame name's file).
func (p *Predictor) channelVolume(files []string, vs []*nifti.Volume, out, probs string, o Options) error {
	v0 := vs[0]
	if v0.Dim[3] > 1 {
		return fmt.Errorf("%s: a 4-D volume of %d frames: want one 3-D volume per channel file", files[0], v0.Dim[3])
	}
	slices3 := make([]*data.AxialSlices, len(vs))
	var noData []int
	for c, v := range vs {
		if v.Dim != v0.Dim {
			return fmt.Errorf("infer: %s: channel %d is %v voxels, channel 0 (%s) is %v: every channel must be on one grid", files[c], c, v.Dim, files[0], v0.Dim)
		}
		if v.Affine != v0.Affine {
			return fmt.Errorf("infer: %s: channel %d's affine differs from channel 0's (%s): every channel must be on one grid (resample it first)", files[c], c, files[0])
		}
		for i, x := range v.Data {
			if math.IsNaN(x) {
				noData = append(noData, i)
			}
		}
		a, err := data.Axial(v)
		if err != nil {
			return fmt.Errorf("%s: %w", files[c], err)
		}
		slices3[c] = a
	}
	a := slices3[0]
	xs := make([]image.Image, len(a.Images))
	for k := range a.Images {
		chans := make([]image.Image, len(vs))
		for c := range vs {
			chans[c] = slices3[c].Images[k]
		}
		img, err := data.StackChannels(chans)
		if err != nil {
			return fmt.Errorf("infer: %s: %w", files[0], err)
		}
		xs[k] = img
	}
	var ps []*data.Tensor[float32]
	if o.SlidingWindow {
		ts := make([]*data.Tensor[float32], len(xs))
		for k, img := range xs {
			var err error
			if ts[k], err = p.native(img); err != nil {
				return fmt.Errorf("%s: %w", files[0], err)
			}
		}
		var err error
		if ps, err = p.slide(ts, o); err != nil {
			return fmt.Errorf("%s: %w", files[0], err)
		}
	} else {
		h, w := p.info.Size[0], p.info.Size[1]
		for start := 0; start < len(xs); start += o.batch() {
			chunk := xs[start:min(start+o.batch(), len(xs))]
			var buf []float32
			for _, img := range chunk {
				t, err := p.Preprocess(img)
				if err != nil {
					return fmt.Errorf("%s: %w", files[0], err)
				}
				buf = append(buf, t.Data...)
			}
			pr, err := p.forwardProbs(buf, len(chunk), o.TTA)
			if err != nil {
				return fmt.Errorf("%s: %w", files[0], err)
			}
			k := len(pr) / (len(chunk) * h * w)
			for i := range chunk {
				ps = append(ps, resizeProbs(pr[i*k*h*w:(i+1)*k*h*w], k, w, h, a.W, a.H))
			}
		}
	}
	in := strings.SplitN(files[0], " (frame ", 2)[0]
	n := v0.Dim[0] * v0.Dim[1] * v0.Dim[2]
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
	return writeVolumePrediction(in, out, probs, labels, pv, k, [3]int{v0.Dim[0], v0.Dim[1], v0.Dim[2]}, noData, o)
}

// resizeInput resizes img to w×h bilinearly (gift's linear resampling): a
// *data.Planes plane by plane, as augment.Resize resizes it in training.
func resizeInput(img image.Image, w, h int) image.Image {
	g := gift.New(gift.Resize(w, h, gift.LinearResampling))
	if pl, ok := img.(*data.Planes); ok {
		out := &data.Planes{Chans: make([]*image.Gray16, len(pl.Chans))}
		for c, src := range pl.Chans {
			dst := image.NewNRGBA64(g.Bounds(src.Bounds())) // augment's 16-bit destination
			g.Draw(dst, src)
			out.Chans[c] = data.Gray16Of(dst)
		}
		return out
	}
	dst := image.NewRGBA64(g.Bounds(img.Bounds()))
	g.Draw(dst, img)
	return dst
}
