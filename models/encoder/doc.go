// Package encoder holds the backbones of the zoo behind one interface: an
// Encoder maps an image batch to feature maps at several scales (its taps,
// shallow to deep) and says their channels and reductions.
//
//	r := encoder.NewResNet(101, encoder.Stem(encoder.StemDeep), encoder.OutputStride(16),
//		encoder.Multigrid(1, 2, 4), encoder.Taps(1, 4))
//	feats := r.Split(x) // [layer1 at 1/4, layer4 at 1/16]
//
// Here are ResNet-18/34/50/101 (torchvision's layout, or the reference's
// deep stems; output stride 32, 16 or 8 by dilation; BatchNorm or any
// block.NormFunc, such as EANet's GroupNorm rule block.NormLayer), VGG16
// with and without BatchNorm (torchvision's features.N layout) and
// HarDNet-68 (the reference's base.N layout; taps 128@/4, 320@/8, 640@/16,
// 1024@/32). Their blocks (Bottleneck, BasicBlock, HarDBlock) are exported
// for models that build their own layouts (HRNet).
//
// The rules:
//
//   - Parameter and buffer names are torchvision's, or the reference's
//     where it differs (conv1.weight, bn1.running_mean,
//     layer1.0.downsample.0.weight; the deep stem's conv1.0 ... conv1.6;
//     features.0.weight). A model that names the parts otherwise (D-LinkNet's
//     firstconv, encoder1; TernausNet's encoder.N) registers Parts under its
//     own names; Split works wherever they are registered.
//   - Only what the taps need is built: layers deeper than the deepest tap
//     do not exist (ResUNet's backbone without layer4), so parameter counts
//     match a model that never calls them.
//   - Constructors never panic and have one error channel, Err on the
//     module tree. A bad argument, an option the constructor does not take,
//     or an option that does nothing in its setting (Multigrid at output
//     stride 32) is an error, never silently ignored.
//   - Split runs in an nn.FrameN: intermediates die when it returns, the
//     taps survive into the input's scope (or belong to the caller when the
//     input has none). No code here frees by hand.
//   - Weights are PyTorch's default initialisation; there are no ImageNet
//     weights (the reference trained from scratch).
package encoder
