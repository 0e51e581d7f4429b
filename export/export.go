// Package export writes a trained model for programs without jmedseg: a
// TorchScript module that Python's torch.jit.load and C++'s
// torch::jit::load run (the whole pipeline: preprocessing, network, class
// names and configuration), or the bare state dict as safetensors under
// PyTorch's key names, for users who have the architecture.
//
// The TorchScript module is traced, not written by hand: libtorch's own
// tracer records the ATen calls the Go forward makes (torch/jit), with the
// model's parameters and buffers registered on the module under their
// state-dict paths, so that the saved module reads them as attributes.
package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/jmedseg/jmedseg/internal/atomicfile"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/jit"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// TracedMethod is the module's method traced from the Go forward: one
// image [1, C, H, W] of raw pixel values in, logits [1, classes, H, W] out.
// The module's forward checks its input and runs it on each image of a
// batch.
const TracedMethod = "forward_traced"

// PixelScale is the value of a white pixel in the module's input: inputs
// are 8-bit pixel values (0 to 255) as float32.
const PixelScale = 255

// CheckTol bounds |module − Go forward| / (1 + |Go forward|), elementwise,
// on the input TorchScript checks before anything is written.
const CheckTol = 1e-4

// Attributes of the exported module, besides the network's own.
var attrNames = []string{"model", "class_names", "in_channels", "num_classes", "input_size", "pixel_scale",
	"norm_mean", "norm_std", "jmedseg_info"}

// Report describes an export.
type Report struct {
	Format     string   `json:"format"`
	Out        string   `json:"out"`
	Model      string   `json:"model"`
	Classes    []string `json:"classes"`
	InChannels int64    `json:"in_channels"`
	Size       [2]int   `json:"size"`
	// Tensors is the number of state-dict tensors written (registered on
	// the module), Elements their elements.
	Tensors  int   `json:"tensors"`
	Elements int64 `json:"elements"`
	// Constants and ConstantElements (TorchScript only) count the tensor
	// constants of the traced graph (the normalisation's vectors): weights
	// are attributes, never constants.
	Constants        int64 `json:"constants"`
	ConstantElements int64 `json:"constant_elements"`
	// MaxDiff (TorchScript only) is max |module − Go forward| /
	// (1 + |Go forward|) on the check input (2 random images, one at a
	// time in Go), before writing.
	MaxDiff float64 `json:"max_diff"`
}

// normalizer maps raw pixel values ([N, C, H, W], 0 to PixelScale) to the
// model's input as training made it: scaled to [0, 1] (data.ToCHW's
// arithmetic: times 1/255 in float32), then (x − Mean[c]) · (1/Std[c]) when
// the model file records a normalisation (Normalization.Apply's). Its
// vectors are made before tracing: made inside, from Go memory, they would
// trace as uninitialised memory; made outside, they are constants.
type normalizer struct {
	mean, scale *torch.Tensor // [1, C, 1, 1], or nil
}

func newNormalizer(norm models.Normalization, c int64) (*normalizer, error) {
	if err := norm.Check(c); err != nil {
		return nil, err
	}
	n := &normalizer{}
	if len(norm.Mean) == 0 {
		return n, nil
	}
	inv := make([]float32, len(norm.Std))
	for i, s := range norm.Std {
		inv[i] = 1 / s
	}
	n.mean = torch.FromSlice(norm.Mean, []int64{1, c, 1, 1})
	n.scale = torch.FromSlice(inv, []int64{1, c, 1, 1})
	if err := errors.Join(n.mean.Err(), n.scale.Err()); err != nil {
		n.free()
		return nil, err
	}
	return n, nil
}

func (n *normalizer) apply(x *torch.Tensor) *torch.Tensor {
	y := x.MulScalar(1.0 / PixelScale)
	if n.mean == nil {
		return y
	}
	return y.Sub(n.mean).Mul(n.scale)
}

func (n *normalizer) free() {
	n.mean.Free()
	n.scale.Free()
}

// checkModel refuses what cannot be exported faithfully: a model in
// training mode (batch statistics, dropout), a configuration that info's
// size or normalisation does not fit.
func checkModel(m nn.Module, info models.Info) error {
	if m == nil {
		return errors.New("export: no model")
	}
	if err := m.Err(); err != nil {
		return fmt.Errorf("export: the model is broken: %w", err)
	}
	if info.Model == "" {
		return errors.New("export: the model info names no model")
	}
	if err := info.Norm.Check(info.Config.InChannels); err != nil {
		return fmt.Errorf("export: %s: %w", info.Model, err)
	}
	if spec, ok := models.Lookup(info.Model); ok {
		if err := spec.CheckSize(int64(info.Size[0]), int64(info.Size[1])); err != nil {
			return fmt.Errorf("export: the input size %dx%d: %w", info.Size[0], info.Size[1], err)
		}
	} else if info.Size[0] <= 0 || info.Size[1] <= 0 {
		return fmt.Errorf("export: bad input size %dx%d", info.Size[0], info.Size[1])
	}
	if m.Training() {
		return errors.New("export: the model is in training mode; export traces evaluation mode (running statistics, no dropout): call Eval first")
	}
	for _, nm := range m.NamedModules() {
		if nm.Node.Training() {
			return fmt.Errorf("export: submodule %s is in training mode; export traces evaluation mode: call Eval on the model first", nm.Name)
		}
	}
	return nil
}

// TorchScript builds the TorchScript module of m, a trained model in
// evaluation mode on the CPU as models.Load returns it, with the info of
// its model file. The module's forward takes raw pixel values float32
// [N, C, H, W] at info's input size (0 to 255 for 8-bit images: the
// preprocessing is inside), and returns the logits [N, classes, H, W]; its
// attributes hold the class names and configuration. Before it returns,
// the module is run on two random images and compared with m's forward
// (CheckTol): a model whose forward the tracer cannot follow (a decision
// taken on tensor values) is an error, not a silently wrong file. The
// caller frees the module.
func TorchScript(m nn.Module, info models.Info) (*jit.Module, *Report, error) {
	if err := checkModel(m, info); err != nil {
		return nil, nil, err
	}
	rep := &Report{Format: "torchscript", Model: info.Model, Classes: info.Classes, InChannels: info.Config.InChannels, Size: info.Size}
	jm, err := jit.New(info.Model)
	if err != nil {
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			jm.Free()
		}
	}()
	params := map[string]bool{}
	for _, p := range m.NamedParameters() {
		params[p.Name] = true
	}
	for _, st := range m.StateDict() {
		if st.Tensor.Device().IsCUDA() {
			return nil, nil, fmt.Errorf("export: %s is on %s: export traces on the CPU (move the model there first)", st.Name, st.Tensor.Device())
		}
		if err := jm.Register(st.Name, st.Tensor, !params[st.Name]); err != nil {
			return nil, nil, fmt.Errorf("export: %w", err)
		}
		rep.Tensors++
		rep.Elements += st.Tensor.Numel()
	}
	for _, a := range attrNames {
		if jm.HasAttr(a) {
			return nil, nil, fmt.Errorf("export: %s has a module or tensor called %s, a name the exported module's attributes need", info.Model, a)
		}
	}

	c, h, w := info.Config.InChannels, int64(info.Size[0]), int64(info.Size[1])
	norm, err := newNormalizer(info.Norm, c)
	if err != nil {
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	defer norm.free()
	// at::conv2d's kernels, as the trace will run (nn.Conv2d's oneDNN
	// routing is off under the tracer): the check compares like with like.
	forward := func(x *torch.Tensor) (y *torch.Tensor) {
		torch.WithoutOneDNNConv(func() { y = m.Forward(norm.apply(x)) })
		return y
	}
	err = torch.WithScope(func(s *torch.Scope) error {
		x := s.Track(torch.Rand([]int64{1, c, h, w})).MulScalar(PixelScale)
		if err := x.Err(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if err := jm.Trace(TracedMethod, x, forward); err != nil {
			return fmt.Errorf("export: %s does not trace: %w", info.Model, err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if err := setAttrs(jm, info); err != nil {
		return nil, nil, err
	}
	if err := jm.Define(forwardSource); err != nil {
		return nil, nil, fmt.Errorf("export: the module's forward: %w", err)
	}
	if rep.Constants, rep.ConstantElements, err = jm.Constants(TracedMethod); err != nil {
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	if rep.MaxDiff, err = check(jm, forward, c, info.Config.Classes, h, w); err != nil {
		return nil, nil, fmt.Errorf("export: %s: %w", info.Model, err)
	}
	ok = true
	return jm, rep, nil
}

// forwardSource is the module's forward, in TorchScript: it checks the
// input against the attributes and runs the traced method image by image
// (the trace fixed the batch size at one).
const forwardSource = `
def forward(self, x: Tensor) -> Tensor:
    if x.dim() != 4 or x.size(0) < 1 or x.size(1) != self.in_channels or x.size(2) != self.input_size[0] or x.size(3) != self.input_size[1]:
        raise RuntimeError("jmedseg " + self.model + ": want raw pixel values [N, " + str(self.in_channels) + ", " + str(self.input_size[0]) + ", " + str(self.input_size[1]) + "] with N >= 1, got " + str(x.shape))
    x = x.float()
    out = [self.forward_traced(x[0:1])]
    for i in range(1, x.size(0)):
        out.append(self.forward_traced(x[i:i + 1]))
    return torch.cat(out, 0)
`

func setAttrs(jm *jit.Module, info models.Info) error {
	cfg, err := json.Marshal(struct {
		Model   string               `json:"model"`
		Config  models.Config        `json:"config"`
		Classes []string             `json:"classes"`
		Size    [2]int               `json:"size"`
		STN     bool                 `json:"stn"`
		Norm    models.Normalization `json:"normalization"`
		Spacing []float64            `json:"pixel_spacing_mm,omitempty"`
		Epoch   int                  `json:"epoch,omitempty"`
		ValDice float64              `json:"val_foreground_dice,omitempty"`
		Scale   float64              `json:"pixel_scale"`
	}{info.Model, info.Config, info.Classes, info.Size, info.STN, info.Norm, info.Spacing, info.Epoch, info.ValDice, PixelScale})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	mean, std := make([]float64, len(info.Norm.Mean)), make([]float64, len(info.Norm.Std))
	for i := range mean {
		mean[i], std[i] = float64(info.Norm.Mean[i]), float64(info.Norm.Std[i])
	}
	classes := info.Classes
	if classes == nil {
		classes = []string{}
	}
	for _, set := range []error{
		jm.SetString("model", info.Model),
		jm.SetStrings("class_names", classes),
		jm.SetInt("in_channels", info.Config.InChannels),
		jm.SetInt("num_classes", info.Config.Classes),
		jm.SetInts("input_size", []int64{int64(info.Size[0]), int64(info.Size[1])}),
		jm.SetFloat("pixel_scale", PixelScale),
		jm.SetFloats("norm_mean", mean),
		jm.SetFloats("norm_std", std),
		jm.SetString("jmedseg_info", string(cfg)),
	} {
		if set != nil {
			return fmt.Errorf("export: %w", set)
		}
	}
	return nil
}

// check runs the module on a batch of two random images and the Go forward
// on each image alone (the module runs its batch-1 trace per image) and
// returns max |module − Go| / (1 + |Go|), or an error above CheckTol.
func check(jm *jit.Module, forward func(*torch.Tensor) *torch.Tensor, c, classes, h, w int64) (float64, error) {
	s := torch.NewScope()
	defer s.Close()
	x := s.Track(torch.Rand([]int64{2, c, h, w})).MulScalar(PixelScale).Floor()
	var want, got []float32
	var err error
	torch.NoGrad(func() {
		for i := range int64(2) {
			var v []float32
			if v, err = forward(x.Narrow(0, i, 1)).Float32s(); err != nil {
				return
			}
			want = append(want, v...)
		}
		out := s.Track(torch.Zeros([]int64{2, classes, h, w}))
		if err = jm.Run("forward", x, out); err != nil {
			return
		}
		got, err = out.Float32s()
	})
	if err != nil {
		return 0, err
	}
	if len(got) != len(want) {
		return 0, fmt.Errorf("the traced module gives %d logits, the model %d", len(got), len(want))
	}
	d := 0.0
	for i := range want {
		d = max(d, math.Abs(float64(got[i])-float64(want[i]))/(1+math.Abs(float64(want[i]))))
	}
	if !(d <= CheckTol) {
		return d, fmt.Errorf("the traced module does not reproduce the model on another input (max relative difference %.3g, tolerance %g): its forward depends on something the tracer cannot record", d, CheckTol)
	}
	return d, nil
}

// WriteTorchScript writes the TorchScript module of m (see TorchScript) to
// path atomically.
func WriteTorchScript(path string, m nn.Module, info models.Info) (*Report, error) {
	jm, rep, err := TorchScript(m, info)
	if err != nil {
		return nil, err
	}
	defer jm.Free()
	if err := atomicfile.Write(path, func(w io.Writer) error { return jm.Save(w) }); err != nil {
		return nil, fmt.Errorf("export: %s: %w", path, err)
	}
	rep.Out = path
	return rep, nil
}

// WriteSafeTensors writes m's state dict to path atomically as safetensors,
// under PyTorch's key names (those of m's PyTorch twin's state_dict()),
// with no metadata but "format": "pt": what safetensors.torch.save_file
// writes for model.state_dict().
func WriteSafeTensors(path string, m nn.Module, info models.Info) (*Report, error) {
	if m == nil {
		return nil, errors.New("export: no model")
	}
	if err := m.Err(); err != nil {
		return nil, fmt.Errorf("export: the model is broken: %w", err)
	}
	sd := m.StateDict()
	if err := ckpt.WriteTensors(path, sd, map[string]string{"format": "pt"}); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	rep := &Report{Format: "safetensors", Out: path, Model: info.Model, Classes: info.Classes, InChannels: info.Config.InChannels, Size: info.Size, Tensors: len(sd)}
	for _, st := range sd {
		rep.Elements += st.Tensor.Numel()
	}
	return rep, nil
}

// Formats are the formats Write takes.
var Formats = []string{"torchscript", "safetensors"}

// Write exports the model of a model file (checkpoint: a run's
// best.safetensors, or any file models.Load reads) in format to out,
// atomically, replacing out if it exists (the caller decides whether it
// may).
func Write(checkpoint, format, out string) (*Report, error) {
	format = strings.ToLower(format)
	if format != "torchscript" && format != "safetensors" {
		return nil, fmt.Errorf("export: unknown format %q (want %s)", format, strings.Join(Formats, " or "))
	}
	m, info, err := models.Load(checkpoint)
	if err != nil {
		return nil, err
	}
	defer m.Free()
	if format == "safetensors" {
		return WriteSafeTensors(out, m, info)
	}
	return WriteTorchScript(out, m, info)
}
