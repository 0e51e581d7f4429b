package data

import (
	"context"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// noisy adds seeded noise to the image and flips the mask half the time.
var noisy = TransformFunc(func(r *rand.Rand, ex *Example) error {
	g := ex.Image.(*image.Gray)
	out := image.NewGray(g.Rect)
	for i, v := range g.Pix {
		out.Pix[i] = v + uint8(r.IntN(16))
	}
	ex.Image = out
	if r.IntN(2) == 0 && ex.Mask != nil {
		m := ex.Mask
		for y := range m.H {
			for x := range m.W / 2 {
				a, b := m.At(x, y), m.At(m.W-1-x, y)
				m.Set(x, y, b)
				m.Set(m.W-1-x, y, a)
			}
		}
	}
	return nil
})

func toySamples(t testing.TB, n int) []Sample {
	dir := t.TempDir()
	makeDataset(t, dir, map[string]int{"train": n}, 8, 6, 3)
	d, err := Open(dir)
	require.NoError(t, err)
	s, err := d.Split("train")
	require.NoError(t, err)
	return s
}

func collect(t testing.TB, l *Loader, epoch int) []*Batch {
	t.Helper()
	var out []*Batch
	for b, err := range l.Epoch(context.Background(), epoch) {
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

func TestLoaderDeterministicAcrossWorkers(t *testing.T) {
	samples := toySamples(t, 11)
	var ref [][]*Batch
	for _, workers := range []int{1, 2, 5} {
		l, err := NewLoader(samples, LoaderOptions{BatchSize: 4, Workers: workers, Prefetch: 1, Shuffle: true, Seed: 9, Transform: noisy})
		require.NoError(t, err)
		assert.Equal(t, 3, l.Len())
		got := [][]*Batch{collect(t, l, 0), collect(t, l, 1)}
		if ref == nil {
			ref = got
			continue
		}
		assert.Equal(t, ref, got, "workers=%d", workers)
	}
	assert.NotEqual(t, ref[0][0].Names, ref[1][0].Names, "epochs shuffle differently")
	b := ref[0][0]
	assert.Equal(t, []int{4, 3, 6, 8}, b.Image.Shape)
	assert.Equal(t, []int{4, 6, 8}, b.Mask.Shape)
	assert.Len(t, ref[0][2].Names, 3, "last batch is partial")
	for _, v := range b.Mask.Data {
		assert.True(t, v >= 0 && v < 3)
	}
	// Grey is replicated into 3 channels.
	assert.Equal(t, b.Image.Data[:48], b.Image.Data[48:96])
}

func TestLoaderOptions(t *testing.T) {
	samples := toySamples(t, 5)
	l, err := NewLoader(samples, LoaderOptions{BatchSize: 2, DropLast: true, Channels: 1})
	require.NoError(t, err)
	bs := collect(t, l, 0)
	require.Len(t, bs, 2)
	assert.Equal(t, []int{2, 1, 6, 8}, bs[0].Image.Shape)
	assert.Equal(t, samples[0].Image, bs[0].Names[0], "no shuffle keeps order")
	assert.InDelta(t, 7.0/255, bs[0].Image.Data[1], 1e-6)

	l, err = NewLoader(samples, LoaderOptions{BatchSize: 3, Views: 2, NoMask: true, Transform: noisy, Seed: 1})
	require.NoError(t, err)
	bs = collect(t, l, 0)
	require.Len(t, bs[0].Views, 1)
	assert.Nil(t, bs[0].Mask)
	assert.NotEqual(t, bs[0].Image.Data, bs[0].Views[0].Data, "views are transformed independently")

	for _, o := range []LoaderOptions{{Channels: -1}, {Channels: MaxChannels + 1}, {BatchSize: -1}, {BatchSize: 10, DropLast: true}} {
		_, err := NewLoader(samples, o)
		assert.Error(t, err)
	}
	_, err = NewLoader(nil, LoaderOptions{})
	assert.Error(t, err)
}

func TestLoaderBadSamples(t *testing.T) {
	samples := toySamples(t, 6)
	require.NoError(t, os.WriteFile(samples[2].Image, []byte("not a png"), 0o644))
	writePNGT(t, samples[4].Mask, labelImage(5, 5, 2))
	samples[5].Mask = ""

	l, err := NewLoader(samples, LoaderOptions{BatchSize: 2, Workers: 2})
	require.NoError(t, err)
	var n int
	var last error
	for b, err := range l.Epoch(context.Background(), 0) {
		if err != nil {
			last = err
			break
		}
		n += len(b.Names)
	}
	require.Error(t, last)
	assert.Contains(t, last.Error(), filepath.Base(samples[2].Image))
	assert.Contains(t, last.Error(), "corrupt image")
	assert.Equal(t, 2, n)

	l, err = NewLoader(samples, LoaderOptions{BatchSize: 2, Workers: 2, SkipBad: true, Classes: 3})
	require.NoError(t, err)
	var skipped []error
	n = 0
	for _, b := range collect(t, l, 0) {
		n += len(b.Names)
		skipped = append(skipped, b.Skipped...)
	}
	assert.Equal(t, 3, n)
	assert.Equal(t, int64(3), l.Skipped())
	assert.Equal(t, skipped[:1], l.SkippedErrors()[:1])
	skipped = l.SkippedErrors()
	require.Len(t, skipped, 3)
	assert.Contains(t, skipped[0].Error(), "corrupt image")
	assert.Contains(t, skipped[1].Error(), "mask of the wrong size")
	assert.Contains(t, skipped[2].Error(), "image has no mask")

	// Labels out of range.
	samples = toySamples(t, 2)
	writePNGT(t, samples[1].Mask, labelImage(8, 6, 5))
	l, _ = NewLoader(samples, LoaderOptions{Classes: 3})
	for _, err := range l.Epoch(context.Background(), 0) {
		require.Error(t, err)
		assert.Contains(t, err.Error(), "labels out of range")
		assert.Contains(t, err.Error(), filepath.Base(samples[1].Mask))
	}
}

func TestLoaderMixedSizes(t *testing.T) {
	samples := toySamples(t, 2)
	writePNGT(t, samples[1].Image, greyImage(5, 5))
	writePNGT(t, samples[1].Mask, labelImage(5, 5, 2))
	l, _ := NewLoader(samples, LoaderOptions{BatchSize: 2})
	for _, err := range l.Epoch(context.Background(), 0) {
		require.Error(t, err)
		assert.Contains(t, err.Error(), "add augment.Resize")
	}
}

func TestLoaderCancelNoLeak(t *testing.T) {
	samples := toySamples(t, 40)
	before := runtime.NumGoroutine()
	slow := TransformFunc(func(r *rand.Rand, ex *Example) error {
		time.Sleep(2 * time.Millisecond)
		return nil
	})
	l, err := NewLoader(samples, LoaderOptions{BatchSize: 2, Workers: 4, Transform: slow})
	require.NoError(t, err)

	// Early break.
	for range l.Epoch(context.Background(), 0) {
		break
	}
	// Cancellation mid-epoch.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got error
	n := 0
	for _, err := range l.Epoch(ctx, 1) {
		if err != nil {
			got = err
			break
		}
		if n++; n == 2 {
			cancel()
		}
	}
	assert.ErrorIs(t, got, context.Canceled)
	// Every goroutine has finished its work by the time the loop ends; give
	// them a moment to leave the scheduler's count (generously: a loaded
	// 2-core machine under the race detector can be slow to schedule them).
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !assert.LessOrEqual(t, runtime.NumGoroutine(), before) {
		buf := make([]byte, 1<<16)
		t.Logf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	}
}
