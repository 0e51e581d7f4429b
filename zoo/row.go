package zoo

import (
	"math"
	"strings"
	"time"

	"github.com/jmedseg/jmedseg/metric"
	"github.com/jmedseg/jmedseg/report"
)

// Row statuses.
const (
	// StatusOK: trained for every epoch and tested.
	StatusOK = "ok"
	// StatusStopped: training stopped early (a NaN loss, a timeout), and
	// the best checkpoint so far was tested; Reason and Error say why.
	StatusStopped = "stopped"
	// StatusFailed: no test results; Reason and Error say why.
	StatusFailed = "failed"
)

// Reasons a model failed or stopped.
const (
	ReasonSize    = "size"    // the protocol's size is one the model cannot take
	ReasonWidth   = "width"   // no width from the scaled one up builds the model
	ReasonOOM     = "oom"     // out of memory (an error, or killed by the kernel)
	ReasonNaN     = "nan"     // the loss became NaN or infinite
	ReasonTimeout = "timeout" // Options.Timeout passed
	ReasonCrash   = "crash"   // ended by a signal
	ReasonError   = "error"   // any other error, in Error
)

// Row is one model's line of the zoo table.
type Row struct {
	Model  string `json:"model"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
	// Width is the base width trained, RefWidth the reference's; WidthNote
	// says why Width is not the scaled reference width, when it is not.
	Width     int64  `json:"width"`
	RefWidth  int64  `json:"reference_width"`
	WidthNote string `json:"width_note,omitempty"`
	// Size is the input size trained and tested, {height, width}: the
	// protocol's, or with Protocol.FitSize the size the model takes, and
	// SizeNote why.
	Size     [2]int `json:"size"`
	SizeNote string `json:"size_note,omitempty"`
	// Params is the trainable parameter count at Width, RefParams the
	// reference's (3 input channels, 2 classes).
	Params    int64 `json:"params"`
	RefParams int64 `json:"reference_params"`
	// Epochs is the number of epochs trained, BestEpoch the one tested.
	Epochs    int `json:"epochs"`
	BestEpoch int `json:"best_epoch"`
	// SecondsPerEpoch is the mean wall time of an epoch (training and
	// validation), ImagesPerSecond the mean training throughput.
	SecondsPerEpoch metric.Score `json:"seconds_per_epoch"`
	ImagesPerSecond metric.Score `json:"images_per_second"`
	// PeakRSS is the training process's peak resident memory in bytes.
	PeakRSS int64 `json:"peak_rss_bytes"`
	// WallSeconds is the training process's wall time, tests included;
	// CPUSeconds its CPU time (user and system), steadier than the wall
	// time on a shared machine.
	WallSeconds float64 `json:"wall_seconds"`
	CPUSeconds  float64 `json:"cpu_seconds"`
	// Tests are the scores of the best checkpoint per test split.
	Tests []SplitScores `json:"tests"`
	// Run is the run directory, relative to the zoo's.
	Run string `json:"run"`
	// Prediction is the mask predicted for the figure image (relative to
	// the zoo's directory), PredictionOf that image.
	Prediction   string   `json:"prediction,omitempty"`
	PredictionOf string   `json:"prediction_of,omitempty"`
	Notes        []string `json:"notes,omitempty"`
	// Protocol is the protocol the row was made with.
	Protocol Protocol  `json:"protocol"`
	Finished time.Time `json:"finished"`
}

// SplitScores are a model's headline scores on one test split
// (report.SplitScores).
type SplitScores = report.SplitScores

// Scores returns the row's scores on split, and whether it has them.
func (r Row) Scores(split string) (SplitScores, bool) {
	for _, t := range r.Tests {
		if t.Split == split {
			return t, true
		}
	}
	return SplitScores{}, false
}

// fromReport fills the row's results from a run's report.
func (r *Row) fromReport(run *report.Run) {
	if run.Params > 0 {
		r.Params = run.Params
	}
	r.Epochs, r.BestEpoch = len(run.History), run.BestEpoch
	var secs, ips []float64
	for _, e := range run.History {
		secs = append(secs, e.Seconds)
		ips = append(ips, e.ImagesPerSecond)
	}
	r.SecondsPerEpoch, r.ImagesPerSecond = metricMean(secs), metricMean(ips)
	r.Tests = nil
	for _, t := range run.Tests {
		r.Tests = append(r.Tests, t.Scores())
	}
	for _, n := range run.Notes {
		if !strings.HasPrefix(n, "Training stopped early: ") { // Error says why
			r.Notes = append(r.Notes, n)
		}
	}
}

// collapsed reports whether a score is that of a model predicting
// (almost) only background.
func collapsed(d metric.Score) bool { return !math.IsNaN(float64(d)) && d < 0.05 }
