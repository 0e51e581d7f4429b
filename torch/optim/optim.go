// Package optim holds optimizers (SGD, Adam, AdamW, RMSprop), gradient
// clipping and learning-rate schedules that follow torch.optim step for step:
// ten steps of each match PyTorch's weights to float32 round-off.
//
// An optimizer updates parameters in place inside torch.NoGrad and frees
// every temporary it makes. Its state (moment estimates, step counts,
// learning rates) is a State of ordinary tensors and numbers that a
// checkpoint saves and restores.
package optim

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/jmedseg/jmedseg/torch"
)

// Group is a set of parameters with their own hyperparameters, as a
// PyTorch param group. Zero LR and nil WeightDecay take the optimizer's.
type Group struct {
	Params      []*torch.Tensor
	LR          float64
	WeightDecay *float64
}

// Params makes a Group that uses the optimizer's hyperparameters.
func Params(ps []*torch.Tensor) Group { return Group{Params: ps} }

// Float returns a pointer to v, for Group.WeightDecay.
func Float(v float64) *float64 { return &v }

// ParamGroup is a group with its hyperparameters resolved. Schedulers set
// LR between steps.
type ParamGroup struct {
	Params      []*torch.Tensor
	LR          float64
	WeightDecay float64
}

// State is an optimizer's state: tensors named "<param index>.<name>" (such
// as "0.exp_avg") and numbers such as "0.step" and "group.0.lr". Parameters
// are numbered across groups in order, as in PyTorch's state_dict.
type State struct {
	Tensors map[string]*torch.Tensor
	Numbers map[string]float64
}

// Optimizer updates parameters from their gradients.
type Optimizer interface {
	// Step updates every parameter that has a gradient.
	Step() error
	// ZeroGrad drops every parameter's gradient (set_to_none).
	ZeroGrad() error
	// Groups returns the parameter groups; their LR may be changed.
	Groups() []*ParamGroup
	// StateDict returns the state. The tensors are the optimizer's own:
	// read them, do not free them.
	StateDict() State
	// LoadStateDict replaces the state with copies of st's tensors.
	LoadStateDict(st State) error
	// Free releases the state tensors.
	Free()
}

// paramState is the per-parameter state.
type paramState struct {
	step    float64
	tensors map[string]*torch.Tensor
}

// core is what every optimizer shares: groups and per-parameter state.
type core struct {
	name   string
	groups []*ParamGroup
	state  []*paramState // by global parameter index
	names  []string      // the state tensor names this optimizer uses
}

func newCore(name string, lr, wd float64, groups []Group, names ...string) (*core, error) {
	if len(groups) == 0 {
		return nil, fmt.Errorf("optim: %s: no parameter groups", name)
	}
	c := &core{name: name, names: names}
	seen := map[*torch.Tensor]bool{}
	for gi, g := range groups {
		pg := &ParamGroup{Params: g.Params, LR: lr, WeightDecay: wd}
		if g.LR != 0 {
			pg.LR = g.LR
		}
		if g.WeightDecay != nil {
			pg.WeightDecay = *g.WeightDecay
		}
		if pg.LR < 0 {
			return nil, fmt.Errorf("optim: %s: group %d: invalid learning rate %g", name, gi, pg.LR)
		}
		if pg.WeightDecay < 0 {
			return nil, fmt.Errorf("optim: %s: group %d: invalid weight decay %g", name, gi, pg.WeightDecay)
		}
		for pi, p := range g.Params {
			if err := p.Err(); err != nil {
				return nil, fmt.Errorf("optim: %s: group %d parameter %d: %w", name, gi, pi, err)
			}
			if seen[p] {
				return nil, fmt.Errorf("optim: %s: group %d parameter %d appears in more than one place", name, gi, pi)
			}
			seen[p] = true
			c.state = append(c.state, &paramState{tensors: map[string]*torch.Tensor{}})
		}
		c.groups = append(c.groups, pg)
	}
	return c, nil
}

func (c *core) Groups() []*ParamGroup { return c.groups }

func (c *core) ZeroGrad() error {
	for _, g := range c.groups {
		for _, p := range g.Params {
			if err := p.ZeroGrad(true); err != nil {
				return fmt.Errorf("optim: %s: %w", c.name, err)
			}
		}
	}
	return nil
}

// step runs update for every parameter with a gradient, inside NoGrad and
// a scope per parameter that owns the gradient handle and every temporary.
func (c *core) step(update func(g *ParamGroup, p, grad *torch.Tensor, st *paramState, s *torch.Scope) error) error {
	var err error
	torch.NoGrad(func() {
		i := 0
		for _, g := range c.groups {
			for _, p := range g.Params {
				st := c.state[i]
				i++
				grad := p.Grad()
				if grad == nil {
					continue
				}
				s := torch.NewScope()
				s.Track(grad)
				if e := grad.Err(); e != nil {
					err = e
				} else {
					err = update(g, p, grad, st, s)
				}
				s.Close()
				if err != nil {
					err = fmt.Errorf("optim: %s: parameter %d: %w", c.name, i-1, err)
					return
				}
			}
		}
	})
	return err
}

// zerosLike allocates an optimizer-owned zero tensor shaped like p.
func zerosLike(p *torch.Tensor) *torch.Tensor {
	return torch.Zeros(p.Shape(), p.DType(), p.Device())
}

// buffer returns the named state tensor, creating it with zeros.
func (st *paramState) buffer(name string, p *torch.Tensor) (*torch.Tensor, error) {
	if t, ok := st.tensors[name]; ok {
		return t, nil
	}
	t := zerosLike(p)
	if err := t.Err(); err != nil {
		return nil, err
	}
	st.tensors[name] = t
	return t, nil
}

func (c *core) StateDict() State {
	s := State{Tensors: map[string]*torch.Tensor{}, Numbers: map[string]float64{}}
	for i, st := range c.state {
		for k, t := range st.tensors {
			s.Tensors[strconv.Itoa(i)+"."+k] = t
		}
		if st.step > 0 {
			s.Numbers[strconv.Itoa(i)+".step"] = st.step
		}
	}
	for gi, g := range c.groups {
		s.Numbers["group."+strconv.Itoa(gi)+".lr"] = g.LR
		s.Numbers["group."+strconv.Itoa(gi)+".weight_decay"] = g.WeightDecay
	}
	return s
}

func (c *core) param(i int) *torch.Tensor {
	for _, g := range c.groups {
		if i < len(g.Params) {
			return g.Params[i]
		}
		i -= len(g.Params)
	}
	return nil
}

func (c *core) LoadStateDict(s State) error {
	fresh := make([]*paramState, len(c.state))
	for i := range fresh {
		fresh[i] = &paramState{tensors: map[string]*torch.Tensor{}}
	}
	free := func() {
		for _, st := range fresh {
			for _, t := range st.tensors {
				t.Free()
			}
		}
	}
	keys := make([]string, 0, len(s.Tensors))
	for k := range s.Tensors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		i, name, err := c.splitKey(k)
		if err != nil {
			free()
			return err
		}
		if !contains(c.names, name) {
			free()
			return fmt.Errorf("optim: %s: state %q: %s keeps no %q", c.name, k, c.name, name)
		}
		p, src := c.param(i), s.Tensors[k]
		if err := src.Err(); err != nil {
			free()
			return fmt.Errorf("optim: %s: state %q: %w", c.name, k, err)
		}
		if !sameShape(p.Shape(), src.Shape()) {
			free()
			return fmt.Errorf("optim: %s: state %q has shape %v, parameter %d has %v", c.name, k, src.Shape(), i, p.Shape())
		}
		t := src.To(p.Device(), p.DType())
		var cp *torch.Tensor
		torch.NoGrad(func() { cp = t.Detach().Clone() })
		t.Free()
		if err := cp.Err(); err != nil {
			free()
			return fmt.Errorf("optim: %s: state %q: %w", c.name, k, err)
		}
		fresh[i].tensors[name] = cp
	}
	for k, v := range s.Numbers {
		if strings.HasPrefix(k, "group.") {
			continue
		}
		i, name, err := c.splitKey(k)
		if err != nil || name != "step" {
			free()
			if err == nil {
				err = fmt.Errorf("optim: %s: unknown state number %q", c.name, k)
			}
			return err
		}
		fresh[i].step = v
	}
	for gi, g := range c.groups {
		if v, ok := s.Numbers["group."+strconv.Itoa(gi)+".lr"]; ok {
			g.LR = v
		}
		if v, ok := s.Numbers["group."+strconv.Itoa(gi)+".weight_decay"]; ok {
			g.WeightDecay = v
		}
	}
	c.Free()
	c.state = fresh
	return nil
}

func (c *core) splitKey(k string) (int, string, error) {
	dot := strings.IndexByte(k, '.')
	if dot < 0 {
		return 0, "", fmt.Errorf("optim: %s: bad state key %q", c.name, k)
	}
	i, err := strconv.Atoi(k[:dot])
	if err != nil || i < 0 || i >= len(c.state) {
		return 0, "", fmt.Errorf("optim: %s: state key %q names no parameter (there are %d)", c.name, k, len(c.state))
	}
	return i, k[dot+1:], nil
}

// Free releases the state tensors; on a nil core (an optimizer a failed
// constructor returned) it does nothing.
func (c *core) Free() {
	if c == nil {
		return
	}
	for _, st := range c.state {
		for k, t := range st.tensors {
			t.Free()
			delete(st.tensors, k)
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func sameShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ClipGradNorm scales the gradients of params so that their joint p-norm
// is at most maxNorm, as torch.nn.utils.clip_grad_norm_, and returns the
// norm before clipping. normType may be math.Inf(1).
func ClipGradNorm(params []*torch.Tensor, maxNorm, normType float64) (float64, error) {
	var total float64
	err := torch.WithScope(func(s *torch.Scope) error {
		var grads, norms []*torch.Tensor
		for _, p := range params {
			if g := p.Grad(); g != nil {
				grads = append(grads, s.Track(g))
			}
		}
		if len(grads) == 0 {
			return nil
		}
		var e error
		torch.NoGrad(func() {
			for _, g := range grads {
				if isInf(normType) {
					norms = append(norms, g.Abs().Max())
				} else {
					norms = append(norms, g.Norm(normType, nil, false))
				}
			}
			var tn *torch.Tensor
			switch {
			case len(norms) == 1:
				tn = norms[0]
			case isInf(normType):
				tn = torch.Stack(norms, 0).Max()
			default:
				tn = torch.Stack(norms, 0).Norm(normType, nil, false)
			}
			coef := tn.AddScalar(1e-6).Reciprocal().MulScalar(maxNorm).ClampMax(1)
			if total, e = tn.Item(); e != nil {
				return
			}
			for _, g := range grads {
				if e = g.MulInPlace(coef); e != nil {
					return
				}
			}
		})
		return e
	})
	if err != nil {
		return 0, fmt.Errorf("optim: clip_grad_norm: %w", err)
	}
	return total, nil
}

func isInf(v float64) bool { return v > 1e308 }

// ClipGradValue clamps every gradient element of params to [-v, v].
func ClipGradValue(params []*torch.Tensor, v float64) error {
	for i, p := range params {
		g := p.Grad()
		if g == nil {
			continue
		}
		err := g.ClampInPlace(-v, v)
		g.Free()
		if err != nil {
			return fmt.Errorf("optim: clip_grad_value: parameter %d: %w", i, err)
		}
	}
	return nil
}
