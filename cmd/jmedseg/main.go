// Command jmedseg trains, evaluates and runs medical image segmentation
// models on libtorch. Run `jmedseg --help` for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/jmedseg/jmedseg/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args)
	stop()
	os.Exit(code)
}
