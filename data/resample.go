package data

import (
	"image"
	"math"
	"slices"

	"github.com/jmedseg/jmedseg/data/nifti"
)

// percentiles returns the lo and hi percentiles (0–100) of the positive
// values of data (of all values when none is positive).
func percentiles(data []float64, lo, hi float64) (float64, float64) {
	vals := make([]float64, 0, len(data))
	for _, v := range data {
		if v > 0 {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		vals = slices.Clone(data)
	}
	if len(vals) == 0 {
		return 0, 1
	}
	slices.Sort(vals)
	at := func(p float64) float64 {
		i := int(math.Round(p / 100 * float64(len(vals)-1)))
		return vals[min(max(i, 0), len(vals)-1)]
	}
	a, b := at(lo), at(hi)
	if b <= a {
		b = a + 1
	}
	return a, b
}

// frame is the in-plane sampling grid shared by every axial slice of one
// RAS volume: output pixel (u, v) samples voxel coordinates
// x = x0 + u*step/sx, y = y0 - v*step/sy (anterior at the top, the
// subject's right on the right).
type frame struct {
	size       int
	step       float64 // output pixel size, mm
	x0, y0     float64 // voxel coordinates of output pixel (0,0) centre
	sx, sy     float64 // voxel spacing, mm
	nx, ny, nz int
}

// brainFrame fits a square field of view around the bounding box of mask
// (over all axial planes) with a relative margin and samples it with size
// pixels per side.
func brainFrame(mask *nifti.Volume, size int, margin float64) frame {
	nx, ny, nz := mask.Dim[0], mask.Dim[1], mask.Dim[2]
	x0, x1, y0, y1 := nx, -1, ny, -1
	for k := range nz {
		for j := range ny {
			row := mask.Data[nx*(j+ny*k) : nx*(j+ny*k)+nx]
			for i, v := range row {
				if v > 0 {
					x0, x1 = min(x0, i), max(x1, i)
					y0, y1 = min(y0, j), max(y1, j)
				}
			}
		}
	}
	if x1 < 0 { // empty mask: whole plane
		x0, x1, y0, y1 = 0, nx-1, 0, ny-1
	}
	sx, sy := mask.Spacing[0], mask.Spacing[1]
	cx, cy := float64(x0+x1)/2*sx, float64(y0+y1)/2*sy
	ext := max(float64(x1-x0+1)*sx, float64(y1-y0+1)*sy) * (1 + 2*margin)
	step := ext / float64(size)
	half := float64(size-1) / 2
	return frame{
		size: size, step: step, sx: sx, sy: sy, nx: nx, ny: ny, nz: nz,
		x0: (cx - half*step) / sx,
		y0: (cy + half*step) / sy,
	}
}

// grey renders axial plane k of img with bilinear interpolation, mapping
// [lo, hi] to 0..255.
func (f frame) grey(img *nifti.Volume, k int, lo, hi float64) *image.Gray {
	out := image.NewGray(image.Rect(0, 0, f.size, f.size))
	plane := img.Data[f.nx*f.ny*k : f.nx*f.ny*(k+1)]
	at := func(i, j int) float64 {
		if i < 0 || j < 0 || i >= f.nx || j >= f.ny {
			return 0
		}
		return plane[i+f.nx*j]
	}
	for v := range f.size {
		y := f.y0 - float64(v)*f.step/f.sy
		j := int(math.Floor(y))
		fy := y - float64(j)
		for u := range f.size {
			x := f.x0 + float64(u)*f.step/f.sx
			i := int(math.Floor(x))
			fx := x - float64(i)
			val := (at(i, j)*(1-fx)+at(i+1, j)*fx)*(1-fy) + (at(i, j+1)*(1-fx)+at(i+1, j+1)*fx)*fy
			g := (val - lo) / (hi - lo)
			out.Pix[v*out.Stride+u] = uint8(math.Round(min(1, max(0, g)) * 255))
		}
	}
	return out
}

// labels renders axial plane k of a label volume with nearest-neighbour
// sampling through lut (nil: identity); outside the volume is 0.
func (f frame) labels(vol *nifti.Volume, k int, lut func(float64) int32) *Mask {
	m := NewMask(f.size, f.size)
	plane := vol.Data[f.nx*f.ny*k : f.nx*f.ny*(k+1)]
	for v := range f.size {
		j := int(math.Round(f.y0 - float64(v)*f.step/f.sy))
		if j < 0 || j >= f.ny {
			continue
		}
		for u := range f.size {
			i := int(math.Round(f.x0 + float64(u)*f.step/f.sx))
			if i < 0 || i >= f.nx {
				continue
			}
			m.Pix[v*f.size+u] = lut(plane[i+f.nx*j])
		}
	}
	return m
}

func binary(v float64) int32 {
	if v > 0 {
		return 1
	}
	return 0
}
