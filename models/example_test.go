package models_test

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

func ExampleNew() {
	m, err := models.New("unet", models.Config{InChannels: 1, Classes: 2, Width: 8})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Free()
	m.Eval()
	s := torch.NewScope()
	defer s.Close()
	var shape []int64
	torch.NoGrad(func() { shape = m.Forward(torch.Zeros([]int64{1, 1, 64, 64}, s)).Shape() })
	fmt.Println(m.NumParams(), shape)
	// Output: 271314 [1 2 64 64]
}
