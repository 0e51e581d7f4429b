package cli

import (
	"fmt"
	"math"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/bench"
	"github.com/jmedseg/jmedseg/train"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "time a model's training step or inference (median after warm-up) and peak memory",
		Flags: withCommon(
			&cli.StringFlag{Name: "model", Value: "unet"},
			&cli.IntFlag{Name: "batch", Value: 4},
			&cli.IntFlag{Name: "size", Value: 128, Usage: "square input side"},
			&cli.Int64Flag{Name: "width", Usage: "model base width (default: the reference's)"},
			&cli.IntFlag{Name: "steps", Value: 10, Usage: "timed steps"},
			&cli.IntFlag{Name: "warmup", Value: 3, Usage: "untimed steps first"},
			&cli.StringFlag{Name: "mode", Value: "train", Usage: "train or infer"},
		),
		Action: func(c *cli.Context) error {
			if err := firstErr(intFlag(c, "batch", 1, math.MaxInt), intFlag(c, "size", 1, train.MaxSize), int64Flag(c, "width", 0, math.MaxInt64),
				intFlag(c, "steps", 1, math.MaxInt), intFlag(c, "warmup", 0, math.MaxInt)); err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			dev, err := setup(c)
			if err != nil {
				return err
			}
			warmup := c.Int("warmup")
			if warmup == 0 {
				warmup = -1 // bench.Options takes 0 as its default (3); a negative count runs none
			}
			r, err := bench.Run(bench.Options{Model: c.String("model"), Batch: c.Int("batch"), Size: c.Int("size"), Width: c.Int64("width"),
				Steps: c.Int("steps"), Warmup: warmup, Mode: c.String("mode"), Device: dev})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, r)
			}
			fmt.Fprintf(c.App.Writer, "%s %s: %d params, batch %d, %dx%d, %d threads on %s: median %.4f s/step (%.1f img/s), peak RSS %.0f MiB\n",
				r.Model, r.Mode, r.Params, r.Batch, r.Size, r.Size, r.Threads, r.Device, r.StepMedian, r.ImagesPerSec, float64(r.PeakRSS)/(1<<20))
			return nil
		},
	}
}
