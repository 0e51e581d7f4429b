package torch

import "unsafe"

// CHandle returns t's handle in the shim's C ABI (a jt_tensor of
// csrc/jmedseg.h), for cgo packages with C++ of their own over the same
// handles, such as torch/dist; nil for a nil, failed or freed tensor. It
// is valid while t is: keep t alive (runtime.KeepAlive) across the C call,
// and never free it there.
func (t *Tensor) CHandle() unsafe.Pointer {
	if !t.Valid() {
		return nil
	}
	return unsafe.Pointer(t.h)
}
