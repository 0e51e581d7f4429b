package train

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/optim"
)

// useAMP wraps the model for --amp: its forward under autocast (bf16 on
// the CPU or CUDA, fp16 on CUDA) with float32 logits; for fp16 also
// dynamic gradient scaling (optim.GradScaler: the gradient is scaled at the
// model's output, unscaled before the step, and a step with non-finite
// gradients is skipped). Checkpoints are the wrapped model's, unchanged.
func (t *Trainer) useAMP() error {
	dt, on, err := torch.ParseAMP(t.opt.AMP, t.dev)
	if err != nil || !on {
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		return nil
	}
	a := models.WithAutocast(t.model, t.dev, dt)
	if dt == torch.Float16 {
		s := optim.NewGradScaler()
		a.GradScale = s.Scale
		t.optim = s.Wrap(t.optim)
	}
	t.model = a
	t.emit(Event{Kind: "info", Message: fmt.Sprintf("--amp %s: the forward runs under autocast in %s", t.opt.AMP, dt)})
	return nil
}
