// Package block holds the building blocks that two or more models of the
// zoo share: conv + norm + activation (CBR, ConvNormAct), the U-Net
// family's DoubleConv and Up, squeeze-excitation gates (SE, SSE, SCSE), the
// Attention U-Net gate, position and channel self-attention (DANet,
// CS-Net), DeepLab's ASPP, PSPNet's pyramid pooling, the reference's
// GroupNorm rule (NormLayer) and LinkNet's decoder block.
//
// The rules every block follows:
//
//   - State-dict keys are those of the reference's PyTorch-style attribute
//     names, listed in each constructor's doc ("double_conv.0.weight",
//     "W_g.1.running_mean", "spatial_gate.linear_1.weight"), so a block
//     dropped into a model gives the keys a PyTorch port of the same model
//     gives.
//   - Constructors never panic and have one error channel: a bad argument
//     or an option the constructor does not take is recorded on the module
//     and reported by Err on the module tree (a block made of bare
//     modules, such as CBR's slice, carries it in a module of the slice).
//   - Forward bodies run in nn.Frame (nn.Frame2 for two inputs), so every
//     intermediate dies when the call returns and only the result survives
//     into the caller's scope; no block frees by hand. ReLU works in place
//     only on a tensor the block itself made after a convolution, a
//     normalisation or an addition, where autograd does not need it.
//   - Modules of several inputs are nn.Mergers, with the input order in
//     their doc (AttentionGate.Merge(g, x), Up.Merge(x, skip)).
//   - A reference quirk is available behind an option and the sound
//     behaviour is the default (SoftmaxAll against the published sigmoid
//     gates of scSE).
package block
