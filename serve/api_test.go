package serve_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/serve"
	"github.com/jmedseg/jmedseg/torch"
)

func TestModelsAndHealth(t *testing.T) {
	dir := t.TempDir()
	a := modelFile(t, dir, "a.safetensors", tiny)
	run := filepath.Join(dir, "brainrun")
	require.NoError(t, os.MkdirAll(run, 0o755))
	b := modelFile(t, run, "best.safetensors", modelSpec{name: "unet", in: 3, classes: []string{"bg", "fg"}, width: 4, size: 16, seed: 2})
	_, url := newServer(t, serve.Config{Checkpoints: []string{a, "other=" + b}, Device: torch.CPU})
	code, body := get(t, url+"/healthz")
	require.Equal(t, 200, code)
	var h serve.Health
	require.NoError(t, json.Unmarshal(body, &h))
	assert.Equal(t, serve.Health{Status: "ok", Models: []string{"a", "other"}}, h)

	code, body = get(t, url+"/v1/models")
	require.Equal(t, 200, code)
	var ms []serve.ModelInfo
	require.NoError(t, json.Unmarshal(body, &ms))
	require.Len(t, ms, 2)
	assert.Equal(t, "a", ms[0].Name)
	assert.Equal(t, "simple", ms[0].Model)
	assert.Equal(t, []string{"background", "brain", "lesion"}, ms[0].Classes)
	assert.Equal(t, [2]int{32, 32}, ms[0].Size)
	assert.Equal(t, a, ms[0].Checkpoint)
	assert.Positive(t, ms[0].Params)
	assert.Equal(t, "other", ms[1].Name)
	assert.Equal(t, int64(3), ms[1].InChannels)
	assert.Less(t, ms[0].Params, ms[1].Params, "3 input channels have more weights")

	// The name of a run's checkpoint is the run's.
	name, _, err := serve.ModelName(b)
	require.NoError(t, err)
	assert.Equal(t, "brainrun", name)
	_, err = serve.New(serve.Config{Checkpoints: []string{a, a}, Device: torch.CPU})
	assert.ErrorContains(t, err, `both named "a": name one as NAME=PATH`)
	_, err = serve.New(serve.Config{Checkpoints: []string{filepath.Join(dir, "missing.safetensors")}, Device: torch.CPU})
	assert.ErrorContains(t, err, "missing.safetensors")
	_, err = serve.New(serve.Config{Checkpoints: []string{a}, Device: torch.CPU, MaxBatch: 99})
	assert.ErrorContains(t, err, "--max-batch 99")
}

// Every bad request is answered with its status and a JSON reason.
func TestBadRequests(t *testing.T) {
	dir := t.TempDir()
	ckpt := modelFile(t, dir, "tiny.safetensors", tiny)
	_, url := newServer(t, serve.Config{Checkpoints: []string{ckpt}, Device: torch.CPU, MaxBody: 64 << 10, MaxPixels: 100 * 100})
	good := encodePNG(t, greyImage(40, 36, 1))
	bigPNG := encodePNG(t, image.NewGray(image.Rect(0, 0, 120, 100)))
	trunc := good[:len(good)/2]
	for _, c := range []struct {
		name, path, ct string
		body           []byte
		code           int
		says           string
	}{
		{"unknown model", "/v1/models/nope/predict", "", good, 404, `no model "nope": this server has tiny`},
		{"unknown format", "/v1/models/tiny/predict?format=tiff", "", good, 400, "format=tiff: want png, npy, nifti or json"},
		{"nifti of a 2D image", "/v1/models/tiny/predict?format=nifti", "", good, 400, "format=nifti takes a NIfTI input"},
		{"png of a volume", "/v1/models/tiny/predict?format=png", "", niftiVolume(t, 8, 8, 2, false), 400, "a NIfTI input's mask is a NIfTI label volume"},
		{"empty body", "/v1/models/tiny/predict", "", nil, 400, "empty body"},
		{"text", "/v1/models/tiny/predict", "text/plain", []byte("hello, model"), 400, "is not an image jmedseg reads"},
		{"truncated PNG", "/v1/models/tiny/predict", "image/png", trunc, 400, "corrupt image"},
		{"truncated JPEG", "/v1/models/tiny/predict", "image/jpeg", encodeJPEG(t, greyImage(40, 36, 1))[:300], 400, "not a readable JPEG: unexpected EOF"},
		{"JPEG header only", "/v1/models/tiny/predict", "image/jpeg", []byte{0xff, 0xd8, 0xff, 0xe0}, 400, "not a readable JPEG"},
		{"bad NPY", "/v1/models/tiny/predict", "", []byte("\x93NUMPY\x01\x00\x10\x00{'descr': '<f4',}\n"), 400, "(read as NPY)"},
		{"bad NIfTI", "/v1/models/tiny/predict", "application/x-nifti", []byte("not a nifti at all"), 400, "(read as NIFTI)"},
		{"4-D NIfTI", "/v1/models/tiny/predict", "", niftiFrames(t), 400, "a 4-D volume of 2 frames"},
		{"body too large", "/v1/models/tiny/predict", "image/png", make([]byte, 65<<10), 413, "over the server's limit of 65536 bytes (--max-body)"},
		{"too many pixels", "/v1/models/tiny/predict", "", bigPNG, 413, "120x100, 12000 pixels: over the server's limit of 10000 (--max-pixels)"},
		{"overlay of a volume", "/v1/models/tiny/overlay", "", niftiVolume(t, 8, 8, 2, true), 400, "overlay takes a 2D image"},
		{"bad alpha", "/v1/models/tiny/overlay?alpha=2", "", good, 400, "alpha=2: want a number from 0 to 1"},
		{"no route", "/v1/nothing", "", good, 404, "no API route POST /v1/nothing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body, hdr := post(t, url+c.path, c.ct, c.body)
			assert.Equal(t, c.code, code, "%s", body)
			assert.Equal(t, "application/json", hdr.Get("Content-Type"))
			var e struct{ Error string }
			require.NoError(t, json.Unmarshal(body, &e), "%s", body)
			assert.Contains(t, e.Error, c.says)
			assert.NotContains(t, e.Error, os.TempDir()+"/jmedseg-serve-", "the reason names the body, not the server's file")
		})
	}
	code, b := get(t, url+"/v1/models/tiny/predict")
	assert.Equal(t, http.StatusMethodNotAllowed, code)
	assert.Contains(t, string(b), "takes POST, not GET")
	// After all that, it still predicts.
	code, body, _ := post(t, url+"/v1/models/tiny/predict", "", good)
	assert.Equal(t, 200, code, "%s", body)
}

// niftiFrames is a 4-D NIfTI of two frames.
func niftiFrames(t *testing.T) []byte {
	b := niftiVolume(t, 6, 6, 2, false)
	b = append(b, b[352:]...)
	b[40], b[48] = 4, 2 // dim[0] = 4, dim[4] = 2
	return b
}

func TestOverlay(t *testing.T) {
	dir := t.TempDir()
	ckpt := modelFile(t, dir, "tiny.safetensors", tiny)
	_, url := newServer(t, serve.Config{Checkpoints: []string{ckpt}, Device: torch.CPU})
	img := greyImage(40, 36, 1)
	body := encodePNG(t, img)
	code, b, hdr := post(t, url+"/v1/models/tiny/overlay?alpha=1", "", body)
	require.Equal(t, 200, code, "%s", b)
	assert.Equal(t, "image/png", hdr.Get("Content-Type"))
	ov, err := png.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	code, mb, _ := post(t, url+"/v1/models/tiny/predict", "", body)
	require.Equal(t, 200, code)
	mimg, err := png.Decode(bytes.NewReader(mb))
	require.NoError(t, err)
	mask := mimg.(*image.Gray)
	require.Equal(t, img.Bounds(), ov.Bounds())
	// At opacity 1, a class's pixels take its colour, background keeps the image.
	for i, l := range mask.Pix {
		x, y := i%40, i/40
		r, g, bl, _ := ov.At(x, y).RGBA()
		if l == 0 {
			v := uint32(img.Pix[i]) * 0x101
			assert.Equal(t, [3]uint32{v, v, v}, [3]uint32{r, g, bl}, "background pixel %d,%d", x, y)
		} else {
			k := serve.Palette[l]
			assert.Equal(t, [3]uint32{uint32(k.R) * 0x101, uint32(k.G) * 0x101, uint32(k.B) * 0x101}, [3]uint32{r, g, bl}, "class %d pixel %d,%d", l, x, y)
		}
	}
}

func TestToken(t *testing.T) {
	dir := t.TempDir()
	ckpt := modelFile(t, dir, "tiny.safetensors", tiny)
	const token = "s3cret-token-0123456789"
	_, url := newServer(t, serve.Config{Checkpoints: []string{ckpt}, Device: torch.CPU, Token: token})
	body := encodePNG(t, greyImage(32, 32, 1))
	for _, c := range []struct {
		path   string
		auth   string
		method string
		code   int
	}{
		{"/healthz", "", "GET", 200},
		{"/", "", "GET", 200},
		{"/static/app.js", "", "GET", 200},
		{"/v1/models", "", "GET", 401},
		{"/v1/models", "Bearer wrong", "GET", 401},
		{"/v1/models", "Bearer " + token, "GET", 200},
		{"/metrics", "", "GET", 401},
		{"/metrics", "Bearer " + token, "GET", 200},
		{"/v1/models/tiny/predict", "", "POST", 401},
		{"/v1/models/tiny/predict", token, "POST", 401},
		{"/v1/models/tiny/predict", "Bearer " + token, "POST", 200},
	} {
		var code int
		if c.method == "GET" {
			code, _ = get(t, url+c.path, "Authorization", c.auth)
		} else {
			code, _, _ = post(t, url+c.path, "", body, "Authorization", c.auth)
		}
		assert.Equal(t, c.code, code, "%s %s with %q", c.method, c.path, c.auth)
	}
}

func TestMetrics(t *testing.T) {
	dir := t.TempDir()
	ckpt := modelFile(t, dir, "tiny.safetensors", tiny)
	_, url := newServer(t, serve.Config{Checkpoints: []string{ckpt}, Device: torch.CPU, BatchWindow: 50 * time.Millisecond})
	body := encodePNG(t, greyImage(32, 32, 1))
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); post(t, url+"/v1/models/tiny/predict", "", body) }()
	}
	wg.Wait()
	post(t, url+"/v1/models/none/predict", "", body)
	code, b := get(t, url+"/metrics")
	require.Equal(t, 200, code)
	text := string(b)
	for _, want := range []string{
		`jmedseg_http_requests_total{code="200",model="tiny",route="POST /v1/models/{name}/predict"} 4`,
		`jmedseg_http_requests_total{code="404",model="",route="POST /v1/models/{name}/predict"} 1`,
		`jmedseg_http_request_duration_seconds_count{model="tiny",route="POST /v1/models/{name}/predict"} 4`,
		`jmedseg_batch_size_count{model="tiny"}`,
		`jmedseg_batch_size_sum{model="tiny"} 4`,
		`jmedseg_queue_length{model="tiny"} 0`,
		`jmedseg_requests_admitted 0`,
		`jmedseg_jit_builds{model="tiny"} 0`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		assert.Contains(t, text, want)
	}
}

// 503 when the queue is full, 504 past the timeout, 408 for a body that
// does not arrive in time.
func TestQueueAndTimeouts(t *testing.T) {
	dir := t.TempDir()
	ckpt := modelFile(t, dir, "tiny.safetensors", tiny)
	body := encodePNG(t, greyImage(32, 32, 1))
	t.Run("queue full", func(t *testing.T) {
		_, url := newServer(t, serve.Config{Checkpoints: []string{ckpt}, Device: torch.CPU, Queue: 1})
		// A request whose body is still coming holds the only slot.
		pr, pw := io.Pipe()
		defer pw.Close() // a failed check must not leave it holding the slot: the server's shutdown waits for it
		done := make(chan int, 1)
		go func() {
			resp, err := http.Post(url+"/v1/models/tiny/predict", "image/png", pr)
			if err != nil {
				done <- -1
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		_, err := pw.Write(body[:10])
		require.NoError(t, err)
		// The first bytes written say the client sent the request, not that
		// the server has admitted it: a request sent after it can win the
		// slot (seen once in CI, on a loaded machine: the held request got
		// the 503 and every later one a 200). The server's gauge says when
		// the slot is taken; until then no other request is sent.
		require.Eventually(t, func() bool { return admitted(url) == 1 }, 30*time.Second, 2*time.Millisecond, "the held request is admitted")
		code, b, hdr := post(t, url+"/v1/models/tiny/predict", "", body)
		assert.Equal(t, 503, code, "%s", b)
		assert.Contains(t, string(b), "server busy")
		assert.Equal(t, "1", hdr.Get("Retry-After"))
		assert.Equal(t, 1.0, admitted(url), "a refused request holds no slot")
		go func() { // it blocks if the held request was answered already (a failed check)
			_, _ = pw.Write(body[10:])
			pw.Close()
		}()
		select {
		case code := <-done:
			assert.Equal(t, 200, code)
		case <-time.After(time.Minute):
			require.Fail(t, "the held request was not answered within a minute of its body's end")
		}
		code, _, _ = post(t, url+"/v1/models/tiny/predict", "", body)
		assert.Equal(t, 200, code, "the slot is free again")
		assert.Equal(t, 0.0, admitted(url))
	})
	t.Run("timeout in the queue", func(t *testing.T) {
		// The batch window (the longest there is) outlasts the request's
		// time: the answer must come before the window ends, which an
		// answer given by the worker cannot (it waits out the window).
		const window = time.Second
		_, url := newServer(t, serve.Config{Checkpoints: []string{ckpt}, Device: torch.CPU, BatchWindow: window, Timeout: 50 * time.Millisecond})
		start := time.Now()
		code, b, _ := post(t, url+"/v1/models/tiny/predict", "", body)
		assert.Equal(t, 504, code)
		assert.Contains(t, string(b), "--timeout")
		assert.Less(t, time.Since(start), window, "answered at the timeout, not after the window")
	})
	t.Run("slow body", func(t *testing.T) {
		_, url := newServer(t, serve.Config{Checkpoints: []string{ckpt}, Device: torch.CPU, Timeout: 200 * time.Millisecond})
		pr, pw := io.Pipe()
		defer pw.Close()
		go pw.Write(body[:10]) // and nothing more
		resp, err := http.Post(url+"/v1/models/tiny/predict", "image/png", pr)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, 408, resp.StatusCode, "%s", b)
	})
}

// admitted is the server's jmedseg_requests_admitted gauge (-1 when it
// cannot be read); safe off the test's goroutine.
func admitted(url string) float64 {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := cutMetric(l, "jmedseg_requests_admitted "); ok {
			return v
		}
	}
	return -1
}

func TestRuns(t *testing.T) {
	dir := t.TempDir()
	ckpt := modelFile(t, dir, "tiny.safetensors", tiny)
	runs := filepath.Join(dir, "runs")
	for _, f := range []struct{ path, text string }{
		{"brain/report.md", "# unet on brain\n\n![loss](loss.png)\n"},
		{"brain/report.json", `{"title":"unet on brain","headline":"Dice 0.98","model":"unet"}`},
		{"brain/loss.png", "png bytes"},
		{"brain/best.safetensors", "weights"},
		{"other/report.json", `{"title":"other"}`},
		{"notarun/readme.txt", "x"},
	} {
		p := filepath.Join(runs, f.path)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(f.text), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret.md"), []byte("secret"), 0o644))
	require.NoError(t, os.Symlink(filepath.Join(dir, "secret.md"), filepath.Join(runs, "brain", "link.md")))
	_, url := newServer(t, serve.Config{Checkpoints: []string{ckpt}, Device: torch.CPU, RunsDir: runs})
	code, b := get(t, url+"/v1/runs")
	require.Equal(t, 200, code)
	var rs []serve.Run
	require.NoError(t, json.Unmarshal(b, &rs))
	assert.Equal(t, []serve.Run{
		{Name: "brain", Title: "unet on brain", Headline: "Dice 0.98", Model: "unet", Report: true, Checkpoint: true},
		{Name: "other", Title: "other"},
	}, rs)
	code, b = get(t, url+"/v1/runs/brain/files/report.md")
	assert.Equal(t, 200, code)
	assert.Contains(t, string(b), "# unet on brain")
	code, b = get(t, url+"/v1/runs/brain/files/loss.png")
	assert.Equal(t, 200, code)
	assert.Equal(t, "png bytes", string(b))
	for _, p := range []string{
		"/v1/runs/brain/files/best.safetensors", // not a report file
		"/v1/runs/brain/files/link.md",          // a link out of the runs directory
		"/v1/runs/brain/files/..%2F..%2Fsecret.md",
		"/v1/runs/brain/files/missing.png",
		"/v1/runs/..%2F/files/secret.md",
	} {
		code, b = get(t, url+p)
		assert.Contains(t, []int{400, 403, 404}, code, "%s: %s", p, b)
		assert.NotContains(t, string(b), "secret\n")
		assert.False(t, strings.HasPrefix(string(b), "secret"), p)
	}
	// A server without --runs lists none.
	_, url = newServer(t, serve.Config{Checkpoints: []string{ckpt}, Device: torch.CPU})
	code, _ = get(t, url+"/v1/runs")
	assert.Equal(t, 404, code)
}

func TestPage(t *testing.T) {
	dir := t.TempDir()
	ckpt := modelFile(t, dir, "tiny.safetensors", tiny)
	_, url := newServer(t, serve.Config{Checkpoints: []string{ckpt}, Device: torch.CPU})
	resp, err := http.Get(url + "/")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(b), `<script src="/static/app.js"`)
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")
	for _, p := range []string{"/static/app.js", "/static/style.css"} {
		code, b := get(t, url+p)
		assert.Equal(t, 200, code, p)
		assert.NotEmpty(t, b)
	}
	code, _ := get(t, url+"/static/")
	assert.Equal(t, 404, code, "no directory listing")
}
