package cli

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
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
		Flags: withCommon(
			&cli.StringFlag{Name: "model", Value: "unet", Usage: "unet or deeplab (models with an encoder)"},
			&cli.StringFlag{Name: "data", Required: true, Usage: "data set directory (its images; masks are not used)"},
			&cli.StringFlag{Name: "splits", Value: "train", Usage: "comma-separated splits whose images are used"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "checkpoint to write (.safetensors)"},
			&cli.IntFlag{Name: "epochs", Value: 20},
			&cli.IntFlag{Name: "batch", Value: 8},
			&cli.Float64Flag{Name: "lr", Value: 1e-5},
			&cli.IntFlag{Name: "queue", Value: 1024, Usage: "negatives kept in the queue"},
			&cli.Float64Flag{Name: "temperature", Value: 0.07},
			&cli.StringFlag{Name: "size", Usage: "view size HxW (default: the data's size)"},
			&cli.Int64Flag{Name: "width", Usage: "model base width (default: the reference's)"},
			&cli.IntFlag{Name: "workers"},
			&cli.BoolFlag{Name: "force", Usage: "replace --out when it exists"},
		),
		Action: func(c *cli.Context) error {
			if err := firstErr(intFlag(c, "epochs", 1, math.MaxInt), intFlag(c, "batch", 1, math.MaxInt), positiveFlag(c, "lr", false),
				intFlag(c, "queue", 1, maxQueue), positiveFlag(c, "temperature", false), int64Flag(c, "width", 0, math.MaxInt64),
				intFlag(c, "workers", 0, train.MaxWorkers())); err != nil {
				return fmt.Errorf("pretrain: %w", err)
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
			for _, sp := range strings.Split(c.String("splits"), ",") {
				ss, err := ds.Split(sp)
				if err != nil {
					return err
				}
				samples = append(samples, ss...)
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
			m, err := models.New(spec.Name, cfg)
			if err != nil {
				return err
			}
			defer m.Free()
			enc, ok := m.(sas.Encoder)
			if !ok {
				return fmt.Errorf("pretrain: %s has no encoder to pretrain (use unet or deeplab)", spec.Name)
			}
			if out := c.String("out"); fileExists(out) && !c.Bool("force") {
				return fmt.Errorf("pretrain: --out %s exists; pass --force to replace it, or choose another --out", out)
			}
			if err := m.To(dev); err != nil {
				return err
			}
			losses, err := sas.Pretrain(c.Context, enc, samples, sas.PretrainOptions{Epochs: c.Int("epochs"), Batch: c.Int("batch"),
				LR: c.Float64("lr"), Queue: c.Int("queue"), Temperature: c.Float64("temperature"), Size: size, Channels: channels,
				Workers: c.Int("workers"), Seed: c.Uint64("seed"), Device: dev,
				OnEpoch: func(e int, l, sec float64) {
					if !c.Bool("json") {
						fmt.Fprintf(os.Stderr, "epoch %d/%d  contrastive loss %.4f  %.1fs\n", e, c.Int("epochs"), l, sec)
					}
				}})
			if err != nil {
				return err
			}
			state, err := sas.EncoderState(enc, channels, size, dev)
			if err != nil {
				return err
			}
			lb, _ := json.Marshal(losses)
			out := c.String("out")
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			info := models.Info{Model: spec.Name, Config: cfg, Extra: map[string]string{"jmedseg.pretrain_losses": string(lb)}}
			if err := models.SaveEncoder(out, state, info); err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, map[string]any{"checkpoint": out, "losses": losses})
			}
			fmt.Fprintf(c.App.Writer, "pretrained %s written to %s (fine-tune with: jmedseg train --model %s --pretrained %s ...)\n", spec.Name, out, spec.Name, out)
			return nil
		},
	}
}
