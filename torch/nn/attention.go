package nn

import (
	"math"

	"github.com/jmedseg/jmedseg/torch"
)

// MultiheadAttention is torch.nn.MultiheadAttention with a packed input
// projection: parameters in_proj_weight [3E, E], in_proj_bias [3E],
// out_proj.weight and out_proj.bias.
type MultiheadAttention struct {
	Base
	InProjWeight, InProjBias *torch.Tensor
	OutProj                  *Linear
	EmbedDim, NumHeads       int64
	Dropout                  float64
	BatchFirst               bool
}

// NewMultiheadAttention makes attention over embedDim features split into
// numHeads heads. Options: BatchFirst, DropoutP, NoBias. Initialised as
// PyTorch does: xavier_uniform in_proj_weight, zero biases.
func NewMultiheadAttention(embedDim, numHeads int64, opts ...Option) *MultiheadAttention {
	c, cerr := configure("MultiheadAttention", optBatchFirst|optDropout|optNoBias, opts)
	m := &MultiheadAttention{EmbedDim: embedDim, NumHeads: numHeads, Dropout: orF(c.dropout, 0), BatchFirst: c.batchFirst}
	m.fail(cerr)
	if numHeads < 1 || embedDim%numHeads != 0 {
		m.fail(fail("MultiheadAttention: embed_dim %d is not divisible by num_heads %d", embedDim, numHeads).Err())
		return m
	}
	m.InProjWeight = newParam(3*embedDim, embedDim)
	m.fail(XavierUniform(m.InProjWeight, 1))
	m.RegisterParameter("in_proj_weight", m.InProjWeight)
	if !c.noBias {
		m.InProjBias = torch.Zeros([]int64{3 * embedDim})
		m.RegisterParameter("in_proj_bias", m.InProjBias)
	}
	var lo []Option
	if c.noBias {
		lo = append(lo, NoBias())
	}
	m.OutProj = Register(&m.Base, "out_proj", NewLinear(embedDim, embedDim, lo...))
	if m.OutProj.Bias != nil {
		m.fail(Zeros(m.OutProj.Bias))
	}
	return m
}

// AttnOptions are the optional arguments of Attend.
type AttnOptions struct {
	// AttnMask is [L, S] or [N·heads, L, S]: bool (true = not allowed) or
	// float (added to the attention scores).
	AttnMask *torch.Tensor
	// KeyPaddingMask is a bool [N, S]: true marks keys to ignore.
	KeyPaddingMask *torch.Tensor
	// NeedWeights asks for the attention weights.
	NeedWeights bool
	// PerHead returns weights per head [N, heads, L, S] instead of their
	// average [N, L, S].
	PerHead bool
}

// Forward is self-attention of x without weights.
func (m *MultiheadAttention) Forward(x *torch.Tensor) *torch.Tensor {
	out, _ := m.Attend(x, x, x, AttnOptions{})
	return out
}

// Attend computes attention of query [L, N, E] over key and value [S, N, E]
// (batch first: [N, L, E] and [N, S, E]), as
// nn.MultiheadAttention.forward. weights is nil unless asked for.
func (m *MultiheadAttention) Attend(query, key, value *torch.Tensor, o AttnOptions) (out, weights *torch.Tensor) {
	if err := torch.FirstErr(query, key, value); err != nil {
		return torch.FromError(err), nil
	}
	var w *torch.Tensor
	out = Frame(query, func(q *torch.Tensor) *torch.Tensor {
		sc := q.Scope()
		k, v := key, value
		self := key == query && value == query
		if self {
			k, v = q, q
		}
		if m.BatchFirst {
			q = q.Transpose(0, 1)
			if self {
				k, v = q, q
			} else {
				k, v = sc.Track(k.Transpose(0, 1)), sc.Track(v.Transpose(0, 1))
			}
		}
		L, N, E := q.Size(0), q.Size(1), m.EmbedDim
		S := k.Size(0)
		H := m.NumHeads
		hd := E / H
		if q.Dim() != 3 || k.Dim() != 3 || q.Size(2) != E {
			return fail("MultiheadAttention: want 3-D inputs with %d features, got %v, %v", E, query.Shape(), key.Shape())
		}
		// input projections, as F._in_projection_packed
		var qp, kp, vp *torch.Tensor
		if self {
			proj := torch.Linear(q, m.InProjWeight, m.InProjBias)
			parts, err := proj.Chunk(3, -1)
			if err != nil {
				return torch.FromError(err)
			}
			qp, kp, vp = parts[0].Contiguous(), parts[1].Contiguous(), parts[2].Contiguous()
		} else {
			ws, err := m.InProjWeight.Chunk(3, 0)
			if err != nil {
				return torch.FromError(err)
			}
			bs := []*torch.Tensor{nil, nil, nil}
			if m.InProjBias != nil {
				if bs, err = m.InProjBias.Chunk(3, 0); err != nil {
					return torch.FromError(err)
				}
			}
			for i := range ws {
				sc.Track(ws[i])
				if bs[i] != nil {
					sc.Track(bs[i])
				}
			}
			qp = torch.Linear(q, ws[0], bs[0])
			kp = sc.Track(torch.Linear(k, ws[1], bs[1]))
			vp = sc.Track(torch.Linear(v, ws[2], bs[2]))
		}
		// masks
		var mask *torch.Tensor
		if o.AttnMask != nil {
			mask = sc.Track(o.AttnMask.Shallow())
			if mask.DType() == torch.Bool {
				mask = sc.Track(torch.Zeros(mask.Shape(), q.DType(), q.Device())).MaskedFill(mask, math.Inf(-1))
			}
			if mask.Dim() == 2 {
				mask = mask.Unsqueeze(0)
			}
		}
		if o.KeyPaddingMask != nil {
			kpm := sc.Track(o.KeyPaddingMask.View(N, 1, 1, S)).Expand(-1, H, -1, -1).Reshape(N*H, 1, S)
			if mask == nil {
				mask = sc.Track(torch.Zeros([]int64{N * H, 1, S}, q.DType(), q.Device())).MaskedFill(kpm, math.Inf(-1))
			} else {
				mask = mask.MaskedFill(kpm, math.Inf(-1))
			}
		}
		qh := qp.View(L, N*H, hd).Transpose(0, 1)
		kh := kp.View(S, N*H, hd).Transpose(0, 1)
		vh := vp.View(S, N*H, hd).Transpose(0, 1)
		qh = qh.DivScalar(math.Sqrt(float64(hd)))
		attn := qh.Bmm(kh.Transpose(1, 2))
		if mask != nil {
			attn = attn.Add(mask)
		}
		attn = attn.Softmax(-1)
		if m.Dropout > 0 && m.Training() {
			attn = torch.Dropout(attn, m.Dropout, true)
		}
		ctx := attn.Bmm(vh).Transpose(0, 1).Contiguous().View(L*N, E)
		res := m.OutProj.Forward(ctx).View(L, N, E)
		if m.BatchFirst {
			res = res.Transpose(0, 1)
		}
		if o.NeedWeights {
			aw := attn.View(N, H, L, S)
			if !o.PerHead {
				aw = aw.SumDims([]int64{1}, false).DivScalar(float64(H))
			}
			w = aw.Keep()
		}
		return res
	})
	if w != nil && query.Scope() != nil {
		query.Scope().Track(w)
	}
	return out, w
}

// TransformerEncoderLayer is torch.nn.TransformerEncoderLayer: self_attn,
// linear1, dropout, linear2, norm1, norm2, dropout1, dropout2, post-norm by
// default.
type TransformerEncoderLayer struct {
	Base
	SelfAttn                    *MultiheadAttention
	Linear1, Linear2            *Linear
	Dropout, Dropout1, Dropout2 *Dropout
	Norm1, Norm2                *LayerNorm
	NormFirst                   bool
	Activation                  func(*torch.Tensor) *torch.Tensor
}

// NewTransformerEncoderLayer makes an encoder layer of width dModel with
// nHead heads and a feed-forward of width dimFF. Options: BatchFirst,
// NormFirst, DropoutP (default 0.1), GELUActivation, Eps (default 1e-5).
func NewTransformerEncoderLayer(dModel, nHead, dimFF int64, opts ...Option) *TransformerEncoderLayer {
	c, cerr := configure("TransformerEncoderLayer", optBatchFirst|optNormFirst|optDropout|optGELU|optEps, opts)
	p := orF(c.dropout, 0.1)
	var ao []Option
	if c.batchFirst {
		ao = append(ao, BatchFirst())
	}
	ao = append(ao, DropoutP(p))
	m := &TransformerEncoderLayer{NormFirst: c.normFirst, Activation: (*torch.Tensor).Relu}
	m.fail(cerr)
	if c.gelu {
		m.Activation = func(x *torch.Tensor) *torch.Tensor { return x.Gelu(false) }
	}
	eps := Eps(orF(c.eps, 1e-5))
	m.SelfAttn = Register(&m.Base, "self_attn", NewMultiheadAttention(dModel, nHead, ao...))
	m.Linear1 = Register(&m.Base, "linear1", NewLinear(dModel, dimFF))
	m.Dropout = Register(&m.Base, "dropout", NewDropout(p))
	m.Linear2 = Register(&m.Base, "linear2", NewLinear(dimFF, dModel))
	m.Norm1 = Register(&m.Base, "norm1", NewLayerNorm([]int64{dModel}, eps))
	m.Norm2 = Register(&m.Base, "norm2", NewLayerNorm([]int64{dModel}, eps))
	m.Dropout1 = Register(&m.Base, "dropout1", NewDropout(p))
	m.Dropout2 = Register(&m.Base, "dropout2", NewDropout(p))
	return m
}

// Forward encodes x without masks.
func (m *TransformerEncoderLayer) Forward(x *torch.Tensor) *torch.Tensor {
	return m.Encode(x, nil, nil)
}

// Encode encodes src with an optional attention mask and key padding mask
// (see AttnOptions).
func (m *TransformerEncoderLayer) Encode(src, mask, keyPadding *torch.Tensor) *torch.Tensor {
	return Frame(src, func(x *torch.Tensor) *torch.Tensor {
		sa := func(x *torch.Tensor) *torch.Tensor {
			out, _ := m.SelfAttn.Attend(x, x, x, AttnOptions{AttnMask: mask, KeyPaddingMask: keyPadding})
			return m.Dropout1.Forward(out)
		}
		ff := func(x *torch.Tensor) *torch.Tensor {
			h := m.Dropout.Forward(m.Activation(m.Linear1.Forward(x)))
			return m.Dropout2.Forward(m.Linear2.Forward(h))
		}
		if m.NormFirst {
			x = x.Add(sa(m.Norm1.Forward(x)))
			return x.Add(ff(m.Norm2.Forward(x)))
		}
		x = m.Norm1.Forward(x.Add(sa(x)))
		return m.Norm2.Forward(x.Add(ff(x)))
	})
}
