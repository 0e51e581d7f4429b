package nifti

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// ReadHeader reads only the header of the .nii or .nii.gz file at path
// (inflating no more than its first 348 bytes) and returns the volume it
// describes without voxel data: Dim, Spacing, Affine, AffineSource,
// Datatype and Description are set, Data is nil. Opening a data set of
// many volumes needs their sizes, not their voxels.
func ReadHeader(path string) (*Volume, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: nifti: corrupt gzip stream: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	hb := make([]byte, 348)
	if n, err := io.ReadFull(r, hb); err != nil {
		if n > 0 && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%s: %w", path, gzipErr(err))
		}
		return nil, fmt.Errorf("%s: nifti: header truncated (%d of 348 bytes)", path, n)
	}
	h, err := parseHeader(hb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	nd := int(h.Dim[0])
	if nd < 1 || nd > 7 {
		return nil, fmt.Errorf("%s: nifti: bad number of dimensions %d", path, nd)
	}
	v := &Volume{Dim: [4]int{1, 1, 1, 1}, Datatype: h.Datatype, Description: h.Descrip}
	n := 1
	for d := 1; d <= nd; d++ {
		s := int(h.Dim[d])
		if s < 1 {
			return nil, fmt.Errorf("%s: nifti: dimension %d has size %d", path, d, s)
		}
		if n > MaxVoxels/s {
			return nil, fmt.Errorf("%s: %w", path, tooLarge(h.Dim[1:nd+1]))
		}
		n *= s
		if d <= 4 {
			v.Dim[d-1] = s
		} else {
			v.Dim[3] *= s
		}
	}
	for i := range 3 {
		v.Spacing[i] = math.Abs(float64(h.Pixdim[i+1]))
		if v.Spacing[i] == 0 || math.IsNaN(v.Spacing[i]) || math.IsInf(v.Spacing[i], 0) {
			v.Spacing[i] = 1
		}
	}
	v.Affine, v.AffineSource = h.affine()
	return v, nil
}
