package train

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The ranks' shares of an epoch are disjoint, and together each global
// batch is the single-process batch of world×batch samples.
func TestShardOrder(t *testing.T) {
	order := []int{9, 3, 7, 0, 5, 1, 8, 2, 6, 4, 10} // 11 samples, 2 global batches of 2×2, 3 left over
	cases := []struct {
		rank, world, batch int
		want               []int
	}{
		{0, 2, 2, []int{9, 3, 5, 1}},
		{1, 2, 2, []int{7, 0, 8, 2}},
		{0, 1, 4, []int{9, 3, 7, 0, 5, 1, 8, 2}},
		{2, 3, 1, []int{7, 1, 6}},
	}
	for _, c := range cases {
		steps := len(order) / (c.world * c.batch)
		got := shardOrder(order, steps, c.batch, c.rank, c.world)
		assert.Equal(t, c.want, got, "rank %d of %d, batch %d", c.rank, c.world, c.batch)
	}
	// Global batch g is the union of the ranks' batches g.
	world, batch := 3, 3
	steps := len(order) / (world * batch)
	var all []int
	for r := range world {
		all = append(all, shardOrder(order, steps, batch, r, world)...)
	}
	slices.Sort(all)
	want := slices.Clone(order[:steps*world*batch])
	slices.Sort(want)
	assert.Equal(t, want, all)
}

func TestRankSeed(t *testing.T) {
	assert.Equal(t, uint64(5), rankSeed(5, 0), "rank 0 keeps the run's seed")
	assert.NotEqual(t, rankSeed(5, 1), rankSeed(5, 2))
	assert.NotEqual(t, rankSeed(5, 1), uint64(5))
}
