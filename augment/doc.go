// Package augment holds image and image+mask transforms for segmentation:
// colour jitter, Gaussian blur and normalisation on the image; random
// resized crop, flips, rotation, affine and elastic deformation applied
// identically to image and mask; and a "phone photo of a screen"
// degradation for building shifted test sets. Presets reproduce the
// reference SAS pipelines ([SASSupervised], [SSLView]).
//
// Every transform implements data.Transform: it changes a data.Example in
// place and draws all randomness from the *rand.Rand it is given, so a
// pipeline is deterministic under a seed. Masks are always resampled
// nearest-neighbour, so a transform never invents a label: the only label
// that can appear is 0 (background), where a geometric transform reveals
// area outside the original image.
//
// A multi-channel image (*data.Planes: 2, 4 or more channels) goes
// through every transform but PhoneScreen: each geometric transform and
// the blur move every channel alike (as each alone with the same random
// draw), ColorJitter treats each channel as a grey image with the same
// drawn factors (brightness, and contrast against that channel's mean),
// Normalize takes one mean and std per channel.
//
// Colour, blur, flips and rotation use github.com/disintegration/gift;
// crops, affine, elastic and perspective warps are implemented here with
// one inverse-mapping warp shared by image and mask.
package augment
