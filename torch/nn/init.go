package nn

import (
	"fmt"
	"math"

	"github.com/jmedseg/jmedseg/torch"
)

// Nonlinearity names an activation for CalculateGain and the Kaiming
// initialisers, as in torch.nn.init.
type Nonlinearity string

// Nonlinearities known to CalculateGain.
const (
	GainLinear    Nonlinearity = "linear"
	GainSigmoid   Nonlinearity = "sigmoid"
	GainTanh      Nonlinearity = "tanh"
	GainReLU      Nonlinearity = "relu"
	GainLeakyReLU Nonlinearity = "leaky_relu"
	GainSELU      Nonlinearity = "selu"
	GainConv      Nonlinearity = "conv2d"
)

// FanMode selects which fan the Kaiming initialisers preserve.
type FanMode int

// Fan modes.
const (
	FanIn FanMode = iota
	FanOut
)

// CalculateGain is torch.nn.init.calculate_gain; param is the negative
// slope of GainLeakyReLU.
func CalculateGain(n Nonlinearity, param float64) float64 {
	switch n {
	case GainTanh:
		return 5.0 / 3
	case GainReLU:
		return math.Sqrt2
	case GainLeakyReLU:
		return math.Sqrt(2 / (1 + param*param))
	case GainSELU:
		return 3.0 / 4
	}
	return 1
}

// Fans returns fan_in and fan_out of a weight as PyTorch computes them:
// size(1)·receptive field and size(0)·receptive field.
func Fans(t *torch.Tensor) (fanIn, fanOut int64, err error) {
	s := t.Shape()
	if len(s) < 2 {
		return 0, 0, fmt.Errorf("nn: fan in and fan out need at least 2 dimensions, got %v", s)
	}
	rf := int64(1)
	for _, d := range s[2:] {
		rf *= d
	}
	return s[1] * rf, s[0] * rf, nil
}

func fill(t *torch.Tensor, f func() error) error {
	if err := t.Err(); err != nil {
		return err
	}
	var err error
	torch.NoGrad(func() { err = f() })
	return err
}

// Uniform fills t with samples uniform in [a, b).
func Uniform(t *torch.Tensor, a, b float64) error {
	return fill(t, func() error { return t.UniformInPlace(a, b) })
}

// Normal fills t with normal samples.
func Normal(t *torch.Tensor, mean, std float64) error {
	return fill(t, func() error { return t.NormalInPlace(mean, std) })
}

// Constant fills t with v.
func Constant(t *torch.Tensor, v float64) error { return fill(t, func() error { return t.Fill(v) }) }

// Zeros fills t with 0.
func Zeros(t *torch.Tensor) error { return Constant(t, 0) }

// Ones fills t with 1.
func Ones(t *torch.Tensor) error { return Constant(t, 1) }

func kaimingStd(t *torch.Tensor, a float64, mode FanMode, n Nonlinearity) (float64, error) {
	in, out, err := Fans(t)
	if err != nil {
		return 0, err
	}
	fan := in
	if mode == FanOut {
		fan = out
	}
	if fan == 0 {
		return 0, fmt.Errorf("nn: kaiming initialisation of a tensor with zero fan (shape %v)", t.Shape())
	}
	return CalculateGain(n, a) / math.Sqrt(float64(fan)), nil
}

// KaimingUniform is torch.nn.init.kaiming_uniform_: uniform in ±bound with
// bound = gain·sqrt(3/fan).
func KaimingUniform(t *torch.Tensor, a float64, mode FanMode, n Nonlinearity) error {
	std, err := kaimingStd(t, a, mode, n)
	if err != nil {
		return err
	}
	b := math.Sqrt(3) * std
	return Uniform(t, -b, b)
}

// KaimingNormal is torch.nn.init.kaiming_normal_: N(0, gain²/fan).
func KaimingNormal(t *torch.Tensor, a float64, mode FanMode, n Nonlinearity) error {
	std, err := kaimingStd(t, a, mode, n)
	if err != nil {
		return err
	}
	return Normal(t, 0, std)
}

func xavierStd(t *torch.Tensor, gain float64) (float64, error) {
	in, out, err := Fans(t)
	if err != nil {
		return 0, err
	}
	if in+out == 0 {
		return 0, fmt.Errorf("nn: xavier initialisation of an empty tensor (shape %v)", t.Shape())
	}
	return gain * math.Sqrt(2/float64(in+out)), nil
}

// XavierUniform is torch.nn.init.xavier_uniform_.
func XavierUniform(t *torch.Tensor, gain float64) error {
	std, err := xavierStd(t, gain)
	if err != nil {
		return err
	}
	b := math.Sqrt(3) * std
	return Uniform(t, -b, b)
}

// XavierNormal is torch.nn.init.xavier_normal_.
func XavierNormal(t *torch.Tensor, gain float64) error {
	std, err := xavierStd(t, gain)
	if err != nil {
		return err
	}
	return Normal(t, 0, std)
}

// defaultInit gives a weight and its bias PyTorch's default for Conv and
// Linear: kaiming_uniform(a=√5) and uniform(±1/√fan_in).
func defaultInit(w, b *torch.Tensor) error {
	if err := KaimingUniform(w, math.Sqrt(5), FanIn, GainLeakyReLU); err != nil {
		return err
	}
	if b == nil {
		return nil
	}
	in, _, err := Fans(w)
	if err != nil {
		return err
	}
	bound := 0.0
	if in > 0 {
		bound = 1 / math.Sqrt(float64(in))
	}
	return Uniform(b, -bound, bound)
}
