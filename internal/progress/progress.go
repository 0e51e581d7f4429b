// Package progress renders the command line's progress: mpb bars on a
// terminal, with lines printed above them, and the same plain lines alone
// anywhere else (pipes, files, CI), so that scripts and logs see what they
// always saw.
//
// A Bars is made per command, bars are added as work of known size starts,
// and Close, always called (defer it), aborts the bars still running,
// draws them one last time and waits for mpb's goroutines, so that what
// the command prints next (its result, or the interrupted message) starts
// on a clean line. Every method of a nil *Bar does nothing: not on a
// terminal, AddBar returns nil and callers need no second code path.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Terminal reports whether w is a terminal that can draw bars: an
// *os.File that mpb's own detection takes for a terminal (a character
// device such as /dev/null is not one), and TERM is not "dumb".
func Terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil || os.Getenv("TERM") == "dumb" {
		return false
	}
	return cupwriter.New(f, false).IsTerminal()
}

// Option configures New.
type Option func(*Bars)

// ForceTerminal draws bars whatever the writer is, width columns wide
// (tests, and writers that wrap a terminal).
func ForceTerminal(width int) Option {
	return func(b *Bars) { b.tty, b.forced, b.width = true, true, width }
}

// refreshRate redraws every d (tests; mpb's default is 150 ms).
func refreshRate(d time.Duration) Option { return func(b *Bars) { b.refresh = d } }

// barWidth is the bar's own width in columns (less on a narrow terminal).
const barWidth = 32

// Bars is the progress of one command on one writer (stderr).
type Bars struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	forced  bool
	width   int
	refresh time.Duration
	p       *mpb.Progress // started with the first bar
	bars    []*Bar
	closed  bool
}

// New renders progress on w: bars when w is a terminal (see Terminal) or
// ForceTerminal says so, else plain lines only.
func New(w io.Writer, opts ...Option) *Bars {
	b := &Bars{w: w}
	for _, o := range opts {
		o(b)
	}
	if !b.forced {
		b.tty = Terminal(w)
	}
	return b
}

// Terminal reports whether b draws bars.
func (b *Bars) Terminal() bool { return b != nil && b.tty }

// Printf prints a line (a newline is added when missing): above the bars
// while they run, else straight to the writer.
func (b *Bars) Printf(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	_, _ = b.Write([]byte(s))
}

// Write writes whole lines as Printf does; it makes b the io.Writer of a
// library's log (data.PrepareOptions.Log).
func (b *Bars) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.p != nil && !b.closed {
		// Buffered by mpb and drawn above the bars at the next refresh; a
		// direct write would be overdrawn by the bars' cursor movements.
		return b.p.Write(p)
	}
	return b.w.Write(p)
}

// BarOption configures AddBar.
type BarOption func(*barConfig)

type barConfig struct{ eta bool }

// AverageETA shows an ETA from the average rate since the bar was added
// (for work whose caller has no estimate of its own).
func AverageETA() BarOption { return func(c *barConfig) { c.eta = true } }

// AddBar adds a bar below the others, named name, with nothing done of
// nothing yet (Set gives both). Not on a terminal, or after Close, it
// returns nil, whose methods do nothing.
func (b *Bars) AddBar(name string, opts ...BarOption) *Bar {
	if b == nil {
		return nil
	}
	var cfg barConfig
	for _, o := range opts {
		o(&cfg)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.tty || b.closed {
		return nil
	}
	if b.p == nil {
		b.p = mpb.New(b.containerOptions()...)
	}
	bar := &Bar{name: name}
	appended := []decor.Decorator{
		decor.CountersNoUnit("%d/%d", decor.WCSyncWidth),
		decor.Any(func(decor.Statistics) string { return bar.text(&bar.status) }),
	}
	if cfg.eta {
		start := time.Now()
		appended = append(appended, decor.Any(func(s decor.Statistics) string { return averageETA(start, s) }))
	}
	// Total 0: mpb never completes the bar on its own, so it can go back
	// to 0 for the next epoch; Close ends it.
	bar.b = b.p.AddBar(0, mpb.BarWidth(barWidth), // one width: the bars stay aligned
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return bar.text(&bar.name) }, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(appended...))
	b.bars = append(b.bars, bar)
	return bar
}

func (b *Bars) containerOptions() []mpb.ContainerOption {
	opts := []mpb.ContainerOption{mpb.WithOutput(b.w)}
	if b.forced {
		opts = append(opts, mpb.ForceTTY(), mpb.WithAutoRefresh())
	}
	if b.width > 0 {
		opts = append(opts, mpb.WithWidth(b.width))
	}
	if b.refresh > 0 {
		opts = append(opts, mpb.WithRefreshRate(b.refresh))
	}
	return opts
}

// Close aborts the bars still running, leaving each as it stands, draws
// them and the lines printed before a last time, and waits for mpb to stop
// (no goroutine outlives it). Later lines go straight to the writer;
// later bars are nil. Close is safe to call more than once.
func (b *Bars) Close() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	if b.p == nil {
		return
	}
	for _, bar := range b.bars {
		bar.b.Abort(false)
	}
	b.p.Wait()
}

// averageETA is "  ETA 1m5s" from the mean time per item since start,
// while some but not all of the work is done and the bar runs.
func averageETA(start time.Time, s decor.Statistics) string {
	if s.Current <= 0 || s.Current >= s.Total || s.Aborted {
		return ""
	}
	per := time.Since(start) / time.Duration(s.Current)
	return "  ETA " + (per * time.Duration(s.Total-s.Current)).Round(time.Second).String()
}

// Bar is one bar: name, bar, done/total, a status text.
type Bar struct {
	b            *mpb.Bar
	mu           sync.Mutex // name and status are read by mpb's goroutines
	name, status string
}

func (b *Bar) text(s *string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return *s
}

// Set shows done of total; total may change (a new epoch, a new model).
func (b *Bar) Set(done, total int) {
	if b == nil {
		return
	}
	b.b.SetTotal(int64(max(total, 0)), false)
	b.b.SetCurrent(int64(max(done, 0)))
}

// Name is the text before the bar ("" for a nil bar).
func (b *Bar) Name() string {
	if b == nil {
		return ""
	}
	return b.text(&b.name)
}

// SetName replaces the text before the bar.
func (b *Bar) SetName(name string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.name = name
	b.mu.Unlock()
}

// SetStatus replaces the text after the counters (loss, rate, ETA).
func (b *Bar) SetStatus(status string) {
	if b == nil {
		return
	}
	if status = strings.TrimLeft(status, " "); status != "" {
		status = " " + status // one space after the counters
	}
	b.mu.Lock()
	b.status = status
	b.mu.Unlock()
}
