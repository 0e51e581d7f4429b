// Package cli is the jmedseg command line: models, data, train, test,
// predict, pretrain, bench and zoo. Other tools script against it: flags
// and JSON output stay stable.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/torch"
)

// common flags every command takes.
func commonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu, cuda, cuda:N or auto"},
		&cli.IntFlag{Name: "threads", Usage: "libtorch intra-op threads (0: libtorch's default; at most 4 per CPU)"},
		&cli.Uint64Flag{Name: "seed", Value: 0, Usage: "random seed"},
		&cli.BoolFlag{Name: "json", Usage: "machine-readable output on stdout"},
	}
}

func withCommon(fs ...cli.Flag) []cli.Flag { return append(commonFlags(), fs...) }

// setup applies the common flags.
func setup(c *cli.Context) (torch.Device, error) {
	if err := torch.CheckVersion(); err != nil {
		return torch.CPU, err
	}
	if err := checkThreads(c); err != nil {
		return torch.CPU, err
	}
	if n := c.Int("threads"); n > 0 {
		torch.SetNumThreads(n)
	}
	torch.ManualSeed(c.Uint64("seed"))
	return torch.ParseDevice(c.String("device"))
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// App is the jmedseg command.
func App() *cli.App {
	return &cli.App{
		Name:  "jmedseg",
		Usage: "medical image segmentation on libtorch: train, evaluate, predict, benchmark",
		Commands: []*cli.Command{
			modelsCommand(),
			dataCommand(),
			withRunConfig(trainCommand()),
			testCommand(),
			predictCommand(),
			exportCommand(),
			pretrainCommand(),
			benchCommand(),
			zooCommand(),
			experimentCommand(),
			serveCommand(),
		},
		HideHelpCommand: true,
	}
}

// Main runs the command line with ctx cancelled on Ctrl-C and returns the
// process exit code.
func Main(ctx context.Context, args []string) int {
	if err := App().RunContext(ctx, args); err != nil {
		fmt.Fprintln(os.Stderr, "jmedseg:", err)
		if errors.Is(err, context.Canceled) {
			return 130 // the shell's code for an interrupt
		}
		return 1
	}
	return 0
}
