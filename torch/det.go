package torch

/*
#include "det.h"
*/
import "C"

import "os"

// SetDeterministic turns libtorch's deterministic algorithms on or off for
// the whole process (torch.use_deterministic_algorithms(on,
// warn_only=warnOnly)). With on, cuDNN is also made deterministic and its
// benchmark autotuner is turned off, and CUBLAS_WORKSPACE_CONFIG is set to
// ":4096:8" where it is unset, as cuBLAS needs for reproducible results on
// CUDA 10.2 and later (it must be set before the first cuBLAS call). An op
// without a deterministic implementation then fails with an error (or
// warns, with warnOnly) instead of running nondeterministically.
func SetDeterministic(on, warnOnly bool) {
	if on {
		if _, ok := os.LookupEnv("CUBLAS_WORKSPACE_CONFIG"); !ok {
			_ = os.Setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
		}
	}
	C.jd_set_deterministic(cbool(on), cbool(warnOnly))
}

// Deterministic reports whether deterministic algorithms are on, and
// whether in the warn-only mode.
func Deterministic() (on, warnOnly bool) {
	return C.jd_deterministic() != 0, C.jd_deterministic_warn_only() != 0
}
