package infer_test

import (
	"fmt"
	"image"
	"os"
	"path/filepath"
	"sync"

	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// Prediction from Go: load a model file once, then predict from as many
// goroutines as the program likes. A run's best.safetensors is such a file;
// here an untrained model stands in for it.
func ExamplePredictor() {
	dir, err := os.MkdirTemp("", "jmedseg-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "best.safetensors")
	if err := saveUntrained(path); err != nil {
		fmt.Println(err)
		return
	}

	p, err := infer.NewPredictor(path, torch.CPU)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	info := p.Info()
	fmt.Printf("%s: %d classes %v, input %dx%d\n", info.Model, len(info.Classes), info.Classes, info.Size[0], info.Size[1])

	img := image.NewGray(image.Rect(0, 0, 40, 30)) // any size; resized to the model's and back
	mask, err := p.Predict(img)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("mask %dx%d\n", mask.W, mask.H)

	// Concurrent calls are safe; a batch call runs up to MaxBatch images at once.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.PredictBatch([]image.Image{img, img}); err != nil {
				fmt.Println(err)
			}
		}()
	}
	wg.Wait()

	probs, err := p.Probabilities([]image.Image{img})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("probabilities", probs[0].Shape)
	// Output:
	// unet: 2 classes [background brain], input 32x32
	// mask 40x30
	// probabilities [2 32 32]
}

func saveUntrained(path string) error {
	info := models.Info{Model: "unet", Config: models.Config{InChannels: 1, Classes: 2, Width: 4},
		Classes: []string{"background", "brain"}, Size: [2]int{32, 32}, Norm: models.DefaultNormalization()}
	m, err := models.Build(info)
	if err != nil {
		return err
	}
	defer m.Free()
	return models.Save(path, m, info)
}
