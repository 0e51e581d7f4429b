package torch

/*
#include "perf.h"
*/
import "C"

import "runtime"

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
	if err := argErr("conv2d", x, w); err != nil {
		return errTensor(err), false
	}
	if err := optArgErr("conv2d", b); err != nil {
		return errTensor(err), false
	}
	var used C.int
	r := result(C.jp_conv2d(x.h, w.h, optH(b), pair(&stride), pair(&padding), pair(&dilation), C.int64_t(groups), &used), "conv2d", x, w, b)
	return r, used != 0
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
