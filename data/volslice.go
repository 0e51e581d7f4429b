package data

import (
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jmedseg/jmedseg/data/nifti"
)

// sliceSep joins a 3-D volume's path and an axial slice index into the
// path of one slice (see SlicePath).
const sliceSep = "#slice="

// SlicePath names axial slice k (0-based, inferior first, after
// reorientation to RAS) of the 3-D NIfTI, NRRD or MetaImage file path. ReadImage and ReadMask
// read such a path as that slice, so a slice of a volume is a sample like
// any 2-D file (the nnU-Net and data-list layouts use it for 3-D cases).
func SlicePath(path string, k int) string { return path + sliceSep + strconv.Itoa(k) }

// splitSlicePath undoes SlicePath; a file that exists under the full name
// is never taken for a slice.
func splitSlicePath(p string) (string, int, bool) {
	i := strings.LastIndex(p, sliceSep)
	if i < 0 {
		return "", 0, false
	}
	k, err := strconv.Atoi(p[i+len(sliceSep):])
	if err != nil || k < 0 {
		return "", 0, false
	}
	if _, err := os.Stat(p); err == nil {
		return "", 0, false
	}
	return p[:i], k, true
}

// AxialSlices is a 3-D volume (NIfTI, NRRD or MetaImage) cut into the 2-D images jmedseg trains
// and predicts on: the volume is reoriented to RAS by permuting and flipping
// axes (no resampling, as data prepare does), each axial plane is one image
// at the native in-plane grid, shown anterior up with the subject's right
// on the right, and intensities map to [0, 1] between the volume's 0.5th
// and 99.5th percentiles (of every finite voxel, so that CT air and MR
// background count alike), clipped, as 16-bit grey.
type AxialSlices struct {
	// W and H are the slice size: the RAS x and y extents.
	W, H int
	// Images holds one 16-bit grey image per slice, inferior first.
	Images []*image.Gray16
	// Spacing is the pixel size (x, y) in mm.
	Spacing [2]float64
	// stored[k*W*H+y*W+x] is the index into the volume's Data of pixel
	// (x, y) of slice k.
	stored []int
}

// StoredIndex returns the index into the original volume's Data of pixel
// (x, y) of slice k.
func (a *AxialSlices) StoredIndex(k, x, y int) int { return a.stored[(k*a.H+y)*a.W+x] }

// Axial cuts v (3-D, one frame) into axial slices. NaN voxels read as the
// lowest finite intensity; an infinite voxel or a volume without a finite
// one is an error.
func Axial(v *nifti.Volume) (*AxialSlices, error) {
	ras, idx, err := rasWithIndex(v)
	if err != nil {
		return nil, err
	}
	lo, hi, err := finiteRange(v.Data)
	if err != nil {
		return nil, err
	}
	nx, ny, nz := ras.Dim[0], ras.Dim[1], ras.Dim[2]
	a := &AxialSlices{W: nx, H: ny, Spacing: [2]float64{ras.Spacing[0], ras.Spacing[1]}, stored: make([]int, nx*ny*nz)}
	for k := range nz {
		img := image.NewGray16(image.Rect(0, 0, nx, ny))
		for y := range ny {
			j := ny - 1 - y // anterior up
			for x := range nx {
				r := x + nx*(j+ny*k)
				val := ras.Data[r]
				if math.IsNaN(val) {
					val = lo
				}
				g := uint16(math.Round(min(1, max(0, (val-lo)/(hi-lo))) * 65535))
				img.Pix[y*img.Stride+2*x], img.Pix[y*img.Stride+2*x+1] = uint8(g>>8), uint8(g)
				a.stored[(k*ny+y)*nx+x] = idx[r]
			}
		}
		a.Images = append(a.Images, img)
	}
	return a, nil
}

// axialLabels cuts a label volume as Axial cuts images.
func axialLabels(v *nifti.Volume) ([]*Mask, error) {
	ras, _, err := rasWithIndex(v)
	if err != nil {
		return nil, err
	}
	nx, ny, nz := ras.Dim[0], ras.Dim[1], ras.Dim[2]
	out := make([]*Mask, nz)
	for k := range nz {
		m := NewMask(nx, ny)
		for y := range ny {
			j := ny - 1 - y
			for x := range nx {
				val := ras.Data[x+nx*(j+ny*k)]
				if val != math.Trunc(val) || val < 0 || val > math.MaxInt32 {
					return nil, fmt.Errorf("value %v at voxel of slice %d (%d,%d) is not a class label (want a non-negative integer)", val, k, x, y)
				}
				m.Pix[y*nx+x] = int32(val)
			}
		}
		out[k] = m
	}
	return out, nil
}

// rasWithIndex reorients v to RAS and says, for each RAS voxel, the index
// of the stored voxel it came from.
func rasWithIndex(v *nifti.Volume) (*nifti.Volume, []int, error) {
	if v.Dim[3] > 1 {
		return nil, nil, fmt.Errorf("a 4-D volume of %d frames (%dx%dx%dx%d): want one 3-D volume per file (one file per channel)",
			v.Dim[3], v.Dim[0], v.Dim[1], v.Dim[2], v.Dim[3])
	}
	n := v.Dim[0] * v.Dim[1] * v.Dim[2]
	if len(v.Data) < n {
		return nil, nil, fmt.Errorf("volume has %d voxels, its dimensions %v need %d", len(v.Data), v.Dim, n)
	}
	idx := *v
	idx.Data = make([]float64, n)
	for i := range idx.Data {
		idx.Data[i] = float64(i)
	}
	ras, rIdx := v.ToRAS(), idx.ToRAS()
	out := make([]int, n)
	for i, f := range rIdx.Data[:n] {
		out[i] = int(f)
	}
	return ras, out, nil
}

// finiteRange is the 0.5th and 99.5th percentile of the finite values.
func finiteRange(data []float64) (float64, float64, error) {
	vals := make([]float64, 0, len(data))
	for i, x := range data {
		switch {
		case math.IsNaN(x):
		case math.IsInf(x, 0):
			return 0, 0, fmt.Errorf("voxel %d is infinite (%v): want finite intensities (NaN is read as no data)", i, x)
		default:
			vals = append(vals, x)
		}
	}
	if len(vals) == 0 {
		return 0, 0, errors.New("no finite voxel: nothing to read")
	}
	slices.Sort(vals)
	at := func(p float64) float64 { return vals[int(math.Round(p/100*float64(len(vals)-1)))] }
	lo, hi := at(0.5), at(99.5)
	if hi <= lo {
		hi = lo + 1
	}
	return lo, hi, nil
}

// AxialDepth returns the number of axial slices of a NIfTI, NRRD or
// MetaImage file (its extent along the superior axis) and whether it is
// 3-D at all, reading its header only. A file whose third stored
// dimension is 1 is 2-D.
func AxialDepth(path string) (int, bool, error) {
	v, err := ReadVolumeHeader(path)
	if err != nil {
		return 0, false, err
	}
	if v.Dim[2] == 1 {
		return 1, false, nil
	}
	if v.Dim[3] > 1 {
		return 0, true, fmt.Errorf("%s: a 4-D volume of %d frames: want one 3-D volume per file (one file per channel)", path, v.Dim[3])
	}
	code := v.Orientation()
	for j := range 3 {
		if code[j] == 'S' || code[j] == 'I' {
			return v.Dim[j], true, nil
		}
	}
	return v.Dim[2], true, nil
}

// VolumeCacheBytes bounds the memory of the decoded volumes kept for slice
// samples (16-bit images, 32-bit labels); the least recently used go first.
// A volume is decoded once per pass over its slices at most while the
// training volumes fit.
var VolumeCacheBytes int64 = 2 << 30

type volEntry struct {
	ready  chan struct{}
	images []*image.Gray16
	labels []*Mask
	err    error
	bytes  int64
	used   uint64
}

var volCache = struct {
	sync.Mutex
	m     map[string]*volEntry
	total int64
	clock uint64
}{m: map[string]*volEntry{}}

// cachedVolume decodes path (once while it stays cached) as images or
// labels.
func cachedVolume(path string, labels bool) (*volEntry, error) {
	key := "i:" + path
	if labels {
		key = "l:" + path
	}
	c := &volCache
	c.Lock()
	c.clock++
	if e, ok := c.m[key]; ok {
		e.used = c.clock
		c.Unlock()
		<-e.ready
		return e, e.err
	}
	e := &volEntry{ready: make(chan struct{}), used: c.clock}
	c.m[key] = e
	c.Unlock()

	v, err := ReadVolume(path)
	if err == nil {
		if labels {
			e.labels, err = axialLabels(v)
			for _, m := range e.labels {
				e.bytes += int64(4 * len(m.Pix))
			}
		} else {
			var a *AxialSlices
			if a, err = Axial(v); err == nil {
				e.images = a.Images
				e.bytes = int64(2 * a.W * a.H * len(a.Images))
			}
		}
	}
	e.err = err
	close(e.ready)

	c.Lock()
	defer c.Unlock()
	if err != nil { // not kept: a fixed file is read again
		delete(c.m, key)
		return e, err
	}
	c.total += e.bytes
	for c.total > VolumeCacheBytes && len(c.m) > 1 {
		var oldK string
		var old *volEntry
		for k, x := range c.m {
			select {
			case <-x.ready:
			default:
				continue // still loading
			}
			if x != e && (old == nil || x.used < old.used) {
				oldK, old = k, x
			}
		}
		if old == nil {
			break
		}
		delete(c.m, oldK)
		c.total -= old.bytes
	}
	return e, nil
}

// readSliceImage reads axial slice k of the volume file path.
func readSliceImage(path string, k int) (image.Image, error) {
	e, err := cachedVolume(path, false)
	if err != nil {
		return nil, err
	}
	if k >= len(e.images) {
		return nil, fmt.Errorf("axial slice %d out of range: the volume has %d", k, len(e.images))
	}
	src := e.images[k] // shared by the cache: the caller gets its own
	return &image.Gray16{Pix: slices.Clone(src.Pix), Stride: src.Stride, Rect: src.Rect}, nil
}

// readSliceMask reads axial slice k of the label volume file path.
func readSliceMask(path string, k int) (*Mask, error) {
	e, err := cachedVolume(path, true)
	if err != nil {
		return nil, err
	}
	if k >= len(e.labels) {
		return nil, fmt.Errorf("axial slice %d out of range: the label volume has %d", k, len(e.labels))
	}
	return e.labels[k].Clone(), nil
}
