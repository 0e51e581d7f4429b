package cli

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/augment"
	"github.com/jmedseg/jmedseg/data"
)

func dataCommand() *cli.Command {
	return &cli.Command{
		Name:  "data",
		Usage: "build and check data sets",
		Subcommands: []*cli.Command{
			{
				Name:  "prepare",
				Usage: "build the default brain MRI data set from Debian's mricron-data and insighttoolkit5-examples",
				Flags: withCommon(
					&cli.StringFlag{Name: "out", Required: true, Usage: "output directory"},
					&cli.StringFlag{Name: "task", Value: "brain", Usage: "brain (binary brain mask) or aal (coarse parcellation)"},
					&cli.IntFlag{Name: "size", Value: 128, Usage: "side of the square slices"},
					&cli.BoolFlag{Name: "force", Usage: "overwrite a data set already in --out"},
				),
				Action: func(c *cli.Context) error {
					var log *os.File
					if !c.Bool("json") {
						log = os.Stderr
					}
					opts := data.PrepareOptions{Out: c.String("out"), Task: c.String("task"), Size: c.Int("size"), Force: c.Bool("force")}
					if log != nil {
						opts.Log = log
					}
					rep, err := data.Prepare(c.Context, opts)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, rep)
					}
					fmt.Fprintf(c.App.Writer, "data set written to %s\n", rep.Out)
					return nil
				},
			},
			{
				Name:  "shift",
				Usage: "write a shifted test split: each image of --from photographed from a screen with a phone (perspective, moiré, glare, colour cast, blur, JPEG)",
				Flags: withCommon(
					&cli.StringFlag{Name: "data", Required: true, Usage: "data set directory"},
					&cli.StringFlag{Name: "from", Value: "test", Usage: "source split"},
					&cli.StringFlag{Name: "to", Value: "test_phone", Usage: "new split"},
				),
				Action: func(c *cli.Context) error {
					n, err := augment.WriteShifted(c.Context, c.String("data"), c.String("from"), c.String("to"), augment.PhonePhoto(), c.Uint64("seed"))
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, map[string]any{"split": c.String("to"), "pairs": n})
					}
					fmt.Fprintf(c.App.Writer, "%d pairs written to split %s of %s\n", n, c.String("to"), c.String("data"))
					return nil
				},
			},
			{
				Name:      "check",
				Usage:     "validate a data set: missing pairs, size mismatches, labels out of range, unreadable files",
				ArgsUsage: "DIR",
				Flags:     withCommon(),
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fmt.Errorf("data check: want one data set directory, got %d arguments", c.NArg())
					}
					rep, err := data.Check(c.Context, c.Args().First(), data.CheckOptions{})
					if err != nil {
						return err
					}
					if c.Bool("json") {
						if err := printJSON(c.App.Writer, rep); err != nil {
							return err
						}
					} else {
						for _, is := range rep.Issues {
							fmt.Fprintln(c.App.Writer, is)
						}
					}
					if !rep.OK() {
						return fmt.Errorf("data check: %d problem(s) in %s", len(rep.Issues), c.Args().First())
					}
					if !c.Bool("json") {
						fmt.Fprintf(c.App.Writer, "%s: no problems found\n", c.Args().First())
					}
					return nil
				},
			},
		},
	}
}
