package serve_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/browsertest"
	"github.com/jmedseg/jmedseg/serve"
	"github.com/jmedseg/jmedseg/torch"
)

// The page in headless Chromium: it lists the model, takes an uploaded
// image, shows the overlay and a legend whose pixel counts (counted by the
// page from the mask it shows) equal the API's; then it shows a run's
// report. Screenshots: serve-page.png and serve-runs.png in browsertest.ArtifactDir.
// JMEDSEG_PAGE_CHECKPOINT and JMEDSEG_PAGE_IMAGE show a real model and
// image instead of the test's own (the README's screenshot).
func TestPageInChromium(t *testing.T) {
	bctx, exe := browsertest.Start(t, 1200, 720)
	dir := t.TempDir()
	ckpt := os.Getenv("JMEDSEG_PAGE_CHECKPOINT")
	if ckpt == "" {
		ckpt = modelFile(t, dir, "tiny.safetensors", tiny)
	}
	imgPath := os.Getenv("JMEDSEG_PAGE_IMAGE")
	if imgPath == "" {
		imgPath = filepath.Join(dir, "slice.png")
		require.NoError(t, os.WriteFile(imgPath, encodePNG(t, greyImage(64, 56, 4)), 0o644))
	}
	body, err := os.ReadFile(imgPath)
	require.NoError(t, err)
	runs := filepath.Join(dir, "runs")
	require.NoError(t, os.MkdirAll(filepath.Join(runs, "demo"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(runs, "demo", "report.md"), []byte(
		"# unet on demo\n\n**Dice 0.98**\n\n| class | Dice |\n|:--|--:|\n| brain | 0.98 |\n\n![mask](mask.png)\n\n<details><summary>Configuration</summary>\n\n```json\n{\"x\": 1}\n```\n\n</details>\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(runs, "demo", "mask.png"), encodePNG(t, greyImage(32, 32, 2)), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(runs, "demo", "report.json"), []byte(`{"title":"unet on demo","headline":"Dice 0.98"}`), 0o644))

	s, url := newServer(t, serve.Config{Checkpoints: []string{ckpt}, Device: torch.CPU, RunsDir: runs})
	name := s.Names()[0]
	code, b, _ := post(t, url+"/v1/models/"+name+"/predict?format=json", "", body)
	require.Equal(t, 200, code, "%s", b)
	var api serve.Prediction
	require.NoError(t, json.Unmarshal(b, &api))
	want := make([]int64, len(api.Classes))
	for i, c := range api.Classes {
		want[i] = c.Pixels
	}

	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(url+"/")), "starting %s", exe)
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	status := func() string {
		v, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById('status').textContent`))
		return v
	}
	require.NoError(t, chromedp.Do(ctx,
		chromedp.WaitReady(chromedp.CSS(`body[data-state="ready"]`)),
		chromedp.SetUploadFiles(chromedp.CSS(`#file`), []string{imgPath}),
		chromedp.WaitReady(chromedp.CSS(`#view[data-ready="1"]`)),
	), "page status: %q", status())
	eval := func(expr string, v any) {
		t.Helper()
		str, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(`+expr+`)`))
		require.NoError(t, err, expr)
		require.NoError(t, json.Unmarshal([]byte(str), v), expr)
	}
	var counts []int64
	var shown []string
	var state, download string
	var width int
	eval(`[...document.querySelectorAll('#legend td.pixels')].map(td => Number(td.dataset.pixels))`, &counts)
	eval(`[...document.querySelectorAll('#legend td.pixels')].map(td => td.textContent)`, &shown)
	eval(`document.body.dataset.state`, &state)
	eval(`document.getElementById('download').href`, &download)
	eval(`document.getElementById('view').width`, &width)
	page, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	assert.Equal(t, "done", state, status())
	assert.Equal(t, want, counts, "the page's pixel counts equal the API's")
	require.Len(t, shown, len(want))
	for i, n := range want {
		assert.Equal(t, formatInt(n), shown[i], "class %d as shown", i)
	}
	assert.Equal(t, api.Width, width, "the view has the image's width")
	assert.True(t, strings.HasPrefix(download, "blob:"), "the mask downloads from %q", download)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#tab-runs`)),
		chromedp.WaitReady(chromedp.CSS(`#runs button[data-run="demo"]`)),
		chromedp.Click(chromedp.CSS(`#runs button[data-run="demo"]`)),
		chromedp.WaitReady(chromedp.CSS(`#report table td.al-right`)),
		chromedp.WaitReady(chromedp.CSS(`#report img[src^="blob:"]`)),
	))
	reportTitle, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#report h1`)))
	require.NoError(t, err)
	assert.Equal(t, "unet on demo", reportTitle)
	runsShot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	out := browsertest.ArtifactDir(t)
	for name, shot := range map[string][]byte{"serve-page.png": page, "serve-runs.png": runsShot} {
		p := filepath.Join(out, name)
		require.NoError(t, os.WriteFile(p, shot, 0o644))
		t.Logf("screenshot: %s", p)
	}
	t.Logf("pixels per class: page %v, API %v", counts, want)
}

// formatInt writes n (0 or more) with thousands separators, as the page
// does.
func formatInt(n int64) string {
	d := strconv.FormatInt(n, 10)
	var s []byte
	for i := range len(d) {
		if i > 0 && (len(d)-i)%3 == 0 {
			s = append(s, ',')
		}
		s = append(s, d[i])
	}
	return string(s)
}
