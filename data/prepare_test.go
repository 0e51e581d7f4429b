package data

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	prepOnce sync.Once
	prepErr  error
)

// requireDebs makes the Debian packages available in the default cache
// (apt-get download + dpkg -x), skipping only when apt is unavailable.
func requireDebs(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("apt-get"); err != nil {
		if _, err := os.Stat("/" + mricronDir + "/ch2.nii.gz"); err != nil {
			t.Skip("apt-get is not available and mricron-data is not installed")
		}
	}
	prepOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cache := DefaultCacheDir()
		if _, prepErr = FetchDeb(ctx, PkgMricronData, mricronDir+"/ch2.nii.gz", cache); prepErr != nil {
			return
		}
		_, prepErr = FetchDeb(ctx, PkgITKExamples, itkExamplesData+"/KmeansTest_T1UCharRaw.nii.gz", cache)
	})
	require.NoError(t, prepErr)
}

func TestPrepareBrain(t *testing.T) {
	requireDebs(t)
	out := t.TempDir()
	rep, err := Prepare(context.Background(), PrepareOptions{Out: out})
	require.NoError(t, err)
	assert.Equal(t, TaskBrain, rep.Task)
	assert.Equal(t, []string{"background", "brain"}, rep.Classes)
	for _, s := range []string{SplitTrain, SplitVal, SplitTest, SplitTestXSubject} {
		assert.Greater(t, rep.Counts[s], 5, s)
	}
	assert.Greater(t, rep.Counts[SplitTrain], rep.Counts[SplitVal]+rep.Counts[SplitTest])
	assert.Positive(t, rep.SkippedEmpty)
	assert.Positive(t, rep.SkippedGuard)

	chk, err := Check(context.Background(), out, CheckOptions{Channels: 1})
	require.NoError(t, err)
	assert.True(t, chk.OK(), "%v", chk.Issues)
	assert.Equal(t, map[string]int{"128x128": rep.Counts[SplitTrain]}, chk.Splits[SplitTrain].Sizes)

	m, err := ReadManifest(out)
	require.NoError(t, err)
	require.Len(t, m.Sources, 2)
	assert.Equal(t, "RAS", m.Sources[0].Orientation)
	assert.Equal(t, "LSA", m.Sources[1].Orientation)
	// Every slice of a split is more than Guard slices from any other
	// split's slices of the same subject.
	byIndex := map[int]string{}
	for _, s := range m.Samples {
		assert.Equal(t, "axial", s.Plane)
		assert.Len(t, s.SpacingMM, 2)
		assert.Positive(t, s.Foreground)
		if s.Subject == "itk_kmeans" {
			assert.Equal(t, 1, s.Axis, "the second subject's axial axis is its stored second axis")
			assert.Equal(t, SplitTestXSubject, s.Split)
			continue
		}
		assert.Equal(t, 2, s.Axis)
		assert.InDelta(t, 1.5, s.SpacingMM[0], 0.2)
		byIndex[s.Index] = s.Split
	}
	for i, a := range byIndex {
		for j, b := range byIndex {
			if a != b {
				assert.Greater(t, abs(i-j), defaultGuard)
			}
		}
	}
	// Forced rebuild into the same directory; refused without Force.
	_, err = Prepare(context.Background(), PrepareOptions{Out: out})
	assert.ErrorContains(t, err, "not empty")
}

func abs(x int) int { return max(x, -x) }

func TestPrepareAALAndSize(t *testing.T) {
	requireDebs(t)
	out := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(out, "keep.txt"), nil, 0o644))
	var subjects []string
	done, total := 0, 0
	onSlice := func(subject string, d, n int) { // progress: 1..n for the one subject
		if len(subjects) == 0 || subjects[len(subjects)-1] != subject {
			subjects = append(subjects, subject)
		}
		assert.Equal(t, done+1, d)
		done, total = d, n
	}
	rep, err := Prepare(context.Background(), PrepareOptions{Out: out, Task: TaskAAL, Size: 64, Force: true, OnSlice: onSlice})
	require.NoError(t, err)
	assert.Len(t, subjects, 1)
	written := 0
	for _, n := range rep.Counts {
		written += n
	}
	assert.Equal(t, total, done)
	assert.Equal(t, written+rep.SkippedGuard, total, "every slice with enough brain counted once, written or a guard")
	assert.Equal(t, AALLobes, rep.Classes)
	assert.Zero(t, rep.Counts[SplitTestXSubject])
	assert.FileExists(t, filepath.Join(out, "keep.txt"), "Force removes only what Prepare writes")
	chk, err := Check(context.Background(), out, CheckOptions{})
	require.NoError(t, err)
	assert.True(t, chk.OK(), "%v", chk.Issues)
	seen := map[int]bool{}
	for _, sr := range chk.Splits {
		for c := range sr.ClassPixels {
			seen[c] = true
		}
		for size := range sr.Sizes {
			assert.Equal(t, "64x64", size)
		}
	}
	assert.Len(t, seen, len(AALLobes), "every lobe appears")
}

func TestPrepareOptions(t *testing.T) {
	for _, tc := range []struct {
		opts PrepareOptions
		err  string
	}{
		{PrepareOptions{}, "no output directory"},
		{PrepareOptions{Out: "x", Task: "lungs"}, "unknown task"},
		{PrepareOptions{Out: "x", Size: 8}, "size 8"},
		{PrepareOptions{Out: "x", Slab: 3, Guard: 3}, "guard"},
	} {
		_, err := Prepare(context.Background(), tc.opts)
		assert.ErrorContains(t, err, tc.err)
	}
}

func TestAAL(t *testing.T) {
	assert.Equal(t, int32(1), AALLobeOf("Frontal_Sup_L"))
	assert.Equal(t, int32(7), AALLobeOf("Vermis_10"))
	assert.Equal(t, int32(-1), AALLobeOf("Nowhere"))
	p := AALFlipPairs()
	assert.Len(t, p, 54)
	assert.Equal(t, [2]int{107, 108}, p[53])
}
