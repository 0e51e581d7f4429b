// Command loaderbench shows whether the data loader limits training: it
// trains a model for the same number of steps on batches that the loader
// decodes and augments while the model trains (SAS colour/blur plus
// geometric augmentation, as `jmedseg train --aug --geometric`) and on
// batches decoded once beforehand and held as tensors, and prints both
// throughputs in images per second.
//
//	go run ./bench/cmd/loaderbench [-data DIR] [-model unet -width 16 -batch 8 -steps 18 -blocks 2 -threads 2 -workers 0]
//
// DIR is the default brain MRI data set (128×128); it is built there with
// data.Prepare (as `jmedseg data prepare --out DIR`) when it has no
// dataset.json. The two kinds of block alternate (pre-loaded, loader, ...)
// after a warm-up, and the median block throughput of each is reported.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/jmedseg/jmedseg/augment"
	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/torch/optim"
)

// result is the JSON output.
type result struct {
	Model            string    `json:"model"`
	Width            int64     `json:"width"`
	Batch            int       `json:"batch"`
	Size             int       `json:"size"`
	Threads          int       `json:"threads"`
	Workers          int       `json:"workers"`
	StepsPerBlock    int       `json:"steps_per_block"`
	PreloadedIPS     []float64 `json:"preloaded_images_per_second"`
	LoaderIPS        []float64 `json:"loader_images_per_second"`
	PreloadedMedian  float64   `json:"preloaded_median"`
	LoaderMedian     float64   `json:"loader_median"`
	LoaderPreloadPct float64   `json:"loader_over_preloaded_percent"`
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("loaderbench: ")
	dir := flag.String("data", "datasets/bench-brain", "data set folder (built when it has no dataset.json)")
	model := flag.String("model", "unet", "model")
	width := flag.Int64("width", 16, "model base width")
	batch := flag.Int("batch", 8, "batch size")
	steps := flag.Int("steps", 18, "training steps per block")
	blocks := flag.Int("blocks", 2, "blocks of each kind (alternating)")
	warmup := flag.Int("warmup", 3, "untimed steps first")
	threads := flag.Int("threads", 2, "libtorch intra-op threads")
	workers := flag.Int("workers", 0, "loader goroutines (0: GOMAXPROCS, the trainer's default)")
	out := flag.String("json", "", "also write the result as JSON to this file")
	flag.Parse()
	torch.SetNumThreads(*threads)
	torch.ManualSeed(1)
	ctx := context.Background()

	if _, err := os.Stat(filepath.Join(*dir, data.ManifestFile)); err != nil {
		log.Printf("building the brain data set in %s", *dir)
		if _, err := data.Prepare(ctx, data.PrepareOptions{Out: *dir, Force: true}); err != nil {
			log.Fatal(err)
		}
	}
	ds, err := data.Open(*dir)
	if err != nil {
		log.Fatal(err)
	}
	samples, err := ds.Split(data.SplitTrain)
	if err != nil {
		log.Fatal(err)
	}
	var pairs [][2]int
	if ds.Manifest != nil {
		pairs = ds.Manifest.FlipPairs
	}
	tf := append(augment.Geometric(pairs), augment.SASSupervised()...)
	l, err := data.NewLoader(samples, data.LoaderOptions{BatchSize: *batch, Workers: *workers, Shuffle: true, Seed: 1,
		Transform: tf, Classes: ds.NumClasses(), DropLast: true})
	if err != nil {
		log.Fatal(err)
	}
	// Pre-loaded tensors: one epoch of the same loader, collated once.
	type pair struct{ x, y *torch.Tensor }
	var pre []pair
	for b, err := range l.Epoch(ctx, 1000) {
		if err != nil {
			log.Fatal(err)
		}
		pre = append(pre, pair{torch.FromSlice(b.Image.Data, shape64(b.Image.Shape)), torch.FromSlice(b.Mask.Data, shape64(b.Mask.Shape))})
	}
	size := 0
	if len(pre) > 0 {
		size = int(pre[0].x.Shape()[2])
	}

	m, err := models.New(*model, models.Config{InChannels: 3, Classes: int64(ds.NumClasses()), Width: *width})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Free()
	opt, err := optim.NewAdam(optim.AdamConfig{LR: 1e-4}, optim.Params(m.Parameters()))
	if err != nil {
		log.Fatal(err)
	}
	defer opt.Free()
	m.Train(true)

	step := func(x, y *torch.Tensor) {
		if err := trainStep(m, opt, x, y); err != nil {
			log.Fatal(err)
		}
	}
	// Warm-up on pre-loaded tensors.
	for i := 0; i < *warmup; i++ {
		step(pre[i%len(pre)].x, pre[i%len(pre)].y)
	}
	preloaded := func() float64 {
		t0 := time.Now()
		for i := 0; i < *steps; i++ {
			p := pre[i%len(pre)]
			step(p.x, p.y)
		}
		return float64(*steps**batch) / time.Since(t0).Seconds()
	}
	epoch := 0
	loader := func() float64 {
		t0 := time.Now()
		n := 0
		for n < *steps {
			for b, err := range l.Epoch(ctx, epoch) {
				if err != nil {
					log.Fatal(err)
				}
				s := torch.NewScope()
				step(torch.FromSlice(b.Image.Data, shape64(b.Image.Shape), s), torch.FromSlice(b.Mask.Data, shape64(b.Mask.Shape), s))
				s.Close()
				n++
				if n == *steps {
					break
				}
			}
			epoch++
		}
		return float64(*steps**batch) / time.Since(t0).Seconds()
	}
	r := result{Model: *model, Width: *width, Batch: *batch, Size: size, Threads: torch.NumThreads(), Workers: *workers, StepsPerBlock: *steps}
	for i := 0; i < *blocks; i++ {
		r.PreloadedIPS = append(r.PreloadedIPS, preloaded())
		log.Printf("block %d pre-loaded: %.1f images/s", i, r.PreloadedIPS[i])
		r.LoaderIPS = append(r.LoaderIPS, loader())
		log.Printf("block %d loader:     %.1f images/s", i, r.LoaderIPS[i])
	}
	r.PreloadedMedian, r.LoaderMedian = median(r.PreloadedIPS), median(r.LoaderIPS)
	r.LoaderPreloadPct = 100 * r.LoaderMedian / r.PreloadedMedian
	fmt.Printf("%s width %d, batch %d, %d×%d, %d threads, loader workers %d (0: GOMAXPROCS), %d steps per block:\n"+
		"  pre-loaded tensors:              %.1f images/s\n"+
		"  loader with augmentation:        %.1f images/s (%.0f %% of pre-loaded)\n",
		r.Model, r.Width, r.Batch, size, size, r.Threads, r.Workers, r.StepsPerBlock, r.PreloadedMedian, r.LoaderMedian, r.LoaderPreloadPct)
	if *out != "" {
		b, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// trainStep is bench.Run's training step: forward, cross-entropy, backward,
// Adam step, zero the gradients, read the loss.
func trainStep(m nn.Module, opt *optim.Adam, x, y *torch.Tensor) error {
	s := torch.NewScope()
	defer s.Close()
	l := torch.CrossEntropy(m.Forward(s.Track(x.Shallow())), y, nil, torch.ReduceMean, torch.NoIgnoreIndex, 0)
	if err := l.Backward(); err != nil {
		return err
	}
	if err := opt.Step(); err != nil {
		return err
	}
	if err := opt.ZeroGrad(); err != nil {
		return err
	}
	_, err := l.Item()
	return err
}

func shape64(s []int) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = int64(v)
	}
	return out
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
