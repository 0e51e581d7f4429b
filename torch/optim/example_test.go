package optim_test

import (
	"fmt"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/torch/optim"
)

// One training step with Adam, gradient clipping and a poly schedule.
func Example() {
	torch.ManualSeed(0)
	m := nn.NewLinear(3, 1)
	defer m.Free()
	opt, err := optim.NewAdam(optim.AdamConfig{LR: 0.1}, optim.Params(m.Parameters()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer opt.Free()
	sched := optim.NewScheduler(opt, optim.Poly(100, 0.9))

	err = torch.WithScope(func(s *torch.Scope) error {
		x := torch.Ones([]int64{4, 3}, s)
		loss := m.Forward(x).Square().Mean()
		if err := opt.ZeroGrad(); err != nil {
			return err
		}
		if err := loss.Backward(); err != nil {
			return err
		}
		if _, err := optim.ClipGradNorm(m.Parameters(), 1, 2); err != nil {
			return err
		}
		return opt.Step()
	})
	sched.Step()
	fmt.Println(err, opt.StateDict().Numbers["0.step"])
	fmt.Printf("lr %.6f\n", sched.LR()[0])
	// Output:
	// <nil> 1
	// lr 0.099100
}
