package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jmedseg/jmedseg/metric"
)

// Run is everything known about a training run, as Write reports it.
type Run struct {
	Title  string
	Model  string
	Params int64
	// Config is the run's configuration, written to JSON as it marshals.
	Config  any
	Data    string
	Device  string
	Started time.Time
	// WallSeconds is the whole run's wall-clock time.
	WallSeconds float64
	History     History
	// BestEpoch is the Epoch number (not the index) of the kept
	// checkpoint; 0 when unknown.
	BestEpoch int
	Tests     []Test
	Notes     []string
}

// Test is one evaluated split.
type Test struct {
	Split   string
	Metrics metric.Report
	// Overlays are PNG paths relative to the report directory, as
	// SaveOverlays returns them; a file name starting "best" or "worst"
	// is captioned as such.
	Overlays []string
}

// testJSON and runJSON give the JSON field names; runJSON also makes
// WallSeconds NaN-safe and leaves out a zero start time.
type testJSON struct {
	Split    string        `json:"split"`
	Metrics  metric.Report `json:"metrics"`
	Overlays []string      `json:"overlays,omitempty"`
}

type runJSON struct {
	Title       string       `json:"title,omitempty"`
	Headline    string       `json:"headline,omitempty"`
	Model       string       `json:"model,omitempty"`
	Params      int64        `json:"params"`
	Config      any          `json:"config,omitempty"`
	Data        string       `json:"data,omitempty"`
	Device      string       `json:"device,omitempty"`
	Started     *time.Time   `json:"started,omitempty"`
	WallSeconds metric.Score `json:"wall_seconds"`
	History     History      `json:"history"`
	BestEpoch   int          `json:"best_epoch"`
	Tests       []Test       `json:"tests"`
	Notes       []string     `json:"notes,omitempty"`
}

// MarshalJSON writes the test with snake_case names.
func (t Test) MarshalJSON() ([]byte, error) { return json.Marshal(testJSON(t)) }

// UnmarshalJSON reads what MarshalJSON writes.
func (t *Test) UnmarshalJSON(b []byte) error {
	var j testJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*t = Test(j)
	return nil
}

// MarshalJSON writes the run with snake_case names, its Headline, NaN as
// null, and no "started" when Started is zero.
func (r Run) MarshalJSON() ([]byte, error) {
	j := runJSON{Title: r.Title, Headline: r.Headline(), Model: r.Model, Params: r.Params, Config: r.Config,
		Data: r.Data, Device: r.Device, WallSeconds: metric.Score(r.WallSeconds), History: r.History,
		BestEpoch: r.BestEpoch, Tests: r.Tests, Notes: r.Notes}
	if !r.Started.IsZero() {
		j.Started = &r.Started
	}
	if j.History == nil {
		j.History = History{}
	}
	if j.Tests == nil {
		j.Tests = []Test{}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes; Config comes back as
// generic JSON values (maps, slices, float64s).
func (r *Run) UnmarshalJSON(b []byte) error {
	var j runJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Run{Title: j.Title, Model: j.Model, Params: j.Params, Config: j.Config, Data: j.Data,
		Device: j.Device, WallSeconds: float64(j.WallSeconds), History: j.History,
		BestEpoch: j.BestEpoch, Tests: j.Tests, Notes: j.Notes}
	if j.Started != nil {
		r.Started = *j.Started
	}
	return nil
}

// Report file names written by Write.
const (
	JSONFile     = "report.json"
	MarkdownFile = "report.md"
)

// Write writes the run's report into dir (created if missing): JSONFile,
// the whole Run indented (per-image results included), PerImageFile when
// there are tests (see PerImageCSV), the curves of Curves when History has
// epochs, and MarkdownFile, which shows them: a summary paragraph, per test
// split a table of per-class IoU, Dice, recall and precision pooled over
// the split (background as its own row) with the foreground mean (the
// headline) and the all-class mean, a table of per-image mean Dice and IoU,
// a table of surface distances (per-image means), the overlays as a grid
// of best and worst cases, then the curves, the notes and the
// configuration, and HTMLFile, the same as one self-contained page (see
// HTML). Every file is written atomically.
func Write(dir string, r Run) error {
	if err := mkdirAll(dir); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("report: encoding %s: %w", JSONFile, err)
	}
	var curves []string
	if len(r.History) > 0 {
		if curves, err = Curves(dir, r.History); err != nil {
			return err
		}
	}
	if err := writeAtomic(filepath.Join(dir, JSONFile), func(w io.Writer) error {
		_, err := w.Write(append(js, '\n'))
		return err
	}); err != nil {
		return err
	}
	if len(r.Tests) > 0 {
		if err := writePerImageCSV(filepath.Join(dir, PerImageFile), r.Tests); err != nil {
			return err
		}
	}
	md := Markdown(r, curves)
	if err := writeAtomic(filepath.Join(dir, MarkdownFile), func(w io.Writer) error {
		_, err := io.WriteString(w, md)
		return err
	}); err != nil {
		return err
	}
	return writeHTML(dir, r, curves)
}

// Headline is the run's result in one line for a terminal, e.g.
// "unet: test foreground Dice 0.9512 pooled (IoU 0.9071), 0.9300 per-image
// mean; test_xsubject 0.8123 pooled, 0.8010 per-image mean": the first
// split in full, the others by foreground Dice, each pooled over the
// split's pixels and as the mean over images (left out when no image
// defines it). Without tests it gives the best validation Dice.
func (r Run) Headline() string {
	name := r.Model
	if name == "" {
		name = r.Title
	}
	if name == "" {
		name = "run"
	}
	var b strings.Builder
	b.WriteString(name + ": ")
	for i, t := range r.Tests {
		fg := t.Metrics.Split.Foreground
		split := t.Split
		if split == "" {
			split = "split " + strconv.Itoa(i+1)
		}
		if i == 0 {
			fmt.Fprintf(&b, "%s foreground Dice %s pooled (IoU %s)", split, ratio(fg.Dice), ratio(fg.IoU))
		} else {
			fmt.Fprintf(&b, "; %s %s pooled", split, ratio(fg.Dice))
		}
		if im := t.Metrics.ImageMean.Foreground; im.Images > 0 {
			fmt.Fprintf(&b, ", %s per-image mean", ratio(im.Dice))
		}
	}
	if len(r.Tests) == 0 {
		if e, ok := r.best(); ok && finite(e.ValDice) {
			fmt.Fprintf(&b, "best validation foreground Dice %s at epoch %d", ratio(metric.Score(e.ValDice)), e.Epoch)
		} else {
			b.WriteString("no test results")
		}
	}
	return b.String()
}

// best is the epoch numbered BestEpoch, else (BestEpoch 0) the one with
// the best validation Dice.
func (r Run) best() (Epoch, bool) {
	if i := r.bestIndex(); i >= 0 {
		return r.History[i], true
	}
	return Epoch{}, false
}

func (r Run) bestIndex() int {
	if r.BestEpoch == 0 {
		return r.History.Best()
	}
	for i, e := range r.History {
		if e.Epoch == r.BestEpoch {
			return i
		}
	}
	return -1
}

// ratio formats a score in [0,1] with 4 decimals, NaN as "–".
func ratio(s metric.Score) string { return num(float64(s), 4) }

// mm formats a distance in millimetres with 2 decimals, NaN as "–".
func mm(s metric.Score) string { return num(float64(s), 2) }

func num(f float64, prec int) string {
	if !finite(f) {
		return "–"
	}
	return strconv.FormatFloat(f, 'f', prec, 64)
}

// thousands writes n with comma separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// humanCount writes n as 31.0 M, 512.3 k, or n itself below 1000.
func humanCount(n int64) string {
	switch f := float64(n); {
	case math.Abs(f) >= 1e9:
		return fmt.Sprintf("%.1f G", f/1e9)
	case math.Abs(f) >= 1e6:
		return fmt.Sprintf("%.1f M", f/1e6)
	case math.Abs(f) >= 1e3:
		return fmt.Sprintf("%.1f k", f/1e3)
	}
	return strconv.FormatInt(n, 10)
}

// duration writes seconds as "1 h 02 min 03 s", "4 min 05 s" or "12.3 s".
func duration(sec float64) string {
	if !finite(sec) || sec < 0 {
		return "–"
	}
	if sec < 60 {
		return fmt.Sprintf("%.1f s", sec)
	}
	t := int64(math.Round(sec))
	h, m, s := t/3600, t/60%60, t%60
	if h > 0 {
		return fmt.Sprintf("%d h %02d min %02d s", h, m, s)
	}
	return fmt.Sprintf("%d min %02d s", m, s)
}

// cell escapes text for a markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// Markdown is the text of MarkdownFile for r, with the curve images
// (file names relative to the report) embedded; an SVG that follows the
// PNG of the same name, as Curves lists them, is linked next to it.
func Markdown(r Run, curves []string) string {
	var b strings.Builder
	title := r.Title
	if title == "" {
		title = "Training report"
		if r.Model != "" {
			title += ": " + r.Model
		}
	}
	fmt.Fprintf(&b, "# %s\n\n", title)
	fmt.Fprintf(&b, "**%s**\n\n", r.Headline())

	// Summary paragraph.
	var parts []string
	if r.Model != "" {
		s := "Model **" + r.Model + "**"
		if r.Params > 0 {
			s += fmt.Sprintf(" with %s parameters (%s)", thousands(r.Params), humanCount(r.Params))
		}
		parts = append(parts, s)
	} else if r.Params > 0 {
		parts = append(parts, fmt.Sprintf("A model with %s parameters (%s)", thousands(r.Params), humanCount(r.Params)))
	}
	if r.Data != "" {
		parts = append(parts, "trained on "+r.Data)
	}
	if r.Device != "" {
		parts = append(parts, "on "+r.Device)
	}
	if !r.Started.IsZero() {
		parts = append(parts, "started "+r.Started.UTC().Format("2006-01-02 15:04 UTC"))
	}
	if r.WallSeconds > 0 {
		parts = append(parts, "wall time "+duration(r.WallSeconds))
	}
	para := strings.Join(parts, ", ")
	if para != "" {
		para += "."
	}
	if len(r.History) > 0 {
		if e, ok := r.best(); ok {
			para += fmt.Sprintf(" Best epoch %d of %d (validation foreground Dice %s, IoU %s, validation loss %s).",
				e.Epoch, r.History[len(r.History)-1].Epoch, ratio(metric.Score(e.ValDice)),
				ratio(metric.Score(e.ValIoU)), num(e.ValLoss, 4))
		} else {
			para += fmt.Sprintf(" %d epochs.", len(r.History))
		}
	} else if r.BestEpoch > 0 {
		para += fmt.Sprintf(" Best epoch %d.", r.BestEpoch)
	}
	if para = strings.TrimSpace(para); para != "" {
		b.WriteString(para + "\n\n")
	}

	for i, t := range r.Tests {
		split := t.Split
		if split == "" {
			split = "split " + strconv.Itoa(i+1)
		}
		writeTest(&b, split, t)
	}

	if len(curves) > 0 {
		b.WriteString("## Training curves\n\n")
		writeFigures(&b, curves)
		writeTraining(&b, r.History, r.bestIndex())
	}

	if len(r.Notes) > 0 {
		b.WriteString("## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(n, "\n", "\n  "))
		}
		b.WriteString("\n")
	}
	if r.Config != nil {
		if js, err := json.MarshalIndent(r.Config, "", "  "); err == nil {
			fmt.Fprintf(&b, "<details><summary>Configuration</summary>\n\n```json\n%s\n```\n\n</details>\n", js)
		}
	}
	fmt.Fprintf(&b, "\nAll figures, with per-image results, are in [%s](%s).\n", JSONFile, JSONFile)
	return b.String()
}

// writeFigures embeds each figure; an SVG twin of the PNG before it is a
// link next to the PNG rather than a second picture.
func writeFigures(b *strings.Builder, files []string) {
	for i := 0; i < len(files); i++ {
		f := filepath.ToSlash(files[i])
		name := strings.TrimSuffix(path.Base(f), path.Ext(f))
		fmt.Fprintf(b, "![%s](%s)", name, f)
		if strings.EqualFold(path.Ext(f), ".png") && i+1 < len(files) {
			if next := filepath.ToSlash(files[i+1]); strings.EqualFold(next, strings.TrimSuffix(f, path.Ext(f))+".svg") {
				fmt.Fprintf(b, " ([SVG](%s))", next)
				i++
			}
		}
		b.WriteString("\n\n")
	}
}

func writeTest(b *strings.Builder, split string, t Test) {
	m := t.Metrics
	s := m.Split
	fmt.Fprintf(b, "## Test: %s\n\n", split)
	if len(s.PerClass) == 0 {
		b.WriteString("No scores.\n\n")
		return
	}
	fg := s.Foreground
	im := m.ImageMean
	fmt.Fprintf(b, "Foreground mean Dice **%s**, IoU **%s**, pooled", ratio(fg.Dice), ratio(fg.IoU))
	if n := len(m.PerImage); n > 0 {
		fmt.Fprintf(b, " over the pixels of %d images", n)
	}
	if im.Foreground.Images > 0 {
		fmt.Fprintf(b, "; per-image mean Dice **%s**, IoU **%s**, over the %d images where a foreground class is in the truth or the prediction",
			ratio(im.Foreground.Dice), ratio(im.Foreground.IoU), im.Foreground.Images)
	}
	fmt.Fprintf(b, "; pixel accuracy %s.\n\n", ratio(s.PixelAccuracy))

	b.WriteString("Pooled over the split (one confusion matrix of all its pixels, so that large masks weigh more):\n\n")
	b.WriteString("| class | IoU | Dice | recall | precision | true pixels | predicted pixels |\n")
	b.WriteString("|:--|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range s.PerClass {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n", classLabel(m, c.Class, c.Name), ratio(c.IoU), ratio(c.Dice),
			ratio(c.Recall), ratio(c.Precision), thousands(c.Truth), thousands(c.Predicted))
	}
	fmt.Fprintf(b, "| **foreground mean** | **%s** | **%s** | **%s** | **%s** | | |\n",
		ratio(fg.IoU), ratio(fg.Dice), ratio(fg.Recall), ratio(fg.Precision))
	all := s.AllClasses
	fmt.Fprintf(b, "| all-class mean (incl. background) | %s | %s | %s | %s | | |\n\n",
		ratio(all.IoU), ratio(all.Dice), ratio(all.Recall), ratio(all.Precision))

	if len(im.PerClass) > 0 {
		b.WriteString("Per-image mean (MONAI's convention: each image scored alone, then the mean over the images where the class " +
			"is in the truth or the prediction; an image where it is only predicted scores 0):\n\n")
		b.WriteString("| class | Dice | IoU | images | images where it is only predicted |\n")
		b.WriteString("|:--|--:|--:|--:|--:|\n")
		for _, c := range im.PerClass {
			fmt.Fprintf(b, "| %s | %s | %s | %d | %d |\n", classLabel(m, c.Class, c.Name), ratio(c.Dice), ratio(c.IoU), c.Images, c.PredictedOnly)
		}
		fmt.Fprintf(b, "| **foreground mean** (per image, then over images) | **%s** | **%s** | %d | |\n\n",
			ratio(im.Foreground.Dice), ratio(im.Foreground.IoU), im.Foreground.Images)
	}

	if len(m.Surface) > 0 {
		b.WriteString("Surface distances, per-image mean (images where both masks are empty left out; " +
			"one empty mask scores the image diagonal); HD is the maximum, ASD the one-way average surface distance:\n\n")
		b.WriteString("| class | ASSD mm | HD95 mm | HD mm | ASD pred→truth mm | ASD truth→pred mm | images | images with one empty mask |\n")
		b.WriteString("|:--|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, sm := range m.Surface {
			name := strings.TrimSpace(fmt.Sprintf("%d %s", sm.Class, cell(className(m, sm.Class, sm.Name))))
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %d | %d |\n", name, mm(sm.ASSD), mm(sm.HD95), mm(sm.HD),
				mm(sm.ASDPred), mm(sm.ASDTruth), sm.Images, sm.OneEmpty)
		}
		b.WriteString("\n")
	}
	if len(m.PerImage) > 0 {
		fmt.Fprintf(b, "Every image's scores: [%s](%s).\n\n", PerImageFile, PerImageFile)
	}
	writeOverlays(b, split, t)
}

// classLabel is a class's row label; the background's says it is not in
// the foreground mean.
func classLabel(m metric.Report, k int, name string) string {
	name = className(m, k, name)
	if k == 0 {
		if name == "" {
			name = "background"
		}
		return fmt.Sprintf("0 %s *(background, not in the foreground mean)*", cell(name))
	}
	return strings.TrimSpace(fmt.Sprintf("%d %s", k, cell(name)))
}

func className(m metric.Report, k int, name string) string {
	if name == "" && k < len(m.Classes) {
		name = m.Classes[k]
	}
	return name
}

// writeOverlays lays the overlays out as tables of up to four images:
// best cases, worst cases, then any others.
func writeOverlays(b *strings.Builder, split string, t Test) {
	if len(t.Overlays) == 0 {
		return
	}
	byName := map[string]metric.ImageResult{}
	for _, r := range t.Metrics.PerImage {
		byName[SafeName(r.ID)] = r
	}
	type fig struct{ path, caption string }
	groups := map[string][]fig{}
	for _, p := range t.Overlays {
		base := strings.TrimSuffix(path.Base(filepath.ToSlash(p)), ".png")
		kind := ""
		for _, k := range []string{Best, Worst} {
			if strings.HasPrefix(base, k) {
				kind = k
			}
		}
		caption := base
		if kind != "" {
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
		}
		groups[kind] = append(groups[kind], fig{filepath.ToSlash(p), caption})
	}
	fmt.Fprintf(b, "### %s: best and worst cases\n\n", split)
	b.WriteString("Truth outlined in green, prediction in red, yellow where they agree.\n\n")
	for _, kind := range []string{Best, Worst, ""} {
		figs := groups[kind]
		for start := 0; start < len(figs); start += 4 {
			row := figs[start:min(start+4, len(figs))]
			b.WriteString("|")
			for _, f := range row {
				fmt.Fprintf(b, " %s |", cell(f.caption))
			}
			b.WriteString("\n|")
			for range row {
				b.WriteString(":-:|")
			}
			b.WriteString("\n|")
			for _, f := range row {
				fmt.Fprintf(b, " ![%s](%s) |", cell(f.caption), f.path)
			}
			b.WriteString("\n\n")
		}
	}
}

// writeTraining adds a short table of the first, best and last epochs.
func writeTraining(b *strings.Builder, h History, bi int) {
	rows := []int{0}
	if bi > 0 && bi < len(h)-1 {
		rows = append(rows, bi)
	}
	if len(h) > 1 {
		rows = append(rows, len(h)-1)
	}
	b.WriteString("| epoch | train loss | val loss | val Dice | val IoU | LR | s/epoch | images/s |\n")
	b.WriteString("|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, i := range rows {
		e := h[i]
		label := strconv.Itoa(e.Epoch)
		if i == bi {
			label = "**" + label + " (best)**"
		}
		lr := "–"
		if finite(e.LR) {
			lr = strconv.FormatFloat(e.LR, 'g', 3, 64)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", label, num(e.TrainLoss, 4), num(e.ValLoss, 4),
			ratio(metric.Score(e.ValDice)), ratio(metric.Score(e.ValIoU)), lr, num(e.Seconds, 1), num(e.ImagesPerSecond, 1))
	}
	b.WriteString("\n")
}
