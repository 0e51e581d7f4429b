package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/data/nifti"
	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/torch"
)

// Prediction is the JSON answer of predict?format=json for a 2D image.
type Prediction struct {
	Model  string `json:"model"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	// Spacing is the (x, y) pixel size in mm the areas use, null when
	// unknown; SpacingFrom says where it comes from: "dicom" (the file's
	// PixelSpacing) or "model" (the spacing the model's data set recorded,
	// taken for an image without one).
	Spacing     []float64    `json:"pixel_spacing_mm"`
	SpacingFrom string       `json:"spacing_from,omitempty"`
	Classes     []ClassCount `json:"classes"`
	// MaskPNG is the mask predict answers by default (base64 PNG of class
	// ids); ImagePNG, with ?image=1, the image as the model read it.
	MaskPNG  string `json:"mask_png"`
	ImagePNG string `json:"image_png,omitempty"`
}

// VolumePrediction is the JSON answer of predict?format=json for a NIfTI
// volume.
type VolumePrediction struct {
	Model   string       `json:"model"`
	Dims    [3]int       `json:"dims"`
	Spacing [3]float64   `json:"voxel_spacing_mm"`
	Classes []ClassCount `json:"classes"`
	// MaskNIfTI is the label volume predict?format=nifti answers, base64.
	MaskNIfTI string `json:"mask_nifti"`
	Gzip      bool   `json:"gzip"`
}

// ClassCount is one class's share of a mask.
type ClassCount struct {
	ID     int      `json:"id"`
	Name   string   `json:"name"`
	Pixels int64    `json:"pixels"`             // pixels (voxels of a volume)
	AreaMM *float64 `json:"area_mm2,omitempty"` // 2D, when the spacing is known
	VolMM  *float64 `json:"volume_mm3,omitempty"`
}

// answerFormat is the format predict answers for an input.
func answerFormat(r *http.Request, volume bool) (string, error) {
	f := strings.ToLower(r.URL.Query().Get("format"))
	switch {
	case f == "" && volume:
		return "nifti", nil
	case f == "":
		return "png", nil
	case f == "json":
		return f, nil
	case volume && f == "nifti":
		return f, nil
	case volume && (f == "png" || f == "npy"):
		return "", badRequest("format=%s: a NIfTI input's mask is a NIfTI label volume on its grid: ask for format=nifti or json", f)
	case !volume && (f == "png" || f == "npy"):
		return f, nil
	case !volume && f == "nifti":
		return "", badRequest("format=nifti takes a NIfTI input (a NIfTI mask takes its grid from it); this body is a 2D image: ask for png, npy or json")
	}
	return "", badRequest("format=%s: want png, npy, nifti or json", f)
}

// predictOne reads, decodes and predicts a request's body: the input and
// its 2D mask, or for a NIfTI volume the label volume file (in.path +
// ".out" + extension). check, when set, may refuse the decoded input
// before it is predicted. predictOne answers failures itself and then
// returns ok false. The caller removes the files.
func (s *Server) predictOne(w http.ResponseWriter, r *http.Request, m *model, check func(*input) error) (in *input, mask *data.Mask, volOut string, ok bool) {
	release, ok := s.admitted(w)
	if !ok {
		return nil, nil, "", false
	}
	defer release()
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	// The body too must arrive in time (an http.Server's ReadTimeout may be
	// longer, or unset); not every ResponseWriter can do it.
	deadline, _ := ctx.Deadline()
	_ = http.NewResponseController(w).SetReadDeadline(deadline)
	fail := func(err error) (*input, *data.Mask, string, bool) {
		s.fail(w, r, err)
		if in != nil {
			os.Remove(in.path)
		}
		if volOut != "" {
			os.Remove(volOut)
		}
		return nil, nil, "", false
	}
	body, err := readBody(w, r, s.cfg.MaxBody)
	if err != nil {
		return fail(err)
	}
	select { // decoding takes memory: a few at a time
	case s.decoding <- struct{}{}:
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	in, err = s.decode(r.Header.Get("Content-Type"), body, m)
	<-s.decoding
	if err != nil {
		return fail(err)
	}
	if check != nil {
		if err := check(in); err != nil {
			return fail(err)
		}
	}
	j := &job{ctx: ctx, img: in.img}
	if in.format == data.FormatNIfTI {
		volOut = strings.TrimSuffix(strings.TrimSuffix(in.path, ".gz"), ".nii") + ".out.nii"
		if in.gz {
			volOut += ".gz"
		}
		j.img, j.volIn, j.volOut = nil, in.path, volOut
	}
	res := m.b.wait(j)
	if res.err != nil {
		if in.format == data.FormatNIfTI && !errors.Is(res.err, errClosed) && !errors.Is(res.err, errQueueFull) {
			res.err = volumeError(res.err, in.path)
		}
		return fail(res.err)
	}
	return in, res.mask, volOut, true
}

// volumeError classifies an error of infer's Volume: the model's own
// (libtorch) errors stay internal, the rest are about the body.
func volumeError(err error, path string) error {
	var te *torch.Error
	if errors.As(err, &te) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, infer.ErrClosed) {
		return err
	}
	return badRequest("%s", bodyMessage(err, path, data.FormatNIfTI))
}

// fail answers err with its status.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	var te *torch.Error
	code, msg := http.StatusInternalServerError, err.Error()
	switch {
	case errors.As(err, &he):
		code = he.code
	case errors.Is(err, context.DeadlineExceeded):
		code, msg = http.StatusGatewayTimeout, fmt.Sprintf("no answer within the server's %s per request (--timeout)", s.cfg.Timeout)
	case errors.Is(err, context.Canceled):
		code, msg = 499, "the client went away" // nginx's code; nobody reads it
	case errors.Is(err, errQueueFull), errors.Is(err, errClosed), errors.Is(err, infer.ErrClosed):
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	case errors.As(err, &te):
		msg = "the model failed: " + te.Error()
	default:
		// An image the reader took but the model could not (Preprocess).
		code = http.StatusBadRequest
	}
	if code >= 500 && code != http.StatusServiceUnavailable {
		s.logf("%s %s: %d %s", r.Method, r.URL.Path, code, msg)
	}
	writeError(w, code, msg)
}

func (s *Server) predict(w http.ResponseWriter, r *http.Request) {
	m := s.lookup(w, r)
	if m == nil {
		return
	}
	// Check the format before reading the body where the query decides it.
	q := strings.ToLower(r.URL.Query().Get("format"))
	if q != "" && q != "png" && q != "npy" && q != "nifti" && q != "json" {
		s.fail(w, r, badRequest("format=%s: want png, npy, nifti or json", q))
		return
	}
	var format string
	in, mask, volOut, ok := s.predictOne(w, r, m, func(in *input) (err error) {
		format, err = answerFormat(r, in.format == data.FormatNIfTI)
		return err
	})
	if !ok {
		return
	}
	defer os.Remove(in.path)
	if volOut != "" {
		defer os.Remove(volOut)
	}
	stem := "mask"
	switch {
	case volOut != "":
		b, err := os.ReadFile(volOut)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		ext := ".nii"
		if in.gz {
			ext = ".nii.gz"
		}
		if format == "nifti" {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Disposition", `attachment; filename="`+stem+ext+`"`)
			w.Write(b)
			return
		}
		v, err := nifti.Decode(bytes.NewReader(b))
		if err != nil {
			s.fail(w, r, fmt.Errorf("serve: reading back the label volume: %w", err))
			return
		}
		writeJSON(w, volumeCounts(m, v, b, in.gz))
	case format == "json":
		p, err := countsOf(m, in, mask, r.URL.Query().Get("image") == "1")
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, p)
	default:
		var buf bytes.Buffer
		if err := infer.EncodeMask(&buf, mask, format); err != nil {
			s.fail(w, r, err)
			return
		}
		ct := "image/png"
		if format == "npy" {
			ct = "application/x-npy"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Disposition", `attachment; filename="`+stem+"."+format+`"`)
		w.Write(buf.Bytes())
	}
}

// countsOf is the JSON answer for a 2D mask.
func countsOf(m *model, in *input, mask *data.Mask, withImage bool) (*Prediction, error) {
	names := classNames(m.info)
	counts := make([]int64, len(names))
	for _, v := range mask.Pix {
		if int(v) < len(counts) {
			counts[v]++
		}
	}
	p := &Prediction{Model: m.Name, Width: mask.W, Height: mask.H, Spacing: in.spacing, SpacingFrom: in.spacingFrom}
	for c, n := range counts {
		cc := ClassCount{ID: c, Name: names[c], Pixels: n}
		if in.spacing != nil {
			a := float64(n) * in.spacing[0] * in.spacing[1]
			cc.AreaMM = &a
		}
		p.Classes = append(p.Classes, cc)
	}
	var buf bytes.Buffer
	if err := infer.EncodeMask(&buf, mask, "png"); err != nil {
		return nil, err
	}
	p.MaskPNG = base64.StdEncoding.EncodeToString(buf.Bytes())
	if withImage {
		buf.Reset()
		if err := png.Encode(&buf, in.img); err != nil {
			return nil, err
		}
		p.ImagePNG = base64.StdEncoding.EncodeToString(buf.Bytes())
	}
	return p, nil
}

// volumeCounts is the JSON answer for a label volume.
func volumeCounts(m *model, v *nifti.Volume, raw []byte, gz bool) *VolumePrediction {
	names := classNames(m.info)
	counts := make([]int64, len(names))
	for _, x := range v.Data {
		if c := int(x); c >= 0 && c < len(counts) {
			counts[c]++
		}
	}
	vox := v.Spacing[0] * v.Spacing[1] * v.Spacing[2]
	p := &VolumePrediction{Model: m.Name, Dims: [3]int{v.Dim[0], v.Dim[1], v.Dim[2]}, Spacing: v.Spacing,
		MaskNIfTI: base64.StdEncoding.EncodeToString(raw), Gzip: gz}
	for c, n := range counts {
		mm := float64(n) * vox
		p.Classes = append(p.Classes, ClassCount{ID: c, Name: names[c], Pixels: n, VolMM: &mm})
	}
	return p
}

// Palette is the overlay's colour of each class (class 0, background, is
// not drawn); classes past its end reuse it. The page starts from it too.
var Palette = []color.RGBA{
	{0, 0, 0, 0}, {255, 48, 48, 255}, {48, 200, 64, 255}, {64, 128, 255, 255}, {255, 200, 0, 255},
	{230, 64, 230, 255}, {0, 210, 210, 255}, {255, 128, 0, 255}, {160, 96, 255, 255}, {140, 255, 140, 255},
}

// classColor is the colour of class c (c > 0).
func classColor(c int) color.RGBA {
	return Palette[1+(c-1)%(len(Palette)-1)]
}

func (s *Server) overlay(w http.ResponseWriter, r *http.Request) {
	m := s.lookup(w, r)
	if m == nil {
		return
	}
	alpha := 0.5
	if a := r.URL.Query().Get("alpha"); a != "" {
		v, err := strconv.ParseFloat(a, 64)
		if err != nil || !(v >= 0 && v <= 1) {
			s.fail(w, r, badRequest("alpha=%s: want a number from 0 to 1", a))
			return
		}
		alpha = v
	}
	in, mask, _, ok := s.predictOne(w, r, m, func(in *input) error {
		if in.format == data.FormatNIfTI {
			return badRequest("overlay takes a 2D image; a NIfTI volume's labels come from predict?format=nifti (the page shows them slice by slice)")
		}
		return nil
	})
	if !ok {
		return
	}
	defer os.Remove(in.path)
	var buf bytes.Buffer
	if err := png.Encode(&buf, Overlay(in.img, mask, alpha)); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(buf.Bytes())
}

// Overlay draws mask over img (of the mask's size): each pixel of a class
// c > 0 is blended with classColor(c) at opacity alpha.
func Overlay(img image.Image, mask *data.Mask, alpha float64) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, mask.W, mask.H))
	for y := range mask.H {
		for x := range mask.W {
			c := color.RGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.RGBA)
			if l := int(mask.Pix[y*mask.W+x]); l > 0 {
				k := classColor(l)
				mix := func(a, b uint8) uint8 { return uint8(float64(a)*(1-alpha) + float64(b)*alpha + 0.5) }
				c = color.RGBA{mix(c.R, k.R), mix(c.G, k.G), mix(c.B, k.B), 255}
			}
			c.A = 255
			out.SetRGBA(x, y, c)
		}
	}
	return out
}
