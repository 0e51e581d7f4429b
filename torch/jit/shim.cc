// The TorchScript shim is compiled into this package by cgo; the tensor
// shim it builds on (csrc/jmedseg.cc) is package torch's. Go's build cache
// does not see changes to the included file: after editing
// csrc/jmedseg_jit.cc, run `go clean -cache` (or edit this file; rev 4).
#include "../../csrc/jmedseg_jit.cc"
