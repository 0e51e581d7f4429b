// cgo compiles the c10d part of the shim into this package; see csrc/dist.cc.
#include "../../csrc/dist.cc"
