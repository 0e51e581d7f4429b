package data_test

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jmedseg/jmedseg/augment"
	"github.com/jmedseg/jmedseg/data"
)

// benchSamples writes n 256×256 RGB PNG pairs.
func benchSamples(b testing.TB, n int) []data.Sample {
	dir := b.TempDir()
	var out []data.Sample
	for i := range n {
		img := image.NewNRGBA(image.Rect(0, 0, 256, 256))
		m := image.NewGray(img.Rect)
		for y := range 256 {
			for x := range 256 {
				v := uint8((x*3 + y*5 + i*11) % 256)
				img.SetNRGBA(x, y, color.NRGBA{v, v / 2, 255 - v, 255})
				if (x-128)*(x-128)+(y-128)*(y-128) < 60*60 {
					m.Pix[y*256+x] = 1
				}
			}
		}
		s := data.Sample{ID: fmt.Sprint(i), Image: filepath.Join(dir, fmt.Sprintf("i%d.png", i)), Mask: filepath.Join(dir, fmt.Sprintf("m%d.png", i))}
		for p, im := range map[string]image.Image{s.Image: img, s.Mask: m} {
			f, err := os.Create(p)
			if err != nil {
				b.Fatal(err)
			}
			if err := png.Encode(f, im); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
		out = append(out, s)
	}
	return out
}

// BenchmarkLoaderSAS measures loader throughput with the reference SAS
// supervised augmentation on 256×256 RGB PNG pairs, batch 8.
func BenchmarkLoaderSAS(b *testing.B) {
	samples := benchSamples(b, 32)
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			l, err := data.NewLoader(samples, data.LoaderOptions{BatchSize: 8, Workers: workers, Shuffle: true,
				Transform: augment.SASSupervised(), Classes: 2})
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				for batch, err := range l.Epoch(context.Background(), i) {
					if err != nil {
						b.Fatal(err)
					}
					n += batch.Image.Shape[0]
				}
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "images/s")
		})
	}
}

func ExampleLoader() {
	dir, _ := os.MkdirTemp("", "toy")
	defer os.RemoveAll(dir)
	writeToy(dir)
	ds, _ := data.Open(dir)
	train, _ := ds.Split("train")

	l, err := data.NewLoader(train, data.LoaderOptions{
		BatchSize: 2, Workers: 2, Shuffle: true, Seed: 1,
		Transform: augment.SASSupervised(),
		Classes:   ds.NumClasses(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for batch, err := range l.Epoch(context.Background(), 0) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(batch.Index, batch.Image.Shape, batch.Mask.Shape)
	}
	// Output:
	// 0 [2 3 4 4] [2 4 4]
	// 1 [1 3 4 4] [1 4 4]
}
