package loss

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Parse builds a loss from a spec: terms joined by "+", each a name with
// optional options in parentheses and an optional ":weight".
//
//	ce                      cross-entropy
//	ce(weight=0.3/0.7,ignore=255,smoothing=0.1)
//	iou, dice               soft IoU / Dice (reference form: all classes, smooth 1)
//	dice(perclass,nobg,smooth=1e-5,ignore=255)
//	focal(gamma=2,alpha=0.5)
//	ce:0.8+iou:0.2          a weighted sum
//
// A single term with weight 1 is returned as itself rather than a Sum.
//
// Every number is checked where it is parsed: a term's weight is positive
// and finite, class weights are finite, non-negative and not all zero,
// smoothing is in [0, 1), focal gamma is at least 0 and alpha in (0, 1],
// a Dice/IoU smooth is at least 0, and an ignore index is a label (0 or
// more). The class count is not known here: CheckClasses compares a loss
// with the data's.
func Parse(spec string) (Loss, error) {
	spec = strings.ReplaceAll(strings.TrimSpace(spec), " ", "")
	if spec == "" {
		return nil, fmt.Errorf("loss: empty spec")
	}
	var sum Sum
	for _, part := range splitTop(spec, '+') {
		if part == "" {
			return nil, fmt.Errorf("loss %q: an empty term (a stray '+')", spec)
		}
		t, err := parseTerm(part)
		if err != nil {
			return nil, fmt.Errorf("loss %q: %w", spec, err)
		}
		sum = append(sum, t)
	}
	if len(sum) == 1 && sum[0].Weight == 1 {
		return sum[0].Loss, nil
	}
	return sum, nil
}

// splitTop splits s at sep outside parentheses.
func splitTop(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case sep:
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func parseTerm(s string) (Term, error) {
	weight := 1.0
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.Contains(s[i:], ")") {
		w, err := strconv.ParseFloat(s[i+1:], 64)
		switch {
		case err != nil || math.IsNaN(w) || math.IsInf(w, 0):
			return Term{}, fmt.Errorf("bad weight %q in %q: want a positive finite number", s[i+1:], s)
		case w <= 0:
			return Term{}, fmt.Errorf("bad weight %q in %q: want a positive number (a weight of 0 or less trains on nothing or against the loss)", s[i+1:], s)
		}
		weight, s = w, s[:i]
	}
	name, optStr := s, ""
	if i := strings.IndexByte(s, '('); i >= 0 {
		if !strings.HasSuffix(s, ")") {
			return Term{}, fmt.Errorf("unclosed options in %q", s)
		}
		name, optStr = s[:i], s[i+1:len(s)-1]
	}
	opts := map[string]string{}
	if optStr != "" {
		for _, kv := range strings.Split(optStr, ",") {
			k, v, _ := strings.Cut(kv, "=")
			if _, dup := opts[k]; dup {
				return Term{}, fmt.Errorf("%s: option %q given twice", name, k)
			}
			opts[k] = v
		}
	}
	var l Loss
	var err error
	switch strings.ToLower(name) {
	case "ce", "crossentropy":
		l, err = parseCE(opts)
	case "iou", "jaccard":
		l, err = parseRegion(IoU, opts)
	case "dice":
		l, err = parseRegion(Dice, opts)
	case "focal":
		l, err = parseFocal(opts)
	default:
		return Term{}, fmt.Errorf("unknown loss %q (want ce, iou, dice or focal)", name)
	}
	if err != nil {
		return Term{}, fmt.Errorf("%s: %w", name, err)
	}
	return Term{Weight: weight, Loss: l}, nil
}

type optReader struct {
	opts map[string]string
	err  error
}

func (r *optReader) float(k string, def float64) float64 {
	v, ok := r.opts[k]
	if !ok {
		return def
	}
	delete(r.opts, k)
	f, err := strconv.ParseFloat(v, 64)
	switch {
	case r.err != nil:
	case err != nil && !errors.Is(err, strconv.ErrRange):
		r.err = fmt.Errorf("option %s=%q is not a number", k, v)
	case err != nil || math.IsNaN(f) || math.IsInf(f, 0):
		r.err = fmt.Errorf("option %s=%q: want a finite number", k, v)
	}
	return f
}

// check records an error when ok is false and none was recorded yet.
func (r *optReader) check(ok bool, format string, a ...any) {
	if !ok && r.err == nil {
		r.err = fmt.Errorf(format, a...)
	}
}

// ignore reads the ignore option: a label, 0 or more.
func (r *optReader) ignore() int64 {
	v, ok := r.opts["ignore"]
	n := r.int("ignore", NoIgnore)
	if ok && r.err == nil && (n < 0 || n > math.MaxInt32) {
		r.err = fmt.Errorf("option ignore=%s: want a mask label from 0 to %d", v, math.MaxInt32)
	}
	return n
}

func (r *optReader) int(k string, def int64) int64 {
	v, ok := r.opts[k]
	if !ok {
		return def
	}
	delete(r.opts, k)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("option %s=%q is not an integer", k, v)
	}
	return n
}

func (r *optReader) flag(k string) bool {
	v, ok := r.opts[k]
	if !ok {
		return false
	}
	delete(r.opts, k)
	if v != "" && v != "true" && r.err == nil {
		r.err = fmt.Errorf("option %s takes no value", k)
	}
	return true
}

func (r *optReader) done() error {
	if r.err != nil {
		return r.err
	}
	for k := range r.opts {
		return fmt.Errorf("unknown option %q", k)
	}
	return nil
}

func parseCE(opts map[string]string) (Loss, error) {
	r := optReader{opts: opts}
	l := CrossEntropy{IgnoreIndex: r.ignore(), LabelSmoothing: r.float("smoothing", 0)}
	r.check(l.LabelSmoothing >= 0 && l.LabelSmoothing < 1, "smoothing=%g: want a value in [0, 1)", l.LabelSmoothing)
	if w, ok := opts["weight"]; ok {
		delete(opts, "weight")
		positive := false
		for _, f := range strings.Split(w, "/") {
			x, err := strconv.ParseFloat(f, 64)
			if err != nil || x < 0 || math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("bad class weight %q in weight=%s: want a finite number, 0 or more, per class", f, w)
			}
			positive = positive || x > 0
			l.Weight = append(l.Weight, x)
		}
		if !positive {
			return nil, fmt.Errorf("bad class weights weight=%s: all zero (no pixel would count)", w)
		}
	}
	return l, r.done()
}

func parseRegion(kind Overlap, opts map[string]string) (Loss, error) {
	r := optReader{opts: opts}
	l := Region{Kind: kind, Smooth: r.float("smooth", 1), PerClass: r.flag("perclass"), NoBackground: r.flag("nobg"), IgnoreIndex: r.ignore()}
	r.check(l.Smooth >= 0, "smooth=%g: want 0 or more", l.Smooth)
	return l, r.done()
}

func parseFocal(opts map[string]string) (Loss, error) {
	r := optReader{opts: opts}
	l := Focal{Gamma: r.float("gamma", 2), Alpha: r.float("alpha", 0.5), IgnoreIndex: r.ignore()}
	r.check(l.Gamma >= 0, "gamma=%g: want 0 or more", l.Gamma)
	r.check(l.Alpha > 0 && l.Alpha <= 1, "alpha=%g: want a value in (0, 1] (0 makes the loss zero)", l.Alpha)
	return l, r.done()
}

// terms lists the losses l is made of.
func terms(l Loss) []Loss {
	if s, ok := l.(Sum); ok {
		var out []Loss
		for _, t := range s {
			out = append(out, terms(t.Loss)...)
		}
		return out
	}
	return []Loss{l}
}

func ignoreOf(l Loss) int64 {
	switch l := l.(type) {
	case CrossEntropy:
		return l.IgnoreIndex
	case Region:
		return l.IgnoreIndex
	case Focal:
		return l.IgnoreIndex
	}
	return NoIgnore
}

// CheckClasses checks a loss against the number of classes of the data it
// will train on: one class weight per class. It returns the void label:
// an ignore index outside [0, classes) (such as 255) that masks may then
// hold, whose pixels count for nothing, or NoIgnore when there is none.
// An ignore index inside [0, classes) ignores that class in the loss only.
// Terms that name different void labels are an error.
func CheckClasses(l Loss, classes int) (void int64, err error) {
	void = NoIgnore
	for _, t := range terms(l) {
		if ce, ok := t.(CrossEntropy); ok && ce.Weight != nil && len(ce.Weight) != classes {
			return NoIgnore, fmt.Errorf("%s: %d class weights for %d classes (give one per class, background first)", ce, len(ce.Weight), classes)
		}
		ig := ignoreOf(t)
		if ig == NoIgnore || (ig >= 0 && ig < int64(classes)) {
			continue
		}
		if void != NoIgnore && void != ig {
			return NoIgnore, fmt.Errorf("%s: ignore=%d, another term ignores %d: masks can hold one label outside the %d classes", l, ig, void, classes)
		}
		void = ig
	}
	return void, nil
}

// Void returns the void label of l for classes classes (see CheckClasses),
// or -1 when there is none or l does not fit them.
func Void(l Loss, classes int) int64 {
	v, err := CheckClasses(l, classes)
	if err != nil || v == NoIgnore {
		return -1
	}
	return v
}
