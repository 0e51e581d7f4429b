package torch

/*
#include <string.h>
#include "profile.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"unsafe"
)

// ProfileOp is one operator's share of a profiled region, as libtorch's
// profiler records it (torch.autograd.profiler's key_averages).
type ProfileOp struct {
	Name  string `json:"name"`
	Calls int64  `json:"calls"`
	// TotalSeconds runs from each call's start to its end, the operators
	// it called included; SelfSeconds is that less its callees' time.
	TotalSeconds float64 `json:"total_seconds"`
	SelfSeconds  float64 `json:"self_seconds"`
}

// StartProfile turns libtorch's operator profiler on for the calling
// goroutine, which it locks to its OS thread until StopProfile (the
// profiler records the thread that started it, and autograd's CPU
// backward, which runs on the calling thread). Call StopProfile from the
// same goroutine.
func StartProfile() error {
	runtime.LockOSThread()
	if e := C.jq_profile_start(); e != nil {
		runtime.UnlockOSThread()
		return takeErr(e, "profile")
	}
	return nil
}

// StopProfile turns the profiler off and returns the operators it saw,
// by self time (longest first), and with trace the Chrome trace of every
// call (for chrome://tracing or Perfetto).
func StopProfile(trace bool) (ops []ProfileOp, chromeTrace []byte, err error) {
	defer runtime.UnlockOSThread()
	var summary, tr *C.char
	var ptr **C.char
	if trace {
		ptr = &tr
	}
	if e := C.jq_profile_stop(cbool(trace), &summary, ptr); e != nil {
		return nil, nil, takeErr(e, "profile")
	}
	defer C.jq_free(summary)
	if tr != nil {
		defer C.jq_free(tr)
		chromeTrace = C.GoBytes(unsafe.Pointer(tr), C.int(C.strlen(tr)))
	}
	ops, err = parseProfile(C.GoString(summary))
	return ops, chromeTrace, err
}

// parseProfile reads jq_profile_stop's summary lines.
func parseProfile(s string) ([]ProfileOp, error) {
	var ops []ProfileOp
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("torch: profile: bad summary line %q", line)
		}
		calls, err1 := strconv.ParseInt(f[1], 10, 64)
		total, err2 := strconv.ParseFloat(f[2], 64)
		self, err3 := strconv.ParseFloat(f[3], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("torch: profile: bad summary line %q", line)
		}
		ops = append(ops, ProfileOp{Name: f[0], Calls: calls, TotalSeconds: total / 1e6, SelfSeconds: self / 1e6})
	}
	sort.SliceStable(ops, func(i, j int) bool {
		if ops[i].SelfSeconds != ops[j].SelfSeconds {
			return ops[i].SelfSeconds > ops[j].SelfSeconds
		}
		return ops[i].Name < ops[j].Name
	})
	return ops, nil
}
