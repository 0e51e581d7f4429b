package report

import (
	"fmt"
	"strings"
)

// Summary is a tested split in a few lines for a terminal: the foreground
// Dice and IoU pooled and as the per-image mean, then per foreground class
// the per-image means of the surface distances, e.g.
//
//	test: 40 images; foreground Dice 0.9512 pooled, 0.9300 per-image mean (40 images); IoU 0.9071 pooled, 0.8800 per-image mean
//	  1 brain, per-image means over 40 images (0 with one empty mask): HD95 3.21 mm, HD 8.00 mm, ASSD 1.02 mm, ASD pred→truth 1.10 mm, truth→pred 0.94 mm
func (t Test) Summary() []string {
	m := t.Metrics
	fg, im := m.Split.Foreground, m.ImageMean.Foreground
	split := t.Split
	if split == "" {
		split = "split"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d images; foreground Dice %s pooled", split, len(m.PerImage), ratio(fg.Dice))
	if im.Images > 0 {
		fmt.Fprintf(&b, ", %s per-image mean (%d images)", ratio(im.Dice), im.Images)
	}
	fmt.Fprintf(&b, "; IoU %s pooled", ratio(fg.IoU))
	if im.Images > 0 {
		fmt.Fprintf(&b, ", %s per-image mean", ratio(im.IoU))
	}
	lines := []string{b.String()}
	for _, s := range m.Surface {
		name := strings.TrimSpace(fmt.Sprintf("%d %s", s.Class, className(m, s.Class, s.Name)))
		if s.Images == 0 {
			lines = append(lines, fmt.Sprintf("  %s: in no image's truth or prediction, no surface distances", name))
			continue
		}
		lines = append(lines, fmt.Sprintf("  %s, per-image means over %d images (%d with one empty mask): HD95 %s mm, HD %s mm, ASSD %s mm, ASD pred→truth %s mm, truth→pred %s mm",
			name, s.Images, s.OneEmpty, mm(s.HD95), mm(s.HD), mm(s.ASSD), mm(s.ASDPred), mm(s.ASDTruth)))
	}
	return lines
}
