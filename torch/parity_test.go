package torch_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch"
)

// in describes one generated input of a parity case.
type in struct {
	shape  []int64
	dtype  torch.DType // Float64 when zero
	grad   bool
	lo, hi int64 // integer inputs: uniform in [lo, hi)
	pos    bool  // floats in [0.5, 2) instead of N(0,1)
}

type pcase struct {
	name  string
	ins   []in
	setup string // Python statements run before py
	py    string // Python expression over a, b, c, ...
	fn    func(x []*torch.Tensor) []*torch.Tensor
	tol   float64 // absolute and relative tolerance; default by dtype
}

func one(t *torch.Tensor) []*torch.Tensor { return []*torch.Tensor{t} }

func f64(shape ...int64) in           { return in{shape: shape, grad: true} }
func f32(shape ...int64) in           { return in{shape: shape, dtype: torch.Float32, grad: true} }
func pos64(shape ...int64) in         { return in{shape: shape, grad: true, pos: true} }
func idx(hi int64, shape ...int64) in { return in{shape: shape, dtype: torch.Int64, hi: hi} }
func nograd(i in) in                  { i.grad = false; return i }

var p2 = func(a, b int64) [2]int64 { return [2]int64{a, b} }

func parityCases() []pcase {
	return []pcase{
		// shape
		{name: "view", ins: []in{f64(2, 3, 4)}, py: "a.view(6, 4)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].View(6, 4)) }},
		{name: "reshape_noncontig", ins: []in{f64(2, 3, 4)}, py: "a.transpose(0, 2).reshape(4, -1)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Transpose(0, 2).Reshape(4, -1)) }},
		{name: "permute_contiguous", ins: []in{f64(2, 3, 4)}, py: "a.permute(2, 0, 1).contiguous()", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Permute(2, 0, 1).Contiguous()) }},
		{name: "flatten", ins: []in{f64(2, 3, 4, 1)}, py: "a.flatten(1, -1)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Flatten(1, -1)) }},
		{name: "squeeze_all", ins: []in{f64(1, 3, 1, 2)}, py: "a.squeeze()", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Squeeze()) }},
		{name: "squeeze_dim", ins: []in{f64(1, 3, 1, 2)}, py: "a.squeeze(2)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].SqueezeDim(2)) }},
		{name: "unsqueeze", ins: []in{f64(3, 2)}, py: "a.unsqueeze(1)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Unsqueeze(1)) }},
		{name: "expand", ins: []in{f64(3, 1)}, py: "a.expand(2, 3, 4)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Expand(2, 3, 4)) }},
		{name: "repeat", ins: []in{f64(2, 3)}, py: "a.repeat(2, 1, 2)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Repeat(2, 1, 2)) }},
		{name: "flip", ins: []in{f64(2, 3, 4)}, py: "a.flip(0, 2)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Flip(0, 2)) }},
		{name: "cat", ins: []in{f64(2, 3), f64(2, 5)}, py: "torch.cat([a, b], 1)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.Cat(x, 1)) }},
		{name: "stack", ins: []in{f64(2, 3), f64(2, 3)}, py: "torch.stack([a, b.t().t()], 2)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.Stack(x, 2)) }},
		{name: "split", ins: []in{f64(7, 3)}, py: "a.split(3, 0)", fn: func(x []*torch.Tensor) []*torch.Tensor { s, _ := x[0].Split(3, 0); return s }},
		{name: "chunk", ins: []in{f64(3, 7)}, py: "a.chunk(3, 1)", fn: func(x []*torch.Tensor) []*torch.Tensor { s, _ := x[0].Chunk(3, 1); return s }},
		{name: "narrow_select", ins: []in{f64(5, 4)}, py: "a.narrow(0, 1, 3).select(1, 2)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Narrow(0, 1, 3).Select(1, 2)) }},
		{name: "index_select", ins: []in{f64(5, 3), idx(5, 4)}, py: "a.index_select(0, b)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].IndexSelect(0, x[1])) }},
		{name: "gather", ins: []in{f64(3, 4), idx(4, 3, 2)}, py: "a.gather(1, b)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Gather(1, x[1])) }},
		{name: "roll", ins: []in{f64(3, 5)}, py: "a.roll((1, -2), (0, 1))", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Roll([]int64{1, -2}, []int64{0, 1})) }},
		{name: "pad_constant", ins: []in{f64(1, 2, 5, 6)}, py: "F.pad(a, (1, 2, 2, 1), value=0.5)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Pad([]int64{1, 2, 2, 1}, torch.PadConstant, 0.5))
		}},
		{name: "pad_reflect", ins: []in{f64(1, 2, 5, 6)}, py: "F.pad(a, (1, 2, 2, 1), mode='reflect')", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Pad([]int64{1, 2, 2, 1}, torch.PadReflect, 0))
		}},
		{name: "pad_replicate", ins: []in{f64(2, 2, 5, 6)}, py: "F.pad(a, (3, 0, 1, 2), mode='replicate')", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Pad([]int64{3, 0, 1, 2}, torch.PadReplicate, 0))
		}},
		{name: "to_float32", ins: []in{f64(3, 4)}, py: "a.float()", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].ToDType(torch.Float32)) }, tol: 1e-7},

		// arithmetic and broadcasting
		{name: "add_broadcast", ins: []in{f64(2, 3, 4), f64(3, 1)}, py: "a + b", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Add(x[1])) }},
		{name: "sub_noncontig", ins: []in{f64(4, 3), f64(3, 4)}, py: "a.t() - b", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Transpose(0, 1).Sub(x[1])) }},
		{name: "mul_div", ins: []in{f64(2, 3), pos64(1, 3)}, py: "a * b / (b + 1)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Mul(x[1]).Div(x[1].AddScalar(1))) }},
		{name: "pow", ins: []in{pos64(2, 3), f64(2, 3)}, py: "a ** b", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Pow(x[1])) }},
		{name: "scalars", ins: []in{f64(2, 3)}, py: "(2.5 - (a * 1.5 + 0.25) / 4.0) ** 2.0", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].MulScalar(1.5).AddScalar(0.25).DivScalar(4).RSubScalar(2.5).PowScalar(2))
		}},
		{name: "add_scaled", ins: []in{f64(2, 3), f64(3)}, py: "torch.add(a, b, alpha=-0.3)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].AddScaled(x[1], -0.3)) }},
		{name: "maximum_minimum", ins: []in{f64(2, 3), f64(2, 3)}, py: "torch.maximum(a, b) + torch.minimum(a, b) * 2", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Maximum(x[1]).Add(x[0].Minimum(x[1]).MulScalar(2)))
		}},
		{name: "matmul_broadcast", ins: []in{f64(2, 3, 4), f64(4, 5)}, py: "a @ b", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Matmul(x[1])) }},
		{name: "mm_noncontig", ins: []in{f64(4, 3), f64(4, 5)}, py: "a.t().mm(b)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Transpose(0, 1).Mm(x[1])) }},
		{name: "bmm", ins: []in{f64(2, 3, 4), f64(2, 4, 5)}, py: "a.bmm(b)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Bmm(x[1])) }},
		{name: "linear", ins: []in{f64(5, 4), f64(3, 4), f64(3)}, py: "F.linear(a, b, c)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.Linear(x[0], x[1], x[2])) }},
		{name: "linear_f32_nobias", ins: []in{f32(1, 2, 7), f32(3, 7)}, py: "F.linear(a, b)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.Linear(x[0], x[1], nil)) }},

		// reductions
		{name: "sum_all", ins: []in{f64(2, 3, 4)}, py: "a.sum()", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Sum()) }},
		{name: "sum_dims_keepdim", ins: []in{f64(2, 3, 4)}, py: "a.sum((0, 2), keepdim=True)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].SumDims([]int64{0, 2}, true)) }},
		{name: "mean_dims", ins: []in{f64(2, 3, 4)}, py: "a.mean(1)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].MeanDims([]int64{1}, false)) }},
		{name: "mean_all_f32", ins: []in{f32(5, 7)}, py: "a.mean()", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Mean()) }},
		{name: "max_min_all", ins: []in{f64(3, 4)}, py: "a.max() - a.min()", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Max().Sub(x[0].Min())) }},
		{name: "max_dim", ins: []in{f64(3, 4)}, py: "a.max(1)", fn: func(x []*torch.Tensor) []*torch.Tensor { v, i := x[0].MaxDim(1, false); return []*torch.Tensor{v, i} }},
		{name: "min_dim_keepdim", ins: []in{f64(3, 4)}, py: "a.min(0, keepdim=True)", fn: func(x []*torch.Tensor) []*torch.Tensor { v, i := x[0].MinDim(0, true); return []*torch.Tensor{v, i} }},
		{name: "argmax", ins: []in{nograd(f64(2, 3, 4))}, py: "a.argmax(1)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Argmax(1, false)) }},
		{name: "amax", ins: []in{f64(2, 3, 4)}, py: "a.amax((1, 2), keepdim=True)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Amax([]int64{1, 2}, true)) }},
		{name: "norm2", ins: []in{f64(2, 3, 4)}, py: "torch.linalg.vector_norm(a, 2, (1, 2))", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Norm(2, []int64{1, 2}, false)) }},
		{name: "norm1_all", ins: []in{f64(2, 3)}, py: "torch.linalg.vector_norm(a, 1)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Norm(1, nil, false)) }},
		{name: "var_std", ins: []in{f64(3, 5)}, py: "a.var(1) + a.std(0, unbiased=False).sum()", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Var([]int64{1}, true, false).Add(x[0].Std([]int64{0}, false, false).Sum()))
		}},
		{name: "logsumexp", ins: []in{f64(3, 5)}, py: "a.logsumexp(1)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].LogSumExp([]int64{1}, false)) }},
		{name: "cumsum", ins: []in{f64(3, 5)}, py: "a.cumsum(1)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Cumsum(1)) }},
		{name: "bincount", ins: []in{idx(6, 20)}, py: "a.bincount(minlength=8)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Bincount(nil, 8)) }},

		// elementwise
		{name: "exp_log", ins: []in{pos64(3, 4)}, py: "a.exp() + a.log() + a.log1p() + a.log2()", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Exp().Add(x[0].Log()).Add(x[0].Log1p()).Add(x[0].Log2()))
		}},
		{name: "sqrt_rsqrt_recip", ins: []in{pos64(3, 4)}, py: "a.sqrt() * a.rsqrt() + a.reciprocal() + a.square()", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Sqrt().Mul(x[0].Rsqrt()).Add(x[0].Reciprocal()).Add(x[0].Square()))
		}},
		{name: "trig_abs_neg", ins: []in{f64(3, 4)}, py: "a.sin() - a.cos() + a.abs() - (-a).erf()", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Sin().Sub(x[0].Cos()).Add(x[0].Abs()).Sub(x[0].Neg().Erf()))
		}},
		{name: "activations", ins: []in{f64(3, 4)}, py: "a.tanh() + a.sigmoid() + a.relu() + F.silu(a) + F.relu6(a * 4) + F.leaky_relu(a, 0.1) + F.elu(a)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			a := x[0]
			return one(a.Tanh().Add(a.Sigmoid()).Add(a.Relu()).Add(a.Silu()).Add(a.MulScalar(4).Relu6()).Add(a.LeakyRelu(0.1)).Add(a.Elu(1)))
		}},
		{name: "gelu", ins: []in{f64(3, 4)}, py: "F.gelu(a) + F.gelu(a, approximate='tanh')", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Gelu(false).Add(x[0].Gelu(true))) }},
		{name: "gelu_f32", ins: []in{f32(3, 4)}, py: "F.gelu(a)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Gelu(false)) }},
		{name: "clamp", ins: []in{f64(3, 4)}, py: "a.clamp(-0.5, 0.5) + a.clamp(min=0.2) + a.clamp(max=-0.1)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Clamp(-0.5, 0.5).Add(x[0].ClampMin(0.2)).Add(x[0].ClampMax(-0.1)))
		}},
		{name: "rounding", ins: []in{nograd(f64(3, 4))}, py: "(a * 3).floor() + (a * 3).ceil() + (a * 3).round() + a.sign()", fn: func(x []*torch.Tensor) []*torch.Tensor {
			a := x[0].MulScalar(3)
			return one(a.Floor().Add(a.Ceil()).Add(a.Round()).Add(x[0].Sign()))
		}},
		{name: "compare", ins: []in{f64(3, 4), f64(3, 4)}, py: "((a > b) | (a <= -0.5)) & (a != 0.3)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Gt(x[1]).LogicalOr(x[0].LeScalar(-0.5)).LogicalAnd(x[0].NeScalar(0.3)))
		}},
		{name: "where", ins: []in{f64(3, 4), f64(1, 4)}, py: "torch.where(a > 0, a, b)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.Where(x[0].GtScalar(0), x[0], x[1])) }},
		{name: "masked_fill", ins: []in{f64(3, 4)}, py: "a.masked_fill(a < 0, -2.0)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].MaskedFill(x[0].LtScalar(0), -2)) }},
		{name: "softmax", ins: []in{f64(2, 3, 4)}, py: "a.softmax(1)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Softmax(1)) }},
		{name: "log_softmax_f32", ins: []in{f32(2, 5)}, py: "a.log_softmax(-1)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].LogSoftmax(-1)) }},

		// convolutions
		{name: "conv1d", ins: []in{f64(2, 3, 9), f64(4, 3, 3), f64(4)}, py: "F.conv1d(a, b, c, stride=2, padding=1)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.Conv1d(x[0], x[1], x[2], 2, 1, 1, 1)) }},
		{name: "conv2d", ins: []in{f64(2, 3, 9, 7), f64(6, 3, 3, 3), f64(6)}, py: "F.conv2d(a, b, c, stride=(2, 1), padding=(1, 0), dilation=(1, 2))", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.Conv2d(x[0], x[1], x[2], p2(2, 1), p2(1, 0), p2(1, 2), 1))
		}},
		{name: "conv2d_groups_batch1", ins: []in{f64(1, 4, 6, 5), f64(4, 2, 3, 3)}, py: "F.conv2d(a, b, None, padding=1, groups=2)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.Conv2d(x[0], x[1], nil, p2(1, 1), p2(1, 1), p2(1, 1), 2))
		}},
		{name: "conv2d_f32_noncontig", ins: []in{f32(2, 3, 8, 8), f32(5, 3, 3, 3), f32(5)}, py: "F.conv2d(a.transpose(2, 3), b, c, padding=1)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.Conv2d(x[0].Transpose(2, 3), x[1], x[2], p2(1, 1), p2(1, 1), p2(1, 1), 1))
		}, tol: 2e-5},
		{name: "conv_transpose2d", ins: []in{f64(2, 4, 5, 5), f64(4, 3, 3, 3), f64(3)}, py: "F.conv_transpose2d(a, b, c, stride=2, padding=1, output_padding=1)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.ConvTranspose2d(x[0], x[1], x[2], p2(2, 2), p2(1, 1), p2(1, 1), p2(1, 1), 1))
		}},
		{name: "conv_transpose2d_groups", ins: []in{f64(1, 4, 3, 4), f64(4, 2, 2, 2)}, py: "F.conv_transpose2d(a, b, stride=2, groups=2)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.ConvTranspose2d(x[0], x[1], nil, p2(2, 2), p2(0, 0), p2(0, 0), p2(1, 1), 2))
		}},

		// normalisation
		{name: "batch_norm_train", ins: []in{f64(4, 3, 5, 5), f64(3), f64(3)}, setup: "rm = torch.zeros(3, dtype=torch.float64); rv = torch.ones(3, dtype=torch.float64)",
			py: "(F.batch_norm(a, rm, rv, b, c, True, 0.1, 1e-5), rm, rv)", fn: func(x []*torch.Tensor) []*torch.Tensor {
				rm, rv := torch.Zeros([]int64{3}, torch.Float64), torch.Ones([]int64{3}, torch.Float64)
				return []*torch.Tensor{torch.BatchNorm(x[0], x[1], x[2], rm, rv, true, 0.1, 1e-5), rm, rv}
			}},
		{name: "batch_norm_eval", ins: []in{f64(2, 3, 4, 4), f64(3), f64(3), nograd(f64(3)), nograd(pos64(3))}, py: "F.batch_norm(a, d, e, b, c, False, 0.1, 1e-5)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.BatchNorm(x[0], x[1], x[2], x[3], x[4], false, 0.1, 1e-5))
		}},
		{name: "instance_norm", ins: []in{f64(2, 3, 5, 4)}, py: "F.instance_norm(a)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.InstanceNorm(x[0], nil, nil, nil, nil, true, 0.1, 1e-5))
		}},
		{name: "group_norm", ins: []in{f64(2, 4, 3, 3), f64(4), f64(4)}, py: "F.group_norm(a, 2, b, c)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.GroupNorm(x[0], 2, x[1], x[2], 1e-5)) }},
		{name: "layer_norm", ins: []in{f64(2, 3, 5), f64(5), f64(5)}, py: "F.layer_norm(a, (5,), b, c)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.LayerNorm(x[0], []int64{5}, x[1], x[2], 1e-5))
		}},

		// pooling and resampling
		{name: "max_pool2d_indices", ins: []in{f64(2, 3, 7, 7)}, py: "F.max_pool2d(a, 3, 2, 1, return_indices=True)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			o, i := torch.MaxPool2dWithIndices(x[0], p2(3, 3), p2(2, 2), p2(1, 1), p2(1, 1), false)
			return []*torch.Tensor{o, i}
		}},
		{name: "max_pool2d_ceil", ins: []in{f64(1, 2, 7, 6)}, py: "F.max_pool2d(a, 2, 2, ceil_mode=True)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.MaxPool2d(x[0], p2(2, 2), p2(2, 2), p2(0, 0), p2(1, 1), true))
		}},
		{name: "max_unpool2d", ins: []in{f64(1, 2, 6, 6)}, py: "F.max_unpool2d(*F.max_pool2d(a, 2, 2, return_indices=True), 2, output_size=(6, 6))", fn: func(x []*torch.Tensor) []*torch.Tensor {
			o, i := torch.MaxPool2dWithIndices(x[0], p2(2, 2), p2(2, 2), p2(0, 0), p2(1, 1), false)
			return one(torch.MaxUnpool2d(o, i, p2(6, 6)))
		}},
		{name: "avg_pool2d", ins: []in{f64(2, 3, 7, 7)}, py: "F.avg_pool2d(a, 3, 2, 1, ceil_mode=True, count_include_pad=False)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.AvgPool2d(x[0], p2(3, 3), p2(2, 2), p2(1, 1), true, false))
		}},
		{name: "adaptive_avg_pool2d", ins: []in{f64(2, 3, 7, 5)}, py: "F.adaptive_avg_pool2d(a, (3, 2))", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.AdaptiveAvgPool2d(x[0], p2(3, 2))) }},
		{name: "adaptive_max_pool2d", ins: []in{f64(2, 3, 7, 5)}, py: "F.adaptive_max_pool2d(a, (3, 2), return_indices=True)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			o, i := torch.AdaptiveMaxPool2d(x[0], p2(3, 2))
			return []*torch.Tensor{o, i}
		}},
		{name: "resize_nearest", ins: []in{f64(1, 2, 3, 5)}, py: "F.interpolate(a, size=(7, 4), mode='nearest')", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.Resize(x[0], p2(7, 4), torch.Nearest, false))
		}},
		{name: "resize_bilinear", ins: []in{f64(2, 2, 3, 5)}, py: "F.interpolate(a, size=(7, 9), mode='bilinear', align_corners=False)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.Resize(x[0], p2(7, 9), torch.Bilinear, false))
		}},
		{name: "resize_bilinear_aligned", ins: []in{f64(2, 2, 3, 5)}, py: "F.interpolate(a, size=(4, 11), mode='bilinear', align_corners=True)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.Resize(x[0], p2(4, 11), torch.Bilinear, true))
		}},
		{name: "upscale_bilinear", ins: []in{f64(1, 2, 3, 5)}, py: "F.interpolate(a, scale_factor=2.5, mode='bilinear', align_corners=False)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.Upscale(x[0], 2.5, torch.Bilinear, false))
		}},
		{name: "upscale_nearest", ins: []in{f64(1, 2, 3, 5)}, py: "F.interpolate(a, scale_factor=2, mode='nearest')", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.Upscale(x[0], 2, torch.Nearest, false)) }},
		{name: "grid_sample_affine", ins: []in{f64(2, 3, 5, 6), f64(2, 2, 3)}, py: "F.grid_sample(a, F.affine_grid(b, [2, 3, 4, 5], align_corners=False), align_corners=False)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.GridSample(x[0], torch.AffineGrid(x[1], []int64{2, 3, 4, 5}, false), torch.Bilinear, torch.GridZeros, false))
		}},
		{name: "grid_sample_border_aligned", ins: []in{f64(1, 2, 5, 6), f64(1, 2, 3)}, py: "F.grid_sample(a, F.affine_grid(b, [1, 2, 5, 6], align_corners=True), padding_mode='border', align_corners=True)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.GridSample(x[0], torch.AffineGrid(x[1], []int64{1, 2, 5, 6}, true), torch.Bilinear, torch.GridBorder, true))
		}},
		{name: "grid_sample_nearest_reflect", ins: []in{f64(1, 2, 5, 6), nograd(f64(1, 2, 3))}, py: "F.grid_sample(a, F.affine_grid(b, [1, 2, 4, 4], align_corners=False), mode='nearest', padding_mode='reflection', align_corners=False)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.GridSample(x[0], torch.AffineGrid(x[1], []int64{1, 2, 4, 4}, false), torch.Nearest, torch.GridReflection, false))
		}},

		// losses and encodings
		{name: "cross_entropy_weighted_ignore", ins: []in{f64(4, 3, 5, 5), idx(3, 4, 5, 5), nograd(pos64(3))}, py: "F.cross_entropy(a, b, weight=c, ignore_index=1)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.CrossEntropy(x[0], x[1], x[2], torch.ReduceMean, 1, 0))
		}},
		{name: "cross_entropy_none_smooth", ins: []in{f64(3, 4), idx(4, 3)}, py: "F.cross_entropy(a, b, reduction='none', label_smoothing=0.1)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.CrossEntropy(x[0], x[1], nil, torch.ReduceNone, torch.NoIgnoreIndex, 0.1))
		}},
		{name: "cross_entropy_f32_sum", ins: []in{f32(2, 3, 4, 4), idx(3, 2, 4, 4)}, py: "F.cross_entropy(a, b, reduction='sum')", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.CrossEntropy(x[0], x[1], nil, torch.ReduceSum, torch.NoIgnoreIndex, 0))
		}, tol: 2e-5},
		{name: "nll_loss", ins: []in{f64(5, 3), idx(3, 5)}, py: "F.nll_loss(a.log_softmax(1), b)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.NLLLoss(x[0].LogSoftmax(1), x[1], nil, torch.ReduceMean, torch.NoIgnoreIndex))
		}},
		{name: "mse_bce", ins: []in{f64(3, 4), nograd(pos64(3, 4))}, py: "F.mse_loss(a, b) + F.binary_cross_entropy_with_logits(a, b / 2)", fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.MSELoss(x[0], x[1], torch.ReduceMean).Add(torch.BCEWithLogits(x[0], x[1].DivScalar(2), nil, nil, torch.ReduceMean)))
		}},
		{name: "one_hot", ins: []in{idx(4, 2, 3)}, py: "F.one_hot(a, 4)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.OneHot(x[0], 4)) }},
		{name: "embedding", ins: []in{f64(6, 3), idx(6, 2, 4)}, py: "F.embedding(b, a)", fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.Embedding(x[0], x[1])) }},
	}
}

type pyOut struct {
	Name    string `json:"name"`
	Error   string `json:"error"`
	Outputs []struct {
		Shape []int64   `json:"shape"`
		Data  []float64 `json:"data"`
	} `json:"outputs"`
	Grads [][]float64 `json:"grads"`
}

type pyIn struct {
	Shape []int64   `json:"shape"`
	DType string    `json:"dtype"`
	Grad  bool      `json:"grad"`
	Data  []float64 `json:"data"`
}

// python returns the oracle interpreter, or skips when it is absent outside CI.
func python(t *testing.T) string {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PyTorch oracle missing on CI (apt-get install python3-torch): %v", err)
		}
		t.Skipf("PyTorch oracle (python3-torch) not installed: %v", err)
	}
	return py
}

func genInputs(rng *rand.Rand, specs []in) []pyIn {
	out := make([]pyIn, len(specs))
	for i, s := range specs {
		dt := s.dtype
		if dt == 0 && s.hi == 0 {
			dt = torch.Float64
		}
		n := int64(1)
		for _, d := range s.shape {
			n *= d
		}
		data := make([]float64, n)
		for j := range data {
			switch {
			case s.hi > 0:
				data[j] = float64(s.lo + rng.Int63n(s.hi-s.lo))
			case s.pos:
				data[j] = 0.5 + 1.5*rng.Float64()
			default:
				data[j] = math.Round(rng.NormFloat64()*1e6) / 1e6
			}
		}
		out[i] = pyIn{Shape: s.shape, DType: dt.String(), Grad: s.grad && dt.IsFloat(), Data: data}
	}
	return out
}

func TestParityWithPyTorch(t *testing.T) {
	py := python(t)
	cases := parityCases()
	rng := rand.New(rand.NewSource(1))
	type job struct {
		Name   string `json:"name"`
		Inputs []pyIn `json:"inputs"`
		Setup  string `json:"setup"`
		Py     string `json:"py"`
	}
	jobs := make([]job, len(cases))
	for i, c := range cases {
		jobs[i] = job{Name: c.name, Inputs: genInputs(rng, c.ins), Setup: c.setup, Py: c.py}
	}
	dir := t.TempDir()
	inPath, outPath := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	b, err := json.Marshal(jobs)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(inPath, b, 0o644))
	cmd := exec.Command(py, "testdata/oracle.py", inPath, outPath, fmt.Sprint(torch.NumThreads()))
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, string(msg))
	b, err = os.ReadFile(outPath)
	require.NoError(t, err)
	var want []pyOut
	require.NoError(t, json.Unmarshal(b, &want))
	require.Len(t, want, len(cases))

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := want[i]
			require.Empty(t, w.Error, "oracle failed on %s", c.py)
			s := torch.NewScope()
			defer s.Close()
			xs := make([]*torch.Tensor, len(jobs[i].Inputs))
			for k, pi := range jobs[i].Inputs {
				dt, err := torch.ParseDType(pi.DType)
				require.NoError(t, err)
				x := torch.FromSlice(pi.Data, pi.Shape, dt, s)
				if pi.Grad {
					require.NoError(t, x.SetRequiresGrad(true))
				}
				xs[k] = x
			}
			outs := c.fn(xs)
			require.Len(t, outs, len(w.Outputs))
			for k, o := range outs {
				s.Track(o)
				require.NoError(t, o.Err(), "output %d", k)
				require.Equal(t, w.Outputs[k].Shape, o.Shape(), "output %d shape", k)
				got, err := o.Float64s()
				require.NoError(t, err)
				assertClose(t, w.Outputs[k].Data, got, c.tolFor(o.DType()), "output %d", k)
			}
			if w.Grads == nil {
				return
			}
			y := outs[0]
			wt := torch.Arange(0, float64(y.Numel()), 1, s).ToDType(torch.Float64).Sin().Reshape(y.Shape()...).ToDType(y.DType())
			require.NoError(t, y.Mul(wt).Sum().Backward())
			for k, x := range xs {
				if w.Grads[k] == nil {
					continue
				}
				g := s.Track(x.Grad())
				require.NotNil(t, g, "input %d has no gradient", k)
				got, err := g.Float64s()
				require.NoError(t, err)
				assertClose(t, w.Grads[k], got, c.tolFor(x.DType()), "grad of input %d", k)
			}
		})
	}
}

func (c pcase) tolFor(dt torch.DType) float64 {
	if c.tol > 0 {
		return c.tol
	}
	if dt == torch.Float32 {
		return 1e-5
	}
	return 1e-10
}

func assertClose(t *testing.T, want, got []float64, tol float64, msg string, args ...any) {
	t.Helper()
	require.Len(t, got, len(want), fmt.Sprintf(msg, args...))
	worst, at := 0.0, -1
	for i := range want {
		d := math.Abs(want[i] - got[i])
		if d > tol*(1+math.Abs(want[i])) && d > worst {
			worst, at = d, i
		}
	}
	if at >= 0 {
		t.Fatalf("%s: element %d differs: want %v got %v (|diff| %g, tol %g)", fmt.Sprintf(msg, args...), at, want[at], got[at], worst, tol)
	}
}
