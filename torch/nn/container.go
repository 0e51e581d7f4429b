package nn

import (
	"strconv"

	"github.com/jmedseg/jmedseg/torch"
)

// Sequential is torch.nn.Sequential: children "0", "1", ... applied in order.
type Sequential struct {
	Base
	mods []Module
}

// Seq makes a Sequential of mods.
func Seq(mods ...Module) *Sequential {
	s := &Sequential{}
	for _, m := range mods {
		s.Append(m)
	}
	return s
}

// Append adds m as the next child and returns s.
func (s *Sequential) Append(m Module) *Sequential {
	s.RegisterModule(strconv.Itoa(len(s.mods)), m)
	s.mods = append(s.mods, m)
	return s
}

// Len is the number of children.
func (s *Sequential) Len() int { return len(s.mods) }

// At returns child i.
func (s *Sequential) At(i int) Module { return s.mods[i] }

// Forward applies every child in turn, in a Frame. Each intermediate's
// handle is freed as soon as the next child has used it, as PyTorch drops
// its references: autograd keeps its own reference to whatever backward
// needs, so this only lowers peak memory. The input itself is never freed.
func (s *Sequential) Forward(x *torch.Tensor) *torch.Tensor {
	return Frame(x, func(in *torch.Tensor) *torch.Tensor {
		x := in
		for _, m := range s.mods {
			y := m.Forward(x)
			if x != in && y != x {
				x.Free()
			}
			x = y
		}
		return x
	})
}

// List is torch.nn.ModuleList: children "0", "1", ... with no Forward of
// its own.
type List struct {
	Base
	nodes []Node
}

// NewList makes a List of nodes.
func NewList(nodes ...Node) *List {
	l := &List{}
	for _, n := range nodes {
		l.Append(n)
	}
	return l
}

// Append adds n as the next child and returns l.
func (l *List) Append(n Node) *List {
	l.RegisterModule(strconv.Itoa(len(l.nodes)), n)
	l.nodes = append(l.nodes, n)
	return l
}

// Len is the number of children.
func (l *List) Len() int { return len(l.nodes) }

// At returns child i.
func (l *List) At(i int) Node { return l.nodes[i] }

// Path is a module whose only child is m, registered as name: the path-only
// level of a state-dict key ("outc.conv.weight" from Path("conv", conv)),
// without a Go type for it.
type Path struct {
	Base
	M Module
}

// NewPath wraps m as child name.
func NewPath(name string, m Module) *Path {
	p := &Path{M: m}
	p.RegisterModule(name, m)
	return p
}

// Forward applies the child.
func (p *Path) Forward(x *torch.Tensor) *torch.Tensor { return p.M.Forward(x) }
