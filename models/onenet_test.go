package models_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// onenet and lightnet take sides that are multiples of 4 (their stride-4
// embedding and its transposed convolution), and widths that are multiples
// of 16 (their group counts scale with the width); anything else is an
// error naming the model.
func TestOneNetLightNetErrors(t *testing.T) {
	for _, name := range []string{"onenet", "lightnet"} {
		t.Run(name, func(t *testing.T) {
			_, err := models.New(name, models.Config{Width: 24})
			require.ErrorContains(t, err, name+": width 24 is not a multiple of 16")
			m, err := models.New(name, models.Config{Width: 16})
			require.NoError(t, err)
			defer m.Free()
			s := torch.NewScope()
			defer s.Close()
			for _, hw := range [][2]int64{{2, 4}, {36, 42}, {130, 128}} {
				err := m.Forward(torch.Zeros([]int64{1, 3, hw[0], hw[1]}, s)).Err()
				require.ErrorContains(t, err, name+" takes a height and width that are multiples of 4")
			}
		})
	}
}
