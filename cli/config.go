package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/dist"
	"github.com/jmedseg/jmedseg/train"
)

// notSaved are flags left out of the resolved config.json: they say what
// to do with --out this time, and a reused config must not replace or
// continue a run unasked.
var notSaved = map[string]bool{"config": true, "help": true, "force": true, "resume": true}

// withRunConfig gives a command --config FILE (JSON or YAML; keys are the
// flag names, command-line flags and environment variables win over the
// file) and --deterministic (libtorch's deterministic algorithms), and
// after a successful run writes OUT/config.json (the resolved flags,
// reusable as --config) and OUT/manifest.json (seed, versions, a hash of
// --data, the flags). Required flags may come from the file: they are
// checked once it is applied.
func withRunConfig(cmd *cli.Command) *cli.Command {
	var required []string
	for _, f := range cmd.Flags {
		if sf, ok := f.(*cli.StringFlag); ok && sf.Required {
			sf.Required = false
			required = append(required, sf.Name)
		}
	}
	cmd.Flags = append(cmd.Flags,
		&cli.StringFlag{Name: "config", Usage: "read flags from a JSON or YAML file (keys are flag names; flags given here win); OUT/config.json of a run is one"},
		&cli.BoolFlag{Name: "deterministic", Usage: "libtorch's deterministic algorithms: two runs with the same flags, data and build give identical checkpoints (OUT/manifest.json records them)"},
	)
	before, action := cmd.Before, cmd.Action
	cmd.Before = func(c *cli.Context) error {
		if path := c.String("config"); path != "" {
			if err := applyConfig(c, cmd, path); err != nil {
				return fmt.Errorf("%s: %w", cmd.Name, err)
			}
		}
		for _, name := range required {
			if !c.IsSet(name) {
				return fmt.Errorf("%s: --%s is required (on the command line or in --config)", cmd.Name, name)
			}
		}
		if c.Bool("deterministic") {
			torch.SetDeterministic(true, false)
		}
		if before != nil {
			return before(c)
		}
		return nil
	}
	cmd.Action = func(c *cli.Context) error {
		if err := action(c); err != nil {
			return err
		}
		if env, ok, _ := dist.FromEnv(); ok && env.Rank != 0 {
			return nil // rank 0 (or the launcher) records the run
		}
		return writeRunRecord(c, cmd)
	}
	return cmd
}

// writeRunRecord writes OUT/config.json and OUT/manifest.json.
func writeRunRecord(c *cli.Context, cmd *cli.Command) error {
	out := c.String("out")
	if fi, err := os.Stat(out); err != nil || !fi.IsDir() {
		return nil // the command wrote no run directory (nothing to describe)
	}
	if err := train.WriteJSON(filepath.Join(out, "config.json"), resolvedFlags(c, cmd, true)); err != nil {
		return fmt.Errorf("%s: %w", cmd.Name, err)
	}
	m, err := train.NewManifest(c.Uint64("seed"), c.Bool("deterministic"), c.String("data"), resolvedFlags(c, cmd, false))
	if err != nil {
		return fmt.Errorf("%s: manifest: %w", cmd.Name, err)
	}
	if err := train.WriteJSON(filepath.Join(out, "manifest.json"), m); err != nil {
		return fmt.Errorf("%s: %w", cmd.Name, err)
	}
	return nil
}

// resolvedFlags are the values of cmd's flags after the config file and
// the command line, keyed by flag name, in the types applyConfig reads.
// With onlySet, those given (in the file, on the command line or by
// environment) and no defaults: some flags tell "given" from the default
// (--lr 0 is an error, its default means the optimizer's), so a config
// that restated the defaults would not reproduce the run. The manifest
// records every value, defaults included.
func resolvedFlags(c *cli.Context, cmd *cli.Command, onlySet bool) map[string]any {
	out := map[string]any{}
	for _, f := range cmd.Flags {
		name := f.Names()[0]
		if notSaved[name] || onlySet && !c.IsSet(name) {
			continue
		}
		switch f.(type) {
		case *cli.StringFlag:
			out[name] = c.String(name)
		case *cli.BoolFlag:
			out[name] = c.Bool(name)
		case *cli.IntFlag:
			out[name] = c.Int(name)
		case *cli.Int64Flag:
			out[name] = c.Int64(name)
		case *cli.Uint64Flag:
			out[name] = c.Uint64(name)
		case *cli.UintFlag:
			out[name] = c.Uint(name)
		case *cli.Float64Flag:
			out[name] = c.Float64(name)
		case *cli.DurationFlag:
			out[name] = c.Duration(name).String()
		case *cli.StringSliceFlag:
			out[name] = append([]string{}, c.StringSlice(name)...)
		}
	}
	return out
}

// readConfig parses a JSON (.json) or YAML (.yaml, .yml) file into a map.
func readConfig(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	m := map[string]any{}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber() // exact integers (a uint64 --seed) rather than float64
		if err := d.Decode(&m); err != nil {
			return nil, fmt.Errorf("--config %s: %w", path, err)
		}
		if d.More() {
			return nil, fmt.Errorf("--config %s: more than one JSON value", path)
		}
	case ".yaml", ".yml":
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("--config %s: %w", path, err)
		}
	default:
		return nil, fmt.Errorf("--config %s: want a .json, .yaml or .yml file", path)
	}
	return m, nil
}

// applyConfig sets every flag named in the file that was not given on the
// command line (or by its environment variable).
func applyConfig(c *cli.Context, cmd *cli.Command, path string) error {
	m, err := readConfig(path)
	if err != nil {
		return err
	}
	byName := map[string]cli.Flag{}
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			byName[n] = f
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first bad key is the same every time
	for _, k := range keys {
		f, ok := byName[k]
		if !ok || k == "config" || k == "help" {
			return fmt.Errorf("--config %s: unknown key %q (%s has no --%s flag)", path, k, cmd.Name, k)
		}
		vals, err := configValues(f, m[k])
		if err != nil {
			return fmt.Errorf("--config %s: key %q: %w", path, k, err)
		}
		name := f.Names()[0]
		if c.IsSet(name) {
			continue // the command line wins
		}
		for _, v := range vals {
			if err := c.Set(name, v); err != nil {
				return fmt.Errorf("--config %s: key %q: %w", path, k, err)
			}
		}
	}
	return nil
}

// configValues converts a config value to the strings the flag parses,
// refusing a value of the wrong type.
func configValues(f cli.Flag, v any) ([]string, error) {
	want := func(kind string) error { return fmt.Errorf("want %s, got %s", kind, describeValue(v)) }
	switch f.(type) {
	case *cli.StringFlag:
		s, ok := v.(string)
		if !ok {
			return nil, want("a string")
		}
		return []string{s}, nil
	case *cli.BoolFlag:
		b, ok := v.(bool)
		if !ok {
			return nil, want("true or false")
		}
		return []string{strconv.FormatBool(b)}, nil
	case *cli.IntFlag, *cli.Int64Flag, *cli.Uint64Flag, *cli.UintFlag:
		s, ok := integer(v)
		if !ok {
			return nil, want("an integer")
		}
		return []string{s}, nil
	case *cli.Float64Flag:
		switch x := v.(type) {
		case json.Number:
			return []string{x.String()}, nil
		case int:
			return []string{strconv.Itoa(x)}, nil
		case float64:
			return []string{strconv.FormatFloat(x, 'g', -1, 64)}, nil
		}
		return nil, want("a number")
	case *cli.DurationFlag:
		s, ok := v.(string)
		if !ok {
			return nil, want(`a duration such as "30s"`)
		}
		if _, err := time.ParseDuration(s); err != nil {
			return nil, want(`a duration such as "30s"`)
		}
		return []string{s}, nil
	case *cli.StringSliceFlag:
		xs, ok := v.([]any)
		if !ok {
			return nil, want("a list of strings")
		}
		out := make([]string, len(xs))
		for i, x := range xs {
			if out[i], ok = x.(string); !ok {
				return nil, want("a list of strings")
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("flag type %T cannot be read from a config file", f)
}

// integer formats v when it is a whole number (JSON numbers, YAML ints).
func integer(v any) (string, bool) {
	switch x := v.(type) {
	case json.Number:
		if _, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
			return x.String(), true
		}
		if _, err := strconv.ParseUint(x.String(), 10, 64); err == nil {
			return x.String(), true
		}
	case int:
		return strconv.Itoa(x), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64: // YAML 1e3
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10), true
		}
	}
	return "", false
}

// describeValue names a config value's type for an error.
func describeValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("%v", x)
	case json.Number, int, uint64, float64:
		return fmt.Sprintf("the number %v", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}
