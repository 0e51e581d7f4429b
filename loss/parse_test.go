package loss_test

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/loss"
)

// Issue 12: every number in a spec is checked where it is parsed, with an
// error naming it, not at batch 1 inside libtorch or never.
func TestParseRejectsBadNumbers(t *testing.T) {
	tests := []struct{ spec, err string }{
		{"ce:0", "bad weight"},
		{"ce:0+dice", "bad weight"},
		{"ce:-0.5", "bad weight"},
		{"ce:NaN", "bad weight"},
		{"ce:nan+iou", "bad weight"},
		{"ce:Inf", "bad weight"},
		{"ce:+Inf", "bad weight"},
		{"ce:1e400", "bad weight"},
		{"ce(smoothing=2)", "smoothing=2"},
		{"ce(smoothing=1)", "smoothing=1"},
		{"ce(smoothing=-1)", "smoothing=-1"},
		{"ce(smoothing=NaN)", "smoothing"},
		{"ce(weight=0.3/NaN)", "bad class weight"},
		{"ce(weight=Inf/1)", "bad class weight"},
		{"ce(weight=-1/1)", "bad class weight"},
		{"ce(weight=0/0)", "all zero"},
		{"ce(ignore=-1)", "ignore=-1"},
		{"ce(ignore=-100)", "ignore=-100"},
		{"dice(ignore=99999999999)", "ignore="},
		{"focal(alpha=5)", "alpha=5"},
		{"focal(alpha=-0.5)", "alpha=-0.5"},
		{"focal(alpha=1.5)", "not a value in [0, 1]"},
		{"focal(alpha=NaN)", "alpha"},
		{"focal(alpha=0.2/x)", `"x" is not a value in [0, 1]`},
		{"focal(alpha=0.2/1.1/0.3)", `"1.1" is not a value in [0, 1]`},
		{"focal(alpha=)", "alpha="},
		{"focal(alpha=0.5,alpha=0.25)", "twice"},
		{"focal(alpha=2)", "a plain factor on the loss is scale="},
		{"focal(scale=0)", "scale=0"},
		{"focal(scale=-1)", "scale=-1"},
		{"focal(scale=Inf)", "scale"},
		{"focal(sigmoid=1)", "takes no value"},
		{"tversky(alpha=-0.1)", "alpha=-0.1: want 0 or more"},
		{"tversky(beta=-1)", "beta=-1: want 0 or more"},
		{"tversky(alpha=0,beta=0)", "alpha=0 and beta=0"},
		{"tversky(alpha=NaN)", "alpha"},
		{"tversky(smooth=-1)", "smooth=-1"},
		{"dice(alpha=0.3)", `unknown option "alpha"`},
		{"bce(gamma=2)", `unknown option "gamma"`},
		{"bce(ignore=-3)", "ignore=-3"},
		{"dualterm(lambda=-1)", "lambda=-1"},
		{"dualterm(k=0)", "k=0: want a smoothness above 0"},
		{"dualterm(k=-0.2)", "k=-0.2"},
		{"dualterm(smooth=-1)", "smooth=-1"},
		{"dualterm(nobg)", `unknown option "nobg"`},
		{"focal(gamma=-1)", "gamma=-1"},
		{"focal(gamma=Inf)", "gamma"},
		{"dice(smooth=-1)", "smooth=-1"},
		{"iou(smooth=NaN)", "smooth"},
		{"dice(smooth=1e999)", "smooth"},
		{"ce(smoothing=0.1,smoothing=0.2)", "twice"},
		{"ce++dice", "empty term"},
		{"ce+", "empty term"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			l, err := loss.Parse(tc.spec)
			require.Error(t, err, "parsed as %v", l)
			assert.Contains(t, err.Error(), tc.err)
			assert.Contains(t, err.Error(), tc.spec, "the error quotes the spec")
			if name, _, ok := strings.Cut(tc.spec, "("); ok {
				assert.Contains(t, err.Error(), name+":", "the error names the term")
			}
		})
	}
	// The edges that stay valid.
	for _, spec := range []string{"ce(smoothing=0)", "ce(smoothing=0.999)", "ce(weight=0/1)", "focal(alpha=1,gamma=0)",
		"focal(alpha=0)", "focal(alpha=0/1)", "tversky(alpha=0)", "tversky(beta=0)", "tversky(alpha=2,beta=3)", "dualterm(lambda=0)",
		"dice(smooth=0)", "ce(ignore=0)", "ce(ignore=255)+dice(ignore=255)"} {
		_, err := loss.Parse(spec)
		assert.NoError(t, err, spec)
	}
}

// The class count is known once the data is: a class-weight list of the
// wrong length is an error before training, and an ignore index outside
// the classes is the void label the loader must accept.
func TestCheckClasses(t *testing.T) {
	parse := func(s string) loss.Loss {
		l, err := loss.Parse(s)
		require.NoError(t, err)
		return l
	}
	_, err := loss.CheckClasses(parse("ce(weight=0.2/0.3/0.5)+dice"), 2)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "3 class weights for 2 classes")
	_, err = loss.CheckClasses(parse("ce(weight=1)"), 2)
	assert.ErrorContains(t, err, "1 class weights for 2 classes")

	v, err := loss.CheckClasses(parse("ce(weight=0.3/0.7)"), 2)
	require.NoError(t, err)
	assert.Equal(t, int64(loss.NoIgnore), v)
	v, err = loss.CheckClasses(parse("ce(ignore=255):0.5+dice(ignore=255):0.5"), 2)
	require.NoError(t, err)
	assert.Equal(t, int64(255), v)
	assert.Equal(t, int64(255), loss.Void(parse("ce(ignore=255)"), 2))
	v, err = loss.CheckClasses(parse("ce(ignore=1)"), 2) // a class: ignored by the loss, not void
	require.NoError(t, err)
	assert.Equal(t, int64(loss.NoIgnore), v)
	assert.Equal(t, int64(-1), loss.Void(parse("ce(ignore=1)"), 2))
	_, err = loss.CheckClasses(parse("ce(ignore=255)+dice(ignore=254)"), 2)
	assert.ErrorContains(t, err, "another term ignores")

	// focal: one α for the foreground, or one per class.
	_, err = loss.CheckClasses(parse("ce+focal(alpha=0.2/0.8)"), 3)
	assert.ErrorContains(t, err, "focal(gamma=2,alpha=0.2/0.8): 2 class alphas for 3 classes")
	_, err = loss.CheckClasses(parse("focal(alpha=0.2/0.3/0.5)"), 3)
	assert.NoError(t, err)
	_, err = loss.CheckClasses(parse("focal(alpha=0.25)"), 5)
	assert.NoError(t, err)
	v, err = loss.CheckClasses(parse("bce(ignore=255)+dualterm(ignore=255)+focal(sigmoid,ignore=255)"), 2)
	require.NoError(t, err)
	assert.Equal(t, int64(255), v)
	_, err = loss.CheckClasses(parse("bce(ignore=255)+dualterm(ignore=254)"), 2)
	assert.ErrorContains(t, err, "another term ignores")
}

// FuzzParse: Parse never panics; what it accepts has every number in range
// and finite, and its String parses back to the same loss.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"ce", "iou", "dice", "focal", "tversky", "bce", "dualterm", "ce:0.8+iou:0.2", "ce(weight=0.3/0.7,ignore=255,smoothing=0.1)",
		"tversky(alpha=0.3,beta=0.7,persample,sigmoid)", "focal(alpha=0.2/0.8,scale=2,sigmoid)", "focal(alpha=none)", "dualterm(lambda=0.5,k=0.1)",
		"tversky(alpha=0,beta=0)", "focal(alpha=2)", "dualterm(k=0)",
		"dice(perclass,nobg,smooth=1e-5,ignore=255)", "focal(gamma=2,alpha=0.5)", "ce:0", "ce:NaN", "ce(smoothing=2)",
		"focal(alpha=5)", "dice(smooth=-1)", "ce(weight=1/x)", "dice(perclass", "ce((a))", "ce:1:2", "+", "ce(weight=)", ")(",
		"ce(ignore=1e3)", "ce:0x1p-3", "ce(weight=0/0)", "iou(perclass=true)", "ce(,)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		l, err := loss.Parse(spec)
		if err != nil {
			if l != nil {
				t.Fatalf("%q: a loss and an error", spec)
			}
			return
		}
		check := func(what string, v float64, ok bool) {
			if math.IsNaN(v) || math.IsInf(v, 0) || !ok {
				t.Fatalf("%q: accepted %s %v", spec, what, v)
			}
		}
		var each func(l loss.Loss, w float64)
		each = func(l loss.Loss, w float64) {
			check("weight", w, w > 0)
			switch l := l.(type) {
			case loss.Sum:
				for _, tm := range l {
					each(tm.Loss, tm.Weight)
				}
			case loss.CrossEntropy:
				check("smoothing", l.LabelSmoothing, l.LabelSmoothing >= 0 && l.LabelSmoothing < 1)
				for _, x := range l.Weight {
					check("class weight", x, x >= 0)
				}
				check("ignore", float64(l.IgnoreIndex), l.IgnoreIndex == loss.NoIgnore || l.IgnoreIndex >= 0)
			case loss.Region:
				check("smooth", l.Smooth, l.Smooth >= 0)
				if l.Kind == loss.Tversky {
					check("tversky alpha", l.Alpha, l.Alpha >= 0)
					check("tversky beta", l.Beta, l.Beta >= 0)
					check("tversky alpha+beta", l.Alpha+l.Beta, l.Alpha+l.Beta > 0)
				}
				check("ignore", float64(l.IgnoreIndex), l.IgnoreIndex == loss.NoIgnore || l.IgnoreIndex >= 0)
			case loss.Focal:
				check("gamma", l.Gamma, l.Gamma >= 0)
				for _, a := range l.Alpha {
					check("alpha", a, a >= 0 && a <= 1)
				}
				check("scale", l.Scale, l.Scale > 0)
				check("ignore", float64(l.IgnoreIndex), l.IgnoreIndex == loss.NoIgnore || l.IgnoreIndex >= 0)
			case loss.BCE:
				check("ignore", float64(l.IgnoreIndex), l.IgnoreIndex == loss.NoIgnore || l.IgnoreIndex >= 0)
			case loss.DualTerm:
				check("lambda", l.Lambda, l.Lambda >= 0)
				check("k", l.K, l.K > 0)
				check("smooth", l.Smooth, l.Smooth >= 0)
				check("ignore", float64(l.IgnoreIndex), l.IgnoreIndex == loss.NoIgnore || l.IgnoreIndex >= 0)
			default:
				t.Fatalf("%q: unexpected loss type %T", spec, l)
			}
		}
		each(l, 1)
		again, err := loss.Parse(l.String())
		if err != nil {
			t.Fatalf("%q parsed to %q, which does not parse: %v", spec, l, err)
		}
		if again.String() != l.String() {
			t.Fatalf("%q: %q parses back as %q", spec, l, again)
		}
	})
}
