// Package py is the Python side of the parity tests, in one place: the
// PyTorch oracles (*.py here) and the PyTorch twins of the registered models
// (twins/*.py), with the one helper that runs them. It needs no libtorch
// itself, so the pure-Go safetensors package can use it too.
//
// The scripts are embedded; Run copies them into a fresh temporary
// directory and runs the interpreter there, so a test's working directory
// (the repository's torch/ folder, say) never shadows the torch module.
// Scripts exchange data with Go through files named on their command line
// (JSON, or safetensors read and written by stio.py). bench/bench.py, the
// PyTorch side of `make bench`, imports the twins from twins/ too.
package py

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Interpreter is the Python with PyTorch: Debian's python3-torch, on the
// same libtorch as the Go side.
const Interpreter = "/usr/bin/python3"

//go:embed *.py twins/*.py
var files embed.FS

var probe = sync.OnceValue(func() error {
	cmd := exec.Command(Interpreter, "-c", "import torch, numpy")
	cmd.Dir = os.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s -c 'import torch, numpy': %v: %s", Interpreter, err, strings.TrimSpace(string(out)))
	}
	return nil
})

// OnCI reports whether the tests run on CI (CI set to anything but "", "0"
// or "false"), where a missing oracle is a failure, not a skip.
func OnCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "0" && v != "false"
}

// Python returns the interpreter after checking, once per process, that it
// imports torch. Without it the test is skipped, except on CI (see OnCI),
// where it fails.
func Python(t testing.TB) string {
	t.Helper()
	requirePython(t, probe(), OnCI())
	return Interpreter
}

// requirePython fails (on CI) or skips t when the probe found no PyTorch.
func requirePython(t testing.TB, probeErr error, ci bool) {
	t.Helper()
	switch {
	case probeErr == nil:
	case ci:
		t.Fatalf("PyTorch oracle missing on CI (apt-get install python3-torch): %v", probeErr)
	default:
		t.Skipf("PyTorch oracle (python3-torch) not installed: %v", probeErr)
	}
}

// Run runs script (a file of this directory, such as "ops_oracle.py") with
// args and returns its combined output. It skips or fails as Python does
// when PyTorch is missing, and fails t, with the script's output, when the
// script exits non-zero. The environment is the test's, with bytecode
// writing off.
func Run(t testing.TB, script string, args ...string) []byte {
	t.Helper()
	py := Python(t)
	dir := t.TempDir()
	require(t, copyTree(dir))
	path := filepath.Join(dir, "py", script)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("py: no script %s: %v", script, err)
	}
	cmd := exec.Command(py, append([]string{path}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", script, strings.Join(args, " "), err, out)
	}
	return out
}

func require(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// copyTree writes the embedded scripts under dir/py.
func copyTree(dir string) error {
	return fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, "py", filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}

var twinName = regexp.MustCompile(`^([a-z_][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)$`)

// CheckTwin reports whether twin ("module.Class") names a class defined at
// the top level of twins/module.py. It reads the source only, so it needs
// no Python: a test can fail on a missing twin where PyTorch is absent.
func CheckTwin(twin string) error {
	m := twinName.FindStringSubmatch(twin)
	if m == nil {
		return fmt.Errorf("py: twin %q is not module.Class", twin)
	}
	src, err := files.ReadFile("twins/" + m[1] + ".py")
	if err != nil {
		return fmt.Errorf("py: twin %q: no twins/%s.py in internal/oracle/py", twin, m[1])
	}
	if !regexp.MustCompile(`(?m)^class ` + m[2] + `\b`).Match(src) {
		return fmt.Errorf("py: twin %q: twins/%s.py defines no class %s", twin, m[1], m[2])
	}
	return nil
}
