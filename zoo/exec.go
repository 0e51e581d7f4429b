package zoo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Runner runs one jmedseg command (args after the program name) in a child
// process: each line the child writes to stdout goes to onLine, in order,
// from one goroutine; stdout and stderr both go to log. Cancelling ctx
// interrupts the child (SIGINT, so that training saves its state), then
// kills it if it has not exited within a grace period. The error is only
// for a child that could not be started or waited for; how it ended is in
// the Exit.
type Runner interface {
	Run(ctx context.Context, args []string, onLine func(line []byte), log io.Writer) (Exit, error)
}

// Exit is how a child process ended.
type Exit struct {
	// Code is the exit status; -1 when a signal ended the process.
	Code int
	// Signal names the signal that ended it ("killed"), if one did.
	Signal string
	// PeakRSS is the child's peak resident set size in bytes (its VmHWM,
	// from the kernel's rusage); 0 when unknown.
	PeakRSS int64
	// Wall is the child's wall-clock time, CPU its user and system CPU
	// time (on a shared machine a steadier measure of its cost).
	Wall, CPU time.Duration
	// Stderr is the end of what the child wrote to stderr.
	Stderr string
}

// ErrorLine is the child's error message: the last stderr line starting
// "jmedseg: " (without it), else the last non-empty line.
func (e Exit) ErrorLine() string {
	lines := strings.Split(strings.ReplaceAll(e.Stderr, "\r", "\n"), "\n")
	last := ""
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if msg, ok := strings.CutPrefix(l, "jmedseg: "); ok {
			return msg
		}
		if last == "" && l != "" {
			last = l
		}
	}
	return last
}

// ExecRunner runs children as the program Exe, normally the running
// jmedseg binary (os.Executable()).
type ExecRunner struct {
	Exe string
	// Grace is how long an interrupted child may take to save its state
	// and exit before it is killed; 0 is one minute.
	Grace time.Duration
}

// stderrTail is how much of a child's stderr an Exit keeps.
const stderrTail = 16 << 10

// Run implements Runner.
func (r ExecRunner) Run(ctx context.Context, args []string, onLine func(line []byte), log io.Writer) (Exit, error) {
	if log == nil {
		log = io.Discard
	}
	cmd := exec.CommandContext(ctx, r.Exe, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = r.Grace
	if cmd.WaitDelay <= 0 {
		cmd.WaitDelay = time.Minute
	}
	tail := &tailBuffer{max: stderrTail}
	lw := &lockedWriter{w: log}
	cmd.Stderr = io.MultiWriter(lw, tail)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return Exit{}, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Exit{}, fmt.Errorf("zoo: starting %s: %w", r.Exe, err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		lw.Write(append(append([]byte(nil), line...), '\n'))
		if onLine != nil {
			onLine(line)
		}
	}
	io.Copy(io.Discard, out) // a line too long for the scanner: drain the rest
	werr := cmd.Wait()
	ex := Exit{Wall: time.Since(start), Stderr: tail.String()}
	ps := cmd.ProcessState
	if ps == nil {
		return ex, fmt.Errorf("zoo: waiting for %s: %w", r.Exe, werr)
	}
	ex.Code = ps.ExitCode()
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		ex.Signal = ws.Signal().String()
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		ex.PeakRSS = ru.Maxrss * 1024 // kilobytes on Linux
		ex.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return ex, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// lockedWriter serialises the writes of a child's stdout and stderr.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
