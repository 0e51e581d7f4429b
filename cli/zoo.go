package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/internal/progress"
	"github.com/jmedseg/jmedseg/loss"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/zoo"
)

func zooCommand() *cli.Command {
	return &cli.Command{
		Name:  "zoo",
		Usage: "train and test every model with one protocol and compare them: zoo.md, zoo.json and figures",
		Description: "Each model trains in its own `jmedseg train` process (so each row's peak memory is its own and a crash " +
			"stops only that model), in OUT/<model>/. Finished models are skipped when the command is run again; a model " +
			"that fails gets a row saying why. Widths are max(1, round(reference width × --width-scale)), rounded up where " +
			"a model needs it (and at least --min-width).",
		Flags: withCommon(
			&cli.StringFlag{Name: "data", Required: true, Usage: "data set directory"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "zoo directory (zoo.md, zoo.json, figures, a run directory per model)"},
			&cli.StringFlag{Name: "models", Value: "all", Usage: "all, or comma-separated registered models (see jmedseg models)"},
			&cli.IntFlag{Name: "epochs", Value: 20},
			&cli.IntFlag{Name: "batch", Value: 8},
			&cli.Float64Flag{Name: "lr", Usage: "learning rate (default 1e-4 for Adam, 1e-2 for SGD)"},
			&cli.StringFlag{Name: "optimizer", Value: "adam", Usage: "adam, adamw or sgd"},
			&cli.Float64Flag{Name: "weight-decay"},
			&cli.BoolFlag{Name: "poly", Usage: "poly learning-rate schedule lr·(1−it/total)^0.9"},
			&cli.StringFlag{Name: "loss", Value: "ce", Usage: loss.Usage},
			&cli.BoolFlag{Name: "aug", Usage: "the SAS augmentation (colour jitter p=.8, Gaussian blur p=.5)"},
			&cli.BoolFlag{Name: "geometric", Usage: "flips, rotation, affine and elastic augmentation"},
			&cli.StringFlag{Name: "size", Usage: "train and test at HxW (default: the data's size)"},
			&cli.Int64Flag{Name: "min-width", Usage: "a floor under every scaled width (never above the model's reference width)"},
			&cli.BoolFlag{Name: "fit-size", Usage: "a model that cannot take --size trains at the next size it takes (recorded), not a failure row"},
			&cli.Float64Flag{Name: "width-scale", Value: 0.25, Usage: "every model's width is max(1, round(reference width × F))"},
			&cli.IntFlag{Name: "workers", Usage: "data loading goroutines per model (default GOMAXPROCS)"},
			&cli.IntFlag{Name: "limit-batches", Usage: "cap batches per epoch (smoke tests)"},
			&cli.DurationFlag{Name: "model-timeout", Usage: "stop a model's training after this long (e.g. 5m); it gets a failure row"},
			&cli.BoolFlag{Name: "retry-failed", Usage: "train the models whose rows say they failed again"},
		),
		Action: func(c *cli.Context) error {
			if _, err := setup(c); err != nil {
				return err
			}
			size, err := models.ParseSize(c.String("size"))
			if err != nil {
				return fmt.Errorf("--size: %w", err)
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("zoo: finding the jmedseg binary to run the models in: %w", err)
			}
			opt := zoo.Options{
				Data: c.String("data"), Out: c.String("out"), Models: []string{c.String("models")},
				Protocol: zoo.Protocol{Epochs: c.Int("epochs"), Batch: c.Int("batch"), LR: c.Float64("lr"), Optimizer: c.String("optimizer"),
					Decay: c.Float64("weight-decay"), Poly: c.Bool("poly"), Loss: c.String("loss"), Aug: c.Bool("aug"),
					Geometric: c.Bool("geometric"), Size: size, WidthScale: c.Float64("width-scale"), MinWidth: c.Int64("min-width"), Seed: c.Uint64("seed"),
					LimitBatches: c.Int("limit-batches"), FitSize: c.Bool("fit-size")},
				Device: c.String("device"), Threads: c.Int("threads"), Workers: c.Int("workers"), Exe: exe,
				Timeout: c.Duration("model-timeout"), RetryFailed: c.Bool("retry-failed"),
			}
			var end func()
			opt.OnEvent, end = zooProgress(c)
			defer end()
			if c.IsSet("width-scale") && !(opt.Protocol.WidthScale > 0) {
				return fmt.Errorf("--width-scale %g: must be positive", opt.Protocol.WidthScale)
			}
			_, err = zoo.Run(c.Context, opt)
			return err
		},
	}
}

// zooProgress renders zoo events: lines on stderr (on a terminal with a
// bar over the models and one over the current model's epochs), and a
// summary on stdout at the end; JSON lines on stdout with --json. The
// second result ends the bars.
func zooProgress(c *cli.Context) (func(zoo.Event), func()) {
	if c.Bool("json") {
		return jsonLines[zoo.Event](c.App.Writer), func() {}
	}
	runs := progress.NewRuns(progress.New(progressOut), "zoo")
	return zooLines(runs, c.App.Writer, strings.TrimRight(c.String("out"), "/")), runs.Close
}

// progressOut is where progress goes (tests replace it).
var progressOut io.Writer = os.Stderr

// zooLines is zooProgress's renderer: lines and bars on runs, the
// summary on stdout naming the files in out.
func zooLines(runs *progress.Runs, stdout io.Writer, out string) func(zoo.Event) {
	return func(e zoo.Event) {
		tag := fmt.Sprintf("[%d/%d] %s", e.K, e.N, e.Model)
		ev := progress.RunEvent{Kind: progress.Note, K: e.K, N: e.N, Name: e.Model, TotalETA: e.ZooETA}
		switch e.Kind {
		case "start":
			ev.Line = "zoo: " + e.Message
		case "model":
			ev.Kind = progress.RunStarted
			lines := []string{fmt.Sprintf("%s: training at width %d, %s parameters%s", tag, e.Width, humanParams(e.Params), eta(" (zoo ETA %s)", e.ZooETA))}
			for _, m := range strings.Split(e.Message, "\n") {
				if m != "" {
					lines = append(lines, tag+": "+m)
				}
			}
			ev.Line = strings.Join(lines, "\n")
		case "epoch":
			r := e.Record
			ev.Kind, ev.Epoch, ev.Epochs, ev.ETA = progress.RunEpoch, e.Epoch, e.Epochs, e.ETA
			ev.Line = fmt.Sprintf("%s epoch %d/%d  train loss %.4f  val Dice %.4f  %.1f img/s  %.1f s%s%s", tag, e.Epoch, e.Epochs,
				r.TrainLoss, r.ValDice, r.ImagesPerSecond, r.Seconds, eta("  ETA %s", e.ETA), eta(" (zoo %s)", e.ZooETA))
		case "skip":
			ev.Kind, ev.Line = progress.RunEnded, fmt.Sprintf("%s: kept from an earlier run: %s", tag, rowLine(e.Row))
		case "row":
			ev.Kind, ev.Line = progress.RunEnded, fmt.Sprintf("%s: %s%s", tag, rowLine(e.Row), eta(" (zoo ETA %s)", e.ZooETA))
		case "info":
			ev.Line = "zoo: " + e.Message
			if e.Model != "" {
				ev.Line = tag + ": " + e.Message
			}
		case "done":
			runs.Close() // the summary on a clean line
			fmt.Fprintf(stdout, "zoo: %s: %s, %s\n", e.Message, filepath.Join(out, zoo.MarkdownFile), filepath.Join(out, zoo.JSONFile))
			return
		default:
			return
		}
		runs.Show(ev)
	}
}

// jsonLines encodes each event as one JSON line on w (--json).
func jsonLines[E any](w io.Writer) func(E) {
	enc := json.NewEncoder(w)
	return func(e E) { _ = enc.Encode(e) }
}

// rowLine is a row in one line: its status, scores, time and memory.
func rowLine(r *zoo.Row) string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(r.Status)
	if r.Reason != "" {
		fmt.Fprintf(&b, " (%s)", r.Reason)
	}
	for i, t := range r.Tests {
		sep := ", "
		if i == 0 {
			sep = "  "
		}
		fmt.Fprintf(&b, "%s%s Dice %.4f", sep, t.Split, float64(t.Dice))
	}
	if r.WallSeconds > 0 {
		fmt.Fprintf(&b, "  (%s", time.Duration(r.WallSeconds*float64(time.Second)).Round(time.Second))
		if r.PeakRSS > 0 {
			fmt.Fprintf(&b, ", peak %d MiB", r.PeakRSS>>20)
		}
		b.WriteString(")")
	}
	if r.Error != "" {
		b.WriteString(": " + r.Error)
	}
	return b.String()
}

// humanParams writes a parameter count as 1.08 M or 137.7 k.
func humanParams(n int64) string {
	switch f := float64(n); {
	case f >= 1e6:
		return fmt.Sprintf("%.2f M", f/1e6)
	case f >= 1e3:
		return fmt.Sprintf("%.1f k", f/1e3)
	}
	return fmt.Sprint(n)
}

// eta formats a positive duration into format, else nothing.
func eta(format string, d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return fmt.Sprintf(format, d.Round(time.Second))
}
