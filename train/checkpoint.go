package train

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/torch/optim"
)

// The training checkpoint
//
// A training checkpoint (last.safetensors) is a safetensors file of kind
// ckpt.KindTraining: the model's state dict under ckpt.ModelPrefix (so
// ckpt.Load and models.Load read the model), the optimizer's tensors under
// "optimizer.", the CPU RNG state as "rng.cpu", and in the metadata the
// optimizer's numbers, the scheduler state, the epoch and the step. It
// lives here rather than in torch/ckpt so that the checkpoint code a
// predicting program links (package infer through models) carries no
// optimizer.

// Metadata keys and tensor names of a training checkpoint.
const (
	metaEpoch     = "jmedseg.epoch"
	metaStep      = "jmedseg.step"
	metaOptimizer = "jmedseg.optimizer"
	metaScheduler = "jmedseg.scheduler"
	optimPrefix   = "optimizer."
	rngKey        = "rng.cpu"
)

// Checkpoint is everything a resumed run needs. SaveCheckpoint writes it;
// LoadCheckpoint restores it into fresh objects built the same way (same
// model layout, optimizer over the same parameters, same schedule).
type Checkpoint struct {
	Model     nn.Node
	Optimizer optim.Optimizer   // nil: none saved or restored
	Scheduler *optim.Scheduler  // nil: none saved or restored
	Epoch     int64             // the caller's counters, restored as saved
	Step      int64             //
	Meta      map[string]string // extra metadata (model name, configuration)
}

// SaveCheckpoint writes the model (ckpt.ModelPrefix keys), the optimizer
// state ("optimizer.*" tensors, numbers in the metadata), the scheduler,
// the CPU RNG state, the epoch, the step and c.Meta to path, atomically.
func SaveCheckpoint(path string, c *Checkpoint) error {
	if c == nil || c.Model == nil {
		return fmt.Errorf("train: %s: no model to save", path)
	}
	if err := c.Model.Err(); err != nil {
		return fmt.Errorf("train: %s: the model is broken: %w", path, err)
	}
	md := map[string]string{"format": "pt"}
	maps.Copy(md, c.Meta)
	md[ckpt.MetaKind] = ckpt.KindTraining
	md[metaEpoch] = strconv.FormatInt(c.Epoch, 10)
	md[metaStep] = strconv.FormatInt(c.Step, 10)
	var ts []nn.Named
	for _, n := range c.Model.StateDict() {
		ts = append(ts, nn.Named{Name: ckpt.ModelPrefix + n.Name, Tensor: n.Tensor})
	}
	if c.Optimizer != nil {
		st := c.Optimizer.StateDict()
		for _, k := range optimKeys(st.Tensors) {
			ts = append(ts, nn.Named{Name: optimPrefix + k, Tensor: st.Tensors[k]})
		}
		b, err := json.Marshal(st.Numbers)
		if err != nil {
			return fmt.Errorf("train: %s: optimizer numbers: %w", path, err)
		}
		md[metaOptimizer] = string(b)
	}
	if c.Scheduler != nil {
		b, err := json.Marshal(c.Scheduler.StateDict())
		if err != nil {
			return fmt.Errorf("train: %s: scheduler state: %w", path, err)
		}
		md[metaScheduler] = string(b)
	}
	rng := torch.RNGState()
	defer rng.Free()
	ts = append(ts, nn.Named{Name: rngKey, Tensor: rng})
	return ckpt.WriteTensors(path, ts, md)
}

// LoadCheckpoint restores a training checkpoint into c's model, optimizer
// and scheduler (strictly: every key must fit), restores the CPU RNG
// state, and sets c.Epoch, c.Step and c.Meta (the metadata, including the
// "jmedseg.*" keys of the checkpoint itself). Everything is checked before
// anything is restored, except what the model, optimizer and scheduler
// check as they load.
func LoadCheckpoint(path string, c *Checkpoint) error {
	if c == nil || c.Model == nil {
		return fmt.Errorf("train: %s: no model to load into", path)
	}
	f, err := ckpt.ReadFile(path)
	if err != nil {
		return err
	}
	meta := f.Metadata
	if meta[ckpt.MetaKind] != ckpt.KindTraining {
		return fmt.Errorf("train: %s: not a training checkpoint (kind %q)", path, meta[ckpt.MetaKind])
	}
	if err := models.CheckFinite(f, ""); err != nil {
		return fmt.Errorf("train: %s: %w", path, err)
	}
	epoch, err1 := strconv.ParseInt(meta[metaEpoch], 10, 64)
	step, err2 := strconv.ParseInt(meta[metaStep], 10, 64)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("train: %s: bad epoch %q or step %q in the metadata", path, meta[metaEpoch], meta[metaStep])
	}
	// Unscoped: the optimizer's copies of its state would join a scope of
	// theirs and die with it.
	var decoded []nn.Named
	defer func() { ckpt.Free(decoded) }()
	var rng *torch.Tensor
	ost := optim.State{Tensors: map[string]*torch.Tensor{}}
	for i := range f.Tensors {
		st := &f.Tensors[i]
		name, isOptim := strings.CutPrefix(st.Name, optimPrefix)
		if st.Name != rngKey && !(isOptim && c.Optimizer != nil) {
			continue
		}
		t := ckpt.Decode(st)
		decoded = append(decoded, nn.Named{Name: st.Name, Tensor: t})
		if err := t.Err(); err != nil {
			return fmt.Errorf("train: %s: %w", path, err)
		}
		if st.Name == rngKey {
			rng = t
		} else {
			ost.Tensors[name] = t
		}
	}
	if rng == nil {
		return fmt.Errorf("train: %s: no RNG state (%q)", path, rngKey)
	}
	if c.Optimizer != nil {
		raw, ok := meta[metaOptimizer]
		if !ok {
			return fmt.Errorf("train: %s: no optimizer state", path)
		}
		if err := json.Unmarshal([]byte(raw), &ost.Numbers); err != nil {
			return fmt.Errorf("train: %s: optimizer numbers: %w", path, err)
		}
	}
	var sst map[string]float64
	if c.Scheduler != nil {
		raw, ok := meta[metaScheduler]
		if !ok {
			return fmt.Errorf("train: %s: no scheduler state", path)
		}
		if err := json.Unmarshal([]byte(raw), &sst); err != nil {
			return fmt.Errorf("train: %s: scheduler state: %w", path, err)
		}
	}
	if _, err := ckpt.LoadFile(f, c.Model, ckpt.ModelPrefix, true); err != nil {
		return fmt.Errorf("train: %s: %w", path, err)
	}
	if c.Optimizer != nil {
		if err := c.Optimizer.LoadStateDict(ost); err != nil {
			return fmt.Errorf("train: %s: %w", path, err)
		}
	}
	if c.Scheduler != nil {
		if err := c.Scheduler.LoadStateDict(sst); err != nil {
			return fmt.Errorf("train: %s: %w", path, err)
		}
	}
	if err := torch.SetRNGState(rng); err != nil {
		return fmt.Errorf("train: %s: %w", path, err)
	}
	c.Epoch, c.Step, c.Meta = epoch, step, meta
	return nil
}

// optimKeys orders an optimizer state's tensor names ("<param>.<name>") by
// parameter index, then name, so that the file reads in order.
func optimKeys(m map[string]*torch.Tensor) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		ia, ra, _ := strings.Cut(a, ".")
		ib, rb, _ := strings.Cut(b, ".")
		na, _ := strconv.Atoi(ia)
		nb, _ := strconv.Atoi(ib)
		return cmp.Or(cmp.Compare(na, nb), strings.Compare(ra, rb))
	})
	return keys
}
