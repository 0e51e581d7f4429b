package serve_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/cli"
	"github.com/jmedseg/jmedseg/data/nifti"
	"github.com/jmedseg/jmedseg/data/npy"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/serve"
	"github.com/jmedseg/jmedseg/torch"
)

// TestMain runs the jmedseg command line instead of the tests when the
// drain test starts this binary as its server (JMEDSEG_SERVE_CHILD holds
// the arguments, one a line).
func TestMain(m *testing.M) {
	if args := os.Getenv("JMEDSEG_SERVE_CHILD"); args != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Main(ctx, append([]string{"jmedseg"}, strings.Split(args, "\n")...))
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// modelSpec is a small untrained model, saved with models.Save: its
// predictions are deterministic, which is all the equality tests need.
type modelSpec struct {
	name     string // architecture
	in       int64
	classes  []string
	width    int64
	size     int
	seed     uint64
	spacingX float64
}

// tiny predicts all three classes on greyImage (GroupNorm: an untrained
// U-Net's BatchNorm in eval mode gives one class everywhere).
var tiny = modelSpec{name: "simple", in: 1, classes: []string{"background", "brain", "lesion"}, width: 4, size: 32, seed: 2, spacingX: 0.5}

// modelFile writes spec's model to dir/name.safetensors.
func modelFile(t testing.TB, dir, file string, spec modelSpec) string {
	t.Helper()
	torch.ManualSeed(spec.seed)
	info := models.Info{Model: spec.name, Config: models.Config{InChannels: spec.in, Classes: int64(len(spec.classes)), Width: spec.width},
		Classes: spec.classes, Size: [2]int{spec.size, spec.size}, Norm: models.DefaultNormalization()}
	if spec.spacingX > 0 {
		info.Spacing = []float64{spec.spacingX, spec.spacingX}
	}
	m, err := models.Build(info)
	require.NoError(t, err)
	defer m.Free()
	path := filepath.Join(dir, file)
	require.NoError(t, models.Save(path, m, info))
	return path
}

// newServer starts a Server for cfg on a loopback port.
func newServer(t testing.TB, cfg serve.Config) (*serve.Server, string) {
	t.Helper()
	s, err := serve.New(cfg)
	require.NoError(t, err)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		s.Close()
	})
	return s, hs.URL
}

// greyImage is a w×h test image: a bright disc on a ramp, with noise.
func greyImage(w, h int, seed uint64) *image.Gray {
	r := rand.New(rand.NewPCG(seed, 7))
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := 40 + 60*x/w + r.IntN(30)
			if dx, dy := float64(x-w/2), float64(y-h/2); dx*dx+dy*dy < float64(w*h)/10 {
				v += 120
			}
			g.Pix[y*w+x] = uint8(min(255, v))
		}
	}
	return g
}

func colourImage(w, h int, seed uint64) *image.NRGBA {
	g := greyImage(w, h, seed)
	c := image.NewNRGBA(g.Rect)
	for i, v := range g.Pix {
		c.SetNRGBA(i%w, i/w, color.NRGBA{v, 255 - v, uint8(i * 13), 255})
	}
	return c
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}))
	return b.Bytes()
}

func encodeNPY(t testing.TB, g *image.Gray, dtype string) []byte {
	t.Helper()
	a := &npy.Array{DType: dtype, Shape: []int{g.Rect.Dy(), g.Rect.Dx()}, Data: make([]float64, len(g.Pix))}
	for i, v := range g.Pix {
		a.Data[i] = float64(v)
		if dtype[0] == 'f' {
			a.Data[i] = float64(v)/255*3 - 1 // min-max scaled by the reader
		}
	}
	var b bytes.Buffer
	require.NoError(t, npy.Write(&b, a))
	return b.Bytes()
}

// niftiVolume is a float32 NIfTI-1 file of nx×ny×nz voxels of 0.9×0.9×2
// mm: a head-like disc with a ramp, zero around it; gzipped when gz.
func niftiVolume(t testing.TB, nx, ny, nz int, gz bool) []byte {
	t.Helper()
	h := make([]byte, 352)
	le := binary.LittleEndian
	le.PutUint32(h[0:], 348)
	le.PutUint16(h[40:], 3)
	for i, d := range []int{nx, ny, nz, 1} {
		le.PutUint16(h[42+2*i:], uint16(d))
	}
	le.PutUint16(h[70:], nifti.DTFloat32)
	le.PutUint16(h[72:], 32)
	for i, v := range []float32{1, 0.9, 0.9, 2} {
		le.PutUint32(h[76+4*i:], math.Float32bits(v))
	}
	le.PutUint32(h[108:], math.Float32bits(352))
	le.PutUint32(h[112:], math.Float32bits(1))
	le.PutUint16(h[254:], 1) // sform: scaled identity
	for i, v := range []float32{0.9, 0.9, 2} {
		le.PutUint32(h[280+16*i+4*i:], math.Float32bits(v))
	}
	copy(h[344:], "n+1\x00")
	var b bytes.Buffer
	b.Write(h)
	for k := range nz {
		for j := range ny {
			for i := range nx {
				v := float32(0)
				if dx, dy := float64(i-nx/2), float64(j-ny/2); dx*dx+dy*dy < float64(nx*ny)/7 {
					v = float32((i*7+j*3+k*11)%200 + 1)
				}
				_ = binary.Write(&b, le, v)
			}
		}
	}
	if !gz {
		return b.Bytes()
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, err := zw.Write(b.Bytes())
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return z.Bytes()
}

// post sends body to url with content type ct ("" for none) and returns
// the status and the answer.
func post(t testing.TB, url, ct string, body []byte, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b, resp.Header
}

func get(t testing.TB, url string, hdr ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// runCLI runs jmedseg in this process and returns its output.
func runCLI(t testing.TB, args ...string) string {
	t.Helper()
	app := cli.App()
	var out, errb bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errb
	err := app.RunContext(context.Background(), append([]string{"jmedseg"}, args...))
	require.NoError(t, err, "jmedseg %s: %s", strings.Join(args, " "), errb.String())
	return out.String()
}
