package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/torch/dist"
)

// envLaunched marks a worker started by launch, so that its --nproc is
// not taken for a request to launch again.
const envLaunched = "JMEDSEG_LAUNCHED"

// distFlags are train's flags for data-parallel training.
func distFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "nproc", Usage: "train data-parallel on N local processes (like torchrun --standalone); --batch is per process. Workers of a multi-machine job read RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT instead"},
		&cli.StringFlag{Name: "dist-backend", Value: "gloo", Usage: "c10d backend of a distributed run: gloo (nccl needs a CUDA libtorch)"},
		&cli.BoolFlag{Name: "sync-bn", Usage: "distributed: BatchNorm with the statistics of all processes' batches (SyncBatchNorm)"},
		&cli.DurationFlag{Name: "dist-timeout", Value: 10 * time.Minute, Usage: "distributed: how long a rank waits for the others (joining, each collective) before it fails"},
	}
}

// checkDistFlags checks --nproc, --dist-backend and --dist-timeout.
func checkDistFlags(c *cli.Context) error {
	if err := intFlag(c, "nproc", 0, math.MaxInt); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if b := c.String("dist-backend"); b != "gloo" && b != "nccl" {
		return fmt.Errorf("train: --dist-backend %q: want gloo or nccl", b)
	}
	if d := c.Duration("dist-timeout"); d <= 0 {
		return fmt.Errorf("train: --dist-timeout %s: want a positive duration such as 5m", d)
	}
	return nil
}

// rankErr names the rank of a distributed worker in its error.
func rankErr(rank int, worker bool, err error) error {
	if err == nil || !worker {
		return err
	}
	return fmt.Errorf("rank %d: %w", rank, err)
}

// distWorker reads the torchrun variables; ok is false outside a
// distributed job. --nproc together with RANK (not set by launch) is an
// error: one launcher at a time.
func distWorker(c *cli.Context) (dist.Env, bool, error) {
	env, ok, err := dist.FromEnv()
	if err != nil {
		return env, false, fmt.Errorf("train: %w", err)
	}
	if ok && c.Int("nproc") > 1 && os.Getenv(envLaunched) == "" {
		return env, false, fmt.Errorf("train: --nproc %d with RANK=%d set: launch with torchrun-style variables (RANK, WORLD_SIZE, ...) or with --nproc, not both", c.Int("nproc"), env.Rank)
	}
	return env, ok && env.WorldSize > 1, nil
}

// freePort asks the kernel for a free TCP port on the loopback interface.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// launch runs n copies of this command as the ranks of a local job, with
// the torchrun variables set (MASTER_PORT from the environment or a free
// port), and waits for all of them. Ctrl-C (or TERM) is passed on to every
// worker, which stop after the same step while rank 0 saves the state; a
// second one, or workers still running a --dist-timeout after the first
// failure, are killed.
func launch(c *cli.Context, n int) error {
	if n > 4*runtime.NumCPU() {
		return fmt.Errorf("train: --nproc %d: more than %d (4 per CPU)", n, 4*runtime.NumCPU())
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("train: --nproc: cannot find this program to start its workers: %w", err)
	}
	port := 0
	if v := os.Getenv("MASTER_PORT"); v != "" {
		if port, err = strconv.Atoi(v); err != nil || port < 1 || port > 65535 {
			return fmt.Errorf("train: MASTER_PORT=%q: want a port 1-65535", v)
		}
	} else if port, err = freePort(); err != nil {
		return fmt.Errorf("train: --nproc: no free port for the workers' store: %w", err)
	}
	// Like torchrun: processes × threads should not oversubscribe the CPUs.
	threads := ""
	if c.Int("threads") == 0 && os.Getenv("OMP_NUM_THREADS") == "" {
		threads = strconv.Itoa(max(1, runtime.NumCPU()/n))
	}
	timeout := c.Duration("dist-timeout")
	cmds := make([]*exec.Cmd, n)
	for r := range n {
		cmd := exec.Command(exe, os.Args[1:]...)
		cmd.Env = append(os.Environ(), envLaunched+"=1", "RANK="+strconv.Itoa(r), "LOCAL_RANK="+strconv.Itoa(r),
			"WORLD_SIZE="+strconv.Itoa(n), "LOCAL_WORLD_SIZE="+strconv.Itoa(n), "MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port))
		if threads != "" {
			cmd.Env = append(cmd.Env, "OMP_NUM_THREADS="+threads)
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, c.App.Writer, os.Stderr
		// Their own process group: a terminal's Ctrl-C reaches the launcher,
		// which passes it on once.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			for _, started := range cmds[:r] {
				_ = started.Process.Kill()
				_ = started.Wait()
			}
			return fmt.Errorf("train: --nproc: starting rank %d: %w", r, err)
		}
		cmds[r] = cmd
	}
	type exit struct {
		rank int
		err  error
	}
	exits := make(chan exit, n)
	var wg sync.WaitGroup
	for r, cmd := range cmds {
		wg.Go(func() { exits <- exit{r, cmd.Wait()} })
	}
	signalAll := func(sig os.Signal) {
		for _, cmd := range cmds {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Signal(sig)
			}
		}
	}
	var first *exit
	interrupted := false
	done := ctxDone(c.Context)
	var kill <-chan time.Time
	for left := n; left > 0; {
		select {
		case e := <-exits:
			left--
			if e.err != nil && first == nil {
				first = &e
				if !interrupted {
					// The others notice the lost peer and stop by themselves;
					// they are killed if they do not.
					kill = time.After(timeout + 10*time.Second)
				}
			}
		case <-done:
			done = nil
			interrupted = true
			signalAll(os.Interrupt)
			// A second Ctrl-C or TERM kills at once; otherwise rank 0
			// has its time to save.
			kill = afterSignal(timeout + 30*time.Second)
		case <-kill:
			kill = nil
			signalAll(os.Kill)
		}
	}
	wg.Wait()
	switch {
	case interrupted:
		return fmt.Errorf("train: --nproc %d: interrupted: %w", n, context.Canceled)
	case first != nil:
		code := -1
		var ee *exec.ExitError
		if errors.As(first.err, &ee) {
			code = ee.ExitCode()
		}
		return fmt.Errorf("train: --nproc %d: rank %d failed (exit status %d; its error is above)", n, first.rank, code)
	}
	return nil
}

// afterSignal fires on the next Ctrl-C or TERM, or after d.
func afterSignal(d time.Duration) <-chan time.Time {
	out := make(chan time.Time, 1)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		defer signal.Stop(sig)
		select {
		case <-sig:
		case <-time.After(d):
		}
		out <- time.Now()
	}()
	return out
}

func ctxDone(ctx context.Context) <-chan struct{} {
	if ctx == nil {
		return nil
	}
	return ctx.Done()
}
