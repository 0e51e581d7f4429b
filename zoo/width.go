package zoo

import (
	"fmt"
	"math"

	"github.com/jmedseg/jmedseg/models"
)

// ScaleWidth is the protocol's width rule: max(1, round(def × scale)), or
// 0 (the model's own default) when the model declares no default width
// (def ≤ 0).
func ScaleWidth(def int64, scale float64) int64 {
	if def <= 0 {
		return 0
	}
	return max(1, int64(math.Round(float64(def)*scale)))
}

// WidthRule is a zoo's width rule: ScaleWidth by Scale, then at least
// Min (but never above the reference width), so that models with a small
// reference width are not scaled to nothing.
type WidthRule struct {
	Scale float64
	Min   int64
}

// Of is the rule's width for a reference width def: max(Min,
// ScaleWidth(def, Scale)), at most def; 0 when def ≤ 0.
func (r WidthRule) Of(def int64) int64 {
	w := ScaleWidth(def, r.Scale)
	if w <= 0 {
		return 0
	}
	return min(def, max(w, r.Min))
}

// WidthCandidates are the widths ResolveWidth tries, in order: w, then w
// rounded up to a multiple of 2, 4, 8, … (each only when larger than the
// one before and at most def), then def itself. w ≤ 0 (the default) gives
// just [0].
func WidthCandidates(w, def int64) []int64 {
	if w <= 0 {
		return []int64{0}
	}
	out := []int64{w}
	last := w
	for m := int64(2); m <= max(def, w); m *= 2 {
		c := (w + m - 1) / m * m
		if c > last && c <= def {
			out = append(out, c)
			last = c
		}
	}
	if def > last {
		out = append(out, def)
	}
	return out
}

// Width is the width a model trains at in a zoo.
type Width struct {
	// Width is the base width passed to the model; 0 is its default.
	Width int64 `json:"width"`
	// Scaled is what the WidthRule gave, before any rounding up.
	Scaled int64 `json:"scaled_width"`
	// Params is the trainable parameter count at Width for the data's
	// channels and classes.
	Params int64 `json:"params"`
	// Note says why Width is not Scaled, when it is not.
	Note string `json:"note,omitempty"`
}

// ResolveWidth builds the model (spec.Build) at the widths
// WidthCandidates gives for the rule's width of spec's default width, with
// cfg's channels and classes, and returns the first it accepts with its
// parameter count. When none builds, the error is the one for the rule's
// width.
func ResolveWidth(spec models.Spec, rule WidthRule, cfg models.Config) (Width, error) {
	scaled := rule.Of(spec.DefaultWidth)
	var first error
	for _, w := range WidthCandidates(scaled, spec.DefaultWidth) {
		c := cfg
		c.Width = w
		c = spec.Resolve(c)
		m, err := spec.Build(c)
		if err == nil {
			err = m.Err()
		}
		if err != nil {
			if m != nil {
				m.Free()
			}
			if first == nil {
				first = fmt.Errorf("models: %s: %w", spec.Name, err)
			}
			continue
		}
		n := m.NumParams()
		m.Free()
		out := Width{Width: c.Width, Scaled: scaled, Params: n}
		if first != nil {
			out.Note = fmt.Sprintf("width %d, not %d: %v", out.Width, scaled, first)
		}
		return out, nil
	}
	return Width{Scaled: scaled}, fmt.Errorf("no width from %d up to %d builds: %w", scaled, spec.DefaultWidth, first)
}
