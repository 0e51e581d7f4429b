package train_test

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/loss"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/report"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/optim"
	"github.com/jmedseg/jmedseg/train"
)

// Training from Go: a model, an optimizer, a loss and loaders the program
// built itself, trained by Fit, then saved as a model file that infer and
// jmedseg predict load.
func ExampleFit() {
	dir, err := os.MkdirTemp("", "jmedseg-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	samples, err := discs(dir, 8) // 32×32 grey images of a bright disc, masks 0/1
	if err != nil {
		fmt.Println(err)
		return
	}
	trainSet, err := data.NewLoader(samples[:6], data.LoaderOptions{BatchSize: 2, Shuffle: true, Seed: 1, Channels: 1, Classes: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	valSet, err := data.NewLoader(samples[6:], data.LoaderOptions{BatchSize: 2, Channels: 1, Classes: 2})
	if err != nil {
		fmt.Println(err)
		return
	}

	torch.ManualSeed(1)
	cfg := models.Config{InChannels: 1, Classes: 2, Width: 4}
	m, err := models.New("unet", cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Free()
	opt, err := optim.NewAdam(optim.AdamConfig{LR: 1e-3}, optim.Params(m.Parameters()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer opt.Free()

	history, err := train.Fit(context.Background(), train.Job{
		Model: m, Optimizer: opt, Loss: loss.CrossEntropy{IgnoreIndex: loss.NoIgnore},
		Train: trainSet, Val: valSet, Classes: []string{"background", "disc"},
		Epochs: 1, Device: torch.CPU,
		OnEpoch: func(p train.Progress, rec report.Epoch, best bool) error {
			fmt.Printf("epoch %d done, best so far: %t\n", rec.Epoch, best)
			return nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("epochs:", len(history), "train loss > 0:", history[0].TrainLoss > 0)

	info := models.Info{Model: "unet", Config: cfg, Classes: []string{"background", "disc"}, Size: [2]int{32, 32},
		Norm: models.DefaultNormalization(), Epoch: 1, ValDice: history[0].ValDice}
	if err := models.Save(filepath.Join(dir, "disc.safetensors"), m, info); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("saved")
	// Output:
	// epoch 1 done, best so far: true
	// epochs: 1 train loss > 0: true
	// saved
}

// discs writes n image/mask pairs of a bright disc on a noisy background.
func discs(dir string, n int) ([]data.Sample, error) {
	r := rand.New(rand.NewPCG(7, 8))
	var out []data.Sample
	for i := range n {
		img, mask := image.NewGray(image.Rect(0, 0, 32, 32)), image.NewGray(image.Rect(0, 0, 32, 32))
		cx, cy, rad := 10+r.IntN(12), 10+r.IntN(12), 5+r.IntN(4)
		for y := range 32 {
			for x := range 32 {
				v := uint8(20 + r.IntN(40))
				if (x-cx)*(x-cx)+(y-cy)*(y-cy) <= rad*rad {
					v, mask.Pix[y*32+x] = uint8(180+r.IntN(60)), 1
				}
				img.Pix[y*32+x] = v
			}
		}
		s := data.Sample{ID: fmt.Sprintf("disc%d", i), Image: filepath.Join(dir, fmt.Sprintf("disc%d.png", i)),
			Mask: filepath.Join(dir, fmt.Sprintf("disc%d_mask.png", i))}
		for path, im := range map[string]*image.Gray{s.Image: img, s.Mask: mask} {
			f, err := os.Create(path)
			if err != nil {
				return nil, err
			}
			err = png.Encode(f, im)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
		}
		out = append(out, s)
	}
	return out, nil
}
