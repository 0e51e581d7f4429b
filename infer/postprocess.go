package infer

import "github.com/jmedseg/jmedseg/data"

// LargestComponent keeps, for every foreground class (label > 0) of m,
// only its largest 4-connected component; the other pixels of that class
// become background (0). Of components of equal size the first in raster
// order stays. m is changed in place.
func LargestComponent(m *data.Mask) {
	labels := make([]int64, len(m.Pix))
	for i, v := range m.Pix {
		labels[i] = int64(v)
	}
	largestComponent(labels, [3]int{m.W, m.H, 1})
	for i, v := range labels {
		m.Pix[i] = int32(v)
	}
}

// largestComponent is LargestComponent for a label volume of dims (x
// fastest), 6-connected (4-connected when dims[2] is 1).
func largestComponent(labels []int64, dims [3]int) {
	nx, ny, nz := dims[0], dims[1], dims[2]
	comp := make([]int32, len(labels)) // component id + 1; 0: not yet visited
	type best struct {
		id   int32
		size int
	}
	keep := map[int64]best{}
	var sizes []int
	stack := make([]int, 0, 64)
	for start, l := range labels {
		if l <= 0 || comp[start] != 0 {
			continue
		}
		id := int32(len(sizes) + 1)
		comp[start] = id
		stack = append(stack[:0], start)
		size := 0
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			size++
			x, y, z := i%nx, i/nx%ny, i/(nx*ny)
			visit := func(j int) {
				if comp[j] == 0 && labels[j] == l {
					comp[j] = id
					stack = append(stack, j)
				}
			}
			if x > 0 {
				visit(i - 1)
			}
			if x < nx-1 {
				visit(i + 1)
			}
			if y > 0 {
				visit(i - nx)
			}
			if y < ny-1 {
				visit(i + nx)
			}
			if z > 0 {
				visit(i - nx*ny)
			}
			if z < nz-1 {
				visit(i + nx*ny)
			}
		}
		sizes = append(sizes, size)
		if b, ok := keep[l]; !ok || size > b.size {
			keep[l] = best{id, size}
		}
	}
	for i, l := range labels {
		if l > 0 && comp[i] != keep[l].id {
			labels[i] = 0
		}
	}
}
