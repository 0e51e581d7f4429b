// Package test holds end-to-end tests of the jmedseg command.
package test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/data/nifti"
	"github.com/jmedseg/jmedseg/torch"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jmedseg-bin-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "jmedseg")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/jmedseg").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run executes jmedseg and returns stdout, stderr and the exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var so, se strings.Builder
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return so.String(), se.String(), code
}

func TestModelsJSON(t *testing.T) {
	out, _, code := run(t, "models", "--json")
	require.Equal(t, 0, code)
	var rows []struct {
		Name      string `json:"name"`
		Params    int64  `json:"params"`
		RefParams int64  `json:"reference_params"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	require.GreaterOrEqual(t, len(rows), 4)
	for _, r := range rows {
		assert.Equal(t, r.RefParams, r.Params, r.Name)
	}
}

// The whole workflow on the real brain data at a small size: prepare,
// check, train, test, predict (PNG, NPY and NIfTI), bench.
func TestWorkflow(t *testing.T) {
	tmp := t.TempDir()
	ds := filepath.Join(tmp, "brain")
	_, se, code := run(t, "data", "prepare", "--out", ds, "--size", "64")
	require.Equal(t, 0, code, se)
	out, se, code := run(t, "data", "check", ds)
	require.Equal(t, 0, code, se)
	assert.Contains(t, out, "no problems")

	runDir := filepath.Join(tmp, "run")
	out, se, code = run(t, "train", "--data", ds, "--out", runDir, "--width", "4", "--epochs", "1", "--batch", "4",
		"--limit-batches", "2", "--threads", "1", "--json")
	require.Equal(t, 0, code, se)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var last map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.Join(lines[len(lines)-1:], "")), &last), out)
	assert.Contains(t, out, `"event":"epoch"`)
	for _, f := range []string{"best.safetensors", "last.safetensors", "report.md", "report.json", "loss.png"} {
		assert.FileExists(t, filepath.Join(runDir, f))
	}
	best := filepath.Join(runDir, "best.safetensors")

	out, se, code = run(t, "test", "--checkpoint", best, "--data", ds, "--split", "test_xsubject", "--out", filepath.Join(tmp, "eval"))
	require.Equal(t, 0, code, se)
	assert.Contains(t, out, "test_xsubject")

	img := filepath.Join(ds, "test", "images")
	entries, err := os.ReadDir(img)
	require.NoError(t, err)
	one := filepath.Join(img, entries[0].Name())
	_, se, code = run(t, "predict", "--checkpoint", best, "--input", one, "--output", filepath.Join(tmp, "p.png"))
	require.Equal(t, 0, code, se)
	m, err := data.ReadMask(filepath.Join(tmp, "p.png"))
	require.NoError(t, err)
	assert.Equal(t, 64, m.W)
	_, se, code = run(t, "predict", "--checkpoint", best, "--input", img, "--output", filepath.Join(tmp, "pdir"), "--format", "npy")
	require.Equal(t, 0, code, se)
	npys, _ := filepath.Glob(filepath.Join(tmp, "pdir", "*.npy"))
	assert.Len(t, npys, len(entries))

	vol := "/usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz"
	if _, err := os.Stat(vol); err != nil && os.Getenv("CI") != "" {
		t.Fatalf("%s missing on CI (make setup installs insighttoolkit5-examples): %v", vol, err)
	}
	if _, err := os.Stat(vol); err == nil {
		outVol := filepath.Join(tmp, "mask.nii.gz")
		_, se, code = run(t, "predict", "--checkpoint", best, "--input", vol, "--output", outVol)
		require.Equal(t, 0, code, se)
		in, err := nifti.ReadFile(vol)
		require.NoError(t, err)
		got, err := nifti.ReadFile(outVol)
		require.NoError(t, err)
		assert.Equal(t, in.Dim, got.Dim, "same grid")
		assert.Equal(t, in.Affine, got.Affine, "same geometry")
		for _, v := range got.Data {
			require.True(t, v == 0 || v == 1, "labels are class ids")
		}
	}

	out, se, code = run(t, "bench", "--model", "unet", "--width", "4", "--batch", "2", "--size", "64", "--steps", "2", "--json")
	require.Equal(t, 0, code, se)
	var b map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &b))
	for _, k := range []string{"model", "params", "step_seconds_median", "peak_rss_bytes"} {
		assert.Contains(t, b, k)
	}
}

func TestClearErrors(t *testing.T) {
	tmp := t.TempDir()
	bad := filepath.Join(tmp, "bad.safetensors")
	require.NoError(t, os.WriteFile(bad, []byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":"), 0o644))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown model", []string{"train", "--model", "nope", "--data", tmp, "--out", tmp}, `unknown model "nope"`},
		{"missing data", []string{"train", "--data", filepath.Join(tmp, "none"), "--out", tmp}, filepath.Join(tmp, "none")},
		{"truncated checkpoint", []string{"predict", "--checkpoint", bad, "--input", bad, "--output", tmp}, "bad.safetensors"},
		{"missing checkpoint", []string{"test", "--checkpoint", filepath.Join(tmp, "x"), "--data", tmp, "--out", tmp}, "x"},
		{"bad loss", []string{"train", "--loss", "ce:q", "--data", tmp, "--out", tmp}, "bad weight"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, se, code := run(t, tc.args...)
			assert.Equal(t, 1, code)
			assert.Contains(t, se, tc.want)
			assert.NotContains(t, se, "panic")
			assert.NotContains(t, se, "goroutine")
		})
	}
}

// --device cuda where libtorch has no CUDA is a clear error, never a silent
// fall-back to the CPU; where CUDA is available it is accepted.
func TestDeviceCUDA(t *testing.T) {
	out, se, code := run(t, "models", "--device", "cuda", "--json")
	if torch.CUDAAvailable() {
		require.Equal(t, 0, code, se)
		assert.Contains(t, out, `"unet"`)
		return
	}
	assert.Equal(t, 1, code)
	assert.Contains(t, se, "CUDA")
	assert.NotContains(t, se, "panic")
	assert.NotContains(t, se, "goroutine")
}

// The SAS recipe from the command line: pretrain the encoder, then train
// with the pretrained weights, the SAS augmentation and the STN.
func TestSASRecipe(t *testing.T) {
	tmp := t.TempDir()
	ds := filepath.Join(tmp, "brain")
	_, se, code := run(t, "data", "prepare", "--out", ds, "--size", "64")
	require.Equal(t, 0, code, se)
	enc := filepath.Join(tmp, "pre", "encoder.safetensors")
	_, se, code = run(t, "pretrain", "--data", ds, "--out", enc, "--width", "4", "--epochs", "1", "--queue", "16", "--threads", "1")
	require.Equal(t, 0, code, se)
	assert.Contains(t, se, "contrastive loss")
	runDir := filepath.Join(tmp, "run")
	out, se, code := run(t, "train", "--data", ds, "--out", runDir, "--width", "4", "--epochs", "1", "--limit-batches", "2",
		"--pretrained", enc, "--aug", "--stn", "--threads", "1")
	require.Equal(t, 0, code, se)
	assert.Contains(t, out, "test_xsubject")
	// the STN model reloads for prediction
	img, _ := filepath.Glob(filepath.Join(ds, "test", "images", "*.png"))
	_, se, code = run(t, "predict", "--checkpoint", filepath.Join(runDir, "best.safetensors"), "--input", img[0], "--output", filepath.Join(tmp, "p.png"))
	require.Equal(t, 0, code, se)

	_, se, code = run(t, "pretrain", "--model", "setr", "--data", ds, "--out", enc, "--width", "32")
	assert.Equal(t, 1, code)
	assert.Contains(t, se, "no encoder")
}
