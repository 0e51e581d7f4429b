package train_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/augment"
	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/loss"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/report"
	"github.com/jmedseg/jmedseg/sas"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/optim"
	"github.com/jmedseg/jmedseg/train"
)

// job builds a Job from values on the brain data: unet width 4, Adam,
// cross-entropy, 3 batches per epoch.
func job(t *testing.T, epochs int) train.Job {
	t.Helper()
	ds, err := data.Open(brain(t))
	require.NoError(t, err)
	tr, err := ds.Split("train")
	require.NoError(t, err)
	val, err := ds.Split("val")
	require.NoError(t, err)
	torch.ManualSeed(3)
	m, err := models.New("unet", models.Config{InChannels: 1, Classes: 2, Width: 4})
	require.NoError(t, err)
	t.Cleanup(m.Free)
	opt, err := optim.NewAdam(optim.AdamConfig{LR: 1e-3}, optim.Params(m.Parameters()))
	require.NoError(t, err)
	t.Cleanup(opt.Free)
	trainL, err := data.NewLoader(tr, data.LoaderOptions{BatchSize: 4, Workers: 2, Shuffle: true, Seed: 1, Channels: 1, Classes: 2,
		Transform: augment.HFlip{P: 0.5}})
	require.NoError(t, err)
	valL, err := data.NewLoader(val[:8], data.LoaderOptions{BatchSize: 4, Workers: 2, Channels: 1, Classes: 2})
	require.NoError(t, err)
	return train.Job{Model: m, Optimizer: opt, Scheduler: optim.NewScheduler(opt, optim.Poly(epochs*3, 0.9)),
		Loss: loss.CrossEntropy{IgnoreIndex: loss.NoIgnore}, Train: trainL, Val: valL, Classes: []string{"background", "brain"},
		Epochs: epochs, StepsPerEpoch: 3, Device: torch.CPU}
}

// Fit trains a model the caller built, with callbacks for the epochs and
// events, and returns the history.
func TestFitJob(t *testing.T) {
	j := job(t, 2)
	before, _ := j.Model.StateDict()[0].Tensor.Float32s()
	var epochs []train.Progress
	steps := 0
	j.OnEpoch = func(p train.Progress, rec report.Epoch, best bool) error {
		epochs = append(epochs, p)
		assert.Equal(t, len(p.History), p.Epoch)
		assert.Equal(t, rec, p.History[len(p.History)-1])
		if best {
			assert.Equal(t, p.Epoch, p.BestEpoch)
		}
		return nil
	}
	j.OnEvent = func(e train.Event) {
		if e.Kind == "step" {
			steps++
		}
	}
	h, err := train.Fit(context.Background(), j)
	require.NoError(t, err)
	require.Len(t, h, 2)
	require.Len(t, epochs, 2)
	assert.Equal(t, 6, steps)
	assert.Equal(t, int64(6), epochs[1].Step)
	assert.Equal(t, 1, epochs[0].BestEpoch, "the first validated epoch is the best so far")
	for _, r := range h {
		assert.Greater(t, r.TrainLoss, 0.0)
		assert.Greater(t, r.ValLoss, 0.0)
		assert.GreaterOrEqual(t, r.ValDice, 0.0)
	}
	after, _ := j.Model.StateDict()[0].Tensor.Float32s()
	assert.NotEqual(t, before, after, "the model was trained")
	assert.True(t, j.Model.Training())

	// An error from a callback stops the job.
	j2 := job(t, 2)
	j2.OnEpoch = func(train.Progress, report.Epoch, bool) error { return errors.New("disk full") }
	h, err = train.Fit(context.Background(), j2)
	assert.ErrorContains(t, err, "disk full")
	assert.Len(t, h, 1)
}

// Interrupting a job hands over the position; a new job started there with
// the same state continues to the weights of an uninterrupted one.
func TestFitInterruptAndContinue(t *testing.T) {
	full := job(t, 2)
	full.Val = nil
	_, err := train.Fit(context.Background(), full)
	require.NoError(t, err)
	want, _ := full.Model.StateDict()[0].Tensor.Float32s()

	part := job(t, 2)
	part.Val = nil
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	part.OnEvent = func(e train.Event) {
		if e.Kind == "step" {
			if n++; n == 4 {
				cancel()
			}
		}
	}
	var at train.Progress
	part.OnInterrupt = func(p train.Progress) error { at = p; return nil }
	_, err = train.Fit(ctx, part)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, train.Progress{Epoch: 1, Batch: 1, Step: 4, History: at.History, LossSum: at.LossSum, LossBatches: 1}, at)
	assert.Positive(t, at.LossSum, "the interrupted epoch's loss so far")
	require.Len(t, at.History, 1)
	part.Start, part.OnEvent, part.OnInterrupt = at, nil, nil
	_, err = train.Fit(context.Background(), part)
	require.NoError(t, err)
	got, _ := part.Model.StateDict()[0].Tensor.Float32s()
	assert.Equal(t, want, got, "continuing in memory reaches the uninterrupted weights")
}

func TestFitBadJobs(t *testing.T) {
	j := job(t, 1)
	for name, tc := range map[string]struct {
		mod  func(*train.Job)
		want string
	}{
		"no model":  {func(j *train.Job) { j.Model = nil }, "needs a model"},
		"no loss":   {func(j *train.Job) { j.Loss = nil }, "needs a model, an optimizer, a loss"},
		"no epochs": {func(j *train.Job) { j.Epochs = 0 }, "at least 1 epoch"},
		"start":     {func(j *train.Job) { j.Start.Epoch = 3 }, "bad start"},
	} {
		t.Run(name, func(t *testing.T) {
			jj := j
			tc.mod(&jj)
			_, err := train.Fit(context.Background(), jj)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	// A loader without masks cannot train.
	ds, err := data.Open(brain(t))
	require.NoError(t, err)
	tr, err := ds.Split("train")
	require.NoError(t, err)
	j.Train, err = data.NewLoader(tr[:4], data.LoaderOptions{BatchSize: 4, Channels: 1, NoMask: true})
	require.NoError(t, err)
	_, err = train.Fit(context.Background(), j)
	assert.ErrorContains(t, err, "no masks")
}

// The normalisation a run trains with is recorded in its model file.
func TestNormalizeIsRecorded(t *testing.T) {
	out := t.TempDir()
	o := small(t, out)
	o.Epochs = 1
	o.Normalize = &models.Normalization{Mean: []float32{0.2}, Std: []float32{0.3}}
	tr, err := train.New(o)
	require.NoError(t, err)
	require.NoError(t, tr.Fit(context.Background()))
	tr.Close()
	info, err := models.ReadInfo(filepath.Join(out, train.BestFile))
	require.NoError(t, err)
	assert.Equal(t, models.Normalization{Scale: models.ScaleUnit, Mean: []float32{0.2}, Std: []float32{0.3}}, info.Norm)

	o.Normalize = &models.Normalization{Mean: []float32{0.2, 0.2, 0.2}, Std: []float32{1, 1, 1}}
	o.Force = true // out holds the first run's model
	_, err = train.New(o)
	assert.ErrorContains(t, err, "3 means for a model of 1 input channels")
}

// A pretrained encoder file initialises the encoder of a run's model.
func TestPretrainedEncoder(t *testing.T) {
	cfg := models.Config{InChannels: 1, Classes: 2, Width: 4}
	torch.ManualSeed(9)
	m, err := models.New("unet", cfg)
	require.NoError(t, err)
	defer m.Free()
	state, err := sas.EncoderState(m.(sas.Encoder), 1, [2]int{64, 64}, torch.CPU)
	require.NoError(t, err)
	enc := filepath.Join(t.TempDir(), "enc.safetensors")
	require.NoError(t, models.SaveEncoder(enc, state, models.Info{Model: "unet", Config: models.Config{InChannels: 1, Classes: 2, Width: 4}}))

	o := small(t, t.TempDir())
	o.Pretrained = enc
	o.Net.InChannels = 1
	o.Epochs = 1
	tr, err := train.New(o)
	require.NoError(t, err)
	defer tr.Close()
	want, _ := state[0].Tensor.Float32s()
	got, _ := tr.Model().StateDict()[0].Tensor.Float32s()
	assert.Equal(t, want, got, "the encoder's weights are the pretrained ones")
	var msgs []string
	tr.OnEvent = func(e train.Event) {
		if e.Kind == "info" {
			msgs = append(msgs, e.Message)
		}
	}
	require.NoError(t, tr.Fit(context.Background()))
	require.NotEmpty(t, msgs, "New's messages reach OnEvent")
	assert.Regexp(t, `^pretrained encoder .*enc.safetensors: \d+ of \d+ tensors loaded; the rest start untrained$`, msgs[0])

	o.Model, o.Force = "attunet", true // out holds the first run's model
	_, err = train.New(o)
	assert.ErrorContains(t, err, "the model (unet, not attunet) differs")
}
