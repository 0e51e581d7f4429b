package cli

import (
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/sas"
	"github.com/jmedseg/jmedseg/train"
)

// maxQueue bounds pretrain's --queue (negatives kept; the reference keeps 1,024).
const maxQueue = 1 << 20

func pretrainCommand() *cli.Command {
	return &cli.Command{
		Name:  "pretrain",
		Usage: "self-supervised contrastive pretraining of a model's encoder (SAS); fine-tune with train --pretrained",
		Description: "Methods: membank (the reference's: keys from the same encoder, detached, a queue of negatives, InfoNCE), " +
			"moco (keys from a momentum copy of the encoder, computed without gradients, a queue of negatives, InfoNCE) and " +
			"simclr (the batch's other images as negatives, NT-Xent). Views are normalised as train normalises its inputs. " +
			"Beside --out go OUT.pretrain.json, OUT.pretrain.md and curves of the loss and of the positive-pair top-1 accuracy per epoch.",
		Flags: withCommon(
			&cli.StringFlag{Name: "model", Value: "unet", Usage: "a model with an encoder (unet, deeplab)"},
			&cli.StringFlag{Name: "data", Required: true, Usage: "data set directory (its images; masks are not used)"},
			&cli.StringFlag{Name: "splits", Value: "train", Usage: "comma-separated splits whose images are used: train, and splits without masks"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "encoder file to write (.safetensors)"},
			&cli.StringFlag{Name: "method", Value: string(sas.MemBank), Usage: "membank, moco or simclr"},
			&cli.IntFlag{Name: "epochs", Value: 20},
			&cli.IntFlag{Name: "batch", Value: 8, Usage: "images per step, 2 or more"},
			&cli.Float64Flag{Name: "lr", Value: 1e-5, Usage: "Adam learning rate (the reference's 1e-5)"},
			&cli.IntFlag{Name: "queue", Value: 1024, Usage: "negatives kept in the queue (membank, moco)"},
			&cli.Float64Flag{Name: "temperature", Value: 0.07},
			&cli.Float64Flag{Name: "momentum", Value: 0.999, Usage: "moco: key encoder ← m·key + (1−m)·encoder, m in (0, 1)"},
			&cli.StringFlag{Name: "size", Usage: "view size HxW (default: the data's size)"},
			&cli.Int64Flag{Name: "width", Usage: "model base width (default: the reference's)"},
			&cli.IntFlag{Name: "workers"},
			&cli.BoolFlag{Name: "force", Usage: "replace --out (and its report) when it exists"},
		),
		Action: func(c *cli.Context) error {
			if err := firstErr(intFlag(c, "epochs", 1, math.MaxInt), intFlag(c, "batch", 2, math.MaxInt), positiveFlag(c, "lr", false),
				intFlag(c, "queue", 1, maxQueue), positiveFlag(c, "temperature", false), int64Flag(c, "width", 0, math.MaxInt64),
				intFlag(c, "workers", 0, train.MaxWorkers())); err != nil {
				return fmt.Errorf("pretrain: %w", err)
			}
			method, err := sas.ParseMethod(c.String("method"))
			if err != nil {
				return fmt.Errorf("pretrain: --method: %w", err)
			}
			if m := c.Float64("momentum"); !(m > 0 && m < 1) {
				return fmt.Errorf("pretrain: --momentum %g: want a number between 0 and 1", m)
			}
			size, err := parseSize("size", c.String("size"))
			if err != nil {
				return fmt.Errorf("pretrain: %w", err)
			}
			dev, err := setup(c)
			if err != nil {
				return err
			}
			ds, err := data.Open(c.String("data"))
			if err != nil {
				return err
			}
			var samples []data.Sample
			var splits []string
			for _, sp := range strings.Split(c.String("splits"), ",") {
				if sp = strings.TrimSpace(sp); sp == "" {
					continue
				}
				ss, err := ds.Split(sp)
				if err != nil {
					return fmt.Errorf("pretrain: --splits: %w", err)
				}
				if err := checkPretrainSplit(sp, ss); err != nil {
					return err
				}
				samples = append(samples, ss...)
				splits = append(splits, sp)
			}
			if len(samples) == 0 {
				return fmt.Errorf("pretrain: no images in %s splits %s", c.String("data"), c.String("splits"))
			}
			if size == [2]int{} {
				img, err := data.ReadImage(samples[0].Image)
				if err != nil {
					return err
				}
				size = [2]int{img.Bounds().Dy(), img.Bounds().Dx()}
			}
			channels := 3
			if m := ds.Manifest; m != nil && (m.Channels == 1 || m.Channels == 3) {
				channels = m.Channels
			}
			spec, ok := models.Lookup(c.String("model"))
			if !ok {
				_, err := models.New(c.String("model"), models.Config{})
				return err
			}
			cfg := spec.Resolve(models.Config{InChannels: int64(channels), Classes: int64(max(ds.NumClasses(), 2)), Width: c.Int64("width")})
			if err := sas.CheckEncoder(spec.Name, cfg); err != nil {
				return fmt.Errorf("pretrain: %w", err)
			}
			if err := spec.CheckSize(int64(size[0]), int64(size[1])); err != nil {
				return fmt.Errorf("pretrain: %w (choose --size)", err)
			}
			out := c.String("out")
			if !c.Bool("force") {
				for _, f := range append([]string{out}, sas.ReportFiles(out)[0]) {
					if fileExists(f) {
						return fmt.Errorf("pretrain: %s exists; pass --force to replace it, or choose another --out", f)
					}
				}
			}
			o := sas.PretrainOptions{Method: method, Epochs: c.Int("epochs"), Batch: c.Int("batch"), LR: c.Float64("lr"), Queue: c.Int("queue"),
				Temperature: c.Float64("temperature"), Momentum: c.Float64("momentum"), Size: size, Channels: channels,
				Norm: models.DefaultNormalization(), Workers: c.Int("workers"), Seed: c.Uint64("seed"), Device: dev}
			chance := o.Chance()
			o.OnEpoch = func(e sas.EpochStats) {
				if !c.Bool("json") {
					fmt.Fprintf(os.Stderr, "epoch %d/%d  contrastive loss %.4f  positive-pair top-1 %.3f (chance %.4f)  %.1fs\n",
						e.Epoch, c.Int("epochs"), e.Loss, e.Accuracy, chance, e.Seconds)
				}
			}
			if q := o.Queue; method != sas.SimCLR && q >= len(samples) && !c.Bool("json") {
				fmt.Fprintf(os.Stderr, "pretrain: note: the queue (%d keys) is not smaller than the data (%d images), so it holds keys of each query's own image as negatives; consider --queue %d or less\n",
					q, len(samples), max(len(samples)-o.Batch, 1))
			}
			rep, err := sas.PretrainModel(c.Context, sas.ModelJob{Model: spec.Name, Config: cfg, Samples: samples, Data: c.String("data"),
				Splits: splits, Options: o, Out: out})
			if err != nil {
				return err
			}
			files := sas.ReportFiles(out)
			if c.Bool("json") {
				return printJSON(c.App.Writer, map[string]any{"checkpoint": out, "report": files[1], "report_json": files[0],
					"method": rep.Method, "losses": lossesOf(rep.History), "history": rep.History, "chance_top1": rep.Chance})
			}
			fmt.Fprintf(c.App.Writer, "pretrained %s written to %s, report %s (fine-tune with: jmedseg train --model %s --pretrained %s ...)\n",
				spec.Name, out, files[1], spec.Name, out)
			return nil
		},
	}
}

// checkPretrainSplit refuses a split that training validates or tests
// (val, or any other split with masks but train): pretraining on its images
// would leak them into the encoder the scores are about.
func checkPretrainSplit(name string, samples []data.Sample) error {
	if name == "train" {
		return nil
	}
	labelled := 0
	for _, s := range samples {
		if s.Mask != "" {
			labelled++
		}
	}
	if name == "val" || labelled > 0 {
		return fmt.Errorf("pretrain: --splits %s: train validates or tests on that split (%d of its %d images have masks); pretraining on it would leak it into the encoder: use train, and splits without masks",
			name, labelled, len(samples))
	}
	return nil
}

func lossesOf(h []sas.EpochStats) []float64 {
	out := make([]float64, len(h))
	for i, e := range h {
		out[i] = e.Loss
	}
	return out
}
