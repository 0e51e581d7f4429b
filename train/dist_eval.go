package train

import (
	"context"
	"fmt"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/metric"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/dist"
)

// distEvaluate scores e.model on samples sharded over g: rank r predicts
// samples r, r+world, ...; the class maps, the true maps and the loss sums
// are then all-reduced (each rank fills its own rows of a zeroed tensor),
// and every rank scores all images in the samples' order with one
// Evaluator, exactly as one process does. keep selects the maps kept in
// the result (nil: none).
func distEvaluate(ctx context.Context, e evalSetup, g *dist.Group, samples []data.Sample, keep func(id string) bool) (*Evaluation, error) {
	rank, world := g.Rank(), g.Size()
	var mine []data.Sample
	var idx []int
	for i := rank; i < len(samples); i += world {
		mine = append(mine, samples[i])
		idx = append(idx, i)
	}
	sample := bySample(samples)
	var local *Evaluation
	size := e.info.Size
	if len(mine) > 0 {
		loader, err := e.loader(mine)
		if err != nil {
			return nil, err
		}
		if local, err = evaluate(ctx, e, loader, sample, func(string) bool { return true }); err != nil {
			return nil, err
		}
		size = local.Size
	}
	h, w := size[0], size[1]
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("evaluating: unknown map size %dx%d (the model's input size is not set)", h, w)
	}
	ncls := len(e.classes)
	void := e.void(ncls)
	dt := torch.Uint8 // labels and the void label fit a byte at these class counts
	if ncls > 255 || void > 255 {
		dt = torch.Int32
	}
	s := torch.NewScope()
	defer s.Close()
	hw := h * w
	maps := make([]int32, len(samples)*2*hw)
	var lossSum float64
	if local != nil {
		for k, i := range idx {
			id, _ := sample(mine[k].Image)
			p, tr := local.Pred[id], local.Truth[id]
			if len(p) != hw || len(tr) != hw {
				return nil, fmt.Errorf("evaluating %s: maps of %d pixels, want %dx%d", mine[k].Image, len(p), h, w)
			}
			row := maps[i*2*hw:]
			for j := range hw {
				row[j] = int32(p[j])
				row[hw+j] = int32(tr[j])
			}
		}
		lossSum = local.Loss * float64(len(mine))
	}
	m := torch.FromSlice(maps, []int64{int64(len(samples)), 2, int64(h), int64(w)}, s).ToDType(dt)
	ls := torch.FromSlice([]float64{lossSum, float64(len(mine))}, []int64{2}, s)
	if err := g.AllReduce(dist.Sum, m); err != nil {
		return nil, distErr(g, "gathering the evaluation's maps", err)
	}
	if err := g.AllReduce(dist.Sum, ls); err != nil {
		return nil, distErr(g, "gathering the evaluation's loss", err)
	}
	all, err := m.ToDType(torch.Int64).Int64s()
	if err != nil {
		return nil, err
	}
	lv, err := ls.Float64s()
	if err != nil {
		return nil, err
	}
	out := &Evaluation{Path: map[string]string{}, Size: [2]int{h, w}}
	if keep != nil {
		out.Pred, out.Truth = map[string][]int64{}, map[string][]int64{}
	}
	if lv[1] > 0 {
		out.Loss = lv[0] / lv[1]
	}
	ev := metric.NewEvaluator(ncls, e.classes, void)
	for i, smp := range samples {
		id, group := sample(smp.Image)
		p := all[i*2*hw : i*2*hw+hw]
		tr := all[i*2*hw+hw : (i+1)*2*hw]
		out.Path[id] = smp.Image
		sp := [2]float64{1, 1}
		if e.spacing != nil {
			sp = e.spacing(smp.Image)
		}
		if err := ev.AddImage(metric.Image{ID: id, Group: group, File: e.fileName(smp.Image)}, p, tr, h, w, sp); err != nil {
			return nil, fmt.Errorf("evaluating %s: %w", smp.Image, err)
		}
		if keep != nil && keep(id) {
			out.Pred[id], out.Truth[id] = p, tr
		}
	}
	out.Metrics = ev.Report()
	return out, nil
}
