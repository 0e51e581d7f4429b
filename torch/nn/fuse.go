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
	switch {
	case conv == nil || bn == nil || conv.Weight == nil:
		return fmt.Errorf("nn: FoldBatchNorm: %w: missing module or weight", ErrNotFoldable)
	case conv.Training() || bn.Training():
		return fmt.Errorf("nn: FoldBatchNorm: %w: the modules are in training mode (call Eval first)", ErrNotFoldable)
	case bn.RunningMean == nil || bn.RunningVar == nil:
		return fmt.Errorf("nn: FoldBatchNorm: %w: the BatchNorm keeps no running statistics (it normalises with batch statistics in eval mode too)", ErrNotFoldable)
	case bn.NumFeatures != conv.OutChannels:
		return fmt.Errorf("nn: FoldBatchNorm: %w: %d BatchNorm features, %d convolution outputs", ErrNotFoldable, bn.NumFeatures, conv.OutChannels)
	}
	var err error
	torch.NoGrad(func() {
		s := torch.NewScope()
		defer s.Close()
		dev, dt := conv.Weight.Device(), conv.Weight.DType()
		f64 := func(t *torch.Tensor) *torch.Tensor { return s.Track(t.To(dev, torch.Float64)) }
		scale := f64(bn.RunningVar).AddScalar(bn.Eps).Rsqrt()
		if bn.Weight != nil {
			scale = scale.Mul(f64(bn.Weight))
		}
		w := f64(conv.Weight).Mul(scale.View(-1, 1, 1, 1)).ToDType(dt)
		var b *torch.Tensor
		if conv.Bias != nil {
			b = f64(conv.Bias).Sub(f64(bn.RunningMean)).Mul(scale)
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
		if err = conv.Weight.SetData(w); err != nil {
			return
		}
		if conv.Bias != nil {
			err = conv.Bias.SetData(b)
			return
		}
		bias := b.Clone()
		conv.Bias = conv.RegisterParameter("bias", bias)
		err = conv.Base.err
	})
	if err != nil {
		return fmt.Errorf("nn: FoldBatchNorm: %w", err)
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

// Uses counts how often each node is registered in root's tree (a module
// shared by two parents counts twice), so that a fusion pass leaves shared
// modules alone: their other uses might not be followed by the same
// BatchNorm.
//
// It is keyed by each module's Base, which every node has and which is
// always comparable (a Node held by value may not be a valid map key).
func Uses(root Node) map[*Base]int {
	n := map[*Base]int{}
	for _, m := range root.NamedModules() {
		n[m.Node.base()]++
	}
	return n
}

// ParamOwners counts how many modules own each parameter tensor.
func ParamOwners(root Node) map[*torch.Tensor]int {
	n := map[*torch.Tensor]int{}
	root.base().walk("", func(_ string, b *Base) {
		for _, p := range b.params {
			n[p.Tensor]++
		}
	})
	return n
}

// Foldable reports whether conv followed by bn can be folded, given the
// tree's Uses and parameter owners (ParamOwners): both registered once, conv's parameters its own, in evaluation
// mode, bn with running statistics; else why not.
func Foldable(uses map[*Base]int, params map[*torch.Tensor]int, conv *Conv2d, bn *BatchNorm) (bool, string) {
	switch {
	case uses[&conv.Base] != 1 || uses[&bn.Base] != 1:
		return false, "the convolution or BatchNorm is used in more than one place"
	case params[conv.Weight] != 1 || (conv.Bias != nil && params[conv.Bias] != 1):
		return false, "the convolution shares its parameters"
	case conv.Training() || bn.Training():
		return false, "training mode"
	case bn.RunningMean == nil:
		return false, "the BatchNorm keeps no running statistics"
	case bn.NumFeatures != conv.OutChannels:
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

// FuseSequentials folds every Conv2d→BatchNorm pair that a Sequential of
// root's tree applies in a row (Sequential.Forward hands the convolution's
// output to the BatchNorm alone) and those PairFolders report, and makes the ReLUs that follow a fresh
// output work in place. root must be in evaluation mode; the result is an
// inference-only model (see FoldedBatchNorm). Other compositions of
// convolution and BatchNorm (a module's own Forward) are left to their
// packages (models.Fuse handles models/block's ConvNormAct).
func FuseSequentials(root Node) (FuseReport, error) {
	var rep FuseReport
	if root.Training() {
		return rep, fmt.Errorf("nn: Fuse: the model is in training mode (call Eval first)")
	}
	uses, params := Uses(root), ParamOwners(root)
	// A PairFolder's pairs are reported by their BatchNorm's path.
	paths := map[*Base]string{}
	// The root too: a ResNet or a Sequential may be the whole model.
	mods := append([]NamedModule{{Name: "", Node: root}}, root.NamedModules()...)
	for _, nm := range mods {
		paths[nm.Node.base()] = nm.Name
	}
	for _, nm := range mods {
		if pf, ok := nm.Node.(PairFolder); ok {
			var ferr error
			err := pf.FoldPairs(func(conv *Conv2d, norm Module) Module {
				bn, ok := norm.(*BatchNorm)
				if !ok || ferr != nil {
					return norm
				}
				path := paths[&bn.Base]
				if path == "" {
					path = nm.Name
				}
				if ok, why := Foldable(uses, params, conv, bn); !ok {
					rep.Skipped = append(rep.Skipped, path+": "+why)
					return norm
				}
				if ferr = FoldBatchNorm(conv, bn); ferr != nil {
					ferr = fmt.Errorf("%s: %w", path, ferr)
					return norm
				}
				rep.Folded = append(rep.Folded, path)
				return &FoldedBatchNorm{BN: bn}
			})
			if err = errors.Join(ferr, err); err != nil {
				return rep, fmt.Errorf("%s: %w", nm.Name, err)
			}
		}
		s, ok := nm.Node.(*Sequential)
		if !ok {
			continue
		}
		for i := 0; i+1 < len(s.mods); i++ {
			conv, ok1 := s.mods[i].(*Conv2d)
			bn, ok2 := s.mods[i+1].(*BatchNorm)
			if !ok1 || !ok2 {
				continue
			}
			path := join(nm.Name, fmt.Sprint(i+1))
			if ok, why := Foldable(uses, params, conv, bn); !ok {
				rep.Skipped = append(rep.Skipped, path+": "+why)
				continue
			}
			if err := FoldBatchNorm(conv, bn); err != nil {
				return rep, fmt.Errorf("%s: %w", path, err)
			}
			s.mods[i+1] = &FoldedBatchNorm{BN: bn}
			rep.Folded = append(rep.Folded, path)
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
