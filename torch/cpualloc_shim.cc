// cgo compiles csrc/cpualloc.cc (libtorch's CPU allocator with a cache of
// large blocks) into package torch as a translation unit of its own.
#include "../csrc/cpualloc.cc"
