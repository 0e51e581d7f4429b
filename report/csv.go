package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/jmedseg/jmedseg/metric"
)

// PerImageFile is the per-image CSV that Write puts beside the report.
const PerImageFile = "per_image.csv"

// perImageMetrics are the per-class columns of the CSV, in order.
var perImageMetrics = []string{"dice", "iou", "hd95_mm", "hd_mm", "assd_mm", "asd_pred_mm", "asd_truth_mm", "empty"}

// PerImageCSV writes one row per image of every test split: split, id,
// file, group, then the image's scores. With one foreground class the
// score columns are dice, iou, hd95_mm, hd_mm, assd_mm, asd_pred_mm,
// asd_truth_mm and empty (which masks were empty: both, truth or
// prediction); with several, fg_mean_dice and fg_mean_iou (the image's
// mean over its defined foreground classes) come first, then those eight
// columns per foreground class, named "<class>:dice" and so on. An
// undefined score is an empty cell: Dice and IoU where the class is in
// neither mask, and the surface distances then too (they are 0 in
// report.json, with empty "both"), so that the mean of a column with empty
// cells skipped (pandas' default) is the report's per-image mean. Numbers
// are written in full precision.
func PerImageCSV(w io.Writer, tests []Test) error {
	classes, names := 0, []string(nil)
	for _, t := range tests {
		for _, img := range t.Metrics.PerImage {
			if len(img.Dice) > classes {
				classes, names = len(img.Dice), t.Metrics.Classes
			}
		}
	}
	fg := foregroundClasses(classes)
	header := []string{"split", "id", "file", "group"}
	if len(fg) > 1 {
		header = append(header, "fg_mean_dice", "fg_mean_iou")
	}
	seen := map[string]bool{}
	for _, k := range fg {
		prefix := ""
		if len(fg) > 1 {
			name := csvClassName(names, k)
			if seen[name] { // two classes of one name: columns must differ
				name += " (" + strconv.Itoa(k) + ")"
			}
			seen[name] = true
			prefix = name + ":"
		}
		for _, m := range perImageMetrics {
			if k == 0 && m != "dice" && m != "iou" {
				continue // a lone class 0 has no surface figures
			}
			header = append(header, prefix+m)
		}
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, t := range tests {
		for _, img := range t.Metrics.PerImage {
			row := []string{t.Split, img.ID, img.File, img.Group}
			if len(fg) > 1 {
				row = append(row, csvScore(img.ForegroundDice), csvScore(img.ForegroundIoU))
			}
			for _, k := range fg {
				row = append(row, csvScore(at(img.Dice, k)), csvScore(at(img.IoU, k)))
				if k == 0 {
					continue
				}
				nan := metric.Score(math.NaN())
				s := metric.Surface{ASSD: nan, HD95: nan, HD: nan, ASDPred: nan, ASDTruth: nan}
				if k-1 < len(img.Surface) {
					s = img.Surface[k-1]
				}
				if !s.Defined() {
					s = metric.Surface{ASSD: nan, HD95: nan, HD: nan, ASDPred: nan, ASDTruth: nan, Empty: s.Empty}
				}
				row = append(row, csvScore(s.HD95), csvScore(s.HD), csvScore(s.ASSD), csvScore(s.ASDPred),
					csvScore(s.ASDTruth), s.Empty)
			}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// foregroundClasses are the classes the CSV reports: 1..C-1, or class 0
// alone for a one-class model.
func foregroundClasses(c int) []int {
	var out []int
	for k := 1; k < c; k++ {
		out = append(out, k)
	}
	if c == 1 {
		out = []int{0}
	}
	return out
}

// csvClassName is class k's name for a column, "class k" when it has none.
func csvClassName(names []string, k int) string {
	if k < len(names) && names[k] != "" {
		return names[k]
	}
	return "class " + strconv.Itoa(k)
}

// at is xs[k], NaN past the end (an image scored with fewer classes).
func at(xs []metric.Score, k int) metric.Score {
	if k < len(xs) {
		return xs[k]
	}
	return metric.Score(math.NaN())
}

// csvScore writes a score in full precision, NaN and infinities as "".
func csvScore(s metric.Score) string {
	f := float64(s)
	if !finite(f) {
		return ""
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// writePerImageCSV writes PerImageCSV to path atomically.
func writePerImageCSV(path string, tests []Test) error {
	return writeAtomic(path, func(w io.Writer) error {
		if err := PerImageCSV(w, tests); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return nil
	})
}
