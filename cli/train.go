package cli

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/internal/progress"
	"github.com/jmedseg/jmedseg/loss"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/report"
	"github.com/jmedseg/jmedseg/torch/dist"
	"github.com/jmedseg/jmedseg/train"
)

// trainFlags are the flags of jmedseg train.
func trainFlags() []cli.Flag {
	return append(withCommon(
		&cli.StringFlag{Name: "model", Value: "unet", Usage: "registered model (see `jmedseg models`)"},
		&cli.StringFlag{Name: "data", Required: true, Usage: "data set directory"},
		&cli.StringFlag{Name: "out", Required: true, Usage: "run directory (checkpoints, report)"},
		&cli.IntFlag{Name: "epochs", Value: 20, Usage: "epochs, 1 or more"},
		&cli.IntFlag{Name: "batch", Value: 8, Usage: "batch size, 1 or more"},
		&cli.Float64Flag{Name: "lr", Usage: "learning rate (default 1e-4 for Adam, 1e-2 for SGD)"},
		&cli.StringFlag{Name: "optimizer", Value: "adam", Usage: "adam, adamw or sgd"},
		&cli.Float64Flag{Name: "weight-decay", Usage: "weight decay, 0 or more"},
		&cli.BoolFlag{Name: "poly", Usage: "poly learning-rate schedule lr·(1−it/total)^0.9"},
		&cli.StringFlag{Name: "loss", Value: "ce", Usage: loss.Usage},
		&cli.BoolFlag{Name: "aug", Usage: "the SAS augmentation (colour jitter p=.8, Gaussian blur p=.5)"},
		&cli.BoolFlag{Name: "geometric", Usage: "flips, rotation, affine and elastic augmentation"},
		&cli.BoolFlag{Name: "stn", Usage: "a spatial transformer in front of the model (SAS); logits are warped back"},
		&cli.StringFlag{Name: "size", Usage: "train at HxW (default: the data's size)"},
		&cli.Int64Flag{Name: "width", Usage: "model base width (default: the reference's)"},
		&cli.Int64Flag{Name: "in-channels", Usage: "input channels: 1, 3, or a multi-channel data set's count (default: from dataset.json)"},
		&cli.Int64Flag{Name: "classes", Usage: "number of classes, background included, for a data set without dataset.json (the reference layout)"},
		&cli.StringFlag{Name: "pretrained", Usage: "initialise from a checkpoint of the same layout"},
		&cli.BoolFlag{Name: "resume", Usage: "continue exactly from OUT/last.safetensors"},
		&cli.BoolFlag{Name: "force", Usage: "replace the trained model already in --out (without it train refuses such a directory)"},
		&cli.IntFlag{Name: "workers", Usage: "data loading goroutines (default GOMAXPROCS)"},
		&cli.IntFlag{Name: "limit-batches", Usage: "cap batches per epoch (smoke tests)"},
		&cli.BoolFlag{Name: "skip-bad", Usage: "skip unreadable training samples (each reported) instead of stopping"},
		&cli.StringFlag{Name: "amp", Usage: "mixed precision for the forward: bf16 (CPU or CUDA) or fp16 (CUDA, with gradient scaling)"},
		foldFlags()[0], foldFlags()[1],
	), distFlags()...)
}

// trainOptions reads and checks train's flags. 0 for --epochs or --batch
// is an error, not the default; --lr 0 likewise when given.
func trainOptions(c *cli.Context) (train.Options, error) {
	if err := firstErr(checkThreads(c), intFlag(c, "epochs", 1, math.MaxInt), intFlag(c, "batch", 1, math.MaxInt),
		positiveFlag(c, "lr", true), nonNegativeFlag(c, "weight-decay"), int64Flag(c, "width", 0, math.MaxInt64),
		intFlag(c, "workers", 0, train.MaxWorkers()), intFlag(c, "limit-batches", 0, math.MaxInt)); err != nil {
		return train.Options{}, fmt.Errorf("train: %w", err)
	}
	if ch := c.Int64("in-channels"); ch < 0 || ch > data.MaxChannels {
		return train.Options{}, fmt.Errorf("train: --in-channels %d: want 1 to %d (0: from dataset.json)", ch, data.MaxChannels)
	}
	if c.Bool("resume") && c.Bool("force") {
		return train.Options{}, fmt.Errorf("train: --resume continues the run in --out, --force replaces it: give one")
	}
	if err := checkDistFlags(c); err != nil {
		return train.Options{}, err
	}
	size, err := parseSize("size", c.String("size"))
	if err != nil {
		return train.Options{}, fmt.Errorf("train: %w", err)
	}
	fold, err := foldOptions(c)
	if err != nil {
		return train.Options{}, fmt.Errorf("train: %w", err)
	}
	return train.Options{Fold: fold.Fold, Folds: fold.Folds,
		Model: c.String("model"), Data: c.String("data"), Out: c.String("out"),
		Net:    models.Config{Width: c.Int64("width"), InChannels: c.Int64("in-channels"), Classes: c.Int64("classes")},
		Epochs: c.Int("epochs"), Batch: c.Int("batch"), LR: c.Float64("lr"), Optimizer: c.String("optimizer"),
		Decay: c.Float64("weight-decay"), Poly: c.Bool("poly"), Loss: c.String("loss"), Aug: c.Bool("aug"),
		Geometric: c.Bool("geometric"), STN: c.Bool("stn"), Size: size, Workers: c.Int("workers"), Seed: c.Uint64("seed"),
		Device: c.String("device"), Threads: c.Int("threads"), Resume: c.Bool("resume"), Force: c.Bool("force"),
		Pretrained: c.String("pretrained"), LimitBatches: c.Int("limit-batches"), SkipBad: c.Bool("skip-bad"), AMP: c.String("amp"),
		SyncBN: c.Bool("sync-bn"),
	}, nil
}

func trainCommand() *cli.Command {
	return &cli.Command{
		Name:        "train",
		Usage:       "train a model, validate every epoch, test the best checkpoint and write a report",
		Description: loss.Help,
		Flags:       trainFlags(),
		Action: func(c *cli.Context) error {
			opt, err := trainOptions(c)
			if err != nil {
				return err
			}
			env, worker, err := distWorker(c)
			if err != nil {
				return err
			}
			if n := c.Int("nproc"); n > 1 && !worker {
				return launch(c, n)
			}
			if _, err := setup(c); err != nil {
				return err
			}
			rank := 0
			if worker {
				g, err := dist.Init(env, dist.InitOptions{Backend: c.String("dist-backend"), Timeout: c.Duration("dist-timeout")})
				if err != nil {
					return fmt.Errorf("train: %w", err)
				}
				defer g.Close()
				opt.Group, rank = g, env.Rank
			}
			t, err := train.New(opt)
			if err != nil {
				return rankErr(rank, worker, err)
			}
			defer t.Close()
			endBars := func() {}
			if rank == 0 { // the other ranks train silently
				t.OnEvent, endBars = trainProgress(c)
			}
			defer endBars()
			start := time.Now()
			run, err := t.Run(c.Context)
			endBars() // the result on a clean line
			if run == nil || rank != 0 {
				return rankErr(rank, worker, err)
			}
			if c.Bool("json") {
				// One line, like the event lines before it: a JSON-lines stream.
				if perr := json.NewEncoder(c.App.Writer).Encode(map[string]any{"headline": run.Headline(), "report": opt.Out + "/report.md",
					"best_epoch": run.BestEpoch, "wall_seconds": time.Since(start).Seconds(), "tests": summaries(run)}); perr != nil {
					return perr
				}
			} else {
				fmt.Fprintln(c.App.Writer, run.Headline())
				fmt.Fprintf(c.App.Writer, "report: %s/report.md (%.0f s)\n", strings.TrimRight(opt.Out, "/"), time.Since(start).Seconds())
			}
			return err
		},
	}
}

// summaries are the headline figures of each test split for --json.
func summaries(run *report.Run) []map[string]any {
	out := []map[string]any{}
	for _, t := range run.Tests {
		out = append(out, map[string]any{"split": t.Split, "foreground_mean": t.Metrics.Split.Foreground,
			"all_class_mean": t.Metrics.Split.AllClasses, "surface": t.Metrics.Surface})
	}
	return out
}

// trainProgress renders training events: JSON lines on stdout with --json;
// else lines on stderr and, on a terminal, an epoch bar (ETA of the run)
// over a step bar (loss, images per second) and a bar per test split.
// The second result ends the bars: call it before printing the result.
func trainProgress(c *cli.Context) (func(train.Event), func()) {
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		return func(e train.Event) {
			// test_images events are for bars only: the stream keeps its shape.
			if e.Kind != "test_images" && (e.Kind != "step" || e.Step == e.Steps) {
				_ = enc.Encode(e)
			}
		}, func() {}
	}
	bars := progress.New(progressOut)
	return trainLines(bars), bars.Close
}

// trainLines is trainProgress's renderer on bars.
func trainLines(bars *progress.Bars) func(train.Event) {
	var epochs, steps, test *progress.Bar
	best := ""
	return func(e train.Event) {
		switch e.Kind {
		case "step":
			if epochs == nil {
				epochs, steps = bars.AddBar("epochs"), bars.AddBar("")
			}
			epochs.Set(e.Epoch-1, e.Epochs)
			epochs.SetStatus(best + eta("  ETA %s", e.ETA))
			steps.SetName(fmt.Sprintf("epoch %d/%d", e.Epoch, e.Epochs))
			steps.Set(e.Step, e.Steps)
			steps.SetStatus(fmt.Sprintf("loss %.4f  %.1f img/s", e.Loss, e.ImagesPerSec))
		case "epoch":
			r := e.Record
			mark := ""
			if e.Best {
				mark = "  *best"
				best = fmt.Sprintf("best val Dice %.4f (epoch %d)", r.ValDice, r.Epoch)
			}
			epochs.Set(e.Epoch, e.Epochs)
			epochs.SetStatus(best)
			bars.Printf("epoch %d/%d  train loss %.4f  val loss %.4f  val Dice %.4f  IoU %.4f  %.1f img/s  %.1fs%s",
				r.Epoch, e.Epochs, r.TrainLoss, r.ValLoss, r.ValDice, r.ValIoU, r.ImagesPerSecond, r.Seconds, mark)
		case "test_images":
			test = testBar(bars, test, e)
		case "test":
			if e.ForegroundDSC != nil {
				bars.Printf("test %s: foreground Dice %.4f", e.Split, *e.ForegroundDSC)
			}
		case "info":
			bars.Printf("%s", e.Message)
		}
	}
}

// testBar moves the bar of a test split's images, adding one for each new
// split; it returns the split's bar.
func testBar(bars *progress.Bars, bar *progress.Bar, e train.Event) *progress.Bar {
	name := "test " + e.Split
	if bar == nil || bar.Name() != name {
		bar = bars.AddBar(name, progress.AverageETA())
	}
	bar.Set(e.Step, e.Steps)
	bar.SetStatus("images")
	return bar
}
