package dist

// The flags are torch/cgo.go's (LIBTORCH in the Makefile overrides them the
// same way), plus csrc/compat for a header Debian's libtorch-dev 1.13 lacks.

/*
#cgo CFLAGS: -I${SRCDIR}/../../csrc
#cgo CXXFLAGS: -std=c++17 -O2 -I${SRCDIR}/../../csrc -I/usr/include/torch/csrc/api/include -I${SRCDIR}/../../csrc/compat -Wno-deprecated-declarations
#cgo LDFLAGS: -ltorch -ltorch_cpu -lc10 -lstdc++
*/
import "C"
