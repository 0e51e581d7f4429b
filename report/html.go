package report

import (
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jmedseg/jmedseg/metric"
)

// HTMLFile is the self-contained page Write puts beside MarkdownFile.
const HTMLFile = "report.html"

// maxEmbedded caps one embedded image: a report is meant to open at once,
// and the overlays and curves Write refers to are tens of kilobytes.
const maxEmbedded = 16 << 20

//go:embed template.html
var htmlSource string

var htmlTemplate = template.Must(template.New(HTMLFile).Parse(htmlSource))

// HTML writes r as one self-contained HTML page: the headline, the run's
// facts and configuration, per test split the pooled, per-image-mean and
// surface-distance tables and a table of every image (file, Dice, IoU,
// HD95 and ASSD per foreground class) sortable by clicking a column
// header, the overlays with captions, the curves and the epochs. Images
// (curves as listed by Curves, overlays as in Test.Overlays) are read from
// dir, relative paths against it, and embedded as data: URIs, an SVG curve
// in preference to its PNG twin; CSS and the sorting script are inline,
// so the page loads nothing. An image that cannot be read is shown as a
// note naming the file and the problem. Every text is escaped by
// html/template.
func HTML(w io.Writer, dir string, r Run, curves []string) error {
	return htmlTemplate.Execute(w, newHTMLPage(dir, r, curves))
}

// writeHTML writes HTML to dir/HTMLFile atomically.
func writeHTML(dir string, r Run, curves []string) error {
	p := filepath.Join(dir, HTMLFile)
	return writeAtomic(p, func(w io.Writer) error {
		if err := HTML(w, dir, r, curves); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
		return nil
	})
}

// htmlPage is what the template shows; every string is plain text.
type htmlPage struct {
	Title, Headline string
	Facts           []htmlFact
	Tests           []htmlTest
	Curves          []htmlImage
	Epochs          *htmlTable
	Notes           []string
	Config          string
	Links           []string // sibling files that exist, e.g. report.json
}

type htmlFact struct{ Key, Value string }

// htmlTable is a table; a Sortable one gets the page's click-to-sort.
type htmlTable struct {
	ID       string // the element id, for links and tests
	Caption  string
	Sortable bool
	Head     []htmlHead
	Rows     []htmlRow
}

// htmlHead is a column header; Num columns sort by their cells' Sort.
type htmlHead struct {
	Label, Title string
	Num          bool
}

type htmlRow struct {
	Cells []htmlCell
	Class string // "mean" for a summary row, "best" for the best epoch
}

// htmlCell is one cell: Text is shown; Sort is the number a numeric
// column sorts by, "" for NaN or ±Inf (sorted last either way).
type htmlCell struct {
	Text, Sort, Title string
	Num               bool
}

type htmlTest struct {
	Anchor, Split string
	Figures       []htmlFact // the split's key figures, big
	Tables        []*htmlTable
	PerImage      *htmlTable
	Overlays      []htmlImage
}

// htmlImage is an embedded picture (Src is its whole src attribute), or
// Missing saying why it is not.
type htmlImage struct {
	Src              template.HTMLAttr
	Caption, Missing string
}

func newHTMLPage(dir string, r Run, curves []string) htmlPage {
	p := htmlPage{Title: r.Title, Headline: r.Headline(), Notes: r.Notes}
	if p.Title == "" {
		p.Title = "Training report"
		if r.Model != "" {
			p.Title += ": " + r.Model
		}
	}
	p.Facts = runFacts(r)
	for i, t := range r.Tests {
		split := t.Split
		if split == "" {
			split = "split " + strconv.Itoa(i+1)
		}
		p.Tests = append(p.Tests, htmlTestOf(dir, i, split, t))
	}
	p.Curves = curveImages(dir, curves)
	if len(r.History) > 0 {
		p.Epochs = epochTable(r.History, r.bestIndex())
	}
	if r.Config != nil {
		if js, err := json.MarshalIndent(r.Config, "", "  "); err == nil {
			p.Config = string(js)
		}
	}
	for _, f := range []string{MarkdownFile, JSONFile, PerImageFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			p.Links = append(p.Links, f)
		}
	}
	return p
}

// runFacts are the summary paragraph of the Markdown as a list.
func runFacts(r Run) []htmlFact {
	var f []htmlFact
	add := func(k, v string) {
		if v != "" {
			f = append(f, htmlFact{k, v})
		}
	}
	add("Model", r.Model)
	if r.Params > 0 {
		add("Parameters", fmt.Sprintf("%s (%s)", thousands(r.Params), humanCount(r.Params)))
	}
	add("Data", r.Data)
	add("Device", r.Device)
	if !r.Started.IsZero() {
		add("Started", r.Started.UTC().Format("2006-01-02 15:04 UTC"))
	}
	if r.WallSeconds > 0 {
		add("Wall time", duration(r.WallSeconds))
	}
	if len(r.History) > 0 {
		if e, ok := r.best(); ok {
			add("Best epoch", fmt.Sprintf("%d of %d (validation foreground Dice %s, IoU %s, loss %s)", e.Epoch,
				r.History[len(r.History)-1].Epoch, ratio(metric.Score(e.ValDice)), ratio(metric.Score(e.ValIoU)), num(e.ValLoss, 4)))
		} else {
			add("Epochs", strconv.Itoa(len(r.History)))
		}
	} else if r.BestEpoch > 0 {
		add("Best epoch", strconv.Itoa(r.BestEpoch))
	}
	return f
}

func textCell(s string) htmlCell { return htmlCell{Text: s} }

// score is a numeric cell shown with prec decimals.
func score(s metric.Score, prec int) htmlCell {
	f := float64(s)
	c := htmlCell{Text: num(f, prec), Num: true}
	if finite(f) {
		c.Sort = strconv.FormatFloat(f, 'g', -1, 64)
	}
	return c
}

func count(n int64) htmlCell {
	return htmlCell{Text: thousands(n), Sort: strconv.FormatInt(n, 10), Num: true}
}

func htmlTestOf(dir string, i int, split string, t Test) htmlTest {
	m := t.Metrics
	s := m.Split
	ht := htmlTest{Anchor: "split-" + strconv.Itoa(i+1), Split: split}
	if len(s.PerClass) == 0 {
		return ht
	}
	fg, im := s.Foreground, m.ImageMean
	ht.Figures = []htmlFact{{"pooled foreground Dice", ratio(fg.Dice)}, {"pooled foreground IoU", ratio(fg.IoU)}}
	if im.Foreground.Images > 0 {
		ht.Figures = append(ht.Figures, htmlFact{"per-image mean Dice", ratio(im.Foreground.Dice)},
			htmlFact{"per-image mean IoU", ratio(im.Foreground.IoU)})
	}
	ht.Figures = append(ht.Figures, htmlFact{"pixel accuracy", ratio(s.PixelAccuracy)})
	if n := len(m.PerImage); n > 0 {
		ht.Figures = append(ht.Figures, htmlFact{"images", strconv.Itoa(n)})
	}

	pooled := &htmlTable{Caption: "Pooled over the split: one confusion matrix of all its pixels, so that large masks weigh more.",
		Head: heads("class", "IoU", "Dice", "recall", "precision", "true pixels", "predicted pixels")}
	for _, c := range s.PerClass {
		label := strings.TrimSpace(strconv.Itoa(c.Class) + " " + className(m, c.Class, c.Name))
		if c.Class == 0 {
			label += " (background, not in the foreground mean)"
		}
		pooled.Rows = append(pooled.Rows, htmlRow{Cells: []htmlCell{textCell(label), score(c.IoU, 4), score(c.Dice, 4),
			score(c.Recall, 4), score(c.Precision, 4), count(c.Truth), count(c.Predicted)}})
	}
	all := s.AllClasses
	pooled.Rows = append(pooled.Rows,
		htmlRow{Class: "mean", Cells: []htmlCell{textCell("foreground mean"), score(fg.IoU, 4), score(fg.Dice, 4),
			score(fg.Recall, 4), score(fg.Precision, 4), {}, {}}},
		htmlRow{Cells: []htmlCell{textCell("all-class mean (incl. background)"), score(all.IoU, 4), score(all.Dice, 4),
			score(all.Recall, 4), score(all.Precision, 4), {}, {}}})
	ht.Tables = append(ht.Tables, pooled)

	if len(im.PerClass) > 0 {
		pi := &htmlTable{Caption: "Per-image mean (MONAI's convention): each image scored alone, then the mean over the images " +
			"where the class is in the truth or the prediction; an image where it is only predicted scores 0.",
			Head: heads("class", "Dice", "IoU", "images", "images where it is only predicted")}
		for _, c := range im.PerClass {
			pi.Rows = append(pi.Rows, htmlRow{Cells: []htmlCell{textCell(strings.TrimSpace(strconv.Itoa(c.Class) + " " + className(m, c.Class, c.Name))),
				score(c.Dice, 4), score(c.IoU, 4), count(int64(c.Images)), count(int64(c.PredictedOnly))}})
		}
		pi.Rows = append(pi.Rows, htmlRow{Class: "mean", Cells: []htmlCell{textCell("foreground mean (per image, then over images)"),
			score(im.Foreground.Dice, 4), score(im.Foreground.IoU, 4), count(int64(im.Foreground.Images)), {}}})
		ht.Tables = append(ht.Tables, pi)
	}

	if len(m.Surface) > 0 {
		st := &htmlTable{Caption: "Surface distances in mm, per-image mean (images where both masks are empty left out; one empty " +
			"mask scores the image diagonal); HD is the maximum, ASD the one-way average surface distance.",
			Head: heads("class", "ASSD", "HD95", "HD", "ASD pred→truth", "ASD truth→pred", "images", "images with one empty mask")}
		for _, sm := range m.Surface {
			st.Rows = append(st.Rows, htmlRow{Cells: []htmlCell{textCell(strings.TrimSpace(strconv.Itoa(sm.Class) + " " + className(m, sm.Class, sm.Name))),
				score(sm.ASSD, 2), score(sm.HD95, 2), score(sm.HD, 2), score(sm.ASDPred, 2), score(sm.ASDTruth, 2),
				count(int64(sm.Images)), count(int64(sm.OneEmpty))}})
		}
		ht.Tables = append(ht.Tables, st)
	}
	if len(m.PerImage) > 0 {
		ht.PerImage = perImageTable(m)
		ht.PerImage.ID = ht.Anchor + "-images"
	}
	ht.Overlays = overlayImages(dir, t)
	return ht
}

// heads are column headers, the first a text column, the others numeric.
func heads(labels ...string) []htmlHead {
	h := make([]htmlHead, len(labels))
	for i, l := range labels {
		h[i] = htmlHead{Label: l, Num: i > 0}
	}
	return h
}

// perImageTable is one row per image, in evaluation order (the "#"
// column restores it): id, file and group where any image has one, the
// foreground mean Dice and IoU when there are several foreground
// classes, then per foreground class Dice, IoU, HD95 and ASSD, the
// classes and their order as in PerImageCSV.
func perImageTable(m metric.Report) *htmlTable {
	classes := 0
	hasFile, hasGroup := false, false
	for _, img := range m.PerImage {
		classes = max(classes, len(img.Dice))
		hasFile = hasFile || (img.File != "" && img.File != img.ID)
		hasGroup = hasGroup || img.Group != ""
	}
	fg := foregroundClasses(classes)
	t := &htmlTable{Sortable: true, Caption: "Every image (click a column header to sort; again to reverse; " +
		"undefined scores last). Distances in mm; an image where the class is in neither mask has none."}
	t.Head = []htmlHead{{Label: "#", Num: true, Title: "evaluation order"}, {Label: "image"}}
	if hasFile {
		t.Head = append(t.Head, htmlHead{Label: "file"})
	}
	if hasGroup {
		t.Head = append(t.Head, htmlHead{Label: "group", Title: "e.g. the volume a slice came from"})
	}
	if len(fg) > 1 {
		t.Head = append(t.Head, htmlHead{Label: "foreground Dice", Num: true, Title: "mean over the image's defined foreground classes"},
			htmlHead{Label: "foreground IoU", Num: true, Title: "mean over the image's defined foreground classes"})
	}
	for _, k := range fg {
		prefix := ""
		if len(fg) > 1 {
			prefix = csvClassName(m.Classes, k) + " "
		}
		t.Head = append(t.Head, htmlHead{Label: prefix + "Dice", Num: true}, htmlHead{Label: prefix + "IoU", Num: true})
		if k > 0 {
			t.Head = append(t.Head, htmlHead{Label: prefix + "HD95", Num: true, Title: "95th-percentile Hausdorff distance, mm"},
				htmlHead{Label: prefix + "ASSD", Num: true, Title: "average symmetric surface distance, mm"})
		}
	}
	for i, img := range m.PerImage {
		row := []htmlCell{{Text: strconv.Itoa(i + 1), Sort: strconv.Itoa(i + 1), Num: true}, textCell(img.ID)}
		if hasFile {
			row = append(row, textCell(img.File))
		}
		if hasGroup {
			row = append(row, textCell(img.Group))
		}
		if len(fg) > 1 {
			row = append(row, score(img.ForegroundDice, 4), score(img.ForegroundIoU, 4))
		}
		for _, k := range fg {
			row = append(row, score(at(img.Dice, k), 4), score(at(img.IoU, k), 4))
			if k == 0 {
				continue
			}
			undefined := metric.Score(math.NaN())
			hd, as := score(undefined, 2), score(undefined, 2)
			if k-1 < len(img.Surface) && img.Surface[k-1].Defined() {
				s := img.Surface[k-1]
				hd, as = score(s.HD95, 2), score(s.ASSD, 2)
				if s.Empty != "" {
					why := "the " + s.Empty + " is empty: scored as the image diagonal"
					hd.Title, as.Title = why, why
					hd.Text += "*"
					as.Text += "*"
				}
			}
			row = append(row, hd, as)
		}
		t.Rows = append(t.Rows, htmlRow{Cells: row})
	}
	return t
}

// overlayImages are the split's overlays, best cases first, then the
// worst, then any others, captioned as in the Markdown.
func overlayImages(dir string, t Test) []htmlImage {
	byName := map[string]metric.ImageResult{}
	for _, r := range t.Metrics.PerImage {
		byName[SafeName(r.ID)] = r
	}
	groups := map[string][]htmlImage{}
	for _, p := range t.Overlays {
		kind, caption := overlayCaption(p, byName)
		img := embed(dir, p)
		img.Caption = caption
		groups[kind] = append(groups[kind], img)
	}
	var out []htmlImage
	for _, kind := range []string{Best, Worst, ""} {
		out = append(out, groups[kind]...)
	}
	return out
}

// overlayCaption is "best 1: <id> (Dice 0.9856)" for an overlay named as
// SaveOverlays names them, else the file's base name; kind is Best, Worst
// or "".
func overlayCaption(p string, byName map[string]metric.ImageResult) (kind, caption string) {
	base := strings.TrimSuffix(path.Base(filepath.ToSlash(p)), ".png")
	for _, k := range []string{Best, Worst} {
		if strings.HasPrefix(base, k) {
			kind = k
		}
	}
	if kind == "" {
		return "", base
	}
	caption = kind
	rest := strings.TrimPrefix(strings.TrimPrefix(base, kind), "-")
	if rank, id, ok := strings.Cut(rest, "-"); ok {
		if _, err := strconv.Atoi(rank); err == nil {
			caption = kind + " " + rank
			if r, ok := byName[id]; ok {
				caption += fmt.Sprintf(": %s (Dice %s)", r.ID, ratio(r.ForegroundDice))
			} else {
				caption += ": " + id
			}
		}
	}
	return kind, caption
}

// curveCaptions describe the plots Curves writes.
var curveCaptions = map[string]string{
	"loss": "Training and validation loss per epoch",
	"dice": "Validation foreground mean Dice and IoU per epoch",
}

// curveImages embeds each curve once: the SVG where Curves wrote a PNG
// and an SVG of one name (it stays sharp when zoomed), else the file.
func curveImages(dir string, curves []string) []htmlImage {
	var out []htmlImage
	seen := map[string]int{}
	for _, f := range curves {
		f = filepath.ToSlash(f)
		stem := strings.TrimSuffix(f, path.Ext(f))
		img := embed(dir, f)
		caption := curveCaptions[path.Base(stem)]
		if caption == "" {
			caption = path.Base(stem)
		}
		img.Caption = caption
		if i, ok := seen[stem]; ok {
			// The twin replaces the first when it is an SVG that loaded,
			// or when the first did not load.
			if (strings.EqualFold(path.Ext(f), ".svg") && img.Missing == "") || out[i].Missing != "" {
				out[i] = img
			}
			continue
		}
		seen[stem] = len(out)
		out = append(out, img)
	}
	return out
}

// embedTypes are the image types a page can embed, by extension.
var embedTypes = map[string]string{".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

// embed reads the image at p (relative paths against dir) as a data: URI;
// on failure Missing says why.
func embed(dir, p string) htmlImage {
	full := filepath.FromSlash(p)
	if !filepath.IsAbs(full) {
		full = filepath.Join(dir, full)
	}
	mime, ok := embedTypes[strings.ToLower(filepath.Ext(full))]
	if !ok {
		return htmlImage{Missing: fmt.Sprintf("%s: not a PNG, JPEG or SVG file name", p)}
	}
	b, err := readCapped(full, maxEmbedded)
	if err != nil {
		return htmlImage{Missing: fmt.Sprintf("%s: %v", p, err)}
	}
	if mime != "image/svg+xml" {
		if got := http.DetectContentType(b); got != mime {
			return htmlImage{Missing: fmt.Sprintf("%s: holds %s, not %s", p, got, mime)}
		}
	} else if !strings.Contains(string(b[:min(len(b), 4096)]), "<svg") {
		return htmlImage{Missing: fmt.Sprintf("%s: not an SVG document", p)}
	}
	// The attribute is built here from a fixed type and base64 (no quote,
	// no ampersand), so it is safe to hand html/template as it is, which
	// would otherwise reject a data: URI or write each "+" as "&#43;".
	return htmlImage{Src: template.HTMLAttr(`src="data:` + mime + ";base64," + base64.StdEncoding.EncodeToString(b) + `"`)}
}

// readCapped reads a file of at most limit bytes.
func readCapped(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errors.New("no such file")
		}
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %d MiB, not embedded", limit>>20)
	}
	return b, nil
}

// epochTable lists every epoch, the best marked.
func epochTable(h History, best int) *htmlTable {
	t := &htmlTable{ID: "epochs", Sortable: true, Head: []htmlHead{{Label: "epoch", Num: true}, {Label: "train loss", Num: true},
		{Label: "val loss", Num: true}, {Label: "val Dice", Num: true}, {Label: "val IoU", Num: true},
		{Label: "LR", Num: true}, {Label: "s/epoch", Num: true}, {Label: "images/s", Num: true}}}
	for i, e := range h {
		lr := score(metric.Score(e.LR), 0)
		if finite(e.LR) {
			lr.Text = strconv.FormatFloat(e.LR, 'g', 3, 64)
		}
		row := htmlRow{Cells: []htmlCell{{Text: strconv.Itoa(e.Epoch), Sort: strconv.Itoa(e.Epoch), Num: true},
			score(metric.Score(e.TrainLoss), 4), score(metric.Score(e.ValLoss), 4), score(metric.Score(e.ValDice), 4),
			score(metric.Score(e.ValIoU), 4), lr, score(metric.Score(e.Seconds), 1), score(metric.Score(e.ImagesPerSecond), 1)}}
		if i == best {
			row.Class = "best"
			row.Cells[0].Text += " (best)"
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}
