package nrrd

import (
	"bufio"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/jmedseg/jmedseg/data/internal/voxel"
	"github.com/jmedseg/jmedseg/data/nifti"
)

// ReadHeader reads only the header of the NRRD file at path and returns
// the volume it describes without voxel data (Data is nil). Errors name
// the file.
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

// ReadFile decodes the NRRD image at path (.nrrd, or a .nhdr header and
// its data file) into a volume: spatial axes as Dim[0:3], a channel or
// time axis as frames (Dim[3]), the affine in RAS+. The header's sizes are
// checked against nifti.MaxVoxels and, for raw data, against the bytes in
// the file before anything is allocated. Errors name the file.
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
	dataPath, off := path, h.Size
	if h.DataFile != "" {
		if strings.EqualFold(h.DataFile, "LIST") || strings.Contains(h.DataFile, "%") || len(strings.Fields(h.DataFile)) > 1 {
			return nil, fmt.Errorf("nrrd: data file %q: only one detached data file is supported", trunc(h.DataFile))
		}
		dataPath, off = h.DataFile, 0
		if !filepath.IsAbs(dataPath) {
			dataPath = filepath.Join(filepath.Dir(path), dataPath)
		}
	}
	f, err := os.Open(dataPath)
	if err != nil {
		if h.DataFile != "" {
			return nil, fmt.Errorf("nrrd: data file %q: %w", h.DataFile, err)
		}
		return nil, err
	}
	defer f.Close()
	data, err := h.readData(f, off)
	if err != nil {
		if h.DataFile != "" {
			return nil, fmt.Errorf("nrrd: data file %s: %w", h.DataFile, err)
		}
		return nil, fmt.Errorf("nrrd: %w", err)
	}
	_, ch, _ := h.layout()
	if ch == 0 {
		data = voxel.Planar(data, h.Sizes[0])
	}
	v.Data = data
	return v, nil
}

// readData decodes the voxels from f, whose data region starts at off.
func (h *Header) readData(f *os.File, off int64) ([]float64, error) {
	n, _ := voxel.Count(h.Sizes) // checked by ParseHeader
	bpp := int64(voxel.Size(h.Datatype))
	want := int64(n) * bpp
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if h.Encoding == "raw" && h.ByteSkip == -1 {
		if st.Size()-off < want {
			return nil, truncated(h, st.Size()-off, want)
		}
		off = st.Size() - want
	} else if h.LineSkip == 0 && h.Encoding == "raw" {
		off += h.ByteSkip
		if st.Size()-off < want {
			return nil, truncated(h, max(0, st.Size()-off), want)
		}
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<16)
	for i := 0; i < h.LineSkip && h.ByteSkip != -1; i++ {
		if _, err := br.ReadSlice('\n'); err != nil && err != bufio.ErrBufferFull {
			return nil, fmt.Errorf("line skip %d: the data ends after %d lines", h.LineSkip, i)
		} else if err == bufio.ErrBufferFull {
			i-- // the same line goes on
		}
	}
	var r io.Reader = br
	switch h.Encoding {
	case "gzip":
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("corrupt gzip data: %w", err)
		}
		defer zr.Close()
		r = zr
	case "bzip2":
		r = bzip2.NewReader(br)
	}
	if h.Encoding != "raw" || h.LineSkip > 0 {
		if h.ByteSkip > 0 {
			if got, err := io.CopyN(io.Discard, r, h.ByteSkip); err != nil {
				return nil, fmt.Errorf("byte skip %d: the data ends after %d bytes (%v)", h.ByteSkip, got, err)
			}
		}
	}
	if h.Encoding == "ascii" {
		return voxel.ReadASCII(r, n)
	}
	b, err := voxel.ReadN(r, want)
	if err != nil {
		if errors.Is(err, gzip.ErrChecksum) {
			return nil, errors.New("corrupt gzip data: checksum mismatch (the file is damaged)")
		}
		return nil, fmt.Errorf("%s %s: %w", voxel.Join(h.Sizes, "x"), nifti.DatatypeName(h.Datatype), err)
	}
	if h.Encoding == "gzip" {
		// Read on to the gzip trailer: only there is the CRC-32 checked.
		// Trailing bytes are bounded like the voxels.
		if _, err := io.CopyN(io.Discard, r, nifti.MaxBytes); err != io.EOF {
			if err == nil {
				return nil, fmt.Errorf("more than %d bytes of gzip data after the voxels", nifti.MaxBytes)
			}
			return nil, fmt.Errorf("corrupt gzip data: %w", err)
		}
	}
	return voxel.ToFloat(b, h.Datatype, h.order()), nil
}

func truncated(h *Header, got, want int64) error {
	return fmt.Errorf("voxel data truncated: sizes %s of %s need %d bytes, the file has %d",
		voxel.Join(h.Sizes, " "), nifti.DatatypeName(h.Datatype), want, got)
}

// Encode writes v as an attached NRRD (NRRD0004) with elements of type dt
// (any of the eight nifti types), gzip-encoded when gz is set: space
// left-posterior-superior, the affine as space directions and origin, a
// fourth "list" axis when v has frames. Integer types must hold the values
// (rounded); otherwise it is an error and nothing is written.
func Encode(w io.Writer, v *nifti.Volume, dt int16, gz bool) error {
	frames := max(v.Dim[3], 1)
	n := v.Dim[0] * v.Dim[1] * v.Dim[2] * frames
	if len(v.Data) != n {
		return fmt.Errorf("nrrd: %d values for dimensions %v", len(v.Data), v.Dim)
	}
	typ := ""
	for name, t := range map[string]int16{"int8": nifti.DTInt8, "uint8": nifti.DTUint8, "int16": nifti.DTInt16,
		"uint16": nifti.DTUint16, "int32": nifti.DTInt32, "uint32": nifti.DTUint32, "float": nifti.DTFloat32, "double": nifti.DTFloat64} {
		if t == dt {
			typ = name
		}
	}
	if typ == "" {
		return fmt.Errorf("nrrd: cannot write %s", nifti.DatatypeName(dt))
	}
	// Frames are the slowest axis in v.Data, as the list axis is on disk.
	raw, err := voxel.Encode(v.Data, dt, binary.LittleEndian)
	if err != nil {
		return fmt.Errorf("nrrd: %w", err)
	}
	a := v.Affine
	voxel.FlipXY(&a) // RAS to LPS
	dir, sp := voxel.Directions(a, v.Spacing)
	var b strings.Builder
	b.WriteString("NRRD0004\n# written by jmedseg\n")
	fmt.Fprintf(&b, "type: %s\n", typ)
	sizes, kinds := fmt.Sprintf("%d %d %d", v.Dim[0], v.Dim[1], v.Dim[2]), "domain domain domain"
	var dirs []string
	for j := range 3 {
		dirs = append(dirs, fmt.Sprintf("(%s,%s,%s)", voxel.Float(dir[j][0]*sp[j]), voxel.Float(dir[j][1]*sp[j]), voxel.Float(dir[j][2]*sp[j])))
	}
	dim := 3
	if frames > 1 {
		dim = 4
		sizes += fmt.Sprintf(" %d", frames)
		kinds += " list"
		dirs = append(dirs, "none")
	}
	fmt.Fprintf(&b, "dimension: %d\nspace: left-posterior-superior\nsizes: %s\n", dim, sizes)
	fmt.Fprintf(&b, "space directions: %s\nkinds: %s\n", strings.Join(dirs, " "), kinds)
	if voxel.Size(dt) > 1 {
		b.WriteString("endian: little\n")
	}
	enc := "raw"
	if gz {
		enc = "gzip"
	}
	fmt.Fprintf(&b, "encoding: %s\nspace origin: (%s,%s,%s)\n\n", enc, voxel.Float(a[0][3]), voxel.Float(a[1][3]), voxel.Float(a[2][3]))
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if !gz {
		_, err := w.Write(raw)
		return err
	}
	zw := gzip.NewWriter(w)
	if _, err := zw.Write(raw); err != nil {
		return err
	}
	return zw.Close()
}
