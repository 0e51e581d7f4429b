// Package nrrd reads and writes NRRD images (.nrrd with the data attached,
// .nhdr with a detached data file) as nifti.Volume values, so that every
// path that takes a NIfTI volume (slicing, RAS reorientation, labels,
// prediction) takes them unchanged.
//
// Supported: magic NRRD0001 to NRRD0005; the eight element types of
// nifti (8/16/32-bit signed and unsigned integers, float, double); 2 or 3
// spatial axes and at most one non-spatial axis (a channel, vector or time
// axis, first or last: it becomes the volume's frames); raw, gzip, bzip2
// and ascii encodings; endian; line skip and byte skip (-1 for raw data at
// the end of the file); one detached data file; space, space directions
// and space origin, or spacings. World coordinates are converted to RAS+:
// left-posterior-superior (and a file without a named space, as ITK reads
// it) has x and y negated, left-anterior-superior x, right-anterior-superior
// none.
package nrrd

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/jmedseg/jmedseg/data/internal/voxel"
	"github.com/jmedseg/jmedseg/data/nifti"
)

// MaxHeaderBytes bounds the text header: a file that has no blank line
// within it is not an NRRD header.
const MaxHeaderBytes = 1 << 20

// Header holds the fields of an NRRD header that this package uses.
type Header struct {
	// Version is the magic's digit (1 to 5).
	Version int
	// Datatype is the element type as a NIfTI datatype code.
	Datatype int16
	// Sizes is the extent of each axis, fastest first.
	Sizes []int
	// BigEndian is set by "endian: big".
	BigEndian bool
	// Encoding is "raw", "gzip", "bzip2" or "ascii".
	Encoding string
	// Space is the canonical world space name ("left-posterior-superior",
	// ...), "" when the header names none.
	Space string
	// SpaceDim is the number of world coordinates (from space or space
	// dimension), 0 when neither is given.
	SpaceDim int
	// Directions holds each axis's world vector (nil for "none"); nil
	// when the header has no space directions.
	Directions [][]float64
	// Origin is the space origin, nil when absent.
	Origin []float64
	// Spacings holds each axis's spacing (NaN when not given); nil when
	// absent.
	Spacings []float64
	// Kinds holds each axis's kind, lower-cased; nil when absent.
	Kinds []string
	// DataFile is the detached data file as written ("" when attached).
	DataFile string
	// LineSkip and ByteSkip are skipped before the data (ByteSkip -1:
	// raw data at the end of the file).
	LineSkip int
	ByteSkip int64
	// Size is the length in bytes of the header including its blank line:
	// where attached data begins.
	Size int64
}

// types maps NRRD type names to NIfTI datatypes.
var types = map[string]int16{
	"signed char": nifti.DTInt8, "int8": nifti.DTInt8, "int8_t": nifti.DTInt8,
	"uchar": nifti.DTUint8, "unsigned char": nifti.DTUint8, "uint8": nifti.DTUint8, "uint8_t": nifti.DTUint8,
	"short": nifti.DTInt16, "short int": nifti.DTInt16, "signed short": nifti.DTInt16, "signed short int": nifti.DTInt16,
	"int16": nifti.DTInt16, "int16_t": nifti.DTInt16,
	"ushort": nifti.DTUint16, "unsigned short": nifti.DTUint16, "unsigned short int": nifti.DTUint16,
	"uint16": nifti.DTUint16, "uint16_t": nifti.DTUint16,
	"int": nifti.DTInt32, "signed int": nifti.DTInt32, "int32": nifti.DTInt32, "int32_t": nifti.DTInt32,
	"uint": nifti.DTUint32, "unsigned int": nifti.DTUint32, "uint32": nifti.DTUint32, "uint32_t": nifti.DTUint32,
	"float": nifti.DTFloat32, "double": nifti.DTFloat64,
}

// spaces maps NRRD space names (long and short) to the canonical long
// name and its number of coordinates.
var spaces = map[string]struct {
	name string
	dim  int
}{
	"right-anterior-superior": {"right-anterior-superior", 3}, "ras": {"right-anterior-superior", 3},
	"left-anterior-superior": {"left-anterior-superior", 3}, "las": {"left-anterior-superior", 3},
	"left-posterior-superior": {"left-posterior-superior", 3}, "lps": {"left-posterior-superior", 3},
	"right-anterior-superior-time": {"right-anterior-superior", 4}, "rast": {"right-anterior-superior", 4},
	"left-anterior-superior-time": {"left-anterior-superior", 4}, "last": {"left-anterior-superior", 4},
	"left-posterior-superior-time": {"left-posterior-superior", 4}, "lpst": {"left-posterior-superior", 4},
	"scanner-xyz": {"scanner-xyz", 3}, "scanner-xyz-time": {"scanner-xyz", 4},
	"3d-right-handed": {"3D-right-handed", 3}, "3d-right-handed-time": {"3D-right-handed", 4},
}

// ParseHeader reads an NRRD header from r up to and including the blank
// line that ends it (or the end of r, for a detached header). Errors name
// the field.
func ParseHeader(r *bufio.Reader) (*Header, error) {
	h := &Header{Encoding: "", Version: 0}
	line, err := readLine(r, &h.Size)
	if err != nil && line == "" {
		return nil, errors.New("nrrd: empty file (want the magic NRRD0004)")
	}
	if len(line) != 8 || !strings.HasPrefix(line, "NRRD000") || line[7] < '1' || line[7] > '5' {
		return nil, fmt.Errorf("nrrd: bad magic %q (want NRRD0001 to NRRD0005)", trunc(line))
	}
	h.Version = int(line[7] - '0')
	dim := -1
	var typ, enc, endian string
	var sizes, dirs, origin, spacings, kinds, spaceDim, lineSkip, byteSkip string
	seen := map[string]bool{}
	for {
		line, err := readLine(r, &h.Size)
		if err != nil && line == "" {
			if errors.Is(err, io.EOF) {
				break // a detached header may end at the end of the file
			}
			return nil, err
		}
		if line == "" {
			break // the blank line: data follows
		}
		if line[0] == '#' {
			continue
		}
		if i := strings.Index(line, ":="); i >= 0 && !strings.Contains(line[:i], ": ") {
			continue // key/value pair: not ours
		}
		i := strings.Index(line, ": ")
		if i <= 0 {
			return nil, fmt.Errorf("nrrd: header line %q is not \"field: value\"", trunc(line))
		}
		field, val := strings.ToLower(strings.TrimSpace(line[:i])), strings.TrimSpace(line[i+2:])
		if field == "centerings" || field == "centers" {
			field = "centerings"
		}
		if seen[field] {
			return nil, fmt.Errorf("nrrd: field %q given twice", field)
		}
		seen[field] = true
		switch field {
		case "type":
			typ = strings.ToLower(val)
		case "dimension":
			if dim, err = strconv.Atoi(val); err != nil || dim < 1 || dim > 16 {
				return nil, fmt.Errorf("nrrd: dimension %q: want a number of axes from 1 to 16", trunc(val))
			}
		case "sizes":
			sizes = val
		case "encoding":
			enc = strings.ToLower(val)
		case "endian":
			endian = strings.ToLower(val)
		case "space":
			s, ok := spaces[strings.ToLower(val)]
			if !ok {
				return nil, fmt.Errorf("nrrd: space %q is not supported (want right-anterior-superior, left-anterior-superior, left-posterior-superior, scanner-xyz or 3D-right-handed)", trunc(val))
			}
			h.Space, h.SpaceDim = s.name, s.dim
		case "space dimension":
			spaceDim = val
		case "space directions":
			dirs = val
		case "space origin":
			origin = val
		case "spacings":
			spacings = val
		case "kinds":
			kinds = val
		case "data file", "datafile":
			h.DataFile = val
		case "line skip", "lineskip":
			lineSkip = val
		case "byte skip", "byteskip":
			byteSkip = val
		}
	}
	if typ == "" {
		return nil, errors.New("nrrd: no \"type\" field")
	}
	if typ == "block" {
		return nil, errors.New("nrrd: type block is not supported (want an integer or floating-point type)")
	}
	var ok bool
	if h.Datatype, ok = types[typ]; !ok {
		return nil, fmt.Errorf("nrrd: type %q is not supported (want int8 to uint32, float or double)", trunc(typ))
	}
	if dim < 0 {
		return nil, errors.New("nrrd: no \"dimension\" field")
	}
	if sizes == "" {
		return nil, errors.New("nrrd: no \"sizes\" field")
	}
	f := strings.Fields(sizes)
	if len(f) != dim {
		return nil, fmt.Errorf("nrrd: sizes %q has %d values for dimension %d", trunc(sizes), len(f), dim)
	}
	for _, s := range f {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("nrrd: sizes %q: %q is not a size of 1 or more", trunc(sizes), trunc(s))
		}
		h.Sizes = append(h.Sizes, n)
	}
	if _, err := voxel.Count(h.Sizes); err != nil {
		return nil, fmt.Errorf("nrrd: sizes: %w", err)
	}
	switch enc {
	case "raw":
	case "gzip", "gz":
		enc = "gzip"
	case "bzip2", "bz2":
		enc = "bzip2"
	case "ascii", "text", "txt":
		enc = "ascii"
	case "":
		return nil, errors.New("nrrd: no \"encoding\" field")
	default:
		return nil, fmt.Errorf("nrrd: encoding %q is not supported (want raw, gzip, bzip2 or ascii)", trunc(enc))
	}
	h.Encoding = enc
	switch endian {
	case "little", "":
	case "big":
		h.BigEndian = true
	default:
		return nil, fmt.Errorf("nrrd: endian %q: want little or big", trunc(endian))
	}
	if endian == "" && enc != "ascii" && voxel.Size(h.Datatype) > 1 {
		return nil, fmt.Errorf("nrrd: no \"endian\" field, needed for %s data", nifti.DatatypeName(h.Datatype))
	}
	if spaceDim != "" {
		n, err := strconv.Atoi(spaceDim)
		if err != nil || n < 1 || n > 4 {
			return nil, fmt.Errorf("nrrd: space dimension %q: want 1 to 4", trunc(spaceDim))
		}
		if h.Space != "" {
			return nil, errors.New("nrrd: both \"space\" and \"space dimension\" given (the spec allows one)")
		}
		h.SpaceDim = n
	}
	if dirs != "" {
		if h.SpaceDim == 0 {
			return nil, errors.New("nrrd: space directions without \"space\" or \"space dimension\"")
		}
		if h.Directions, err = parseVectors(dirs, dim, h.SpaceDim); err != nil {
			return nil, fmt.Errorf("nrrd: space directions: %w", err)
		}
	}
	if origin != "" {
		if h.SpaceDim == 0 {
			return nil, errors.New("nrrd: space origin without \"space\" or \"space dimension\"")
		}
		v, err := parseVectors(origin, 1, h.SpaceDim)
		if err != nil || v[0] == nil {
			if err == nil {
				err = errors.New("none is not an origin")
			}
			return nil, fmt.Errorf("nrrd: space origin: %w", err)
		}
		h.Origin = v[0]
	}
	if spacings != "" {
		f := strings.Fields(spacings)
		if len(f) != dim {
			return nil, fmt.Errorf("nrrd: spacings %q has %d values for dimension %d", trunc(spacings), len(f), dim)
		}
		for _, s := range f {
			x, err := strconv.ParseFloat(s, 64)
			if strings.EqualFold(s, "nan") {
				x, err = math.NaN(), nil
			}
			if err != nil || math.IsInf(x, 0) {
				return nil, fmt.Errorf("nrrd: spacings: %q is not a number", trunc(s))
			}
			h.Spacings = append(h.Spacings, x)
		}
	}
	if kinds != "" {
		h.Kinds = strings.Fields(strings.ToLower(kinds))
		// Multi-word kinds ("2d-masked-symmetric-matrix" etc.) are one word;
		// only the count matters beyond domain/space.
		if len(h.Kinds) != dim {
			return nil, fmt.Errorf("nrrd: kinds %q has %d values for dimension %d", trunc(kinds), len(h.Kinds), dim)
		}
	}
	if lineSkip != "" {
		if h.LineSkip, err = strconv.Atoi(lineSkip); err != nil || h.LineSkip < 0 || h.LineSkip > 1<<20 {
			return nil, fmt.Errorf("nrrd: line skip %q: want 0 to %d", trunc(lineSkip), 1<<20)
		}
	}
	if byteSkip != "" {
		if h.ByteSkip, err = strconv.ParseInt(byteSkip, 10, 64); err != nil || h.ByteSkip < -1 || h.ByteSkip > 1<<40 {
			return nil, fmt.Errorf("nrrd: byte skip %q: want -1 (data at the end of the file) or 0 and more", trunc(byteSkip))
		}
		if h.ByteSkip == -1 && enc != "raw" {
			return nil, fmt.Errorf("nrrd: byte skip -1 needs raw encoding, not %s", enc)
		}
	}
	return h, nil
}

// readLine reads one header line (without its \n or \r\n), adding its
// length to *size; lines past MaxHeaderBytes in all are an error.
func readLine(r *bufio.Reader, size *int64) (string, error) {
	var b []byte
	for {
		chunk, err := r.ReadSlice('\n')
		b = append(b, chunk...)
		if *size+int64(len(b)) > MaxHeaderBytes {
			return "", fmt.Errorf("nrrd: header longer than %d bytes without its ending blank line", MaxHeaderBytes)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		*size += int64(len(b))
		s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		return s, err
	}
}

// parseVectors parses n vectors "(x,y,z)" of d coordinates or "none".
func parseVectors(s string, n, d int) ([][]float64, error) {
	var out [][]float64
	rest := strings.TrimSpace(s)
	for len(rest) > 0 {
		if strings.HasPrefix(strings.ToLower(rest), "none") {
			out = append(out, nil)
			rest = strings.TrimSpace(rest[4:])
			continue
		}
		if rest[0] != '(' {
			return nil, fmt.Errorf("%q: want vectors such as (1,0,0) or none", trunc(s))
		}
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			return nil, fmt.Errorf("%q: a vector has no closing parenthesis", trunc(s))
		}
		parts := strings.Split(rest[1:end], ",")
		if len(parts) != d {
			return nil, fmt.Errorf("%q: vector %d has %d coordinates, want %d (the space dimension)", trunc(s), len(out), len(parts), d)
		}
		v := make([]float64, d)
		for i, p := range parts {
			x, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("%q: %q is not a finite number", trunc(s), trunc(p))
			}
			v[i] = x
		}
		out = append(out, v)
		rest = strings.TrimSpace(rest[end+1:])
	}
	if len(out) != n {
		return nil, fmt.Errorf("%q has %d vectors, want %d", trunc(s), len(out), n)
	}
	return out, nil
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// order is the byte order of the data.
func (h *Header) order() binary.ByteOrder {
	if h.BigEndian {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// spatialKinds are the kinds of axes placed in space.
var spatialKinds = map[string]bool{"domain": true, "space": true}

// layout decides which axes are spatial and which one (if any) holds
// channels: -1 when none. At most one non-spatial axis, first or last.
func (h *Header) layout() (spatial []int, channel int, err error) {
	channel = -1
	for j := range h.Sizes {
		isSpatial := true
		switch {
		case h.Directions != nil:
			isSpatial = h.Directions[j] != nil
		case h.Kinds != nil:
			isSpatial = spatialKinds[h.Kinds[j]]
		}
		if isSpatial {
			spatial = append(spatial, j)
			continue
		}
		if channel >= 0 {
			return nil, 0, fmt.Errorf("nrrd: axes %d and %d are both non-spatial: jmedseg reads at most one channel or time axis", channel, j)
		}
		channel = j
	}
	switch {
	case len(spatial) == 1 && len(h.Sizes) == 1:
		return nil, 0, fmt.Errorf("nrrd: a 1-D array of %d values: want a 2-D image or 3-D volume", h.Sizes[0])
	case len(spatial) == 4 && h.Directions == nil && h.Kinds == nil:
		return nil, 0, errors.New("nrrd: dimension 4 without kinds or space directions: say which axis is the channel or time axis (e.g. kinds: domain domain domain list)")
	case len(spatial) < 2 || len(spatial) > 3:
		return nil, 0, fmt.Errorf("nrrd: %d spatial axes (sizes %s): want 2 or 3", len(spatial), voxel.Join(h.Sizes, " "))
	case channel > 0 && channel != len(h.Sizes)-1:
		return nil, 0, fmt.Errorf("nrrd: the non-spatial axis %d is between spatial axes: want it first or last", channel)
	}
	return spatial, channel, nil
}

// Volume is the volume the header describes, without voxel data: Dim,
// Spacing, Affine (RAS+), AffineSource and Datatype.
func (h *Header) Volume() (*nifti.Volume, error) {
	spatial, ch, err := h.layout()
	if err != nil {
		return nil, err
	}
	v := &nifti.Volume{Dim: [4]int{1, 1, 1, 1}, Datatype: h.Datatype}
	for i, j := range spatial {
		v.Dim[i] = h.Sizes[j]
	}
	if ch >= 0 {
		v.Dim[3] = h.Sizes[ch]
	}
	vecs := make([][]float64, len(spatial))
	switch {
	case h.Directions != nil:
		for i, j := range spatial {
			vecs[i] = h.Directions[j]
		}
		v.AffineSource = "space directions"
	case h.Spacings != nil:
		for i, j := range spatial {
			s := h.Spacings[j]
			if math.IsNaN(s) || s == 0 {
				s = 1
			}
			vecs[i] = make([]float64, 3)
			vecs[i][i] = s
		}
		v.AffineSource = "spacings"
	default:
		v.AffineSource = "none"
	}
	v.Affine, v.Spacing = voxel.Affine(vecs, h.Origin)
	for i := range 3 {
		v.Spacing[i] = math.Abs(v.Spacing[i])
	}
	if det3(v.Affine) == 0 {
		return nil, errors.New("nrrd: space directions are degenerate (the axes do not span the space)")
	}
	switch h.Space {
	case "right-anterior-superior":
	case "left-anterior-superior":
		for j := range 4 {
			v.Affine[0][j] = -v.Affine[0][j]
		}
	default: // LPS, and what ITK takes for LPS: no space, scanner-xyz, 3D-right-handed
		voxel.FlipXY(&v.Affine)
	}
	return v, nil
}

func det3(a [3][4]float64) float64 {
	return a[0][0]*(a[1][1]*a[2][2]-a[1][2]*a[2][1]) -
		a[0][1]*(a[1][0]*a[2][2]-a[1][2]*a[2][0]) +
		a[0][2]*(a[1][0]*a[2][1]-a[1][1]*a[2][0])
}
