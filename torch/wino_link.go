//go:build !nowinograd

package torch

// csrc/wino.cc calls oneDNN (libdnnl 2, which Debian's libtorch itself
// links; its headers come with libdnnl-dev).

// #cgo LDFLAGS: -ldnnl
import "C"
