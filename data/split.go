package data

// slabSplit assigns contiguous slabs of slab consecutive slices to splits
// following pattern cyclically, and drops the first guard slices of every
// slab whose split differs from the previous slab's, so that slices of two
// different splits are always more than guard slices apart. It returns the
// split of each input position ("" for dropped guard slices). positions
// must be sorted; a jump in positions starts a new slab.
func slabSplit(positions []int, slab, guard int, pattern []string) []string {
	out := make([]string, len(positions))
	if len(positions) == 0 || len(pattern) == 0 || slab <= 0 {
		return out
	}
	s, inSlab, prevSplit := 0, 0, ""
	slabStart := positions[0]
	for i, p := range positions {
		if i > 0 && (inSlab == slab || p != positions[i-1]+1) {
			s++
			inSlab = 0
			prevSplit = pattern[(s-1)%len(pattern)]
			slabStart = p
		}
		split := pattern[s%len(pattern)]
		inSlab++
		if s > 0 && split != prevSplit && p-slabStart < guard {
			continue
		}
		out[i] = split
	}
	return out
}
