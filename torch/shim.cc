// The shim is compiled into the Go package by cgo; CMakeLists.txt builds the
// same source into a library for C and C++ hosts.
#include "../csrc/jmedseg.cc"
