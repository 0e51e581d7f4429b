package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/infer"
)

// speedFlags are the flags of how predict, test and serve run a model
// (infer.LoadOptions): --no-fuse, --channels-last, --layout, --amp and
// --engine. jitWhen ends --engine's help: when the jit engine builds.
func speedFlags(jitWhen string) []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "no-fuse", Usage: "keep the BatchNorms (by default each one after a convolution is folded into it at load: same masks, faster)"},
		&cli.BoolFlag{Name: "channels-last", Usage: "run the model in channels-last (NHWC) memory format (the same as --layout channels_last)"},
		&cli.StringFlag{Name: "layout", Value: infer.LayoutAuto, Usage: "memory layout on the CPU: auto (the faster of the two, timed on each input shape's first call), contiguous or channels_last"},
		&cli.StringFlag{Name: "amp", Usage: "mixed precision: bf16 (CPU or CUDA) or fp16 (CUDA)"},
		&cli.StringFlag{Name: "engine", Value: infer.EngineEager, Usage: "eager (the Go forward) or jit (the forward traced, frozen and optimised for inference per input shape; " + jitWhen + "; see README, Performance)"},
	}
}

// loadOptions reads speedFlags, checking --layout and --engine (with
// --amp) before anything is loaded; errors start with cmd and name the
// flag. (--amp itself is checked against the device at load.)
func loadOptions(c *cli.Context, cmd string) (infer.LoadOptions, error) {
	if l := c.String("layout"); l != infer.LayoutAuto && l != infer.LayoutContiguous && l != infer.LayoutChannelsLast {
		return infer.LoadOptions{}, fmt.Errorf("%s: --layout %q: want %s, %s or %s", cmd, l, infer.LayoutAuto, infer.LayoutContiguous, infer.LayoutChannelsLast)
	}
	if err := infer.CheckEngine(c.String("engine"), c.String("amp")); err != nil {
		return infer.LoadOptions{}, fmt.Errorf("%s: --engine: %w", cmd, err)
	}
	return infer.LoadOptions{NoFuse: c.Bool("no-fuse"), ChannelsLast: c.Bool("channels-last"), Layout: c.String("layout"),
		AMP: c.String("amp"), Engine: c.String("engine")}, nil
}
