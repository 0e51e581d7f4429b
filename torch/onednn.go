package torch

/*
#include "perf.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
)

// Conv2dOneDNN is Conv2d, except that a float32 CPU convolution runs
// libtorch's oneDNN kernel (at::mkldnn_convolution) wherever it applies.
// at::conv2d (Conv2d) follows PyTorch's heuristic, which gives batch-1
// convolutions with kernels up to 3×3 on small maps (at most 20480 input
// elements) to the native im2col and dilated kernels: deeplab at batch 1 and
// 128² spends most of its time there (measured: 0.59 s eager, 0.07 s with
// oneDNN throughout, in PyTorch 1.13 on this project's CPU). The result
// equals Conv2d's to float32 round-off, and gradients flow through
// at::convolution_backward as Conv2d's do.
//
// It is Conv2d itself while SetOneDNNConv(false), when libtorch has no
// MKLDNN or torch.backends.mkldnn is disabled, on other devices and dtypes,
// under Autocast (Conv2d casts to bfloat16 there), while a tracer records
// (exports keep the portable aten::_convolution), and for arguments it
// cannot take (Conv2d's checks then say what is wrong).
func Conv2dOneDNN(x, w, b *Tensor, stride, padding, dilation [2]int64, groups int64) *Tensor {
	if err := argErr("conv2d", x, w); err != nil {
		return errTensor(err)
	}
	if err := optArgErr("conv2d", b); err != nil {
		return errTensor(err)
	}
	return result(C.jp_conv2d(x.h, w.h, optH(b), pair(&stride), pair(&padding), pair(&dilation), C.int64_t(groups), nil), "conv2d", x, w, b)
}

// conv2dKernel is Conv2dOneDNN that also says whether oneDNN ran (for
// tests: the out-parameter costs an allocation per call).
func conv2dKernel(x, w, b *Tensor, stride, padding, dilation [2]int64, groups int64) (*Tensor, bool) {
	r, k := conv2dWhich(x, w, b, stride, padding, dilation, groups)
	return r, k != 0
}

// conv2dWhich is Conv2dOneDNN that also says which kernel ran: 0
// at::conv2d, 1 oneDNN direct, 2 oneDNN Winograd.
func conv2dWhich(x, w, b *Tensor, stride, padding, dilation [2]int64, groups int64) (*Tensor, int) {
	if err := argErr("conv2d", x, w); err != nil {
		return errTensor(err), 0
	}
	if err := optArgErr("conv2d", b); err != nil {
		return errTensor(err), 0
	}
	var used C.int
	r := result(C.jp_conv2d(x.h, w.h, optH(b), pair(&stride), pair(&padding), pair(&dilation), C.int64_t(groups), &used), "conv2d", x, w, b)
	return r, int(used)
}

// ConvTranspose2dOneDNN is ConvTranspose2d on oneDNN for float32 CPU
// inputs with strides above 1, one group and no dilation, which
// at::conv_transpose2d runs on libtorch's native kernel (im2col and the
// BLAS, many times slower). A square kernel equal to its stride without
// padding (U-Net decoders' up-sampling) is a 1×1 convolution to out·s²
// channels followed by PixelShuffle(s): each input pixel writes its own
// s×s block, the same sums. Any other (a 3×3 or 4×4 kernel at stride 2;
// padding below the kernel, output padding below the stride) is the
// stride-1 convolution, by the flipped kernel, of the input spread out
// with zeros: s² times the multiply-adds, still faster. Otherwise, and
// under Conv2dOneDNN's exceptions, it is ConvTranspose2d itself.
func ConvTranspose2dOneDNN(x, w, b *Tensor, stride, padding, outputPadding, dilation [2]int64, groups int64) *Tensor {
	r, _ := convTranspose2dWhich(x, w, b, stride, padding, outputPadding, dilation, groups)
	return r
}

// convTranspose2dWhich is ConvTranspose2dOneDNN that also says which form
// ran: 0 at::conv_transpose2d, 1 the 1×1 convolution, 2 the spread-out
// input.
func convTranspose2dWhich(x, w, b *Tensor, stride, padding, outputPadding, dilation [2]int64, groups int64) (*Tensor, int) {
	if err := argErr("conv_transpose2d", x, w); err != nil {
		return errTensor(err), 0
	}
	if err := optArgErr("conv_transpose2d", b); err != nil {
		return errTensor(err), 0
	}
	var used C.int
	r := result(C.jp_conv_transpose2d(x.h, w.h, optH(b), pair(&stride), pair(&padding), pair(&outputPadding), pair(&dilation), C.int64_t(groups), &used),
		"conv_transpose2d", x, w, b)
	return r, int(used)
}

// SetOneDNNConv turns Conv2dOneDNN's use of oneDNN on (the default) or off,
// for the whole process, and returns the previous setting. nn.Conv2d
// convolves through Conv2dOneDNN, so off gives PyTorch eager's kernels.
func SetOneDNNConv(on bool) (was bool) {
	was = C.jp_onednn_conv() != 0
	v := C.int(0)
	if on {
		v = 1
	}
	C.jp_set_onednn_conv(v)
	return was
}

// WithoutOneDNNConv runs f with Conv2dOneDNN equal to Conv2d (PyTorch
// eager's kernel choice) on the calling goroutine only, locked to its OS
// thread while f runs (the override is libtorch-thread-local, as NoGrad's
// mode); other goroutines keep the process-wide setting. For comparisons
// with what PyTorch computes: where a model is ill-conditioned (an
// InstanceNorm over a 2×2 map, as r2's deepest level at small inputs),
// the two kernels' float32 round-off differs visibly in the output.
func WithoutOneDNNConv(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := C.jp_onednn_conv_thread(0)
	defer C.jp_onednn_conv_thread(prev)
	f()
}

// OneDNNConv reports whether Conv2dOneDNN may use oneDNN: the switch is on
// and libtorch was built with MKLDNN.
func OneDNNConv() bool { return C.jp_onednn_conv() != 0 && C.jp_has_mkldnn() != 0 }

// WinogradMode says where Conv2dOneDNN may use oneDNN's Winograd kernels
// for 3×3 convolutions (stride 1, no dilation, no groups, padding up to 1,
// at least 32 input and output channels: thinner layers are faster on the
// direct kernel).
type WinogradMode int

const (
	// WinogradOff keeps every convolution on the direct kernel.
	WinogradOff WinogradMode = 0
	// WinogradInference uses it where no gradient is recorded (NoGrad,
	// inference mode, or no input requiring one), with each weight packed
	// once per input shape and cached.
	WinogradInference WinogradMode = 1
	// WinogradTraining (the default) also uses it where gradients are
	// recorded: its backward is oneDNN's Winograd backward-data and
	// backward-weights (no double backward), the weights reordered at each
	// call as they change at each step.
	WinogradTraining WinogradMode = 2
)

// String names the mode as the command line's --winograd flag does.
func (m WinogradMode) String() string {
	switch m {
	case WinogradOff:
		return "off"
	case WinogradInference:
		return "inference"
	case WinogradTraining:
		return "training"
	}
	return fmt.Sprintf("WinogradMode(%d)", int(m))
}

// ParseWinogradMode reads "off", "inference" or "training".
func ParseWinogradMode(s string) (WinogradMode, error) {
	for _, m := range []WinogradMode{WinogradOff, WinogradInference, WinogradTraining} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("winograd mode %q: want off, inference or training", s)
}

// SetWinograd sets the process-wide Winograd mode and returns the previous
// one (a value that is not one of the three modes changes nothing). The kernels' float32 round-off is of the direct kernel's order, not
// bit for bit the same: against a float64 reference, outputs within 2e-6
// of their scale (the direct kernel: 1e-7 to 2e-6), gradients within 5e-6
// (the input's up to 10× the direct kernel's error). It has no effect where WinogradAvailable is false, nor
// where Conv2dOneDNN takes at::conv2d (SetOneDNNConv(false), autocast, a
// tracer).
func SetWinograd(m WinogradMode) (was WinogradMode) {
	return WinogradMode(C.jp_winograd_set(C.int(m)))
}

// Winograd reports the current mode (WinogradOff where the kernels are not
// available).
func Winograd() WinogradMode {
	if !WinogradAvailable() {
		return WinogradOff
	}
	return WinogradMode(C.jp_winograd_mode())
}

// WinogradAvailable reports whether the build has the kernels (not with
// -tags nowinograd, which builds without oneDNN 2) and oneDNN offers them
// on this CPU (AVX-512).
func WinogradAvailable() bool {
	winogradOnce.Do(func() { winogradAvail = C.jp_winograd_available() != 0 })
	return winogradAvail
}

var (
	winogradOnce  sync.Once
	winogradAvail bool
)

// WinogradCache reports how many weights are packed for inference (one per
// weight and kernel weight layout, which input shapes often share; at most
// 4 per weight; a freed weight's entries go at the next packing) and the
// bytes they hold.
func WinogradCache() (entries int, bytes int64) {
	var b C.int64_t
	n := C.jp_winograd_cached(&b)
	return int(n), int64(b)
}

// ClearWinogradCache frees every packed weight.
func ClearWinogradCache() { C.jp_winograd_clear() }

// SetWinogradBuffers sets the most bytes of oneDNN's own buffers (the
// transformed tiles and blocked copies of the input and output, several
// times the activation) one Winograd inference convolution may take, by
// default 256 MiB: a larger batch runs in pieces, which kept unet's
// 8×512² inference 2.4 GiB lower at the same speed. A value below 1
// changes nothing. It returns the previous value.
func SetWinogradBuffers(bytes int64) (was int64) {
	return int64(C.jp_winograd_set_buffers(C.int64_t(bytes)))
}

// WinogradPieces counts the inference convolutions that ran in pieces
// (see SetWinogradBuffers) since the process started.
func WinogradPieces() int64 { return int64(C.jp_winograd_pieces()) }
