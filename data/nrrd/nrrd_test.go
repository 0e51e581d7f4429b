package nrrd

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/data/nifti"
)

// known is the test array: 4×3×2 int16 values, x fastest.
func known() []float64 {
	v := make([]float64, 4*3*2)
	for i := range v {
		v[i] = float64((i*37)%251 - 100)
	}
	return v
}

func int16Bytes(vals []float64, o binary.ByteOrder) []byte {
	b := make([]byte, 2*len(vals))
	for i, x := range vals {
		o.PutUint16(b[2*i:], uint16(int16(x)))
	}
	return b
}

func gz(b []byte) []byte {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return z.Bytes()
}

// bz2Known is known() as little-endian int16, bzip2-compressed by
// Python's bz2 module (Go's standard library only decompresses bzip2).
const bz2Known = "\x42\x5a\x68\x39\x31\x41\x59\x26\x53\x59\x30\x09\xb0\x33\x00\x00\x0c\x6f\xff\xc0\x08\x08\x08\x40\x40\x40\x00\x02\x02\x02\x00\x00\x10\x10\x10\x00\x04\x04\x04\x04\x00\x20\x20\x20\x20\x01\x01\x01\x01\xa0\x00\x21\xa2\x8d\x32\x68\x61\x30\xc9\xa1\x40\x00\x01\x93\x20\xf8\xe5\xdd\x3e\x1d\xc7\xcf\x7e\x62\x91\x00\x66\x46\x00\x45\xd3\x5a\xf8\xca\x2e\x9b\x62\xee\x48\xa7\x0a\x12\x06\x01\x36\x06\x60"

// lpsHeader places the axes in LPS: axis 0 along -P (2 mm), axis 1 along
// +L (1.5 mm), axis 2 along +S (3 mm), origin (10, 20, 30).
const lpsHeader = "space: left-posterior-superior\nspace directions: (0,-2,0) (1.5,0,0) (0,0,3)\nspace origin: (10,20,30)\n"

// rasAffine is lpsHeader's affine in RAS+: x and y negated.
var rasAffine = [3][4]float64{{0, -1.5, 0, -10}, {2, 0, 0, -20}, {0, 0, 3, 30}}

func write(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

// niftiTwin writes vals with affine as a NIfTI through data/nifti and reads
// it back: the volume the NRRD reader must equal.
func niftiTwin(t *testing.T, dim [4]int, affine [3][4]float64, vals []float64) *nifti.Volume {
	t.Helper()
	var sp [3]float64
	for j := range 3 {
		sp[j] = math.Sqrt(affine[0][j]*affine[0][j] + affine[1][j]*affine[1][j] + affine[2][j]*affine[2][j])
	}
	var b bytes.Buffer
	require.NoError(t, nifti.Encode(&b, &nifti.Volume{Dim: dim, Affine: affine, Spacing: sp, Data: vals}, nifti.DTInt16, false))
	v, err := nifti.Decode(&b)
	require.NoError(t, err)
	return v
}

func assertSame(t *testing.T, want, got *nifti.Volume) {
	t.Helper()
	assert.Equal(t, want.Dim, got.Dim)
	assert.Equal(t, want.Data, got.Data)
	for i := range 3 {
		assert.InDelta(t, want.Spacing[i], got.Spacing[i], 1e-6)
		for j := range 4 {
			assert.InDelta(t, want.Affine[i][j], got.Affine[i][j], 1e-6, "affine[%d][%d]", i, j)
		}
	}
	assert.Equal(t, want.Orientation(), got.Orientation())
}

// Every encoding and byte order of the same array reads to the NIfTI of
// the same data and affine.
func TestReadEncodings(t *testing.T) {
	vals := known()
	le, be := int16Bytes(vals, binary.LittleEndian), int16Bytes(vals, binary.BigEndian)
	var ascii strings.Builder
	for i, x := range vals {
		if i%5 == 4 {
			ascii.WriteString("\n")
		}
		ascii.WriteString(" " + strconv.FormatFloat(x, 'g', -1, 64))
	}
	head := func(typ, extra string) string {
		return "NRRD0004\n# a comment\ntype: " + typ + "\ndimension: 3\nsizes: 4 3 2\n" + lpsHeader + extra
	}
	cases := []struct {
		name string
		file []byte
	}{
		{"raw little", append([]byte(head("short", "endian: little\nencoding: raw\n")+"\n"), le...)},
		{"raw big", append([]byte(head("int16_t", "endian: big\nencoding: raw\n")+"\n"), be...)},
		{"gzip", append([]byte(head("signed short int", "endian: little\nencoding: gzip\n")+"\n"), gz(le)...)},
		{"bzip2", append([]byte(head("int16", "endian: little\nencoding: bz2\n")+"\n"), bz2Known...)},
		{"ascii", []byte(head("short", "encoding: ascii\n") + "\n" + ascii.String() + "\n")},
		{"crlf", append([]byte(strings.ReplaceAll(head("short", "endian: little\nencoding: raw\n"), "\n", "\r\n")+"\r\n"), le...)},
		{"key values", append([]byte(head("short", "endian: little\nencoding: raw\nmodality:=MR\n")+"\n"), le...)},
		{"byte skip", append([]byte(head("short", "endian: little\nencoding: raw\nbyte skip: 3\n")+"\nabc"), le...)},
		{"gzip byte skip", append([]byte(head("short", "endian: little\nencoding: gzip\nbyte skip: 2\n")+"\n"), gz(append([]byte("xy"), le...))...)},
		{"line skip", append([]byte(head("short", "endian: little\nencoding: raw\nline skip: 2\n")+"\nfirst\nsecond\n"), le...)},
		{"byte skip -1", append([]byte(head("short", "endian: little\nencoding: raw\nbyte skip: -1\n")+"\nJUNK"), le...)},
	}
	want := niftiTwin(t, [4]int{4, 3, 2, 1}, rasAffine, vals)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadFile(write(t, "a.nrrd", c.file))
			require.NoError(t, err)
			assertSame(t, want, got)
			assert.Equal(t, "space directions", got.AffineSource)
			assert.Equal(t, [3]float64{2, 1.5, 3}, got.Spacing)
		})
	}
}

// A detached header (.nhdr) reads its data file beside it, and a missing
// one is an error naming it.
func TestDetached(t *testing.T) {
	dir := t.TempDir()
	vals := known()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.raw.gz"), gz(int16Bytes(vals, binary.LittleEndian)), 0o644))
	hdr := "NRRD0005\ntype: short\ndimension: 3\nsizes: 4 3 2\n" + lpsHeader + "endian: little\nencoding: gzip\ndata file: a.raw.gz\n"
	p := filepath.Join(dir, "a.nhdr")
	require.NoError(t, os.WriteFile(p, []byte(hdr), 0o644))
	got, err := ReadFile(p)
	require.NoError(t, err)
	assertSame(t, niftiTwin(t, [4]int{4, 3, 2, 1}, rasAffine, vals), got)

	require.NoError(t, os.WriteFile(p, []byte(strings.Replace(hdr, "a.raw.gz", "b.raw", 1)), 0o644))
	_, err = ReadFile(p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), p+": nrrd: data file \"b.raw\"")
}

// Spaces other than LPS, spacings without directions, 2-D images and a
// channel axis.
func TestGeometry(t *testing.T) {
	vals := known()
	le := int16Bytes(vals, binary.LittleEndian)
	cases := []struct {
		name, fields string
		dim          [4]int
		affine       [3][4]float64
		planar       bool
	}{
		{"RAS", "dimension: 3\nsizes: 4 3 2\nspace: RAS\nspace directions: (0,-2,0) (1.5,0,0) (0,0,3)\nspace origin: (10,20,30)\n",
			[4]int{4, 3, 2, 1}, [3][4]float64{{0, 1.5, 0, 10}, {-2, 0, 0, 20}, {0, 0, 3, 30}}, false},
		{"LAS", "dimension: 3\nsizes: 4 3 2\nspace: left-anterior-superior\nspace directions: (0,-2,0) (1.5,0,0) (0,0,3)\n",
			[4]int{4, 3, 2, 1}, [3][4]float64{{0, -1.5, 0, 0}, {-2, 0, 0, 0}, {0, 0, 3, 0}}, false},
		{"spacings", "dimension: 3\nsizes: 4 3 2\nspacings: 2 nan 3\n",
			[4]int{4, 3, 2, 1}, [3][4]float64{{-2, 0, 0, 0}, {0, -1, 0, 0}, {0, 0, 3, 0}}, false},
		{"2-D", "dimension: 2\nsizes: 4 6\nspace dimension: 2\nspace directions: (1,0) (0,1)\n",
			[4]int{4, 6, 1, 1}, [3][4]float64{{-1, 0, 0, 0}, {0, -1, 0, 0}, {0, 0, 1, 0}}, false},
		{"channels last", "dimension: 3\nsizes: 4 3 2\nkinds: domain domain list\n",
			[4]int{4, 3, 1, 2}, [3][4]float64{{-1, 0, 0, 0}, {0, -1, 0, 0}, {0, 0, 1, 0}}, false},
		{"vector first", "dimension: 4\nsizes: 2 4 3 1\nspace: LPS\nspace directions: none (1,0,0) (0,1,0) (0,0,1)\n",
			[4]int{4, 3, 1, 2}, [3][4]float64{{-1, 0, 0, 0}, {0, -1, 0, 0}, {0, 0, 1, 0}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadFile(write(t, "a.nrrd", append([]byte("NRRD0004\ntype: short\n"+c.fields+"endian: little\nencoding: raw\n\n"), le...)))
			require.NoError(t, err)
			assert.Equal(t, c.dim, got.Dim)
			assert.Equal(t, c.affine, got.Affine)
			want := vals
			if c.planar { // stored channel fastest: frame k is every second value
				want = make([]float64, len(vals))
				for i := range 12 {
					want[i], want[12+i] = vals[2*i], vals[2*i+1]
				}
			}
			assert.Equal(t, want, got.Data)
			h, err := ReadHeader(write(t, "b.nrrd", []byte("NRRD0004\ntype: short\n"+c.fields+"endian: little\nencoding: raw\n\n")))
			require.NoError(t, err)
			assert.Equal(t, got.Dim, h.Dim)
			assert.Equal(t, got.Affine, h.Affine)
			assert.Nil(t, h.Data)
		})
	}
}

// Encode and ReadFile round-trip every type, with and without gzip and
// frames, the affine exactly.
func TestEncodeRoundTrip(t *testing.T) {
	a := [3][4]float64{{0, -1.5, 0.25, -10.125}, {2, 0, 0, -20}, {0, 0.5, 3, 30.7}}
	for _, dt := range []int16{nifti.DTUint8, nifti.DTInt8, nifti.DTInt16, nifti.DTUint16, nifti.DTInt32, nifti.DTUint32, nifti.DTFloat32, nifti.DTFloat64} {
		for _, frames := range []int{1, 3} {
			for _, z := range []bool{false, true} {
				v := &nifti.Volume{Dim: [4]int{4, 3, 2, frames}, Affine: a, Data: make([]float64, 24*frames)}
				for i := range v.Data {
					v.Data[i] = float64(i % 100)
				}
				var b bytes.Buffer
				require.NoError(t, Encode(&b, v, dt, z))
				got, err := ReadFile(write(t, "a.nrrd", b.Bytes()))
				require.NoError(t, err, "%s", nifti.DatatypeName(dt))
				assert.Equal(t, v.Dim, got.Dim)
				assert.Equal(t, v.Data, got.Data)
				assert.Equal(t, dt, got.Datatype)
				for i := range 3 {
					for j := range 4 {
						assert.InDelta(t, a[i][j], got.Affine[i][j], 1e-12)
					}
				}
			}
		}
	}
	err := Encode(&bytes.Buffer{}, &nifti.Volume{Dim: [4]int{1, 1, 1, 1}, Data: []float64{300}}, nifti.DTUint8, false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not fit uint8")
}

// Bad headers and data are errors naming the file and the field, found
// without allocating what the header claims.
func TestErrors(t *testing.T) {
	le := int16Bytes(known(), binary.LittleEndian)
	ok := "type: short\ndimension: 3\nsizes: 4 3 2\nendian: little\nencoding: raw\n"
	cases := []struct{ name, file, want string }{
		{"empty", "", "empty file"},
		{"magic", "P5\n", "bad magic \"P5\""},
		{"no type", "NRRD0004\ndimension: 3\nsizes: 4 3 2\nencoding: raw\n\n", "no \"type\""},
		{"block", "NRRD0004\ntype: block\n\n", "type block"},
		{"complex", "NRRD0004\ntype: complex\n\n", "type \"complex\""},
		{"sizes count", "NRRD0004\ntype: short\ndimension: 3\nsizes: 4 3\nencoding: raw\n\n", "sizes \"4 3\" has 2 values"},
		{"zero size", "NRRD0004\ntype: short\ndimension: 3\nsizes: 4 0 2\nencoding: raw\n\n", "not a size"},
		{"huge", "NRRD0004\ntype: short\ndimension: 3\nsizes: 100000 100000 100000\nendian: little\nencoding: raw\n\n", "too many"},
		{"truncated", "NRRD0004\n" + ok + "\n" + string(le[:20]), "voxel data truncated: sizes 4 3 2 of int16 need 48 bytes, the file has 20"},
		{"big claim", "NRRD0004\ntype: short\ndimension: 3\nsizes: 512 512 200\nendian: little\nencoding: raw\n\nxx", "need 104857600 bytes, the file has 2"},
		{"gzip claim", "NRRD0004\ntype: short\ndimension: 3\nsizes: 512 512 200\nendian: little\nencoding: gzip\n\n" + string(gz([]byte("tiny"))), "truncated: 4 of 104857600"},
		{"no endian", "NRRD0004\ntype: short\ndimension: 3\nsizes: 4 3 2\nencoding: raw\n\n", "no \"endian\""},
		{"encoding", "NRRD0004\ntype: short\ndimension: 3\nsizes: 4 3 2\nendian: little\nencoding: hex\n\n", "encoding \"hex\""},
		{"space", "NRRD0004\n" + ok + "space: 3D-left-handed\n\n", "space \"3D-left-handed\""},
		{"directions count", "NRRD0004\n" + ok + "space: LPS\nspace directions: (1,0,0) (0,1,0)\n\n", "space directions: \"(1,0,0) (0,1,0)\" has 2 vectors, want 3"},
		{"direction nan", "NRRD0004\n" + ok + "space: LPS\nspace directions: (1,0,0) (0,nan,0) (0,0,1)\n\n", "not a finite number"},
		{"degenerate", "NRRD0004\n" + ok + "space: LPS\nspace directions: (1,0,0) (1,0,0) (0,0,1)\n\n" + string(le), "degenerate"},
		{"directions without space", "NRRD0004\n" + ok + "space directions: (1,0,0) (0,1,0) (0,0,1)\n\n", "without \"space\""},
		{"two channel axes", "NRRD0004\ntype: short\ndimension: 3\nsizes: 4 3 2\nkinds: list domain vector\nendian: little\nencoding: raw\n\n", "both non-spatial"},
		{"4-D unnamed", "NRRD0004\ntype: short\ndimension: 4\nsizes: 2 2 2 3\nendian: little\nencoding: raw\n\n", "kinds or space directions"},
		{"1-D", "NRRD0004\ntype: short\ndimension: 1\nsizes: 5\nendian: little\nencoding: raw\n\n", "1-D array"},
		{"field twice", "NRRD0004\n" + ok + "sizes: 4 3 2\n\n", "field \"sizes\" given twice"},
		{"not a field", "NRRD0004\n" + ok + "what is this\n\n", "not \"field: value\""},
		{"ascii short", "NRRD0004\ntype: short\ndimension: 2\nsizes: 2 2\nencoding: ascii\n\n1 2 3", "3 of 4 values"},
		{"ascii word", "NRRD0004\ntype: short\ndimension: 2\nsizes: 2 2\nencoding: ascii\n\n1 2 x 4", "\"x\" is not a number"},
		{"list file", "NRRD0004\n" + ok + "data file: LIST\n\n", "only one detached data file"},
		{"byte skip -1 gzip", "NRRD0004\ntype: short\ndimension: 3\nsizes: 4 3 2\nendian: little\nencoding: gzip\nbyte skip: -1\n\n", "byte skip -1 needs raw"},
		{"gzip corrupt", "NRRD0004\ntype: short\ndimension: 3\nsizes: 4 3 2\nendian: little\nencoding: gzip\n\n" + string(gz(le)[:30]), "truncated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := write(t, "bad.nrrd", []byte(c.file))
			_, err := ReadFile(p)
			require.Error(t, err)
			assert.Contains(t, err.Error(), p+": ")
			assert.Contains(t, err.Error(), c.want)
		})
	}
	// A header that never ends is refused at MaxHeaderBytes.
	_, err := ParseHeader(bufio.NewReader(strings.NewReader("NRRD0004\n# " + strings.Repeat("x", MaxHeaderBytes))))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "header longer than")
}

// FuzzHeader: any bytes either fail with an error or parse to a header
// whose volume and data read back without panicking, quickly, and never
// above the voxel limit.
func FuzzHeader(f *testing.F) {
	le := int16Bytes(known(), binary.LittleEndian)
	f.Add([]byte("NRRD0004\ntype: short\ndimension: 3\nsizes: 4 3 2\n" + lpsHeader + "endian: little\nencoding: raw\n\n" + string(le)))
	f.Add([]byte("NRRD0004\ntype: short\ndimension: 3\nsizes: 4 3 2\nendian: little\nencoding: gzip\nbyte skip: 2\n\n" + string(gz(le))))
	f.Add([]byte("NRRD0004\ntype: float\ndimension: 4\nsizes: 2 2 2 2\nspace: RAS\nspace directions: none (1,0,0) (0,1,0) (0,0,1)\nencoding: ascii\n\n1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16"))
	f.Add([]byte("NRRD0001\ntype: uchar\ndimension: 2\nsizes: 3 2\nspacings: 1 2\nkinds: domain domain\nencoding: txt\nline skip: 1\n\nskip\n1 2 3 4 5 6\n"))
	f.Add([]byte("NRRD0004\ntype: uchar\ndimension: 3\nsizes: 99999 99999 9\nencoding: bz2\ndata file: x.raw\n\n"))
	f.Add([]byte("NRRD0004\ntype: uchar\ndimension: 2\nsizes: 2 2\nencoding: bzip2\n\n" + bz2Known))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "nrrd: ") {
				t.Fatalf("error without the package name: %v", err)
			}
			return
		}
		if h.Size > int64(len(b)) {
			t.Fatalf("header of %d bytes in %d", h.Size, len(b))
		}
		v, err := h.Volume()
		if err == nil && v.Dim[0]*v.Dim[1]*v.Dim[2]*v.Dim[3] > nifti.MaxVoxels {
			t.Fatalf("volume %v above the limit", v.Dim)
		}
		p := filepath.Join(dir, "f.nrrd")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		v, err = ReadFile(p)
		if err == nil && len(v.Data) != v.Dim[0]*v.Dim[1]*v.Dim[2]*v.Dim[3] {
			t.Fatalf("%d values for %v", len(v.Data), v.Dim)
		}
		if err != nil && !strings.HasPrefix(err.Error(), p+": ") {
			t.Fatalf("error does not name the file: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("took %v", d)
		}
	})
}
