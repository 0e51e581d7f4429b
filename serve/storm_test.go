package serve_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/serve"
	"github.com/jmedseg/jmedseg/torch"
)

// stormSeeds are valid bodies of every format the fuzzed ones start from.
func stormSeeds(t testing.TB) [][]byte {
	dcm, err := os.ReadFile("../data/dicom/testdata/ct_signed.dcm")
	require.NoError(t, err)
	g := greyImage(24, 20, 5)
	return [][]byte{encodePNG(t, g), encodeJPEG(t, colourImage(20, 20, 6)), encodeNPY(t, g, "u1"), dcm,
		niftiVolume(t, 12, 10, 2, false), niftiVolume(t, 12, 10, 2, true), hugeNIfTIHeader(t), hugePNGHeader(t)}
}

// hugeNIfTIHeader claims 30000×30000×30000 voxels, gzipped: the reader
// must refuse it before inflating or allocating anything.
func hugeNIfTIHeader(t testing.TB) []byte {
	b := niftiVolume(t, 2, 2, 1, false)
	for i := range 3 {
		binary.LittleEndian.PutUint16(b[42+2*i:], 30000)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b)
	zw.Close()
	return z.Bytes()
}

// hugePNGHeader is a PNG whose header claims 60000×60000 pixels.
func hugePNGHeader(t testing.TB) []byte {
	b := encodePNG(t, greyImage(4, 4, 1))
	binary.BigEndian.PutUint32(b[16:], 60000)
	binary.BigEndian.PutUint32(b[20:], 60000)
	return b // its CRC is now wrong too
}

var stormTypes = []string{"", "image/png", "image/jpeg", "application/x-npy", "application/dicom", "application/x-nifti",
	"text/plain", "application/octet-stream", "multipart/form-data; boundary=x", "image/png; q=\"unterminated"}

// mutate returns a fuzzed copy of one of seeds.
func mutate(r *rand.Rand, seeds [][]byte) []byte {
	b := bytes.Clone(seeds[r.IntN(len(seeds))])
	switch r.IntN(6) {
	case 0: // flip bytes
		for range 1 + r.IntN(12) {
			if len(b) > 0 {
				b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
			}
		}
	case 1: // truncate
		b = b[:r.IntN(len(b)+1)]
	case 2: // random bytes
		b = make([]byte, r.IntN(4096))
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
	case 3: // a format's magic and noise
		magic := []string{"\x89PNG\r\n\x1a\n", "\xff\xd8\xff", "\x93NUMPY\x01\x00", "\x1f\x8b\x08\x00", strings.Repeat("\x00", 128) + "DICM"}
		b = append([]byte(magic[r.IntN(len(magic))]), b[r.IntN(len(b)):]...)
	case 4: // overwrite a header field with an extreme value
		if len(b) >= 64 {
			off := r.IntN(60)
			binary.LittleEndian.PutUint32(b[off:], []uint32{0, 0xffffffff, 0x7fffffff, 30000, 348}[r.IntN(5)])
		}
	case 5: // valid, as is
	}
	return b
}

// A storm of fuzzed bodies: every one is answered (200 when it still
// decodes, else 400 or 413, never a 5xx), /healthz answers after it, no
// tensor outlives its request, and the resident memory of a second storm
// stays where the first left it.
func TestFuzzedBodyStorm(t *testing.T) {
	dir := t.TempDir()
	ckpt := modelFile(t, dir, "tiny.safetensors", tiny)
	_, url := newServer(t, serve.Config{Checkpoints: []string{ckpt}, Device: torch.CPU, MaxBody: 1 << 20, MaxPixels: 512 * 512})
	seeds := stormSeeds(t)
	const clients, perClient = 8, 40
	storm := func(round uint64) map[int]int {
		var mu sync.Mutex
		codes := map[int]int{}
		var wg sync.WaitGroup
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(round, uint64(c)))
				for range perClient {
					body := mutate(r, seeds)
					ct := stormTypes[r.IntN(len(stormTypes))]
					path := []string{"/predict", "/predict?format=json", "/predict?format=npy", "/overlay", "/predict?format=nifti"}[r.IntN(5)]
					code, answer, _ := post(t, url+"/v1/models/tiny"+path, ct, body)
					mu.Lock()
					codes[code]++
					mu.Unlock()
					if code >= 500 {
						t.Errorf("%s with %q, %d bytes: %d %s", path, ct, len(body), code, answer)
					}
				}
			}()
		}
		wg.Wait()
		return codes
	}
	live0, _ := torch.Live()
	first := storm(1)
	rss1 := rss(t)
	second := storm(2)
	rss2 := rss(t)
	live1, _ := torch.Live()
	code, _ := get(t, url+"/healthz")
	assert.Equal(t, 200, code, "/healthz after the storm")
	for _, codes := range []map[int]int{first, second} {
		n := 0
		for c, k := range codes {
			assert.Contains(t, []int{200, 400, 413}, c)
			n += k
		}
		assert.Equal(t, clients*perClient, n)
	}
	assert.Equal(t, live0, live1, "tensors alive before and after the storms")
	t.Logf("answers: first storm %v, second %v; resident memory after the first %d MiB, after the second %d MiB", first, second, rss1>>20, rss2>>20)
	assert.Less(t, rss2, rss1+64<<20, "memory is flat from one storm to the next")
	// And it still predicts.
	code, b, _ := post(t, url+"/v1/models/tiny/predict", "", seeds[0])
	assert.Equal(t, 200, code, "%s", b)
}

// rss is this process's resident memory in bytes, after a collection.
func rss(t testing.TB) int64 {
	runtime.GC()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	require.NoError(t, err)
	return pages * int64(os.Getpagesize())
}

// FuzzPredictBody: any body with any content type is answered without a
// 5xx. `go test` runs the seeds; `go test -fuzz FuzzPredictBody ./serve`
// searches.
func FuzzPredictBody(f *testing.F) {
	dir := f.TempDir()
	ckpt := modelFile(f, dir, "tiny.safetensors", tiny)
	_, url := newServer(f, serve.Config{Checkpoints: []string{ckpt}, Device: torch.CPU, MaxBody: 1 << 20, MaxPixels: 512 * 512})
	for i, s := range stormSeeds(f) {
		f.Add(s, uint8(i))
	}
	f.Add([]byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, body []byte, ct uint8) {
		code, answer, _ := post(t, url+"/v1/models/tiny/predict?format=json", stormTypes[int(ct)%len(stormTypes)], body)
		if code >= 500 {
			t.Fatalf("%d bytes: %d %s", len(body), code, answer)
		}
	})
}
