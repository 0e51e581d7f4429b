package ckpt_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// Save a model with its name in the metadata and load it into a fresh one.
func Example() {
	dir, _ := os.MkdirTemp("", "ckpt")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "mlp.safetensors")

	build := func() *nn.Sequential { return nn.Seq(nn.NewLinear(4, 8), nn.ReLU(), nn.NewLinear(8, 2)) }
	a := build()
	defer a.Free()
	if err := ckpt.Save(path, a, map[string]string{"model": "mlp"}); err != nil {
		fmt.Println(err)
		return
	}

	b := build()
	defer b.Free()
	meta, report, err := ckpt.Load(path, b, true)
	fmt.Println(meta["model"], report, err)

	c := nn.Seq(nn.NewLinear(4, 8))
	defer c.Free()
	_, report, err = ckpt.Load(path, c, false) // non-strict: loads what fits
	fmt.Println(report.Unexpected, err)
	// Output:
	// mlp all keys match <nil>
	// [2.weight 2.bias] <nil>
}
