package export_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/export"
	"github.com/jmedseg/jmedseg/internal/oracle/py"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// cxxFlags are the compiler and linker flags of a libtorch C++ host: those
// cgo builds the shim with (torch/cgo.go's defaults, after CGO_CXXFLAGS and
// CGO_LDFLAGS, which the Makefile sets for another LIBTORCH).
func cxxFlags() []string {
	f := strings.Fields(os.Getenv("CGO_CXXFLAGS"))
	f = append(f, "-I/usr/include/torch/csrc/api/include", "-Wno-deprecated-declarations")
	f = append(f, strings.Fields(os.Getenv("CGO_LDFLAGS"))...)
	return append(f, "-ltorch", "-ltorch_cpu", "-lc10")
}

func writeF32(t *testing.T, path string, v []float32) {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

func readF32(t *testing.T, path string) []float32 {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// An exported unet runs in a C++ program that links libtorch alone
// (csrc/test/jit_load.cc: torch::jit::load, eval, forward), compiled here
// with the flags cgo uses, and gives Go's logits for raw pixels to 1e-4;
// the program reads the class names and input size from the attributes.
func TestCppHostLoads(t *testing.T) {
	cxx, err := exec.LookPath("c++")
	if err != nil {
		if py.OnCI() {
			t.Fatalf("no C++ compiler on CI: %v", err)
		}
		t.Skipf("no C++ compiler: %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "jit_load")
	src, err := filepath.Abs(filepath.Join("..", "csrc", "test", "jit_load.cc"))
	require.NoError(t, err)
	args := append([]string{"-std=c++17", "-O1", "-o", bin, src}, cxxFlags()...)
	out, err := exec.Command(cxx, args...).CombinedOutput()
	require.NoError(t, err, "%s %s\n%s", cxx, strings.Join(args, " "), out)

	s, _ := models.Lookup("unet")
	side := int(s.MinSide()) * 2
	info := models.Info{Model: "unet", Config: models.Config{InChannels: 3, Classes: 2, Width: s.TestWidth},
		Classes: []string{"background", "brain"}, Size: [2]int{side, side},
		Norm: models.Normalization{Scale: models.ScaleUnit, Mean: []float32{0.5, 0.4, 0.3}, Std: []float32{0.2, 0.25, 0.3}}}
	torch.ManualSeed(7)
	m, err := models.Build(info)
	require.NoError(t, err)
	defer m.Free()
	prepare(t, m)
	pt := filepath.Join(dir, "model.pt")
	_, err = export.WriteTorchScript(pt, m, info)
	require.NoError(t, err)

	raw := rawImages(rand.New(rand.NewPCG(3, 4)), 2, 3, side, side)
	shape := []int64{2, 3, int64(side), int64(side)}
	xn := torch.FromSlice(goPipeline(t, raw, 2, 3, info.Norm), shape)
	defer xn.Free()
	want, _ := goLogits(t, m, xn)

	in, res := filepath.Join(dir, "in.f32"), filepath.Join(dir, "out.f32")
	writeF32(t, in, raw)
	cmd := exec.Command(bin, pt, in, "2", "3", itoa(side), itoa(side), res)
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "classes: background brain")
	assert.Contains(t, string(out), "input_size: "+itoa(side)+"x"+itoa(side))
	assert.Contains(t, string(out), "logits: [2, 2, "+itoa(side)+", "+itoa(side)+"]")
	got := readF32(t, res)
	require.Len(t, got, len(want))
	rel, abs := relDiff(got, want)
	t.Logf("C++ torch::jit::load vs Go: max rel %.2e, max abs %.2e", rel, abs)
	assert.LessOrEqual(t, rel, tol)
}

func itoa(i int) string { return strconv.Itoa(i) }
