package serve_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jmedseg serve as a process: SIGTERM lets the request under way finish
// (it waits in a 1 s batch window when the signal comes), then the process
// exits 0 and takes no more connections.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	ckpt := modelFile(t, dir, "tiny.safetensors", tiny)
	exe, err := os.Executable()
	require.NoError(t, err)
	args := []string{"serve", "--checkpoint", ckpt, "--addr", "127.0.0.1:0", "--json", "--batch-window", "1s", "--threads", "1"}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "JMEDSEG_SERVE_CHILD="+strings.Join(args, "\n"))
	var stderr syncBuffer // written by exec's copying goroutine, read here
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	// The first thing on stdout is the address, as JSON.
	var started struct {
		URL    string   `json:"url"`
		Models []string `json:"models"`
	}
	require.NoError(t, json.NewDecoder(bufio.NewReader(stdout)).Decode(&started), "stderr: %s", stderr.String())
	assert.Equal(t, []string{"tiny"}, started.Models)
	require.True(t, strings.HasPrefix(started.URL, "http://127.0.0.1:"), started.URL)

	body := encodePNG(t, greyImage(40, 36, 1))
	in := filepath.Join(dir, "in.png")
	require.NoError(t, os.WriteFile(in, body, 0o644))
	out := filepath.Join(dir, "want.png")
	runCLI(t, "predict", "--checkpoint", ckpt, "--input", in, "--output", out)
	want, err := os.ReadFile(out)
	require.NoError(t, err)

	type answer struct {
		code int
		body []byte
		err  error
	}
	done := make(chan answer, 1)
	sent := time.Now()
	go func() {
		resp, err := http.Post(started.URL+"v1/models/tiny/predict", "image/png", bytes.NewReader(body))
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, err = b.ReadFrom(resp.Body)
		done <- answer{resp.StatusCode, b.Bytes(), err}
	}()
	time.Sleep(300 * time.Millisecond) // the request is in its batch window
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	a := <-done
	require.NoError(t, a.err)
	assert.Equal(t, 200, a.code, "%s", a.body)
	assert.Equal(t, want, a.body, "the drained request got its mask")
	assert.GreaterOrEqual(t, time.Since(sent), 900*time.Millisecond, "answered after its batch window, during the drain")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		require.NoError(t, err, "jmedseg serve exits 0 after SIGTERM; stderr: %s", stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("jmedseg serve did not exit 20 s after SIGTERM; stderr: %s", stderr.String())
	}
	assert.Contains(t, stderr.String(), "stopping: answering the requests under way")
	_, err = http.Get(started.URL + "healthz")
	assert.Error(t, err, "no connections after the drain")
}

// syncBuffer is a bytes.Buffer safe for one writer and readers at once (a
// child's stderr, read while the child runs).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
