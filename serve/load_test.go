package serve_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/serve"
	"github.com/jmedseg/jmedseg/torch"
)

// loadResult is one load run's figures.
type loadResult struct {
	requests   int
	seconds    float64
	throughput float64 // requests per second
	p50, p99   time.Duration
	meanBatch  float64
}

// loadRun sends clients×perClient predict requests, clients at a time, and
// measures throughput and latency. Every answer must be 200.
func loadRun(t testing.TB, url string, body []byte, clients, perClient int) loadResult {
	t.Helper()
	lat := make([]time.Duration, clients*perClient)
	errs := make(chan error, clients)
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perClient {
				t0 := time.Now()
				resp, err := client.Post(url, "image/png", bytes.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- &statusErr{resp.StatusCode, string(b)}
					return
				}
				lat[c*perClient+i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	d := time.Since(start).Seconds()
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return loadResult{requests: len(lat), seconds: d, throughput: float64(len(lat)) / d, p50: q(0.50), p99: q(0.99)}
}

type statusErr struct {
	code int
	body string
}

func (e *statusErr) Error() string { return strconv.Itoa(e.code) + ": " + e.body }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// The load test: N clients send M requests each, with and without dynamic
// batching; it logs throughput and p50/p99 latency (no assertions on
// timing). Small by default; JMEDSEG_LOAD_CLIENTS, _REQUESTS, _WIDTH and
// _SIZE scale it, JMEDSEG_LOAD_CHECKPOINT serves a real model instead
// (e.g. runs/brain/best.safetensors) with JMEDSEG_LOAD_IMAGE as the body.
func TestLoad(t *testing.T) {
	clients, per := envInt("JMEDSEG_LOAD_CLIENTS", 8), envInt("JMEDSEG_LOAD_REQUESTS", 8)
	dir := t.TempDir()
	ckpt := os.Getenv("JMEDSEG_LOAD_CHECKPOINT")
	size := envInt("JMEDSEG_LOAD_SIZE", 64)
	if ckpt == "" {
		ckpt = modelFile(t, dir, "load.safetensors", modelSpec{name: "unet", in: 1, classes: []string{"bg", "fg"},
			width: int64(envInt("JMEDSEG_LOAD_WIDTH", 8)), size: size, seed: 3})
	}
	body := encodePNG(t, greyImage(size, size, 9))
	if p := os.Getenv("JMEDSEG_LOAD_IMAGE"); p != "" {
		var err error
		body, err = os.ReadFile(p)
		require.NoError(t, err)
	}
	for _, mode := range []struct {
		name     string
		maxBatch int
		window   time.Duration
	}{
		{"no batching (max batch 1)", 1, 0},
		{"batching (max batch 8, window 5 ms)", 8, 5 * time.Millisecond},
	} {
		s, url := newServer(t, serve.Config{Checkpoints: []string{"m=" + ckpt}, Device: torch.CPU, MaxBatch: mode.maxBatch,
			BatchWindow: mode.window, Queue: 2 * clients})
		url += "/v1/models/m/predict"
		loadRun(t, url, body, 2, 2) // warm up
		r := loadRun(t, url, body, clients, per)
		assert.Equal(t, clients*per, r.requests)
		_, metrics := get(t, url[:len(url)-len("/v1/models/m/predict")]+"/metrics")
		t.Logf("%-38s %d clients x %d requests: %6.1f requests/s, p50 %6.1f ms, p99 %6.1f ms, %s",
			mode.name, clients, per, r.throughput, ms(r.p50), ms(r.p99), batchLine(string(metrics)))
		_ = s
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// batchLine is the mean batch size /metrics reports (warm-up included).
func batchLine(metrics string) string {
	var sum, count float64
	for _, l := range bytes.Split([]byte(metrics), []byte("\n")) {
		s := string(l)
		if v, ok := cutMetric(s, `jmedseg_batch_size_sum{model="m"} `); ok {
			sum = v
		}
		if v, ok := cutMetric(s, `jmedseg_batch_size_count{model="m"} `); ok {
			count = v
		}
	}
	if count == 0 {
		return "no batches"
	}
	return "mean batch " + strconv.FormatFloat(sum/count, 'f', 2, 64)
}

func cutMetric(line, prefix string) (float64, bool) {
	if len(line) <= len(prefix) || line[:len(prefix)] != prefix {
		return 0, false
	}
	v, err := strconv.ParseFloat(line[len(prefix):], 64)
	return v, err == nil
}
