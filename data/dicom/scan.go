package dicom

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// maxTags bounds the number of elements the pre-scan walks.
const maxTags = 1 << 20

// scan walks the element structure of a DICOM file and checks that every
// defined length fits in the bytes that follow, before the DICOM library
// (which allocates declared lengths up front) sees the file. It descends
// into sequences and items, so nested lengths are checked as well, and
// skips the fragments of encapsulated pixel data.
func scan(b []byte) error {
	pos := 0
	if len(b) >= 132 && string(b[128:132]) == "DICM" {
		pos = 132
	}
	explicit, order := true, binary.ByteOrder(binary.LittleEndian)
	metaEnd := -1
	inFragments := false
	for n := 0; pos < len(b); n++ {
		if n > maxTags {
			return fmt.Errorf("corrupt DICOM: more than %d elements", maxTags)
		}
		if pos+8 > len(b) {
			return fmt.Errorf("corrupt DICOM: truncated element header at byte %d", pos)
		}
		o := order
		exp := explicit
		group := binary.LittleEndian.Uint16(b[pos:])
		if group == 0x0002 {
			o, exp = binary.LittleEndian, true
		} else if metaEnd < 0 {
			metaEnd = pos
		}
		group = o.Uint16(b[pos:])
		elem := o.Uint16(b[pos+2:])
		tagName := fmt.Sprintf("(%04X,%04X)", group, elem)
		var length uint32
		var hdr int
		vr := ""
		if group == 0xFFFE { // item, item delimiter, sequence delimiter
			length, hdr = o.Uint32(b[pos+4:]), 8
		} else if exp {
			vr = string(b[pos+4 : pos+6])
			switch vr {
			case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV":
				if pos+12 > len(b) {
					return fmt.Errorf("corrupt DICOM: truncated element %s", tagName)
				}
				length, hdr = o.Uint32(b[pos+8:]), 12
			default:
				length, hdr = uint32(o.Uint16(b[pos+6:])), 8
			}
		} else {
			length, hdr = o.Uint32(b[pos+4:]), 8
		}
		pos += hdr
		if group == 0xFFFE && elem == 0xE0DD {
			inFragments = false
			continue
		}
		if length == 0xFFFFFFFF { // undefined length: step inside
			if group == 0x7FE0 && elem == 0x0010 {
				inFragments = true
			}
			continue
		}
		if int64(length) > int64(len(b)-pos) {
			return fmt.Errorf("corrupt DICOM: element %s declares %d bytes but only %d remain", tagName, length, len(b)-pos)
		}
		descend := vr == "SQ" || (group == 0xFFFE && elem == 0xE000 && !inFragments)
		if group == 0x0002 && elem == 0x0010 {
			ts := strings.TrimRight(string(b[pos:pos+int(length)]), "\x00 ")
			switch ts {
			case "1.2.840.10008.1.2":
				explicit = false
			case "1.2.840.10008.1.2.2":
				order = binary.BigEndian
			case "1.2.840.10008.1.2.1.99":
				return nil // deflated: the body cannot be scanned
			}
		}
		if !descend {
			pos += int(length)
		}
	}
	return nil
}
