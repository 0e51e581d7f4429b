package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pretrain --method moco from the command line: the encoder file and its
// report (loss and positive-pair accuracy per epoch) beside it; bad flags
// and splits that would leak are refused, naming the flag.
func TestPretrainMoCo(t *testing.T) {
	tmp := t.TempDir()
	ds := filepath.Join(tmp, "brain")
	_, se, code := run(t, "data", "prepare", "--out", ds, "--size", "64")
	require.Equal(t, 0, code, se)
	enc := filepath.Join(tmp, "enc.safetensors")
	out, se, code := run(t, "pretrain", "--data", ds, "--out", enc, "--method", "moco", "--width", "4", "--epochs", "1",
		"--queue", "16", "--momentum", "0.9", "--lr", "1e-3", "--threads", "1", "--json")
	require.Equal(t, 0, code, se)
	var res struct {
		Method  string `json:"method"`
		Report  string `json:"report"`
		History []struct {
			Loss     float64 `json:"loss"`
			Accuracy float64 `json:"positive_top1"`
		} `json:"history"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Equal(t, "moco", res.Method)
	require.Len(t, res.History, 1)
	assert.Greater(t, res.History[0].Loss, 0.0)
	for _, f := range []string{"enc.pretrain.json", "enc.pretrain.md", "enc.pretrain-loss.png", "enc.pretrain-accuracy.svg"} {
		assert.FileExists(t, filepath.Join(tmp, f))
	}
	md, err := os.ReadFile(res.Report)
	require.NoError(t, err)
	assert.Contains(t, string(md), "momentum contrast")

	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--out", enc}, "exists; pass --force"},
		{[]string{"--out", enc + "2", "--method", "byol"}, `--method: unknown pretraining method "byol"`},
		{[]string{"--out", enc + "2", "--momentum", "1"}, "--momentum 1"},
		{[]string{"--out", enc + "2", "--batch", "1"}, "--batch 1"},
		{[]string{"--out", enc + "2", "--splits", "train,test"}, "--splits test: train validates or tests on that split"},
		{[]string{"--out", enc + "2", "--size", "60"}, "multiples of 16"},
	} {
		_, se, code := run(t, append([]string{"pretrain", "--data", ds, "--width", "4", "--epochs", "1"}, tc.args...)...)
		assert.Equal(t, 1, code, strings.Join(tc.args, " "))
		assert.Contains(t, se, tc.err)
		assert.NotContains(t, se, "panic")
	}
	assert.NoFileExists(t, enc+"2")
}

// experiment sas refuses bad flags before training anything, naming them.
func TestExperimentSASFlags(t *testing.T) {
	tmp := t.TempDir()
	ds := filepath.Join(tmp, "brain")
	_, se, code := run(t, "data", "prepare", "--out", ds, "--size", "64")
	require.Equal(t, 0, code, se)
	out := filepath.Join(tmp, "sas")
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--variants", "plain,bogus"}, `unknown variant "bogus"`},
		{[]string{"--seeds", "0"}, "--seeds 0"},
		{[]string{"--method", "byol"}, "unknown pretraining method"},
		{[]string{"--momentum", "1.5"}, "--momentum 1.5"},
		{[]string{"--size", "60"}, "multiples of 16"},
		{[]string{"--model", "setr", "--width", "32", "--variants", "ssl"}, "no encoder"},
		{[]string{"--model", "nosuch"}, `unknown model "nosuch"`},
	} {
		_, se, code := run(t, append([]string{"experiment", "sas", "--data", ds, "--out", out}, tc.args...)...)
		assert.Equal(t, 1, code, strings.Join(tc.args, " "))
		assert.Contains(t, se, tc.err)
		assert.NotContains(t, se, "panic")
	}
	assert.NoDirExists(t, filepath.Join(ds, "test_phone"), "nothing was built for a refused command")
}
