package test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jsonLines decodes a stream of JSON lines into maps.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		lines = append(lines, m)
	}
	return lines
}

// The zoo end to end on the brain data: two tiny models (width 64/16 = 4,
// one epoch of two batches at 16×16) and setr, which cannot take 16×16;
// the table, the rows and the figures; a rerun skips everything; another
// protocol in the same directory is refused.
func TestZoo(t *testing.T) {
	tmp := t.TempDir()
	ds := filepath.Join(tmp, "brain")
	_, se, code := run(t, "data", "prepare", "--out", ds, "--size", "64")
	require.Equal(t, 0, code, se)
	out := filepath.Join(tmp, "zoo")
	args := []string{"zoo", "--data", ds, "--out", out, "--models", "unet,attunet,setr", "--epochs", "1", "--limit-batches", "2",
		"--batch", "4", "--size", "16x16", "--width-scale", "0.0625", "--threads", "1", "--json"}
	so, se, code := run(t, args...)
	require.Equal(t, 0, code, se)
	events := jsonLines(t, so)
	kinds := map[string]int{}
	for _, e := range events {
		kinds[e["event"].(string)]++
	}
	assert.Equal(t, map[string]int{"start": 1, "model": 2, "epoch": 2, "row": 3, "done": 1}, kinds, so)
	done := events[len(events)-1]
	assert.Equal(t, "done", done["event"])
	assert.Equal(t, "2 ok, 1 failed", done["message"])

	b, err := os.ReadFile(filepath.Join(out, "zoo.json"))
	require.NoError(t, err)
	var tab struct {
		Splits  []string `json:"splits"`
		Figures []string `json:"figures"`
		Rows    []struct {
			Model           string   `json:"model"`
			Status          string   `json:"status"`
			Reason          string   `json:"reason"`
			Width           int64    `json:"width"`
			Params          int64    `json:"params"`
			RefParams       int64    `json:"reference_params"`
			SecondsPerEpoch *float64 `json:"seconds_per_epoch"`
			PeakRSS         int64    `json:"peak_rss_bytes"`
			Tests           []struct {
				Split string   `json:"split"`
				Dice  *float64 `json:"dice"`
				HD95  *float64 `json:"hd95_mm"`
			} `json:"tests"`
			Prediction string `json:"prediction"`
		} `json:"rows"`
	}
	require.NoError(t, json.Unmarshal(b, &tab))
	assert.Equal(t, []string{"test", "test_xsubject"}, tab.Splits)
	require.Len(t, tab.Rows, 3)
	for i, name := range []string{"attunet", "setr", "unet"} {
		r := tab.Rows[i]
		require.Equal(t, name, r.Model)
		if name == "setr" {
			assert.Equal(t, "failed", r.Status)
			assert.Equal(t, "size", r.Reason)
			continue
		}
		assert.Equal(t, "ok", r.Status, name)
		assert.Equal(t, int64(4), r.Width)
		assert.Positive(t, r.Params)
		assert.Less(t, r.Params, r.RefParams)
		assert.Positive(t, r.PeakRSS)
		require.NotNil(t, r.SecondsPerEpoch)
		require.Len(t, r.Tests, 2)
		assert.Equal(t, "test_xsubject", r.Tests[1].Split)
		require.NotNil(t, r.Tests[0].Dice)
		require.NotNil(t, r.Tests[0].HD95)
		assert.FileExists(t, filepath.Join(out, r.Prediction))
		for _, f := range []string{"best.safetensors", "report.md", "zoo-row.json", "zoo.log", "loss.svg"} {
			assert.FileExists(t, filepath.Join(out, name, f))
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "zoo.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "| unet | 4 (64) |")
	assert.Contains(t, string(md), "failed: size")

	// The figures are valid PNG and SVG files.
	require.Subset(t, tab.Figures, []string{"zoo-dice-test.png", "zoo-dice-test.svg", "zoo-dice-test_xsubject.png",
		"zoo-dice-test_xsubject.svg", "zoo-predictions.png"})
	for _, f := range tab.Figures {
		b, err := os.ReadFile(filepath.Join(out, f))
		require.NoError(t, err)
		switch filepath.Ext(f) {
		case ".png":
			img, err := png.Decode(bytes.NewReader(b))
			require.NoError(t, err, f)
			assert.Greater(t, img.Bounds().Dx(), 100, f)
		case ".svg":
			d := xml.NewDecoder(bytes.NewReader(b))
			for {
				_, err := d.Token()
				if err == io.EOF {
					break
				}
				require.NoError(t, err, f)
			}
			assert.Contains(t, string(b), "<svg")
			assert.Contains(t, string(b), "unet")
		}
	}

	// A rerun trains nothing.
	so, se, code = run(t, args...)
	require.Equal(t, 0, code, se)
	kinds = map[string]int{}
	for _, e := range jsonLines(t, so) {
		kinds[e["event"].(string)]++
	}
	assert.Equal(t, map[string]int{"start": 1, "skip": 3, "done": 1}, kinds, so)

	// Another protocol in the same directory is refused, naming the field.
	_, se, code = run(t, append(args[:len(args):len(args)], "--epochs", "2")...)
	assert.Equal(t, 1, code)
	assert.Contains(t, se, "epochs 1, not 2")
}
