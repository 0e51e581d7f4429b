package cli

import (
	"fmt"
	"io"
	"math"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/bench"
	"github.com/jmedseg/jmedseg/internal/atomicfile"
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
			&cli.BoolFlag{Name: "fuse", Usage: "infer: fold BatchNorms into the convolutions before them"},
			&cli.BoolFlag{Name: "channels-last", Usage: "weights and input in channels-last (NHWC) memory format"},
			&cli.StringFlag{Name: "amp", Usage: "mixed precision: bf16 (CPU or CUDA) or fp16 (CUDA, with gradient scaling)"},
			&cli.BoolFlag{Name: "foreach", Usage: "train: the multi-tensor (_foreach_) optimizer step"},
			&cli.BoolFlag{Name: "cuda-graphs", Usage: "CUDA: capture one step as a CUDA graph and replay it"},
			&cli.StringFlag{Name: "engine", Value: "eager", Usage: "infer: eager (the Go forward) or jit (its trace, frozen and optimised for inference; built in one more untimed step)"},
			&cli.BoolFlag{Name: "onednn", Value: true, Usage: "float32 CPU convolutions on oneDNN throughout (false: the kernels PyTorch eager picks)"},
			&cli.StringFlag{Name: "profile", Usage: "run one more step under libtorch's operator profiler: its Chrome trace to `FILE`, the operators by self time printed (with --json, in the JSON)"},
			&cli.IntFlag{Name: "profile-top", Value: 25, Usage: "operators the --profile table shows"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite an existing --profile file"},
		),
		Action: func(c *cli.Context) error {
			if err := firstErr(intFlag(c, "batch", 1, math.MaxInt), intFlag(c, "size", 1, train.MaxSize), int64Flag(c, "width", 0, math.MaxInt64),
				intFlag(c, "steps", 1, math.MaxInt), intFlag(c, "warmup", 0, math.MaxInt)); err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			profile := c.String("profile")
			if profile != "" {
				if err := checkOutFile("profile", profile, c.Bool("force")); err != nil {
					return fmt.Errorf("bench: %w", err)
				}
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
				Steps: c.Int("steps"), Warmup: warmup, Mode: c.String("mode"), Device: dev,
				Fuse: c.Bool("fuse"), ChannelsLast: c.Bool("channels-last"), AMP: c.String("amp"), Foreach: c.Bool("foreach"), CUDAGraphs: c.Bool("cuda-graphs"),
				NoOneDNN: !c.Bool("onednn"), Winograd: c.String("winograd"), Engine: c.String("engine"), Profile: profile != ""})
			if err != nil {
				return err
			}
			if profile != "" {
				if err := atomicfile.Write(profile, func(w io.Writer) error { _, err := w.Write(r.ProfileTrace); return err }); err != nil {
					return fmt.Errorf("bench: --profile %s: %w", profile, err)
				}
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, r)
			}
			fmt.Fprintf(c.App.Writer, "%s %s: %d params, batch %d, %dx%d, %d threads on %s: median %.4f s/step (%.1f img/s), peak RSS %.0f MiB\n",
				r.Model, r.Mode, r.Params, r.Batch, r.Size, r.Size, r.Threads, r.Device, r.StepMedian, r.ImagesPerSec, float64(r.PeakRSS)/(1<<20))
			if profile != "" {
				fmt.Fprintf(c.App.Writer, "one more step under libtorch's profiler (Chrome trace: %s):\n", profile)
				return bench.WriteProfile(c.App.Writer, r.Profile, c.Int("profile-top"))
			}
			return nil
		},
	}
}
