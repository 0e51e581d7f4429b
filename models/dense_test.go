package models_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// An input the model cannot take (sides not multiples of 16, or below the
// minimum) is an error naming the model and the sizes it takes, not a
// libtorch failure deep inside.
func TestInputSidesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		hw         [2]int64
	}{
		{"dense", "dense takes a height and width that are multiples of 16, got 24x32", [2]int64{24, 32}},
		{"multires", "multires takes a height and width that are multiples of 16 and at least 32, got 16x16", [2]int64{16, 16}},
		{"multires", "multires takes a height and width that are multiples of 16 and at least 32, got 48x40", [2]int64{48, 40}},
		{"scseunet", "scseunet takes a height and width that are multiples of 16, got 8x8", [2]int64{8, 8}},
		{"csnet", "csnet takes a height and width that are multiples of 16, got 32x20", [2]int64{32, 20}},
		{"simple", "simple takes a height and width that are multiples of 16, got 100x100", [2]int64{100, 100}},
	} {
		t.Run(tc.name+"/"+sizeName(tc.hw), func(t *testing.T) {
			s := spec(t, tc.name)
			m := build(t, s, 3, 2)
			sc := torch.NewScope()
			defer sc.Close()
			y := m.Forward(torch.Zeros([]int64{2, 3, tc.hw[0], tc.hw[1]}, sc))
			require.Error(t, y.Err())
			assert.Contains(t, y.Err().Error(), tc.want)
		})
	}
	// multires runs on a multiple of 16 that its Multiple (32, its minimum)
	// does not divide.
	m, err := models.New("multires", models.Config{Width: 4})
	require.NoError(t, err)
	defer m.Free()
	sc := torch.NewScope()
	defer sc.Close()
	require.NoError(t, m.Forward(torch.Zeros([]int64{2, 3, 48, 80}, sc)).Err())
}
