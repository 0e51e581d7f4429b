package progress

import (
	"fmt"
	"time"
)

// RunKind says what a RunEvent is.
type RunKind int

// The kinds of RunEvent.
const (
	Note       RunKind = iota // a line only
	RunStarted                // run K of N starts training
	RunEpoch                  // the current run finished an epoch
	RunEnded                  // run K finished, failed, or was kept from an earlier invocation
)

// RunEvent is an event of a sequence of training runs (the zoo's models,
// an experiment's variant and seed pairs) in the terms both share.
type RunEvent struct {
	Kind          RunKind
	K, N          int    // the run's place in the sequence, 1-based
	Name          string // the run ("unet", "aug seed 2")
	Epoch, Epochs int
	ETA           time.Duration // the run's remaining time, when known
	TotalETA      time.Duration // the whole sequence's, when known
	Line          string        // printed in both modes; "" for none
}

// Runs shows a sequence of runs: each event's line and, on a terminal, a
// bar over the runs and one over the current run's epochs.
type Runs struct {
	bars     *Bars
	what     string
	all, run *Bar
}

// NewRuns shows runs on bars; what names the sequence ("zoo", "sas").
func NewRuns(bars *Bars, what string) *Runs { return &Runs{bars: bars, what: what} }

// Show prints e's line and moves the bars.
func (r *Runs) Show(e RunEvent) {
	if e.Line != "" {
		r.bars.Printf("%s", e.Line)
	}
	if e.Kind == Note || e.N <= 0 || !r.bars.Terminal() {
		return
	}
	if r.all == nil {
		r.all = r.bars.AddBar(r.what)
		r.run = r.bars.AddBar("")
	}
	switch e.Kind {
	case RunStarted:
		r.all.Set(e.K-1, e.N)
		r.run.SetName(fmt.Sprintf("[%d/%d] %s", e.K, e.N, e.Name))
		r.run.Set(0, 0)
		r.run.SetStatus("epochs")
	case RunEpoch:
		r.run.Set(e.Epoch, e.Epochs)
		r.run.SetStatus("epochs" + eta("  ETA %s", e.ETA))
	case RunEnded:
		r.all.Set(e.K, e.N)
	}
	switch {
	case e.TotalETA > 0: // not every event carries it: keep the last
		r.all.SetStatus("runs" + eta("  ETA %s", e.TotalETA))
	case e.Kind == RunEnded && e.K == e.N, e.Kind == RunStarted && e.K == 1:
		r.all.SetStatus("runs")
	}
}

// Close ends the bars (see Bars.Close).
func (r *Runs) Close() { r.bars.Close() }

// eta formats a positive duration into format, else nothing.
func eta(format string, d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return fmt.Sprintf(format, d.Round(time.Second))
}
