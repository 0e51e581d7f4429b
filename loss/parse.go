package loss

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Parse builds a loss from a spec: terms joined by "+", each a name with
// optional options in parentheses and an optional ":weight" (see Help for
// every name and option):
//
//	ce                      cross-entropy
//	ce(weight=0.3/0.7,ignore=255,smoothing=0.1)
//	iou, dice               soft IoU / Dice (reference form: pooled over all classes and the batch, smooth 1)
//	dice(persample,perclass,nobg,smooth=1e-5,ignore=255)
//	tversky(alpha=0.3,beta=0.7)
//	focal(gamma=2,alpha=0.25)  balancing α: foreground α, background 1−α
//	focal(alpha=0.1/0.3/0.6)   one α per class; scale=0.5 a plain factor
//	dice(sigmoid), focal(sigmoid), bce   the multi-label (one sigmoid per channel) forms
//	dualterm(lambda=1,k=0.2)   the shape-aware Dual-Term loss
//	ce:0.8+iou:0.2          a weighted sum
//
// A single term with weight 1 is returned as itself rather than a Sum.
//
// Every number is checked where it is parsed, and an error names the term
// and the problem: a term's weight is positive and finite, class weights
// are finite, non-negative and not all zero, smoothing is in [0, 1), focal
// gamma is at least 0, each focal alpha in [0, 1] and scale above 0,
// Tversky's alpha and beta at least 0 and not both 0, a Dice/IoU/Tversky
// smooth is at least 0, dualterm's lambda at least 0 and k above 0, and an
// ignore index is a label (0 or more). The class count is not known here:
// CheckClasses compares a loss with the data's (one class weight or focal
// alpha per class).
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
	case "tversky":
		l, err = parseRegion(Tversky, opts)
	case "focal":
		l, err = parseFocal(opts)
	case "bce":
		l, err = parseBCE(opts)
	case "dualterm":
		l, err = parseDualTerm(opts)
	default:
		return Term{}, fmt.Errorf("unknown loss %q (want %s)", name, strings.Join(Names, ", "))
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
	l := Region{Kind: kind, Smooth: r.float("smooth", 1), PerClass: r.flag("perclass"), PerSample: r.flag("persample"),
		NoBackground: r.flag("nobg"), Sigmoid: r.flag("sigmoid"), IgnoreIndex: r.ignore()}
	r.check(l.Smooth >= 0, "smooth=%g: want 0 or more", l.Smooth)
	if kind == Tversky {
		l.Alpha, l.Beta = r.float("alpha", 0.3), r.float("beta", 0.7)
		r.check(l.Alpha >= 0, "alpha=%g: want 0 or more (the weight of false positives)", l.Alpha)
		r.check(l.Beta >= 0, "beta=%g: want 0 or more (the weight of false negatives)", l.Beta)
		r.check(l.Alpha+l.Beta > 0, "alpha=0 and beta=0: the ratio is 1 whatever the prediction; want one above 0")
	}
	return l, r.done()
}

func parseFocal(opts map[string]string) (Loss, error) {
	r := optReader{opts: opts}
	l := Focal{Gamma: r.float("gamma", 2), Alpha: []float64{0.5}, Scale: r.float("scale", 1), Sigmoid: r.flag("sigmoid"), IgnoreIndex: r.ignore()}
	r.check(l.Gamma >= 0, "gamma=%g: want 0 or more", l.Gamma)
	r.check(l.Scale > 0, "scale=%g: want a factor above 0 (0 makes the loss zero)", l.Scale)
	if v, ok := opts["alpha"]; ok {
		delete(opts, "alpha")
		a, err := parseAlpha(v)
		if err != nil {
			return nil, err
		}
		l.Alpha = a
	}
	return l, r.done()
}

// parseAlpha reads focal's balancing alpha: "none", one value in [0, 1]
// or one per class joined by "/".
func parseAlpha(v string) ([]float64, error) {
	if v == "none" {
		return nil, nil
	}
	var out []float64
	for _, f := range strings.Split(v, "/") {
		x, err := strconv.ParseFloat(f, 64)
		if err != nil || !(x >= 0 && x <= 1) {
			return nil, fmt.Errorf("alpha=%s: %q is not a value in [0, 1] (alpha balances the classes: one α for the foreground, 1−α for the background, or one per class joined by /; "+
				"a plain factor on the loss is scale=)", v, f)
		}
		out = append(out, x)
	}
	return out, nil
}

func parseBCE(opts map[string]string) (Loss, error) {
	r := optReader{opts: opts}
	l := BCE{IgnoreIndex: r.ignore()}
	return l, r.done()
}

func parseDualTerm(opts map[string]string) (Loss, error) {
	r := optReader{opts: opts}
	l := DualTerm{Lambda: r.float("lambda", 1), K: r.float("k", 0.2), Smooth: r.float("smooth", 1), IgnoreIndex: r.ignore()}
	r.check(l.Lambda >= 0, "lambda=%g: want 0 or more (the weight of the shape term)", l.Lambda)
	r.check(l.K > 0, "k=%g: want a smoothness above 0", l.K)
	r.check(l.Smooth >= 0, "smooth=%g: want 0 or more", l.Smooth)
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
	case BCE:
		return l.IgnoreIndex
	case DualTerm:
		return l.IgnoreIndex
	}
	return NoIgnore
}

// CheckClasses checks a loss against the number of classes of the data it
// will train on: one class weight (ce) or alpha (focal) per class. It returns the void label:
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
		if f, ok := t.(Focal); ok && len(f.Alpha) > 1 && len(f.Alpha) != classes {
			return NoIgnore, fmt.Errorf("%s: %d class alphas for %d classes (give one per class, background first, or one α for the foreground)", f, len(f.Alpha), classes)
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
