package sas

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jmedseg/jmedseg/data"
	"github.com/jmedseg/jmedseg/internal/atomicfile"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/report"
	"github.com/jmedseg/jmedseg/torch"
)

// Settings are what shapes a pretrained encoder besides the model: the
// method and its options, recorded in the encoder file (MetaSettings) and
// its report, and compared when the SAS experiment reuses an encoder.
type Settings struct {
	Method      Method  `json:"method"`
	Epochs      int     `json:"epochs"`
	Batch       int     `json:"batch"`
	LR          float64 `json:"lr"`
	Queue       int     `json:"queue,omitempty"` // membank, moco
	Temperature float64 `json:"temperature"`
	Momentum    float64 `json:"momentum,omitempty"` // moco
	Dim         int64   `json:"dim"`
	// Size is the view size {height, width}.
	Size [2]int               `json:"size"`
	Seed uint64               `json:"seed"`
	Norm models.Normalization `json:"normalization"`
}

// Settings returns o's settings after defaults.
func (o PretrainOptions) Settings() Settings {
	o.defaults()
	s := Settings{Method: o.Method, Epochs: o.Epochs, Batch: o.Batch, LR: o.LR, Temperature: o.Temperature, Dim: o.Dim,
		Size: o.Size, Seed: o.Seed, Norm: o.Norm}
	if o.Method.usesQueue() {
		s.Queue = o.Queue
	}
	if o.Method == MoCo {
		s.Momentum = o.Momentum
	}
	return s
}

// Metadata keys of an encoder file written by PretrainModel.
const (
	MetaLosses   = "jmedseg.pretrain_losses"   // JSON list of the epochs' mean losses
	MetaAccuracy = "jmedseg.pretrain_accuracy" // JSON list of the epochs' positive-pair top-1 accuracies
	MetaSettings = "jmedseg.pretrain"          // JSON Settings
)

// Report is what pretraining leaves beside the encoder file (ReportFiles):
// the settings, the data, and the loss and positive-pair top-1 accuracy of
// every epoch.
type Report struct {
	Encoder string        `json:"encoder"`
	Model   string        `json:"model"`
	Config  models.Config `json:"model_config"`
	Params  int64         `json:"params"`
	Settings
	Data   string   `json:"data,omitempty"`
	Splits []string `json:"splits"`
	Images int      `json:"images"`
	// Chance is the top-1 accuracy of a random guess (PretrainOptions.Chance).
	Chance      float64      `json:"chance_top1"`
	History     []EpochStats `json:"history"`
	Device      string       `json:"device"`
	WallSeconds float64      `json:"wall_seconds"`
	Notes       []string     `json:"notes,omitempty"`
}

// ReportFiles are the report's files for an encoder file enc.safetensors:
// enc.pretrain.json, enc.pretrain.md and the curves
// enc.pretrain-loss.{png,svg} and enc.pretrain-accuracy.{png,svg}, in
// that order, beside it.
func ReportFiles(encoder string) []string {
	base := strings.TrimSuffix(encoder, filepath.Ext(encoder)) + ".pretrain"
	return []string{base + ".json", base + ".md", base + "-loss.png", base + "-loss.svg", base + "-accuracy.png", base + "-accuracy.svg"}
}

// WriteReport writes r's files (ReportFiles of r.Encoder), each atomically.
func WriteReport(r Report) error {
	files := ReportFiles(r.Encoder)
	ep := make([]float64, len(r.History))
	loss := make([]float64, len(r.History))
	acc := make([]float64, len(r.History))
	chance := make([]float64, len(r.History))
	for i, e := range r.History {
		ep[i], loss[i], acc[i], chance[i] = float64(e.Epoch), e.Loss, e.Accuracy, r.Chance
	}
	title := fmt.Sprintf("%s pretraining (%s)", r.Model, r.Method)
	lp := report.Plot{Title: title, XLabel: "epoch", YLabel: "contrastive loss", Series: []report.Series{{Name: "loss", X: ep, Y: loss}}}
	ap := report.Plot{Title: title, XLabel: "epoch", YLabel: "positive-pair top-1 accuracy", YMin: report.Float(0), YMax: report.Float(1),
		Series: []report.Series{{Name: "top-1", X: ep, Y: acc, Color: report.Palette[2]}, {Name: "chance", X: ep, Y: chance, Color: report.Palette[7]}}}
	for i, p := range []report.Plot{lp, lp, ap, ap} {
		if err := report.LinePlot(files[2+i], p); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(files[0], append(b, '\n')); err != nil {
		return err
	}
	return writeFile(files[1], []byte(r.markdown()))
}

func writeFile(path string, b []byte) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

func (r Report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: contrastive pretraining of %s's encoder\n\n", filepath.Base(r.Encoder), r.Model)
	fmt.Fprintf(&b, "Method **%s**: %s.\n\n", r.Method, methodText(r.Settings))
	fmt.Fprintf(&b, "- model: %s width %d, %d input channel(s), %s parameters\n", r.Model, r.Config.Width, r.Config.InChannels, thousands(r.Params))
	fmt.Fprintf(&b, "- data: %s, splits %s (%d images); views %d×%d, normalised as fine-tuning is (%s)\n",
		r.Data, strings.Join(r.Splits, ", "), r.Images, r.Size[0], r.Size[1], normText(r.Norm))
	fmt.Fprintf(&b, "- %d epochs, batch %d, Adam lr %g, temperature %g, embedding dimension %d, seed %d, on %s, %s\n",
		r.Epochs, r.Batch, r.LR, r.Temperature, r.Dim, r.Seed, r.Device, (time.Duration(r.WallSeconds) * time.Second).String())
	fmt.Fprintf(&b, "- positive-pair top-1 accuracy: the fraction of queries whose most similar candidate is their positive; chance %.4f\n\n", r.Chance)
	b.WriteString("| epoch | loss | top-1 | steps | seconds |\n|---:|---:|---:|---:|---:|\n")
	for _, e := range r.History {
		fmt.Fprintf(&b, "| %d | %.4f | %.4f | %d | %.1f |\n", e.Epoch, e.Loss, e.Accuracy, e.Steps, e.Seconds)
	}
	files := ReportFiles(r.Encoder)
	fmt.Fprintf(&b, "\n![loss](%s) ![accuracy](%s)\n", filepath.Base(files[2]), filepath.Base(files[4]))
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nNote: %s\n", n)
	}
	return b.String()
}

func methodText(s Settings) string {
	switch s.Method {
	case MoCo:
		return fmt.Sprintf("momentum contrast: keys from a momentum copy of the encoder and head (m = %g), computed without gradients; a queue of %d past keys as negatives; InfoNCE", s.Momentum, s.Queue)
	case SimCLR:
		return fmt.Sprintf("SimCLR: both views through the encoder, the other %d embeddings of the batch as negatives; NT-Xent", max(2*s.Batch-2, 0))
	}
	return fmt.Sprintf("the reference's memory bank: queries and keys from the same encoder (keys detached); a queue of %d past keys as negatives; InfoNCE", s.Queue)
}

func normText(n models.Normalization) string {
	if len(n.Mean) == 0 {
		return "[0, 1] scaling"
	}
	return fmt.Sprintf("[0, 1] scaling, then mean %v, std %v", n.Mean, n.Std)
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// ModelJob is a pretraining of a registered model's encoder written to a
// file: what PretrainModel does for `jmedseg pretrain` and the SAS
// experiment.
type ModelJob struct {
	Model  string        // a registered model with an encoder (unet, deeplab)
	Config models.Config // resolved (models.Spec.Resolve)
	// Samples are the images pretrained on; Data and Splits say where they
	// are from, for the report.
	Samples []data.Sample
	Data    string
	Splits  []string
	Options PretrainOptions // Channels, Size and Device set; NewKey is set by PretrainModel
	Out     string          // the encoder file (.safetensors)
}

// ErrNoEncoder is returned (wrapped) for a model without an encoder.
var ErrNoEncoder = fmt.Errorf("the model has no encoder to pretrain")

// EncoderModels lists the registered models that have an encoder to
// pretrain (models.SASEncoder), built once at their test width to find out.
func EncoderModels() []string {
	var out []string
	for _, n := range models.Names() {
		spec, _ := models.Lookup(n)
		m, err := models.New(n, models.Config{InChannels: 1, Classes: 2, Width: max(spec.TestWidth, 1)})
		if err != nil {
			continue
		}
		if _, ok := m.(Encoder); ok {
			out = append(out, n)
		}
		m.Free()
	}
	sort.Strings(out)
	return out
}

// CheckEncoder reports, as an error wrapping ErrNoEncoder that names the
// models with one, when the model name builds with cfg has no encoder to
// pretrain.
func CheckEncoder(name string, cfg models.Config) error {
	m, err := models.New(name, cfg)
	if err != nil {
		return err
	}
	_, ok := m.(Encoder)
	m.Free()
	if !ok {
		return fmt.Errorf("sas: %s: %w (models with one: %s)", name, ErrNoEncoder, strings.Join(EncoderModels(), ", "))
	}
	return nil
}

// PretrainModel builds job.Model, pretrains its encoder, and writes the
// encoder file (models.SaveEncoder, with the losses, accuracies and
// settings in its metadata) and its report (WriteReport) atomically. It
// overwrites job.Out: callers check first.
func PretrainModel(ctx context.Context, job ModelJob) (*Report, error) {
	start := time.Now()
	o := job.Options
	m, err := models.New(job.Model, job.Config)
	if err != nil {
		return nil, err
	}
	defer m.Free()
	enc, ok := m.(Encoder)
	if !ok {
		return nil, fmt.Errorf("sas: %s: %w (models with one: %s)", job.Model, ErrNoEncoder, strings.Join(EncoderModels(), ", "))
	}
	if err := m.To(o.Device); err != nil {
		return nil, err
	}
	o.NewKey = func() (Encoder, error) {
		k, err := models.New(job.Model, job.Config)
		if err != nil {
			return nil, err
		}
		return k.(Encoder), nil
	}
	hist, err := Pretrain(ctx, enc, job.Samples, o)
	if err != nil {
		return nil, err
	}
	state, err := EncoderState(enc, o.Channels, o.Size, o.Device)
	if err != nil {
		return nil, err
	}
	set := o.Settings()
	losses, accs := make([]float64, len(hist)), make([]float64, len(hist))
	for i, e := range hist {
		losses[i], accs[i] = e.Loss, e.Accuracy
	}
	lb, _ := json.Marshal(losses)
	ab, _ := json.Marshal(accs)
	sb, _ := json.Marshal(set)
	if dir := filepath.Dir(job.Out); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	info := models.Info{Model: job.Model, Config: job.Config, Extra: map[string]string{MetaLosses: string(lb), MetaAccuracy: string(ab), MetaSettings: string(sb)}}
	if err := models.SaveEncoder(job.Out, state, info); err != nil {
		return nil, err
	}
	r := Report{Encoder: job.Out, Model: job.Model, Config: job.Config, Params: m.NumParams(), Settings: set, Data: job.Data,
		Splits: job.Splits, Images: len(job.Samples), Chance: o.Chance(), History: hist, Device: o.Device.String(),
		WallSeconds: time.Since(start).Seconds()}
	if n := len(job.Samples); set.Queue >= n {
		r.Notes = append(r.Notes, fmt.Sprintf("the queue (%d keys) is not smaller than the data (%d images): it holds keys of the query's own image as negatives", set.Queue, n))
	}
	if len(hist) > 0 && hist[len(hist)-1].Accuracy <= 2*r.Chance && !math.IsNaN(hist[len(hist)-1].Accuracy) {
		r.Notes = append(r.Notes, "the last epoch's top-1 accuracy is within twice chance: the encoder has learnt little of the contrastive task (more epochs or a larger learning rate)")
	}
	if err := WriteReport(r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ReadSettings reads the settings an encoder file was pretrained with
// (false when it does not record them).
func ReadSettings(info models.Info) (Settings, bool) {
	var s Settings
	v, ok := info.Extra[MetaSettings]
	if !ok || json.Unmarshal([]byte(v), &s) != nil {
		return Settings{}, false
	}
	return s, true
}

// deviceOf parses a device name, CPU for "".
func deviceOf(name string) (torch.Device, error) {
	if name == "" {
		return torch.CPU, nil
	}
	return torch.ParseDevice(name)
}
