package serve_test

import (
	"bytes"
	"image"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/serve"
	"github.com/jmedseg/jmedseg/torch"
)

func TestJITBatches(t *testing.T) {
	for _, tc := range []struct {
		max  int
		want []int
	}{
		{1, []int{1}}, {2, []int{1, 2}}, {3, []int{1, 2, 3}}, {5, []int{1, 2, 3, 5}},
		{8, []int{1, 2, 4, 8}}, {12, []int{1, 3, 6, 12}}, {16, []int{1, 4, 8, 16}},
	} {
		got := serve.JITBatches(tc.max)
		assert.Equal(t, tc.want, got, "max batch %d", tc.max)
		assert.LessOrEqual(t, len(got), infer.MaxJITShapes)
	}
}

// metricValue is the value of the /metrics line that starts with prefix
// (-1 when there is none).
func metricValue(t testing.TB, url, prefix string) float64 {
	t.Helper()
	code, b := get(t, url+"/metrics")
	require.Equal(t, 200, code)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := cutMetric(l, prefix); ok {
			return v
		}
	}
	return -1
}

// burst posts bodies all at once to url and returns the answers in order.
func burst(t testing.TB, url string, bodies [][]byte) [][]byte {
	t.Helper()
	out := make([][]byte, len(bodies))
	codes := make([]int, len(bodies))
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(url, "image/png", bytes.NewReader(b))
			if err != nil {
				codes[i] = -1
				return
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			codes[i], out[i] = resp.StatusCode, buf.Bytes()
		}()
	}
	wg.Wait()
	for i, c := range codes {
		require.Equal(t, 200, c, "request %d: %s", i, out[i])
	}
	return out
}

// serve with the jit engine builds its batch sizes (1, 2, 4 for max batch
// 4) before New returns and none after, whatever the mix of requests:
// bursts of 1 to 7 distinct images, batched and padded, each answered
// with the mask the eager engine gives it, and a volume.
func TestJITEngineServes(t *testing.T) {
	dir := t.TempDir()
	ckpt := modelFile(t, dir, "tiny.safetensors", tiny)
	cfg := serve.Config{Checkpoints: []string{ckpt}, Device: torch.CPU, MaxBatch: 4, BatchWindow: 20 * time.Millisecond}
	_, eagerURL := newServer(t, cfg)
	cfg.Load = infer.LoadOptions{Engine: infer.EngineJIT}
	_, jitURL := newServer(t, cfg)
	const builds = `jmedseg_jit_builds{model="tiny"} `
	assert.Equal(t, 0.0, metricValue(t, eagerURL, builds))
	assert.Equal(t, 3.0, metricValue(t, jitURL, builds), "built at start")

	var bodies [][]byte
	want := map[int][]byte{}
	for i := range 7 {
		var img image.Image = greyImage(24+8*(i%3), 32, uint64(10+i))
		bodies = append(bodies, encodePNG(t, img))
		code, b, _ := post(t, eagerURL+"/v1/models/tiny/predict", "", bodies[i])
		require.Equal(t, 200, code)
		want[i] = b
	}
	require.NotEqual(t, want[0], want[1], "distinct images, distinct masks")
	for _, n := range []int{1, 3, 2, 4, 7, 5, 1} {
		got := burst(t, jitURL+"/v1/models/tiny/predict", bodies[:n])
		for i := range got {
			assert.Equal(t, want[i], got[i], "burst of %d, image %d", n, i)
		}
	}
	// A volume's 19 slices: pieces of 4, the last padded.
	vol := niftiVolume(t, 20, 18, 19, false)
	code, wantVol, _ := post(t, eagerURL+"/v1/models/tiny/predict", "", vol)
	require.Equal(t, 200, code, "%s", wantVol)
	code, gotVol, _ := post(t, jitURL+"/v1/models/tiny/predict", "", vol)
	require.Equal(t, 200, code, "%s", gotVol)
	assert.Equal(t, wantVol, gotVol, "the volume's label file")
	assert.Equal(t, 3.0, metricValue(t, jitURL, builds), "no build after start")
	assert.Positive(t, metricValue(t, jitURL, `jmedseg_batch_size_count{model="tiny"} `))
}

// The latency of serve's engines on a unet (width 8, 128², max batch 8,
// window 5 ms) over bursts of mixed request counts, and the jit builds
// with and without padding. A measurement, not a test: it runs with
// JMEDSEG_JIT_MEASURE=1 and logs its figures (JMEDSEG_JIT_ROUNDS rounds
// of 15 bursts; JMEDSEG_LOAD_WIDTH, _SIZE and _CHECKPOINT as TestLoad).
func TestJITEngineLatency(t *testing.T) {
	if os.Getenv("JMEDSEG_JIT_MEASURE") == "" {
		t.Skip("a measurement: set JMEDSEG_JIT_MEASURE=1")
	}
	size, width := envInt("JMEDSEG_LOAD_SIZE", 128), envInt("JMEDSEG_LOAD_WIDTH", 8)
	ckpt := os.Getenv("JMEDSEG_LOAD_CHECKPOINT") // a real model instead (its input size as JMEDSEG_LOAD_SIZE)
	if ckpt == "" {
		ckpt = modelFile(t, t.TempDir(), "m.safetensors", modelSpec{name: "unet", in: 1, classes: []string{"bg", "fg"},
			width: int64(width), size: size, seed: 3})
	}
	counts := []int{1, 3, 8, 2, 5, 1, 7, 4, 6, 1, 2, 8, 3, 1, 5}
	rounds := envInt("JMEDSEG_JIT_ROUNDS", 2)
	var bodies [][]byte
	for i := range 8 {
		bodies = append(bodies, encodePNG(t, greyImage(size, size, uint64(i))))
	}
	// Without padding, the engine's 4-shape cache against batch sizes 1 to 8.
	p, err := infer.NewPredictorWith(ckpt, torch.CPU, infer.LoadOptions{Engine: infer.EngineJIT})
	require.NoError(t, err)
	imgs := make([]image.Image, 8)
	for i := range imgs {
		imgs[i] = greyImage(size, size, uint64(i))
	}
	for range rounds {
		for _, n := range counts {
			_, err := p.PredictBatch(imgs[:n])
			require.NoError(t, err)
		}
	}
	t.Logf("unpadded jit, %d batches of sizes %v: %d builds", rounds*len(counts), counts, p.JITBuilds())
	p.Close()

	for _, mode := range []struct {
		name string
		load infer.LoadOptions
	}{
		{"eager", infer.LoadOptions{}},
		{"eager contiguous", infer.LoadOptions{Layout: infer.LayoutContiguous}},
		{"jit 1,2,4,8", infer.LoadOptions{Engine: infer.EngineJIT}},
		{"jit 1,8", infer.LoadOptions{Engine: infer.EngineJIT, JITBatches: []int{1, 8}}},
	} {
		start := time.Now()
		s, url := newServer(t, serve.Config{Checkpoints: []string{"m=" + ckpt}, Device: torch.CPU, MaxBatch: 8, BatchWindow: 5 * time.Millisecond, Load: mode.load})
		startup := time.Since(start)
		burst(t, url+"/v1/models/m/predict", bodies[:1]) // the eager layout's first timing
		var lat []time.Duration
		var mu sync.Mutex
		t0 := time.Now()
		for range rounds {
			for _, n := range counts {
				var wg sync.WaitGroup
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						r0 := time.Now()
						code, b, _ := post(t, url+"/v1/models/m/predict", "", bodies[i])
						if code != 200 {
							t.Errorf("%d: %s", code, b)
						}
						mu.Lock()
						lat = append(lat, time.Since(r0))
						mu.Unlock()
					}()
				}
				wg.Wait()
			}
		}
		total := time.Since(t0)
		slices.Sort(lat)
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		t.Logf("%-16s start %5.1fs, %d requests in %5.1fs: mean %6.1f ms, p50 %6.1f ms, p90 %6.1f ms per request; jit builds %v, %s",
			mode.name, startup.Seconds(), len(lat), total.Seconds(), ms(sum/time.Duration(len(lat))), ms(lat[len(lat)/2]), ms(lat[len(lat)*9/10]),
			metricValue(t, url, `jmedseg_jit_builds{model="m"} `), batchLine(string(must(get(t, url+"/metrics")))))
		_ = s
	}
}

func must(_ int, b []byte) []byte { return b }
