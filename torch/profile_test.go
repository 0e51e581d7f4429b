package torch

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProfile(t *testing.T) {
	if err := StartProfile(); err != nil && strings.Contains(err.Error(), "no legacy profiler") {
		t.Skip(err)
	} else {
		require.NoError(t, err)
	}
	require.Error(t, StartProfile(), "the profiler is already on for this thread")
	s := NewScope()
	x := s.Track(Randn([]int64{2, 3, 8, 8}))
	require.NoError(t, x.SetRequiresGrad(true))
	w := s.Track(Randn([]int64{4, 3, 3, 3}))
	y := x
	for i := 0; i < 3; i++ {
		y = y.Relu()
	}
	loss := Conv2d(y, w, nil, [2]int64{1, 1}, [2]int64{1, 1}, [2]int64{1, 1}, 1).Sum()
	require.NoError(t, loss.Backward())
	s.Close()
	ops, trace, err := StopProfile(true)
	require.NoError(t, err)

	byName := map[string]ProfileOp{}
	for i, op := range ops {
		byName[op.Name] = op
		assert.LessOrEqual(t, op.SelfSeconds, op.TotalSeconds+1e-9, op.Name)
		assert.Positive(t, op.Calls, op.Name)
		if i > 0 {
			assert.LessOrEqual(t, op.SelfSeconds, ops[i-1].SelfSeconds, "sorted by self time")
		}
	}
	assert.EqualValues(t, 3, byName["aten::relu"].Calls, "%v", ops)
	t.Logf("%d operators, first %v", len(ops), ops[:min(len(ops), 6)])
	conv, ok := byName["aten::conv2d"]
	require.True(t, ok, "%v", ops)
	// conv2d calls the convolution underneath: its total holds its callees.
	assert.Less(t, conv.SelfSeconds, conv.TotalSeconds)
	var anyBackward bool
	for name := range byName {
		if len(name) > 8 && name[len(name)-9:] == "Backward0" {
			anyBackward = true
		}
	}
	assert.True(t, anyBackward, "autograd's backward nodes are recorded: %v", ops)

	require.True(t, json.Valid(trace), "the Chrome trace is JSON")
	assert.Contains(t, string(trace), "aten::relu")

	// Off again: a new region starts empty.
	require.NoError(t, StartProfile())
	ops, trace, err = StopProfile(false)
	require.NoError(t, err)
	assert.Nil(t, trace)
	for _, op := range ops {
		assert.NotEqual(t, "aten::relu", op.Name)
	}
}

func TestParseProfile(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []ProfileOp
		bad      bool
	}{
		{name: "empty", in: ""},
		{name: "sorted by self", in: "a\t2\t10\t4\nb\t1\t8\t8\n", want: []ProfileOp{
			{Name: "b", Calls: 1, TotalSeconds: 8e-6, SelfSeconds: 8e-6}, {Name: "a", Calls: 2, TotalSeconds: 10e-6, SelfSeconds: 4e-6}}},
		{name: "fields", in: "a\t2\t10\n", bad: true},
		{name: "number", in: "a\tx\t10\t4\n", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProfile(tc.in)
			if tc.bad {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
