package train

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/jmedseg/jmedseg/augment"
	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/loss"
	"github.com/jmedseg/jmedseg/metric"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/dist"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// Evaluation is a model's result on a split.
type Evaluation struct {
	Loss    float64
	Metrics metric.Report
	// Pred holds each image's predicted class map by sample ID, when asked
	// for (to draw overlays).
	Pred map[string][]int64
	// Truth holds the true class maps likewise.
	Truth map[string][]int64
	// Path maps sample IDs (the file stems the metrics report) to image files.
	Path map[string]string
	// Size is the H, W of the maps.
	Size [2]int
}

// Evaluate scores the current model on samples in evaluation mode.
// keep, when non-nil, selects images whose maps are kept in the result.
func (t *Trainer) Evaluate(ctx context.Context, samples []data.Sample, keep func(id string) bool) (*Evaluation, error) {
	e := t.evalSetup(t.model)
	loader, err := e.loader(samples)
	if err != nil {
		return nil, err
	}
	return evaluate(ctx, e, loader, bySample(samples), keep)
}

func (t *Trainer) evalSetup(m nn.Module) evalSetup {
	return evalSetup{model: m, dev: t.dev, info: t.info, classes: t.info.Classes, ds: t.ds, batch: t.opt.Batch, workers: t.opt.Workers,
		lossFn: t.lossFn, spacing: t.spacing}
}

// evalSetup is what scoring a model takes: the model, its loss and class
// names, the pixel spacing, and for loaders of data set splits the model
// info (input size, channels, normalisation) and data set.
type evalSetup struct {
	model   nn.Module
	dev     torch.Device
	lossFn  loss.Loss
	classes []string                     // nil: "class i"
	spacing func(path string) [2]float64 // nil: 1 mm; see spacingOf

	info    models.Info
	ds      *data.Dataset
	batch   int
	workers int
	group   *dist.Group    // set: tests are sharded over the group (dist_eval.go)
	images  func(done int) // set: called with the images scored so far after each batch (progress bars)
}

// loader makes the evaluation loader of samples: resized to the model's
// input size, normalised as in training.
func (e evalSetup) loader(samples []data.Sample) (*data.Loader, error) {
	return data.NewLoader(samples, data.LoaderOptions{BatchSize: e.batch, Workers: e.workers, Channels: int(e.info.Config.InChannels),
		Classes: len(e.info.Classes), Ignore: int(max(e.void(len(e.info.Classes)), 0)), Transform: inputTransform(e.info, nil)})
}

// void is the label outside the classes the loss ignores (such as 255),
// which the masks may hold and the metrics skip; -1 when there is none.
func (e evalSetup) void(classes int) int64 {
	if e.lossFn == nil {
		return -1
	}
	return loss.Void(e.lossFn, classes)
}

// inputTransform appends to chain the resizing to the model's input size
// and its normalisation (which must come last).
func inputTransform(info models.Info, chain augment.Pipeline) augment.Pipeline {
	if info.Size != [2]int{} {
		chain = append(augment.Pipeline{augment.Resize{Width: info.Size[1], Height: info.Size[0]}}, chain...)
	}
	if n := info.Norm; len(n.Mean) > 0 {
		chain = append(chain, augment.Normalize{Mean: n.Mean, Std: n.Std})
	}
	return chain
}

// bySample maps image paths to sample IDs and groups.
func bySample(samples []data.Sample) func(image string) (id, group string) {
	byPath := make(map[string]data.Sample, len(samples))
	for _, s := range samples {
		byPath[s.Image] = s
	}
	return func(image string) (string, string) {
		s, ok := byPath[image]
		if !ok || s.ID == "" {
			return image, s.Group
		}
		return s.ID, s.Group
	}
}

// spacingOf finds each image's pixel spacing (row, column) in mm at the
// model's input size, from dataset.json; 1 mm where nothing is recorded.
// Images of unrecorded size are read once to learn it; the result is
// remembered, so evaluating every epoch does not read them again.
func spacingOf(ds *data.Dataset, size [2]int) func(path string) [2]float64 {
	per := map[string][]float64{}
	var all []float64
	if m := ds.Manifest; m != nil {
		all = m.PixelSpacing
		for _, s := range m.Samples {
			if len(s.SpacingMM) == 2 {
				per[filepath.Clean(filepath.Join(ds.Dir, s.Image))] = s.SpacingMM
			}
		}
	}
	var mu sync.Mutex
	known := map[string][2]int{} // stored image sizes (H, W)
	var common [2]int
	if m := ds.Manifest; m != nil && m.Width > 0 && m.Height > 0 {
		common = [2]int{m.Height, m.Width}
	}
	return func(path string) [2]float64 {
		sp := per[filepath.Clean(path)]
		if sp == nil {
			sp = all
		}
		if len(sp) != 2 {
			return [2]float64{1, 1}
		}
		hw := common
		if hw == [2]int{} {
			mu.Lock()
			var ok bool
			if hw, ok = known[path]; !ok {
				hw = storedSize(path)
				known[path] = hw
			}
			mu.Unlock()
		}
		// dataset.json stores (x, y); scale for any resizing to the model size.
		sy, sx := sp[1], sp[0]
		if size[0] > 0 && hw[0] > 0 {
			sy *= float64(hw[0]) / float64(size[0])
			sx *= float64(hw[1]) / float64(size[1])
		}
		return [2]float64{sy, sx}
	}
}

// evaluate scores e.model on the batches of loader in evaluation mode.
// sample names an image's sample ID and group (nil: the image path, no
// group); keep, when non-nil, selects images whose maps are kept.
func evaluate(ctx context.Context, e evalSetup, loader *data.Loader, sample func(image string) (id, group string), keep func(id string) bool) (*Evaluation, error) {
	var ev *metric.Evaluator
	out := &Evaluation{Path: map[string]string{}}
	if keep != nil {
		out.Pred, out.Truth = map[string][]int64{}, map[string][]int64{}
	}
	e.model.Train(false)
	defer e.model.Train(true)
	var lossSum float64
	var n int
	for b, err := range loader.Epoch(ctx, 0) {
		if err != nil {
			return nil, err
		}
		if b.Mask == nil {
			return nil, fmt.Errorf("evaluating %v: the batch has no masks", b.Names)
		}
		var berr error
		torch.NoGrad(func() {
			s := torch.NewScope()
			defer s.Close()
			x := torch.FromSlice(b.Image.Data, shape64(b.Image.Shape), s).ToDevice(e.dev)
			y := torch.FromSlice(b.Mask.Data, shape64(b.Mask.Shape), s).ToDevice(e.dev)
			logits := e.model.Forward(x)
			l, err := e.lossFn.Forward(logits, y).Item()
			if err != nil {
				berr = err
				return
			}
			if ev == nil {
				names := e.classes
				if names == nil {
					for c := range logits.Size(1) {
						names = append(names, fmt.Sprintf("class %d", c))
					}
				}
				ev = metric.NewEvaluator(len(names), names, e.void(len(names)))
			}
			lossSum += l * float64(len(b.Names))
			n += len(b.Names)
			pred, err := logits.Argmax(1, false).Int64s()
			if err != nil {
				berr = err
				return
			}
			h, w := b.Mask.Shape[1], b.Mask.Shape[2]
			out.Size = [2]int{h, w}
			for i, name := range b.Names {
				p := pred[i*h*w : (i+1)*h*w]
				tr := b.Mask.Data[i*h*w : (i+1)*h*w]
				id, group := name, ""
				if sample != nil {
					id, group = sample(name)
				}
				out.Path[id] = name
				sp := [2]float64{1, 1}
				if e.spacing != nil {
					sp = e.spacing(name)
				}
				if err := ev.AddImage(metric.Image{ID: id, Group: group, File: e.fileName(name)}, p, tr, h, w, sp); err != nil {
					berr = err
					return
				}
				if keep != nil && keep(id) {
					out.Pred[id] = append([]int64(nil), p...)
					out.Truth[id] = append([]int64(nil), tr...)
				}
			}
		})
		if berr != nil {
			return nil, fmt.Errorf("evaluating %v: %w", b.Names, berr)
		}
		if e.images != nil {
			e.images(n)
		}
	}
	if n > 0 {
		out.Loss = lossSum / float64(n)
	}
	if ev == nil {
		ev = metric.NewEvaluator(len(e.classes), e.classes, e.void(len(e.classes)))
	}
	out.Metrics = ev.Report()
	return out, nil
}

// fileName is how reports name an image file: relative to the data set
// directory, with forward slashes, when it lies inside it; else as given.
func (e evalSetup) fileName(path string) string {
	if e.ds == nil || e.ds.Dir == "" {
		return path
	}
	rel, err := filepath.Rel(e.ds.Dir, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return path
	}
	return filepath.ToSlash(rel)
}

// storedSize is the H, W of an image file (zero if unreadable: the
// spacing then stays as recorded).
func storedSize(path string) [2]int {
	img, err := data.ReadImage(path)
	if err != nil {
		return [2]int{}
	}
	b := img.Bounds()
	return [2]int{b.Dy(), b.Dx()}
}
