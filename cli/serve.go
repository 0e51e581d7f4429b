package cli

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/serve"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve models over HTTP (API, /metrics) with a web page to look at their predictions",
		Flags: withCommon(append([]cli.Flag{
			&cli.StringSliceFlag{Name: "checkpoint", Required: true, Usage: "model file to serve, PATH or NAME=PATH (repeat for more)"},
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8080", Usage: "address to listen on (port 0: any free port); loopback unless told otherwise"},
			&cli.StringFlag{Name: "runs", Usage: "directory of training runs the page lists, with their reports"},
			&cli.IntFlag{Name: "max-batch", Value: serve.DefaultMaxBatch, Usage: "most images run through a model at once (1: no batching)"},
			&cli.DurationFlag{Name: "batch-window", Value: serve.DefaultBatchWindow, Usage: "how long a batch waits for more images after its first (0: only those waiting)"},
			&cli.IntFlag{Name: "workers", Value: 1, Usage: "batches of one model run at once"},
			&cli.IntFlag{Name: "queue", Value: serve.DefaultQueue, Usage: "most prediction requests under way at once; more are answered 503"},
			&cli.DurationFlag{Name: "timeout", Value: serve.DefaultTimeout, Usage: "longest a request may take (504 after it)"},
			&cli.Int64Flag{Name: "max-body", Value: serve.DefaultMaxBody, Usage: "largest request body in bytes (413 over it)"},
			&cli.Int64Flag{Name: "max-pixels", Value: serve.DefaultMaxPixels, Usage: "largest 2D image in pixels (413 over it)"},
			&cli.StringFlag{Name: "token-file", Usage: "file holding a bearer token the API then requires (Authorization: Bearer TOKEN)"},
			&cli.DurationFlag{Name: "drain-timeout", Value: 30 * time.Second, Usage: "on SIGTERM or Ctrl-C, how long to wait for the requests under way"},
		}, speedFlags("built at start, before listening, for batch sizes 1 to --max-batch halving (8: 1, 2, 4, 8), each batch padded up to the next")...)...),
		Action: func(c *cli.Context) error {
			if err := firstErr(intFlag(c, "max-batch", 1, infer.MaxBatch), intFlag(c, "workers", 1, 64), intFlag(c, "queue", 1, 1<<16),
				int64Flag(c, "max-body", 1, math.MaxInt64), int64Flag(c, "max-pixels", 1, math.MaxInt64),
				positiveDuration(c, "timeout"), positiveDuration(c, "drain-timeout")); err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			load, err := loadOptions(c, "serve")
			if err != nil {
				return err
			}
			dev, err := setup(c)
			if err != nil {
				return err
			}
			token, err := readToken(c.String("token-file"))
			if err != nil {
				return err
			}
			cfg := serve.Config{
				Checkpoints: c.StringSlice("checkpoint"), Device: dev, RunsDir: c.String("runs"),
				MaxBatch: c.Int("max-batch"), BatchWindow: c.Duration("batch-window"), Workers: c.Int("workers"),
				Queue: c.Int("queue"), Timeout: c.Duration("timeout"), MaxBody: c.Int64("max-body"),
				MaxPixels: c.Int64("max-pixels"), Token: token, Log: log.New(c.App.ErrWriter, "jmedseg serve: ", log.LstdFlags), Load: load,
			}
			s, err := serve.New(cfg)
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			ln, err := net.Listen("tcp", c.String("addr"))
			if err != nil {
				s.Close()
				return fmt.Errorf("serve: --addr %s: %w", c.String("addr"), err)
			}
			addr := ln.Addr().(*net.TCPAddr)
			if !addr.IP.IsLoopback() && token == "" {
				fmt.Fprintf(c.App.ErrWriter, "jmedseg serve: warning: listening on %s, beyond this machine, with no --token-file: whoever reaches it can use the models\n", addr)
			}
			srv := &http.Server{
				Handler:           s.Handler(),
				ReadHeaderTimeout: 10 * time.Second,
				ReadTimeout:       cfg.Timeout,
				WriteTimeout:      cfg.Timeout + 10*time.Second,
				IdleTimeout:       2 * time.Minute,
				ErrorLog:          cfg.Log,
			}
			url := "http://" + addr.String() + "/"
			if c.Bool("json") {
				if err := printJSON(c.App.Writer, map[string]any{"url": url, "addr": addr.String(), "models": s.Names()}); err != nil {
					s.Close()
					return err
				}
			} else {
				fmt.Fprintf(c.App.Writer, "jmedseg serve: %s (models: %s)\n", url, strings.Join(s.Names(), ", "))
			}
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc: // the listener failed
				s.Close()
				return fmt.Errorf("serve: %w", err)
			case <-c.Context.Done():
			}
			cfg.Log.Printf("stopping: answering the requests under way (up to %s)", c.Duration("drain-timeout"))
			ctx, cancel := context.WithTimeout(context.Background(), c.Duration("drain-timeout"))
			defer cancel()
			err = serve.Shutdown(ctx, srv, s)
			if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
				err = serr
			}
			if err != nil {
				return fmt.Errorf("serve: stopping: %w", err)
			}
			cfg.Log.Printf("stopped")
			return nil
		},
	}
}

// positiveDuration checks that a duration flag is positive.
func positiveDuration(c *cli.Context, name string) error {
	if d := c.Duration(name); d <= 0 {
		return fmt.Errorf("--%s %s: want a positive duration", name, d)
	}
	return nil
}

// readToken reads the bearer token of --token-file ("" when not given).
func readToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("serve: --token-file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	switch {
	case t == "":
		return "", fmt.Errorf("serve: --token-file %s is empty: put the token in it", path)
	case strings.ContainsAny(t, " \t\r\n"):
		return "", fmt.Errorf("serve: --token-file %s: the token must be one word (no spaces or line breaks)", path)
	case len(t) < 16:
		return "", fmt.Errorf("serve: --token-file %s: the token has %d characters; use 16 or more (e.g. openssl rand -hex 32)", path, len(t))
	}
	return t, nil
}
