package torch_test

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
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

// SetNumThreads reaches threads that ran ops before it (libtorch's own
// set_num_threads changes the calling thread's OpenMP count only), so a
// goroutine computes on the same number of threads whichever OS thread it
// lands on.
func TestSetNumThreadsEveryThread(t *testing.T) {
	was := torch.NumThreads()
	defer torch.SetNumThreads(was)
	for _, n := range []int{2, 1, 3} {
		ready, set, done := make(chan struct{}), make(chan struct{}), make(chan int)
		go func() { // an OS thread that has run an op
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			x := torch.Ones([]int64{256, 256})
			x.Sum().Free()
			x.Free()
			ready <- struct{}{}
			<-set
			done <- torch.NumThreads()
		}()
		<-ready
		func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			torch.SetNumThreads(n)
		}()
		set <- struct{}{}
		assert.Equal(t, n, <-done, "the other thread's count after SetNumThreads(%d)", n)
	}
}
