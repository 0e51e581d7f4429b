//go:build !nowinograd

// cgo compiles csrc/wino.cc (Winograd convolutions on oneDNN 2.x) into
// package torch; -tags nowinograd builds csrc/wino_none.cc instead, for a
// libtorch not on Debian 12's libdnnl 2. Go's build cache does not see
// changes to the included file: after editing it, run `go clean -cache`.
#include "../csrc/wino.cc"
