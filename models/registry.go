package models

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/jmedseg/jmedseg/torch/nn"
)

// Config sizes a model.
type Config struct {
	InChannels int64 `json:"in_channels"`
	Classes    int64 `json:"classes"`
	// Width is the base channel width; 0 selects the reference's. Smaller
	// widths make fast models for tests and CPU training.
	Width int64 `json:"width,omitempty"`
}

// Spec describes a registered model.
type Spec struct {
	Name        string
	Description string
	// DefaultWidth is the reference's base width.
	DefaultWidth int64
	// RefParams is the reference's trainable parameter count with default
	// arguments (3 input channels, 2 classes).
	RefParams int64
	// Multiple is what input height and width must be divisible by.
	Multiple int64
	// MinSize is the smallest input height and width the model takes, a
	// multiple of Multiple; zero means Multiple.
	MinSize int64
	// MinTrainBatch is the smallest batch the model trains on: 2 for a
	// model that batch-normalises a 1×1 pooled map (PyTorch refuses one
	// value per channel in training); zero means 1.
	MinTrainBatch int64
	// Build makes the model; cfg.Width is already resolved.
	Build func(cfg Config) (nn.Module, error)

	// The package's tests exercise every registered model through the
	// fields below and fail for a model that leaves any of them out.

	// TestWidth is a small Width, below DefaultWidth, at which the tests
	// build the model (fast on a CPU; the reference's width is only built
	// to count parameters).
	TestWidth int64
	// TestSizes are input sizes, {height, width}, at which the tests run
	// the model at TestWidth: at least two, each accepted by CheckSize,
	// among them the smallest input the model takes ({MinSide, MinSide})
	// and the reference's {512, 512}. The PyTorch parity test uses those
	// of at most 96×96 pixels (one at least).
	TestSizes [][2]int64
	// Twin names the model's PyTorch twin as "module.Class": a class in
	// internal/oracle/py/twins/module.py built as
	// Class(in_channels=, classes=, width=), with the same state-dict keys
	// in the same order, whose outputs and gradients the Go model must
	// equal.
	Twin string
}

var registry = map[string]Spec{}

// Register adds a model. Registering a name twice is a programming error
// caught by the package's tests, so it panics.
func Register(s Spec) {
	if _, dup := registry[s.Name]; dup {
		panic("models: duplicate registration of " + s.Name)
	}
	registry[s.Name] = s
}

// Names lists the registered models in alphabetical order.
func Names() []string {
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Lookup returns the spec of a registered model.
func Lookup(name string) (Spec, bool) {
	s, ok := registry[strings.ToLower(name)]
	return s, ok
}

// Resolve fills in defaults: 3 input channels, 2 classes, the reference width.
func (s Spec) Resolve(cfg Config) Config {
	if cfg.InChannels == 0 {
		cfg.InChannels = 3
	}
	if cfg.Classes == 0 {
		cfg.Classes = 2
	}
	if cfg.Width == 0 {
		cfg.Width = s.DefaultWidth
	}
	return cfg
}

// New builds a registered model. Errors name the model and the problem.
// Its Forward (and Encode, where the model has one) checks the input (4-D,
// the configured channels, a size CheckSize accepts: otherwise a tensor
// carrying an error that names the model and what it takes) and runs in an
// nn.Frame: called on an unscoped input it leaves nothing alive but its
// result.
func New(name string, cfg Config) (nn.Module, error) {
	s, ok := Lookup(name)
	if !ok {
		return nil, fmt.Errorf("models: unknown model %q (registered: %s)", name, strings.Join(Names(), ", "))
	}
	cfg = s.Resolve(cfg)
	if cfg.InChannels < 1 || cfg.Classes < 1 || cfg.Width < 1 {
		return nil, fmt.Errorf("models: %s: in_channels %d, classes %d and width %d must be positive", name, cfg.InChannels, cfg.Classes, cfg.Width)
	}
	m, err := s.Build(cfg)
	if err == nil {
		err = m.Err()
	}
	if err != nil {
		if m != nil {
			m.Free()
		}
		return nil, fmt.Errorf("models: %s: %w", name, err)
	}
	return frame(m, s, cfg), nil
}

// CheckSize reports whether an input of h×w suits the model: sides that
// are multiples of Multiple and at least MinSide. The error names the model
// and the sizes it takes.
func (s Spec) CheckSize(h, w int64) error {
	m := s.MinSide()
	if h > 0 && w > 0 && h%s.Multiple == 0 && w%s.Multiple == 0 && h >= m && w >= m {
		return nil
	}
	if m > s.Multiple {
		return fmt.Errorf("models: %s takes a height and width that are multiples of %d and at least %d, got %dx%d", s.Name, s.Multiple, m, h, w)
	}
	return fmt.Errorf("models: %s takes a height and width that are multiples of %d, got %dx%d", s.Name, s.Multiple, h, w)
}

// MinSide is the smallest input height and width the model takes: MinSize,
// or Multiple when MinSize is zero.
func (s Spec) MinSide() int64 {
	if s.MinSize > 0 {
		return s.MinSize
	}
	return s.Multiple
}

func itoa(i int) string { return strconv.Itoa(i) }
