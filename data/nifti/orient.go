package nifti

import (
	"fmt"
	"math"
)

// Orientation returns the three-letter axis code of the volume, e.g. "RAS"
// when the first voxel axis points to the subject's right, the second
// anterior and the third superior ("LPI" is the opposite of each).
func (v *Volume) Orientation() string {
	perm, sign := v.axes()
	pos, neg := "RAS", "LPI"
	code := make([]byte, 3)
	for j := range 3 {
		if sign[j] > 0 {
			code[j] = pos[perm[j]]
		} else {
			code[j] = neg[perm[j]]
		}
	}
	return string(code)
}

// axes finds, for each voxel axis j, the world axis perm[j] it is closest
// to and the direction sign[j] (+1 or -1), resolving ties so that perm is a
// permutation.
func (v *Volume) axes() (perm [3]int, sign [3]int) {
	best := -1.0
	for _, p := range [][3]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
		score := 0.0
		for j := range 3 {
			col := math.Sqrt(sq(v.Affine[0][j]) + sq(v.Affine[1][j]) + sq(v.Affine[2][j]))
			if col > 0 {
				score += math.Abs(v.Affine[p[j]][j]) / col
			}
		}
		if score > best {
			best, perm = score, p
		}
	}
	for j := range 3 {
		sign[j] = 1
		if v.Affine[perm[j]][j] < 0 {
			sign[j] = -1
		}
	}
	return perm, sign
}

func sq(x float64) float64 { return x * x }

// ToRAS returns a copy of the volume whose voxel axes are permuted and
// flipped so that they point, as nearly as the affine allows, Right,
// Anterior and Superior. No resampling happens; the affine and spacing are
// updated to match. All frames are reoriented.
func (v *Volume) ToRAS() *Volume {
	perm, sign := v.axes()
	// For new axis w (world axis w), find the old axis j with perm[j] == w.
	var src [3]int
	for j := range 3 {
		src[perm[j]] = j
	}
	out := &Volume{AffineSource: v.AffineSource, Datatype: v.Datatype, Description: v.Description}
	for w := range 3 {
		out.Dim[w] = v.Dim[src[w]]
		out.Spacing[w] = v.Spacing[src[w]]
	}
	out.Dim[3] = v.Dim[3]
	// new index n[w] relates to old index o[src[w]] = n[w] or dim-1-n[w].
	// Affine: world = A_old * o + t; o_j = s_j n_w + c_j.
	for r := range 3 {
		t := v.Affine[r][3]
		for w := range 3 {
			j := src[w]
			if sign[j] > 0 {
				out.Affine[r][w] = v.Affine[r][j]
			} else {
				out.Affine[r][w] = -v.Affine[r][j]
				t += v.Affine[r][j] * float64(v.Dim[j]-1)
			}
		}
		out.Affine[r][3] = t
	}
	out.Data = make([]float64, len(v.Data))
	nx, ny, nz := out.Dim[0], out.Dim[1], out.Dim[2]
	ostr := [3]int{1, v.Dim[0], v.Dim[0] * v.Dim[1]}
	frame := v.Dim[0] * v.Dim[1] * v.Dim[2]
	var n [3]int
	for t := 0; t < v.Dim[3]; t++ {
		base := t * frame
		q := base
		for n[2] = 0; n[2] < nz; n[2]++ {
			for n[1] = 0; n[1] < ny; n[1]++ {
				for n[0] = 0; n[0] < nx; n[0]++ {
					off := base
					for w := range 3 {
						j := src[w]
						o := n[w]
						if sign[j] < 0 {
							o = v.Dim[j] - 1 - n[w]
						}
						off += o * ostr[j]
					}
					out.Data[q] = v.Data[off]
					q++
				}
			}
		}
	}
	return out
}

// Slice is one 2D plane of a volume. Pixel (x, y) is Data[x + W*y].
type Slice struct {
	W, H int
	// Spacing is the pixel size in mm along x and y.
	Spacing [2]float64
	Data    []float64
}

// Slice extracts plane index along axis (0, 1 or 2) of the first frame. The
// slice's x runs along the lower remaining voxel axis and y along the higher
// one: axis 2 gives (i, j) planes, axis 1 (i, k), axis 0 (j, k). For a RAS
// volume, axis 2 is axial, 1 coronal and 0 sagittal.
func (v *Volume) Slice(axis, index int) (*Slice, error) {
	if axis < 0 || axis > 2 {
		return nil, fmt.Errorf("nifti: slice axis %d (want 0, 1 or 2)", axis)
	}
	if index < 0 || index >= v.Dim[axis] {
		return nil, fmt.Errorf("nifti: slice %d out of range [0,%d) along axis %d", index, v.Dim[axis], axis)
	}
	a, b := 0, 1
	switch axis {
	case 0:
		a, b = 1, 2
	case 1:
		a, b = 0, 2
	}
	s := &Slice{W: v.Dim[a], H: v.Dim[b], Spacing: [2]float64{v.Spacing[a], v.Spacing[b]}}
	s.Data = make([]float64, s.W*s.H)
	str := [3]int{1, v.Dim[0], v.Dim[0] * v.Dim[1]}
	base := index * str[axis]
	for y := 0; y < s.H; y++ {
		for x := 0; x < s.W; x++ {
			s.Data[x+s.W*y] = v.Data[base+x*str[a]+y*str[b]]
		}
	}
	return s, nil
}
