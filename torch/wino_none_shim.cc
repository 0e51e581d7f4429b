//go:build nowinograd

// See wino_shim.cc: the build without oneDNN's headers and library.
#include "../csrc/wino_none.cc"
