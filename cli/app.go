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
		&cli.StringFlag{Name: "winograd", Usage: "oneDNN's Winograd kernels for 3×3 float32 CPU convolutions: off, inference (where no gradient is recorded) or training (everywhere)" +
			" (default " + torch.Winograd().String() + ")"},
		&cli.StringFlag{Name: "cpu-cache", Usage: "bytes of freed CPU tensor blocks (1 MiB and up) kept for reuse: a size such as 4GiB, 512MiB or 1000000, or off" +
			" (default JMEDSEG_CPU_CACHE, else a quarter of the machine's memory: " + formatBytes(torch.CPUCacheLimit()) + ")"},
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
	if err := setWinograd(c.String("winograd")); err != nil {
		return torch.CPU, err
	}
	if v := c.String("cpu-cache"); v != "" {
		n, err := parseBytes(v)
		if err != nil {
			return torch.CPU, fmt.Errorf("--cpu-cache: %w", err)
		}
		torch.SetCPUCache(n)
	}
	torch.ManualSeed(c.Uint64("seed"))
	return torch.ParseDevice(c.String("device"))
}

// setWinograd applies --winograd ("" keeps the default).
func setWinograd(v string) error {
	if v == "" {
		return nil
	}
	m, err := torch.ParseWinogradMode(v)
	if err != nil {
		return fmt.Errorf("--winograd: %w", err)
	}
	if m != torch.WinogradOff && !torch.WinogradAvailable() {
		return fmt.Errorf("--winograd %s: this build has no Winograd kernels (built with -tags nowinograd, or the CPU has no AVX-512)", v)
	}
	torch.SetWinograd(m)
	return nil
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
