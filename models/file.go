package models

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"

	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/torch/safetensors"
)

// The model file
//
// A model file is a safetensors file: the model's state dict under its
// PyTorch keys, and in the metadata what it takes to rebuild the model and
// feed it as it was trained (Info). Python reads it with
// safetensors.torch.load_file. Three kinds share the format, told apart by
// the "jmedseg.kind" entry: a trained model (KindModel: Save, Load), a
// pretrained encoder (KindEncoder: SaveEncoder, LoadPretrained) and a
// training checkpoint (KindTraining: written by package train with Info's
// metadata, its weights under ckpt.ModelPrefix; Load reads its model too).
// The tensors are read and written by torch/ckpt, which links no
// optimizer: a program that only predicts needs models, data and torch.

// Kinds of model file, the value of the "jmedseg.kind" metadata entry.
const (
	KindModel    = ckpt.KindModel    // a trained model
	KindEncoder  = "encoder"         // a pretrained encoder (jmedseg pretrain)
	KindTraining = ckpt.KindTraining // a training checkpoint (train's last.safetensors)
)

// Metadata keys of a model file.
const (
	metaKind    = ckpt.MetaKind
	metaModel   = "jmedseg.model"
	metaConfig  = "jmedseg.config"
	metaClasses = "jmedseg.classes"
	metaSize    = "jmedseg.size"
	metaSpacing = "jmedseg.pixel_spacing_mm"
	metaNorm    = "jmedseg.normalization"
	metaSTN     = "jmedseg.stn"
	metaEpoch   = "jmedseg.epoch"
	metaValDice = "jmedseg.val_foreground_dice"
	// metaLegacyEncoder named the model of a pretrained-encoder file
	// before encoder files had their own kind.
	metaLegacyEncoder = "jmedseg.pretrained_model"
	metaFormat        = "format" // "pt", as safetensors.torch writes
)

var ownKeys = map[string]bool{metaFormat: true, metaKind: true, metaModel: true, metaConfig: true, metaClasses: true, metaSize: true,
	metaSpacing: true, metaNorm: true, metaSTN: true, metaEpoch: true, metaValDice: true, metaLegacyEncoder: true}

// Info is what a model file records besides its weights: enough to rebuild
// the model and to feed it images the way it was trained.
type Info struct {
	// Kind is KindModel, KindEncoder or KindTraining, as read; Save and
	// SaveEncoder set it.
	Kind    string   `json:"kind,omitempty"`
	Model   string   `json:"model"`
	Config  Config   `json:"config"`
	Classes []string `json:"classes"`
	// Size is the H, W the model was trained at; inputs are resized to it.
	Size [2]int `json:"size"`
	// STN: the network is wrapped in a spatial transformer (WithSTN).
	STN bool `json:"stn,omitempty"`
	// Spacing is the data set's pixel spacing (x, y) in mm, informative.
	Spacing []float64 `json:"pixel_spacing_mm,omitempty"`
	// Norm is how pixels became inputs in training. Files written before
	// it was recorded get the default (DefaultNormalization).
	Norm Normalization `json:"normalization"`
	// Epoch (1-based) and ValDice record where the weights come from.
	Epoch   int     `json:"epoch"`
	ValDice float64 `json:"val_foreground_dice"`
	// Extra holds metadata entries this package does not own (a training
	// checkpoint's history, pretraining losses), read and written as is.
	Extra map[string]string `json:"-"`
}

// Normalization is how an image becomes model input after it is resized to
// Info.Size: its pixels are scaled to [0, 1] by their bit depth (8-bit by
// 1/255, 16-bit by 1/65535; colour to grey by the ITU-R 601 luma weights
// for 1-channel models, grey replicated for 3-channel ones), as
// data.ToCHW does; then, when Mean is set, channel c maps to
// (x − Mean[c]) / Std[c], as augment.Normalize does.
type Normalization struct {
	// Scale names the scaling to [0, 1]; "unit" (by bit depth) is the only
	// one so far. A file naming another is refused rather than misread.
	Scale string    `json:"scale"`
	Mean  []float32 `json:"mean,omitempty"`
	Std   []float32 `json:"std,omitempty"`
}

// ScaleUnit scales pixels to [0, 1] by their bit depth.
const ScaleUnit = "unit"

// DefaultNormalization is [0, 1] scaling and nothing more: what every
// model was trained with before the normalisation was recorded.
func DefaultNormalization() Normalization { return Normalization{Scale: ScaleUnit} }

// Check reports whether n can feed a model of in channels.
func (n Normalization) Check(in int64) error {
	if n.Scale != ScaleUnit {
		return fmt.Errorf("unknown input scaling %q (want %q)", n.Scale, ScaleUnit)
	}
	if len(n.Mean) != len(n.Std) {
		return fmt.Errorf("normalisation has %d means and %d standard deviations", len(n.Mean), len(n.Std))
	}
	if len(n.Mean) != 0 && int64(len(n.Mean)) != in {
		return fmt.Errorf("normalisation has %d means for a model of %d input channels", len(n.Mean), in)
	}
	for c, s := range n.Std {
		if s == 0 {
			return fmt.Errorf("normalisation: standard deviation %d is zero", c)
		}
	}
	return nil
}

// Apply normalises chw (C×H×W, already scaled to [0, 1]) in place, with
// the same arithmetic as augment.Normalize.
func (n Normalization) Apply(chw []float32, channels int) error {
	if err := n.Check(int64(channels)); err != nil {
		return err
	}
	if len(n.Mean) == 0 {
		return nil
	}
	plane := len(chw) / channels
	for c := range n.Mean {
		m, s := n.Mean[c], 1/n.Std[c]
		px := chw[c*plane : (c+1)*plane]
		for i, v := range px {
			px[i] = (v - m) * s
		}
	}
	return nil
}

// Metadata returns info as safetensors metadata entries (Extra included).
func (i Info) Metadata() map[string]string {
	md := maps.Clone(i.Extra)
	if md == nil {
		md = map[string]string{}
	}
	cfg, _ := json.Marshal(i.Config)
	md[metaModel], md[metaConfig] = i.Model, string(cfg)
	if i.Kind != "" {
		md[metaKind] = i.Kind
	}
	if i.Kind == KindEncoder {
		return md // an encoder file has no classes, size or training record
	}
	cls, _ := json.Marshal(i.Classes)
	sp, _ := json.Marshal(i.Spacing)
	norm := i.Norm
	if norm.Scale == "" {
		norm.Scale = ScaleUnit
	}
	nb, _ := json.Marshal(norm)
	md[metaClasses] = string(cls)
	md[metaSize] = fmt.Sprintf("%dx%d", i.Size[0], i.Size[1])
	md[metaSpacing] = string(sp)
	md[metaNorm] = string(nb)
	md[metaSTN] = strconv.FormatBool(i.STN)
	md[metaEpoch] = strconv.Itoa(i.Epoch)
	md[metaValDice] = strconv.FormatFloat(i.ValDice, 'g', -1, 64)
	return md
}

// ParseInfo reads Info from a file's metadata; path names the file in
// errors.
func ParseInfo(path string, md map[string]string) (Info, error) {
	var i Info
	i.Kind = md[metaKind]
	i.Model = md[metaModel]
	if i.Model == "" && md[metaLegacyEncoder] != "" {
		i.Kind, i.Model = KindEncoder, md[metaLegacyEncoder]
	}
	if i.Kind == "" {
		i.Kind = KindModel
	}
	if i.Kind != KindModel && i.Kind != KindEncoder && i.Kind != KindTraining {
		return i, fmt.Errorf("%s: unknown kind of jmedseg file %q", path, i.Kind)
	}
	if i.Model == "" {
		return i, fmt.Errorf("%s: not a jmedseg model file (no %s in its metadata)", path, metaModel)
	}
	if err := json.Unmarshal([]byte(md[metaConfig]), &i.Config); err != nil {
		return i, fmt.Errorf("%s: bad model configuration %s in its metadata: %v", path, metaConfig, err)
	}
	for k, v := range md {
		if !ownKeys[k] {
			if i.Extra == nil {
				i.Extra = map[string]string{}
			}
			i.Extra[k] = v
		}
	}
	i.Norm = DefaultNormalization()
	if i.Kind == KindEncoder {
		return i, nil
	}
	if err := json.Unmarshal([]byte(md[metaClasses]), &i.Classes); err != nil {
		return i, fmt.Errorf("%s: bad class list %s in its metadata: %v", path, metaClasses, err)
	}
	size, err := ParseSize(md[metaSize])
	if err != nil || size[0] == 0 {
		return i, fmt.Errorf("%s: bad input size %s %q in its metadata", path, metaSize, md[metaSize])
	}
	i.Size = size
	if s := md[metaSpacing]; s != "" && s != "null" {
		_ = json.Unmarshal([]byte(s), &i.Spacing) // informative only
	}
	if s := md[metaNorm]; s != "" {
		i.Norm = Normalization{}
		if err := json.Unmarshal([]byte(s), &i.Norm); err != nil {
			return i, fmt.Errorf("%s: bad normalisation %s in its metadata: %v", path, metaNorm, err)
		}
		if err := i.Norm.Check(i.Config.InChannels); err != nil {
			return i, fmt.Errorf("%s: %v", path, err)
		}
	}
	i.STN = md[metaSTN] == "true"
	i.Epoch, _ = strconv.Atoi(md[metaEpoch])
	i.ValDice, _ = strconv.ParseFloat(md[metaValDice], 64)
	return i, nil
}

// ReadInfo reads a model file's Info without loading its weights.
func ReadInfo(path string) (Info, error) {
	md, err := ckpt.ReadMetadata(path)
	if err != nil {
		return Info{}, err
	}
	return ParseInfo(path, md)
}

// Save writes a trained model's weights and info to path atomically, as a
// KindModel file.
func Save(path string, m nn.Node, info Info) error {
	if err := m.Err(); err != nil {
		return fmt.Errorf("models: %s: the model is broken: %w", path, err)
	}
	info.Kind = KindModel
	if info.Model == "" {
		return fmt.Errorf("models: %s: no model name in the info to save", path)
	}
	return ckpt.Save(path, m, info.Metadata())
}

// SaveEncoder writes a pretrained encoder to path atomically, as a
// KindEncoder file: state holds the encoder's entries of the network's
// state dict (under the network's keys), info names the network (Model,
// Config; Extra for anything else worth keeping, such as the losses).
func SaveEncoder(path string, state []nn.Named, info Info) error {
	info.Kind = KindEncoder
	if info.Model == "" {
		return fmt.Errorf("models: %s: no model name in the info to save", path)
	}
	if len(state) == 0 {
		return fmt.Errorf("models: %s: no encoder tensors to save", path)
	}
	md := info.Metadata()
	md[metaFormat] = "pt"
	return ckpt.WriteTensors(path, state, md)
}

// Build makes the model info describes, untrained: the registered model,
// wrapped in a spatial transformer when info.STN.
func Build(info Info) (nn.Module, error) {
	m, err := New(info.Model, info.Config)
	if err != nil || !info.STN {
		return m, err
	}
	w := NewWithSTN(info.Config.InChannels, m)
	if err := w.Err(); err != nil {
		w.Free()
		return nil, fmt.Errorf("models: %s with a spatial transformer: %w", info.Model, err)
	}
	return w, nil
}

// Load rebuilds the model a model file describes, loads its weights
// strictly and returns it in evaluation mode on the CPU, with its info. A
// training checkpoint's model loads too; a pretrained encoder does not (see
// LoadPretrained). Errors name the file and what is wrong with it.
func Load(path string) (nn.Module, Info, error) {
	f, err := ckpt.ReadFile(path)
	if err != nil {
		return nil, Info{}, err
	}
	info, err := ParseInfo(path, f.Metadata)
	if err != nil {
		return nil, info, fmt.Errorf("models: %w", err)
	}
	if info.Kind == KindEncoder {
		return nil, info, fmt.Errorf("models: %s holds a pretrained encoder of %s, not a trained model (fine-tune it: jmedseg train --model %s --pretrained %s)",
			path, info.Model, info.Model, path)
	}
	m, err := Build(info)
	if err != nil {
		return nil, info, fmt.Errorf("models: %s: %w", path, err)
	}
	prefix := ""
	if info.Kind == KindTraining {
		prefix = ckpt.ModelPrefix
	}
	if err := checkFinite(f, prefix); err != nil {
		m.Free()
		return nil, info, fmt.Errorf("models: %s: %w", path, err)
	}
	if _, err := ckpt.LoadFile(f, m, prefix, true); err != nil {
		m.Free()
		return nil, info, fmt.Errorf("models: %s: %w", path, err)
	}
	m.Eval()
	return m, info, nil
}

// LoadPretrained initialises m, a freshly built model, from the weights of
// a model file of the same layout, non-strictly: a pretrained encoder
// (KindEncoder, whose decoder keys are missing by design), a trained model
// or a plain state dict. When the file names its model, it must be model
// (m's registered name); check the rest of its Info with Mismatch first.
// m may be wrapped in a spatial transformer (WithSTN): a file with one
// loads into both, a file without one into the wrapped network. Keys that
// differ are reported, not fatal; shapes that differ, a file none of whose
// tensors fit, or a weight that is NaN or infinite are errors, and then
// nothing is loaded.
func LoadPretrained(path string, m nn.Node, model string) (Info, *nn.LoadReport, error) {
	f, err := ckpt.ReadFile(path)
	if err != nil {
		return Info{}, nil, err
	}
	info, ierr := ParseInfo(path, f.Metadata)
	prefix := ""
	target := m
	if w, ok := m.(*WithSTN); ok && (ierr != nil || !info.STN) {
		target = w.Net
	}
	if ierr == nil {
		if !strings.EqualFold(info.Model, model) {
			return info, nil, fmt.Errorf("models: %s holds %s weights, not %s", path, info.Model, model)
		}
		if info.Kind == KindTraining {
			prefix = ckpt.ModelPrefix
		}
		if _, wrapped := target.(*WithSTN); info.STN && !wrapped {
			prefix += "net."
		}
	} else {
		info = Info{} // a plain state dict: no jmedseg metadata
	}
	if err := checkFinite(f, prefix); err != nil {
		return info, nil, fmt.Errorf("models: %s: %w", path, err)
	}
	rep, err := ckpt.LoadFile(f, target, prefix, false)
	if err != nil {
		var le *nn.LoadError
		if errors.As(err, &le) && len(le.Report.Mismatched) > 0 {
			mm := le.Report.Mismatched[0]
			return info, rep, fmt.Errorf("models: %s: %d of its tensors have other shapes than this model's (the first, %q, is %v there and %v here): it is another configuration of the model; nothing was loaded",
				path, len(le.Report.Mismatched), mm.Name, mm.Got, mm.Want)
		}
		return info, rep, fmt.Errorf("models: %s: %w", path, err)
	}
	if n := len(target.StateDict()); len(rep.Missing) == n && n > 0 {
		return info, rep, fmt.Errorf("models: %s: none of its tensors fits this %s (%d tensors, none with this model's key names%s); nothing was loaded",
			path, model, len(f.Tensors), firstKey(f))
	}
	return info, rep, nil
}

func firstKey(f *safetensors.File) string {
	if len(f.Tensors) == 0 {
		return ""
	}
	return fmt.Sprintf(", e.g. %q", f.Tensors[0].Name)
}

// CheckFinite refuses a file whose floating-point tensors under prefix
// ("" for all) hold a NaN or an infinity, naming the first such tensor.
func CheckFinite(f *safetensors.File, prefix string) error { return checkFinite(f, prefix) }

// checkFinite refuses a file whose floating-point tensors (those under
// prefix) hold a NaN or an infinity, naming the first such tensor.
func checkFinite(f *safetensors.File, prefix string) error {
	for i := range f.Tensors {
		st := &f.Tensors[i]
		if !strings.HasPrefix(st.Name, prefix) {
			continue
		}
		var nan, inf int
		count := func(x float64) {
			if math.IsNaN(x) {
				nan++
			} else if math.IsInf(x, 0) {
				inf++
			}
		}
		switch st.DType {
		case safetensors.F64:
			for j := 0; j+8 <= len(st.Data); j += 8 {
				count(math.Float64frombits(binary.LittleEndian.Uint64(st.Data[j:])))
			}
		case safetensors.F32:
			for j := 0; j+4 <= len(st.Data); j += 4 {
				count(float64(math.Float32frombits(binary.LittleEndian.Uint32(st.Data[j:]))))
			}
		case safetensors.F16, safetensors.BF16:
			v, err := st.Float32()
			if err != nil {
				return err
			}
			for _, x := range v {
				count(float64(x))
			}
		default:
			continue
		}
		if nan+inf > 0 {
			return fmt.Errorf("tensor %q has %d NaN and %d infinite value(s): the weights are broken (a diverged run?); nothing was loaded", st.Name, nan, inf)
		}
	}
	return nil
}

// Describe says in a few words which model info describes, e.g. "unet
// width 16, 3 input channels, 2 classes, without STN" (an encoder file:
// "an encoder of unet width 16, 3 input channels").
func (i Info) Describe() string {
	ch := "channels"
	if i.Config.InChannels == 1 {
		ch = "channel"
	}
	s := fmt.Sprintf("%s width %d, %d input %s", i.Model, i.Config.Width, i.Config.InChannels, ch)
	if i.Kind == KindEncoder {
		return "an encoder of " + s
	}
	stn := "without STN"
	if i.STN {
		stn = "with STN"
	}
	return fmt.Sprintf("%s, %d classes, %s", s, i.Config.Classes, stn)
}

// Mismatch compares the Info of a model file (have) with the model a run
// builds (want) in all that shapes the weights: model, width, input
// channels and, unless have is an encoder, classes and spatial
// transformer. It returns "" when they agree, else one sentence saying
// what each is and what differs.
func Mismatch(have, want Info) string {
	var diff []string
	if !strings.EqualFold(have.Model, want.Model) {
		diff = append(diff, fmt.Sprintf("the model (%s, not %s)", have.Model, want.Model))
	}
	if have.Config.Width != want.Config.Width {
		diff = append(diff, fmt.Sprintf("the width (%d, not %d: --width)", have.Config.Width, want.Config.Width))
	}
	if have.Config.InChannels != want.Config.InChannels {
		diff = append(diff, fmt.Sprintf("the input channels (%d, not %d)", have.Config.InChannels, want.Config.InChannels))
	}
	if have.Kind != KindEncoder {
		if have.Config.Classes != want.Config.Classes {
			diff = append(diff, fmt.Sprintf("the classes (%d, not %d)", have.Config.Classes, want.Config.Classes))
		}
		if have.STN != want.STN {
			flag := "add --stn"
			if !have.STN {
				flag = "drop --stn"
			}
			diff = append(diff, "the spatial transformer ("+flag+")")
		}
	}
	if len(diff) == 0 {
		return ""
	}
	return fmt.Sprintf("this checkpoint is %s, this run builds %s: %s differ%s", have.Describe(), want.Describe(),
		strings.Join(diff, " and "), map[bool]string{true: "s", false: ""}[len(diff) == 1])
}

// ParseSize parses an input size "H", "HxW" or "H,W"; "" is the zero size.
func ParseSize(s string) ([2]int, error) {
	if s == "" {
		return [2]int{}, nil
	}
	parts := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == 'x' || r == ',' })
	if len(parts) == 1 {
		parts = append(parts, parts[0])
	}
	if len(parts) != 2 {
		return [2]int{}, fmt.Errorf("bad size %q: want H or HxW", s)
	}
	var out [2]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v <= 0 {
			return [2]int{}, fmt.Errorf("bad size %q: want H or HxW", s)
		}
		out[i] = v
	}
	return out, nil
}
