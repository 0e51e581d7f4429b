package torch_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch"
)

func TestSetDeterministic(t *testing.T) {
	on, warn := torch.Deterministic()
	defer torch.SetDeterministic(on, warn)
	for _, tc := range []struct{ on, warn bool }{{true, false}, {true, true}, {false, false}} {
		torch.SetDeterministic(tc.on, tc.warn)
		gotOn, gotWarn := torch.Deterministic()
		require.Equal(t, tc.on, gotOn)
		require.Equal(t, tc.warn, gotWarn)
	}
}
