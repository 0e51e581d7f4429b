package optim_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/optim"
)

func TestConfigErrors(t *testing.T) {
	p := torch.Zeros([]int64{2}, torch.RequiresGrad)
	defer p.Free()
	ps := optim.Params([]*torch.Tensor{p})
	cases := []struct {
		name string
		make func() error
		want string
	}{
		{"sgd lr", func() error { _, err := optim.NewSGD(optim.SGDConfig{}, ps); return err }, "invalid lr 0"},
		{"nesterov", func() error { _, err := optim.NewSGD(optim.SGDConfig{LR: 1, Nesterov: true}, ps); return err }, "Nesterov"},
		{"adam betas", func() error {
			_, err := optim.NewAdam(optim.AdamConfig{LR: 1, Betas: [2]float64{1, 0.9}}, ps)
			return err
		}, "betas"},
		{"no groups", func() error { _, err := optim.NewAdamW(optim.AdamConfig{LR: 1}); return err }, "no parameter groups"},
		{"duplicate", func() error { _, err := optim.NewRMSprop(optim.RMSpropConfig{LR: 1}, ps, ps); return err }, "more than one place"},
		{"group wd", func() error {
			_, err := optim.NewSGD(optim.SGDConfig{LR: 1}, optim.Group{Params: ps.Params, WeightDecay: optim.Float(-1)})
			return err
		}, "invalid weight decay"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { require.ErrorContains(t, c.make(), c.want) })
	}
}

func TestStateRoundTrip(t *testing.T) {
	mk := func() (*torch.Tensor, *optim.Adam) {
		p := torch.FromSlice([]float32{1, -2, 3}, nil, torch.RequiresGrad)
		o, err := optim.NewAdam(optim.AdamConfig{LR: 0.1, AMSGrad: true}, optim.Params([]*torch.Tensor{p}))
		require.NoError(t, err)
		return p, o
	}
	step := func(p *torch.Tensor, o optim.Optimizer) {
		require.NoError(t, o.ZeroGrad())
		require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
			return s.Track(p.Square()).Sum().Backward()
		}))
		require.NoError(t, o.Step())
	}
	p1, o1 := mk()
	defer p1.Free()
	defer o1.Free()
	p2, o2 := mk()
	defer p2.Free()
	defer o2.Free()
	for i := 0; i < 3; i++ {
		step(p1, o1)
	}
	st := o1.StateDict()
	require.ElementsMatch(t, []string{"0.exp_avg", "0.exp_avg_sq", "0.max_exp_avg_sq"}, keys(st.Tensors))
	require.Equal(t, 3.0, st.Numbers["0.step"])
	torch.NoGrad(func() { require.NoError(t, p2.CopyFrom(p1)) })
	require.NoError(t, o2.LoadStateDict(st))
	o1.Groups()[0].LR = 0.05
	require.NoError(t, o2.LoadStateDict(o1.StateDict()))
	require.Equal(t, 0.05, o2.Groups()[0].LR)
	step(p1, o1)
	step(p2, o2)
	a, _ := p1.Float32s()
	b, _ := p2.Float32s()
	require.Equal(t, a, b)

	bad := optim.State{Tensors: map[string]*torch.Tensor{"7.exp_avg": st.Tensors["0.exp_avg"]}}
	require.ErrorContains(t, o2.LoadStateDict(bad), "names no parameter")
	wrong := torch.Zeros([]int64{4})
	defer wrong.Free()
	bad = optim.State{Tensors: map[string]*torch.Tensor{"0.exp_avg": wrong}}
	require.ErrorContains(t, o2.LoadStateDict(bad), "has shape [4]")
	bad = optim.State{Tensors: map[string]*torch.Tensor{"0.momentum_buffer": st.Tensors["0.exp_avg"]}}
	require.ErrorContains(t, o2.LoadStateDict(bad), `keeps no "momentum_buffer"`)
}

func keys(m map[string]*torch.Tensor) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestSchedulerState(t *testing.T) {
	p := torch.Zeros([]int64{1}, torch.RequiresGrad)
	defer p.Free()
	o, err := optim.NewSGD(optim.SGDConfig{LR: 1}, optim.Params([]*torch.Tensor{p}))
	require.NoError(t, err)
	s := optim.NewScheduler(o, optim.Warmup(2, 0.5, optim.StepDecay(2, 0.1)))
	var lrs []float64
	for i := 0; i < 6; i++ {
		lrs = append(lrs, s.LR()[0])
		s.Step()
	}
	require.InDeltaSlice(t, []float64{0.5, 0.75, 1, 1, 0.1, 0.1}, lrs, 1e-12)
	o2, err := optim.NewSGD(optim.SGDConfig{LR: 1}, optim.Params([]*torch.Tensor{p}))
	require.NoError(t, err)
	s2 := optim.NewScheduler(o2, optim.Warmup(2, 0.5, optim.StepDecay(2, 0.1)))
	require.NoError(t, s2.LoadStateDict(s.StateDict()))
	require.Equal(t, s.LR(), s2.LR())
	require.Equal(t, 6, s2.Epoch())
	require.Error(t, s2.LoadStateDict(map[string]float64{}))
}

// Issue 12: a constructor that fails returns a nil optimizer whose Free is
// a no-op, also through the Optimizer interface (--weight-decay -1 used to
// panic in Free during the trainer's Close).
func TestFreeAfterFailedConstructor(t *testing.T) {
	p := torch.Zeros([]int64{2}, torch.RequiresGrad)
	defer p.Free()
	ps := optim.Params([]*torch.Tensor{p})
	makers := map[string]func() (optim.Optimizer, error){
		"adam":  func() (optim.Optimizer, error) { return optim.NewAdam(optim.AdamConfig{LR: 1, WeightDecay: -1}, ps) },
		"adamw": func() (optim.Optimizer, error) { return optim.NewAdamW(optim.AdamConfig{LR: 1, WeightDecay: -1}, ps) },
		"sgd":   func() (optim.Optimizer, error) { return optim.NewSGD(optim.SGDConfig{LR: 1, WeightDecay: -1}, ps) },
		"rmsprop": func() (optim.Optimizer, error) {
			return optim.NewRMSprop(optim.RMSpropConfig{LR: 1, WeightDecay: -1}, ps)
		},
	}
	for name, mk := range makers {
		t.Run(name, func(t *testing.T) {
			o, err := mk()
			require.ErrorContains(t, err, "weight decay")
			require.NotPanics(t, func() { o.Free() })
		})
	}
}
