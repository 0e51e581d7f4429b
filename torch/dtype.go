package torch

/*
#include "jmedseg.h"
*/
import "C"

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// DType is a tensor element type. Values equal c10::ScalarType.
type DType int8

// Element types.
const (
	Uint8    DType = 0
	Int8     DType = 1
	Int16    DType = 2
	Int32    DType = 3
	Int64    DType = 4
	Float16  DType = 5
	Float32  DType = 6
	Float64  DType = 7
	Bool     DType = 11
	BFloat16 DType = 15
)

var dtypeNames = map[DType]string{
	Uint8: "uint8", Int8: "int8", Int16: "int16", Int32: "int32", Int64: "int64", Float16: "float16",
	Float32: "float32", Float64: "float64", Bool: "bool", BFloat16: "bfloat16",
}

func (d DType) String() string {
	if n, ok := dtypeNames[d]; ok {
		return n
	}
	return "dtype(" + strconv.Itoa(int(d)) + ")"
}

// Size is the size of one element in bytes.
func (d DType) Size() int {
	switch d {
	case Uint8, Int8, Bool:
		return 1
	case Int16, Float16, BFloat16:
		return 2
	case Int32, Float32:
		return 4
	case Int64, Float64:
		return 8
	}
	return 0
}

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool {
	return d == Float16 || d == Float32 || d == Float64 || d == BFloat16
}

// ParseDType parses names such as "float32", "f32", "int64" and "bool".
func ParseDType(s string) (DType, error) {
	switch strings.ToLower(s) {
	case "f16", "half":
		return Float16, nil
	case "f32", "float":
		return Float32, nil
	case "f64", "double":
		return Float64, nil
	case "bf16":
		return BFloat16, nil
	case "i64", "long":
		return Int64, nil
	case "i32", "int":
		return Int32, nil
	case "u8", "byte":
		return Uint8, nil
	}
	for d, n := range dtypeNames {
		if n == strings.ToLower(s) {
			return d, nil
		}
	}
	return 0, fmt.Errorf("torch: unknown dtype %q", s)
}

// DeviceType is c10::DeviceType.
type DeviceType int8

// Device types.
const (
	DeviceCPU  DeviceType = 0
	DeviceCUDA DeviceType = 1
)

// Device is where a tensor lives.
type Device struct {
	Type  DeviceType
	Index int // -1 for the CPU
}

// CPU is the host.
var CPU = Device{Type: DeviceCPU, Index: -1}

// CUDA returns the i-th CUDA device.
func CUDA(i int) Device { return Device{Type: DeviceCUDA, Index: i} }

func (d Device) String() string {
	switch d.Type {
	case DeviceCPU:
		return "cpu"
	case DeviceCUDA:
		return "cuda:" + strconv.Itoa(d.Index)
	}
	return fmt.Sprintf("device(%d:%d)", d.Type, d.Index)
}

// IsCUDA reports whether d is a CUDA device.
func (d Device) IsCUDA() bool { return d.Type == DeviceCUDA }

var cudaInfo = sync.OnceValues(func() (bool, int) {
	ok := C.jt_cuda_is_available() != 0
	n := 0
	if ok {
		n = int(C.jt_cuda_device_count())
	}
	return ok, n
})

// CUDAAvailable reports whether this libtorch has CUDA and sees a GPU.
func CUDAAvailable() bool { ok, _ := cudaInfo(); return ok }

// CUDADeviceCount is the number of visible CUDA devices.
func CUDADeviceCount() int { _, n := cudaInfo(); return n }

// Check returns an error if the device cannot be used here: asking for CUDA
// where it is not available is an error, never a silent fall-back.
func (d Device) Check() error {
	switch d.Type {
	case DeviceCPU:
		return nil
	case DeviceCUDA:
		ok, n := cudaInfo()
		if !ok {
			return &Error{Op: "device", Msg: d.String() + " requested, but this libtorch has no CUDA or sees no GPU (build with LIBTORCH pointing at a CUDA libtorch, or use --device cpu)", Kind: KindNoCUDA}
		}
		if d.Index < 0 || d.Index >= n {
			return &Error{Op: "device", Msg: fmt.Sprintf("%s requested, but only %d CUDA device(s) are visible", d, n), Kind: KindNoCUDA}
		}
		return nil
	}
	return &Error{Op: "device", Msg: "unknown device " + d.String(), Kind: KindValue}
}

// ParseDevice parses "cpu", "cuda", "cuda:N" and "auto" (CUDA when
// available, else the CPU). The device is checked: CUDA must be available.
func ParseDevice(s string) (Device, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	var d Device
	switch {
	case s == "cpu" || s == "":
		return CPU, nil
	case s == "auto":
		if CUDAAvailable() {
			return CUDA(0), nil
		}
		return CPU, nil
	case s == "cuda":
		d = CUDA(0)
	case strings.HasPrefix(s, "cuda:"):
		i, err := strconv.Atoi(s[5:])
		if err != nil || i < 0 {
			return CPU, fmt.Errorf("torch: bad device %q: want cpu, cuda, cuda:N or auto", s)
		}
		d = CUDA(i)
	default:
		return CPU, fmt.Errorf("torch: bad device %q: want cpu, cuda, cuda:N or auto", s)
	}
	return d, d.Check()
}
