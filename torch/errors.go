package torch

/*
#include <stdlib.h>
#include "jmedseg.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors a caller can test with errors.Is.
var (
	// ErrOutOfMemory reports that libtorch could not allocate memory (host or device).
	ErrOutOfMemory = errors.New("torch: out of memory")
	// ErrFreed reports the use of a tensor after Free or after its scope closed.
	ErrFreed = errors.New("torch: use of a freed tensor")
	// ErrNoCUDA reports a request for a CUDA device where CUDA is not available.
	ErrNoCUDA = errors.New("torch: CUDA is not available")
	// ErrIndex reports an index or dimension out of range.
	ErrIndex = errors.New("torch: index out of range")
	// ErrType reports a wrong dtype.
	ErrType = errors.New("torch: wrong type")
)

// ErrorKind classifies an Error.
type ErrorKind int

// Error kinds, matching the shim's JT_ERR_* codes.
const (
	KindGeneric ErrorKind = C.JT_ERR_GENERIC
	KindOOM     ErrorKind = C.JT_ERR_OOM
	KindIndex   ErrorKind = C.JT_ERR_INDEX
	KindValue   ErrorKind = C.JT_ERR_VALUE
	KindType    ErrorKind = C.JT_ERR_TYPE
	KindFreed   ErrorKind = 100
	KindNoCUDA  ErrorKind = 101
)

// Error is a failed tensor operation: the op, its inputs and libtorch's message.
type Error struct {
	Op     string    // operation name, e.g. "conv2d"
	Inputs []string  // the inputs, e.g. "float32[2 3 8 8] cpu"
	Msg    string    // libtorch's message, without its C++ backtrace
	Kind   ErrorKind // lets callers react to out-of-memory and friends
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("torch: ")
	b.WriteString(e.Op)
	if len(e.Inputs) > 0 {
		b.WriteString("(")
		b.WriteString(strings.Join(e.Inputs, ", "))
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(strings.TrimSpace(e.Msg))
	return b.String()
}

// Is makes errors.Is(err, ErrOutOfMemory) and the other sentinels work.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrOutOfMemory:
		return e.Kind == KindOOM
	case ErrFreed:
		return e.Kind == KindFreed
	case ErrNoCUDA:
		return e.Kind == KindNoCUDA
	case ErrIndex:
		return e.Kind == KindIndex
	case ErrType:
		return e.Kind == KindType
	}
	return false
}

// takeErr converts and frees a shim error; nil stays nil.
func takeErr(e *C.jt_error, op string, inputs ...*Tensor) error {
	if e == nil {
		return nil
	}
	msg := C.GoString(e.msg)
	kind := ErrorKind(e.kind)
	C.jt_error_free(e)
	return &Error{Op: op, Inputs: describe(inputs), Msg: msg, Kind: kind}
}

// describe renders inputs for an error message. Only called on failure.
func describe(ts []*Tensor) []string {
	if len(ts) == 0 {
		return nil
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.String()
	}
	return out
}

// argErr checks inputs before a call: a nil, failed or freed input yields the
// error the result should carry.
func argErr(op string, ts ...*Tensor) error {
	for i, t := range ts {
		switch {
		case t == nil:
			return &Error{Op: op, Msg: fmt.Sprintf("argument %d is a nil tensor", i+1), Kind: KindValue}
		case t.err != nil:
			return t.err
		case t.h == nil:
			msg := fmt.Sprintf("argument %d was freed", i+1)
			if t.freedAt != "" {
				msg += " at " + t.freedAt
			} else if !debugFree {
				msg += " (set " + DebugFreeEnv + "=1 to record where)"
			}
			return &Error{Op: op, Msg: msg, Kind: KindFreed}
		}
	}
	return nil
}

// Must panics if t carries an error and returns t otherwise. Use it where a
// failure is a programming error the caller opts to crash on.
func Must(t *Tensor) *Tensor {
	if t == nil {
		panic("torch.Must: nil tensor")
	}
	if t.err != nil {
		panic(t.err)
	}
	return t
}

// FirstErr returns the first error carried by any of ts, or nil.
func FirstErr(ts ...*Tensor) error {
	for _, t := range ts {
		if t == nil {
			continue
		}
		if t.err != nil {
			return t.err
		}
	}
	return nil
}
