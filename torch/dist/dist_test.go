package dist_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/oracle/py"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/dist"
)

// freePort asks the kernel for a port nobody listens on.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ranks runs f as every rank of a fresh group of n, each in its own
// goroutine with its own store client and group (one process, as many
// ranks; gloo does not mind).
func ranks(t *testing.T, n int, timeout time.Duration, f func(g *dist.Group) error) []error {
	t.Helper()
	port := freePort(t)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		wg.Go(func() {
			g, err := dist.Init(dist.Env{Rank: r, WorldSize: n, MasterAddr: "127.0.0.1", MasterPort: port}, dist.InitOptions{Timeout: timeout, Threads: 1})
			if err != nil {
				errs[r] = err
				return
			}
			defer g.Close()
			errs[r] = f(g)
		})
	}
	wg.Wait()
	return errs
}

func floats(t testing.TB, x *torch.Tensor) []float32 {
	t.Helper()
	v, err := x.Float32s()
	require.NoError(t, err)
	return v
}

// dist.cc reads jmedseg.cc's handles as an at::Tensor first: a change of
// that layout shows here.
func TestHandleLayout(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	for _, shape := range [][]int64{{3}, {2, 5, 7}, {}} {
		x := torch.Zeros(shape, s)
		assert.Equal(t, x.Numel(), dist.HandleNumel(x), "%v", shape)
	}
}

func TestCollectives(t *testing.T) {
	var mu sync.Mutex
	got := map[int][][]float32{}
	errs := ranks(t, 2, 20*time.Second, func(g *dist.Group) error {
		s := torch.NewScope()
		defer s.Close()
		r := float32(g.Rank() + 1)
		a := torch.FromSlice([]float32{1 * r, 2 * r, 3 * r}, []int64{3}, s)
		b := torch.FromSlice([]float32{10 * r, 20 * r, 30 * r, 40 * r}, []int64{2, 2}, s)
		if err := g.AllReduce(dist.Sum, a, b); err != nil { // two tensors, one collective
			return err
		}
		m := torch.FromSlice([]float32{r, -r}, []int64{2}, s)
		if err := g.AllReduce(dist.Max, m); err != nil {
			return err
		}
		av := torch.FromSlice([]float32{r}, []int64{1}, s)
		if err := g.AllReduce(dist.Avg, av); err != nil {
			return err
		}
		c := torch.FromSlice([]float32{r, r}, []int64{2}, s)
		if err := g.Broadcast(1, c); err != nil {
			return err
		}
		if err := g.Barrier(); err != nil {
			return err
		}
		mu.Lock()
		got[g.Rank()] = [][]float32{floats(t, a), floats(t, b), floats(t, m), floats(t, av), floats(t, c)}
		mu.Unlock()
		return nil
	})
	for r, err := range errs {
		require.NoError(t, err, "rank %d", r)
	}
	want := [][]float32{{3, 6, 9}, {30, 60, 90, 120}, {2, -1}, {1.5}, {2, 2}}
	for r := range 2 {
		assert.Equal(t, want, got[r], "rank %d", r)
	}
}

// TestSyncBatchNorm: two ranks' SyncBatchNorm over halves of a batch give
// what one BatchNorm over the whole batch gives (torch.BatchNorm, checked
// against PyTorch in torch's parity tests): outputs, running statistics and
// the gradients of x, weight and bias (those of weight and bias summed over
// the ranks, as the Reducer's average times the group size).
func TestSyncBatchNorm(t *testing.T) {
	const n, c, h, w = 6, 3, 5, 4
	s := torch.NewScope()
	defer s.Close()
	torch.ManualSeed(7)
	xAll := torch.Randn([]int64{n, c, h, w}, s).MulScalar(2).AddScalar(0.5)
	rAll := torch.Randn([]int64{n, c, h, w}, s) // d loss / d y
	xs, err := xAll.Float32s()
	require.NoError(t, err)
	rs, err := rAll.Float32s()
	require.NoError(t, err)
	weight := []float32{0.5, 1.5, -1}
	bias := []float32{0.1, 0, -0.2}

	// The whole batch on one BatchNorm.
	x := torch.FromSlice(xs, []int64{n, c, h, w}, s)
	require.NoError(t, x.SetRequiresGrad(true))
	wt := torch.FromSlice(weight, []int64{c}, s)
	bt := torch.FromSlice(bias, []int64{c}, s)
	require.NoError(t, wt.SetRequiresGrad(true))
	require.NoError(t, bt.SetRequiresGrad(true))
	rm, rv := torch.Zeros([]int64{c}, s), torch.Ones([]int64{c}, s)
	y := torch.BatchNorm(x, wt, bt, rm, rv, true, 0.1, 1e-5)
	require.NoError(t, y.Mul(torch.FromSlice(rs, []int64{n, c, h, w}, s)).Sum().Backward())
	want := map[string][]float32{"y": floats(t, y), "rm": floats(t, rm), "rv": floats(t, rv), "dx": floats(t, x.Grad()),
		"dw": floats(t, wt.Grad()), "db": floats(t, bt.Grad())}

	// Rank 0 takes 4 images, rank 1 two: uneven shares count by images.
	split := []int{0, 4, 6}
	got := make([]map[string][]float32, 2)
	errs := ranks(t, 2, 20*time.Second, func(g *dist.Group) error {
		s := torch.NewScope()
		defer s.Close()
		lo, hi := split[g.Rank()], split[g.Rank()+1]
		per := c * h * w
		x := torch.FromSlice(xs[lo*per:hi*per], []int64{int64(hi - lo), c, h, w}, s)
		if err := x.SetRequiresGrad(true); err != nil {
			return err
		}
		wt := torch.FromSlice(weight, []int64{c}, s)
		bt := torch.FromSlice(bias, []int64{c}, s)
		wt.SetRequiresGrad(true)
		bt.SetRequiresGrad(true)
		rm, rv := torch.Zeros([]int64{c}, s), torch.Ones([]int64{c}, s)
		y := dist.SyncBatchNorm(g, x, wt, bt, rm, rv, 0.1, 1e-5)
		if err := y.Err(); err != nil {
			return err
		}
		r := torch.FromSlice(rs[lo*per:hi*per], []int64{int64(hi - lo), c, h, w}, s)
		if err := y.Mul(r).Sum().Backward(); err != nil {
			return err
		}
		got[g.Rank()] = map[string][]float32{"y": floats(t, y), "rm": floats(t, rm), "rv": floats(t, rv), "dx": floats(t, x.Grad()),
			"dw": floats(t, wt.Grad()), "db": floats(t, bt.Grad())}
		return nil
	})
	for r, err := range errs {
		require.NoError(t, err, "rank %d", r)
	}
	cat := func(k string) []float32 { return append(append([]float32(nil), got[0][k]...), got[1][k]...) }
	sum := func(k string) []float32 {
		out := make([]float32, c)
		for i := range out {
			out[i] = got[0][k][i] + got[1][k][i]
		}
		return out
	}
	near := func(name string, want, got []float32) {
		require.Len(t, got, len(want), name)
		for i := range want {
			assert.InDelta(t, want[i], got[i], float64(2e-5*(1+abs(want[i]))), "%s[%d]", name, i)
		}
	}
	near("y", want["y"], cat("y"))
	near("dx", want["dx"], cat("dx"))
	near("dw", want["dw"], sum("dw"))
	near("db", want["db"], sum("db"))
	for r := range 2 {
		near(fmt.Sprintf("running_mean rank %d", r), want["rm"], got[r]["rm"])
		near(fmt.Sprintf("running_var rank %d", r), want["rv"], got[r]["rv"])
	}
}

func abs(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}

// TestInteropWithPyTorch: a Go rank (0, the TCPStore's server) and a
// python3-torch rank (1, torch.distributed.ProcessGroupGloo over a
// torch.distributed.TCPStore client of the same store) all-reduce and
// broadcast in one group.
func TestInteropWithPyTorch(t *testing.T) {
	python := py.Python(t)
	script, err := filepath.Abs("testdata/interop.py")
	require.NoError(t, err)
	port := freePort(t)
	out := filepath.Join(t.TempDir(), "py.json")
	store, err := dist.NewTCPStore("127.0.0.1", port, 2, true, 60*time.Second)
	require.NoError(t, err)
	defer store.Close()
	cmd := exec.Command(python, script, strconv.Itoa(port), out)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "OMP_NUM_THREADS=1")
	pyOut := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = pyOut, pyOut
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	finished := false
	defer func() {
		if !finished {
			_ = cmd.Process.Kill()
			<-done
		}
	}()

	g, err := dist.NewGroup(store, 0, 2, dist.GroupOptions{Timeout: 60 * time.Second, Threads: 1})
	require.NoError(t, err, "python: %s", pyOut)
	defer g.Close()
	s := torch.NewScope()
	defer s.Close()
	a := torch.Arange(0, 6, 1, torch.Float32, s)
	require.NoError(t, g.AllReduce(dist.Sum, a), "python: %s", pyOut)
	b := torch.FromSlice([]float64{1.5, -2, 3, 4.25, 5, -6}, []int64{2, 3}, s)
	require.NoError(t, g.Broadcast(0, b), "python: %s", pyOut)
	c := torch.Zeros([]int64{3}, torch.Int64, s)
	require.NoError(t, g.Broadcast(1, c), "python: %s", pyOut)
	d := torch.FromSlice([]int32{2, 8, 4}, []int64{3}, s)
	require.NoError(t, g.AllReduce(dist.Max, d), "python: %s", pyOut)
	require.NoError(t, g.Barrier(), "python: %s", pyOut)
	v, err := store.Get("python/done")
	require.NoError(t, err)
	assert.Equal(t, "yes", string(v))

	select {
	case err := <-done:
		finished = true
		require.NoError(t, err, "python: %s", pyOut)
	case <-time.After(60 * time.Second):
		t.Fatalf("python rank did not finish: %s", pyOut)
	}
	av, _ := a.Float32s()
	assert.Equal(t, []float32{0, 3, 6, 9, 12, 15}, av, "Go's all-reduce")
	cv, _ := c.Int64s()
	assert.Equal(t, []int64{7, -3, 11}, cv, "Go received Python's broadcast")
	dv, _ := torch.ToSlice[int32](d)
	assert.Equal(t, []int32{5, 8, 9}, dv, "Go's max")
	var res struct {
		AllReduce []float32   `json:"allreduce"`
		Broadcast [][]float64 `json:"broadcast"`
		Max       []int32     `json:"max"`
		Torch     string      `json:"torch"`
	}
	raw, err := os.ReadFile(out)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &res))
	assert.Equal(t, []float32{0, 3, 6, 9, 12, 15}, res.AllReduce, "Python's all-reduce")
	assert.Equal(t, [][]float64{{1.5, -2, 3}, {4.25, 5, -6}}, res.Broadcast, "Python received Go's broadcast")
	assert.Equal(t, []int32{5, 8, 9}, res.Max, "Python's max")
	t.Logf("interoperated with PyTorch %s", res.Torch)
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// TestHungRankTimesOut: a rank that stops taking part makes the other's
// collective fail once the group's timeout has passed, not hang.
func TestHungRankTimesOut(t *testing.T) {
	const timeout = 2 * time.Second
	release := make(chan struct{})
	var took time.Duration
	errs := ranks(t, 2, timeout, func(g *dist.Group) error {
		if g.Rank() == 1 {
			<-release // hung: never joins the all-reduce
			return nil
		}
		defer close(release)
		s := torch.NewScope()
		defer s.Close()
		start := time.Now()
		err := g.AllReduce(dist.Sum, torch.Ones([]int64{4}, s))
		took = time.Since(start)
		return err
	})
	require.Error(t, errs[0])
	assert.NoError(t, errs[1])
	assert.GreaterOrEqual(t, took, timeout-100*time.Millisecond)
	assert.Less(t, took, timeout+5*time.Second)
	t.Logf("rank 0 gave up after %.1fs: %v", took.Seconds(), errs[0])
}

// Init's checks: bad variables are refused before anything is started.
func TestEnvCheck(t *testing.T) {
	cases := []struct {
		env  dist.Env
		want string
	}{
		{dist.Env{Rank: 2, WorldSize: 2, MasterAddr: "a", MasterPort: 1}, "RANK=2 outside WORLD_SIZE=2"},
		{dist.Env{Rank: 0, WorldSize: 0, MasterAddr: "a", MasterPort: 1}, "WORLD_SIZE=0"},
		{dist.Env{Rank: 0, WorldSize: 2, MasterAddr: "a", MasterPort: 70000}, "MASTER_PORT=70000"},
		{dist.Env{Rank: 0, WorldSize: 2, MasterPort: 5}, "MASTER_ADDR is empty"},
	}
	for _, c := range cases {
		err := c.env.Check()
		require.Error(t, err)
		assert.Contains(t, err.Error(), c.want)
	}
	t.Setenv("RANK", "1")
	t.Setenv("WORLD_SIZE", "two")
	_, _, err := dist.FromEnv()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `WORLD_SIZE="two"`)
}
