package models_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/models"
)

// u2net and u2netp scale every channel count with the width, whose quarter
// is the narrowest RSU's middle width: a width that is not a multiple of 4
// is an error naming the model.
func TestU2NetWidth(t *testing.T) {
	for _, name := range []string{"u2net", "u2netp"} {
		_, err := models.New(name, models.Config{Width: 6})
		require.ErrorContains(t, err, name+": width 6 is not a multiple of 4")
	}
}
