// Command capi is jmedseg's model-level C API, built as a shared library
// (libjmedseg.so) with
//
//	go build -buildmode=c-shared -o libjmedseg.so ./capi
//
// (make capi, or the CMake build). Its public header is
// include/jmedseg/jmedseg.h; the cgo preamble below includes it, so the C
// compiler checks every exported function against the header's prototype.
//
// The API is a thin layer over infer.Predictor (jms_predict_u8 and
// jms_preprocess_u8 are Predictor.Predict and Predictor.Preprocess, so a C
// host gets the labels `jmedseg predict` writes) and a second copy of the
// network from models.Load for jms_predict_f32, which runs on tensors the
// host has already normalised, at any size the model takes. Every export
// recovers panics into a jms_error, so nothing Go-specific crosses the
// boundary.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include
#include <stdlib.h>
#include <string.h>
#include "jmedseg/jmedseg.h"

struct jms_model {
	uintptr_t handle; // a runtime/cgo.Handle of the Go model
	char *name;       // the registered model name
	char **classes;   // nclasses class names
	int64_t nclasses;
};

struct jms_error {
	int code;
	char *message;
};

// Const-qualified spellings for the exports' signatures: cgo writes a
// parameter's C type by its name, so these make its prototypes match the
// public header's exactly.
typedef const char jms_cchar;
typedef const uint8_t jms_cu8;
typedef const float jms_cf32;
typedef const jms_error jms_cerror;
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"math"
	"runtime/cgo"
	"sync"
	"unsafe"

	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// version is the API version; the header's JMS_VERSION must equal it (the
// C test checks that jms_version starts with JMS_VERSION).
const version = "1.0.0"

// Error codes, as the header's JMS_ERR_* enumeration.
const (
	codeArgument    = 1
	codeCheckpoint  = 2
	codeDevice      = 3
	codeSize        = 4
	codeRuntime     = 5
	codeOutOfMemory = 6
	codeInternal    = 7
)

// apiError is an error with the code the host sees.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// newError makes the C error for err: its code is err's own, or what
// libtorch said (out of memory, no CUDA), or fallback.
func newError(err error, fallback int) *C.jms_error {
	code := fallback
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		code = ae.code
	case errors.Is(err, torch.ErrOutOfMemory):
		code = codeOutOfMemory
	case errors.Is(err, torch.ErrNoCUDA):
		code = codeDevice
	}
	e := (*C.jms_error)(C.malloc(C.size_t(unsafe.Sizeof(C.jms_error{}))))
	e.code = C.int(code)
	e.message = C.CString(err.Error())
	return e
}

// recovered turns a panic under way into an internal error for *e. It must
// be deferred directly (recover works only there).
func recovered(op string, e **C.jms_error) {
	if r := recover(); r != nil {
		err := fmt.Errorf("%s: internal error (please report it): %v", op, r)
		if e != nil {
			*e = newError(err, codeInternal)
		}
	}
}

// model is what a jms_model's handle holds.
type model struct {
	mu     sync.RWMutex // predict calls hold it for reading, jms_free for writing
	pred   *infer.Predictor
	net    nn.Module // the same weights again, for jms_predict_f32
	info   models.Info
	spec   models.Spec
	dev    torch.Device
	closed bool
}

func (m *model) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.pred.Close()
	m.net.Free()
	m.closed = true
}

// lookup returns the Go model behind cm, or an error naming op.
func lookup(op string, cm *C.jms_model) (*model, error) {
	if cm == nil {
		return nil, errorf(codeArgument, "%s: the model is NULL", op)
	}
	m, ok := cgo.Handle(cm.handle).Value().(*model)
	if !ok {
		return nil, errorf(codeArgument, "%s: not a jms_model", op)
	}
	return m, nil
}

var versionString = sync.OnceValue(func() *C.char {
	rt, err := torch.RuntimeVersion()
	if err != nil {
		rt = "unknown"
	}
	return C.CString(version + " (libtorch " + rt + ")") // lives for the process
})

//export jms_version
func jms_version() *C.jms_cchar {
	defer recovered("jms_version", nil)
	return versionString()
}

//export jms_load
func jms_load(checkpoint, device *C.jms_cchar, errOut **C.jms_error) (cm *C.jms_model) {
	var e *C.jms_error
	defer func() {
		if e != nil {
			cm = nil // a panic past the malloc below: fail, never half a model
		}
		if errOut != nil {
			*errOut = e
		} else if e != nil {
			freeError(e)
		}
	}()
	defer recovered("jms_load", &e)
	m, err := load(checkpoint, device)
	if err != nil {
		e = newError(err, codeRuntime)
		return nil
	}
	cm = (*C.jms_model)(C.malloc(C.size_t(unsafe.Sizeof(C.jms_model{}))))
	cm.handle = C.uintptr_t(cgo.NewHandle(m))
	cm.name = C.CString(m.info.Model)
	cm.nclasses = C.int64_t(len(m.info.Classes))
	cm.classes = nil
	if n := len(m.info.Classes); n > 0 {
		cm.classes = (**C.char)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
		names := unsafe.Slice(cm.classes, n)
		for i, c := range m.info.Classes {
			names[i] = C.CString(c)
		}
	}
	return cm
}

func load(checkpoint, device *C.jms_cchar) (*model, error) {
	if checkpoint == nil {
		return nil, errorf(codeArgument, "jms_load: the checkpoint path is NULL")
	}
	path := C.GoString((*C.char)(checkpoint))
	if err := torch.CheckVersion(); err != nil {
		return nil, errorf(codeRuntime, "jms_load: %v", err)
	}
	devName := "cpu"
	if device != nil {
		devName = C.GoString((*C.char)(device))
	}
	dev, err := torch.ParseDevice(devName)
	if err != nil {
		return nil, errorf(codeDevice, "jms_load: device %q: %v", devName, err)
	}
	pred, err := infer.NewPredictor(path, dev)
	if err != nil {
		return nil, errorf(codeCheckpoint, "jms_load: %v", err)
	}
	net, info, err := models.Load(path)
	if err == nil {
		if err = net.To(dev); err != nil {
			net.Free()
		}
	}
	if err != nil {
		pred.Close()
		return nil, errorf(codeCheckpoint, "jms_load: %v", err)
	}
	net.Eval()
	spec, ok := models.Lookup(info.Model)
	if !ok { // models.Load built it, so it is registered
		pred.Close()
		net.Free()
		return nil, errorf(codeCheckpoint, "jms_load: %s: unknown model %q", path, info.Model)
	}
	if pi := pred.Info(); pi.Model != info.Model || pi.Config != info.Config || pi.Epoch != info.Epoch {
		pred.Close()
		net.Free()
		return nil, errorf(codeCheckpoint, "jms_load: %s changed while it was read; load it again", path)
	}
	return &model{pred: pred, net: net, info: info, spec: spec, dev: dev}, nil
}

//export jms_info_get
func jms_info_get(cm *C.jms_model, out *C.jms_info) (e *C.jms_error) {
	defer recovered("jms_info_get", &e)
	m, err := lookup("jms_info_get", cm)
	if err != nil {
		return newError(err, codeArgument)
	}
	if out == nil {
		return newError(errorf(codeArgument, "jms_info_get: the output jms_info is NULL"), codeArgument)
	}
	out.in_channels = C.int64_t(m.info.Config.InChannels)
	out.classes = C.int64_t(m.info.Config.Classes)
	out.height = C.int64_t(m.info.Size[0])
	out.width = C.int64_t(m.info.Size[1])
	out.model = cm.name
	return nil
}

//export jms_class_name
func jms_class_name(cm *C.jms_model, k C.int64_t) (name *C.jms_cchar) {
	defer func() {
		if recover() != nil {
			name = nil
		}
	}()
	if cm == nil || k < 0 || k >= cm.nclasses {
		return nil
	}
	return unsafe.Slice(cm.classes, int(cm.nclasses))[k]
}

// imageSize checks an image's dimensions and returns its byte count.
func imageSize(op string, h, w, channels C.int64_t) (int, error) {
	if channels != 1 && channels != 3 {
		return 0, errorf(codeArgument, "%s: channels %d: want 1 (grey) or 3 (RGB, interleaved)", op, channels)
	}
	if h < 1 || w < 1 {
		return 0, errorf(codeSize, "%s: image size %dx%d: height and width must be positive", op, h, w)
	}
	// 4 bytes a pixel at most inside (RGBA); stay far from int overflow.
	if int64(h) > math.MaxInt32/int64(w) {
		return 0, errorf(codeSize, "%s: image size %dx%d: more than %d pixels", op, h, w, math.MaxInt32)
	}
	return int(h) * int(w) * int(channels), nil
}

// goImage wraps the host's pixels as the image type Go's PNG decoder gives
// the same file (image.Gray for 8-bit grey, image.RGBA for 8-bit RGB), so
// the Predictor sees what `jmedseg predict` sees. Grey pixels are read in
// place, for the duration of the call.
func goImage(pixels *C.jms_cu8, h, w, channels C.int64_t, n int) image.Image {
	src := unsafe.Slice((*uint8)(unsafe.Pointer(pixels)), n)
	r := image.Rect(0, 0, int(w), int(h))
	if channels == 1 {
		return &image.Gray{Pix: src, Stride: int(w), Rect: r}
	}
	img := image.NewRGBA(r)
	for i, j := 0, 0; i < n; i, j = i+3, j+4 {
		img.Pix[j], img.Pix[j+1], img.Pix[j+2], img.Pix[j+3] = src[i], src[i+1], src[i+2], 255
	}
	return img
}

//export jms_predict_u8
func jms_predict_u8(cm *C.jms_model, pixels *C.jms_cu8, h, w, channels C.int64_t, labelsOut *C.uint8_t) (e *C.jms_error) {
	defer recovered("jms_predict_u8", &e)
	if err := predictU8(cm, pixels, h, w, channels, labelsOut); err != nil {
		return newError(err, codeRuntime)
	}
	return nil
}

func predictU8(cm *C.jms_model, pixels *C.jms_cu8, h, w, channels C.int64_t, labelsOut *C.uint8_t) error {
	const op = "jms_predict_u8"
	m, err := lookup(op, cm)
	if err != nil {
		return err
	}
	if pixels == nil || labelsOut == nil {
		return errorf(codeArgument, "%s: pixels and labels_out must not be NULL", op)
	}
	n, err := imageSize(op, h, w, channels)
	if err != nil {
		return err
	}
	if c := m.info.Config.Classes; c > 256 {
		return errorf(codeArgument, "%s: %s has %d classes, more than a uint8 label holds: use jms_predict_f32", op, m.info.Model, c)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return errorf(codeArgument, "%s: the model is freed", op)
	}
	mask, err := m.pred.Predict(goImage(pixels, h, w, channels, n))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	out := unsafe.Slice((*uint8)(unsafe.Pointer(labelsOut)), int(h*w))
	for i, v := range mask.Pix {
		out[i] = uint8(v)
	}
	return nil
}

//export jms_preprocess_u8
func jms_preprocess_u8(cm *C.jms_model, pixels *C.jms_cu8, h, w, channels C.int64_t, chwOut *C.float) (e *C.jms_error) {
	defer recovered("jms_preprocess_u8", &e)
	if err := preprocessU8(cm, pixels, h, w, channels, chwOut); err != nil {
		return newError(err, codeRuntime)
	}
	return nil
}

func preprocessU8(cm *C.jms_model, pixels *C.jms_cu8, h, w, channels C.int64_t, chwOut *C.float) error {
	const op = "jms_preprocess_u8"
	m, err := lookup(op, cm)
	if err != nil {
		return err
	}
	if pixels == nil || chwOut == nil {
		return errorf(codeArgument, "%s: pixels and chw_out must not be NULL", op)
	}
	n, err := imageSize(op, h, w, channels)
	if err != nil {
		return err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return errorf(codeArgument, "%s: the model is freed", op)
	}
	t, err := m.pred.Preprocess(goImage(pixels, h, w, channels, n))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	copy(unsafe.Slice((*float32)(unsafe.Pointer(chwOut)), len(t.Data)), t.Data)
	return nil
}

//export jms_predict_f32
func jms_predict_f32(cm *C.jms_model, nchw *C.jms_cf32, n, c, h, w C.int64_t, probsOut *C.float) (e *C.jms_error) {
	defer recovered("jms_predict_f32", &e)
	if err := predictF32(cm, nchw, int64(n), int64(c), int64(h), int64(w), probsOut); err != nil {
		return newError(err, codeRuntime)
	}
	return nil
}

func predictF32(cm *C.jms_model, nchw *C.jms_cf32, n, c, h, w int64, probsOut *C.float) error {
	const op = "jms_predict_f32"
	m, err := lookup(op, cm)
	if err != nil {
		return err
	}
	if nchw == nil || probsOut == nil {
		return errorf(codeArgument, "%s: nchw and probs_out must not be NULL", op)
	}
	if n < 1 {
		return errorf(codeArgument, "%s: batch size n %d: want at least 1", op, n)
	}
	if in := m.info.Config.InChannels; c != in {
		return errorf(codeArgument, "%s: c %d: %s takes %d input channel(s)", op, c, m.info.Model, in)
	}
	if err := m.spec.CheckSize(h, w); err != nil {
		return errorf(codeSize, "%s: %v", op, err)
	}
	classes := m.info.Config.Classes
	// The larger of an image's input and output, times n, must stay far
	// from int overflow.
	if per := h * max(c, classes); h > math.MaxInt32/w || per > math.MaxInt32/w || n > math.MaxInt32/(per*w) {
		return errorf(codeSize, "%s: input %dx%dx%dx%d: too large", op, n, c, h, w)
	}
	plane := c * h * w
	in := unsafe.Slice((*float32)(unsafe.Pointer(nchw)), int(n*plane))
	out := unsafe.Slice((*float32)(unsafe.Pointer(probsOut)), int(n*classes*h*w))
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return errorf(codeArgument, "%s: the model is freed", op)
	}
	// Batches of infer.MaxBatch at most, as the Predictor runs them.
	for start := int64(0); start < n; start += infer.MaxBatch {
		k := min(int64(infer.MaxBatch), n-start)
		var probs []float32
		torch.InferenceMode(func() { // locks the goroutine to its thread for the guard
			s := torch.NewScope()
			defer s.Close()
			x := torch.FromSlice(in[start*plane:(start+k)*plane], []int64{k, c, h, w}, s).ToDevice(m.dev)
			logits := m.net.Forward(x)
			if err = logits.Err(); err != nil {
				return
			}
			if got := logits.Shape(); len(got) != 4 || got[0] != k || got[1] != classes || got[2] != h || got[3] != w {
				err = errorf(codeSize, "%s: %s gave logits %v for an input %dx%dx%dx%d, want [%d %d %d %d]", op, m.info.Model, got, k, c, h, w, k, classes, h, w)
				return
			}
			probs, err = logits.Softmax(1).Float32s()
		})
		if err != nil {
			return fmt.Errorf("%s: %s: %w", op, m.info.Model, err)
		}
		copy(out[start*classes*h*w:], probs)
	}
	return nil
}

//export jms_set_num_threads
func jms_set_num_threads(n C.int64_t) (e *C.jms_error) {
	defer recovered("jms_set_num_threads", &e)
	if n < 1 || n > 1<<16 {
		return newError(errorf(codeArgument, "jms_set_num_threads: %d threads: want 1 to 65536", n), codeArgument)
	}
	torch.SetNumThreads(int(n))
	return nil
}

//export jms_tensor_stats
func jms_tensor_stats(live, bytes, leaked *C.int64_t) {
	defer func() { _ = recover() }() // nothing to report to
	c, b := torch.Live()
	if live != nil {
		*live = C.int64_t(c)
	}
	if bytes != nil {
		*bytes = C.int64_t(b)
	}
	if leaked != nil {
		*leaked = C.int64_t(torch.Leaked())
	}
}

//export jms_free
func jms_free(cm *C.jms_model) {
	defer func() { _ = recover() }() // nothing to report to; the host goes on
	if cm == nil {
		return
	}
	h := cgo.Handle(cm.handle)
	if m, ok := h.Value().(*model); ok {
		m.close()
	}
	h.Delete()
	if cm.classes != nil {
		for _, s := range unsafe.Slice(cm.classes, int(cm.nclasses)) {
			C.free(unsafe.Pointer(s))
		}
		C.free(unsafe.Pointer(cm.classes))
	}
	C.free(unsafe.Pointer(cm.name))
	C.free(unsafe.Pointer(cm))
}

var emptyString = C.CString("") // lives for the process

//export jms_error_message
func jms_error_message(e *C.jms_cerror) *C.jms_cchar {
	if e == nil || e.message == nil {
		return emptyString
	}
	return e.message
}

//export jms_error_code
func jms_error_code(e *C.jms_cerror) C.int {
	if e == nil {
		return 0
	}
	return e.code
}

//export jms_error_free
func jms_error_free(e *C.jms_error) {
	if e != nil {
		freeError(e)
	}
}

func freeError(e *C.jms_error) {
	C.free(unsafe.Pointer(e.message))
	C.free(unsafe.Pointer(e))
}

func main() {}
