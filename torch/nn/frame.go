package nn

import (
	"github.com/jmedseg/jmedseg/torch"
)

// Frame runs a module's forward body f on x in a frame: a child scope that
// owns every intermediate f creates and is closed when f returns, the way
// PyTorch frees a call's temporaries at their last reference. The result
// survives: it joins x's scope, or belongs to the caller when x has none.
// Autograd keeps its own references to what backward needs, so freeing the
// frame only lowers memory.
//
// Model code never frees by hand; a composite module writes
//
//	func (b *block) Forward(x *torch.Tensor) *torch.Tensor {
//		return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
//			return b.conv2.Forward(b.conv1.Forward(x)).Add(x)
//		})
//	}
//
// A result that f did not create in the frame (an input, a parameter)
// comes back as a new handle, so freeing it never frees anything else.
// Results of operations whose inputs all belong to no scope (parameters
// alone) belong to no scope either: Track them into the frame with
// x.Scope().Track.
func Frame(x *torch.Tensor, f func(x *torch.Tensor) *torch.Tensor) *torch.Tensor {
	if err := x.Err(); err != nil {
		return torch.FromError(err)
	}
	s := torch.NewScope()
	defer s.Close()
	return escape(f(s.Track(x.Shallow())), s, x.Scope())
}

// Frame2 is Frame for a body of two inputs (a decoder block's up-path and
// skip, say). The result joins the scope of the first scoped input.
func Frame2(x, y *torch.Tensor, f func(x, y *torch.Tensor) *torch.Tensor) *torch.Tensor {
	for _, t := range []*torch.Tensor{x, y} {
		if err := t.Err(); err != nil {
			return torch.FromError(err)
		}
	}
	s := torch.NewScope()
	defer s.Close()
	return escape(f(s.Track(x.Shallow()), s.Track(y.Shallow())), s, parentOf(x, y))
}

// FrameN is Frame for a body of any number of inputs and outputs (a
// pooling index, side outputs, encoder taps). Every result survives into
// the scope of the first scoped input. When an input has failed, f runs on
// that error in place of every input, so the caller still gets as many
// results as f returns (each failed) and can index them.
func FrameN(xs []*torch.Tensor, f func(xs []*torch.Tensor) []*torch.Tensor) []*torch.Tensor {
	for _, t := range xs {
		if err := t.Err(); err != nil {
			in := make([]*torch.Tensor, len(xs))
			for i := range in {
				in[i] = torch.FromError(err)
			}
			return f(in)
		}
	}
	s := torch.NewScope()
	defer s.Close()
	in := make([]*torch.Tensor, len(xs))
	for i, x := range xs {
		in[i] = s.Track(x.Shallow())
	}
	ys := f(in)
	parent := parentOf(xs...)
	out := make([]*torch.Tensor, len(ys))
	seen := make(map[*torch.Tensor]bool, len(ys))
	for i, y := range ys {
		if seen[y] {
			y = y.Alias() // the same handle twice: each result its own
		}
		seen[y] = true
		out[i] = y
	}
	for i, y := range out {
		out[i] = escape(y, s, parent)
	}
	return out
}

func parentOf(xs ...*torch.Tensor) *torch.Scope {
	for _, x := range xs {
		if s := x.Scope(); s != nil {
			return s
		}
	}
	return nil
}

// escape moves a frame's result y out of frame s into parent (nil: the
// caller owns it).
func escape(y *torch.Tensor, s, parent *torch.Scope) *torch.Tensor {
	if y.Err() != nil {
		return y
	}
	if y.Scope() != s {
		y = y.Shallow()
	}
	y.Keep()
	if parent != nil {
		parent.Track(y)
	}
	return y
}
