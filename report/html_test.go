package report

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/browsertest"

	"github.com/jmedseg/jmedseg/metric"
)

// readHTML writes r with Write into dir and returns report.html.
func readHTML(t *testing.T, dir string, r Run) string {
	t.Helper()
	require.NoError(t, Write(dir, r))
	b, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	require.NoError(t, err)
	noTemps(t, dir)
	return string(b)
}

// tableBody is the tbody of the table with the given id.
func tableBody(t *testing.T, page, id string) string {
	t.Helper()
	start := strings.Index(page, `<table id="`+id+`"`)
	require.GreaterOrEqual(t, start, 0, "table %s", id)
	rest := page[start:]
	end := strings.Index(rest, "</table>")
	require.Greater(t, end, 0)
	rest = rest[:end]
	b := strings.Index(rest, "<tbody>")
	require.Greater(t, b, 0)
	return rest[b:]
}

var attrURL = regexp.MustCompile(`(?i)\s(src|href|action|srcset|poster)\s*=\s*"([^"]*)"`)

func TestHTMLStructure(t *testing.T) {
	dir := t.TempDir()
	r := sampleRun(t, dir)
	page := readHTML(t, dir, r)

	assert.True(t, strings.HasPrefix(page, "<!DOCTYPE html>"))
	assert.True(t, strings.HasSuffix(strings.TrimSpace(page), "</html>"), "the defined templates leave nothing after </html>")
	for _, want := range []string{
		"<title>Liver segmentation</title>",
		`<p class="headline">` + template.HTMLEscapeString(r.Headline()) + "</p>",
		"<dt>Parameters</dt><dd>31,042,434 (31.0 M)</dd>",
		"<dt>Best epoch</dt><dd>9 of 10",
		`<section id="split-1">`, "<h2>Test: test</h2>", "<h2>Test: test_xsubject</h2>",
		"<b>0.5467</b><span>per-image mean Dice</span>",
		"<td>3 cyst</td>", "<td>0 background (background, not in the foreground mean)</td>",
		"<caption>Surface distances in mm",
		"<figcaption>best 1: perfect (Dice 1.0000)</figcaption>",
		"<figcaption>worst 1: tumour/missed (Dice 0.0000)</figcaption>",
		"<figcaption>Training and validation loss per epoch</figcaption>",
		`<tr class="best"><td class="num" data-v="9">9 (best)</td>`,
		"<li>resumed once at epoch 4</li>",
		`&#34;epochs&#34;: 10`,
		`<a href="report.json">report.json</a>`, `<a href="per_image.csv">per_image.csv</a>`,
	} {
		assert.Contains(t, page, want)
	}

	// One row per image in each split's per-image table, in evaluation
	// order; the image with no defined Dice has an empty sort key.
	for i, test := range r.Tests {
		body := tableBody(t, page, fmt.Sprintf("split-%d-images", i+1))
		assert.Equal(t, len(test.Metrics.PerImage), strings.Count(body, "<tr"), "split %s", test.Split)
		var ids []string
		for _, m := range regexp.MustCompile(`<tr><td class="num" data-v="\d+">\d+</td><td>([^<]*)</td>`).FindAllStringSubmatch(body, -1) {
			ids = append(ids, m[1])
		}
		assert.Equal(t, []string{"perfect", "shifted", "tumour/missed", "empty"}, ids)
	}
	body := tableBody(t, page, "split-1-images")
	// Three foreground classes: foreground Dice and IoU, then per class
	// Dice, IoU, HD95, ASSD.
	assert.Contains(t, page, "<button type=\"button\">liver HD95</button>")
	assert.Contains(t, page, "<button type=\"button\">foreground Dice</button>")
	empty := body[strings.Index(body, "<td>empty</td>"):]
	empty = empty[:strings.Index(empty, "</tr>")]
	assert.Equal(t, 2+3*4, strings.Count(empty, `data-v=""`), "every score of the empty image is undefined: %s", empty)
	assert.Contains(t, body, `title="the prediction is empty: scored as the image diagonal">9.05*</td>`)

	// Every image is embedded: the two overlays as PNG, the two curves as
	// SVG (not also as PNG), byte for byte.
	srcs := regexp.MustCompile(`<img src="data:([a-z+/]+);base64,([A-Za-z0-9+/=]+)"`).FindAllStringSubmatch(page, -1)
	var types []string
	for _, s := range srcs {
		types = append(types, s[1])
	}
	assert.Equal(t, []string{"image/png", "image/png", "image/svg+xml", "image/svg+xml"}, types)
	want, err := os.ReadFile(filepath.Join(dir, r.Tests[0].Overlays[0]))
	require.NoError(t, err)
	got, err := base64.StdEncoding.DecodeString(srcs[0][2])
	require.NoError(t, err)
	assert.Equal(t, want, got, "the first overlay embedded as it is on disk")
	want, err = os.ReadFile(filepath.Join(dir, LossSVG))
	require.NoError(t, err)
	got, err = base64.StdEncoding.DecodeString(srcs[2][2])
	require.NoError(t, err)
	assert.Equal(t, want, got)

	// Nothing to fetch: every URL is a data: URI, a fragment or a
	// sibling file; no CSS url() or @import.
	checkNoNetwork(t, page)

	// Written elsewhere, the overlays are not there: a note names them.
	other := readHTML(t, filepath.Join(dir, "elsewhere"), r)
	assert.Contains(t, other, `<div class="missing">Image not embedded: overlays/test/best-1-perfect.png: no such file</div>`)
	assert.Equal(t, 2, strings.Count(other, `<img src="data:image/svg+xml`), "curves are written beside the report")
}

// checkNoNetwork fails when page refers to anything but itself, data:
// URIs and the report's sibling files.
func checkNoNetwork(t *testing.T, page string) {
	t.Helper()
	for _, m := range attrURL.FindAllStringSubmatch(page, -1) {
		u := m[2]
		ok := strings.HasPrefix(u, "data:") || strings.HasPrefix(u, "#") || u == MarkdownFile || u == JSONFile || u == PerImageFile
		assert.True(t, ok, "%s=%q refers outside the page", m[1], u)
	}
	for _, bad := range []string{"<link", "<iframe", "<object", "<embed", "<base", "fetch(", "XMLHttpRequest", "import("} {
		assert.NotContains(t, page, bad)
	}
	style := page[strings.Index(page, "<style>"):strings.Index(page, "</style>")]
	for _, bad := range []string{"url(", "@import", "http:", "https:"} {
		assert.NotContains(t, style, bad)
	}
	assert.Equal(t, 1, strings.Count(page, "<script"), "only the page's own sorter")
}

// A hostile name anywhere (image ID, file, split, class, title, notes,
// configuration, overlay path) is text on the page, never markup.
func TestHTMLEscaping(t *testing.T) {
	const evil = `<script>alert("x")</script>`
	e := metric.NewEvaluator(2, []string{"background", `<b onmouseover="x">brain</b>`}, -1)
	m := square(8, 8, image.Rect(1, 1, 5, 5), 1)
	require.NoError(t, e.AddImage(metric.Image{ID: evil, File: `a&b"<img src=x onerror=alert(1)>.png`, Group: "</td></tr><tr><td>pwned"},
		m, m, 8, 8, [2]float64{1, 1}))
	dir := t.TempDir()
	r := Run{Title: "</title><script>alert(1)</script>", Model: "<i>m</i>", Data: "javascript:alert(1)",
		Notes:  []string{`<iframe src="https://evil.example/">`},
		Config: map[string]string{"x": "</pre><script>alert(2)</script>"},
		Tests: []Test{{Split: `<img src=x onerror=alert(3)>`, Metrics: e.Report(),
			Overlays: []string{`overlays/"><script>alert(4)</script>.png`, `https://evil.example/x.png`}}}}
	page := readHTML(t, dir, r)
	checkNoNetwork(t, page)
	for _, bad := range []string{"<script>alert", "<img src=x", "<iframe", "<b onmouseover", "<i>m</i>", "<td>pwned"} {
		assert.NotContains(t, page, bad)
	}
	for _, want := range []string{
		"<td>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</td>",
		"<td>a&amp;b&#34;&lt;img src=x onerror=alert(1)&gt;.png</td>",
		"<td>&lt;/td&gt;&lt;/tr&gt;&lt;tr&gt;&lt;td&gt;pwned</td>",
		"<h2>Test: &lt;img src=x onerror=alert(3)&gt;</h2>",
		"<title>&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;</title>",
		"<li>&lt;iframe src=&#34;https://evil.example/&#34;&gt;</li>",
		"Image not embedded: overlays/&#34;&gt;&lt;script&gt;alert(4)&lt;/script&gt;.png: no such file",
	} {
		assert.Contains(t, page, want)
	}
	// The "https:" of the hostile note and overlay is text, so the page
	// has it only escaped; checkNoNetwork saw no URL attribute with it.
	body := tableBody(t, page, "split-1-images")
	assert.Equal(t, 1, strings.Count(body, "<tr"))
}

func TestHTMLEmbed(t *testing.T) {
	dir := t.TempDir()
	var pngBytes bytes.Buffer
	require.NoError(t, png.Encode(&pngBytes, image.NewGray(image.Rect(0, 0, 2, 2))))
	files := map[string][]byte{
		"a.png":    pngBytes.Bytes(),
		"fake.png": []byte("GIF89a not a png at all"),
		"c.svg":    []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>`),
		"d.svg":    []byte("plain text"),
		"e.txt":    []byte("x"),
	}
	for n, b := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), b, 0o644))
	}
	cases := []struct {
		path, mime, missing string
	}{
		{"a.png", "image/png", ""},
		{filepath.Join(dir, "a.png"), "image/png", ""}, // absolute paths as they are
		{"fake.png", "", "fake.png: holds image/gif, not image/png"},
		{"c.svg", "image/svg+xml", ""},
		{"d.svg", "", "d.svg: not an SVG document"},
		{"e.txt", "", "e.txt: not a PNG, JPEG or SVG file name"},
		{"gone.png", "", "gone.png: no such file"},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.path), func(t *testing.T) {
			img := embed(dir, c.path)
			assert.Equal(t, c.missing, img.Missing)
			if c.mime == "" {
				assert.Empty(t, img.Src)
				return
			}
			prefix := `src="data:` + c.mime + ";base64,"
			src := string(img.Src)
			require.True(t, strings.HasPrefix(src, prefix) && strings.HasSuffix(src, `"`), "%.40s", src)
			got, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(src, prefix), `"`))
			require.NoError(t, err)
			assert.Equal(t, files[filepath.Base(c.path)], got)
		})
	}
}

// A run without tests or epochs still gives a page.
func TestHTMLEmptyRun(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, HTML(&b, t.TempDir(), Run{}, nil))
	s := b.String()
	assert.Contains(t, s, "<title>Training report</title>")
	assert.Contains(t, s, "run: no test results")
	assert.NotContains(t, s, "<section")
	checkNoNetwork(t, s)
}

// chromiumRun is a run for the browser: 9 images of 32×32 whose Dice
// falls as the prediction moves off the truth, one with neither mask (no
// Dice: sorted last), overlays of the two best and worst, 12 epochs.
func chromiumRun(t *testing.T, dir string) Run {
	t.Helper()
	const w, h = 32, 32
	e := metric.NewEvaluator(2, []string{"background", "brain"}, -1)
	samples := map[string]Sample{}
	grey := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			grey.SetGray(x, y, color.Gray{Y: uint8(40 + 5*x + 2*y)})
		}
	}
	// The shifts are out of order, so that the evaluation order is not
	// the sorted one.
	for i, shift := range []int{3, 0, 7, 1, -1, 5, 2, 9} {
		truth := square(w, h, image.Rect(8, 8, 24, 24), 1)
		pred := square(w, h, image.Rect(8+shift, 8, 24+shift, 24), 1)
		if shift < 0 {
			pred = make([]int64, w*h)
			truth = make([]int64, w*h)
		}
		id := fmt.Sprintf("case%02d_z%03d", i, 40+i)
		require.NoError(t, e.AddImage(metric.Image{ID: id, File: "images/" + id + ".png", Group: "case"}, pred, truth, h, w, [2]float64{1, 1}))
		samples[id] = Sample{Image: grey, Truth: truth, Pred: pred, W: w, H: h}
	}
	rep := e.Report()
	overlays, err := SaveOverlays(dir, "test", rep, 2, func(id string) (Sample, error) { return samples[id], nil })
	require.NoError(t, err)
	var hist History
	for i := 1; i <= 12; i++ {
		f := float64(i)
		hist = append(hist, Epoch{Epoch: i, TrainLoss: 0.9 / f, ValLoss: 1 / f, ValDice: 0.95 - 0.6/f, ValIoU: 0.9 - 0.6/f,
			LR: 1e-3 * (1 - f/13), Seconds: 3.2, ImagesPerSecond: 40})
	}
	return Run{Title: "unet on brain (browser test)", Model: "unet", Params: 1_234_567, Data: "datasets/brain", Device: "cpu",
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), WallSeconds: 42, History: hist, BestEpoch: 12,
		Config: map[string]any{"epochs": 12, "model": "unet"},
		Tests:  []Test{{Split: "test", Metrics: rep, Overlays: overlays}}}
}

// sortedIDs is the order the page's sorter must give: by score, ties
// (and the images without one, last) in evaluation order.
func sortedIDs(images []metric.ImageResult, score func(metric.ImageResult) float64, descending bool) []string {
	idx := make([]int, len(images))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		x, y := score(images[idx[a]]), score(images[idx[b]])
		fx, fy := finite(x), finite(y)
		if fx != fy {
			return fx
		}
		if !fx || x == y {
			return false
		}
		return (x < y) != descending
	})
	out := make([]string, len(idx))
	for i, k := range idx {
		out[i] = images[k].ID
	}
	return out
}

// The page in headless Chromium: it loads with no request, every image
// decodes, the per-image table has a row per image, and clicking the Dice
// header sorts ascending, again descending, undefined Dice last both
// times; the HD95 header sorts by distance. The full-page screenshot is
// report-page.png in $JMEDSEG_ARTIFACTS (else bin/test-artifacts).
// JMEDSEG_REPORT_RUN=DIR renders that run's report.json with its curves
// and overlays instead (the committed testdata/report-page.png).
func TestHTMLInChromium(t *testing.T) {
	bctx, exe := browsertest.Start(t, 1100, 800)
	dir := t.TempDir()
	file := filepath.Join(dir, HTMLFile)
	var r Run
	if run := os.Getenv("JMEDSEG_REPORT_RUN"); run != "" {
		b, err := os.ReadFile(filepath.Join(run, JSONFile))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &r))
		var curves []string
		for _, c := range []string{LossPNG, LossSVG, DicePNG, DiceSVG} {
			if _, err := os.Stat(filepath.Join(run, c)); err == nil {
				curves = append(curves, c)
			}
		}
		require.NoError(t, writeAtomic(file, func(w io.Writer) error { return HTML(w, run, r, curves) }))
	} else {
		r = chromiumRun(t, dir)
		require.NoError(t, Write(dir, r))
	}
	require.NotEmpty(t, r.Tests)
	images := r.Tests[0].Metrics.PerImage
	require.NotEmpty(t, images)

	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate("file://"+file)), "starting %s", exe)
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS(`body[data-ready="1"]`))))
	eval := func(expr string, v any) {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(`+expr+`)`))
		require.NoError(t, err, expr)
		require.NoError(t, json.Unmarshal([]byte(s), v), expr)
	}
	const table = `#split-1-images`
	ids := func() []string {
		var v []string
		// The image column is the second.
		eval(`[...document.querySelectorAll('`+table+` tbody tr')].map(r => r.cells[1].textContent)`, &v)
		return v
	}
	col := func(label string) int {
		var i int
		eval(`[...document.querySelectorAll('`+table+` thead th')].findIndex(th => th.textContent === `+jsString(label)+`)`, &i)
		require.GreaterOrEqual(t, i, 0, "column %q", label)
		return i
	}
	click := func(label string) {
		t.Helper()
		sel := fmt.Sprintf(`%s thead th:nth-child(%d) button`, table, col(label)+1)
		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))), sel)
	}
	ariaSort := func(label string) string {
		var s string
		eval(fmt.Sprintf(`document.querySelector('%s thead th:nth-child(%d)').getAttribute('aria-sort') || ''`, table, col(label)+1), &s)
		return s
	}

	var resources, broken, external int
	eval(`performance.getEntriesByType('resource').length`, &resources)
	eval(`[...document.images].filter(i => !i.complete || i.naturalWidth === 0).length`, &broken)
	eval(`[...document.querySelectorAll('[src],[href]')].filter(e => /^(https?:|\/\/)/.test(e.getAttribute('src') || e.getAttribute('href'))).length`, &external)
	assert.Zero(t, resources, "the page fetches nothing")
	assert.Zero(t, broken, "every embedded image decodes")
	assert.Zero(t, external)

	original := ids()
	var want []string
	for _, img := range images {
		want = append(want, img.ID)
	}
	assert.Equal(t, want, original, "one row per image, in evaluation order")

	classes := 0
	for _, img := range images {
		classes = max(classes, len(img.Dice))
	}
	dice, hd := "Dice", "HD95"
	fgDice := func(img metric.ImageResult) float64 { return float64(img.ForegroundDice) }
	hd95 := func(img metric.ImageResult) float64 {
		if len(img.Surface) == 0 || !img.Surface[0].Defined() {
			return math.NaN()
		}
		return float64(img.Surface[0].HD95)
	}
	if classes > 2 {
		dice, hd = "foreground Dice", csvClassName(r.Tests[0].Metrics.Classes, 1)+" HD95"
	}

	click(dice)
	asc := ids()
	assert.Equal(t, sortedIDs(images, fgDice, false), asc, "Dice ascending, undefined last")
	assert.NotEqual(t, original, asc, "the order changed")
	assert.Equal(t, "ascending", ariaSort(dice))
	click(dice)
	assert.Equal(t, sortedIDs(images, fgDice, true), ids(), "Dice descending, undefined still last")
	assert.Equal(t, "descending", ariaSort(dice))
	desc := ids()
	click(hd)
	assert.Equal(t, sortedIDs(images, hd95, false), ids(), "HD95 ascending")
	assert.Empty(t, ariaSort(dice), "one sorted column at a time")
	click(dice)
	click(dice)
	assert.Equal(t, desc, ids(), "sorting is stable")
	click("#")
	assert.Equal(t, original, ids(), "# restores the evaluation order")
	click(dice)
	click(dice) // leave the screenshot sorted best first

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	p := filepath.Join(browsertest.ArtifactDir(t), "report-page.png")
	require.NoError(t, os.WriteFile(p, shot, 0o644))
	t.Logf("screenshot: %s (%d bytes); Dice ascending: %v", p, len(shot), asc)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
