package block

import (
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// PositionAttention is self-attention over positions (DANet's PAM_Module,
// CS-Net's SpatialAttentionBlock): the query and key maps (C → C/8) give
// the affinity softmax(QᵀK) over the H·W positions, which weighs the value
// map (C → C); "gamma" (a parameter, zero at first) scales the result,
// added to x. The three maps are registered under the given names, in
// order.
type PositionAttention struct {
	nn.Base
	gamma             *torch.Tensor
	query, key, value nn.Module
}

// NewPositionAttention builds position attention from its query, key and
// value maps, registered as names[0], names[1], names[2].
func NewPositionAttention(names [3]string, query, key, value nn.Module) *PositionAttention {
	a := &PositionAttention{}
	b := &a.Base
	a.query = nn.Register(b, names[0], query)
	a.key = nn.Register(b, names[1], key)
	a.value = nn.Register(b, names[2], value)
	a.gamma = b.RegisterParameter("gamma", torch.Zeros([]int64{1}))
	return a
}

// Forward implements nn.Module: x plus gamma times the attended values.
func (a *PositionAttention) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		n, c, h, w := x.Size(0), x.Size(1), x.Size(2), x.Size(3)
		q := a.query.Forward(x).Reshape(n, -1, h*w).Permute(0, 2, 1) // [N, HW, C/8]
		k := a.key.Forward(x).Reshape(n, -1, h*w)                    // [N, C/8, HW]
		affinity := q.Matmul(k).Softmax(-1)                          // [N, HW, HW]
		v := a.value.Forward(x).Reshape(n, -1, h*w)                  // [N, C, HW]
		out := v.Matmul(affinity.Permute(0, 2, 1)).Reshape(n, c, h, w)
		return a.gamma.Mul(out).Add(x)
	})
}

// ChannelAttentionOptions are the variants of ChannelAttention.
type ChannelAttentionOptions struct {
	// MaxMinus takes the softmax of max − E (each row's maximum minus the
	// affinity), as DANet's official code and CS-Net do, instead of E.
	MaxMinus bool
	// BatchZeroMax (with MaxMinus) takes the maxima of sample 0 for the
	// whole batch: CS-Net reference's quirk.
	BatchZeroMax bool
}

// ChannelAttention is self-attention over channels (DANet's CAM_Module,
// CS-Net's ChannelAttentionBlock): the channel affinity E = X·Xᵀ of the
// flattened map, softmax over each row, weighs the channels; "gamma" (a
// parameter, zero at first) scales the result, added to x.
type ChannelAttention struct {
	nn.Base
	gamma *torch.Tensor
	opt   ChannelAttentionOptions
}

// NewChannelAttention builds channel attention (no parameters but gamma).
func NewChannelAttention(opt ChannelAttentionOptions) *ChannelAttention {
	a := &ChannelAttention{opt: opt}
	a.gamma = a.RegisterParameter("gamma", torch.Zeros([]int64{1}))
	return a
}

// Forward implements nn.Module: x plus gamma times the re-weighted
// channels.
func (a *ChannelAttention) Forward(x *torch.Tensor) *torch.Tensor {
	return nn.Frame(x, func(x *torch.Tensor) *torch.Tensor {
		n, c, h, w := x.Size(0), x.Size(1), x.Size(2), x.Size(3)
		q := x.Reshape(n, c, -1)                 // [N, C, HW]
		affinity := q.Matmul(q.Permute(0, 2, 1)) // [N, C, C]
		if a.opt.MaxMinus {
			maxima, _ := affinity.MaxDim(-1, true) // [N, C, 1]
			if a.opt.BatchZeroMax {
				maxima = maxima.Narrow(0, 0, 1) // [1, C, 1]: sample 0's, for all
			}
			affinity = maxima.Expand(affinity.Shape()...).Sub(affinity)
		}
		out := affinity.Softmax(-1).Matmul(q).Reshape(n, c, h, w)
		return a.gamma.Mul(out).Add(x)
	})
}
