# Writes small DICOM files (explicit VR little endian) with the Python
# standard library only.
import struct

def el(group, elem, vr, value):
    if isinstance(value, str):
        value = value.encode("ascii")
        if len(value) % 2:
            value += b"\0" if vr == "UI" else b" "
    if vr in ("OB", "OW", "UN", "SQ", "UT"):
        return struct.pack("<HH2sHI", group, elem, vr.encode(), 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr.encode(), len(value)) + value

def dicom(name, rows, cols, pixels, bits=16, signed=0, photometric="MONOCHROME2", spp=1, extra=b""):
    meta = el(0x0002, 0x0001, "OB", b"\0\1") + el(0x0002, 0x0002, "UI", "1.2.840.10008.5.1.4.1.1.7") \
        + el(0x0002, 0x0003, "UI", "1.2.3.4") + el(0x0002, 0x0010, "UI", "1.2.840.10008.1.2.1")
    meta = el(0x0002, 0x0000, "UL", struct.pack("<I", len(meta))) + meta
    fmt = {8: "B", 16: "h" if signed else "H"}[bits]
    body = el(0x0008, 0x0060, "CS", "MR") \
        + el(0x0028, 0x0002, "US", struct.pack("<H", spp)) \
        + el(0x0028, 0x0004, "CS", photometric) \
        + el(0x0028, 0x0010, "US", struct.pack("<H", rows)) \
        + el(0x0028, 0x0011, "US", struct.pack("<H", cols)) \
        + el(0x0028, 0x0030, "DS", "0.5\\0.75") \
        + el(0x0028, 0x0100, "US", struct.pack("<H", bits)) \
        + el(0x0028, 0x0101, "US", struct.pack("<H", bits if bits == 8 else 12)) \
        + el(0x0028, 0x0102, "US", struct.pack("<H", bits - 1 if bits == 8 else 11)) \
        + el(0x0028, 0x0103, "US", struct.pack("<H", signed)) + extra \
        + el(0x7FE0, 0x0010, "OW" if bits == 16 else "OB", struct.pack("<%d%s" % (len(pixels), fmt), *pixels))
    open(name, "wb").write(b"\0" * 128 + b"DICM" + meta + body)

# 3 rows x 4 columns, value 100*y + 10*x.
px = [100 * y + 10 * x for y in range(3) for x in range(4)]
dicom("mono16.dcm", 3, 4, px)
# Rescale slope 2, intercept -1024, signed.
dicom("ct_signed.dcm", 3, 4, [v - 100 for v in px], signed=1,
      extra=el(0x0028, 0x1052, "DS", "-1024") + el(0x0028, 0x1053, "DS", "2"))
dicom("mono1_8bit.dcm", 3, 4, [min(255, v) for v in px], bits=8, photometric="MONOCHROME1")
dicom("rgb8.dcm", 2, 2, [255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9], bits=8, photometric="RGB", spp=3,
      extra=el(0x0028, 0x0006, "US", struct.pack("<H", 0)))
