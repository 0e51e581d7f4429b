package loss

import (
	"fmt"
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
func Parse(spec string) (Loss, error) {
	spec = strings.ReplaceAll(strings.TrimSpace(spec), " ", "")
	if spec == "" {
		return nil, fmt.Errorf("loss: empty spec")
	}
	var sum Sum
	for _, part := range splitTop(spec, '+') {
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
		if err != nil || w < 0 {
			return Term{}, fmt.Errorf("bad weight %q in %q", s[i+1:], s)
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
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("option %s=%q is not a number", k, v)
	}
	return f
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
	l := CrossEntropy{IgnoreIndex: r.int("ignore", NoIgnore), LabelSmoothing: r.float("smoothing", 0)}
	if w, ok := opts["weight"]; ok {
		delete(opts, "weight")
		for _, f := range strings.Split(w, "/") {
			x, err := strconv.ParseFloat(f, 64)
			if err != nil || x < 0 {
				return nil, fmt.Errorf("bad class weight %q", f)
			}
			l.Weight = append(l.Weight, x)
		}
	}
	return l, r.done()
}

func parseRegion(kind Overlap, opts map[string]string) (Loss, error) {
	r := optReader{opts: opts}
	l := Region{Kind: kind, Smooth: r.float("smooth", 1), PerClass: r.flag("perclass"), NoBackground: r.flag("nobg"), IgnoreIndex: r.int("ignore", NoIgnore)}
	return l, r.done()
}

func parseFocal(opts map[string]string) (Loss, error) {
	r := optReader{opts: opts}
	l := Focal{Gamma: r.float("gamma", 2), Alpha: r.float("alpha", 0.5), IgnoreIndex: r.int("ignore", NoIgnore)}
	return l, r.done()
}
