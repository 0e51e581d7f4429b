package torch

import (
	"fmt"
	"os"
	"runtime"
	"strings"
)

// DebugFreeEnv names the environment variable that, set to 1 when the
// program starts, makes Free record its caller so that an ErrFreed says
// where the tensor was freed. It costs a stack walk per Free.
const DebugFreeEnv = "JMEDSEG_DEBUG_FREE"

var debugFree = os.Getenv(DebugFreeEnv) == "1"

// freeSite is the first caller of Free outside this package (a Scope's
// Close counts as the scope's owner), as "file:line (function)".
func freeSite() string {
	pc := make([]uintptr, 16)
	n := runtime.Callers(3, pc)
	frames := runtime.CallersFrames(pc[:n])
	var first string
	for {
		f, more := frames.Next()
		if first == "" {
			first = fmt.Sprintf("%s:%d (%s)", f.File, f.Line, f.Function)
		}
		if !strings.HasPrefix(f.Function, "github.com/jmedseg/jmedseg/torch.") || strings.HasSuffix(f.File, "_test.go") {
			return fmt.Sprintf("%s:%d (%s)", f.File, f.Line, f.Function)
		}
		if !more {
			return first
		}
	}
}
