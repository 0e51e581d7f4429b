package ckpt

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/torch/optim"
)

// Training is everything a resumed run needs. SaveTraining writes it;
// LoadTraining restores it into fresh objects built the same way (same
// model layout, optimizer over the same parameters, same schedule).
type Training struct {
	Model     nn.Node
	Optimizer optim.Optimizer   // nil: none saved or restored
	Scheduler *optim.Scheduler  // nil: none saved or restored
	Epoch     int64             // the caller's counters, restored as saved
	Step      int64             //
	Meta      map[string]string // extra metadata (model name, configuration)
}

// SaveTraining writes the model ("model.*" keys), the optimizer state
// ("optimizer.*" tensors, numbers in the metadata), the scheduler, the CPU
// RNG state, the epoch, the step and Meta to path, atomically.
func SaveTraining(path string, t *Training) error {
	if t == nil || t.Model == nil {
		return fmt.Errorf("ckpt: %s: no model to save", path)
	}
	if err := t.Model.Err(); err != nil {
		return fmt.Errorf("ckpt: %s: the model is broken: %w", path, err)
	}
	md := map[string]string{"format": "pt"}
	for k, v := range t.Meta {
		md[k] = v
	}
	md[keyKind] = kindTraining
	md[keyEpoch] = strconv.FormatInt(t.Epoch, 10)
	md[keyStep] = strconv.FormatInt(t.Step, 10)
	var ts []nn.Named
	for _, n := range t.Model.StateDict() {
		ts = append(ts, nn.Named{Name: modelPrefix + n.Name, Tensor: n.Tensor})
	}
	if t.Optimizer != nil {
		st := t.Optimizer.StateDict()
		for _, k := range sortedKeys(st.Tensors) {
			ts = append(ts, nn.Named{Name: optimPrefix + k, Tensor: st.Tensors[k]})
		}
		b, err := json.Marshal(st.Numbers)
		if err != nil {
			return fmt.Errorf("ckpt: %s: optimizer numbers: %w", path, err)
		}
		md[keyOptimizer] = string(b)
	}
	if t.Scheduler != nil {
		b, err := json.Marshal(t.Scheduler.StateDict())
		if err != nil {
			return fmt.Errorf("ckpt: %s: scheduler state: %w", path, err)
		}
		md[keyScheduler] = string(b)
	}
	rng := torch.RNGState()
	defer rng.Free()
	ts = append(ts, nn.Named{Name: rngKey, Tensor: rng})
	return WriteTensors(path, ts, md)
}

// LoadTraining restores a training checkpoint into t's model, optimizer and
// scheduler (strictly: every key must fit), restores the CPU RNG state, and
// sets t.Epoch, t.Step and t.Meta (the metadata, including this package's
// "jmedseg.*" keys).
func LoadTraining(path string, t *Training) error {
	if t == nil || t.Model == nil {
		return fmt.Errorf("ckpt: %s: no model to load into", path)
	}
	ts, meta, err := ReadTensors(path)
	if err != nil {
		return err
	}
	defer Free(ts)
	if meta[keyKind] != kindTraining {
		return fmt.Errorf("ckpt: %s: not a training checkpoint (kind %q)", path, meta[keyKind])
	}
	epoch, err1 := strconv.ParseInt(meta[keyEpoch], 10, 64)
	step, err2 := strconv.ParseInt(meta[keyStep], 10, 64)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("ckpt: %s: bad epoch %q or step %q in the metadata", path, meta[keyEpoch], meta[keyStep])
	}
	var rng *torch.Tensor
	for _, n := range ts {
		if n.Name == rngKey {
			rng = n.Tensor
		}
	}
	if rng == nil {
		return fmt.Errorf("ckpt: %s: no RNG state (%q)", path, rngKey)
	}
	var ost optim.State
	if t.Optimizer != nil {
		raw, ok := meta[keyOptimizer]
		if !ok {
			return fmt.Errorf("ckpt: %s: no optimizer state", path)
		}
		ost = optim.State{Tensors: map[string]*torch.Tensor{}}
		if err := json.Unmarshal([]byte(raw), &ost.Numbers); err != nil {
			return fmt.Errorf("ckpt: %s: optimizer numbers: %w", path, err)
		}
		for _, n := range withPrefix(ts, optimPrefix) {
			ost.Tensors[n.Name] = n.Tensor
		}
	}
	var sst map[string]float64
	if t.Scheduler != nil {
		raw, ok := meta[keyScheduler]
		if !ok {
			return fmt.Errorf("ckpt: %s: no scheduler state", path)
		}
		if err := json.Unmarshal([]byte(raw), &sst); err != nil {
			return fmt.Errorf("ckpt: %s: scheduler state: %w", path, err)
		}
	}
	if _, err := loadInto(t.Model, withPrefix(ts, modelPrefix), true); err != nil {
		return fileErr(path, err)
	}
	if t.Optimizer != nil {
		if err := t.Optimizer.LoadStateDict(ost); err != nil {
			return fileErr(path, err)
		}
	}
	if t.Scheduler != nil {
		if err := t.Scheduler.LoadStateDict(sst); err != nil {
			return fileErr(path, err)
		}
	}
	if err := torch.SetRNGState(rng); err != nil {
		return fileErr(path, err)
	}
	t.Epoch, t.Step, t.Meta = epoch, step, meta
	return nil
}

func sortedKeys(m map[string]*torch.Tensor) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// numeric parameter index first, then name, so files read in order
	sortFunc(keys, func(a, b string) bool {
		ia, ra, _ := strings.Cut(a, ".")
		ib, rb, _ := strings.Cut(b, ".")
		na, _ := strconv.Atoi(ia)
		nb, _ := strconv.Atoi(ib)
		if na != nb {
			return na < nb
		}
		return ra < rb
	})
	return keys
}

func sortFunc(s []string, less func(a, b string) bool) {
	sort.Slice(s, func(i, j int) bool { return less(s[i], s[j]) })
}
