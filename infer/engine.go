package infer

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/jit"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// The engines a Predictor (LoadOptions.Engine) and jmedseg bench run a
// network with.
const (
	// EngineEager runs the Go forward: one libtorch call per operation.
	EngineEager = "eager"
	// EngineJIT runs the Go forward traced by libtorch's tracer, frozen and
	// optimised for inference (see JIT).
	EngineJIT = "jit"
)

// Engines lists the engine names, for flags' help and errors.
var Engines = []string{EngineEager, EngineJIT}

// CheckEngine reports whether name is an engine ("" is EngineEager) that
// combines with the autocast dtype amp ("" for float32).
func CheckEngine(name, amp string) error {
	switch strings.ToLower(name) {
	case "", EngineEager:
		return nil
	case EngineJIT:
		if amp != "" {
			// Autocast's casts (and its weight cache) would be traced as
			// fixed float32-to-bf16 constants: not what freezing folds.
			return fmt.Errorf("infer: engine jit runs the float32 trace; it does not combine with amp %q", amp)
		}
		return nil
	}
	return fmt.Errorf("infer: engine %q: want %s", name, strings.Join(Engines, " or "))
}

// MaxJITShapes bounds the optimised modules a JIT keeps: one per input
// shape it has seen (a plain prediction's batch, a sliding window's full
// and last window batch), each holding its own folded weights.
const MaxJITShapes = 4

// JITCheckTol bounds |optimised − eager| / (1 + |eager|), elementwise, on
// the check input a JIT runs when it builds a module for a new shape.
const JITCheckTol = 1e-4

// JIT runs a model in evaluation mode through TorchScript: for each input
// shape it meets, it traces the model's Go forward with libtorch's tracer
// (torch/jit), freezes the trace and optimises it for inference
// (jit.Module.Optimized: what torch.jit.optimize_for_inference of
// torch.jit.freeze does in Python), then runs that module. A trace is
// valid for its input's shape only (sizes the forward reads, such as an
// interpolation's, are fixed in it), so the modules are cached per shape,
// the least recently used idle one dropped past MaxJITShapes.
//
// Building a shape's module costs about four forwards on its first call
// (the trace, the check and the run): before a module is used, it is run
// on the input flipped left-right and compared with the Go forward on the
// same (JITCheckTol), so that a forward the tracer cannot follow (a
// decision taken on tensor values) is an error naming the model, not a
// silently wrong prediction.
//
// JIT is an nn.Module whose Free frees the model too. Forward is safe for
// concurrent use; Free is not (a Predictor's Close waits for its calls).
type JIT struct {
	nn.Module
	name string

	mu     sync.Mutex
	tick   uint64
	builds int
	cache  map[string]*jitEntry
}

type jitEntry struct {
	m     *jit.Module
	out   []int64
	dtype torch.DType
	err   error
	ready chan struct{} // closed once built (or failed)
	users int
	used  uint64
}

// NewJIT wraps m, an evaluation-mode model, named name in errors. Nothing
// is traced until the first Forward.
func NewJIT(m nn.Module, name string) (*JIT, error) {
	if m == nil {
		return nil, errors.New("infer: jit: no model")
	}
	if err := m.Err(); err != nil {
		return nil, fmt.Errorf("infer: jit: %s: %w", name, err)
	}
	if m.Training() {
		return nil, fmt.Errorf("infer: jit: %s is in training mode; the engine freezes evaluation mode (call Eval first)", name)
	}
	return &JIT{Module: m, name: name, cache: map[string]*jitEntry{}}, nil
}

func shapeKey(x *torch.Tensor) string {
	return fmt.Sprint(x.Shape(), x.DType(), x.Device())
}

// Forward runs the optimised module of x's shape, building it on the
// shape's first call. The result joins x's scope (or belongs to the caller
// when x has none), as a module's forward result does.
func (j *JIT) Forward(x *torch.Tensor) *torch.Tensor {
	if err := x.Err(); err != nil {
		return torch.FromError(err)
	}
	ent, err := j.acquire(x)
	if err != nil {
		return torch.FromError(err)
	}
	defer j.release(ent)
	out := torch.Empty(ent.out, ent.dtype, x.Device())
	if err := ent.m.Forward(x, out, false); err != nil {
		out.Free()
		return torch.FromError(fmt.Errorf("infer: jit: %s: %w", j.name, err))
	}
	if s := x.Scope(); s != nil {
		s.Track(out)
	}
	return out
}

// Builds is the number of modules built (or attempted) since NewJIT: one
// per new input shape, and again for a shape whose module was dropped
// past MaxJITShapes.
func (j *JIT) Builds() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.builds
}

// Shapes is the number of input shapes with a module (or a failed build)
// in the cache.
func (j *JIT) Shapes() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.cache)
}

// acquire returns x's shape's entry, built, marked in use.
func (j *JIT) acquire(x *torch.Tensor) (*jitEntry, error) {
	key := shapeKey(x)
	j.mu.Lock()
	if j.cache == nil {
		j.mu.Unlock()
		return nil, fmt.Errorf("infer: jit: %s: the engine is freed", j.name)
	}
	j.tick++
	ent := j.cache[key]
	build := ent == nil
	if build {
		ent = &jitEntry{ready: make(chan struct{})}
		j.cache[key] = ent
		j.builds++
	}
	ent.users++
	ent.used = j.tick
	j.evictLocked()
	j.mu.Unlock()
	if build {
		ent.m, ent.out, ent.dtype, ent.err = j.build(x)
		close(ent.ready)
	} else {
		<-ent.ready
	}
	if ent.err != nil {
		j.release(ent)
		return nil, ent.err
	}
	return ent, nil
}

func (j *JIT) release(ent *jitEntry) {
	j.mu.Lock()
	ent.users--
	j.evictLocked()
	j.mu.Unlock()
}

// evictLocked drops the least recently used idle entries past
// MaxJITShapes (entries in use stay, so the cache may briefly hold more).
func (j *JIT) evictLocked() {
	for len(j.cache) > MaxJITShapes {
		var oldKey string
		var old *jitEntry
		for k, e := range j.cache {
			if e.users == 0 && (old == nil || e.used < old.used) {
				oldKey, old = k, e
			}
		}
		if old == nil {
			return
		}
		delete(j.cache, oldKey)
		if old.m != nil {
			old.m.Free()
		}
	}
}

// build traces the model on x, optimises the trace and checks it against
// the Go forward on x flipped left-right.
func (j *JIT) build(x *torch.Tensor) (*jit.Module, []int64, torch.DType, error) {
	fail := func(err error) (*jit.Module, []int64, torch.DType, error) {
		return nil, nil, 0, fmt.Errorf("infer: jit: %s (input %v): %w", j.name, x.Shape(), err)
	}
	tm, err := jit.New("jmedseg_engine")
	if err != nil {
		return fail(err)
	}
	defer tm.Free()
	// Registered, the parameters are attributes that freezing inlines; a
	// tensor that requires grad cannot be a traced constant.
	params := map[string]bool{}
	for _, p := range j.Module.NamedParameters() {
		params[p.Name] = true
	}
	for _, st := range j.Module.StateDict() {
		if err := tm.Register(st.Name, st.Tensor, !params[st.Name]); err != nil {
			return fail(err)
		}
	}
	var out []int64
	var dtype torch.DType
	err = tm.Trace("forward", x, func(x *torch.Tensor) *torch.Tensor {
		y := j.Module.Forward(x)
		if y.Err() == nil {
			out, dtype = y.Shape(), y.DType()
		}
		return y
	})
	if err != nil {
		return fail(fmt.Errorf("the model does not trace: %w", err))
	}
	om, err := tm.Optimized()
	if err != nil {
		return fail(fmt.Errorf("freezing and optimising the trace: %w", err))
	}
	if err := j.check(om, x, out, dtype); err != nil {
		om.Free()
		return fail(err)
	}
	return om, out, dtype, nil
}

// check compares om with the Go forward on x flipped left-right: another
// input of the traced shape, with an image's statistics.
func (j *JIT) check(om *jit.Module, x *torch.Tensor, out []int64, dtype torch.DType) error {
	var err error
	var d float64
	torch.InferenceMode(func() {
		s := torch.NewScope()
		defer s.Close()
		x2 := s.Track(x.Flip(int64(x.Dim() - 1)))
		want := s.Track(j.Module.Forward(x2))
		got := s.Track(torch.Empty(out, dtype, x.Device()))
		if err = om.Forward(x2, got, false); err != nil {
			return
		}
		if err = want.Err(); err != nil {
			return
		}
		d, err = MaxRelDiff(got, want)
	})
	if err != nil {
		return err
	}
	if !(d <= JITCheckTol) {
		return fmt.Errorf("the optimised trace does not reproduce the model on another input (max |jit − eager| / (1 + |eager|) = %.3g, tolerance %g): its forward depends on something the tracer cannot record; use the eager engine", d, JITCheckTol)
	}
	return nil
}

// MaxRelDiff is max |got − want| / (1 + |want|) over the elements of two
// tensors of the same shape (NaN where either has a NaN).
func MaxRelDiff(got, want *torch.Tensor) (float64, error) {
	g, err := got.Float32s()
	if err != nil {
		return 0, err
	}
	w, err := want.Float32s()
	if err != nil {
		return 0, err
	}
	if len(g) != len(w) {
		return 0, fmt.Errorf("infer: %d values against %d", len(g), len(w))
	}
	d := 0.0
	for i := range w {
		e := math.Abs(float64(g[i])-float64(w[i])) / (1 + math.Abs(float64(w[i])))
		if math.IsNaN(e) {
			return e, nil
		}
		d = max(d, e)
	}
	return d, nil
}

// Free frees the cached modules and the model.
func (j *JIT) Free() {
	j.mu.Lock()
	for _, e := range j.cache {
		if e.m != nil {
			e.m.Free()
		}
	}
	j.cache = nil
	j.mu.Unlock()
	j.Module.Free()
}

// Prepare makes the module to run of m, a model loaded for inference on
// dev (named name in errors), as NewPredictorWith does: m in evaluation
// mode, its BatchNorms folded, in o's layout and engine. Callers that load
// the model themselves (jmedseg test) use it. The module returned owns m
// (its Free frees m); on an error the caller still owns m, which may have
// been folded already.
func (o LoadOptions) Prepare(m nn.Module, name string, dev torch.Device) (nn.Module, error) {
	if err := o.checkEngine(); err != nil {
		return nil, err
	}
	m.Eval()
	fast, err := o.apply(m, dev)
	if err != nil {
		return nil, err
	}
	return o.withEngine(fast, name)
}

// checkEngine validates o.Engine with o.AMP, and o.JITBatches.
func (o LoadOptions) checkEngine() error {
	if err := CheckEngine(o.Engine, o.AMP); err != nil {
		return err
	}
	if len(o.JITBatches) == 0 {
		return nil
	}
	if strings.ToLower(o.Engine) != EngineJIT {
		return fmt.Errorf("infer: JIT batch sizes %v without the jit engine (engine %q)", o.JITBatches, o.Engine)
	}
	_, err := batchSizes(o.JITBatches)
	return err
}

// withEngine wraps the prepared model m in o's engine (m itself for the
// eager one).
func (o LoadOptions) withEngine(m nn.Module, name string) (nn.Module, error) {
	if err := o.checkEngine(); err != nil {
		return nil, err
	}
	if strings.ToLower(o.Engine) != EngineJIT {
		return m, nil
	}
	j, err := NewJIT(m, name)
	if err != nil || len(o.JITBatches) == 0 {
		return j, err
	}
	sizes, _ := batchSizes(o.JITBatches) // checked above
	return &paddedJIT{JIT: j, sizes: sizes}, nil
}
