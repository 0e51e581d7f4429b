package augment

// SASJitter is the colour jitter of the reference SAS recipe.
var SASJitter = ColorJitter{Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Hue: 0.1}

// SASBlur is the Gaussian blur of the reference SAS recipe.
var SASBlur = GaussianBlur{SigmaMin: 0.1, SigmaMax: 2}

// SASSupervised is the reference SAS augmentation for supervised training:
// ColorJitter(0.4, 0.4, 0.4, 0.1) with probability 0.8, then GaussianBlur
// with sigma in [0.1, 2] with probability 0.5, on the image only. Like the
// reference it has nothing geometric and no normalisation (the loader
// scales pixels to [0,1]).
func SASSupervised() Pipeline {
	return Compose(Maybe(0.8, SASJitter), Maybe(0.5, SASBlur))
}

// SSLView is one view of the reference SAS self-supervised pretraining:
// RandomResizedCrop to w×h with scale 0.2–1, ColorJitter(0.4, 0.4, 0.4,
// 0.1) with probability 0.8, GaussianBlur sigma 0.1–2 with probability
// 0.5, horizontal flip with probability 0.5, ImageNet normalisation. Draw
// two views of each image for a positive pair (data.LoaderOptions.Views).
func SSLView(w, h int) Pipeline {
	return Compose(
		RandomResizedCrop{Width: w, Height: h, ScaleMin: 0.2, ScaleMax: 1},
		Maybe(0.8, SASJitter),
		Maybe(0.5, SASBlur),
		HFlip{P: 0.5},
		ImageNet(),
	)
}

// Geometric is a moderate geometric augmentation for segmentation (not in
// the reference): flips, rotation up to 15°, scale 0.9–1.1, translation up
// to 5 %, shear up to 5°, and a mild elastic deformation half of the time.
// pairs lists left/right labels the horizontal flip must swap.
func Geometric(pairs [][2]int) Pipeline {
	return Compose(
		HFlip{P: 0.5, Pairs: pairs},
		Affine{Degrees: 15, Translate: [2]float64{0.05, 0.05}, ScaleMin: 0.9, ScaleMax: 1.1, Shear: 5},
		Maybe(0.5, Elastic{Alpha: 2, Sigma: 8}),
	)
}
