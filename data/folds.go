package data

import (
	"fmt"
	"slices"
)

// DefaultFolds is the number of cross-validation folds when a layout
// without its own validation split is opened without OpenOptions.Folds
// (nnU-Net's 5).
const DefaultFolds = 5

// FoldSeed is the seed of the case shuffle behind the folds: nnU-Net's
// (generate_crossval_split: sklearn KFold(n_splits, shuffle=True,
// random_state=12345) over the sorted case identifiers).
const FoldSeed = 12345

// KFold splits the cases into k folds as nnU-Net v2 does: the identifiers
// are sorted, their indices shuffled by NumPy's legacy
// RandomState(FoldSeed).shuffle (MT19937, Fisher–Yates from the end with
// masked rejection sampling), and the shuffled list is cut into k runs, the
// first len%k of them one longer. It returns the validation cases of each
// fold in shuffled order; the training cases of fold f are all the others.
// Every case is in exactly one fold. k must be in [2, len(cases)].
func KFold(cases []string, k int) ([][]string, error) {
	ids := slices.Clone(cases)
	slices.Sort(ids)
	if len(ids) > 1 {
		for i := 1; i < len(ids); i++ {
			if ids[i] == ids[i-1] {
				return nil, fmt.Errorf("folds: case %q is listed twice", ids[i])
			}
		}
	}
	if k < 2 || k > len(ids) {
		return nil, fmt.Errorf("folds: %d folds of %d cases: want 2 to %d folds", k, len(ids), len(ids))
	}
	idx := make([]int, len(ids))
	for i := range idx {
		idx[i] = i
	}
	mt := newMT19937(FoldSeed)
	for i := len(idx) - 1; i > 0; i-- {
		j := mt.interval(uint32(i))
		idx[i], idx[j] = idx[j], idx[i]
	}
	out := make([][]string, k)
	start := 0
	for f := range k {
		n := len(ids) / k
		if f < len(ids)%k {
			n++
		}
		for _, i := range idx[start : start+n] {
			out[f] = append(out[f], ids[i])
		}
		start += n
	}
	return out, nil
}

// mt19937 is the Mersenne Twister of Matsumoto and Nishimura, seeded as
// init_genrand (NumPy's legacy seeding of an integer seed).
type mt19937 struct {
	mt  [624]uint32
	pos int
}

func newMT19937(seed uint32) *mt19937 {
	m := &mt19937{pos: 624}
	m.mt[0] = seed
	for i := 1; i < 624; i++ {
		m.mt[i] = 1812433253*(m.mt[i-1]^(m.mt[i-1]>>30)) + uint32(i)
	}
	return m
}

// uint32 is genrand_int32.
func (m *mt19937) uint32() uint32 {
	if m.pos >= 624 {
		for i := range 624 {
			y := m.mt[i]&0x80000000 | m.mt[(i+1)%624]&0x7fffffff
			v := m.mt[(i+397)%624] ^ y>>1
			if y&1 != 0 {
				v ^= 0x9908b0df
			}
			m.mt[i] = v
		}
		m.pos = 0
	}
	y := m.mt[m.pos]
	m.pos++
	y ^= y >> 11
	y ^= y << 7 & 0x9d2c5680
	y ^= y << 15 & 0xefc60000
	y ^= y >> 18
	return y
}

// interval is NumPy's random_interval(max) for max < 2^32: a value in
// [0, max] by rejection of 32-bit draws masked to max's bit length.
func (m *mt19937) interval(max uint32) int {
	if max == 0 {
		return 0
	}
	mask := max
	mask |= mask >> 1
	mask |= mask >> 2
	mask |= mask >> 4
	mask |= mask >> 8
	mask |= mask >> 16
	for {
		if v := m.uint32() & mask; v <= max {
			return int(v)
		}
	}
}

// foldOf maps each case to its fold: from explicit folds (fold numbers the
// data list gives), else by KFold.
func foldOf(cases []string, k int) (map[string]int, error) {
	folds, err := KFold(cases, k)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(cases))
	for f, ids := range folds {
		for _, id := range ids {
			out[id] = f
		}
	}
	return out, nil
}
