// Package nifti reads NIfTI-1 volumes from single-file .nii and gzip
// compressed .nii.gz files.
//
// Supported voxel types are uint8, int8, int16, uint16, int32, uint32,
// float32 and float64, in either byte order. The scaling slope and intercept
// are applied on read. The voxel-to-world (RAS+, millimetre) transform is
// taken from the sform when its code is set, else from the qform, else from
// the voxel spacing alone, as the NIfTI-1 standard prescribes. Volumes can
// be reoriented to RAS+ with [Volume.ToRAS] and sliced along any axis with
// [Volume.Slice].
//
// Decoding never panics on malformed input: every problem is returned as an
// error that says what was wrong.
package nifti
