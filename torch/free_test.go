package torch

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Free racing a scope's Close frees each handle once (run with -race).
func TestFreeRacesScopeClose(t *testing.T) {
	before, _ := Live()
	for i := 0; i < 50; i++ {
		s := NewScope()
		ts := make([]*Tensor, 8)
		for j := range ts {
			ts[j] = Zeros([]int64{4}, s)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			for _, x := range ts {
				x.Free()
			}
		}()
		go func() {
			defer wg.Done()
			s.Close()
		}()
		wg.Wait()
	}
	after, _ := Live()
	assert.Equal(t, before, after)
}

func TestScopeLenCountsLiveTensors(t *testing.T) {
	s := NewScope()
	defer s.Close()
	a, b := Zeros([]int64{2}, s), Zeros([]int64{2}, s)
	require.Equal(t, 2, s.Len())
	a.Free()
	assert.Equal(t, 1, s.Len(), "a freed tensor is not owned any more")
	b.Keep().Free()
	assert.Equal(t, 0, s.Len())
}

func TestAliasIsANewHandle(t *testing.T) {
	s := NewScope()
	defer s.Close()
	x := Ones([]int64{3}, s)
	y := x.Alias()
	require.NoError(t, y.Err())
	assert.Same(t, s, y.Scope())
	y.Free()
	v, err := x.Float64s()
	require.NoError(t, err, "freeing the alias leaves the input alone")
	assert.Equal(t, []float64{1, 1, 1}, v)
}

func TestFreedErrorNamesThePlace(t *testing.T) {
	old := debugFree
	t.Cleanup(func() { debugFree = old })

	debugFree = false
	x := Zeros([]int64{2})
	x.Free()
	err := x.Exp().Err()
	require.ErrorIs(t, err, ErrFreed)
	assert.Contains(t, err.Error(), DebugFreeEnv, "says how to find out where")

	debugFree = true
	y := Zeros([]int64{2})
	y.Free() // this line is the place
	err = y.Exp().Err()
	require.ErrorIs(t, err, ErrFreed)
	assert.Contains(t, err.Error(), "free_test.go:")
	assert.True(t, strings.Contains(err.Error(), "TestFreedErrorNamesThePlace"), err.Error())
}
