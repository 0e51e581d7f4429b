package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/data"
)

// foldFlags are --fold and --folds, for train, test and data check.
func foldFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "fold", Usage: "cross-validation fold held out as the val split (nnU-Net raw data sets and data lists; default 0)"},
		&cli.IntFlag{Name: "folds", Usage: fmt.Sprintf("number of cross-validation folds, split by case as nnU-Net does (default %d)", data.DefaultFolds)},
	}
}

// foldOptions reads --fold and --folds. Either one given makes the fold
// explicit (Folds > 0), which layouts with their own val split refuse.
func foldOptions(c *cli.Context) (data.OpenOptions, error) {
	if !c.IsSet("fold") && !c.IsSet("folds") {
		return data.OpenOptions{}, nil
	}
	k, f := data.DefaultFolds, c.Int("fold")
	if c.IsSet("folds") {
		k = c.Int("folds")
	}
	if k < 2 {
		return data.OpenOptions{}, fmt.Errorf("--folds %d: want 2 or more", k)
	}
	if f < 0 || f >= k {
		return data.OpenOptions{}, fmt.Errorf("--fold %d: want 0 to %d (--folds %d)", f, k-1, k)
	}
	return data.OpenOptions{Fold: f, Folds: k}, nil
}
