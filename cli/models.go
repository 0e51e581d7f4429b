package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/models"
)

// ModelRow is one line of `jmedseg models`.
type ModelRow struct {
	Name        string `json:"name"`
	Params      int64  `json:"params"`
	RefParams   int64  `json:"reference_params"`
	Width       int64  `json:"default_width"`
	Multiple    int64  `json:"size_multiple"`
	Description string `json:"description"`
}

func modelsCommand() *cli.Command {
	return &cli.Command{
		Name:  "models",
		Usage: "list the registered models with their parameter counts",
		Flags: withCommon(
			&cli.Int64Flag{Name: "in-channels", Value: 3, Usage: "input channels the counts assume"},
			&cli.Int64Flag{Name: "classes", Value: 2, Usage: "classes the counts assume"},
		),
		Action: func(c *cli.Context) error {
			if err := firstErr(int64Flag(c, "in-channels", 1, 1024), int64Flag(c, "classes", 1, 1<<16)); err != nil {
				return fmt.Errorf("models: %w", err)
			}
			if _, err := setup(c); err != nil {
				return err
			}
			var rows []ModelRow
			for _, name := range models.Names() {
				spec, _ := models.Lookup(name)
				m, err := models.New(name, models.Config{InChannels: c.Int64("in-channels"), Classes: c.Int64("classes")})
				if err != nil {
					return err
				}
				rows = append(rows, ModelRow{Name: name, Params: m.NumParams(), RefParams: spec.RefParams, Width: spec.DefaultWidth, Multiple: spec.Multiple, Description: spec.Description})
				m.Free()
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, rows)
			}
			w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "MODEL\tPARAMS\tSIZE MULTIPLE\tDESCRIPTION")
			for _, r := range rows {
				fmt.Fprintf(w, "%s\t%d\t%d\t%s\n", r.Name, r.Params, r.Multiple, r.Description)
			}
			return w.Flush()
		},
	}
}
