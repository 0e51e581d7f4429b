package sas

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jmedseg/jmedseg/metric"
)

// Machine describes the computer the experiment ran on.
type Machine struct {
	CPU  string `json:"cpu,omitempty"`
	CPUs int    `json:"cpus"`
	OS   string `json:"os"`
	Go   string `json:"go"`
}

func thisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version()}
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
	return m
}

// Stat is a mean and sample standard deviation over seeds; SD is NaN for
// fewer than two values.
type Stat struct {
	Mean metric.Score `json:"mean"`
	SD   metric.Score `json:"sd"`
	N    int          `json:"n"`
}

func statOf(v []float64) Stat {
	var fin []float64
	for _, x := range v {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			fin = append(fin, x)
		}
	}
	s := Stat{Mean: metric.Score(math.NaN()), SD: metric.Score(math.NaN()), N: len(fin)}
	if len(fin) == 0 {
		return s
	}
	m := 0.0
	for _, x := range fin {
		m += x
	}
	m /= float64(len(fin))
	s.Mean = metric.Score(m)
	if len(fin) > 1 {
		ss := 0.0
		for _, x := range fin {
			ss += (x - m) * (x - m)
		}
		s.SD = metric.Score(math.Sqrt(ss / float64(len(fin)-1)))
	}
	return s
}

// SplitSummary is one variant's scores on one test split over its seeds.
type SplitSummary struct {
	Split string `json:"split"`
	Dice  Stat   `json:"dice"`
	HD95  Stat   `json:"hd95_mm"`
	// DiceVsPlain is the mean and sd of the per-seed difference from
	// plain's Dice, over the seeds both have (paired).
	DiceVsPlain *Stat    `json:"dice_minus_plain,omitempty"`
	Seeds       []uint64 `json:"seeds"`
}

// VariantSummary is one variant's line of the tables.
type VariantSummary struct {
	Variant
	Runs   int            `json:"runs"`
	Failed int            `json:"failed"`
	Splits []SplitSummary `json:"splits"`
}

// PretrainSummary is one seed's pretrained encoder.
type PretrainSummary struct {
	Seed     uint64  `json:"seed"`
	Encoder  string  `json:"encoder"`
	Report   string  `json:"report"`
	Method   Method  `json:"method"`
	Epochs   int     `json:"epochs"`
	Loss     float64 `json:"final_loss"`
	Accuracy float64 `json:"final_positive_top1"`
	First    float64 `json:"first_positive_top1"`
	Chance   float64 `json:"chance_top1"`
	Seconds  float64 `json:"wall_seconds"`
}

// Table is the experiment's result, written as sas.json and sas.md.
type Table struct {
	Protocol Protocol `json:"protocol"`
	Data     string   `json:"data"`
	DataName string   `json:"data_name,omitempty"`
	Device   string   `json:"device"`
	Threads  int      `json:"threads,omitempty"`
	Machine  Machine  `json:"machine"`
	Seeds    []uint64 `json:"seeds"`
	// Splits are the test splits, each clean one followed by its
	// phone-photo twin (Shifted maps clean to twin).
	Splits   []string          `json:"splits"`
	Shifted  map[string]string `json:"shifted"`
	Variants []VariantSummary  `json:"variants"`
	Pretrain []PretrainSummary `json:"pretrain"`
	Rows     []Row             `json:"rows"`
	// Figure is the figure's file (relative), FigureImages its images.
	Figure       string    `json:"figure,omitempty"`
	FigureImages []string  `json:"figure_images,omitempty"`
	Notes        []string  `json:"notes,omitempty"`
	Written      time.Time `json:"written"`
}

// files lists what the table's writing leaves in the output directory.
func (t *Table) files() []string {
	f := []string{MarkdownFile, JSONFile}
	if t.Figure != "" {
		f = append(f, t.Figure)
	}
	return f
}

// tally says how many runs finished, stopped and failed.
func (t *Table) tally() string {
	var ok, stopped, failed int
	for _, r := range t.Rows {
		switch r.Status {
		case StatusOK:
			ok++
		case StatusStopped:
			stopped++
		default:
			failed++
		}
	}
	return fmt.Sprintf("%d runs: %d finished, %d stopped early, %d failed", len(t.Rows), ok, stopped, failed)
}

// sortedRows are the rows in the table's order: variant, then seed.
func sortedRows(rows map[string]Row) []Row {
	out := make([]Row, 0, len(rows))
	for _, r := range rows {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Row) int {
		if d := variantIndex(a.Variant) - variantIndex(b.Variant); d != 0 {
			return d
		}
		switch {
		case a.Seed < b.Seed:
			return -1
		case a.Seed > b.Seed:
			return 1
		}
		return 0
	})
	return out
}

// summarise fills the variants' summaries and the pretraining lines from
// the rows and the encoders' reports.
func (e *experiment) summarise() {
	t := &e.table
	t.Rows = sortedRows(e.rows)
	byVariant := map[string][]Row{}
	for _, r := range t.Rows {
		byVariant[r.Variant] = append(byVariant[r.Variant], r)
	}
	plain := map[uint64]Row{}
	for _, r := range byVariant["plain"] {
		if r.Status != StatusFailed {
			plain[r.Seed] = r
		}
	}
	t.Variants = nil
	for _, v := range Variants {
		rows := byVariant[v.Name]
		if len(rows) == 0 && !slices.ContainsFunc(e.opt.Variants, func(x Variant) bool { return x.Name == v.Name }) {
			continue
		}
		vs := VariantSummary{Variant: v, Runs: len(rows)}
		for _, r := range rows {
			if r.Status == StatusFailed {
				vs.Failed++
			}
		}
		for _, split := range t.Splits {
			var dice, hd, diff []float64
			ss := SplitSummary{Split: split}
			for _, r := range rows {
				s, ok := r.scores(split)
				if !ok || r.Status == StatusFailed {
					continue
				}
				dice = append(dice, float64(s.Dice))
				hd = append(hd, float64(s.HD95))
				ss.Seeds = append(ss.Seeds, r.Seed)
				if pr, ok := plain[r.Seed]; ok && v.Name != "plain" {
					if ps, ok := pr.scores(split); ok {
						diff = append(diff, float64(s.Dice-ps.Dice))
					}
				}
			}
			ss.Dice, ss.HD95 = statOf(dice), statOf(hd)
			if len(diff) > 0 {
				d := statOf(diff)
				ss.DiceVsPlain = &d
			}
			vs.Splits = append(vs.Splits, ss)
		}
		t.Variants = append(t.Variants, vs)
	}
	t.Pretrain = nil
	for _, seed := range e.seedsWithEncoders() {
		rel := EncoderPath(seed)
		rp := ReportFiles(filepath.Join(e.opt.Out, rel))[0]
		b, err := os.ReadFile(rp)
		if err != nil {
			continue
		}
		var r Report
		if json.Unmarshal(b, &r) != nil || len(r.History) == 0 {
			continue
		}
		last := r.History[len(r.History)-1]
		rel2, _ := filepath.Rel(e.opt.Out, ReportFiles(filepath.Join(e.opt.Out, rel))[1])
		t.Pretrain = append(t.Pretrain, PretrainSummary{Seed: seed, Encoder: filepath.ToSlash(rel), Report: filepath.ToSlash(rel2), Method: r.Method,
			Epochs: len(r.History), Loss: last.Loss, Accuracy: last.Accuracy, First: r.History[0].Accuracy, Chance: r.Chance, Seconds: r.WallSeconds})
	}
}

// seedsWithEncoders are the seeds with an encoder directory, in order.
func (e *experiment) seedsWithEncoders() []uint64 {
	seen := map[uint64]bool{}
	var out []uint64
	for _, r := range e.rows {
		if r.Pretrained != "" && !seen[r.Seed] {
			seen[r.Seed] = true
			out = append(out, r.Seed)
		}
	}
	for s, p := range e.encoders {
		if p != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// write assembles the table and writes sas.json and sas.md (and, when
// final, the figure first), each atomically.
func (e *experiment) write(final bool) error {
	e.summarise()
	t := &e.table
	if final {
		ok, ids, err := e.drawFigure()
		if err != nil {
			t.Notes = appendOnce(t.Notes, "no figure: "+err.Error())
		} else if ok {
			t.Figure, t.FigureImages = FigureFile, ids
		}
	}
	t.Written = time.Now().UTC()
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("experiment sas: %w", err)
	}
	if err := writeFile(filepath.Join(e.opt.Out, JSONFile), append(b, '\n')); err != nil {
		return err
	}
	return writeFile(filepath.Join(e.opt.Out, MarkdownFile), []byte(t.markdown()))
}

func appendOnce(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

func ratio(s metric.Score) string {
	if math.IsNaN(float64(s)) {
		return "—"
	}
	return fmt.Sprintf("%.4f", float64(s))
}

// cell is mean ± sd with prec decimals ("—" without values; the mean
// alone for one seed).
func (s Stat) cell(prec int) string {
	if s.N == 0 {
		return "—"
	}
	m := fmt.Sprintf("%.*f", prec, float64(s.Mean))
	if s.N == 1 {
		return m + " (n=1)"
	}
	return fmt.Sprintf("%s ± %.*f", m, prec, float64(s.SD))
}

func signed(s *Stat) string {
	if s == nil || s.N == 0 {
		return "—"
	}
	m := fmt.Sprintf("%+.4f", float64(s.Mean))
	if s.N == 1 {
		return m
	}
	return fmt.Sprintf("%s ± %.4f", m, float64(s.SD))
}

func yes(b bool) string {
	if b {
		return "✓"
	}
	return ""
}

func (t *Table) markdown() string {
	var b strings.Builder
	name := t.DataName
	if name == "" {
		name = filepath.Base(filepath.Clean(t.Data))
	}
	p := t.Protocol
	fmt.Fprintf(&b, "# SAS experiment: %s on %s\n\n", p.Model, name)
	fmt.Fprintf(&b, "Does self-supervised pretraining (ssl) + the SAS colour/blur augmentation (aug) + a spatial transformer (stn) "+
		"segment phone photos of the screen better than each part alone? Every variant is trained with one protocol and the "+
		"same seeds (%s); each cell is the mean ± sample standard deviation over the seeds of the best-validation checkpoint's "+
		"pooled foreground score on a test split. Splits ending in `%s` are phone-photo twins of the clean split before them "+
		"(perspective, moiré, glare, colour cast, blur, JPEG: `jmedseg data shift`).\n\n", seedList(t.Seeds), ShiftSuffix)
	fmt.Fprintf(&b, "Protocol: %s. Data %s; %s, %d CPUs (%s).\n\n", p.summary(), t.Data, t.Device, t.Machine.CPUs, t.Machine.CPU)
	header := func(title string) {
		fmt.Fprintf(&b, "## %s\n\n| variant | aug | stn | ssl |", title)
		for _, s := range t.Splits {
			fmt.Fprintf(&b, " %s |", s)
		}
		b.WriteString("\n|---|:-:|:-:|:-:|")
		for range t.Splits {
			b.WriteString("---:|")
		}
		b.WriteString("\n")
	}
	table := func(title string, cell func(SplitSummary) string) {
		header(title)
		for _, v := range t.Variants {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |", v.Name, yes(v.Aug), yes(v.STN), yes(v.SSL))
			for _, s := range v.Splits {
				fmt.Fprintf(&b, " %s |", cell(s))
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	table("Foreground Dice (higher is better)", func(s SplitSummary) string { return s.Dice.cell(4) })
	table("HD95 in mm (lower is better)", func(s SplitSummary) string { return s.HD95.cell(2) })
	table("Dice minus plain's, paired by seed", func(s SplitSummary) string { return signed(s.DiceVsPlain) })
	if t.Figure != "" {
		fmt.Fprintf(&b, "## Figure\n\nPhone-photo test images (%s): truth (green) and each variant's prediction (red; yellow where they agree), seed %s.\n\n![predictions](%s)\n\n",
			strings.Join(t.FigureImages, ", "), seedList(t.Seeds[:1]), t.Figure)
	}
	if len(t.Pretrain) > 0 {
		b.WriteString("## Pretraining\n\nOne encoder per seed on the train split, reused by every ssl variant of that seed. Top-1: the contrastive task's positive-pair accuracy.\n\n")
		b.WriteString("| seed | method | epochs | final loss | top-1 first → last epoch | chance | time | report |\n|---:|---|---:|---:|---:|---:|---:|---|\n")
		for _, s := range t.Pretrain {
			fmt.Fprintf(&b, "| %d | %s | %d | %.4f | %.3f → %.3f | %.4f | %s | [%s](%s) |\n", s.Seed, s.Method, s.Epochs, s.Loss, s.First, s.Accuracy, s.Chance,
				(time.Duration(s.Seconds) * time.Second).String(), filepath.Base(s.Report), s.Report)
		}
		b.WriteString("\n")
	}
	b.WriteString("## Runs\n\n| variant | seed | status | epochs | best epoch | time | notes |\n|---|---:|---|---:|---:|---:|---|\n")
	for _, r := range t.Rows {
		notes := strings.Join(r.Notes, "; ")
		if r.Error != "" {
			notes = strings.TrimPrefix(strings.Join([]string{notes, r.Error}, "; "), "; ")
		}
		name := r.Variant
		if r.Status != StatusFailed {
			name = fmt.Sprintf("[%s](%s/report.md)", r.Variant, r.Run)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %d | %d | %s | %s |\n", name, r.Seed, r.Status, r.Epochs, r.BestEpoch,
			(time.Duration(r.WallSeconds) * time.Second).String(), strings.ReplaceAll(notes, "|", "\\|"))
	}
	if len(t.Rows) == 0 {
		b.WriteString("| (none yet) | | | | | | |\n")
	}
	for _, n := range t.Notes {
		fmt.Fprintf(&b, "\nNote: %s\n", n)
	}
	fmt.Fprintf(&b, "\n%s; written %s.\n", t.tally(), t.Written.Format(time.RFC3339))
	return b.String()
}

func seedList(s []uint64) string {
	var out []string
	for _, x := range s {
		out = append(out, fmt.Sprint(x))
	}
	return strings.Join(out, ", ")
}
