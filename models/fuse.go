package models

import (
	"fmt"

	"github.com/jmedseg/jmedseg/models/block"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// Fuse prepares a model in evaluation mode for inference: every BatchNorm
// that directly follows a convolution in the model's forward is folded
// into that convolution's weights and bias (nn.FoldBatchNorm,
// nn.FoldBatchNormTransposed), and the ReLUs after those convolutions work
// in place. The model then computes what it computed before to float32
// round-off (the tests check every registered model to 1e-5 of its output
// scale), with one operation fewer per pair.
//
// The pairs folded are those whose order the module tree proves: two
// neighbours of an nn.Sequential (its Forward hands the convolution's, or
// transposed convolution's, output to the BatchNorm alone),
// block.ConvNormAct's Conv and Norm, and the pairs nn.PairFolders and
// nn.TransposedPairFolders name (the models' and blocks' own Forwards:
// ResNet blocks and stems, ASPP, LinkNet's decoder, and most models here).
// In every registered model that is every BatchNorm after a convolution;
// those after a sum, a concatenation or a ReLU (dense, multires) have no
// convolution to go into. A module registered in more than one place is
// left alone, unless the place is an nn.Aliaser's alias, a second name the
// forward never applies (resunet's layer0..layer3). The fused model is for
// inference only: in training mode a folded BatchNorm returns an error, and
// its state dict holds the folded weights (save the model before fusing).
func Fuse(m nn.Module) (nn.FuseReport, error) {
	// The architecture itself, not New's wrapper: the pass asks the root
	// too whether it folds pairs (nn.PairFolder) or names aliases
	// (nn.Aliaser), and the wrapper has only nn.Module's methods.
	m = Unwrap(m)
	rep, err := nn.FuseSequentials(m)
	if err != nil {
		return rep, fmt.Errorf("models: %w", err)
	}
	tree, err := nn.ForwardTree(m) // FuseSequentials checked it
	if err != nil {
		return rep, fmt.Errorf("models: %w", err)
	}
	uses, params := nn.Uses(m), nn.ParamOwners(m)
	paths := map[*nn.BatchNorm]string{} // reported by the BatchNorm's path
	for _, nm := range tree {
		if bn, ok := nm.Node.(*nn.BatchNorm); ok {
			paths[bn] = nm.Name
		}
	}
	for _, nm := range tree {
		c, ok := nm.Node.(*block.ConvNormAct)
		if !ok || c.Conv == nil {
			continue
		}
		if bn, ok := c.Norm.(*nn.BatchNorm); ok {
			path := paths[bn]
			if ok, why := nn.Foldable(uses, params, c.Conv, bn); !ok {
				rep.Skipped = append(rep.Skipped, path+": "+why)
			} else {
				if err := nn.FoldBatchNorm(c.Conv, bn); err != nil {
					return rep, fmt.Errorf("models: %s: %w", path, err)
				}
				c.Norm = &nn.FoldedBatchNorm{BN: bn}
				rep.Folded = append(rep.Folded, path)
			}
		}
		prev := nn.Module(c.Conv)
		if c.Norm != nil {
			prev = c.Norm
		}
		if r := nn.InPlaceReLU(prev, c.Act); r != nil {
			c.Act = r
			rep.InPlace++
		}
	}
	return rep, nil
}

// FoldPairs implements nn.PairFolder: conv1→bn1 on the low-level features
// (last_conv is an nn.Sequential, which the tree pass folds).
func (d *deeplabDecoder) FoldPairs(fold func(*nn.Conv2d, nn.Module) nn.Module) error {
	if d.conv1 == nil {
		return d.Err()
	}
	d.bn1 = fold(d.conv1, d.bn1)
	return nil
}

// FoldPairs implements nn.PairFolder: the stem's conv1→bn1 and conv2→bn2
// (layer1's Bottlenecks, the transitions and stages fold themselves or are
// nn.Sequentials).
func (m *HRNet) FoldPairs(fold func(*nn.Conv2d, nn.Module) nn.Module) error {
	if m.conv1 == nil {
		return m.Err()
	}
	m.bn1, m.bn2 = fold(m.conv1, m.bn1), fold(m.conv2, m.bn2)
	return nil
}
