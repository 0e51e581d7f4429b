package nn

import (
	"errors"
	"fmt"

	"github.com/jmedseg/jmedseg/torch"
)

// FoldedBatchNorm stands where a BatchNorm was after FoldBatchNorm moved
// its affine map into the convolution before it: it passes its input on
// (a new handle to it). The BatchNorm itself stays registered where it was,
// so the model's state dict, Free and Train still reach it; in training
// mode FoldedBatchNorm refuses to run, since the convolution's weights are
// no longer the trained ones and batch statistics would be needed.
type FoldedBatchNorm struct {
	Base
	BN *BatchNorm
}

// Forward returns x (an Alias) in evaluation mode and an error in training
// mode.
func (f *FoldedBatchNorm) Forward(x *torch.Tensor) *torch.Tensor {
	if err := x.Err(); err != nil {
		return x
	}
	if f.BN.Training() {
		return fail("BatchNorm was folded into the convolution before it (Fuse): the model is for inference only; load it again to train")
	}
	return x.Alias()
}

// ErrNotFoldable is wrapped by FoldBatchNorm's errors for a pair it cannot
// fold exactly.
var ErrNotFoldable = errors.New("cannot fold this BatchNorm into its convolution")

// FoldBatchNorm folds the evaluation-mode BatchNorm bn into conv, whose
// output it normalises, in place: with s = γ/√(running_var+ε),
// conv.weight ← weight·s (per output channel) and conv.bias ← (bias −
// running_mean)·s + β (a bias parameter is registered where conv had
// none). Afterwards conv alone computes bn(conv(x)), to float32 round-off
// (the new weights are computed in float64). The caller replaces bn's
// place in the forward with a FoldedBatchNorm. Both must be in evaluation
// mode and bn must track running statistics.
func FoldBatchNorm(conv *Conv2d, bn *BatchNorm) error {
	if conv == nil {
		return fmt.Errorf("nn: FoldBatchNorm: %w: missing module or weight", ErrNotFoldable)
	}
	return foldNorm("FoldBatchNorm", &conv.Base, conv.Weight, &conv.Bias, conv.OutChannels, 0, bn)
}

// FoldBatchNormTransposed is FoldBatchNorm for a transposed convolution,
// whose weight is [in, out/groups, kh, kw]: output channel g·(out/groups)+j
// is column j of group g's rows, so s scales the weight along dimension 1
// within each group (the bias, [out], as FoldBatchNorm's).
func FoldBatchNormTransposed(conv *ConvTranspose2d, bn *BatchNorm) error {
	if conv == nil {
		return fmt.Errorf("nn: FoldBatchNormTransposed: %w: missing module or weight", ErrNotFoldable)
	}
	return foldNorm("FoldBatchNormTransposed", &conv.Base, conv.Weight, &conv.Bias, conv.OutChannels, max(conv.Groups, 1), bn)
}

// foldNorm folds bn into the convolution whose Base is cb, weight weight,
// bias *bias (registered there if nil) and out output channels; groups 0
// means a Conv2d's weight [out, in/groups, kh, kw], groups ≥ 1 a
// transposed convolution's [in, out/groups, kh, kw].
func foldNorm(who string, cb *Base, weight *torch.Tensor, bias **torch.Tensor, out, groups int64, bn *BatchNorm) error {
	switch {
	case bn == nil || weight == nil:
		return fmt.Errorf("nn: %s: %w: missing module or weight", who, ErrNotFoldable)
	case cb.Training() || bn.Training():
		return fmt.Errorf("nn: %s: %w: the modules are in training mode (call Eval first)", who, ErrNotFoldable)
	case bn.RunningMean == nil || bn.RunningVar == nil:
		return fmt.Errorf("nn: %s: %w: the BatchNorm keeps no running statistics (it normalises with batch statistics in eval mode too)", who, ErrNotFoldable)
	case bn.NumFeatures != out:
		return fmt.Errorf("nn: %s: %w: %d BatchNorm features, %d convolution outputs", who, ErrNotFoldable, bn.NumFeatures, out)
	}
	shape := weight.Shape()
	if len(shape) != 4 || (groups == 0 && shape[0] != out) || (groups > 0 && (shape[0]%groups != 0 || shape[1]*groups != out)) {
		return fmt.Errorf("nn: %s: %w: weight %v does not fit %d outputs", who, ErrNotFoldable, shape, out)
	}
	var err error
	torch.NoGrad(func() {
		s := torch.NewScope()
		defer s.Close()
		dev, dt := weight.Device(), weight.DType()
		f64 := func(t *torch.Tensor) *torch.Tensor { return s.Track(t.To(dev, torch.Float64)) }
		scale := f64(bn.RunningVar).AddScalar(bn.Eps).Rsqrt()
		if bn.Weight != nil {
			scale = scale.Mul(f64(bn.Weight))
		}
		var w *torch.Tensor
		if groups == 0 {
			w = f64(weight).Mul(scale.View(-1, 1, 1, 1))
		} else {
			// [in, out/g, kh, kw] as [g, in/g, out/g, kh, kw]: group g's
			// output j is scale[g·out/g + j].
			w = f64(weight).Reshape(groups, shape[0]/groups, shape[1], shape[2], shape[3]).
				Mul(scale.View(groups, 1, shape[1], 1, 1)).Reshape(shape...)
		}
		w = w.ToDType(dt)
		var b *torch.Tensor
		if *bias != nil {
			b = f64(*bias).Sub(f64(bn.RunningMean)).Mul(scale)
		} else {
			b = f64(bn.RunningMean).Neg().Mul(scale)
		}
		if bn.Bias != nil {
			b = b.Add(f64(bn.Bias))
		}
		b = b.ToDType(dt)
		if err = torch.FirstErr(w, b); err != nil {
			return
		}
		if err = weight.SetData(w); err != nil {
			return
		}
		if *bias != nil {
			err = (*bias).SetData(b)
			return
		}
		*bias = cb.RegisterParameter("bias", b.Clone())
		err = cb.err
	})
	if err != nil {
		return fmt.Errorf("nn: %s: %w", who, err)
	}
	return nil
}

// FuseReport says what a fusion pass changed.
type FuseReport struct {
	Folded  []string // paths of the BatchNorms folded into their convolutions
	InPlace int      // ReLUs made to work in place
	Skipped []string // conv→BatchNorm pairs left as they were, with the reason
}

// Merge adds o's entries to r.
func (r *FuseReport) Merge(o FuseReport) {
	r.Folded = append(r.Folded, o.Folded...)
	r.InPlace += o.InPlace
	r.Skipped = append(r.Skipped, o.Skipped...)
}

// Aliaser is a module that registers some of its descendants a second
// time, under the extra names a reference layout's state dict lists them
// by (PyTorch's state_dict() lists a module registered twice under both
// keys), while its Forward applies those modules only through their first
// registration. Aliases names those children of its own. The fusion pass
// (ForwardTree) leaves them out, so that a module registered twice but
// applied once is counted, and folded, once; the fold changes the module
// itself, so every key of the state dict sees it.
type Aliaser interface {
	Aliases() []string
}

// ForwardTree lists root's descendants as NamedModules does (depth first,
// in registration order, root itself not included), less the children an
// Aliaser names as aliases: each module under the name the forward reaches
// it by. It is an error for an alias not to be registered elsewhere in the
// tree too (then it is no alias, and its module might be applied through
// it).
func ForwardTree(root Node) ([]NamedModule, error) {
	var out []NamedModule
	type skipped struct {
		path string
		b    *Base
	}
	var aliases []skipped
	var rec func(prefix string, n Node)
	rec = func(prefix string, n Node) {
		var skip map[string]bool
		if a, ok := n.(Aliaser); ok {
			skip = map[string]bool{}
			for _, name := range a.Aliases() {
				skip[name] = true
			}
		}
		for _, c := range n.base().children {
			p := join(prefix, c.name)
			if skip[c.name] {
				aliases = append(aliases, skipped{p, c.node.base()})
				continue
			}
			out = append(out, NamedModule{p, c.node})
			rec(p, c.node)
		}
	}
	rec("", root)
	if len(aliases) > 0 {
		seen := map[*Base]bool{root.base(): true}
		for _, m := range out {
			seen[m.Node.base()] = true
		}
		for _, a := range aliases {
			if !seen[a.b] {
				return out, fmt.Errorf("nn: %s is named an alias but its module is registered nowhere else", a.path)
			}
		}
	}
	return out, nil
}

// Uses counts how often each node is registered in root's tree as the
// forward reaches it (ForwardTree: a module shared by two parents counts
// twice, an Aliaser's aliases not at all), so that a fusion pass leaves
// shared modules alone: their other uses might not be followed by the same
// BatchNorm.
//
// It is keyed by each module's Base, which every node has and which is
// always comparable (a Node held by value may not be a valid map key).
func Uses(root Node) map[*Base]int {
	n := map[*Base]int{}
	mods, _ := ForwardTree(root) // a bad alias is FuseSequentials' error
	for _, m := range mods {
		n[m.Node.base()]++
	}
	return n
}

// ParamOwners counts how many modules of root's forward tree (root and
// ForwardTree) own each parameter tensor.
func ParamOwners(root Node) map[*torch.Tensor]int {
	n := map[*torch.Tensor]int{}
	mods, _ := ForwardTree(root)
	for _, m := range append([]NamedModule{{Node: root}}, mods...) {
		for _, p := range m.Node.base().params {
			n[p.Tensor]++
		}
	}
	return n
}

// Foldable reports whether conv followed by bn can be folded, given the
// tree's Uses and parameter owners (ParamOwners): both registered once,
// conv's parameters its own, in evaluation mode, bn with running
// statistics; else why not.
func Foldable(uses map[*Base]int, params map[*torch.Tensor]int, conv *Conv2d, bn *BatchNorm) (bool, string) {
	if conv == nil {
		return false, "no convolution"
	}
	return foldable(uses, params, &conv.Base, conv.Weight, conv.Bias, conv.OutChannels, bn)
}

// FoldableTransposed is Foldable for a transposed convolution
// (FoldBatchNormTransposed).
func FoldableTransposed(uses map[*Base]int, params map[*torch.Tensor]int, conv *ConvTranspose2d, bn *BatchNorm) (bool, string) {
	if conv == nil {
		return false, "no convolution"
	}
	return foldable(uses, params, &conv.Base, conv.Weight, conv.Bias, conv.OutChannels, bn)
}

func foldable(uses map[*Base]int, params map[*torch.Tensor]int, cb *Base, w, b *torch.Tensor, out int64, bn *BatchNorm) (bool, string) {
	switch {
	case bn == nil || w == nil:
		return false, "no BatchNorm or no weight"
	case uses[cb] != 1 || uses[&bn.Base] != 1:
		return false, "the convolution or BatchNorm is used in more than one place"
	case params[w] != 1 || (b != nil && params[b] != 1):
		return false, "the convolution shares its parameters"
	case cb.Training() || bn.Training():
		return false, "training mode"
	case bn.RunningMean == nil:
		return false, "the BatchNorm keeps no running statistics"
	case bn.NumFeatures != out:
		return false, "channel counts differ"
	}
	return true, ""
}

// isReLU reports whether m is the ReLU activation (nn.ReLU or
// nn.ReLUInPlace, both named "ReLU").
func isReLU(m Module) bool {
	f, ok := m.(*Func)
	return ok && f.Name == "ReLU"
}

// FreshOutput reports whether m's result is always a tensor m made (not
// its input or a view of it), so that an activation after it may work in
// place without touching anything its caller holds.
func FreshOutput(m Module) bool {
	switch m.(type) {
	case *Conv2d, *BatchNorm, *ConvTranspose2d:
		return true
	case *FoldedBatchNorm: // passes on its convolution's fresh output
		return true
	}
	return false
}

// InPlaceReLU is the in-place form of a ReLU activation m that follows a
// module whose output is fresh, else nil. Only for inference (evaluation
// mode, no autograd): in training the replaced ReLU's input might be
// needed by backward.
func InPlaceReLU(prev, m Module) Module {
	if prev != nil && isReLU(m) && FreshOutput(prev) {
		return ReLUInPlace()
	}
	return nil
}

// PairFolder is a module whose own Forward applies convolution→BatchNorm
// pairs (a ResNet block's conv1→bn1, say), which no tree pass can see.
// FoldPairs calls fold once for each pair whose convolution's output goes
// to the normalisation alone, and from then on applies the module fold
// returns in the normalisation's place (norm itself when it was not
// folded, a FoldedBatchNorm when it was).
type PairFolder interface {
	FoldPairs(fold func(conv *Conv2d, norm Module) Module) error
}

// TransposedPairFolder is PairFolder for the transposed
// convolution→BatchNorm pairs a module's own Forward applies (LinkNet's
// decoder, say).
type TransposedPairFolder interface {
	FoldTransposedPairs(fold func(conv *ConvTranspose2d, norm Module) Module) error
}

// FuseSequentials folds every Conv2d→BatchNorm and ConvTranspose2d→BatchNorm
// pair that a Sequential of root's tree applies in a row
// (Sequential.Forward hands the convolution's output to the BatchNorm
// alone) and those PairFolders and TransposedPairFolders report, and makes
// the ReLUs that follow a fresh output work in place. It visits the tree
// as the forward reaches it (ForwardTree). root must be in evaluation
// mode; the result is an inference-only model (see FoldedBatchNorm). Other
// compositions of convolution and BatchNorm (a module's own Forward) are
// left to their packages (models.Fuse handles models/block's ConvNormAct).
func FuseSequentials(root Node) (FuseReport, error) {
	var rep FuseReport
	if root.Training() {
		return rep, fmt.Errorf("nn: Fuse: the model is in training mode (call Eval first)")
	}
	tree, err := ForwardTree(root)
	if err != nil {
		return rep, fmt.Errorf("nn: Fuse: %w", err)
	}
	uses, params := Uses(root), ParamOwners(root)
	// A PairFolder's pairs are reported by their BatchNorm's path.
	paths := map[*Base]string{}
	// The root too: a ResNet or a Sequential may be the whole model.
	mods := append([]NamedModule{{Name: "", Node: root}}, tree...)
	for _, nm := range mods {
		paths[nm.Node.base()] = nm.Name
	}
	// fold folds bn (norm, when it is a BatchNorm) with foldable and do,
	// reporting it under path, or under the module's path where bn is not
	// in the tree; it returns what stands in norm's place.
	var ferr error
	fold := func(path string, norm Module, foldable func(*BatchNorm) (bool, string), do func(*BatchNorm) error) Module {
		bn, ok := norm.(*BatchNorm)
		if !ok || ferr != nil {
			return norm
		}
		if p := paths[&bn.Base]; p != "" {
			path = p
		}
		if ok, why := foldable(bn); !ok {
			rep.Skipped = append(rep.Skipped, path+": "+why)
			return norm
		}
		if err := do(bn); err != nil {
			ferr = fmt.Errorf("%s: %w", path, err)
			return norm
		}
		rep.Folded = append(rep.Folded, path)
		return &FoldedBatchNorm{BN: bn}
	}
	foldConv := func(path string, conv *Conv2d, norm Module) Module {
		return fold(path, norm, func(bn *BatchNorm) (bool, string) { return Foldable(uses, params, conv, bn) },
			func(bn *BatchNorm) error { return FoldBatchNorm(conv, bn) })
	}
	foldTransposed := func(path string, conv *ConvTranspose2d, norm Module) Module {
		return fold(path, norm, func(bn *BatchNorm) (bool, string) { return FoldableTransposed(uses, params, conv, bn) },
			func(bn *BatchNorm) error { return FoldBatchNormTransposed(conv, bn) })
	}
	for _, nm := range mods {
		if pf, ok := nm.Node.(PairFolder); ok {
			err := pf.FoldPairs(func(conv *Conv2d, norm Module) Module { return foldConv(nm.Name, conv, norm) })
			if err = errors.Join(ferr, err); err != nil {
				return rep, fmt.Errorf("%s: %w", nm.Name, err)
			}
		}
		if pf, ok := nm.Node.(TransposedPairFolder); ok {
			err := pf.FoldTransposedPairs(func(conv *ConvTranspose2d, norm Module) Module { return foldTransposed(nm.Name, conv, norm) })
			if err = errors.Join(ferr, err); err != nil {
				return rep, fmt.Errorf("%s: %w", nm.Name, err)
			}
		}
		s, ok := nm.Node.(*Sequential)
		if !ok {
			continue
		}
		for i := 0; i+1 < len(s.mods); i++ {
			path := join(nm.Name, fmt.Sprint(i+1))
			switch conv := s.mods[i].(type) {
			case *Conv2d:
				s.mods[i+1] = foldConv(path, conv, s.mods[i+1])
			case *ConvTranspose2d:
				s.mods[i+1] = foldTransposed(path, conv, s.mods[i+1])
			}
			if ferr != nil {
				return rep, ferr
			}
		}
		for i := 1; i < len(s.mods); i++ {
			if r := InPlaceReLU(s.mods[i-1], s.mods[i]); r != nil {
				s.mods[i] = r
				rep.InPlace++
			}
		}
	}
	return rep, nil
}

// ToMemoryFormat lays out every 4-D parameter and buffer of root (the
// convolution weights) in memory format f, in place (the tensors keep
// their identity, as To does). With inputs in the same format, libtorch's
// convolutions then run channels-last (NHWC) kernels.
func ToMemoryFormat(root Node, f torch.MemoryFormat) error {
	for _, p := range root.StateDict() {
		if p.Tensor.Dim() != 4 {
			continue
		}
		var err error
		torch.NoGrad(func() {
			u := p.Tensor.ContiguousAs(f)
			defer u.Free()
			if err = u.Err(); err == nil {
				err = p.Tensor.SetData(u)
			}
		})
		if err != nil {
			return fmt.Errorf("nn: %s to %s: %w", p.Name, f, err)
		}
	}
	return nil
}
