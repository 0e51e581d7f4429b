package nn_test

import (
	"fmt"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// DoubleConv is UNet's (conv → BN → ReLU) × 2 block, with PyTorch's names.
type DoubleConv struct {
	nn.Base
	seq *nn.Sequential
}

func NewDoubleConv(in, out int64) *DoubleConv {
	d := &DoubleConv{}
	d.seq = nn.Register(&d.Base, "double_conv", nn.Seq(
		nn.NewConv2d(in, out, 3, nn.Padding(1), nn.NoBias()), nn.NewBatchNorm2d(out), nn.ReLU(),
		nn.NewConv2d(out, out, 3, nn.Padding(1), nn.NoBias()), nn.NewBatchNorm2d(out), nn.ReLU()))
	return d
}

func (d *DoubleConv) Forward(x *torch.Tensor) *torch.Tensor { return d.seq.Forward(x) }

// Build a module, list its state-dict keys and run it in a scope.
func Example() {
	m := NewDoubleConv(1, 8)
	defer m.Free()
	if err := m.Err(); err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range m.StateDict()[:6] {
		fmt.Println(e.Name, e.Tensor.Shape())
	}
	fmt.Println("parameters:", m.NumParams())

	s := torch.NewScope()
	defer s.Close() // frees the input and every intermediate
	m.Eval()
	y := m.Forward(torch.Randn([]int64{2, 1, 16, 16}, s))
	fmt.Println(y.Shape(), y.Err())
	// Output:
	// double_conv.0.weight [8 1 3 3]
	// double_conv.1.weight [8]
	// double_conv.1.bias [8]
	// double_conv.1.running_mean [8]
	// double_conv.1.running_var [8]
	// double_conv.1.num_batches_tracked []
	// parameters: 680
	// [2 8 16 16] <nil>
}
