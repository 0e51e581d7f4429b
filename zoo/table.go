package zoo

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmedseg/jmedseg/internal/atomicfile"
	"github.com/jmedseg/jmedseg/metric"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/report"
)

// Table is a zoo's result, as zoo.json holds it.
type Table struct {
	Protocol Protocol `json:"protocol"`
	// Data is the data set directory, DataName its dataset.json name.
	Data     string `json:"data"`
	DataName string `json:"data_name,omitempty"`
	// Splits are the test splits, in the data set's order.
	Splits  []string  `json:"splits"`
	Machine Machine   `json:"machine"`
	Device  string    `json:"device"`
	Threads int       `json:"threads,omitempty"`
	Written time.Time `json:"written"`
	// FigureImage is the test image of the predictions figure
	// ("split/id"); Figures are the figure files, relative to the zoo's
	// directory.
	FigureImage string   `json:"figure_image,omitempty"`
	Figures     []string `json:"figures"`
	// Rows are every model with a row in the directory, in the registry's
	// order.
	Rows []Row `json:"rows"`
}

// Machine is where a zoo ran.
type Machine struct {
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	CPUs        int    `json:"cpus"`
	CPU         string `json:"cpu,omitempty"`
	MemoryBytes int64  `json:"memory_bytes,omitempty"`
	Go          string `json:"go"`
}

func thisMachine() Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					m.MemoryBytes = kb * 1024
				}
			}
		}
	}
	return m
}

// write assembles the table from the rows and writes the figures,
// zoo.json and zoo.md, each atomically.
func (z *zooRun) write() error {
	t := &z.table
	t.Rows = sortRows(z.rows)
	t.Written = time.Now().UTC()
	for _, r := range t.Rows {
		for _, s := range r.Tests {
			if !slices.Contains(t.Splits, s.Split) {
				t.Splits = append(t.Splits, s.Split)
			}
		}
	}
	t.Figures = nil
	for _, split := range t.Splits {
		files, err := z.drawDiceParams(split)
		if err != nil {
			return err
		}
		t.Figures = append(t.Figures, files...)
	}
	ok, err := z.drawPredictions(t.Rows)
	if err != nil {
		return err
	}
	if ok {
		t.Figures = append(t.Figures, PredictionsPNG)
	}
	js, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("zoo: encoding %s: %w", JSONFile, err)
	}
	if err := atomicfile.Write(filepath.Join(z.opt.Out, JSONFile), func(w io.Writer) error {
		_, err := w.Write(append(js, '\n'))
		return err
	}); err != nil {
		return fmt.Errorf("zoo: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(z.opt.Out, MarkdownFile), func(w io.Writer) error {
		_, err := io.WriteString(w, t.Markdown())
		return err
	}); err != nil {
		return fmt.Errorf("zoo: %w", err)
	}
	return nil
}

// sortRows orders rows as the registry does, unknown models last.
func sortRows(rows map[string]Row) []Row {
	names := models.Names()
	rank := func(n string) int {
		if i := slices.Index(names, n); i >= 0 {
			return i
		}
		return len(names)
	}
	out := make([]Row, 0, len(rows))
	for _, r := range rows {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Row) int {
		if ra, rb := rank(a.Model), rank(b.Model); ra != rb {
			return ra - rb
		}
		return strings.Compare(a.Model, b.Model)
	})
	return out
}

// DiceFigure is the file name (without extension) of the Dice against
// parameters figure of a split.
func DiceFigure(split string) string { return "zoo-dice-" + report.SafeName(split) }

// drawDiceParams writes the Dice against parameters figure of one split
// as PNG and SVG and returns the file names.
func (z *zooRun) drawDiceParams(split string) ([]string, error) {
	s := report.Scatter{Title: fmt.Sprintf("%s: foreground Dice against parameters", split), LogX: true,
		XLabel: fmt.Sprintf("trainable parameters at the width trained (width scale %g)", z.table.Protocol.WidthScale),
		YLabel: "foreground Dice"}
	for _, r := range z.table.Rows {
		sc, ok := r.Scores(split)
		if !ok || r.Params <= 0 {
			continue
		}
		p := report.Point{X: float64(r.Params), Y: float64(sc.Dice), Label: r.Model}
		switch {
		case collapsed(sc.Dice):
			p.Color = report.Palette[3] // red: all background
		case r.Status == StatusStopped:
			p.Color = report.Palette[1] // orange: stopped early
		}
		s.Points = append(s.Points, p)
	}
	base := DiceFigure(split)
	var files []string
	for _, ext := range []string{".png", ".svg"} {
		if err := report.ScatterPlot(filepath.Join(z.opt.Out, base+ext), s); err != nil {
			return nil, fmt.Errorf("zoo: %w", err)
		}
		files = append(files, base+ext)
	}
	return files, nil
}

// Files are the table's files, relative to its directory: zoo.md,
// zoo.json and the figures.
func (t *Table) Files() []string {
	return append([]string{MarkdownFile, JSONFile}, t.Figures...)
}

// tally counts the rows by status, e.g. "31 ok, 1 stopped, 1 failed".
func (t *Table) tally() string {
	n := map[string]int{}
	for _, r := range t.Rows {
		n[r.Status]++
	}
	var parts []string
	for _, s := range []string{StatusOK, StatusStopped, StatusFailed} {
		if n[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[s], s))
		}
	}
	if len(parts) == 0 {
		return "no rows yet"
	}
	return strings.Join(parts, ", ")
}

// summary is the protocol in words.
func (p Protocol) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s of batch %d", plural(p.Epochs, "epoch"), p.Batch)
	if p.LimitBatches > 0 {
		fmt.Fprintf(&b, " (at most %d batches an epoch)", p.LimitBatches)
	}
	fmt.Fprintf(&b, " at %d×%d, %s lr %g", p.Size[0], p.Size[1], p.Optimizer, p.LR)
	if p.Decay != 0 {
		fmt.Fprintf(&b, " weight decay %g", p.Decay)
	}
	if p.Poly {
		b.WriteString(" with the poly schedule")
	}
	fmt.Fprintf(&b, ", loss %s", p.Loss)
	switch {
	case p.Aug && p.Geometric:
		b.WriteString(", SAS colour/blur and geometric augmentation")
	case p.Aug:
		b.WriteString(", SAS colour/blur augmentation")
	case p.Geometric:
		b.WriteString(", geometric augmentation")
	default:
		b.WriteString(", no augmentation")
	}
	fmt.Fprintf(&b, ", width scale %g", p.WidthScale)
	if p.MinWidth > 0 {
		fmt.Fprintf(&b, " (width at least %d)", p.MinWidth)
	}
	fmt.Fprintf(&b, ", seed %d", p.Seed)
	if p.FitSize {
		b.WriteString("; a model that cannot take the size trains at the next size it takes")
	}
	return b.String()
}

// Markdown is the text of zoo.md.
func (t *Table) Markdown() string {
	var b strings.Builder
	name := t.DataName
	if name == "" {
		name = filepath.Base(filepath.Clean(t.Data))
	}
	fmt.Fprintf(&b, "# Model zoo on %s\n\n", name)
	fmt.Fprintf(&b, "Every model trained with one protocol, then its best checkpoint (by validation foreground Dice) tested on every "+
		"test split. Written by `jmedseg zoo` %s; rows: %s.\n\n", t.Written.Format("2006-01-02 15:04 UTC"), t.tally())
	p := t.Protocol
	rule := fmt.Sprintf("max(1, round(reference width × %g))", p.WidthScale)
	if p.MinWidth > 1 {
		rule = fmt.Sprintf("max(%d, round(reference width × %g)), at most the reference width", p.MinWidth, p.WidthScale)
	}
	fmt.Fprintf(&b, "- **Protocol:** %s. Each model's width is %s, rounded up where a model needs it (see the notes).\n",
		p.summary(), rule)
	m := t.Machine
	mach := fmt.Sprintf("%s/%s, %d CPUs", m.OS, m.Arch, m.CPUs)
	if m.CPU != "" {
		mach = m.CPU + ", " + mach
	}
	if m.MemoryBytes > 0 {
		mach += fmt.Sprintf(", %.0f GiB", float64(m.MemoryBytes)/(1<<30))
	}
	mach += ", device " + t.Device
	if t.Threads > 0 {
		mach += ", " + plural(t.Threads, "thread")
	}
	fmt.Fprintf(&b, "- **Machine:** %s.\n", mach)
	fmt.Fprintf(&b, "- **Data:** %s; test splits %s.\n\n", t.Data, strings.Join(t.Splits, ", "))

	b.WriteString("| model | width (ref.) | params | ref. params |")
	for _, s := range t.Splits {
		fmt.Fprintf(&b, " %s Dice | %s IoU | %s HD95 | %s ASSD |", s, s, s, s)
	}
	b.WriteString(" s/epoch | img/s | peak MiB | status |\n|:--|--:|--:|--:|")
	for range t.Splits {
		b.WriteString("--:|--:|--:|--:|")
	}
	b.WriteString("--:|--:|--:|:--|\n")
	for _, r := range t.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |", r.Model, widthCell(r), count(r.Params), count(r.RefParams))
		for _, s := range t.Splits {
			sc, ok := r.Scores(s)
			if !ok {
				b.WriteString(" – | – | – | – |")
				continue
			}
			fmt.Fprintf(&b, " %s | %s | %s | %s |", ratio(sc.Dice), ratio(sc.IoU), mm(sc.HD95), mm(sc.ASSD))
		}
		peak := "–"
		if r.PeakRSS > 0 {
			peak = strconv.FormatInt(int64(math.Round(float64(r.PeakRSS)/(1<<20))), 10)
		}
		status := r.Status
		if r.Reason != "" {
			status += ": " + r.Reason
		}
		fmt.Fprintf(&b, " %s | %s | %s | %s |\n", num(float64(r.SecondsPerEpoch), 1), num(float64(r.ImagesPerSecond), 1), peak, status)
	}
	b.WriteString("\nDice and IoU are the foreground means over the split's pixels; HD95 and ASSD are in mm, the mean over " +
		"images and foreground classes. s/epoch is an epoch's training and validation; img/s the training throughput; " +
		"peak MiB the training process's peak resident memory (its tests included). Width is the base width trained, " +
		"params the trainable parameters at it; ref. params at the reference width, 3 input channels and 2 classes.\n\n")

	var notes []string
	for _, r := range t.Rows {
		if r.Error != "" {
			notes = append(notes, fmt.Sprintf("**%s** %s (%s): %s", r.Model, r.Status, r.Reason, cell(r.Error)))
		}
		if r.WidthNote != "" {
			notes = append(notes, fmt.Sprintf("**%s**: %s", r.Model, cell(r.WidthNote)))
		}
		if r.SizeNote != "" {
			notes = append(notes, fmt.Sprintf("**%s**: %s", r.Model, cell(r.SizeNote)))
		}
		var bg []string
		for _, s := range r.Tests {
			if collapsed(s.Dice) {
				bg = append(bg, fmt.Sprintf("%s (Dice %s)", s.Split, ratio(s.Dice)))
			}
		}
		if len(bg) > 0 {
			notes = append(notes, fmt.Sprintf("**%s** predicts (almost) only background on %s", r.Model, strings.Join(bg, ", ")))
		}
		for _, n := range r.Notes {
			notes = append(notes, fmt.Sprintf("**%s**: %s", r.Model, cell(n)))
		}
	}
	if len(notes) > 0 {
		b.WriteString("## Notes\n\n")
		for _, n := range notes {
			b.WriteString("- " + n + "\n")
		}
		b.WriteString("\n")
	}
	if len(t.Figures) > 0 {
		b.WriteString("## Figures\n\n")
		for _, f := range t.Figures {
			switch {
			case f == PredictionsPNG:
				fmt.Fprintf(&b, "Every model's prediction on %s: truth outlined in green, prediction in red, yellow where they "+
					"agree.\n\n![predictions](%s)\n\n", t.FigureImage, f)
			case strings.HasSuffix(f, ".png"):
				svg := strings.TrimSuffix(f, ".png") + ".svg"
				fmt.Fprintf(&b, "![%s](%s)", strings.TrimSuffix(f, ".png"), f)
				if slices.Contains(t.Figures, svg) {
					fmt.Fprintf(&b, " ([SVG](%s))", svg)
				}
				b.WriteString("\n\n")
			}
		}
	}
	fmt.Fprintf(&b, "Each model's run (checkpoints, report.md, training log %s) is in its directory; all figures are in [%s](%s).\n",
		LogFile, JSONFile, JSONFile)
	return b.String()
}

// plural is "1 epoch", "2 epochs".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// widthCell is "16 (64)", the width trained and the reference's.
func widthCell(r Row) string {
	if r.Width <= 0 {
		return "–"
	}
	if r.RefWidth <= 0 || r.RefWidth == r.Width {
		return strconv.FormatInt(r.Width, 10)
	}
	return fmt.Sprintf("%d (%d)", r.Width, r.RefWidth)
}

// count writes a parameter count as 17.27 M, 512.3 k or 999.
func count(n int64) string {
	switch f := float64(n); {
	case n <= 0:
		return "–"
	case f >= 1e6:
		return fmt.Sprintf("%.2f M", f/1e6)
	case f >= 1e3:
		return fmt.Sprintf("%.1f k", f/1e3)
	}
	return strconv.FormatInt(n, 10)
}

func ratio(s metric.Score) string { return num(float64(s), 4) }

func mm(s metric.Score) string { return num(float64(s), 2) }

func num(f float64, prec int) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "–"
	}
	return strconv.FormatFloat(f, 'f', prec, 64)
}

// cell makes text safe in a markdown table cell or list item.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}
