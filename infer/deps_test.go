package infer_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A program that only predicts links no training code: infer's imports,
// direct and indirect, include none of these packages.
func TestNoTrainingDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, serr := os.Stat(goBin); serr != nil {
			t.Fatalf("no go command to list the imports with: %v", err)
		}
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	const mod = "github.com/jmedseg/jmedseg/"
	forbidden := map[string]bool{"train": true, "loss": true, "torch/optim": true, "sas": true,
		"report": true, "bench": true, "cli": true}
	var deps []string
	for _, line := range strings.Fields(string(out)) {
		if rel, ok := strings.CutPrefix(line, mod); ok {
			deps = append(deps, rel)
			if forbidden[rel] || strings.HasPrefix(rel, "train/") {
				t.Errorf("infer depends on %s%s", mod, rel)
			}
		}
	}
	if len(deps) == 0 {
		t.Fatalf("go list -deps listed none of the module's packages:\n%s", out)
	}
	t.Logf("infer depends on %s", strings.Join(deps, ", "))
}
