package serve

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // DecodeConfig of JPEG bodies
	_ "image/png"  // and PNG ones
	"io"
	"mime"
	"net/http"
	"os"
	"strings"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/data/dicom" // DICOM bodies, and data.ReadImage's DICOM decoder
)

// Content types a body's format is taken from; any other is sniffed.
var contentTypes = map[string]data.Format{
	"image/png":              data.FormatPNG,
	"image/jpeg":             data.FormatJPEG,
	"image/jpg":              data.FormatJPEG,
	"application/x-npy":      data.FormatNPY,
	"application/npy":        data.FormatNPY,
	"application/dicom":      data.FormatDICOM,
	"application/x-nifti":    data.FormatNIfTI,
	"application/nifti":      data.FormatNIfTI,
	"application/x-nifti-gz": data.FormatNIfTI,
}

// sniff tells a body's format from its first bytes.
func sniff(b []byte) data.Format {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return data.FormatPNG
	case bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}):
		return data.FormatJPEG
	case bytes.HasPrefix(b, []byte("\x93NUMPY")):
		return data.FormatNPY
	case len(b) >= 132 && string(b[128:132]) == "DICM":
		return data.FormatDICOM
	case isNIfTI(b):
		return data.FormatNIfTI
	case isGzip(b):
		// A gzipped NIfTI: look at its header only.
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return ""
		}
		head := make([]byte, 348)
		if _, err := io.ReadFull(zr, head); err == nil && isNIfTI(head) {
			return data.FormatNIfTI
		}
	}
	return ""
}

func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// isNIfTI: a NIfTI-1 header (sizeof_hdr 348 either way round, magic n+1 or
// ni1).
func isNIfTI(b []byte) bool {
	if len(b) < 348 {
		return false
	}
	if binary.LittleEndian.Uint32(b) != 348 && binary.BigEndian.Uint32(b) != 348 {
		return false
	}
	m := string(b[344:347])
	return m == "n+1" || m == "ni1"
}

// input is a decoded request body.
type input struct {
	format data.Format
	img    image.Image // a 2D image (any format but NIfTI)
	path   string      // the body as a file: a NIfTI volume is predicted from it
	gz     bool        // a gzipped NIfTI
	// spacing is the (x, y) pixel size in mm of a 2D image, nil when
	// unknown; spacingFrom says where it comes from ("dicom", "model").
	spacing     []float64
	spacingFrom string
}

// httpError is an error with the status that answers it.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// readBody reads a request body of at most max bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	tooLarge := &httpError{code: http.StatusRequestEntityTooLarge,
		msg: fmt.Sprintf("the body is over the server's limit of %d bytes (--max-body)", limit)}
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb):
		return nil, tooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, &httpError{code: http.StatusRequestTimeout, msg: "the body did not arrive within the server's time per request (--timeout)"}
	case err != nil:
		return nil, badRequest("reading the body: %v", err)
	case len(b) == 0:
		return nil, badRequest("empty body: send an image (PNG, JPEG, NPY, DICOM or NIfTI)")
	}
	return b, nil
}

// formatOf is the body's format: its Content-Type's, else sniffed.
func formatOf(contentType string, b []byte) (data.Format, error) {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		if f, ok := contentTypes[strings.ToLower(mt)]; ok {
			return f, nil
		}
	}
	if f := sniff(b); f != "" {
		return f, nil
	}
	what := "no Content-Type"
	if contentType != "" {
		what = "Content-Type " + contentType
	}
	return "", badRequest("the body (%s, %d bytes) is not an image jmedseg reads: send PNG, JPEG, NPY, DICOM or NIfTI (.nii, .nii.gz), with its Content-Type (image/png, image/jpeg, application/x-npy, application/dicom, application/x-nifti) or as is", what, len(b))
}

var extOf = map[data.Format]string{data.FormatPNG: ".png", data.FormatJPEG: ".jpg", data.FormatNPY: ".npy",
	data.FormatDICOM: ".dcm", data.FormatNIfTI: ".nii"}

// decode makes an input of body b: the format, the body as a file in the
// server's directory (named as the readers want), and for 2D formats the
// image as data.ReadImage reads it, which `jmedseg predict` reads too.
// The caller removes in.path.
func (s *Server) decode(contentType string, b []byte, m *model) (*input, error) {
	f, err := formatOf(contentType, b)
	if err != nil {
		return nil, err
	}
	in := &input{format: f}
	if f == data.FormatPNG || f == data.FormatJPEG {
		cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			return nil, badRequest("the body is not a readable %s: %v", strings.ToUpper(string(f)), err)
		}
		if n := int64(cfg.Width) * int64(cfg.Height); n > s.cfg.MaxPixels {
			return nil, &httpError{code: http.StatusRequestEntityTooLarge,
				msg: fmt.Sprintf("the image is %dx%d, %d pixels: over the server's limit of %d (--max-pixels)", cfg.Width, cfg.Height, n, s.cfg.MaxPixels)}
		}
	}
	ext := extOf[f]
	if f == data.FormatNIfTI && isGzip(b) {
		ext, in.gz = ".nii.gz", true
	}
	file, err := os.CreateTemp(s.tmp, "body-*"+ext)
	if err != nil {
		return nil, fmt.Errorf("serve: a file for the body: %w", err)
	}
	in.path = file.Name()
	_, err = file.Write(b)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(in.path)
		return nil, fmt.Errorf("serve: writing the body: %w", err)
	}
	if f == data.FormatNIfTI {
		return in, nil // predicted from the file, as predict does
	}
	img, err := data.ReadImage(in.path)
	if err != nil {
		os.Remove(in.path)
		return nil, badRequest("%s", bodyMessage(err, in.path, f))
	}
	in.img = img
	px := int64(img.Bounds().Dx()) * int64(img.Bounds().Dy())
	if px > s.cfg.MaxPixels {
		os.Remove(in.path)
		return nil, &httpError{code: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("the image is %dx%d, %d pixels: over the server's limit of %d (--max-pixels)", img.Bounds().Dx(), img.Bounds().Dy(), px, s.cfg.MaxPixels)}
	}
	if f == data.FormatDICOM {
		if d, err := dicom.ReadFile(in.path); err == nil && d.PixelSpacing[0] > 0 && d.PixelSpacing[1] > 0 {
			in.spacing, in.spacingFrom = []float64{d.PixelSpacing[0], d.PixelSpacing[1]}, "dicom"
		}
	}
	if in.spacing == nil && len(m.info.Spacing) == 2 && m.info.Spacing[0] > 0 && m.info.Spacing[1] > 0 {
		in.spacing, in.spacingFrom = m.info.Spacing, "model"
	}
	return in, nil
}

// bodyMessage is a reader's error about the body's file, told as being
// about the body.
func bodyMessage(err error, path string, f data.Format) string {
	msg := strings.ReplaceAll(err.Error(), path, "the body")
	return fmt.Sprintf("%s (read as %s)", msg, strings.ToUpper(string(f)))
}
