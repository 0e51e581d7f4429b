package torch_test

import (
	"testing"

	"github.com/jmedseg/jmedseg/internal/oracle"
	"github.com/jmedseg/jmedseg/torch"
)

var p2 = func(a, b int64) [2]int64 { return [2]int64{a, b} }

type (
	pcase = oracle.Case
)

var (
	one    = oracle.One
	f64    = oracle.F64
	f32    = oracle.F32
	pos64  = oracle.Pos64
	idx    = oracle.Index
	nograd = oracle.NoGrad
)

type in = oracle.Input

func parityCases() []pcase {
	return []pcase{
		// shape
		{Name: "view", In: []in{f64(2, 3, 4)}, Py: "a.view(6, 4)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].View(6, 4)) }},
		{Name: "reshape_noncontig", In: []in{f64(2, 3, 4)}, Py: "a.transpose(0, 2).reshape(4, -1)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Transpose(0, 2).Reshape(4, -1)) }},
		{Name: "permute_contiguous", In: []in{f64(2, 3, 4)}, Py: "a.permute(2, 0, 1).contiguous()", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Permute(2, 0, 1).Contiguous()) }},
		{Name: "flatten", In: []in{f64(2, 3, 4, 1)}, Py: "a.flatten(1, -1)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Flatten(1, -1)) }},
		{Name: "squeeze_all", In: []in{f64(1, 3, 1, 2)}, Py: "a.squeeze()", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Squeeze()) }},
		{Name: "squeeze_dim", In: []in{f64(1, 3, 1, 2)}, Py: "a.squeeze(2)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].SqueezeDim(2)) }},
		{Name: "unsqueeze", In: []in{f64(3, 2)}, Py: "a.unsqueeze(1)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Unsqueeze(1)) }},
		{Name: "expand", In: []in{f64(3, 1)}, Py: "a.expand(2, 3, 4)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Expand(2, 3, 4)) }},
		{Name: "repeat", In: []in{f64(2, 3)}, Py: "a.repeat(2, 1, 2)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Repeat(2, 1, 2)) }},
		{Name: "flip", In: []in{f64(2, 3, 4)}, Py: "a.flip(0, 2)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Flip(0, 2)) }},
		{Name: "cat", In: []in{f64(2, 3), f64(2, 5)}, Py: "torch.cat([a, b], 1)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.Cat(x, 1)) }},
		{Name: "stack", In: []in{f64(2, 3), f64(2, 3)}, Py: "torch.stack([a, b.t().t()], 2)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.Stack(x, 2)) }},
		{Name: "split", In: []in{f64(7, 3)}, Py: "a.split(3, 0)", Fn: func(x []*torch.Tensor) []*torch.Tensor { s, _ := x[0].Split(3, 0); return s }},
		{Name: "chunk", In: []in{f64(3, 7)}, Py: "a.chunk(3, 1)", Fn: func(x []*torch.Tensor) []*torch.Tensor { s, _ := x[0].Chunk(3, 1); return s }},
		{Name: "narrow_select", In: []in{f64(5, 4)}, Py: "a.narrow(0, 1, 3).select(1, 2)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Narrow(0, 1, 3).Select(1, 2)) }},
		{Name: "index_select", In: []in{f64(5, 3), idx(5, 4)}, Py: "a.index_select(0, b)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].IndexSelect(0, x[1])) }},
		{Name: "gather", In: []in{f64(3, 4), idx(4, 3, 2)}, Py: "a.gather(1, b)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Gather(1, x[1])) }},
		{Name: "roll", In: []in{f64(3, 5)}, Py: "a.roll((1, -2), (0, 1))", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Roll([]int64{1, -2}, []int64{0, 1})) }},
		{Name: "pad_constant", In: []in{f64(1, 2, 5, 6)}, Py: "F.pad(a, (1, 2, 2, 1), value=0.5)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Pad([]int64{1, 2, 2, 1}, torch.PadConstant, 0.5))
		}},
		{Name: "pad_reflect", In: []in{f64(1, 2, 5, 6)}, Py: "F.pad(a, (1, 2, 2, 1), mode='reflect')", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Pad([]int64{1, 2, 2, 1}, torch.PadReflect, 0))
		}},
		{Name: "pad_replicate", In: []in{f64(2, 2, 5, 6)}, Py: "F.pad(a, (3, 0, 1, 2), mode='replicate')", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Pad([]int64{3, 0, 1, 2}, torch.PadReplicate, 0))
		}},
		{Name: "to_float32", In: []in{f64(3, 4)}, Py: "a.float()", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].ToDType(torch.Float32)) }, Tol: 1e-7},

		// arithmetic and broadcasting
		{Name: "add_broadcast", In: []in{f64(2, 3, 4), f64(3, 1)}, Py: "a + b", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Add(x[1])) }},
		{Name: "sub_noncontig", In: []in{f64(4, 3), f64(3, 4)}, Py: "a.t() - b", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Transpose(0, 1).Sub(x[1])) }},
		{Name: "mul_div", In: []in{f64(2, 3), pos64(1, 3)}, Py: "a * b / (b + 1)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Mul(x[1]).Div(x[1].AddScalar(1))) }},
		{Name: "pow", In: []in{pos64(2, 3), f64(2, 3)}, Py: "a ** b", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Pow(x[1])) }},
		{Name: "scalars", In: []in{f64(2, 3)}, Py: "(2.5 - (a * 1.5 + 0.25) / 4.0) ** 2.0", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].MulScalar(1.5).AddScalar(0.25).DivScalar(4).RSubScalar(2.5).PowScalar(2))
		}},
		{Name: "add_scaled", In: []in{f64(2, 3), f64(3)}, Py: "torch.add(a, b, alpha=-0.3)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].AddScaled(x[1], -0.3)) }},
		{Name: "maximum_minimum", In: []in{f64(2, 3), f64(2, 3)}, Py: "torch.maximum(a, b) + torch.minimum(a, b) * 2", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Maximum(x[1]).Add(x[0].Minimum(x[1]).MulScalar(2)))
		}},
		{Name: "matmul_broadcast", In: []in{f64(2, 3, 4), f64(4, 5)}, Py: "a @ b", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Matmul(x[1])) }},
		{Name: "mm_noncontig", In: []in{f64(4, 3), f64(4, 5)}, Py: "a.t().mm(b)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Transpose(0, 1).Mm(x[1])) }},
		{Name: "bmm", In: []in{f64(2, 3, 4), f64(2, 4, 5)}, Py: "a.bmm(b)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Bmm(x[1])) }},
		{Name: "linear", In: []in{f64(5, 4), f64(3, 4), f64(3)}, Py: "F.linear(a, b, c)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.Linear(x[0], x[1], x[2])) }},
		{Name: "linear_f32_nobias", In: []in{f32(1, 2, 7), f32(3, 7)}, Py: "F.linear(a, b)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.Linear(x[0], x[1], nil)) }},

		// reductions
		{Name: "sum_all", In: []in{f64(2, 3, 4)}, Py: "a.sum()", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Sum()) }},
		{Name: "sum_dims_keepdim", In: []in{f64(2, 3, 4)}, Py: "a.sum((0, 2), keepdim=True)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].SumDims([]int64{0, 2}, true)) }},
		{Name: "mean_dims", In: []in{f64(2, 3, 4)}, Py: "a.mean(1)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].MeanDims([]int64{1}, false)) }},
		{Name: "mean_all_f32", In: []in{f32(5, 7)}, Py: "a.mean()", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Mean()) }},
		{Name: "max_min_all", In: []in{f64(3, 4)}, Py: "a.max() - a.min()", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Max().Sub(x[0].Min())) }},
		{Name: "max_dim", In: []in{f64(3, 4)}, Py: "a.max(1)", Fn: func(x []*torch.Tensor) []*torch.Tensor { v, i := x[0].MaxDim(1, false); return []*torch.Tensor{v, i} }},
		{Name: "min_dim_keepdim", In: []in{f64(3, 4)}, Py: "a.min(0, keepdim=True)", Fn: func(x []*torch.Tensor) []*torch.Tensor { v, i := x[0].MinDim(0, true); return []*torch.Tensor{v, i} }},
		{Name: "argmax", In: []in{nograd(f64(2, 3, 4))}, Py: "a.argmax(1)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Argmax(1, false)) }},
		{Name: "amax", In: []in{f64(2, 3, 4)}, Py: "a.amax((1, 2), keepdim=True)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Amax([]int64{1, 2}, true)) }},
		{Name: "norm2", In: []in{f64(2, 3, 4)}, Py: "torch.linalg.vector_norm(a, 2, (1, 2))", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Norm(2, []int64{1, 2}, false)) }},
		{Name: "norm1_all", In: []in{f64(2, 3)}, Py: "torch.linalg.vector_norm(a, 1)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Norm(1, nil, false)) }},
		{Name: "var_std", In: []in{f64(3, 5)}, Py: "a.var(1) + a.std(0, unbiased=False).sum()", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Var([]int64{1}, true, false).Add(x[0].Std([]int64{0}, false, false).Sum()))
		}},
		{Name: "logsumexp", In: []in{f64(3, 5)}, Py: "a.logsumexp(1)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].LogSumExp([]int64{1}, false)) }},
		{Name: "cumsum", In: []in{f64(3, 5)}, Py: "a.cumsum(1)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Cumsum(1)) }},
		{Name: "bincount", In: []in{idx(6, 20)}, Py: "a.bincount(minlength=8)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Bincount(nil, 8)) }},

		// elementwise
		{Name: "exp_log", In: []in{pos64(3, 4)}, Py: "a.exp() + a.log() + a.log1p() + a.log2()", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Exp().Add(x[0].Log()).Add(x[0].Log1p()).Add(x[0].Log2()))
		}},
		{Name: "sqrt_rsqrt_recip", In: []in{pos64(3, 4)}, Py: "a.sqrt() * a.rsqrt() + a.reciprocal() + a.square()", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Sqrt().Mul(x[0].Rsqrt()).Add(x[0].Reciprocal()).Add(x[0].Square()))
		}},
		{Name: "trig_abs_neg", In: []in{f64(3, 4)}, Py: "a.sin() - a.cos() + a.abs() - (-a).erf()", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Sin().Sub(x[0].Cos()).Add(x[0].Abs()).Sub(x[0].Neg().Erf()))
		}},
		{Name: "activations", In: []in{f64(3, 4)}, Py: "a.tanh() + a.sigmoid() + a.relu() + F.silu(a) + F.relu6(a * 4) + F.leaky_relu(a, 0.1) + F.elu(a)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			a := x[0]
			return one(a.Tanh().Add(a.Sigmoid()).Add(a.Relu()).Add(a.Silu()).Add(a.MulScalar(4).Relu6()).Add(a.LeakyRelu(0.1)).Add(a.Elu(1)))
		}},
		{Name: "gelu", In: []in{f64(3, 4)}, Py: "F.gelu(a) + F.gelu(a, approximate='tanh')", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Gelu(false).Add(x[0].Gelu(true))) }},
		{Name: "gelu_f32", In: []in{f32(3, 4)}, Py: "F.gelu(a)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Gelu(false)) }},
		{Name: "clamp", In: []in{f64(3, 4)}, Py: "a.clamp(-0.5, 0.5) + a.clamp(min=0.2) + a.clamp(max=-0.1)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Clamp(-0.5, 0.5).Add(x[0].ClampMin(0.2)).Add(x[0].ClampMax(-0.1)))
		}},
		{Name: "rounding", In: []in{nograd(f64(3, 4))}, Py: "(a * 3).floor() + (a * 3).ceil() + (a * 3).round() + a.sign()", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			a := x[0].MulScalar(3)
			return one(a.Floor().Add(a.Ceil()).Add(a.Round()).Add(x[0].Sign()))
		}},
		{Name: "compare", In: []in{f64(3, 4), f64(3, 4)}, Py: "((a > b) | (a <= -0.5)) & (a != 0.3)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(x[0].Gt(x[1]).LogicalOr(x[0].LeScalar(-0.5)).LogicalAnd(x[0].NeScalar(0.3)))
		}},
		{Name: "where", In: []in{f64(3, 4), f64(1, 4)}, Py: "torch.where(a > 0, a, b)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.Where(x[0].GtScalar(0), x[0], x[1])) }},
		{Name: "masked_fill", In: []in{f64(3, 4)}, Py: "a.masked_fill(a < 0, -2.0)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].MaskedFill(x[0].LtScalar(0), -2)) }},
		{Name: "softmax", In: []in{f64(2, 3, 4)}, Py: "a.softmax(1)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].Softmax(1)) }},
		{Name: "log_softmax_f32", In: []in{f32(2, 5)}, Py: "a.log_softmax(-1)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(x[0].LogSoftmax(-1)) }},

		// convolutions
		{Name: "conv1d", In: []in{f64(2, 3, 9), f64(4, 3, 3), f64(4)}, Py: "F.conv1d(a, b, c, stride=2, padding=1)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.Conv1d(x[0], x[1], x[2], 2, 1, 1, 1)) }},
		{Name: "conv2d", In: []in{f64(2, 3, 9, 7), f64(6, 3, 3, 3), f64(6)}, Py: "F.conv2d(a, b, c, stride=(2, 1), padding=(1, 0), dilation=(1, 2))", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.Conv2d(x[0], x[1], x[2], p2(2, 1), p2(1, 0), p2(1, 2), 1))
		}},
		{Name: "conv2d_groups_batch1", In: []in{f64(1, 4, 6, 5), f64(4, 2, 3, 3)}, Py: "F.conv2d(a, b, None, padding=1, groups=2)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.Conv2d(x[0], x[1], nil, p2(1, 1), p2(1, 1), p2(1, 1), 2))
		}},
		{Name: "conv2d_f32_noncontig", In: []in{f32(2, 3, 8, 8), f32(5, 3, 3, 3), f32(5)}, Py: "F.conv2d(a.transpose(2, 3), b, c, padding=1)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.Conv2d(x[0].Transpose(2, 3), x[1], x[2], p2(1, 1), p2(1, 1), p2(1, 1), 1))
		}, Tol: 2e-5},
		{Name: "conv_transpose2d", In: []in{f64(2, 4, 5, 5), f64(4, 3, 3, 3), f64(3)}, Py: "F.conv_transpose2d(a, b, c, stride=2, padding=1, output_padding=1)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.ConvTranspose2d(x[0], x[1], x[2], p2(2, 2), p2(1, 1), p2(1, 1), p2(1, 1), 1))
		}},
		{Name: "conv_transpose2d_groups", In: []in{f64(1, 4, 3, 4), f64(4, 2, 2, 2)}, Py: "F.conv_transpose2d(a, b, stride=2, groups=2)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.ConvTranspose2d(x[0], x[1], nil, p2(2, 2), p2(0, 0), p2(0, 0), p2(1, 1), 2))
		}},

		// normalisation
		{Name: "batch_norm_train", In: []in{f64(4, 3, 5, 5), f64(3), f64(3)}, Setup: "rm = torch.zeros(3, dtype=torch.float64); rv = torch.ones(3, dtype=torch.float64)",
			Py: "(F.batch_norm(a, rm, rv, b, c, True, 0.1, 1e-5), rm, rv)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
				rm, rv := torch.Zeros([]int64{3}, torch.Float64), torch.Ones([]int64{3}, torch.Float64)
				return []*torch.Tensor{torch.BatchNorm(x[0], x[1], x[2], rm, rv, true, 0.1, 1e-5), rm, rv}
			}},
		{Name: "batch_norm_eval", In: []in{f64(2, 3, 4, 4), f64(3), f64(3), nograd(f64(3)), nograd(pos64(3))}, Py: "F.batch_norm(a, d, e, b, c, False, 0.1, 1e-5)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.BatchNorm(x[0], x[1], x[2], x[3], x[4], false, 0.1, 1e-5))
		}},
		{Name: "instance_norm", In: []in{f64(2, 3, 5, 4)}, Py: "F.instance_norm(a)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.InstanceNorm(x[0], nil, nil, nil, nil, true, 0.1, 1e-5))
		}},
		{Name: "group_norm", In: []in{f64(2, 4, 3, 3), f64(4), f64(4)}, Py: "F.group_norm(a, 2, b, c)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.GroupNorm(x[0], 2, x[1], x[2], 1e-5)) }},
		{Name: "layer_norm", In: []in{f64(2, 3, 5), f64(5), f64(5)}, Py: "F.layer_norm(a, (5,), b, c)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.LayerNorm(x[0], []int64{5}, x[1], x[2], 1e-5))
		}},

		// pooling and resampling
		{Name: "max_pool2d_indices", In: []in{f64(2, 3, 7, 7)}, Py: "F.max_pool2d(a, 3, 2, 1, return_indices=True)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			o, i := torch.MaxPool2dWithIndices(x[0], p2(3, 3), p2(2, 2), p2(1, 1), p2(1, 1), false)
			return []*torch.Tensor{o, i}
		}},
		{Name: "max_pool2d_ceil", In: []in{f64(1, 2, 7, 6)}, Py: "F.max_pool2d(a, 2, 2, ceil_mode=True)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.MaxPool2d(x[0], p2(2, 2), p2(2, 2), p2(0, 0), p2(1, 1), true))
		}},
		{Name: "max_unpool2d", In: []in{f64(1, 2, 6, 6)}, Py: "F.max_unpool2d(*F.max_pool2d(a, 2, 2, return_indices=True), 2, output_size=(6, 6))", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			o, i := torch.MaxPool2dWithIndices(x[0], p2(2, 2), p2(2, 2), p2(0, 0), p2(1, 1), false)
			return one(torch.MaxUnpool2d(o, i, p2(6, 6)))
		}},
		{Name: "avg_pool2d", In: []in{f64(2, 3, 7, 7)}, Py: "F.avg_pool2d(a, 3, 2, 1, ceil_mode=True, count_include_pad=False)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.AvgPool2d(x[0], p2(3, 3), p2(2, 2), p2(1, 1), true, false))
		}},
		{Name: "adaptive_avg_pool2d", In: []in{f64(2, 3, 7, 5)}, Py: "F.adaptive_avg_pool2d(a, (3, 2))", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.AdaptiveAvgPool2d(x[0], p2(3, 2))) }},
		{Name: "adaptive_max_pool2d", In: []in{f64(2, 3, 7, 5)}, Py: "F.adaptive_max_pool2d(a, (3, 2), return_indices=True)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			o, i := torch.AdaptiveMaxPool2d(x[0], p2(3, 2))
			return []*torch.Tensor{o, i}
		}},
		{Name: "resize_nearest", In: []in{f64(1, 2, 3, 5)}, Py: "F.interpolate(a, size=(7, 4), mode='nearest')", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.Resize(x[0], p2(7, 4), torch.Nearest, false))
		}},
		{Name: "resize_bilinear", In: []in{f64(2, 2, 3, 5)}, Py: "F.interpolate(a, size=(7, 9), mode='bilinear', align_corners=False)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.Resize(x[0], p2(7, 9), torch.Bilinear, false))
		}},
		{Name: "resize_bilinear_aligned", In: []in{f64(2, 2, 3, 5)}, Py: "F.interpolate(a, size=(4, 11), mode='bilinear', align_corners=True)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.Resize(x[0], p2(4, 11), torch.Bilinear, true))
		}},
		{Name: "upscale_bilinear", In: []in{f64(1, 2, 3, 5)}, Py: "F.interpolate(a, scale_factor=2.5, mode='bilinear', align_corners=False)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.Upscale(x[0], 2.5, torch.Bilinear, false))
		}},
		{Name: "upscale_nearest", In: []in{f64(1, 2, 3, 5)}, Py: "F.interpolate(a, scale_factor=2, mode='nearest')", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.Upscale(x[0], 2, torch.Nearest, false)) }},
		{Name: "grid_sample_affine", In: []in{f64(2, 3, 5, 6), f64(2, 2, 3)}, Py: "F.grid_sample(a, F.affine_grid(b, [2, 3, 4, 5], align_corners=False), align_corners=False)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.GridSample(x[0], torch.AffineGrid(x[1], []int64{2, 3, 4, 5}, false), torch.Bilinear, torch.GridZeros, false))
		}},
		{Name: "grid_sample_border_aligned", In: []in{f64(1, 2, 5, 6), f64(1, 2, 3)}, Py: "F.grid_sample(a, F.affine_grid(b, [1, 2, 5, 6], align_corners=True), padding_mode='border', align_corners=True)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.GridSample(x[0], torch.AffineGrid(x[1], []int64{1, 2, 5, 6}, true), torch.Bilinear, torch.GridBorder, true))
		}},
		{Name: "grid_sample_nearest_reflect", In: []in{f64(1, 2, 5, 6), nograd(f64(1, 2, 3))}, Py: "F.grid_sample(a, F.affine_grid(b, [1, 2, 4, 4], align_corners=False), mode='nearest', padding_mode='reflection', align_corners=False)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.GridSample(x[0], torch.AffineGrid(x[1], []int64{1, 2, 4, 4}, false), torch.Nearest, torch.GridReflection, false))
		}},

		// losses and encodings
		{Name: "cross_entropy_weighted_ignore", In: []in{f64(4, 3, 5, 5), idx(3, 4, 5, 5), nograd(pos64(3))}, Py: "F.cross_entropy(a, b, weight=c, ignore_index=1)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.CrossEntropy(x[0], x[1], x[2], torch.ReduceMean, 1, 0))
		}},
		{Name: "cross_entropy_none_smooth", In: []in{f64(3, 4), idx(4, 3)}, Py: "F.cross_entropy(a, b, reduction='none', label_smoothing=0.1)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.CrossEntropy(x[0], x[1], nil, torch.ReduceNone, torch.NoIgnoreIndex, 0.1))
		}},
		{Name: "cross_entropy_f32_sum", In: []in{f32(2, 3, 4, 4), idx(3, 2, 4, 4)}, Py: "F.cross_entropy(a, b, reduction='sum')", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.CrossEntropy(x[0], x[1], nil, torch.ReduceSum, torch.NoIgnoreIndex, 0))
		}, Tol: 2e-5},
		{Name: "nll_loss", In: []in{f64(5, 3), idx(3, 5)}, Py: "F.nll_loss(a.log_softmax(1), b)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.NLLLoss(x[0].LogSoftmax(1), x[1], nil, torch.ReduceMean, torch.NoIgnoreIndex))
		}},
		{Name: "mse_bce", In: []in{f64(3, 4), nograd(pos64(3, 4))}, Py: "F.mse_loss(a, b) + F.binary_cross_entropy_with_logits(a, b / 2)", Fn: func(x []*torch.Tensor) []*torch.Tensor {
			return one(torch.MSELoss(x[0], x[1], torch.ReduceMean).Add(torch.BCEWithLogits(x[0], x[1].DivScalar(2), nil, nil, torch.ReduceMean)))
		}},
		{Name: "one_hot", In: []in{idx(4, 2, 3)}, Py: "F.one_hot(a, 4)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.OneHot(x[0], 4)) }},
		{Name: "embedding", In: []in{f64(6, 3), idx(6, 2, 4)}, Py: "F.embedding(b, a)", Fn: func(x []*torch.Tensor) []*torch.Tensor { return one(torch.Embedding(x[0], x[1])) }},
	}
}

func TestParityWithPyTorch(t *testing.T) { oracle.Check(t, parityCases()) }
