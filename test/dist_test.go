package test

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch/ckpt"
)

var (
	distDataOnce sync.Once
	distData     string
	distDataErr  string
)

// smallBrain prepares the brain data set at 32x32 once for the distributed
// tests.
func smallBrain(t *testing.T) string {
	t.Helper()
	distDataOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jmedseg-dist-data-")
		if err != nil {
			distDataErr = err.Error()
			return
		}
		distData = filepath.Join(dir, "brain")
		if _, se, code := run(t, "data", "prepare", "--out", distData, "--size", "32"); code != 0 {
			distDataErr = se
		}
	})
	require.Empty(t, distDataErr)
	return distData
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tensors(t *testing.T, path string) map[string][]float64 {
	t.Helper()
	ts, _, err := ckpt.ReadTensors(path)
	require.NoError(t, err)
	defer ckpt.Free(ts)
	out := map[string][]float64{}
	for _, n := range ts {
		v, err := n.Tensor.Float64s()
		require.NoError(t, err)
		out[n.Name] = v
	}
	return out
}

// TestDistributedEquivalence: with augmentation off and --sync-bn, two
// processes of --batch 4 end with the weights (and optimizer state) one
// process of --batch 8 ends with, to float32 round-off. SGD: Adam's update
// divides by the gradient's size, so round-off in a gradient that is zero
// in exact arithmetic (a bias before BatchNorm) would become a whole
// learning-rate step. The same global
// batches, the gradients averaged by c10d's Reducer, SyncBatchNorm's
// statistics those of the global batch. --resume of the distributed run
// then continues it as one uninterrupted run of two epochs would.
func TestDistributedEquivalence(t *testing.T) {
	ds := smallBrain(t)
	tmp := t.TempDir()
	common := []string{"train", "--data", ds, "--width", "4", "--epochs", "1", "--limit-batches", "3", "--threads", "1",
		"--optimizer", "sgd", "--lr", "0.01", "--seed", "3", "--sync-bn", "--json", "--workers", "1"}
	one := filepath.Join(tmp, "one")
	_, se, code := run(t, append(common, "--out", one, "--batch", "8")...)
	require.Equal(t, 0, code, se)
	two := filepath.Join(tmp, "two")
	out, se, code := run(t, append(common, "--out", two, "--batch", "4", "--nproc", "2", "--dist-timeout", "60s")...)
	require.Equal(t, 0, code, se)
	assert.Contains(t, out, `"event":"epoch"`, "rank 0 reports progress")
	assert.Equal(t, 1, strings.Count(out, `"headline"`), "rank 0 alone prints the result: %s", out)
	for _, f := range []string{"best.safetensors", "last.safetensors", "report.md"} {
		assert.FileExists(t, filepath.Join(two, f))
	}

	a, b := tensors(t, filepath.Join(one, "last.safetensors")), tensors(t, filepath.Join(two, "last.safetensors"))
	require.Equal(t, len(a), len(b))
	worst, where := 0.0, ""
	for name, va := range a {
		vb, ok := b[name]
		require.True(t, ok, name)
		require.Len(t, vb, len(va), name)
		for i := range va {
			if d := math.Abs(va[i]-vb[i]) / (1 + math.Abs(va[i])); d > worst {
				worst, where = d, fmt.Sprintf("%s[%d] %g vs %g", name, i, va[i], vb[i])
			}
		}
	}
	t.Logf("largest relative difference after an epoch (3 SGD steps): %.2g at %s", worst, where)
	assert.Less(t, worst, 1e-5, where)

	// Validation is sharded and reduced: the same Dice as one process's.
	r1, err := os.ReadFile(filepath.Join(one, "report.json"))
	require.NoError(t, err)
	r2, err := os.ReadFile(filepath.Join(two, "report.json"))
	require.NoError(t, err)
	d1, d2 := valDice(t, r1), valDice(t, r2)
	assert.InDelta(t, d1, d2, 1e-3, "validation Dice, one process against two")

	// --resume continues the distributed run exactly: one more epoch
	// after the first ends where an uninterrupted run of two epochs ends.
	// (One process against two is not compared past the first epoch: a
	// ReLU or max-pool tie that round-off flips moves a gradient
	// discretely, so the runs drift apart by more than round-off; measured
	// 4.5e-5 in the weights after two epochs.)
	_, se, code = run(t, append(common, "--out", two, "--batch", "4", "--nproc", "2", "--resume", "--epochs", "2")...)
	require.Equal(t, 0, code, se)
	straight := filepath.Join(tmp, "straight")
	_, se, code = run(t, append(common, "--out", straight, "--batch", "4", "--nproc", "2", "--epochs", "2")...)
	require.Equal(t, 0, code, se)
	a, b = tensors(t, filepath.Join(straight, "last.safetensors")), tensors(t, filepath.Join(two, "last.safetensors"))
	worst = 0
	for name, va := range a {
		for i := range va {
			worst = math.Max(worst, math.Abs(va[i]-b[name][i])/(1+math.Abs(va[i])))
		}
	}
	t.Logf("resumed against uninterrupted, two epochs on two processes: %.2g", worst)
	assert.Less(t, worst, 1e-6)

	// Another world size is not the same run.
	_, se, code = run(t, append(common, "--out", two, "--batch", "8", "--resume", "--epochs", "3")...)
	assert.NotEqual(t, 0, code)
	assert.Contains(t, se, "trained on 2 processes, this run has 1")
}

func valDice(t *testing.T, report []byte) float64 {
	t.Helper()
	i := strings.Index(string(report), `"val_dice":`)
	require.GreaterOrEqual(t, i, 0, "report.json has val_dice")
	rest := string(report[i+len(`"val_dice":`):])
	end := strings.IndexAny(rest, ",}")
	v, err := strconv.ParseFloat(strings.TrimSpace(rest[:end]), 64)
	require.NoError(t, err)
	return v
}

// worker starts one rank of a torchrun-style job.
func worker(t *testing.T, rank, world, port int, args ...string) (*exec.Cmd, io.Reader, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "RANK="+strconv.Itoa(rank), "WORLD_SIZE="+strconv.Itoa(world), "LOCAL_RANK="+strconv.Itoa(rank),
		"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port))
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	se := &strings.Builder{}
	cmd.Stderr = se
	require.NoError(t, cmd.Start())
	return cmd, stdout, se
}

// TestDistributedFaults: a rank killed in the middle of training makes the
// other exit with an error naming the failed all-reduce, well within
// --dist-timeout; a missing rank, a wrong world size, a port in use and an
// unreachable master are clear errors too.
func TestDistributedFaults(t *testing.T) {
	ds := smallBrain(t)
	tmp := t.TempDir()
	args := []string{"train", "--data", ds, "--out", filepath.Join(tmp, "run"), "--width", "4", "--epochs", "50", "--batch", "2",
		"--threads", "1", "--workers", "1", "--json", "--dist-timeout", "20s"}

	t.Run("killed rank", func(t *testing.T) {
		port := freeTCPPort(t)
		r0, out0, se0 := worker(t, 0, 2, port, args...)
		r1, out1, _ := worker(t, 1, 2, port, args...)
		go io.Copy(io.Discard, out1)
		// Kill rank 1 once rank 0 reports its third step.
		sc := bufio.NewScanner(out0)
		steps := 0
		for sc.Scan() && steps < 3 {
			if strings.Contains(sc.Text(), `"event":"step"`) {
				steps++
			}
		}
		require.Equal(t, 3, steps, "rank 0 trains: %s", se0)
		go io.Copy(io.Discard, out0)
		killed := time.Now()
		require.NoError(t, r1.Process.Kill())
		_ = r1.Wait()
		err := r0.Wait()
		took := time.Since(killed)
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "rank 0 fails")
		assert.Equal(t, 1, ee.ExitCode())
		assert.Less(t, took, 20*time.Second, "within --dist-timeout")
		msg := se0.String()
		assert.Contains(t, msg, "rank 0 of 2")
		assert.Contains(t, msg, "failed")
		t.Logf("rank 0 exited %.1fs after rank 1 was killed: %s", took.Seconds(), strings.TrimSpace(msg))
	})

	t.Run("missing rank", func(t *testing.T) {
		port := freeTCPPort(t)
		_, se, code := runEnv(t, []string{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + strconv.Itoa(port)},
			append(args[:len(args)-1], "2s")...)
		assert.Equal(t, 1, code)
		assert.Contains(t, se, "only 1 of WORLD_SIZE=2 ranks joined")
	})

	t.Run("wrong world size", func(t *testing.T) {
		port := freeTCPPort(t)
		r0, out0, _ := worker(t, 0, 2, port, args...)
		go io.Copy(io.Discard, out0)
		_, se, code := runEnv(t, []string{"RANK=1", "WORLD_SIZE=3", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + strconv.Itoa(port)}, args...)
		assert.Equal(t, 1, code)
		assert.Contains(t, se, "WORLD_SIZE=3 here, but 2 on rank 0")
		err := r0.Wait() // rank 0 hears of the refusal
		assert.Error(t, err)
	})

	t.Run("port in use", func(t *testing.T) {
		l, err := net.Listen("tcp", ":0")
		require.NoError(t, err)
		defer l.Close()
		port := l.Addr().(*net.TCPAddr).Port
		_, se, code := runEnv(t, []string{"RANK=0", "WORLD_SIZE=2", "MASTER_PORT=" + strconv.Itoa(port)}, args...)
		assert.Equal(t, 1, code)
		assert.Contains(t, se, fmt.Sprintf("MASTER_PORT=%d is already in use", port))
	})

	t.Run("unreachable master", func(t *testing.T) {
		port := freeTCPPort(t)
		_, se, code := runEnv(t, []string{"RANK=1", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + strconv.Itoa(port)},
			append(args[:len(args)-1], "2s")...)
		assert.Equal(t, 1, code)
		assert.Contains(t, se, "cannot reach the master")
	})

	t.Run("bad variables", func(t *testing.T) {
		_, se, code := runEnv(t, []string{"RANK=2", "WORLD_SIZE=2"}, args...)
		assert.Equal(t, 1, code)
		assert.Contains(t, se, "RANK=2 outside WORLD_SIZE=2")
		_, se, code = runEnv(t, []string{"RANK=0", "WORLD_SIZE=2"}, append(args, "--nproc", "2")...)
		assert.Equal(t, 1, code)
		assert.Contains(t, se, "not both")
	})
}

// runEnv is run with extra environment variables.
func runEnv(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var so, se strings.Builder
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return so.String(), se.String(), code
}
