package bench

import (
	"fmt"
	"io"

	"github.com/jmedseg/jmedseg/torch"
)

// WriteProfile writes the first n operators of a profile (Result.Profile,
// by self time) as a table, and one line for the rest: the same columns
// bench.py --profile prints for PyTorch, so the two read side by side.
func WriteProfile(w io.Writer, ops []torch.ProfileOp, n int) error {
	var self float64
	for _, op := range ops {
		self += op.SelfSeconds
	}
	if _, err := fmt.Fprintf(w, "%10s %10s %6s %8s  %s\n", "self ms", "total ms", "self%", "calls", "operator"); err != nil {
		return err
	}
	var rest float64
	for i, op := range ops {
		if i >= n {
			rest += op.SelfSeconds
			continue
		}
		share := 0.0
		if self > 0 {
			share = 100 * op.SelfSeconds / self
		}
		if _, err := fmt.Fprintf(w, "%10.3f %10.3f %6.1f %8d  %s\n", op.SelfSeconds*1e3, op.TotalSeconds*1e3, share, op.Calls, op.Name); err != nil {
			return err
		}
	}
	if len(ops) > n {
		if _, err := fmt.Fprintf(w, "%10.3f %10s %6s %8s  (%d more operators)\n", rest*1e3, "", "", "", len(ops)-n); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%10.3f %10s %6s %8s  all operators' self time\n", self*1e3, "", "", "")
	return err
}
