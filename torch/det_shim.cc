// cgo compiles libtorch's determinism switches (csrc/det.cc) into package
// torch as a translation unit of their own. Go's build cache does not see
// changes to the included file: after editing csrc/det.cc, run
// `go clean -cache` (or edit this file).
#include "../csrc/det.cc"
