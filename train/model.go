package train

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/sas"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// Metadata keys of a model checkpoint.
const (
	metaModel    = "jmedseg.model"
	metaConfig   = "jmedseg.config"
	metaClasses  = "jmedseg.classes"
	metaSize     = "jmedseg.size"
	metaEpoch    = "jmedseg.epoch"
	metaValDice  = "jmedseg.val_foreground_dice"
	metaSpacing  = "jmedseg.pixel_spacing_mm"
	metaHistory  = "jmedseg.history"
	metaOptions  = "jmedseg.options"
	metaBest     = "jmedseg.best"
	metaBatchPos = "jmedseg.batch_in_epoch"
	metaSTN      = "jmedseg.stn"
)

// ModelInfo is what a model checkpoint records besides its weights: enough
// to rebuild the model and feed it the way it was trained.
type ModelInfo struct {
	Model   string        `json:"model"`
	Config  models.Config `json:"config"`
	Classes []string      `json:"classes"`
	Size    [2]int        `json:"size"`          // H, W the model was trained at
	STN     bool          `json:"stn,omitempty"` // wrapped in a spatial transformer
	Spacing []float64     `json:"pixel_spacing_mm,omitempty"`
	Epoch   int           `json:"epoch"`
	ValDice float64       `json:"val_foreground_dice"`
}

func (mi ModelInfo) meta() map[string]string {
	cfg, _ := json.Marshal(mi.Config)
	cls, _ := json.Marshal(mi.Classes)
	sp, _ := json.Marshal(mi.Spacing)
	return map[string]string{
		metaModel: mi.Model, metaConfig: string(cfg), metaClasses: string(cls),
		metaSize: fmt.Sprintf("%dx%d", mi.Size[0], mi.Size[1]), metaSpacing: string(sp),
		metaEpoch: strconv.Itoa(mi.Epoch), metaValDice: strconv.FormatFloat(mi.ValDice, 'g', -1, 64),
		metaSTN: strconv.FormatBool(mi.STN),
	}
}

func parseInfo(path string, md map[string]string) (ModelInfo, error) {
	var mi ModelInfo
	mi.Model = md[metaModel]
	if mi.Model == "" {
		return mi, fmt.Errorf("%s: not a jmedseg model checkpoint (no %s in its metadata)", path, metaModel)
	}
	if err := json.Unmarshal([]byte(md[metaConfig]), &mi.Config); err != nil {
		return mi, fmt.Errorf("%s: bad model configuration in metadata: %v", path, err)
	}
	if err := json.Unmarshal([]byte(md[metaClasses]), &mi.Classes); err != nil {
		return mi, fmt.Errorf("%s: bad class list in metadata: %v", path, err)
	}
	size, err := ParseSize(md[metaSize])
	if err != nil {
		return mi, fmt.Errorf("%s: %v", path, err)
	}
	mi.Size = size
	if s := md[metaSpacing]; s != "" && s != "null" {
		_ = json.Unmarshal([]byte(s), &mi.Spacing) // informative only
	}
	mi.STN = md[metaSTN] == "true"
	mi.Epoch, _ = strconv.Atoi(md[metaEpoch])
	mi.ValDice, _ = strconv.ParseFloat(md[metaValDice], 64)
	return mi, nil
}

// SaveModel writes the model's weights and info to path atomically.
func SaveModel(path string, m nn.Node, mi ModelInfo) error {
	return ckpt.Save(path, m, mi.meta())
}

// LoadModel rebuilds the model a checkpoint describes and loads its weights
// strictly. Errors name the file and what is wrong with it.
func LoadModel(path string) (nn.Module, ModelInfo, error) {
	md, err := ckpt.ReadMetadata(path)
	if err != nil {
		return nil, ModelInfo{}, err
	}
	mi, err := parseInfo(path, md)
	if err != nil {
		return nil, mi, err
	}
	m, err := Build(mi)
	if err != nil {
		return nil, mi, fmt.Errorf("%s: %w", path, err)
	}
	if _, _, err := ckpt.Load(path, m, true); err != nil {
		m.Free()
		return nil, mi, err
	}
	m.Eval()
	return m, mi, nil
}

// Build makes the model mi describes, untrained.
func Build(mi ModelInfo) (nn.Module, error) {
	m, err := models.New(mi.Model, mi.Config)
	if err != nil || !mi.STN {
		return m, err
	}
	w := sas.NewWithSTN(mi.Config.InChannels, m)
	if err := w.Err(); err != nil {
		w.Free()
		return nil, err
	}
	return w, nil
}
