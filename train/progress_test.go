package train_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/report"
	"github.com/jmedseg/jmedseg/train"
)

// checkTestEvents checks the progress of testing: per split, test_images
// events counting up by at most a batch to the split's image count, then
// one test event with the split's foreground Dice.
func checkTestEvents(t *testing.T, events []train.Event, tests []report.Test, batch int) {
	t.Helper()
	i := 0
	for _, test := range tests {
		n, done := len(test.Metrics.PerImage), 0
		require.Positive(t, n)
		for ; i < len(events) && events[i].Kind == "test_images"; i++ {
			e := events[i]
			assert.Equal(t, test.Split, e.Split)
			assert.Equal(t, n, e.Steps)
			assert.Greater(t, e.Step, done)
			assert.LessOrEqual(t, e.Step-done, batch)
			done = e.Step
		}
		assert.Equal(t, n, done, "split %s: every image counted", test.Split)
		require.Less(t, i, len(events))
		e := events[i]
		assert.Equal(t, "test", e.Kind)
		assert.Equal(t, test.Split, e.Split)
		require.NotNil(t, e.ForegroundDSC)
		assert.Equal(t, float64(test.Metrics.Split.Foreground.Dice), *e.ForegroundDSC)
		i++
	}
	assert.Len(t, events, i, "nothing after the last split's test event")
}

func TestTestProgressEvents(t *testing.T) {
	run := t.TempDir()
	o := small(t, run)
	o.Epochs, o.LimitBatches = 1, 1
	tr, err := train.New(o)
	require.NoError(t, err)
	var events []train.Event
	tr.OnEvent = func(e train.Event) {
		if e.Kind == "test_images" || e.Kind == "test" {
			events = append(events, e)
		}
	}
	rep, err := tr.Run(context.Background())
	tr.Close()
	require.NoError(t, err)
	checkTestEvents(t, events, rep.Tests, o.Batch)

	events = nil
	rep, err = train.TestWithProgress(context.Background(), filepath.Join(run, train.BestFile), brain(t), data.OpenOptions{},
		[]string{"val", "test"}, t.TempDir(), "cpu", 3, func(e train.Event) { events = append(events, e) })
	require.NoError(t, err)
	require.Len(t, rep.Tests, 2)
	checkTestEvents(t, events, rep.Tests, 3)
}
