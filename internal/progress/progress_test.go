package progress

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lockedBuffer is a bytes.Buffer mpb's goroutine and the test may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// noLeak fails t when goroutines started after before outlive Close.
func noLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), before, "goroutines left after Close")
}

// lastRows are the last n lines of s (the last frame of n bars).
func lastRows(s string, n int) []string {
	rows := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return rows[max(len(rows)-n, 0):]
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

func TestPlainLines(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf)
	require.False(t, b.Terminal(), "a bytes.Buffer is no terminal")
	bar := b.AddBar("epoch", AverageETA())
	assert.Nil(t, bar, "no bars off a terminal")
	bar.Set(1, 2) // nil bars do nothing
	bar.SetName("x")
	bar.SetStatus("y")
	b.Printf("epoch %d/%d  loss %.4f", 1, 2, 0.5)
	_, err := io.WriteString(b, "a log line\n")
	require.NoError(t, err)
	r := NewRuns(b, "zoo")
	for _, e := range []RunEvent{
		{Kind: Note, Line: "zoo: 2 models"},
		{Kind: RunStarted, K: 1, N: 2, Name: "unet", Line: "[1/2] unet: training"},
		{Kind: RunEpoch, K: 1, N: 2, Epoch: 1, Epochs: 3, Line: "[1/2] unet epoch 1/3"},
		{Kind: RunEpoch, K: 1, N: 2, Epoch: 2, Epochs: 3}, // no line: nothing printed
		{Kind: RunEnded, K: 1, N: 2, Line: "[1/2] unet: ok"},
	} {
		r.Show(e)
	}
	r.Close()
	b.Close() // twice is fine
	b.Printf("after close")
	assert.Equal(t, "epoch 1/2  loss 0.5000\na log line\nzoo: 2 models\n[1/2] unet: training\n[1/2] unet epoch 1/3\n[1/2] unet: ok\nafter close\n", buf.String())
}

func TestTerminalDetection(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer null.Close()
	tests := []struct {
		name string
		w    io.Writer
	}{{"pipe", w}, {"/dev/null (a character device)", null}, {"buffer", &bytes.Buffer{}}, {"nil file", (*os.File)(nil)}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.False(t, Terminal(tc.w))
			assert.Nil(t, New(tc.w).AddBar("x"))
		})
	}
}

// TestBars drives mpb with a fake terminal of 80 columns: the bars are
// drawn, lines printed meanwhile come out above them in order, and
// Close leaves no goroutine behind.
func TestBars(t *testing.T) {
	before := runtime.NumGoroutine()
	var buf lockedBuffer
	b := New(&buf, ForceTerminal(80), refreshRate(2*time.Millisecond))
	b.Printf("before any bar")
	epochs := b.AddBar("epochs")
	steps := b.AddBar("epoch 1/2", AverageETA())
	require.NotNil(t, epochs)
	epochs.Set(0, 2)
	for s := 1; s <= 4; s++ {
		steps.Set(s, 10)
		steps.SetStatus("loss 0.1234")
		time.Sleep(5 * time.Millisecond)
	}
	b.Printf("epoch 1/2  train loss 0.1234")
	epochs.Set(1, 2)
	steps.SetName("epoch 2/2")
	steps.Set(3, 10)
	b.Printf("interrupted line")
	b.Close()
	assert.Nil(t, b.AddBar("late"), "no bars after Close")
	b.Printf("after close")
	noLeak(t, before)

	out := buf.String()
	plain := ansi.ReplaceAllString(out, "")
	assert.Contains(t, out, "\x1b[", "cursor movements on a terminal")
	for _, want := range []string{"before any bar\n", "epoch 1/2  train loss 0.1234\n", "interrupted line\n"} {
		assert.Equal(t, 1, strings.Count(plain, want), "line %q printed once: %q", want, plain)
	}
	assert.Less(t, strings.Index(plain, "before any bar"), strings.Index(plain, "epoch 1/2  train loss"))
	assert.Less(t, strings.Index(plain, "epoch 1/2  train loss"), strings.Index(plain, "interrupted line"))
	assert.True(t, strings.HasSuffix(plain, "after close\n"), "later lines straight after the bars: %q", plain)
	// The last frame, drawn by Close: both bars as they stood, one line each.
	rows := lastRows(plain[:len(plain)-len("after close\n")], 2)
	assert.Regexp(t, `^epochs +\[=+>?-+\] +1/2 *$`, rows[0])
	assert.Regexp(t, `^epoch 2/2 +\[=+>?-+\] +3/10 loss 0.1234 *$`, rows[1])
	assert.Equal(t, strings.Index(rows[0], "["), strings.Index(rows[1], "["), "bars aligned")
	assert.Equal(t, strings.Index(rows[0], "]"), strings.Index(rows[1], "]"), "bars of one width")
	for _, r := range rows {
		assert.LessOrEqual(t, len(r), 80, "within the width")
	}
	assert.Regexp(t, `epoch 1/2 +\[=+>?-+\] +4/10 loss 0.1234  ETA \d+s\n`, plain, "the ETA while running")
}

// TestRunsBars shows a zoo-like sequence on a fake terminal.
func TestRunsBars(t *testing.T) {
	var buf lockedBuffer
	b := New(&buf, ForceTerminal(100), refreshRate(2*time.Millisecond))
	r := NewRuns(b, "zoo")
	r.Show(RunEvent{Kind: Note, Line: "zoo: 2 models"})
	r.Show(RunEvent{Kind: RunStarted, K: 1, N: 2, Name: "unet", Line: "[1/2] unet: training"})
	r.Show(RunEvent{Kind: RunEpoch, K: 1, N: 2, Epoch: 1, Epochs: 3, ETA: 2 * time.Second, TotalETA: 9 * time.Second})
	r.Show(RunEvent{Kind: RunEnded, K: 1, N: 2, TotalETA: 4 * time.Second, Line: "[1/2] unet: ok"})
	r.Show(RunEvent{Kind: RunStarted, K: 2, N: 2, Name: "segnet"})
	r.Show(RunEvent{Kind: RunEpoch, K: 2, N: 2, Epoch: 2, Epochs: 3, ETA: time.Second})
	r.Close()
	plain := ansi.ReplaceAllString(buf.String(), "")
	rows := lastRows(plain, 2)
	assert.Regexp(t, `^zoo +\[=+>?-+\] +1/2 runs  ETA 4s *$`, rows[0])
	assert.Regexp(t, `^\[2/2\] segnet +\[=+>?-+\] +2/3 epochs  ETA 1s *$`, rows[1])
}

// TestPseudoTerminal draws on a real terminal (a pty of 60 columns):
// mpb's own detection and terminal size.
func TestPseudoTerminal(t *testing.T) {
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer master.Close()
	require.NoError(t, pty.Setsize(tty, &pty.Winsize{Rows: 24, Cols: 60}))
	var out lockedBuffer
	read := make(chan struct{})
	go func() { _, _ = io.Copy(&out, master); close(read) }()

	t.Setenv("TERM", "xterm")
	require.True(t, Terminal(tty))
	b := New(tty, refreshRate(2*time.Millisecond))
	require.True(t, b.Terminal())
	bar := b.AddBar("test images", AverageETA())
	require.NotNil(t, bar)
	for i := 1; i <= 3; i++ {
		bar.Set(i, 8)
		time.Sleep(5 * time.Millisecond)
	}
	b.Printf("a line above")
	b.Close()
	b.Printf("done")
	require.NoError(t, tty.Close())
	select {
	case <-read:
	case <-time.After(5 * time.Second):
		t.Fatal("the pty did not drain")
	}
	plain := strings.ReplaceAll(ansi.ReplaceAllString(out.String(), ""), "\r", "")
	assert.Contains(t, plain, "a line above\n")
	assert.Regexp(t, `test images +\[=+>?-+\] 3/8 *\n`, plain)
	assert.True(t, strings.HasSuffix(plain, "done\n"), "%q", plain)
	for _, l := range strings.Split(plain, "\n") {
		assert.LessOrEqual(t, len([]rune(l)), 60, "a row wider than the terminal: %q", l)
	}

	t.Setenv("TERM", "dumb")
	assert.False(t, Terminal(master), "TERM=dumb draws no bars")
}

// TestConcurrent prints, moves bars and closes from several goroutines
// (run with -race).
func TestConcurrent(t *testing.T) {
	before := runtime.NumGoroutine()
	var buf lockedBuffer
	b := New(&buf, ForceTerminal(60), refreshRate(time.Millisecond))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bar := b.AddBar("g")
			for i := range 50 {
				bar.Set(i, 50)
				bar.SetStatus("s")
				b.Printf("goroutine %d line %d", g, i)
			}
		}()
	}
	wg.Wait()
	b.Close()
	noLeak(t, before)
	plain := ansi.ReplaceAllString(buf.String(), "")
	assert.Equal(t, 200, strings.Count(plain, " line "), "every line printed once")
}
