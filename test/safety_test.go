package test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 12, data loss: nothing a person made (a trained model, its report,
// input images, a split) is overwritten without an explicit flag.

var (
	trainedOnce sync.Once
	trainedDS   string // a 64x64 brain data set
	trainedRun  string // a run directory trained on it (1 epoch)
	trainedErr  string
)

// trained prepares a small data set and trains one tiny run in it, once per
// test binary. Tests that change either copy them first.
func trained(t *testing.T) (ds, runDir string) {
	t.Helper()
	trainedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jmedseg-safety-")
		if err != nil {
			trainedErr = err.Error()
			return
		}
		trainedDS, trainedRun = filepath.Join(dir, "brain"), filepath.Join(dir, "run")
		if _, se, code := run(t, "data", "prepare", "--out", trainedDS, "--size", "64"); code != 0 {
			trainedErr = "data prepare: " + se
			return
		}
		if _, se, code := run(t, "train", "--data", trainedDS, "--out", trainedRun, "--width", "4", "--epochs", "1", "--batch", "4",
			"--limit-batches", "1", "--threads", "1"); code != 0 {
			trainedErr = "train: " + se
		}
	})
	require.Empty(t, trainedErr)
	return trainedDS, trainedRun
}

// copyDir copies a directory tree of regular files.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	}))
}

// readAll returns the SHA-256 of each file.
func readAll(t *testing.T, files ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		out[f] = fmt.Sprintf("%x", sha256.Sum256(b))
	}
	return out
}

func noPanic(t *testing.T, stderr string) {
	t.Helper()
	assert.NotContains(t, stderr, "panic")
	assert.NotContains(t, stderr, "goroutine")
}

// train --out RUN where RUN already holds a trained model, without
// --resume: refused, naming the file and the flags; nothing changes. With
// --force a run that fails before finishing an epoch leaves the old model
// and report as they were.
func TestTrainRefusesTrainedRunDir(t *testing.T) {
	ds, src := trained(t)
	runDir := filepath.Join(t.TempDir(), "run")
	copyDir(t, src, runDir)
	files := []string{filepath.Join(runDir, "best.safetensors"), filepath.Join(runDir, "last.safetensors"),
		filepath.Join(runDir, "report.md"), filepath.Join(runDir, "report.json")}
	before := readAll(t, files...)

	_, se, code := run(t, "train", "--data", ds, "--out", runDir, "--width", "4", "--epochs", "1", "--batch", "4",
		"--limit-batches", "1", "--threads", "1")
	assert.Equal(t, 1, code, se)
	assert.Contains(t, se, filepath.Join(runDir, "best.safetensors"))
	assert.Contains(t, se, "--resume")
	assert.Contains(t, se, "--force")
	noPanic(t, se)
	assert.Equal(t, before, readAll(t, files...), "a refused run changes nothing")

	// Only last.safetensors (a run interrupted before its first best): refused too.
	only := filepath.Join(t.TempDir(), "run")
	require.NoError(t, os.MkdirAll(only, 0o755))
	copyDir(t, filepath.Join(runDir), only)
	require.NoError(t, os.Remove(filepath.Join(only, "best.safetensors")))
	_, se, code = run(t, "train", "--data", ds, "--out", only, "--width", "4", "--epochs", "1", "--threads", "1")
	assert.Equal(t, 1, code, se)
	assert.Contains(t, se, filepath.Join(only, "last.safetensors"))

	// --force with a run that fails in its first epoch (SGD at lr 1e30: a
	// non-finite loss at batch 2): exit 1, the old model and report untouched.
	_, se, code = run(t, "train", "--data", ds, "--out", runDir, "--width", "4", "--epochs", "1", "--batch", "4",
		"--limit-batches", "3", "--threads", "1", "--force", "--optimizer", "sgd", "--lr", "1e30")
	assert.Equal(t, 1, code, se)
	assert.Contains(t, se, "not finite")
	noPanic(t, se)
	assert.Equal(t, before, readAll(t, files...), "a failed run rewrites no report and no model")

	// --force with a run that trains replaces them.
	_, se, code = run(t, "train", "--data", ds, "--out", runDir, "--width", "4", "--epochs", "1", "--batch", "4",
		"--limit-batches", "1", "--threads", "1", "--force", "--seed", "3")
	require.Equal(t, 0, code, se)
	after := readAll(t, files...)
	assert.NotEqual(t, before[files[0]], after[files[0]], "--force replaced best.safetensors")
}

// predict never writes a mask over its own input.
func TestPredictRefusesOverwritingInput(t *testing.T) {
	ds, runDir := trained(t)
	best := filepath.Join(runDir, "best.safetensors")
	in := filepath.Join(t.TempDir(), "images")
	copyDir(t, filepath.Join(ds, "test", "images"), in)
	entries, err := os.ReadDir(in)
	require.NoError(t, err)
	var files []string
	for _, e := range entries {
		files = append(files, filepath.Join(in, e.Name()))
	}
	before := readAll(t, files...)
	one := files[0]

	cases := []struct {
		name          string
		input, output string
	}{
		{"file onto itself", one, one},
		{"file onto itself, another spelling", one, filepath.Join(in, ".", "..", "images", filepath.Base(one))},
		{"directory onto itself", in, in},
		{"directory onto itself, trailing slash", in, in + "/"},
	}
	link := filepath.Join(t.TempDir(), "link")
	if os.Symlink(in, link) == nil {
		cases = append(cases, struct{ name, input, output string }{"directory onto a link to itself", in, link})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, se, code := run(t, "predict", "--checkpoint", best, "--input", tc.input, "--output", tc.output)
			assert.Equal(t, 1, code, se)
			assert.Contains(t, se, "--output")
			assert.Contains(t, se, "--input")
			noPanic(t, se)
			assert.Equal(t, before, readAll(t, files...), "the inputs are unchanged")
		})
	}
}

// data shift --to never replaces an existing split without --force, and
// never writes outside the data set.
func TestDataShiftRefuses(t *testing.T) {
	src, _ := trained(t)
	ds := filepath.Join(t.TempDir(), "brain")
	copyDir(t, src, ds)
	trainImgs, err := filepath.Glob(filepath.Join(ds, "train", "images", "*"))
	require.NoError(t, err)
	manifest := filepath.Join(ds, "dataset.json")
	before := readAll(t, append(trainImgs, manifest)...)

	_, se, code := run(t, "data", "shift", "--data", ds, "--from", "test", "--to", "train")
	assert.Equal(t, 1, code, se)
	assert.Contains(t, se, `"train"`)
	assert.Contains(t, se, "--force")
	noPanic(t, se)
	after, err := filepath.Glob(filepath.Join(ds, "train", "images", "*"))
	require.NoError(t, err)
	assert.Equal(t, trainImgs, after, "no image added to train")
	assert.Equal(t, before, readAll(t, append(trainImgs, manifest)...))

	outside := filepath.Join(filepath.Dir(ds), "x")
	for _, to := range []string{"../x", "../../x", "a/b", "..", ".", "", "/tmp/x", `a\b`} {
		_, se, code := run(t, "data", "shift", "--data", ds, "--from", "test", "--to", to)
		assert.Equal(t, 1, code, "--to %q: %s", to, se)
		assert.Contains(t, se, "--to", to)
		noPanic(t, se)
	}
	assert.NoDirExists(t, outside)
	assert.Equal(t, before, readAll(t, append(trainImgs, manifest)...))

	// A new split is written; writing it again needs --force.
	_, se, code = run(t, "data", "shift", "--data", ds, "--from", "test", "--to", "test_phone")
	require.Equal(t, 0, code, se)
	_, se, code = run(t, "data", "shift", "--data", ds, "--from", "test", "--to", "test_phone")
	assert.Equal(t, 1, code, se)
	assert.Contains(t, se, "--force")
	_, se, code = run(t, "data", "shift", "--data", ds, "--from", "test", "--to", "test_phone", "--force", "--seed", "2")
	require.Equal(t, 0, code, se)
	out, se, code := run(t, "data", "check", ds)
	require.Equal(t, 0, code, se+out)
	assert.True(t, strings.Contains(out, "no problems"), out)
}

// Issue 12, crashes, flags and unclear errors: each bad value is refused
// at start, naming the flag, with no panic and before any epoch.
func TestBadFlagsEndToEnd(t *testing.T) {
	ds, _ := trained(t)
	tmp := t.TempDir()
	unwritable := filepath.Join(tmp, "ro")
	require.NoError(t, os.Mkdir(unwritable, 0o555))
	if f, err := os.CreateTemp(unwritable, "x"); err == nil { // root ignores the mode
		f.Close()
		os.Remove(f.Name())
		unwritable = "/proc/self"
	}
	train := func(extra ...string) []string {
		return append([]string{"train", "--data", ds, "--out", filepath.Join(tmp, "run"), "--width", "4", "--epochs", "1",
			"--limit-batches", "1", "--threads", "1"}, extra...)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"weight decay adam", train("--weight-decay", "-1"), []string{"--weight-decay -1"}},
		{"weight decay adamw", train("--weight-decay", "-1", "--optimizer", "adamw"), []string{"--weight-decay -1"}},
		{"weight decay sgd", train("--weight-decay", "-1", "--optimizer", "sgd"), []string{"--weight-decay -1"}},
		{"threads 100000", train("--threads", "100000"), []string{"--threads 100000", "per CPU"}},
		{"threads 2000", train("--threads", "2000"), []string{"--threads 2000"}},
		{"threads -1", train("--threads", "-1"), []string{"--threads -1"}},
		{"epochs 0", train("--epochs", "0"), []string{"--epochs 0"}},
		{"batch 0", train("--batch", "0"), []string{"--batch 0"}},
		{"lr NaN", train("--lr", "NaN"), []string{"--lr NaN"}},
		{"loss weight 0", train("--loss", "ce:0"), []string{"--loss", "bad weight"}},
		{"loss weight NaN", train("--loss", "ce:NaN"), []string{"--loss", "bad weight"}},
		{"smoothing 2", train("--loss", "ce(smoothing=2)"), []string{"--loss", "smoothing=2"}},
		{"smoothing -1", train("--loss", "ce(smoothing=-1)"), []string{"--loss", "smoothing=-1"}},
		{"focal alpha 5", train("--loss", "focal(alpha=5)"), []string{"--loss", "alpha=5"}},
		{"dice smooth -1", train("--loss", "dice(smooth=-1)"), []string{"--loss", "smooth=-1"}},
		{"class weights", train("--loss", "ce(weight=0.2/0.3/0.5)"), []string{"--loss", "3 class weights for 2 classes"}},
		{"unwritable out", []string{"train", "--data", ds, "--out", unwritable, "--width", "4", "--epochs", "1", "--threads", "1"},
			[]string{"--out", "not writable"}},
		{"test batch 0", []string{"test", "--checkpoint", "x", "--data", ds, "--out", tmp, "--batch", "0"}, []string{"--batch 0"}},
		{"bench threads", []string{"bench", "--threads", "100000"}, []string{"--threads 100000"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, se, code := run(t, tc.args...)
			assert.Equal(t, 1, code, se)
			for _, w := range tc.want {
				assert.Contains(t, se, w)
			}
			assert.NotContains(t, se, "epoch 1", "refused before training")
			noPanic(t, se)
		})
	}

	// data check DIR --json: the flag after the directory is a flag.
	out, se, code := run(t, "data", "check", ds, "--json")
	require.Equal(t, 0, code, se)
	assert.True(t, strings.HasPrefix(strings.TrimSpace(out), "{"), out)

	// data prepare into a non-empty directory names the flag --force.
	_, se, code = run(t, "data", "prepare", "--out", ds, "--size", "64")
	assert.Equal(t, 1, code)
	assert.Contains(t, se, "--force")
	assert.NotContains(t, se, "use Force")
}
