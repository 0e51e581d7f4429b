package torch

// The default flags find Debian's libtorch-dev. Another libtorch (a CUDA
// build, or the one inside a PyTorch 2.x install) is chosen by the Makefile's
// LIBTORCH variable, which prepends its paths through CGO_CXXFLAGS and
// CGO_LDFLAGS; flags from the environment come first and so win.

/*
#cgo CFLAGS: -I${SRCDIR}/../csrc
#cgo CXXFLAGS: -std=c++17 -O2 -I${SRCDIR}/../csrc -I/usr/include/torch/csrc/api/include -Wno-deprecated-declarations
#cgo LDFLAGS: -ltorch -ltorch_cpu -lc10 -lstdc++
#include <stdlib.h>
#include "jmedseg.h"
*/
import "C"
