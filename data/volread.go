package data

import (
	"fmt"
	"strings"

	"github.com/jmedseg/jmedseg/data/metaimage"
	"github.com/jmedseg/jmedseg/data/nifti"
	"github.com/jmedseg/jmedseg/data/nrrd"
)

// Volume formats besides NIfTI, read into the same nifti.Volume.
const (
	// FormatNRRD is NRRD: .nrrd, or a .nhdr header with a data file.
	FormatNRRD Format = "nrrd"
	// FormatMetaImage is ITK's MetaImage: .mha, or a .mhd header with a
	// .raw/.zraw data file.
	FormatMetaImage Format = "metaimage"
)

// volumeFormat is FormatOf for the volume formats besides NIfTI, "" for
// any other name.
func volumeFormat(lower string) Format {
	switch {
	case strings.HasSuffix(lower, ".nrrd"), strings.HasSuffix(lower, ".nhdr"):
		return FormatNRRD
	case strings.HasSuffix(lower, ".mha"), strings.HasSuffix(lower, ".mhd"):
		return FormatMetaImage
	}
	return ""
}

// IsVolumeFormat reports whether f is read as a volume (NIfTI, NRRD or
// MetaImage): such files may be 3-D, sliced axially (SlicePath), and
// predicted as volumes.
func IsVolumeFormat(f Format) bool {
	return f == FormatNIfTI || f == FormatNRRD || f == FormatMetaImage
}

// ReadVolume decodes a NIfTI, NRRD or MetaImage file (by its name's
// ending) into a volume with its affine in RAS+, so that slicing,
// reorientation, labels and prediction treat the three alike. Errors name
// the file.
func ReadVolume(path string) (*nifti.Volume, error) {
	switch FormatOf(path) {
	case FormatNIfTI:
		return nifti.ReadFile(path)
	case FormatNRRD:
		return nrrd.ReadFile(path)
	case FormatMetaImage:
		return metaimage.ReadFile(path)
	}
	return nil, fmt.Errorf("%s: not a volume format jmedseg reads (want .nii, .nii.gz, .nrrd, .nhdr, .mha or .mhd)", path)
}

// ReadVolumeHeader is ReadVolume without the voxels (Data is nil): the
// header alone.
func ReadVolumeHeader(path string) (*nifti.Volume, error) {
	switch FormatOf(path) {
	case FormatNIfTI:
		return nifti.ReadHeader(path)
	case FormatNRRD:
		return nrrd.ReadHeader(path)
	case FormatMetaImage:
		return metaimage.ReadHeader(path)
	}
	return nil, fmt.Errorf("%s: not a volume format jmedseg reads (want .nii, .nii.gz, .nrrd, .nhdr, .mha or .mhd)", path)
}

// volumeShape is the array shape ReadImage takes a single-image volume
// as. NIfTI keeps its conventions (a third axis of 3 or 4 is colour
// planes); in NRRD and MetaImage colour is a channel axis, which the
// readers make frames: (H,W) for one frame, (C,H,W) for 3 or 4.
func volumeShape(path string, v *nifti.Volume) ([]int, error) {
	if FormatOf(path) == FormatNIfTI {
		return niftiShape(v)
	}
	if v.Dim[2] != 1 {
		return nil, fmt.Errorf("a %dx%dx%d volume, not a 2D image (slice it first)", v.Dim[0], v.Dim[1], v.Dim[2])
	}
	switch v.Dim[3] {
	case 1:
		return []int{v.Dim[1], v.Dim[0]}, nil
	case 3, 4:
		return []int{v.Dim[3], v.Dim[1], v.Dim[0]}, nil
	}
	return nil, fmt.Errorf("a 2D image of %d channels: want 1, 3 or 4", v.Dim[3])
}
