package npy_test

import (
	"bytes"
	"fmt"

	"github.com/jmedseg/jmedseg/data/npy"
)

func Example() {
	mask := &npy.Array{DType: "u1", Shape: []int{2, 3}, Data: []float64{0, 0, 1, 0, 1, 1}}
	var buf bytes.Buffer
	if err := npy.Write(&buf, mask); err != nil {
		fmt.Println(err)
		return
	}
	a, err := npy.Decode(&buf)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(a.DType, a.Shape, a.Data)
	// Output: u1 [2 3] [0 0 1 0 1 1]
}
