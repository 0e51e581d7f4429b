package cli

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/internal/progress"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/report"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/train"
)

func testCommand() *cli.Command {
	return &cli.Command{
		Name:  "test",
		Usage: "evaluate a checkpoint on data set splits: metrics JSON, overlay PNGs and a report",
		Flags: withCommon(append([]cli.Flag{
			&cli.StringFlag{Name: "checkpoint", Required: true, Usage: "model checkpoint (best.safetensors of a run)"},
			&cli.StringFlag{Name: "data", Required: true, Usage: "data set directory"},
			&cli.StringFlag{Name: "split", Usage: "comma-separated splits (default: every split but train and val)"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "output directory"},
			&cli.IntFlag{Name: "batch", Value: 8, Usage: "batch size, 1 or more"},
			&cli.BoolFlag{Name: "force", Usage: "write into --out even when it is a training run directory (its report is replaced)"},
			foldFlags()[0], foldFlags()[1],
		}, speedFlags("a few forwards' build on each batch shape's first call: the full and the last batch of each split")...)...),
		Action: func(c *cli.Context) error {
			if err := intFlag(c, "batch", 1, math.MaxInt); err != nil {
				return fmt.Errorf("test: %w", err)
			}
			load, err := loadOptions(c, "test")
			if err != nil {
				return err
			}
			fold, err := foldOptions(c)
			if err != nil {
				return fmt.Errorf("test: %w", err)
			}
			if p := runFileIn(c.String("out")); p != "" && !c.Bool("force") {
				return fmt.Errorf("test: --out %s is a training run directory (it holds %s): its report.md and report.json would be replaced; choose another --out, or pass --force", c.String("out"), p)
			}
			if _, err := setup(c); err != nil {
				return err
			}
			var splits []string
			if s := c.String("split"); s != "" {
				splits = strings.Split(s, ",")
			}
			bars := progress.New(progressOut) // on a terminal, a bar of each split's images
			defer bars.Close()
			var bar *progress.Bar
			prepare := func(m nn.Module, info models.Info, dev torch.Device) (nn.Module, error) {
				return load.Prepare(m, info.Model, dev)
			}
			run, err := train.TestPrepared(c.Context, c.String("checkpoint"), c.String("data"), fold, splits, c.String("out"), c.String("device"), c.Int("batch"),
				func(e train.Event) {
					if e.Kind == "test_images" {
						bar = testBar(bars, bar, e)
					}
				}, prepare)
			bars.Close() // the result on a clean line
			if err != nil {
				return err
			}
			out := strings.TrimRight(c.String("out"), "/")
			csvPath := filepath.Join(out, report.PerImageFile)
			if c.Bool("json") {
				return printJSON(c.App.Writer, map[string]any{"headline": run.Headline(), "tests": testSummaries(run),
					"report": filepath.Join(out, report.MarkdownFile), "per_image_csv": csvPath})
			}
			fmt.Fprintln(c.App.Writer, run.Headline())
			for _, t := range run.Tests {
				for _, l := range t.Summary() {
					fmt.Fprintln(c.App.Writer, l)
				}
			}
			fmt.Fprintf(c.App.Writer, "report: %s (page: %s), per-image scores: %s\n", filepath.Join(out, report.MarkdownFile), filepath.Join(out, report.HTMLFile), csvPath)
			return nil
		},
	}
}

// testSummaries are summaries' figures of each split (foreground_mean and
// all_class_mean pooled over the split's pixels, surface as per-image
// means) with the per-image mean of Dice and IoU and the image count.
func testSummaries(run *report.Run) []map[string]any {
	out := summaries(run)
	for i, t := range run.Tests {
		out[i]["images"] = len(t.Metrics.PerImage)
		out[i]["per_image_mean"] = t.Metrics.ImageMean
	}
	return out
}
