package augment_test

import (
	"fmt"
	"image"
	"math/rand/v2"

	"github.com/jmedseg/jmedseg/augment"
	"github.com/jmedseg/jmedseg/data"
)

func toy() *data.Example {
	img := image.NewGray(image.Rect(0, 0, 64, 48))
	m := data.NewMask(64, 48)
	for y := 10; y < 30; y++ {
		for x := 5; x < 20; x++ {
			img.Pix[y*64+x] = 200
			m.Set(x, y, 1)
		}
	}
	return &data.Example{Name: "toy.png", Image: img, Mask: m}
}

func ExampleSASSupervised() {
	pipe := augment.SASSupervised()
	a, b := toy(), toy()
	_ = pipe.Apply(rand.New(rand.NewPCG(42, 0)), a)
	_ = pipe.Apply(rand.New(rand.NewPCG(42, 0)), b)
	fmt.Println(a.Image.Bounds().Size(), a.Mask.Labels())
	fmt.Println("same seed, same result:", fmt.Sprint(a.Image) == fmt.Sprint(b.Image))
	// Output:
	// (64,48) [0 1]
	// same seed, same result: true
}

func ExampleSSLView() {
	view := augment.SSLView(32, 32)
	ex := toy()
	if err := view.Apply(rand.New(rand.NewPCG(1, 2)), ex); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ex.Float.Shape)
	// Output: [3 32 32]
}

func ExampleHFlip() {
	m := data.NewMask(4, 1)
	m.Pix = []int32{1, 1, 2, 0} // 1 = left structure, 2 = right structure
	ex := &data.Example{Image: image.NewGray(image.Rect(0, 0, 4, 1)), Mask: m}
	flip := augment.HFlip{P: 1, Pairs: [][2]int{{1, 2}}}
	_ = flip.Apply(rand.New(rand.NewPCG(0, 0)), ex)
	fmt.Println(ex.Mask.Pix)
	// Output: [0 1 2 2]
}

func ExamplePhonePhoto() {
	ex := toy()
	err := augment.PhonePhoto().Apply(rand.New(rand.NewPCG(7, 7)), ex)
	fmt.Println(err, ex.Image.Bounds().Size(), ex.Mask.W, ex.Mask.H)
	// Output: <nil> (64,48) 64 48
}

func ExampleCompose() {
	pipe := augment.Compose(
		augment.Geometric(nil),
		augment.Maybe(0.8, augment.SASJitter),
		augment.Resize{Width: 32, Height: 24},
	)
	ex := toy()
	_ = pipe.Apply(rand.New(rand.NewPCG(3, 3)), ex)
	fmt.Println(ex.Image.Bounds().Size(), ex.Mask.W, ex.Mask.H)
	// Output: (32,24) 32 24
}
