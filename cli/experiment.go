package cli

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/internal/progress"
	"github.com/jmedseg/jmedseg/sas"
	"github.com/jmedseg/jmedseg/train"
)

func experimentCommand() *cli.Command {
	return &cli.Command{
		Name:  "experiment",
		Usage: "reproducible experiments: sas (the SAS recipe against its parts)",
		Subcommands: []*cli.Command{
			experimentSASCommand(),
		},
	}
}

func experimentSASCommand() *cli.Command {
	d := sas.DefaultProtocol()
	return &cli.Command{
		Name:  "sas",
		Usage: "train plain, aug, stn, ssl, their pairs and sas with one protocol and the same seeds; test on clean and phone-photo splits: sas.md, sas.json, figure",
		Description: "Each run is OUT/<variant>/seed<k>/ (best.safetensors, report.md); the ssl variants start from one encoder " +
			"pretrained per seed (OUT/pretrain/seed<k>/encoder.safetensors and its report). A phone-photo twin (<split>_phone, " +
			"as `jmedseg data shift`) of every clean test split is written into --data first when absent. Finished runs are " +
			"skipped when the command is run again, an interrupted one continues; a failing run gets a row saying why. " +
			"Seeds are --seed+1 ... --seed+N.",
		Flags: withCommon(
			&cli.StringFlag{Name: "data", Required: true, Usage: "data set directory"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "experiment directory (sas.md, sas.json, figure, runs)"},
			&cli.StringFlag{Name: "model", Value: d.Model, Usage: "a registered model; the ssl variants need one with an encoder (unet, deeplab)"},
			&cli.StringFlag{Name: "variants", Value: "all", Usage: "all, or comma-separated: plain, aug, stn, ssl, aug+stn, aug+ssl, stn+ssl, sas"},
			&cli.IntFlag{Name: "seeds", Value: sas.DefaultSeeds, Usage: "seeds per variant"},
			&cli.IntFlag{Name: "epochs", Value: d.Epochs},
			&cli.IntFlag{Name: "batch", Value: d.Batch},
			&cli.Float64Flag{Name: "lr", Value: d.LR},
			&cli.StringFlag{Name: "optimizer", Value: d.Optimizer, Usage: "adam, adamw or sgd"},
			&cli.BoolFlag{Name: "poly", Value: d.Poly, Usage: "poly learning-rate schedule (--poly=false for a constant rate)"},
			&cli.StringFlag{Name: "loss", Value: d.Loss, Usage: "loss spec"},
			&cli.StringFlag{Name: "size", Usage: "train and test at HxW (default: the data's size)"},
			&cli.Int64Flag{Name: "width", Value: d.Width, Usage: "model base width"},
			&cli.IntFlag{Name: "limit-batches", Usage: "cap batches per epoch (smoke tests)"},
			&cli.StringFlag{Name: "method", Value: string(d.Pretrain.Method), Usage: "pretraining: membank, moco or simclr"},
			&cli.IntFlag{Name: "pretrain-epochs", Value: d.Pretrain.Epochs},
			&cli.IntFlag{Name: "pretrain-batch", Value: d.Pretrain.Batch},
			&cli.Float64Flag{Name: "pretrain-lr", Value: d.Pretrain.LR},
			&cli.IntFlag{Name: "queue", Value: d.Pretrain.Queue, Usage: "pretraining negatives kept (membank, moco); below the train split's size"},
			&cli.Float64Flag{Name: "temperature", Value: d.Pretrain.Temperature},
			&cli.Float64Flag{Name: "momentum", Value: d.Pretrain.Momentum, Usage: "moco's key-encoder momentum"},
			&cli.IntFlag{Name: "figure-images", Value: 3, Usage: "phone-photo test images in the figure"},
			&cli.IntFlag{Name: "workers", Usage: "data loading goroutines (default GOMAXPROCS)"},
			&cli.BoolFlag{Name: "retry-failed", Usage: "run the runs whose rows say they failed again"},
		),
		Action: func(c *cli.Context) error {
			if err := firstErr(intFlag(c, "seeds", 1, 1000), intFlag(c, "epochs", 1, math.MaxInt), intFlag(c, "batch", 1, math.MaxInt),
				positiveFlag(c, "lr", false), int64Flag(c, "width", 1, math.MaxInt64), intFlag(c, "limit-batches", 0, math.MaxInt),
				intFlag(c, "pretrain-epochs", 1, math.MaxInt), intFlag(c, "pretrain-batch", 2, math.MaxInt), positiveFlag(c, "pretrain-lr", false),
				intFlag(c, "queue", 1, maxQueue), positiveFlag(c, "temperature", false), intFlag(c, "figure-images", 1, 64),
				intFlag(c, "workers", 0, train.MaxWorkers())); err != nil {
				return fmt.Errorf("experiment sas: %w", err)
			}
			method, err := sas.ParseMethod(c.String("method"))
			if err != nil {
				return fmt.Errorf("experiment sas: --method: %w", err)
			}
			variants, err := sas.SelectVariants(c.String("variants"))
			if err != nil {
				return fmt.Errorf("experiment sas: %w", err)
			}
			size, err := parseSize("size", c.String("size"))
			if err != nil {
				return fmt.Errorf("experiment sas: %w", err)
			}
			if _, err := setup(c); err != nil {
				return err
			}
			var seeds []uint64
			for k := 1; k <= c.Int("seeds"); k++ {
				seeds = append(seeds, c.Uint64("seed")+uint64(k))
			}
			opt := sas.Options{Data: c.String("data"), Out: c.String("out"), Variants: variants, Seeds: seeds,
				Protocol: sas.Protocol{Model: c.String("model"), Width: c.Int64("width"), Size: size, Epochs: c.Int("epochs"), Batch: c.Int("batch"),
					LR: c.Float64("lr"), Optimizer: c.String("optimizer"), Poly: c.Bool("poly"), Loss: c.String("loss"), LimitBatches: c.Int("limit-batches"),
					Pretrain: sas.PretrainProtocol{Method: method, Epochs: c.Int("pretrain-epochs"), Batch: c.Int("pretrain-batch"), LR: c.Float64("pretrain-lr"),
						Queue: c.Int("queue"), Temperature: c.Float64("temperature"), Momentum: c.Float64("momentum")}},
				Device: c.String("device"), Threads: c.Int("threads"), Workers: c.Int("workers"), RetryFailed: c.Bool("retry-failed"),
				FigureImages: c.Int("figure-images")}
			var end func()
			opt.OnEvent, end = experimentProgress(c)
			defer end()
			_, err = sas.Run(c.Context, opt)
			return err
		},
	}
}

// experimentProgress renders the experiment's events as zooProgress does
// the zoo's (the same bars, over its runs); JSON lines on stdout with
// --json. The second result ends the bars.
func experimentProgress(c *cli.Context) (func(sas.Event), func()) {
	if c.Bool("json") {
		return jsonLines[sas.Event](c.App.Writer), func() {}
	}
	runs := progress.NewRuns(progress.New(progressOut), "sas")
	return experimentLines(runs, c.App.Writer, strings.TrimRight(c.String("out"), "/")), runs.Close
}

// experimentLines is experimentProgress's renderer, as zooLines.
func experimentLines(runs *progress.Runs, stdout io.Writer, out string) func(sas.Event) {
	return func(e sas.Event) {
		name := fmt.Sprintf("%s seed %d", e.Variant, e.Seed)
		tag := fmt.Sprintf("[%d/%d] %s", e.K, e.N, name)
		ev := progress.RunEvent{Kind: progress.Note, K: e.K, N: e.N, Name: name}
		switch e.Kind {
		case "start", "pretrain", "pretrained":
			ev.Line = "sas: " + e.Message
		case "pretrain_epoch":
			st := e.Stats
			ev.Line = fmt.Sprintf("sas: seed %d pretraining epoch %d/%d  contrastive loss %.4f  positive-pair top-1 %.3f  %.1f s",
				e.Seed, e.Epoch, e.Epochs, st.Loss, st.Accuracy, st.Seconds)
		case "run":
			ev.Kind, ev.TotalETA = progress.RunStarted, e.ETA
			ev.Line = fmt.Sprintf("%s: %s%s", tag, e.Message, eta(" (experiment ETA %s)", e.ETA))
		case "epoch":
			r := e.Record
			ev.Kind, ev.Epoch, ev.Epochs = progress.RunEpoch, e.Epoch, e.Epochs
			ev.Line = fmt.Sprintf("%s epoch %d/%d  train loss %.4f  val Dice %.4f  %.1f s", tag, e.Epoch, e.Epochs, r.TrainLoss, r.ValDice, r.Seconds)
		case "skip":
			ev.Kind, ev.Line = progress.RunEnded, fmt.Sprintf("%s: kept from an earlier run: %s", tag, sasRowLine(e.Row))
		case "row":
			ev.Kind, ev.TotalETA = progress.RunEnded, e.ETA
			ev.Line = fmt.Sprintf("%s: %s%s", tag, sasRowLine(e.Row), eta(" (experiment ETA %s)", e.ETA))
		case "info":
			ev.Line = "sas: " + e.Message
			if e.Variant != "" {
				ev.Line = tag + ": " + e.Message
			}
		case "done":
			runs.Close() // the summary on a clean line
			fmt.Fprintf(stdout, "experiment sas: %s: %s, %s\n", e.Message, filepath.Join(out, sas.MarkdownFile), filepath.Join(out, sas.JSONFile))
			return
		default:
			return
		}
		runs.Show(ev)
	}
}

// sasRowLine is a run's row in one line.
func sasRowLine(r *sas.Row) string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(r.Status)
	for i, t := range r.Tests {
		sep := ", "
		if i == 0 {
			sep = "  "
		}
		fmt.Fprintf(&b, "%s%s Dice %.4f", sep, t.Split, float64(t.Dice))
	}
	if r.WallSeconds > 0 {
		fmt.Fprintf(&b, "  (%s)", time.Duration(r.WallSeconds*float64(time.Second)).Round(time.Second))
	}
	if r.Error != "" {
		b.WriteString(": " + r.Error)
	}
	return b.String()
}
