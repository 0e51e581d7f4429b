package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/augment"
	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/internal/progress"
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
					if err := firstErr(checkThreads(c), intFlag(c, "size", 16, 4096)); err != nil { // data.Prepare's range
						return fmt.Errorf("data prepare: %w", err)
					}
					if out := c.String("out"); !c.Bool("force") {
						if entries, err := os.ReadDir(out); err == nil && len(entries) > 0 {
							return fmt.Errorf("data prepare: --out %s is not empty; pass --force to replace the data set there (its splits and dataset.json)", out)
						}
					}
					bars := progress.New(progressOut) // on a terminal, a bar of each subject's slices
					defer bars.Close()
					opts := data.PrepareOptions{Out: c.String("out"), Task: c.String("task"), Size: c.Int("size"), Force: c.Bool("force"),
						OnSlice: subjectBars(bars)}
					if !c.Bool("json") {
						opts.Log = bars
					}
					rep, err := data.Prepare(c.Context, opts)
					bars.Close() // the result on a clean line
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
					&cli.StringFlag{Name: "to", Value: "test_phone", Usage: "new split (a name inside the data set)"},
					&cli.BoolFlag{Name: "force", Usage: "replace the split --to when it exists"},
				),
				Action: func(c *cli.Context) error {
					dir, from, to := c.String("data"), c.String("from"), c.String("to")
					if err := firstErr(checkThreads(c), checkSplitName("from", from), checkSplitName("to", to)); err != nil {
						return fmt.Errorf("data shift: %w", err)
					}
					if from == to {
						return fmt.Errorf("data shift: --to %q is the --from split; name a new split", to)
					}
					ds, err := data.Open(dir)
					if err != nil {
						return err
					}
					if _, err := ds.Split(from); err != nil {
						return fmt.Errorf("data shift: --from: %w", err)
					}
					if exists, what := splitExists(ds, to); exists {
						if !c.Bool("force") {
							return fmt.Errorf("data shift: --to %q: %s already has that split (%s); pass --force to replace it, or choose another --to", to, dir, what)
						}
						if err := os.RemoveAll(filepath.Join(dir, to)); err != nil {
							return fmt.Errorf("data shift: --force: %w", err)
						}
					}
					n, err := augment.WriteShifted(c.Context, dir, from, to, augment.PhonePhoto(), c.Uint64("seed"))
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
				// No "help" subcommand: a data set directory named h or help
				// is checked, not taken for a help topic.
				HideHelpCommand: true,
				Flags: withCommon(
					&cli.IntFlag{Name: "classes", Usage: "number of classes, background included (default: from dataset.json; needed without one)"},
					foldFlags()[0], foldFlags()[1],
				),
				Action: func(c *cli.Context) error {
					args, err := interspersed(c) // data check DIR --json
					if err != nil {
						return fmt.Errorf("data check: %w", err)
					}
					if len(args) != 1 {
						return fmt.Errorf("data check: want one data set directory, got %d arguments %q", len(args), args)
					}
					if err := checkThreads(c); err != nil {
						return fmt.Errorf("data check: %w", err)
					}
					if err := intFlag(c, "classes", 0, 65535); err != nil {
						return fmt.Errorf("data check: %w", err)
					}
					dir := args[0]
					fold, err := foldOptions(c)
					if err != nil {
						return fmt.Errorf("data check: %w", err)
					}
					rep, err := data.Check(c.Context, dir, data.CheckOptions{Classes: c.Int("classes"), Open: fold})
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
						return fmt.Errorf("data check: %d problem(s) in %s", len(rep.Issues), dir)
					}
					if !c.Bool("json") {
						fmt.Fprintf(c.App.Writer, "%s: no problems found\n", dir)
					}
					return nil
				},
			},
		},
	}
}

// subjectBars moves a bar of each subject's slices (a new bar per
// subject) for data.PrepareOptions.OnSlice.
func subjectBars(bars *progress.Bars) func(subject string, done, total int) {
	var bar *progress.Bar
	return func(subject string, done, total int) {
		if bar == nil || bar.Name() != subject {
			bar = bars.AddBar(subject, progress.AverageETA())
			bar.SetStatus("slices")
		}
		bar.Set(done, total)
	}
}

// splitExists reports whether the data set has a split named name: its
// directory, images of it, or dataset.json entries; what says which.
func splitExists(ds *data.Dataset, name string) (bool, string) {
	if samples, err := ds.Split(name); err == nil {
		return true, fmt.Sprintf("%d images", len(samples))
	}
	if m := ds.Manifest; m != nil {
		for _, s := range m.Samples {
			if s.Split == name {
				return true, "listed in dataset.json"
			}
		}
	}
	if p := filepath.Join(ds.Dir, name); fileExists(p) {
		return true, "the path " + p + " exists"
	}
	for _, s := range ds.Splits() {
		if strings.EqualFold(s, name) {
			return true, "as " + s
		}
	}
	return false, ""
}
