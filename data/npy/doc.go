// Package npy reads and writes NumPy .npy files (format versions 1.0, 2.0
// and 3.0) holding the dtypes numpy uses for images and label maps:
// bool, int8, uint8, int16, uint16, int32, uint32, int64, uint64, float32
// and float64, in either byte order and in C or Fortran order.
//
// Decoding never panics on malformed input; every problem is returned as an
// error that says what was wrong.
package npy
