package cli

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/infer"
)

// predictOptions reads predict's nnU-Net/MONAI-style flags. It returns nil
// options when none is given (plain prediction, as before), and where each
// input's probabilities go ("" for none). A file --input's probabilities
// path is checked before anything is predicted.
func predictOptions(c *cli.Context, in, out string, dir bool) (*infer.Options, func(string) string, error) {
	none := func(string) string { return "" }
	set := false
	for _, f := range []string{"sliding-window", "overlap", "window-batch", "tta", "largest-component", "probabilities"} {
		set = set || c.IsSet(f)
	}
	if !set {
		return nil, none, nil
	}
	o := &infer.Options{SlidingWindow: c.Bool("sliding-window"), Overlap: c.Float64("overlap"), WindowBatch: c.Int("window-batch"),
		TTA: c.Bool("tta"), LargestComponent: c.Bool("largest-component")}
	if ov := o.Overlap; ov < 0 || ov >= 1 || math.IsNaN(ov) {
		return nil, nil, fmt.Errorf("predict: --overlap %v: want 0 <= overlap < 1", ov)
	}
	if err := intFlag(c, "window-batch", 1, 4096); err != nil {
		return nil, nil, fmt.Errorf("predict: %w", err)
	}
	pr := c.String("probabilities")
	switch {
	case pr == "":
		return o, none, nil
	case samePath(pr, in) || samePath(pr, out):
		return nil, nil, fmt.Errorf("predict: --probabilities %s is the --input or --output; choose another path", pr)
	case !dir:
		if err := infer.CheckProbabilities(in, pr, *o); err != nil {
			return nil, nil, fmt.Errorf("predict: --probabilities: %w", err)
		}
		return o, func(string) string { return pr }, nil
	}
	// A directory: one NPY per input, named after it.
	return o, func(p string) string {
		name := filepath.Base(p)
		for _, e := range imageExts {
			if strings.HasSuffix(strings.ToLower(name), e) {
				name = name[:len(name)-len(e)]
				break
			}
		}
		return filepath.Join(pr, name+".npy")
	}, nil
}
