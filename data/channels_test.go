package data

import (
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// makeNNUNetC writes an nnU-Net raw data set of n 2-D cases of c grey PNG
// channels (8-bit, w×h; channel k of case id pixel i is 7k+3i+id mod 256)
// with labels 0..1.
func makeNNUNetC(t testing.TB, dir string, n, c, w, h int) {
	t.Helper()
	names := map[string]string{}
	for k := range c {
		names[fmt.Sprint(k)] = fmt.Sprintf("m%d", k)
	}
	writeJSONT(t, filepath.Join(dir, "dataset.json"), map[string]any{"channel_names": names,
		"labels": map[string]int{"background": 0, "x": 1}, "numTraining": n, "file_ending": ".png"})
	for id := range n {
		for k := range c {
			g := image.NewGray(image.Rect(0, 0, w, h))
			for i := range g.Pix {
				g.Pix[i] = uint8(7*k + 3*i + id)
			}
			writePNGT(t, filepath.Join(dir, "imagesTr", fmt.Sprintf("mc_%03d_%04d.png", id, k)), g)
		}
		writePNGT(t, filepath.Join(dir, "labelsTr", fmt.Sprintf("mc_%03d.png", id)), labelImage(w, h, 2))
	}
}

// Cases of 2 and 4 channel files read as Planes of their exact values and
// collate to N×C×H×W; a loader of another channel count refuses them,
// naming the file.
func TestMultiChannelCases(t *testing.T) {
	for _, c := range []int{2, 4, 5} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			dir := t.TempDir()
			makeNNUNetC(t, dir, 4, c, 10, 6)
			d, err := OpenWith(dir, OpenOptions{Folds: 2})
			require.NoError(t, err)
			assert.Equal(t, c, d.Manifest.Channels)
			rep, err := Check(context.Background(), dir, CheckOptions{Channels: c})
			require.NoError(t, err)
			assert.Empty(t, rep.Issues)
			tr, err := d.Split("train")
			require.NoError(t, err)
			require.Len(t, tr[0].Channels, c)
			img, err := ReadSampleImage(tr[0])
			require.NoError(t, err)
			p, ok := img.(*Planes)
			require.True(t, ok)
			require.Equal(t, c, p.Channels())
			var id int
			_, err = fmt.Sscanf(tr[0].ID, "mc_%03d", &id)
			require.NoError(t, err)
			for k := range c {
				for i := range 60 {
					assert.Equal(t, uint16(uint8(7*k+3*i+id))*257, p.Chans[k].Gray16At(i%10, i/10).Y)
				}
			}
			l, err := NewLoader(tr, LoaderOptions{BatchSize: 2, Channels: c, Classes: 2})
			require.NoError(t, err)
			for b, err := range l.Epoch(context.Background(), 0) {
				require.NoError(t, err)
				assert.Equal(t, []int{2, c, 6, 10}, b.Image.Shape)
				for k := range c {
					assert.InDelta(t, float64(uint8(7*k+3*5+id))/255, b.Image.Data[k*60+5], 1e-6)
				}
				break
			}
			l, err = NewLoader(tr, LoaderOptions{BatchSize: 2, Channels: 3, Classes: 2})
			require.NoError(t, err)
			for _, err := range l.Epoch(context.Background(), 0) {
				assert.ErrorContains(t, err, fmt.Sprintf("the image has %d channels, the model takes 3", c))
				assert.ErrorContains(t, err, tr[0].Image)
				break
			}
		})
	}
}

// A channel file of another size, a colour channel file and a missing
// channel file are errors naming the file.
func TestMultiChannelErrors(t *testing.T) {
	dir := t.TempDir()
	makeNNUNetC(t, dir, 4, 2, 10, 6)
	small := filepath.Join(dir, "imagesTr", "mc_001_0001.png")
	writePNGT(t, small, greyImage(8, 6))
	colour := filepath.Join(dir, "imagesTr", "mc_002_0001.png")
	rgb := image.NewNRGBA(image.Rect(0, 0, 10, 6))
	for i := range rgb.Pix {
		rgb.Pix[i] = uint8(40 * (i % 4))
	}
	writePNGT(t, colour, rgb)
	missing := filepath.Join(dir, "imagesTr", "mc_003_0001.png")
	require.NoError(t, os.Remove(missing))

	_, err := ReadSampleImage(Sample{Image: filepath.Join(dir, "imagesTr", "mc_001_0000.png"), Channels: []string{filepath.Join(dir, "imagesTr", "mc_001_0000.png"), small}})
	assert.ErrorContains(t, err, small+": channel 1 is 8x6 but channel 0")
	_, err = ReadSampleImage(Sample{Image: filepath.Join(dir, "imagesTr", "mc_002_0000.png"), Channels: []string{filepath.Join(dir, "imagesTr", "mc_002_0000.png"), colour}})
	assert.ErrorContains(t, err, colour+": wrong channel count: channel file 1 is a colour image")

	rep, err := Check(context.Background(), dir, CheckOptions{})
	require.NoError(t, err)
	files := map[string]string{}
	for _, is := range rep.Issues {
		files[is.File] = is.Kind
	}
	assert.Equal(t, IssueChannels, files[missing], "%v", rep.Issues)
	assert.Contains(t, files, small)
	assert.Equal(t, IssueChannels, files[colour])
	d, err := OpenWith(dir, OpenOptions{Folds: 2})
	require.NoError(t, err)
	_, err = d.Split("train")
	if err == nil {
		_, err = d.Split("val")
	}
	assert.ErrorContains(t, err, missing)

	_, err = ToCHW(greyImage(4, 4), 2)
	assert.ErrorContains(t, err, "the model takes 2: give one grey file per channel")
	_, err = StackChannels([]image.Image{greyImage(4, 4), greyImage(4, 5)})
	assert.ErrorContains(t, err, "channel 1 has bounds")
}
