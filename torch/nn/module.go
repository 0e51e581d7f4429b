// Package nn builds neural networks as trees of modules whose parameters
// and buffers are registered by path, so that their names are exactly the
// keys PyTorch's state_dict() gives for the same layout
// ("down1.maxpool_conv.1.double_conv.0.weight", "bn.running_mean",
// "bn.num_batches_tracked"), in the same order.
//
// A module embeds Base and registers what it owns in its constructor:
//
//	type DoubleConv struct {
//		nn.Base
//		seq *nn.Sequential
//	}
//
//	func NewDoubleConv(in, out int64) *DoubleConv {
//		d := &DoubleConv{}
//		d.seq = nn.Register(&d.Base, "double_conv", nn.Seq(
//			nn.NewConv2d(in, out, 3, nn.Padding(1), nn.NoBias()), nn.NewBatchNorm2d(out), nn.ReLU(),
//			nn.NewConv2d(out, out, 3, nn.Padding(1), nn.NoBias()), nn.NewBatchNorm2d(out), nn.ReLU()))
//		return d
//	}
//
//	func (d *DoubleConv) Forward(x *torch.Tensor) *torch.Tensor { return d.seq.Forward(x) }
//
// Construction never panics: a failure (an allocation, a bad argument, a
// duplicate name) is remembered and reported by Err, which checks the whole
// tree. Parameters are leaves that require gradients and belong to no scope;
// Forward results join the scope of their input, so a training step run in a
// torch.Scope frees every intermediate. Free releases the parameters and
// buffers.
//
// Layers match PyTorch's default initialisation (by distribution) and, given
// the same weights, its outputs and gradients.
package nn

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jmedseg/jmedseg/torch"
)

// Node is any member of a module tree: a type that embeds Base. Its methods
// are those of Base, promoted.
type Node interface {
	base() *Base
	Err() error
	NamedParameters() []Named
	Parameters() []*torch.Tensor
	NamedBuffers() []Named
	StateDict() []Named
	NamedModules() []NamedModule
	LoadStateDict(sd []Named, strict bool) (*LoadReport, error)
	Train(on bool)
	Eval()
	Training() bool
	Freeze() error
	Unfreeze() error
	ZeroGrad() error
	NumParams() int64
	To(d torch.Device) error
	ToDType(dt torch.DType) error
	Free()
}

// Module is a node that maps one tensor to another.
type Module interface {
	Node
	Forward(x *torch.Tensor) *torch.Tensor
}

// Merger is a module of several inputs, in an order its doc states (a
// decoder block's up-path then its skip, say).
type Merger interface {
	Node
	Merge(xs ...*torch.Tensor) *torch.Tensor
}

// Splitter is a module of one input and several outputs, in an order its
// doc states (encoder taps shallow to deep, side outputs, a pooling index).
type Splitter interface {
	Node
	Split(x *torch.Tensor) []*torch.Tensor
}

// Named is a tensor with its state-dict path.
type Named struct {
	Name   string
	Tensor *torch.Tensor
}

// NamedModule is a descendant node with its path.
type NamedModule struct {
	Name string
	Node Node
}

type child struct {
	name string
	node Node
}

// Base holds a module's registered parameters, buffers and children, in
// registration order, and its training flag. The zero value is an empty
// module in training mode, as a fresh PyTorch module is.
type Base struct {
	params   []Named
	buffers  []Named
	children []child
	eval     bool
	err      error
}

func (b *Base) base() *Base { return b }

func (b *Base) fail(err error) {
	if b.err == nil && err != nil {
		b.err = err
	}
}

// Fail records a construction error on the module (the first one wins), so
// that its Err and every ancestor's report it. Constructors of composite
// modules outside this package use it for their own argument checks.
func (b *Base) Fail(err error) { b.fail(err) }

func (b *Base) checkName(kind, name string) bool {
	switch {
	case name == "":
		b.fail(fmt.Errorf("nn: empty %s name", kind))
		return false
	case strings.Contains(name, "."):
		b.fail(fmt.Errorf("nn: %s name %q contains a dot", kind, name))
		return false
	}
	for _, p := range b.params {
		if p.Name == name {
			b.fail(fmt.Errorf("nn: %s %q: name already used by a parameter", kind, name))
			return false
		}
	}
	for _, p := range b.buffers {
		if p.Name == name {
			b.fail(fmt.Errorf("nn: %s %q: name already used by a buffer", kind, name))
			return false
		}
	}
	for _, c := range b.children {
		if c.name == name {
			b.fail(fmt.Errorf("nn: %s %q: name already used by a module", kind, name))
			return false
		}
	}
	return true
}

// RegisterParameter adds t as a parameter called name, makes it a leaf that
// requires gradients and returns it. The module owns t from now on.
func (b *Base) RegisterParameter(name string, t *torch.Tensor) *torch.Tensor {
	if err := t.Err(); err != nil {
		b.fail(fmt.Errorf("nn: parameter %q: %w", name, err))
		return t
	}
	if !b.checkName("parameter", name) {
		return t
	}
	if !t.DType().IsFloat() {
		b.fail(fmt.Errorf("nn: parameter %q: dtype %s is not floating point", name, t.DType()))
		return t
	}
	t.Keep()
	if err := t.SetRequiresGrad(true); err != nil {
		b.fail(fmt.Errorf("nn: parameter %q: %w", name, err))
	}
	b.params = append(b.params, Named{name, t})
	return t
}

// RegisterBuffer adds t as a buffer (state that is saved but not trained,
// such as running statistics) called name and returns it.
func (b *Base) RegisterBuffer(name string, t *torch.Tensor) *torch.Tensor {
	if err := t.Err(); err != nil {
		b.fail(fmt.Errorf("nn: buffer %q: %w", name, err))
		return t
	}
	if !b.checkName("buffer", name) {
		return t
	}
	t.Keep()
	b.buffers = append(b.buffers, Named{name, t})
	return t
}

// RegisterModule adds n as a child called name.
func (b *Base) RegisterModule(name string, n Node) {
	if n == nil {
		b.fail(fmt.Errorf("nn: module %q is nil", name))
		return
	}
	if !b.checkName("module", name) {
		return
	}
	n.base().Train(!b.eval)
	b.children = append(b.children, child{name, n})
}

// Register adds m as a child of b called name and returns m, so that a
// constructor can keep the typed child in a field in one line.
func Register[M Node](b *Base, name string, m M) M {
	b.RegisterModule(name, m)
	return m
}

// Err returns the first construction error anywhere in the tree.
func (b *Base) Err() error {
	if b.err != nil {
		return b.err
	}
	for _, c := range b.children {
		if err := c.node.base().Err(); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return nil
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func (b *Base) walk(prefix string, f func(prefix string, b *Base)) {
	f(prefix, b)
	for _, c := range b.children {
		c.node.base().walk(join(prefix, c.name), f)
	}
}

// NamedParameters lists every parameter of the tree with its path, in
// PyTorch's named_parameters order; a parameter shared by two modules is
// listed once.
func (b *Base) NamedParameters() []Named {
	var out []Named
	seen := map[*torch.Tensor]bool{}
	b.walk("", func(prefix string, m *Base) {
		for _, p := range m.params {
			if !seen[p.Tensor] {
				seen[p.Tensor] = true
				out = append(out, Named{join(prefix, p.Name), p.Tensor})
			}
		}
	})
	return out
}

// Parameters lists every parameter of the tree, as NamedParameters.
func (b *Base) Parameters() []*torch.Tensor {
	np := b.NamedParameters()
	out := make([]*torch.Tensor, len(np))
	for i, p := range np {
		out[i] = p.Tensor
	}
	return out
}

// NamedBuffers lists every buffer of the tree with its path.
func (b *Base) NamedBuffers() []Named {
	var out []Named
	b.walk("", func(prefix string, m *Base) {
		for _, p := range m.buffers {
			out = append(out, Named{join(prefix, p.Name), p.Tensor})
		}
	})
	return out
}

// StateDict lists parameters and buffers under the keys and in the order
// of PyTorch's state_dict(): each module's own parameters, then its own
// buffers, then its children in registration order. The tensors are the
// module's own (not copies).
func (b *Base) StateDict() []Named {
	var out []Named
	b.walk("", func(prefix string, m *Base) {
		for _, p := range m.params {
			out = append(out, Named{join(prefix, p.Name), p.Tensor})
		}
		for _, p := range m.buffers {
			out = append(out, Named{join(prefix, p.Name), p.Tensor})
		}
	})
	return out
}

// NamedModules lists every descendant (not b itself) with its path, depth
// first in registration order.
func (b *Base) NamedModules() []NamedModule {
	var out []NamedModule
	var rec func(prefix string, m *Base)
	rec = func(prefix string, m *Base) {
		for _, c := range m.children {
			p := join(prefix, c.name)
			out = append(out, NamedModule{p, c.node})
			rec(p, c.node.base())
		}
	}
	rec("", b)
	return out
}

// Train sets training mode (on) or evaluation mode (off) for the tree.
func (b *Base) Train(on bool) {
	b.walk("", func(_ string, m *Base) { m.eval = !on })
}

// Eval is Train(false).
func (b *Base) Eval() { b.Train(false) }

// Training reports whether the module is in training mode.
func (b *Base) Training() bool { return !b.eval }

// Freeze stops gradient recording for every parameter of the tree (an
// optimizer then skips them, as they get no gradient).
func (b *Base) Freeze() error { return b.setGrad(false) }

// Unfreeze turns gradient recording back on for every parameter.
func (b *Base) Unfreeze() error { return b.setGrad(true) }

func (b *Base) setGrad(on bool) error {
	for _, p := range b.NamedParameters() {
		if err := p.Tensor.SetRequiresGrad(on); err != nil {
			return fmt.Errorf("nn: %s: %w", p.Name, err)
		}
	}
	return nil
}

// ZeroGrad drops every parameter's gradient (PyTorch's set_to_none).
func (b *Base) ZeroGrad() error {
	for _, p := range b.NamedParameters() {
		if err := p.Tensor.ZeroGrad(true); err != nil {
			return fmt.Errorf("nn: %s: %w", p.Name, err)
		}
	}
	return nil
}

// NumParams is the number of parameter elements.
func (b *Base) NumParams() int64 {
	var n int64
	for _, p := range b.NamedParameters() {
		n += p.Tensor.Numel()
	}
	return n
}

// To moves every parameter and buffer to device d in place: the tensors
// keep their identity, so fields and optimizers that hold them stay valid.
// Gradients are dropped.
func (b *Base) To(d torch.Device) error {
	return b.convert(func(t *torch.Tensor) *torch.Tensor { return t.ToDevice(d) })
}

// ToDType converts every floating-point parameter and buffer to dt in
// place (integer buffers such as num_batches_tracked stay as they are).
func (b *Base) ToDType(dt torch.DType) error {
	if !dt.IsFloat() {
		return fmt.Errorf("nn: ToDType: %s is not a floating-point dtype", dt)
	}
	return b.convert(func(t *torch.Tensor) *torch.Tensor {
		if !t.DType().IsFloat() {
			return nil
		}
		return t.ToDType(dt)
	})
}

func (b *Base) convert(f func(*torch.Tensor) *torch.Tensor) error {
	for _, p := range b.StateDict() {
		if p.Tensor.RequiresGrad() {
			if err := p.Tensor.ZeroGrad(true); err != nil {
				return fmt.Errorf("nn: %s: %w", p.Name, err)
			}
		}
		var err error
		torch.NoGrad(func() {
			u := f(p.Tensor)
			if u == nil {
				return
			}
			defer u.Free()
			if err = u.Err(); err == nil {
				err = p.Tensor.SetData(u)
			}
		})
		if err != nil {
			return fmt.Errorf("nn: %s: %w", p.Name, err)
		}
	}
	return nil
}

// Free releases every parameter and buffer of the tree. The module must not
// be used afterwards.
func (b *Base) Free() {
	b.walk("", func(_ string, m *Base) {
		for _, p := range m.params {
			p.Tensor.Free()
		}
		for _, p := range m.buffers {
			p.Tensor.Free()
		}
	})
}

// Mismatch is a state-dict entry whose shape differs from the module's.
type Mismatch struct {
	Name      string
	Want, Got []int64
}

// LoadReport says how a state dict fits a module.
type LoadReport struct {
	Missing    []string   // in the module, not in the state dict
	Unexpected []string   // in the state dict, not in the module
	Mismatched []Mismatch // in both, with different shapes
}

// OK reports whether the state dict fits exactly.
func (r *LoadReport) OK() bool {
	return len(r.Missing) == 0 && len(r.Unexpected) == 0 && len(r.Mismatched) == 0
}

func (r *LoadReport) String() string {
	var parts []string
	if len(r.Missing) > 0 {
		parts = append(parts, "missing keys "+strings.Join(quote(r.Missing), ", "))
	}
	if len(r.Unexpected) > 0 {
		parts = append(parts, "unexpected keys "+strings.Join(quote(r.Unexpected), ", "))
	}
	for _, m := range r.Mismatched {
		parts = append(parts, fmt.Sprintf("%q has shape %v in the checkpoint but %v in the model", m.Name, m.Got, m.Want))
	}
	if len(parts) == 0 {
		return "all keys match"
	}
	return strings.Join(parts, "; ")
}

func quote(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// ErrStateDict is wrapped by the errors LoadStateDict returns when a state
// dict does not fit.
var ErrStateDict = errors.New("state dict does not fit the module")

// LoadError is a state dict that does not fit; Report says how.
type LoadError struct {
	Report *LoadReport
}

func (e *LoadError) Error() string { return "nn: " + ErrStateDict.Error() + ": " + e.Report.String() }

// Unwrap returns ErrStateDict.
func (e *LoadError) Unwrap() error { return ErrStateDict }

// LoadStateDict copies sd's tensors into the module's parameters and
// buffers of the same names (converting dtype and device). Strict mode
// fails on missing or unexpected keys; both modes fail on a shape mismatch,
// as PyTorch does. On failure nothing is copied and the error is a
// *LoadError naming the keys. The report is returned either way.
func (b *Base) LoadStateDict(sd []Named, strict bool) (*LoadReport, error) {
	own := b.StateDict()
	have := make(map[string]*torch.Tensor, len(sd))
	for _, e := range sd {
		have[e.Name] = e.Tensor
	}
	rep := &LoadReport{}
	ownNames := make(map[string]bool, len(own))
	for _, o := range own {
		ownNames[o.Name] = true
		src, ok := have[o.Name]
		if !ok {
			rep.Missing = append(rep.Missing, o.Name)
			continue
		}
		if err := src.Err(); err != nil {
			return rep, fmt.Errorf("nn: state dict entry %q: %w", o.Name, err)
		}
		if w, g := o.Tensor.Shape(), src.Shape(); !sameShape(w, g) {
			rep.Mismatched = append(rep.Mismatched, Mismatch{Name: o.Name, Want: w, Got: g})
		}
	}
	for _, e := range sd {
		if !ownNames[e.Name] {
			rep.Unexpected = append(rep.Unexpected, e.Name)
		}
	}
	if len(rep.Mismatched) > 0 || (strict && !rep.OK()) {
		return rep, &LoadError{Report: rep}
	}
	var err error
	torch.NoGrad(func() {
		for _, o := range own {
			if src, ok := have[o.Name]; ok {
				if e := o.Tensor.CopyFrom(src); e != nil {
					err = fmt.Errorf("nn: loading %q: %w", o.Name, e)
					return
				}
			}
		}
	})
	return rep, err
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

// fail returns a tensor carrying a module error.
func fail(format string, args ...any) *torch.Tensor {
	return torch.FromError(fmt.Errorf("nn: "+format, args...))
}
