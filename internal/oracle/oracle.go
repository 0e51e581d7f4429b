// Package oracle checks Go tensor computations against PyTorch. A test lists
// cases, each a Go function and the same computation as a Python expression;
// Check generates the inputs, runs every expression in one Python process
// (Debian's python3-torch, the same libtorch) and compares outputs and input
// gradients. The upstream gradient of the first output is sin(1..n) in its
// shape on both sides, so gradients are not the trivial all-ones (and not
// zero for a scalar output, as sin(0..n-1) was).
//
// The Python side of every parity test (this package's ops_oracle.py, the
// torch/nn and torch/optim oracles, the safetensors fixture and the PyTorch
// twins of the models) lives in internal/oracle/py, whose Run is the one way
// the tests start Python.
package oracle

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/internal/oracle/py"
	"github.com/jmedseg/jmedseg/torch"
)

// Input describes one generated input of a case.
type Input struct {
	Shape  []int64
	DType  torch.DType // Float64 for floats when zero; integer inputs set Hi
	Grad   bool        // record gradients (float inputs only)
	Lo, Hi int64       // integer inputs: uniform in [Lo, Hi)
	Pos    bool        // floats uniform in [0.5, 2) instead of N(0, 1)
}

// Case is one computation done both ways.
type Case struct {
	Name  string
	In    []Input
	Setup string // Python statements run before Py
	Py    string // Python expression over the inputs a, b, c, ...
	Fn    func(x []*torch.Tensor) []*torch.Tensor
	Tol   float64 // absolute and relative tolerance; by dtype when zero
}

// F64 is a float64 input that records gradients.
func F64(shape ...int64) Input { return Input{Shape: shape, Grad: true} }

// F32 is a float32 input that records gradients.
func F32(shape ...int64) Input { return Input{Shape: shape, DType: torch.Float32, Grad: true} }

// Pos64 is a positive float64 input that records gradients.
func Pos64(shape ...int64) Input { return Input{Shape: shape, Grad: true, Pos: true} }

// Index is an int64 input uniform in [0, hi).
func Index(hi int64, shape ...int64) Input { return Input{Shape: shape, DType: torch.Int64, Hi: hi} }

// NoGrad returns i without gradient recording.
func NoGrad(i Input) Input { i.Grad = false; return i }

// One wraps a single output.
func One(t *torch.Tensor) []*torch.Tensor { return []*torch.Tensor{t} }

type pyIn struct {
	Shape []int64   `json:"shape"`
	DType string    `json:"dtype"`
	Grad  bool      `json:"grad"`
	Data  []float64 `json:"data"`
}

type pyOut struct {
	Name    string `json:"name"`
	Error   string `json:"error"`
	Outputs []struct {
		Shape []int64   `json:"shape"`
		Data  []float64 `json:"data"`
	} `json:"outputs"`
	Grads [][]float64 `json:"grads"`
}

func generate(rng *rand.Rand, specs []Input) []pyIn {
	out := make([]pyIn, len(specs))
	for i, s := range specs {
		dt := s.DType
		if dt == 0 && s.Hi == 0 {
			dt = torch.Float64
		}
		n := int64(1)
		for _, d := range s.Shape {
			n *= d
		}
		data := make([]float64, n)
		for j := range data {
			switch {
			case s.Hi > 0:
				data[j] = float64(s.Lo + rng.Int63n(s.Hi-s.Lo))
			case s.Pos:
				data[j] = 0.5 + 1.5*rng.Float64()
			default:
				data[j] = math.Round(rng.NormFloat64()*1e6) / 1e6
			}
		}
		out[i] = pyIn{Shape: s.Shape, DType: dt.String(), Grad: s.Grad && dt.IsFloat(), Data: data}
	}
	return out
}

// Check runs every case in Go and in PyTorch and compares them, one subtest
// per case.
func Check(t *testing.T, cases []Case) {
	t.Helper()
	py.Python(t) // skip (or fail on CI) before generating anything
	rng := rand.New(rand.NewSource(1))
	type job struct {
		Name   string `json:"name"`
		Inputs []pyIn `json:"inputs"`
		Setup  string `json:"setup"`
		Py     string `json:"py"`
	}
	jobs := make([]job, len(cases))
	for i, c := range cases {
		jobs[i] = job{Name: c.Name, Inputs: generate(rng, c.In), Setup: c.Setup, Py: c.Py}
	}
	dir := t.TempDir()
	inPath, outPath := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	b, err := json.Marshal(jobs)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(inPath, b, 0o644))
	py.Run(t, "ops_oracle.py", inPath, outPath, fmt.Sprint(torch.NumThreads()))
	b, err = os.ReadFile(outPath)
	require.NoError(t, err)
	var want []pyOut
	require.NoError(t, json.Unmarshal(b, &want))
	require.Len(t, want, len(cases))

	for i, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			w := want[i]
			require.Empty(t, w.Error, "oracle failed on %s", c.Py)
			s := torch.NewScope()
			defer s.Close()
			xs := make([]*torch.Tensor, len(jobs[i].Inputs))
			for k, pi := range jobs[i].Inputs {
				dt, err := torch.ParseDType(pi.DType)
				require.NoError(t, err)
				x := torch.FromSlice(pi.Data, pi.Shape, dt, s)
				if pi.Grad {
					require.NoError(t, x.SetRequiresGrad(true))
				}
				xs[k] = x
			}
			outs := c.Fn(xs)
			require.Len(t, outs, len(w.Outputs))
			for k, o := range outs {
				s.Track(o)
				require.NoError(t, o.Err(), "output %d", k)
				require.Equal(t, w.Outputs[k].Shape, o.Shape(), "output %d shape", k)
				got, err := o.Float64s()
				require.NoError(t, err)
				AssertClose(t, w.Outputs[k].Data, got, c.tolFor(o.DType()), "output %d", k)
			}
			if w.Grads == nil {
				return
			}
			y := outs[0]
			wt := torch.Arange(1, float64(y.Numel())+1, 1, s).ToDType(torch.Float64).Sin().Reshape(y.Shape()...).ToDType(y.DType())
			require.NoError(t, y.Mul(wt).Sum().Backward())
			for k, x := range xs {
				if w.Grads[k] == nil {
					continue
				}
				g := s.Track(x.Grad())
				require.NotNil(t, g, "input %d has no gradient", k)
				got, err := g.Float64s()
				require.NoError(t, err)
				AssertClose(t, w.Grads[k], got, c.tolFor(x.DType()), "grad of input %d", k)
			}
		})
	}
}

func (c Case) tolFor(dt torch.DType) float64 {
	if c.Tol > 0 {
		return c.Tol
	}
	if dt == torch.Float32 {
		return 1e-5
	}
	return 1e-10
}

// AssertClose fails t unless every got[i] is within tol·(1+|want[i]|) of want[i].
func AssertClose(t testing.TB, want, got []float64, tol float64, msg string, args ...any) {
	t.Helper()
	require.Len(t, got, len(want), fmt.Sprintf(msg, args...))
	worst, at := 0.0, -1
	for i := range want {
		d := math.Abs(want[i] - got[i])
		if !(d <= tol*(1+math.Abs(want[i]))) && (d > worst || math.IsNaN(d)) {
			worst, at = d, i
		}
	}
	if at >= 0 {
		t.Fatalf("%s: element %d differs: want %v got %v (|diff| %g, tol %g)", fmt.Sprintf(msg, args...), at, want[at], got[at], worst, tol)
	}
}
