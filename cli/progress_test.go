package cli

import (
	"bytes"
	"flag"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/internal/progress"
	"github.com/jmedseg/jmedseg/report"
	"github.com/jmedseg/jmedseg/sas"
	"github.com/jmedseg/jmedseg/train"
	"github.com/jmedseg/jmedseg/zoo"
)

func trainEvents() []train.Event {
	d := 0.8125
	return []train.Event{
		{Kind: "info", Message: "resumed from run/last.safetensors at epoch 2, batch 1"},
		{Kind: "step", Epoch: 2, Epochs: 2, Step: 1, Steps: 2, Loss: 0.5, ImagesPerSec: 10, ETA: 3 * time.Second},
		{Kind: "step", Epoch: 2, Epochs: 2, Step: 2, Steps: 2, Loss: 0.25, ImagesPerSec: 12, ETA: time.Second},
		{Kind: "epoch", Epoch: 2, Epochs: 2, Best: true, Record: &report.Epoch{Epoch: 2, TrainLoss: 0.375, ValLoss: 0.5, ValDice: 0.75, ValIoU: 0.625, ImagesPerSecond: 11, Seconds: 1.25}},
		{Kind: "test_images", Split: "test", Step: 4, Steps: 6},
		{Kind: "test_images", Split: "test", Step: 6, Steps: 6},
		{Kind: "test", Split: "test", ForegroundDSC: &d},
	}
}

// Off a terminal, train prints what it always printed: no bars, no
// carriage returns.
func TestTrainLinesPlain(t *testing.T) {
	var buf bytes.Buffer
	bars := progress.New(&buf)
	show := trainLines(bars)
	for _, e := range trainEvents() {
		show(e)
	}
	bars.Close()
	assert.Equal(t, "resumed from run/last.safetensors at epoch 2, batch 1\n"+
		"epoch 2/2  train loss 0.3750  val loss 0.5000  val Dice 0.7500  IoU 0.6250  11.0 img/s  1.2s  *best\n"+
		"test test: foreground Dice 0.8125\n", buf.String())
}

// The --json stream keeps its shape: the last step of each epoch and
// every other event but test_images, one line each, on stdout.
func TestTrainProgressJSON(t *testing.T) {
	var stdout bytes.Buffer
	set := flag.NewFlagSet("train", flag.ContinueOnError)
	set.Bool("json", true, "")
	show, end := trainProgress(cli.NewContext(&cli.App{Writer: &stdout}, set, nil))
	for _, e := range trainEvents() {
		show(e)
	}
	end()
	var kinds []string
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		kinds = append(kinds, regexp.MustCompile(`"event":"([a-z_]+)"`).FindStringSubmatch(l)[1])
	}
	assert.Equal(t, []string{"info", "step", "epoch", "test"}, kinds)
}

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// lastFrame is the last n rows drawn on a fake terminal.
func lastFrame(out string, n int) []string {
	rows := strings.Split(strings.TrimSuffix(ansiEscape.ReplaceAllString(out, ""), "\n"), "\n")
	return rows[max(len(rows)-n, 0):]
}

// On a terminal: the same lines, above an epoch bar and a step bar, and a
// bar of the test split's images.
func TestTrainLinesBars(t *testing.T) {
	var buf lockedWriter
	bars := progress.New(&buf, progress.ForceTerminal(120))
	show := trainLines(bars)
	for _, e := range trainEvents() {
		show(e)
	}
	bars.Close()
	plain := ansiEscape.ReplaceAllString(buf.String(), "")
	assert.Contains(t, plain, "epoch 2/2  train loss 0.3750  val loss 0.5000  val Dice 0.7500  IoU 0.6250  11.0 img/s  1.2s  *best\n")
	assert.Contains(t, plain, "test test: foreground Dice 0.8125\n")
	rows := lastFrame(buf.String(), 3)
	assert.Regexp(t, `^epochs +\[=+>?\] +2/2 best val Dice 0.7500 \(epoch 2\) *$`, rows[0])
	assert.Regexp(t, `^epoch 2/2 +\[=+>?\] +2/2 loss 0.2500  12.0 img/s *$`, rows[1])
	assert.Regexp(t, `^test test +\[=+>?\] +6/6 images *$`, rows[2])
}

func zooEvents() []zoo.Event {
	row := &zoo.Row{Status: "ok", Tests: []report.SplitScores{{Split: "test", Dice: 0.75}, {Split: "test_xsubject", Dice: 0.5}}, WallSeconds: 61, PeakRSS: 300 << 20}
	return []zoo.Event{
		{Kind: "start", Message: "2 models, 1 epochs each"},
		{Kind: "skip", K: 1, N: 2, Model: "unet", Row: row},
		{Kind: "model", K: 2, N: 2, Model: "segnet", Width: 16, Params: 1_080_000, ZooETA: 90 * time.Second, Message: "width rounded up\n"},
		{Kind: "epoch", K: 2, N: 2, Model: "segnet", Epoch: 1, Epochs: 1, ETA: 0, ZooETA: 30 * time.Second,
			Record: &report.Epoch{TrainLoss: 0.5, ValDice: 0.625, ImagesPerSecond: 20, Seconds: 2}},
		{Kind: "info", K: 2, N: 2, Model: "segnet", Message: "retrying"},
		{Kind: "row", K: 2, N: 2, Model: "segnet", Row: &zoo.Row{Status: "failed", Reason: "oom", Error: "out of memory"}},
		{Kind: "info", Message: "figures drawn"},
		{Kind: "done", Message: "2 models"},
	}
}

func TestZooLinesPlain(t *testing.T) {
	var stderr, stdout bytes.Buffer
	runs := progress.NewRuns(progress.New(&stderr), "zoo")
	show := zooLines(runs, &stdout, "zooout")
	for _, e := range zooEvents() {
		show(e)
	}
	runs.Close()
	assert.Equal(t, "zoo: 2 models, 1 epochs each\n"+
		"[1/2] unet: kept from an earlier run: ok  test Dice 0.7500, test_xsubject Dice 0.5000  (1m1s, peak 300 MiB)\n"+
		"[2/2] segnet: training at width 16, 1.08 M parameters (zoo ETA 1m30s)\n"+
		"[2/2] segnet: width rounded up\n"+
		"[2/2] segnet epoch 1/1  train loss 0.5000  val Dice 0.6250  20.0 img/s  2.0 s (zoo 30s)\n"+
		"[2/2] segnet: retrying\n"+
		"[2/2] segnet: failed (oom): out of memory\n"+
		"zoo: figures drawn\n", stderr.String())
	assert.Equal(t, "zoo: 2 models: zooout/zoo.md, zooout/zoo.json\n", stdout.String())
}

func TestZooLinesBars(t *testing.T) {
	var stderr lockedWriter
	var stdout bytes.Buffer
	runs := progress.NewRuns(progress.New(&stderr, progress.ForceTerminal(120)), "zoo")
	show := zooLines(runs, &stdout, "z")
	events := zooEvents()
	for _, e := range events[:4] {
		show(e)
	}
	runs.Close()
	rows := lastFrame(stderr.String(), 2)
	assert.Regexp(t, `^zoo +\[=+>?-+\] +1/2 runs  ETA 30s *$`, rows[0])
	assert.Regexp(t, `^\[2/2\] segnet +\[=+>?\] +1/1 epochs *$`, rows[1])
	assert.Contains(t, ansiEscape.ReplaceAllString(stderr.String(), ""), "[2/2] segnet: width rounded up\n")
}

func TestExperimentLinesPlain(t *testing.T) {
	var stderr, stdout bytes.Buffer
	runs := progress.NewRuns(progress.New(&stderr), "sas")
	show := experimentLines(runs, &stdout, "exp/")
	for _, e := range []sas.Event{
		{Kind: "start", Message: "8 variants x 1 seeds"},
		{Kind: "pretrain_epoch", Seed: 1, Epoch: 1, Epochs: 2, Stats: &sas.EpochStats{Loss: 2.5, Accuracy: 0.125, Seconds: 3}},
		{Kind: "run", K: 1, N: 8, Variant: "plain", Seed: 1, Message: "training", ETA: time.Minute},
		{Kind: "epoch", K: 1, N: 8, Variant: "plain", Seed: 1, Epoch: 1, Epochs: 2, Record: &report.Epoch{TrainLoss: 0.5, ValDice: 0.25, Seconds: 1}},
		{Kind: "row", K: 1, N: 8, Variant: "plain", Seed: 1, Row: &sas.Row{Status: "ok", Tests: []sas.Scores{{Split: "test", Dice: 0.5}}, WallSeconds: 2}},
		{Kind: "info", Message: "figure drawn"},
		{Kind: "done", Message: "8 runs"},
	} {
		show(e)
	}
	runs.Close()
	assert.Equal(t, "sas: 8 variants x 1 seeds\n"+
		"sas: seed 1 pretraining epoch 1/2  contrastive loss 2.5000  positive-pair top-1 0.125  3.0 s\n"+
		"[1/8] plain seed 1: training (experiment ETA 1m0s)\n"+
		"[1/8] plain seed 1 epoch 1/2  train loss 0.5000  val Dice 0.2500  1.0 s\n"+
		"[1/8] plain seed 1: ok  test Dice 0.5000  (2s)\n"+
		"sas: figure drawn\n", stderr.String())
	assert.Equal(t, "experiment sas: 8 runs: exp/sas.md, exp/sas.json\n", stdout.String())
}

// lockedWriter is a buffer mpb's goroutine and the test share.
type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
