package torch_test

import (
	"fmt"

	"github.com/jmedseg/jmedseg/torch"
)

// A training-like step in a scope: everything derived from x is freed by
// Close; the parameter w survives and receives its gradient.
func ExampleScope() {
	w := torch.FromSlice([]float32{0.5, -1, 2}, nil, torch.RequiresGrad)
	defer w.Free()

	s := torch.NewScope()
	x := torch.FromSlice([]float32{1, 2, 3}, nil, s)
	loss := x.Mul(w).Sum() // joins x's scope
	if err := loss.Backward(); err != nil {
		fmt.Println(err)
	}
	v, _ := loss.Item()
	s.Close()

	g := w.Grad()
	defer g.Free()
	grad, _ := g.Float32s()
	fmt.Println(v, grad)
	// Output: 4.5 [1 2 3]
}

// Errors travel through operations as values and name the failing op.
func ExampleTensor_Err() {
	s := torch.NewScope()
	defer s.Close()
	a := torch.Zeros([]int64{2, 3}, s)
	y := a.Matmul(a).Relu().Sum()
	fmt.Println(y.Err())
	// Output: torch: matmul(float32[2 3] cpu, float32[2 3] cpu): mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)
}

func ExampleParseDevice() {
	d, err := torch.ParseDevice("cpu")
	fmt.Println(d, err)
	// Output: cpu <nil>
}
