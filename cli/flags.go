package cli

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/train"
)

// Every numeric flag is checked where the command reads it, with an error
// naming the flag, its value and what it takes.

// intFlag checks that flag name is in [lo, hi].
func intFlag(c *cli.Context, name string, lo, hi int) error {
	v := c.Int(name)
	if v < lo || v > hi {
		if hi == math.MaxInt {
			return fmt.Errorf("--%s %d: want %d or more", name, v, lo)
		}
		return fmt.Errorf("--%s %d: want %d to %d", name, v, lo, hi)
	}
	return nil
}

// int64Flag is intFlag for an Int64Flag.
func int64Flag(c *cli.Context, name string, lo, hi int64) error {
	v := c.Int64(name)
	if v < lo || v > hi {
		if hi == math.MaxInt64 {
			return fmt.Errorf("--%s %d: want %d or more", name, v, lo)
		}
		return fmt.Errorf("--%s %d: want %d to %d", name, v, lo, hi)
	}
	return nil
}

// positiveFlag checks that flag name is a positive finite number; when
// zeroDefault, 0 (the flag's unset value) stands for a default and is
// accepted unless given explicitly.
func positiveFlag(c *cli.Context, name string, zeroDefault bool) error {
	v := c.Float64(name)
	if zeroDefault && v == 0 && !c.IsSet(name) {
		return nil
	}
	if !(v > 0) || math.IsInf(v, 0) {
		return fmt.Errorf("--%s %g: want a positive finite number", name, v)
	}
	return nil
}

// nonNegativeFlag checks that flag name is a finite number, 0 or more.
func nonNegativeFlag(c *cli.Context, name string) error {
	if v := c.Float64(name); !(v >= 0) || math.IsInf(v, 0) {
		return fmt.Errorf("--%s %g: want a finite number, 0 or more", name, v)
	}
	return nil
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// parseSize parses the value of a size flag: "" (the data's own size), H
// (a square) or HxW (also H,W), each side a decimal from 1 to
// train.MaxSize.
func parseSize(flag, s string) ([2]int, error) {
	if s == "" {
		return [2]int{}, nil
	}
	bad := func() ([2]int, error) {
		return [2]int{}, fmt.Errorf("--%s %q: want H or HxW, sides from 1 to %d", flag, s, train.MaxSize)
	}
	parts := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == 'x' || r == ',' })
	if n := strings.Count(strings.ToLower(s), "x") + strings.Count(s, ","); n != len(parts)-1 || len(parts) > 2 || len(parts) == 0 {
		return bad() // an empty side, or more than two
	}
	var out [2]int
	for i, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" || len(p) > 6 {
			return bad()
		}
		v, err := strconv.Atoi(p)
		if err != nil || v < 1 || v > train.MaxSize {
			return bad()
		}
		out[i] = v
	}
	if len(parts) == 1 {
		out[1] = out[0]
	}
	return out, nil
}

// checkThreads checks the common --threads flag.
func checkThreads(c *cli.Context) error { return train.CheckThreads(c.Int("threads")) }

// interspersed reads flags that follow a command's positional arguments
// (urfave/cli stops at the first one, so `data check DIR --json` would
// take --json as a second directory): each is set on c, and the
// positional arguments are returned. "--" ends the flags.
func interspersed(c *cli.Context) ([]string, error) {
	args := c.Args().Slice()
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(pos, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := lookupFlag(c.Command.Flags, name)
		if f == nil {
			return nil, fmt.Errorf("flag provided but not defined: %s", a)
		}
		if _, isBool := f.(*cli.BoolFlag); isBool {
			if !hasValue {
				value = "true"
			}
		} else if !hasValue {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("flag needs an argument: %s", a)
			}
			i++
			value = args[i]
		}
		if err := c.Set(name, value); err != nil {
			return nil, fmt.Errorf("invalid value %q for flag %s: %w", value, a, err)
		}
	}
	return pos, nil
}

func lookupFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// samePath reports whether a and b name the same file or directory: the
// same existing file (links included), or the same cleaned absolute path.
func samePath(a, b string) bool {
	if fa, err := os.Stat(a); err == nil {
		if fb, err := os.Stat(b); err == nil {
			return os.SameFile(fa, fb)
		}
	}
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

// checkSplitName checks a split name given with flag: a plain directory
// name inside the data set.
func checkSplitName(flag, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || filepath.IsAbs(name) || filepath.Base(name) != name {
		return fmt.Errorf("--%s %q: want a split name (a directory name inside the data set: no path separators, not . or ..)", flag, name)
	}
	return nil
}

// runFileIn returns the training checkpoint dir holds ("" if none).
func runFileIn(dir string) string {
	for _, f := range []string{train.BestFile, train.LastFile} {
		if p := filepath.Join(dir, f); fileExists(p) {
			return p
		}
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// byteUnits are the suffixes parseBytes takes: binary (KiB) and decimal (KB).
var byteUnits = []struct {
	suffix string
	scale  float64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
}

// parseBytes reads a byte count: "off" (0), an integer, or a number with a
// unit (1.5GiB, 512MiB, 2GB).
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "off") {
		return 0, nil
	}
	scale := 1.0
	for _, u := range byteUnits {
		if len(t) > len(u.suffix) && strings.EqualFold(t[len(t)-len(u.suffix):], u.suffix) {
			t, scale = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.scale
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || !(v >= 0) || v*scale >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is not a size: want off, a byte count or a number with a unit (KiB, MiB, GiB, TiB, KB, MB, GB, TB)", s)
	}
	return int64(v * scale), nil
}

// formatBytes writes n in the largest binary unit that keeps it at 1 or more.
func formatBytes(n int64) string {
	for _, u := range byteUnits[:4] {
		if float64(n) >= u.scale {
			return strconv.FormatFloat(float64(n)/u.scale, 'f', 1, 64) + " " + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + " B"
}

// checkOutFile checks a file that --flag names for writing, before any work
// is done: its directory exists, and it is not a directory nor (without
// force) an existing file.
func checkOutFile(flag, path string, force bool) error {
	st, err := os.Stat(path)
	switch {
	case err == nil && st.IsDir():
		return fmt.Errorf("--%s %s: is a directory; name a file", flag, path)
	case err == nil && !force:
		return fmt.Errorf("--%s %s: the file exists (--force overwrites it)", flag, path)
	case err != nil && !os.IsNotExist(err):
		return fmt.Errorf("--%s %s: %w", flag, path, err)
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("--%s %s: no directory %s to write it in", flag, path, dir)
	}
	return nil
}
