// cgo compiles the performance helpers (csrc/perf.cc) into package torch as
// a translation unit of their own. Go's build cache does not see changes to
// the included file: after editing csrc/perf.cc, run `go clean -cache` (or
// edit this file).
#include "../csrc/perf.cc"
