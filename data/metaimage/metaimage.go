// Package metaimage reads and writes MetaImage files (ITK's MetaIO: .mha
// with the data in the same file, .mhd with it in a separate .raw or
// .zraw file) as nifti.Volume values, so that every path that takes a
// NIfTI volume takes them unchanged.
//
// Supported: ObjectType Image; NDims 2, 3 or 4 (the fourth axis becomes
// frames); DimSize; ElementType MET_CHAR, MET_UCHAR, MET_SHORT,
// MET_USHORT, MET_INT, MET_UINT, MET_FLOAT, MET_DOUBLE (and the _ARRAY
// forms); ElementNumberOfChannels (interleaved channels become frames);
// BinaryData (False: text); BinaryDataByteOrderMSB (ElementByteOrderMSB);
// CompressedData (zlib, or gzip); ElementSpacing (ElementSize);
// Offset (Origin, Position); TransformMatrix (Rotation, Orientation);
// HeaderSize (-1: data at the end of the file); ElementDataFile LOCAL or
// one file. World coordinates are ITK's LPS, converted to RAS+ by
// negating x and y.
package metaimage

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jmedseg/jmedseg/data/internal/voxel"
	"github.com/jmedseg/jmedseg/data/nifti"
)

// MaxHeaderBytes bounds the text header: a file without ElementDataFile
// within it is not a MetaImage header.
const MaxHeaderBytes = 1 << 20

// Header holds the fields of a MetaImage header that this package uses.
type Header struct {
	// NDims is the number of axes (2 to 4).
	NDims int
	// DimSize is each axis's extent, fastest first.
	DimSize []int
	// Datatype is the element type as a NIfTI datatype code.
	Datatype int16
	// Channels is ElementNumberOfChannels (1 when absent).
	Channels int
	// Binary is false for text data (BinaryData = False).
	Binary bool
	// MSB is set for big-endian data.
	MSB bool
	// Compressed is set by CompressedData = True; CompressedSize is
	// CompressedDataSize (0 when absent).
	Compressed     bool
	CompressedSize int64
	// Spacing, Offset and Transform (NDims×NDims, row i the direction of
	// axis i) as given, or their defaults.
	Spacing   []float64
	Offset    []float64
	Transform []float64
	// HeaderSize is bytes skipped at the start of a separate data file
	// (-1: the data is at its end).
	HeaderSize int64
	// DataFile is ElementDataFile: "LOCAL" or a file name.
	DataFile string
	// Size is the length in bytes of the header, ElementDataFile's line
	// included: where LOCAL data begins.
	Size int64
}

var elementTypes = map[string]int16{
	"MET_CHAR": nifti.DTInt8, "MET_UCHAR": nifti.DTUint8, "MET_SHORT": nifti.DTInt16, "MET_USHORT": nifti.DTUint16,
	"MET_INT": nifti.DTInt32, "MET_UINT": nifti.DTUint32, "MET_FLOAT": nifti.DTFloat32, "MET_DOUBLE": nifti.DTFloat64,
}

// ParseHeader reads a MetaImage header from r up to and including the
// ElementDataFile line, which ends it. Errors name the field.
func ParseHeader(r *bufio.Reader) (*Header, error) {
	h := &Header{Channels: 1, Binary: true}
	fields := map[string]string{}
	for {
		line, err := readLine(r, &h.Size)
		if err != nil && line == "" {
			if errors.Is(err, io.EOF) {
				if len(fields) == 0 {
					return nil, errors.New("metaimage: empty header (want \"ObjectType = Image\" ... \"ElementDataFile = ...\")")
				}
				return nil, errors.New("metaimage: no \"ElementDataFile\" field (the header's last line)")
			}
			return nil, err
		}
		t := strings.TrimSpace(line)
		if t == "" {
			continue
		}
		i := strings.IndexByte(t, '=')
		if i <= 0 {
			return nil, fmt.Errorf("metaimage: header line %q is not \"Key = Value\"", trunc(t))
		}
		key, val := strings.ToLower(strings.TrimSpace(t[:i])), strings.TrimSpace(t[i+1:])
		for _, alias := range [][2]string{{"origin", "offset"}, {"position", "offset"},
			{"rotation", "transformmatrix"}, {"orientation", "transformmatrix"}, {"elementbyteordermsb", "binarydatabyteordermsb"}} {
			if key == alias[0] {
				key = alias[1]
			}
		}
		if _, dup := fields[key]; dup {
			return nil, fmt.Errorf("metaimage: field %q given twice (or under another name)", strings.TrimSpace(t[:i]))
		}
		fields[key] = val
		if key == "elementdatafile" {
			break
		}
	}
	if ot, ok := fields["objecttype"]; ok && !strings.EqualFold(ot, "Image") {
		return nil, fmt.Errorf("metaimage: ObjectType %q is not an image (want Image)", trunc(ot))
	}
	var err error
	nd, ok := fields["ndims"]
	if !ok {
		return nil, errors.New("metaimage: no \"NDims\" field")
	}
	if h.NDims, err = strconv.Atoi(nd); err != nil || h.NDims < 2 || h.NDims > 4 {
		return nil, fmt.Errorf("metaimage: NDims %q: want 2, 3 or 4", trunc(nd))
	}
	ds, ok := fields["dimsize"]
	if !ok {
		return nil, errors.New("metaimage: no \"DimSize\" field")
	}
	for _, f := range strings.Fields(ds) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("metaimage: DimSize %q: %q is not a size of 1 or more", trunc(ds), trunc(f))
		}
		h.DimSize = append(h.DimSize, n)
	}
	if len(h.DimSize) != h.NDims {
		return nil, fmt.Errorf("metaimage: DimSize %q has %d values for NDims %d", trunc(ds), len(h.DimSize), h.NDims)
	}
	et, ok := fields["elementtype"]
	if !ok {
		return nil, errors.New("metaimage: no \"ElementType\" field")
	}
	if h.Datatype, ok = elementTypes[strings.TrimSuffix(strings.ToUpper(et), "_ARRAY")]; !ok {
		return nil, fmt.Errorf("metaimage: ElementType %q is not supported (want MET_CHAR, MET_UCHAR, MET_SHORT, MET_USHORT, MET_INT, MET_UINT, MET_FLOAT or MET_DOUBLE)", trunc(et))
	}
	if c, ok := fields["elementnumberofchannels"]; ok {
		if h.Channels, err = strconv.Atoi(c); err != nil || h.Channels < 1 || h.Channels > 1024 {
			return nil, fmt.Errorf("metaimage: ElementNumberOfChannels %q: want 1 to 1024", trunc(c))
		}
		if h.Channels > 1 && h.NDims == 4 {
			return nil, errors.New("metaimage: NDims 4 with several channels: jmedseg reads one channel or time axis")
		}
	}
	if _, err := voxel.Count(append(append([]int(nil), h.DimSize...), h.Channels)); err != nil {
		return nil, fmt.Errorf("metaimage: DimSize: %w", err)
	}
	for key, dst := range map[string]*bool{"binarydata": &h.Binary, "binarydatabyteordermsb": &h.MSB, "compresseddata": &h.Compressed} {
		if s, ok := fields[key]; ok {
			b, err := parseBool(s)
			if err != nil {
				return nil, fmt.Errorf("metaimage: %s %q: %w", name(key), trunc(s), err)
			}
			*dst = b
		}
	}
	if h.Compressed && !h.Binary {
		return nil, errors.New("metaimage: CompressedData = True with BinaryData = False: compressed data is binary")
	}
	if s, ok := fields["compresseddatasize"]; ok {
		if h.CompressedSize, err = strconv.ParseInt(s, 10, 64); err != nil || h.CompressedSize < 0 {
			return nil, fmt.Errorf("metaimage: CompressedDataSize %q: want a byte count", trunc(s))
		}
	}
	if _, ok := fields["elementspacing"]; !ok && fields["elementsize"] != "" {
		fields["elementspacing"] = fields["elementsize"] // the voxel size stands in for a missing spacing
	}
	if h.Spacing, err = floats(fields, "elementspacing", h.NDims, 1); err != nil {
		return nil, err
	}
	if h.Offset, err = floats(fields, "offset", h.NDims, 0); err != nil {
		return nil, err
	}
	id := make([]float64, h.NDims*h.NDims)
	for i := range h.NDims {
		id[i*h.NDims+i] = 1
	}
	if _, ok := fields["transformmatrix"]; ok {
		if h.Transform, err = floats(fields, "transformmatrix", h.NDims*h.NDims, 0); err != nil {
			return nil, err
		}
	} else {
		h.Transform = id
	}
	if s, ok := fields["headersize"]; ok {
		if h.HeaderSize, err = strconv.ParseInt(s, 10, 64); err != nil || h.HeaderSize < -1 {
			return nil, fmt.Errorf("metaimage: HeaderSize %q: want -1 (data at the end of the file) or 0 and more", trunc(s))
		}
	}
	h.DataFile = fields["elementdatafile"]
	if h.DataFile == "" {
		return nil, errors.New("metaimage: ElementDataFile is empty (want LOCAL or a file name)")
	}
	return h, nil
}

// names restores the spelling of a lower-cased key for errors.
var names = map[string]string{"binarydata": "BinaryData", "binarydatabyteordermsb": "BinaryDataByteOrderMSB",
	"compresseddata": "CompressedData", "elementspacing": "ElementSpacing (or ElementSize)", "offset": "Offset", "transformmatrix": "TransformMatrix"}

func name(key string) string {
	if n, ok := names[key]; ok {
		return n
	}
	return key
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	}
	return false, errors.New("want True or False")
}

// floats parses n finite numbers of field key, or n copies of def when
// the field is absent.
func floats(fields map[string]string, key string, n int, def float64) ([]float64, error) {
	s, ok := fields[key]
	out := make([]float64, n)
	if !ok {
		for i := range out {
			out[i] = def
		}
		return out, nil
	}
	f := strings.Fields(s)
	if len(f) != n {
		return nil, fmt.Errorf("metaimage: %s %q has %d values, want %d", name(key), trunc(s), len(f), n)
	}
	for i, p := range f {
		x, err := strconv.ParseFloat(p, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("metaimage: %s %q: %q is not a finite number", name(key), trunc(s), trunc(p))
		}
		out[i] = x
	}
	return out, nil
}

func readLine(r *bufio.Reader, size *int64) (string, error) {
	var b []byte
	for {
		chunk, err := r.ReadSlice('\n')
		b = append(b, chunk...)
		if *size+int64(len(b)) > MaxHeaderBytes {
			return "", fmt.Errorf("metaimage: header longer than %d bytes without ElementDataFile", MaxHeaderBytes)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		*size += int64(len(b))
		return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), err
	}
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// Volume is the volume the header describes, without voxel data: Dim,
// Spacing, Affine (RAS+), AffineSource and Datatype.
func (h *Header) Volume() (*nifti.Volume, error) {
	v := &nifti.Volume{Dim: [4]int{1, 1, 1, 1}, Datatype: h.Datatype, AffineSource: "TransformMatrix"}
	sd := min(h.NDims, 3)
	for i := range h.NDims {
		v.Dim[i] = h.DimSize[i]
	}
	if h.Channels > 1 {
		v.Dim[3] = h.Channels
	}
	vecs := make([][]float64, sd)
	for j := range sd {
		vecs[j] = make([]float64, sd)
		for i := range sd {
			vecs[j][i] = h.Transform[j*h.NDims+i] * h.Spacing[j]
		}
	}
	v.Affine, v.Spacing = voxel.Affine(vecs, h.Offset[:sd])
	if det3(v.Affine) == 0 {
		return nil, errors.New("metaimage: TransformMatrix and ElementSpacing are degenerate (the axes do not span the space)")
	}
	voxel.FlipXY(&v.Affine) // LPS to RAS
	return v, nil
}

func det3(a [3][4]float64) float64 {
	return a[0][0]*(a[1][1]*a[2][2]-a[1][2]*a[2][1]) -
		a[0][1]*(a[1][0]*a[2][2]-a[1][2]*a[2][0]) +
		a[0][2]*(a[1][0]*a[2][1]-a[1][1]*a[2][0])
}

// ReadHeader reads only the header of the MetaImage file at path and
// returns the volume it describes without voxel data (Data is nil).
// Errors name the file.
func ReadHeader(path string) (*nifti.Volume, error) {
	h, err := readHeaderFile(path)
	if err != nil {
		return nil, err
	}
	v, err := h.Volume()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func readHeaderFile(path string) (*Header, error) { return voxel.ReadHeaderFile(path, ParseHeader) }

// ReadFile decodes the MetaImage at path (.mha, or a .mhd header and its
// data file) into a volume: the first three axes as Dim[0:3], a fourth
// axis or the channels as frames (Dim[3]), the affine in RAS+. The
// header's sizes are checked against nifti.MaxVoxels and, for raw data,
// against the bytes in the file before anything is allocated. Errors name
// the file.
func ReadFile(path string) (*nifti.Volume, error) {
	v, err := readFile(path)
	if err != nil {
		return nil, voxel.Named(path, err)
	}
	return v, nil
}

func readFile(path string) (*nifti.Volume, error) {
	h, err := readHeaderFile(path)
	if err != nil {
		return nil, err
	}
	v, err := h.Volume()
	if err != nil {
		return nil, err
	}
	dataPath, off, local := path, h.Size, strings.EqualFold(h.DataFile, "LOCAL")
	if !local {
		if strings.EqualFold(h.DataFile, "LIST") || strings.Contains(h.DataFile, "%") || len(strings.Fields(h.DataFile)) > 1 {
			return nil, fmt.Errorf("metaimage: ElementDataFile %q: only LOCAL or one data file is supported", trunc(h.DataFile))
		}
		dataPath, off = h.DataFile, max(h.HeaderSize, 0)
		if !filepath.IsAbs(dataPath) {
			dataPath = filepath.Join(filepath.Dir(path), dataPath)
		}
	}
	f, err := os.Open(dataPath)
	if err != nil {
		if !local {
			return nil, fmt.Errorf("metaimage: ElementDataFile %q: %w", h.DataFile, err)
		}
		return nil, err
	}
	defer f.Close()
	data, err := h.readData(f, off, !local && h.HeaderSize == -1)
	if err != nil {
		if !local {
			return nil, fmt.Errorf("metaimage: ElementDataFile %s: %w", h.DataFile, err)
		}
		return nil, fmt.Errorf("metaimage: %w", err)
	}
	v.Data = voxel.Planar(data, h.Channels)
	return v, nil
}

func (h *Header) readData(f *os.File, off int64, atEnd bool) ([]float64, error) {
	sizes := append(append([]int(nil), h.DimSize...), h.Channels)
	n, _ := voxel.Count(sizes) // checked by ParseHeader
	want := int64(n) * int64(voxel.Size(h.Datatype))
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	have := st.Size() - off
	switch {
	case atEnd && h.Binary && !h.Compressed:
		if st.Size() < want {
			return nil, truncated(h, st.Size(), want)
		}
		off = st.Size() - want
	case h.Binary && !h.Compressed && have < want:
		return nil, truncated(h, max(have, 0), want)
	case h.Compressed && h.CompressedSize > 0 && have < h.CompressedSize:
		return nil, fmt.Errorf("compressed data truncated: CompressedDataSize is %d bytes, the file has %d", h.CompressedSize, max(have, 0))
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<16)
	if !h.Binary {
		return voxel.ReadASCII(br, n)
	}
	var r io.Reader = br
	if h.Compressed {
		var zr io.ReadCloser
		if m, _ := br.Peek(2); len(m) == 2 && m[0] == 0x1f && m[1] == 0x8b {
			zr, err = gzip.NewReader(br)
		} else {
			zr, err = zlib.NewReader(br)
		}
		if err != nil {
			return nil, fmt.Errorf("corrupt compressed data (CompressedData = True wants zlib): %w", err)
		}
		defer zr.Close()
		r = zr
	}
	b, err := voxel.ReadN(r, want)
	if err != nil {
		return nil, fmt.Errorf("DimSize %s of %s: %w", voxel.Join(sizes[:h.NDims], " "), nifti.DatatypeName(h.Datatype), err)
	}
	if h.Compressed {
		// Read on to the end of the stream, where its checksum is checked.
		k, err := io.Copy(io.Discard, io.LimitReader(r, 1))
		switch {
		case err != nil:
			return nil, fmt.Errorf("corrupt compressed data: %w", err)
		case k > 0:
			return nil, errors.New("the compressed data holds more than DimSize needs")
		}
	}
	var o binary.ByteOrder = binary.LittleEndian
	if h.MSB {
		o = binary.BigEndian
	}
	return voxel.ToFloat(b, h.Datatype, o), nil
}

func truncated(h *Header, got, want int64) error {
	return fmt.Errorf("voxel data truncated: DimSize %s of %s needs %d bytes, the file has %d",
		voxel.Join(h.DimSize, " "), nifti.DatatypeName(h.Datatype), want, got)
}

// metTypes are the element type names Encode writes.
var metTypes = map[int16]string{nifti.DTInt8: "MET_CHAR", nifti.DTUint8: "MET_UCHAR", nifti.DTInt16: "MET_SHORT",
	nifti.DTUint16: "MET_USHORT", nifti.DTInt32: "MET_INT", nifti.DTUint32: "MET_UINT", nifti.DTFloat32: "MET_FLOAT", nifti.DTFloat64: "MET_DOUBLE"}

// Encode writes v as a single-file MetaImage (.mha, ElementDataFile =
// LOCAL) with elements of type dt, zlib-compressed when compress is set:
// the affine as TransformMatrix, Offset and ElementSpacing in ITK's LPS,
// NDims 4 when v has frames. Integer types must hold the values
// (rounded); otherwise it is an error and nothing is written.
func Encode(w io.Writer, v *nifti.Volume, dt int16, compress bool) error {
	frames := max(v.Dim[3], 1)
	if len(v.Data) != v.Dim[0]*v.Dim[1]*v.Dim[2]*frames {
		return fmt.Errorf("metaimage: %d values for dimensions %v", len(v.Data), v.Dim)
	}
	typ, ok := metTypes[dt]
	if !ok {
		return fmt.Errorf("metaimage: cannot write %s", nifti.DatatypeName(dt))
	}
	raw, err := voxel.Encode(v.Data, dt, binary.LittleEndian)
	if err != nil {
		return fmt.Errorf("metaimage: %w", err)
	}
	if compress {
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		if _, err := zw.Write(raw); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		raw = z.Bytes()
	}
	a := v.Affine
	voxel.FlipXY(&a) // RAS to LPS
	dir, sp := voxel.Directions(a, v.Spacing)
	nd := 3
	if frames > 1 {
		nd = 4
	}
	var tm, spacing, offset, dims []string
	for j := range nd {
		for i := range nd {
			x := 0.0
			switch {
			case i < 3 && j < 3:
				x = dir[j][i]
			case i == j:
				x = 1
			}
			tm = append(tm, voxel.Float(x))
		}
		if j < 3 {
			spacing, offset = append(spacing, voxel.Float(sp[j])), append(offset, voxel.Float(a[j][3]))
		} else {
			spacing, offset = append(spacing, "1"), append(offset, "0")
		}
		dims = append(dims, strconv.Itoa(max(v.Dim[j], 1)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ObjectType = Image\nNDims = %d\nBinaryData = True\nBinaryDataByteOrderMSB = False\n", nd)
	if compress {
		fmt.Fprintf(&b, "CompressedData = True\nCompressedDataSize = %d\n", len(raw))
	} else {
		b.WriteString("CompressedData = False\n")
	}
	fmt.Fprintf(&b, "TransformMatrix = %s\nOffset = %s\nElementSpacing = %s\nDimSize = %s\nElementType = %s\nElementDataFile = LOCAL\n",
		strings.Join(tm, " "), strings.Join(offset, " "), strings.Join(spacing, " "), strings.Join(dims, " "), typ)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	_, err = w.Write(raw)
	return err
}
