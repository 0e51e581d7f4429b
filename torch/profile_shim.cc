// cgo compiles libtorch's operator profiler (csrc/profile.cc) into package
// torch as a translation unit of its own. Go's build cache does not see
// changes to the included file: the Makefile passes csrc/'s hash in
// CGO_CXXFLAGS (or run `go clean -cache`).
#include "../csrc/profile.cc"
