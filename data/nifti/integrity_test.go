package nifti

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 12: a .nii.gz is read to its end, so its CRC-32 and length trailer
// are verified; a flipped byte, a bad checksum or a missing trailer are
// errors, never a silently different volume.
func TestGzipIntegrity(t *testing.T) {
	raw, err := os.ReadFile("testdata/f4_sform.nii")
	require.NoError(t, err)
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.NoCompression) // stored blocks: a flipped byte stays a valid deflate stream
	_, _ = zw.Write(raw)
	require.NoError(t, zw.Close())
	good := z.Bytes()
	_, err = Decode(bytes.NewReader(good))
	require.NoError(t, err)

	flipped := bytes.Clone(good)
	flipped[len(flipped)-8-40] ^= 0x01 // a voxel byte inside the stored block
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-8] ^= 0xff
	badLen := bytes.Clone(good)
	binary.LittleEndian.PutUint32(badLen[len(badLen)-4:], uint32(len(raw)+1))
	for name, b := range map[string][]byte{
		"flipped byte":    flipped,
		"bad crc":         badCRC,
		"bad length":      badLen,
		"missing trailer": good[:len(good)-8],
		"half trailer":    good[:len(good)-3],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(bytes.NewReader(b))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "gzip")
		})
	}
}

// Issue 12: the decoded size is capped in bytes: a small .nii.gz whose
// header claims 2^27 voxels is refused before anything is inflated.
func TestSizeCapInBytes(t *testing.T) {
	raw, err := os.ReadFile("testdata/u1_sform.nii")
	require.NoError(t, err)
	h := bytes.Clone(raw[:352])
	binary.LittleEndian.PutUint16(h[40:], 3)
	binary.LittleEndian.PutUint16(h[42:], 512)
	binary.LittleEndian.PutUint16(h[44:], 512)
	binary.LittleEndian.PutUint16(h[46:], 512) // 2^27 uint8 voxels: 128 MiB on disk, 1 GiB decoded
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write(h)
	_, _ = zw.Write(make([]byte, 1<<20))
	require.NoError(t, zw.Close())
	require.Less(t, z.Len(), 1<<16)
	_, err = Decode(bytes.NewReader(z.Bytes()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "512x512x512")
	assert.Contains(t, err.Error(), "GiB")
	assert.Less(t, int64(MaxBytes), int64(1<<27)*8+1)
}
