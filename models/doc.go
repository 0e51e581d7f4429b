// Package models holds the segmentation architectures of the JMedSeg zoo,
// each a tree of nn modules whose state-dict keys follow a PyTorch port of
// the reference, registered by name.
//
//	m, err := models.New("unet", models.Config{InChannels: 3, Classes: 2})
//	logits := m.Forward(x) // [N, Classes, H, W]
//
// The layout, so that 33 architectures do not collide:
//
//   - One file per registered model, named after it (unet.go, r2.go); its
//     unexported types and functions carry the model's name as a prefix
//     (r2RecurrentBlock, unetppBlock), its exported constructor is New<Model>.
//   - What two or more models share lives below: models/block (conv + norm +
//     activation, DoubleConv, gates, ASPP, pyramid pooling, decoder blocks)
//     and models/encoder (ResNet, VGG and friends as multi-scale feature
//     extractors). A model file imports them; they never import models.
//   - Every composite module's Forward body runs in nn.Frame (Frame2, FrameN
//     for several inputs or outputs): intermediates die when the call
//     returns, so model code never frees by hand. Modules of several inputs
//     are nn.Mergers, of several outputs nn.Splitters, with the order in
//     their doc. New wraps every model in a frame as well, so an unscoped
//     call leaves only its result.
//   - Each model registers a Spec: reference parameter count, the input
//     multiple, and what its tests need (a small width, sizes, the PyTorch
//     twin in internal/oracle/py/twins); the package's tests run every
//     registered model through parity, forward/backward and leak checks and
//     fail for one that does not declare them.
//   - A reference quirk is an option of the model's constructor; the sound
//     behaviour is the default.
package models
