package metaimage

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
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

func zlibBytes(b []byte) []byte {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return z.Bytes()
}

func gzBytes(b []byte) []byte {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return z.Bytes()
}

// lpsFields place axis 0 along -P (2 mm), axis 1 along +L (1.5 mm) and
// axis 2 along +S (3 mm) in ITK's LPS, origin (10, 20, 30): the rows of
// TransformMatrix are the axes' directions.
const lpsFields = "TransformMatrix = 0 -1 0 1 0 0 0 0 1\nOffset = 10 20 30\nElementSpacing = 2 1.5 3\n"

// rasAffine is lpsFields' affine in RAS+.
var rasAffine = [3][4]float64{{0, -1.5, 0, -10}, {2, 0, 0, -20}, {0, 0, 3, 30}}

func write(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

// niftiTwin writes vals with affine as a NIfTI through data/nifti and
// reads it back: the volume the MetaImage reader must equal.
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

// Every storage of the same array reads to the NIfTI of the same data and
// affine.
func TestReadStorages(t *testing.T) {
	vals := known()
	le, be := int16Bytes(vals, binary.LittleEndian), int16Bytes(vals, binary.BigEndian)
	var text strings.Builder
	for _, x := range vals {
		text.WriteString(strconv.FormatFloat(x, 'g', -1, 64) + "\n")
	}
	head := func(extra string) string {
		return "ObjectType = Image\nNDims = 3\nDimSize = 4 3 2\nElementType = MET_SHORT\n" + lpsFields + extra
	}
	cases := []struct {
		name string
		file []byte
	}{
		{"raw", append([]byte(head("ElementDataFile = LOCAL\n")), le...)},
		{"msb", append([]byte(head("BinaryDataByteOrderMSB = True\nElementDataFile = LOCAL\n")), be...)},
		{"ElementByteOrderMSB", append([]byte(head("ElementByteOrderMSB = False\nElementDataFile = LOCAL\n")), le...)},
		{"zlib", append([]byte(head("CompressedData = True\nCompressedDataSize = "+strconv.Itoa(len(zlibBytes(le)))+"\nElementDataFile = LOCAL\n")), zlibBytes(le)...)},
		{"gzip", append([]byte(head("CompressedData = True\nElementDataFile = LOCAL\n")), gzBytes(le)...)},
		{"text", []byte(head("BinaryData = False\nElementDataFile = LOCAL\n") + text.String())},
		{"crlf", append([]byte(strings.ReplaceAll(head("ElementDataFile = LOCAL\n"), "\n", "\r\n")), le...)},
		{"aliases", append([]byte("NDims = 3\nDimSize = 4 3 2\nElementType = MET_SHORT_ARRAY\nRotation = 0 -1 0 1 0 0 0 0 1\nPosition = 10 20 30\nElementSize = 2 1.5 3\nElementDataFile = LOCAL\n"), le...)},
	}
	want := niftiTwin(t, [4]int{4, 3, 2, 1}, rasAffine, vals)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadFile(write(t, "a.mha", c.file))
			require.NoError(t, err)
			assertSame(t, want, got)
			assert.Equal(t, [3]float64{2, 1.5, 3}, got.Spacing)
		})
	}
}

// A .mhd reads its data file beside it (HeaderSize skipped, or -1: the
// data at the end); a missing one is an error naming it.
func TestDetached(t *testing.T) {
	dir := t.TempDir()
	vals := known()
	le := int16Bytes(vals, binary.LittleEndian)
	want := niftiTwin(t, [4]int{4, 3, 2, 1}, rasAffine, vals)
	for _, c := range []struct {
		name, fields string
		data         []byte
	}{
		{"raw", "", le},
		{"header size", "HeaderSize = 5\n", append([]byte("HELLO"), le...)},
		{"at end", "HeaderSize = -1\n", append([]byte("some header of another tool"), le...)},
		{"zraw", "CompressedData = True\n", zlibBytes(le)},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "a.raw"), c.data, 0o644))
			p := filepath.Join(dir, "a.mhd")
			require.NoError(t, os.WriteFile(p, []byte("NDims = 3\nDimSize = 4 3 2\nElementType = MET_SHORT\n"+lpsFields+c.fields+"ElementDataFile = a.raw\n"), 0o644))
			got, err := ReadFile(p)
			require.NoError(t, err)
			assertSame(t, want, got)
		})
	}
	p := write(t, "b.mhd", []byte("NDims = 2\nDimSize = 4 3\nElementType = MET_UCHAR\nElementDataFile = nope.raw\n"))
	_, err := ReadFile(p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), p+": metaimage: ElementDataFile \"nope.raw\"")
}

// 2-D images, channels and a fourth axis become Dim and frames.
func TestGeometry(t *testing.T) {
	vals := known()
	le := int16Bytes(vals, binary.LittleEndian)
	cases := []struct {
		name, fields string
		dim          [4]int
		affine       [3][4]float64
		planar       bool
	}{
		{"2-D", "NDims = 2\nDimSize = 4 6\nTransformMatrix = 0.8 0.6 -0.6 0.8\nOffset = 1 2\nElementSpacing = 1 2\n",
			[4]int{4, 6, 1, 1}, [3][4]float64{{-0.8, 1.2, 0, -1}, {-0.6, -1.6, 0, -2}, {0, 0, 1, 0}}, false},
		{"defaults", "NDims = 3\nDimSize = 4 3 2\n",
			[4]int{4, 3, 2, 1}, [3][4]float64{{-1, 0, 0, 0}, {0, -1, 0, 0}, {0, 0, 1, 0}}, false},
		{"4-D", "NDims = 4\nDimSize = 2 3 2 2\n",
			[4]int{2, 3, 2, 2}, [3][4]float64{{-1, 0, 0, 0}, {0, -1, 0, 0}, {0, 0, 1, 0}}, false},
		{"channels", "NDims = 3\nDimSize = 4 3 1\nElementNumberOfChannels = 2\n",
			[4]int{4, 3, 1, 2}, [3][4]float64{{-1, 0, 0, 0}, {0, -1, 0, 0}, {0, 0, 1, 0}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadFile(write(t, "a.mha", append([]byte(c.fields+"ElementType = MET_SHORT\nElementDataFile = LOCAL\n"), le...)))
			require.NoError(t, err)
			assert.Equal(t, c.dim, got.Dim)
			for i := range 3 {
				for j := range 4 {
					assert.InDelta(t, c.affine[i][j], got.Affine[i][j], 1e-12)
				}
			}
			want := vals
			if c.planar {
				want = make([]float64, len(vals))
				for i := range 12 {
					want[i], want[12+i] = vals[2*i], vals[2*i+1]
				}
			}
			assert.Equal(t, want, got.Data)
			h, err := ReadHeader(write(t, "b.mhd", []byte(c.fields+"ElementType = MET_SHORT\nElementDataFile = b.raw\n")))
			require.NoError(t, err)
			assert.Equal(t, got.Dim, h.Dim)
			assert.Equal(t, got.Affine, h.Affine)
			assert.Nil(t, h.Data)
		})
	}
}

// Encode and ReadFile round-trip every type, compressed or not, with and
// without frames, the affine to rounding.
func TestEncodeRoundTrip(t *testing.T) {
	a := [3][4]float64{{0, -1.5, 0.25, -10.125}, {2, 0, 0, -20}, {0, 0.5, 3, 30.7}}
	for dt := range metTypes {
		for _, frames := range []int{1, 3} {
			for _, z := range []bool{false, true} {
				v := &nifti.Volume{Dim: [4]int{4, 3, 2, frames}, Affine: a, Data: make([]float64, 24*frames)}
				for i := range v.Data {
					v.Data[i] = float64(i % 100)
				}
				var b bytes.Buffer
				require.NoError(t, Encode(&b, v, dt, z))
				got, err := ReadFile(write(t, "a.mha", b.Bytes()))
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
	err := Encode(&bytes.Buffer{}, &nifti.Volume{Dim: [4]int{1, 1, 1, 1}, Data: []float64{-1}}, nifti.DTUint8, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not fit uint8")
}

// Bad headers and data are errors naming the file and the field, found
// without allocating what the header claims.
func TestErrors(t *testing.T) {
	le := int16Bytes(known(), binary.LittleEndian)
	ok := "NDims = 3\nDimSize = 4 3 2\nElementType = MET_SHORT\n"
	cases := []struct{ name, file, want string }{
		{"empty", "", "empty header"},
		{"no data file", ok, "no \"ElementDataFile\""},
		{"not key value", "hello\n", "not \"Key = Value\""},
		{"object", "ObjectType = Mesh\n" + ok + "ElementDataFile = LOCAL\n", "ObjectType \"Mesh\""},
		{"no ndims", "DimSize = 4 3 2\nElementType = MET_SHORT\nElementDataFile = LOCAL\n", "no \"NDims\""},
		{"ndims", "NDims = 5\nElementDataFile = LOCAL\n", "NDims \"5\""},
		{"dimsize count", "NDims = 3\nDimSize = 4 3\nElementType = MET_SHORT\nElementDataFile = LOCAL\n", "DimSize \"4 3\" has 2 values"},
		{"dimsize zero", "NDims = 3\nDimSize = 4 0 3\nElementType = MET_SHORT\nElementDataFile = LOCAL\n", "not a size"},
		{"type", "NDims = 3\nDimSize = 4 3 2\nElementType = MET_LONG_LONG\nElementDataFile = LOCAL\n", "ElementType \"MET_LONG_LONG\""},
		{"huge", "NDims = 3\nDimSize = 100000 100000 100000\nElementType = MET_SHORT\nElementDataFile = LOCAL\n", "too many"},
		{"truncated", ok + "ElementDataFile = LOCAL\n" + string(le[:20]), "DimSize 4 3 2 of int16 needs 48 bytes, the file has 20"},
		{"big claim", "NDims = 3\nDimSize = 512 512 200\nElementType = MET_SHORT\nElementDataFile = LOCAL\nxx", "needs 104857600 bytes, the file has 2"},
		{"zlib claim", "NDims = 3\nDimSize = 512 512 200\nElementType = MET_SHORT\nCompressedData = True\nElementDataFile = LOCAL\n" + string(zlibBytes([]byte("tiny"))), "truncated: 4 of 104857600"},
		{"compressed size", ok + "CompressedData = True\nCompressedDataSize = 9999\nElementDataFile = LOCAL\n" + string(zlibBytes(le)), "CompressedDataSize is 9999 bytes"},
		{"not zlib", ok + "CompressedData = True\nElementDataFile = LOCAL\n" + string(le), "corrupt compressed data"},
		{"zlib extra", ok + "CompressedData = True\nElementDataFile = LOCAL\n" + string(zlibBytes(append(le, 1, 2))), "more than DimSize needs"},
		{"bool", ok + "BinaryDataByteOrderMSB = maybe\nElementDataFile = LOCAL\n", "BinaryDataByteOrderMSB \"maybe\": want True or False"},
		{"spacing", ok + "ElementSpacing = 1 x 1\nElementDataFile = LOCAL\n", "ElementSpacing (or ElementSize) \"1 x 1\""},
		{"matrix count", ok + "TransformMatrix = 1 0 0 1\nElementDataFile = LOCAL\n", "TransformMatrix \"1 0 0 1\" has 4 values, want 9"},
		{"degenerate", ok + "TransformMatrix = 1 0 0 1 0 0 0 0 1\nElementDataFile = LOCAL\n", "degenerate"},
		{"twice", ok + "Offset = 0 0 0\nOrigin = 1 1 1\nElementDataFile = LOCAL\n", "\"Origin\" given twice"},
		{"list", ok + "ElementDataFile = LIST\n", "only LOCAL or one data file"},
		{"pattern", ok + "ElementDataFile = s%03d.raw 1 2 1\n", "only LOCAL or one data file"},
		{"text short", ok + "BinaryData = False\nElementDataFile = LOCAL\n1 2 3", "3 of 24 values"},
		{"channels 4-D", "NDims = 4\nDimSize = 2 2 2 2\nElementNumberOfChannels = 3\nElementType = MET_SHORT\nElementDataFile = LOCAL\n", "NDims 4 with several channels"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := write(t, "bad.mha", []byte(c.file))
			_, err := ReadFile(p)
			require.Error(t, err)
			assert.Contains(t, err.Error(), p+": ")
			assert.Contains(t, err.Error(), c.want)
		})
	}
	_, err := ParseHeader(bufio.NewReader(strings.NewReader("NDims = 3\nComment = " + strings.Repeat("x", MaxHeaderBytes))))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "header longer than")
}

// FuzzHeader: any bytes either fail with an error or parse to a header
// whose volume and data read back without panicking, quickly, and never
// above the voxel limit.
func FuzzHeader(f *testing.F) {
	le := int16Bytes(known(), binary.LittleEndian)
	f.Add([]byte("ObjectType = Image\nNDims = 3\nDimSize = 4 3 2\nElementType = MET_SHORT\n" + lpsFields + "ElementDataFile = LOCAL\n" + string(le)))
	f.Add([]byte("NDims = 3\nDimSize = 4 3 2\nElementType = MET_SHORT\nCompressedData = True\nCompressedDataSize = 10\nElementDataFile = LOCAL\n" + string(zlibBytes(le))))
	f.Add([]byte("NDims = 2\nDimSize = 2 2\nElementNumberOfChannels = 3\nBinaryData = False\nElementType = MET_FLOAT\nElementDataFile = LOCAL\n1 2 3 4 5 6 7 8 9 10 11 12"))
	f.Add([]byte("NDims = 4\nDimSize = 9999 9999 9 9\nElementType = MET_DOUBLE\nHeaderSize = -1\nElementDataFile = x.raw\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "metaimage: ") {
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
		p := filepath.Join(dir, "f.mha")
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
