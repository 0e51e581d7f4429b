package report

import (
	"encoding/json"
	"math"

	"github.com/jmedseg/jmedseg/metric"
)

// History is a run's epochs in order.
type History []Epoch

// Epoch is one epoch's figures. Undefined values (e.g. no validation
// split) are NaN and written to JSON as null.
type Epoch struct {
	Epoch     int     `json:"epoch"`
	TrainLoss float64 `json:"train_loss"`
	ValLoss   float64 `json:"val_loss"`
	// ValDice and ValIoU are the validation foreground means.
	ValDice         float64 `json:"val_dice"`
	ValIoU          float64 `json:"val_iou"`
	LR              float64 `json:"lr"`
	Seconds         float64 `json:"seconds"`
	ImagesPerSecond float64 `json:"images_per_second"`
}

// epochJSON is Epoch with NaN-safe numbers.
type epochJSON struct {
	Epoch           int          `json:"epoch"`
	TrainLoss       metric.Score `json:"train_loss"`
	ValLoss         metric.Score `json:"val_loss"`
	ValDice         metric.Score `json:"val_dice"`
	ValIoU          metric.Score `json:"val_iou"`
	LR              metric.Score `json:"lr"`
	Seconds         metric.Score `json:"seconds"`
	ImagesPerSecond metric.Score `json:"images_per_second"`
}

// MarshalJSON writes NaN and infinite values as null.
func (e Epoch) MarshalJSON() ([]byte, error) {
	return json.Marshal(epochJSON{e.Epoch, metric.Score(e.TrainLoss), metric.Score(e.ValLoss),
		metric.Score(e.ValDice), metric.Score(e.ValIoU), metric.Score(e.LR),
		metric.Score(e.Seconds), metric.Score(e.ImagesPerSecond)})
}

// UnmarshalJSON reads null (or a missing field) as NaN.
func (e *Epoch) UnmarshalJSON(b []byte) error {
	nan := metric.Score(math.NaN())
	j := epochJSON{TrainLoss: nan, ValLoss: nan, ValDice: nan, ValIoU: nan, LR: nan, Seconds: nan, ImagesPerSecond: nan}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = Epoch{j.Epoch, float64(j.TrainLoss), float64(j.ValLoss), float64(j.ValDice), float64(j.ValIoU),
		float64(j.LR), float64(j.Seconds), float64(j.ImagesPerSecond)}
	return nil
}

// Best is the index in h of the epoch with the highest validation Dice
// (the earliest on ties), or -1 when no epoch has one.
func (h History) Best() int {
	best := -1
	for i, e := range h {
		if !math.IsNaN(e.ValDice) && (best < 0 || e.ValDice > h[best].ValDice) {
			best = i
		}
	}
	return best
}
