// Package data reads medical images and label maps, opens segmentation data
// sets, builds the default brain MRI data set, validates data sets and loads
// batches in parallel.
//
// Readers: [ReadImage] and [ReadMask] accept PNG and JPEG (8- and 16-bit,
// grey and RGB), NumPy .npy (see package [github.com/jmedseg/jmedseg/data/npy])
// and 2D NIfTI-1 .nii/.nii.gz (see package
// [github.com/jmedseg/jmedseg/data/nifti]). DICOM is read by package
// [github.com/jmedseg/jmedseg/data/dicom] where available. No reader panics
// on malformed input; every error names the file and the problem.
//
// Data sets: [Open] reads the project's layout (dataset.json plus
// {split}/{images,masks}/ PNG pairs, described in README.md next to this
// file) and the layout of the reference JMedSeg ({split}_label.json, data/,
// label/). [Prepare] builds the default data set from Debian packages and
// [Check] validates any data set.
//
// Loading: a [Loader] decodes, transforms and collates samples into
// [Batch]es of float32 NCHW images and int64 NHW masks with a bounded pool of
// goroutines. Results depend only on the seed, the epoch and the sample
// index, never on scheduling. Transforms (package
// [github.com/jmedseg/jmedseg/augment]) implement [Transform].
//
// The package knows nothing of torch: a Batch holds plain Go slices and
// shapes that the torch binding wraps into tensors.
package data
