package sas_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/sas"
	"github.com/jmedseg/jmedseg/train"
)

// copyTree copies the data set at src to dst (the experiment adds splits
// to its data set).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(to)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	}))
}

func tinyProtocol() sas.Protocol {
	return sas.Protocol{Width: 4, Epochs: 1, Batch: 8, LimitBatches: 2,
		Pretrain: sas.PretrainProtocol{Method: sas.MoCo, Epochs: 1, Queue: 16, LR: 1e-3}}
}

func variants(t *testing.T, list string) []sas.Variant {
	v, err := sas.SelectVariants(list)
	require.NoError(t, err)
	return v
}

// The experiment end to end with a tiny protocol: phone-photo splits built,
// one encoder pretrained and reused, each run in <variant>/seed<k>/ with
// its report, sas.md, sas.json and the figure; a second invocation keeps
// every finished run; another protocol is refused.
func TestExperiment(t *testing.T) {
	src, err := brainOnce()
	require.NoError(t, err)
	ds := filepath.Join(t.TempDir(), "brain")
	copyTree(t, src, ds)
	out := filepath.Join(t.TempDir(), "sas")
	var events []sas.Event
	opt := sas.Options{Data: ds, Out: out, Variants: variants(t, "plain,aug+ssl,sas"), Seeds: []uint64{1}, Protocol: tinyProtocol(),
		Threads: 2, Workers: 2, FigureImages: 2, OnEvent: func(e sas.Event) { events = append(events, e) }}
	tab, err := sas.Run(context.Background(), opt)
	require.NoError(t, err)

	for _, s := range []string{"test_phone", "test_xsubject_phone"} {
		assert.DirExists(t, filepath.Join(ds, s, "images"), "the phone-photo split %s was built", s)
	}
	assert.Equal(t, []string{"test", "test_phone", "test_xsubject", "test_xsubject_phone"}, tab.Splits)
	for _, f := range []string{sas.MarkdownFile, sas.JSONFile, sas.FigureFile, sas.ProtocolFile, sas.EncoderPath(1),
		"plain/seed1/best.safetensors", "plain/seed1/report.md", "sas/seed1/best.safetensors", "aug+ssl/seed1/" + sas.RowFile} {
		assert.FileExists(t, filepath.Join(out, f))
	}
	for _, f := range sas.ReportFiles(filepath.Join(out, sas.EncoderPath(1))) {
		assert.FileExists(t, f, "the pretraining report")
	}
	pretrains := 0
	for _, e := range events {
		if e.Kind == "pretrain" {
			pretrains++
		}
	}
	assert.Equal(t, 1, pretrains, "one encoder per seed, reused by aug+ssl and sas")

	var got sas.Table
	b, err := os.ReadFile(filepath.Join(out, sas.JSONFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &got))
	require.Len(t, got.Rows, 3)
	for _, r := range got.Rows {
		assert.Equal(t, sas.StatusOK, r.Status, "%s: %s", r.Variant, r.Error)
		assert.Len(t, r.Tests, 4)
		assert.Equal(t, r.Variant != "plain", r.Pretrained != "", r.Variant)
	}
	require.Len(t, got.Variants, 3)
	for _, v := range got.Variants {
		require.Len(t, v.Splits, 4)
		for _, s := range v.Splits {
			assert.Equal(t, 1, s.Dice.N, "%s %s", v.Name, s.Split)
			assert.GreaterOrEqual(t, float64(s.Dice.Mean), 0.0)
			assert.LessOrEqual(t, float64(s.Dice.Mean), 1.0)
			assert.Equal(t, v.Name != "plain", s.DiceVsPlain != nil)
		}
	}
	require.Len(t, got.Pretrain, 1)
	assert.Equal(t, sas.MoCo, got.Pretrain[0].Method)
	assert.Len(t, got.FigureImages, 2)
	md, err := os.ReadFile(filepath.Join(out, sas.MarkdownFile))
	require.NoError(t, err)
	for _, s := range []string{"| sas | ✓ | ✓ | ✓ |", "test_xsubject_phone", "(n=1)", "Dice minus plain's", "sas-figure.png", "encoder.pretrain.md"} {
		assert.Contains(t, string(md), s)
	}
	info, err := models.ReadInfo(filepath.Join(out, "sas/seed1/best.safetensors"))
	require.NoError(t, err)
	assert.True(t, info.STN)

	// Again: nothing is trained or pretrained, every row is kept.
	before, _ := os.ReadFile(filepath.Join(out, "plain/seed1", sas.RowFile))
	events = nil
	_, err = sas.Run(context.Background(), opt)
	require.NoError(t, err)
	kinds := map[string]int{}
	for _, e := range events {
		kinds[e.Kind]++
	}
	assert.Equal(t, 3, kinds["skip"])
	assert.Zero(t, kinds["run"]+kinds["pretrain"])
	after, _ := os.ReadFile(filepath.Join(out, "plain/seed1", sas.RowFile))
	assert.Equal(t, before, after)

	other := opt
	other.Protocol.Epochs = 2
	_, err = sas.Run(context.Background(), other)
	assert.ErrorContains(t, err, "another protocol")
	assert.ErrorContains(t, err, "epochs 1, not 2")
}

// A run that fails gets a row saying why and the experiment goes on; an
// interrupted run leaves no row and continues where it stopped.
func TestExperimentFailureAndResume(t *testing.T) {
	src, err := brainOnce()
	require.NoError(t, err)
	ds := filepath.Join(t.TempDir(), "brain")
	copyTree(t, src, ds)

	bad := tinyProtocol()
	bad.Loss = "nosuchloss"
	out := filepath.Join(t.TempDir(), "bad")
	_, err = sas.Run(context.Background(), sas.Options{Data: ds, Out: out, Variants: variants(t, "plain,aug"), Seeds: []uint64{1}, Protocol: bad})
	require.NoError(t, err)
	var tab sas.Table
	b, err := os.ReadFile(filepath.Join(out, sas.JSONFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &tab))
	require.Len(t, tab.Rows, 2)
	for _, r := range tab.Rows {
		assert.Equal(t, sas.StatusFailed, r.Status)
		assert.Contains(t, r.Error, "--loss")
	}
	md, _ := os.ReadFile(filepath.Join(out, sas.MarkdownFile))
	assert.Contains(t, string(md), "failed")
	assert.Contains(t, string(md), "2 failed")

	p := tinyProtocol()
	p.Epochs = 2
	out = filepath.Join(t.TempDir(), "resume")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opt := sas.Options{Data: ds, Out: out, Variants: variants(t, "plain"), Seeds: []uint64{3}, Protocol: p,
		OnEvent: func(e sas.Event) {
			if e.Kind == "epoch" && e.Epoch == 1 {
				cancel()
			}
		}}
	_, err = sas.Run(ctx, opt)
	require.ErrorIs(t, err, context.Canceled)
	assert.NoFileExists(t, filepath.Join(out, "plain/seed3", sas.RowFile))
	assert.FileExists(t, filepath.Join(out, "plain/seed3", train.LastFile))
	var msgs []string
	opt.OnEvent = func(e sas.Event) {
		if e.Kind == "run" {
			msgs = append(msgs, e.Message)
		}
	}
	res, err := sas.Run(context.Background(), opt)
	require.NoError(t, err)
	assert.Equal(t, []string{"resuming"}, msgs)
	require.Len(t, res.Rows, 1)
	assert.Equal(t, sas.StatusOK, res.Rows[0].Status, res.Rows[0].Error)
	assert.Equal(t, 2, res.Rows[0].Epochs)
}

func TestSelectVariants(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{"", []string{"plain", "aug", "stn", "ssl", "aug+stn", "aug+ssl", "stn+ssl", "sas"}, ""},
		{"all", []string{"plain", "aug", "stn", "ssl", "aug+stn", "aug+ssl", "stn+ssl", "sas"}, ""},
		{"sas, plain", []string{"plain", "sas"}, ""},
		{"ssl+aug,stn+ssl+aug,aug+ssl", []string{"aug+ssl", "sas"}, ""},
		{"AUG", []string{"aug"}, ""},
		{"aug,bogus", nil, `unknown variant "bogus"`},
		{"all,plain", nil, "cannot be combined"},
		{"aug+", nil, "unknown variant"},
	} {
		got, err := sas.SelectVariants(tc.in)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		var names []string
		for _, v := range got {
			names = append(names, v.Name)
		}
		assert.Equal(t, tc.want, names, tc.in)
	}
}
