package cli

import (
	"fmt"
	"math"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/train"
)

func testCommand() *cli.Command {
	return &cli.Command{
		Name:  "test",
		Usage: "evaluate a checkpoint on data set splits: metrics JSON, overlay PNGs and a report",
		Flags: withCommon(
			&cli.StringFlag{Name: "checkpoint", Required: true, Usage: "model checkpoint (best.safetensors of a run)"},
			&cli.StringFlag{Name: "data", Required: true, Usage: "data set directory"},
			&cli.StringFlag{Name: "split", Usage: "comma-separated splits (default: every split but train and val)"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "output directory"},
			&cli.IntFlag{Name: "batch", Value: 8, Usage: "batch size, 1 or more"},
			&cli.BoolFlag{Name: "force", Usage: "write into --out even when it is a training run directory (its report is replaced)"},
		),
		Action: func(c *cli.Context) error {
			if err := intFlag(c, "batch", 1, math.MaxInt); err != nil {
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
			run, err := train.Test(c.Context, c.String("checkpoint"), c.String("data"), splits, c.String("out"), c.String("device"), c.Int("batch"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, map[string]any{"headline": run.Headline(), "tests": summaries(run)})
			}
			fmt.Fprintln(c.App.Writer, run.Headline())
			fmt.Fprintf(c.App.Writer, "report: %s/report.md\n", strings.TrimRight(c.String("out"), "/"))
			return nil
		},
	}
}
