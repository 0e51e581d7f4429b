package main

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"

	rplot "github.com/jmedseg/jmedseg/report"
)

// writeCost adds the cost curve to b: per mode, a table of sizes against
// batches (seconds per step and peak MiB, Go / PyTorch), and writes one
// figure per mode and quantity into dir, a line per side and size against
// the batch. It returns the figures' file names.
func writeCost(b *strings.Builder, dir, name string, rep *report) ([]string, error) {
	var sizes, batches []int
	for _, r := range rep.Rows {
		if !slices.Contains(sizes, r.Size) {
			sizes = append(sizes, r.Size)
		}
		if !slices.Contains(batches, r.Batch) {
			batches = append(batches, r.Batch)
		}
	}
	slices.Sort(sizes)
	slices.Sort(batches)
	at := func(size, batch int, mode string) *pair {
		for _, r := range rep.Rows {
			if r.Size == size && r.Batch == batch {
				return r.Modes[mode]
			}
		}
		return nil
	}
	model := "unet"
	if len(rep.Rows) > 0 {
		model = fmt.Sprintf("%s (width %d, %d threads)", rep.Rows[0].Model, rep.Rows[0].Width, rep.Rows[0].Threads)
	}
	fmt.Fprintf(b, "\nCost curve of %s: per cell, seconds per step Go / PyTorch, then peak resident MiB Go / PyTorch.\n", model)
	var figs []string
	for _, mode := range []string{"train", "infer"} {
		fmt.Fprintf(b, "\n| %s |", mode)
		sep := "|---|"
		for _, n := range batches {
			fmt.Fprintf(b, " batch %d |", n)
			sep += "---:|"
		}
		b.WriteString("\n" + sep + "\n")
		for _, size := range sizes {
			fmt.Fprintf(b, "| %d² |", size)
			for _, n := range batches {
				p := at(size, n, mode)
				if p == nil {
					b.WriteString(" – |")
					continue
				}
				if why, ok := strings.CutPrefix(p.Go.Error, notRun+": "); ok {
					fmt.Fprintf(b, " not run: %s |", why)
					continue
				}
				fmt.Fprintf(b, " %s / %s s, %s / %s MiB |", secs(p.Go), secs(p.PyTorch), peak(p.Go), peak(p.PyTorch))
			}
			b.WriteString("\n")
		}
		for _, q := range []struct{ key, label string }{{"seconds", "seconds per step"}, {"peak", "peak resident memory, MiB"}} {
			pl := rplot.Plot{Title: fmt.Sprintf("%s %s: %s", model, mode, q.label), XLabel: "batch", YLabel: q.label}
			for i, size := range sizes {
				for j, sd := range []string{"Go", "PyTorch"} {
					s := rplot.Series{Name: fmt.Sprintf("%s %d²", sd, size), Color: rplot.Palette[(2*i+j)%len(rplot.Palette)]}
					for _, n := range batches {
						v := math.NaN() // a gap where a run failed or did not run
						if p := at(size, n, mode); p != nil {
							side := p.Go
							if sd == "PyTorch" {
								side = p.PyTorch
							}
							if q.key == "seconds" && side.Seconds > 0 {
								v = side.Seconds
							} else if q.key == "peak" && side.PeakMiB > 0 {
								v = side.PeakMiB
							}
						}
						s.X, s.Y = append(s.X, float64(n)), append(s.Y, v)
					}
					pl.Series = append(pl.Series, s)
				}
			}
			f := fmt.Sprintf("%s-%s-%s.png", name, mode, q.key)
			if err := rplot.LinePlot(filepath.Join(dir, f), pl); err != nil {
				return nil, err
			}
			figs = append(figs, f)
		}
	}
	return figs, nil
}
