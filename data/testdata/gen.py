# Generates small 2D NIfTI-1 golden files with the Python standard library.
import struct

def nii(name, code, bitpix, fmt, w, h, vals):
    hd = bytearray(348)
    struct.pack_into("<i", hd, 0, 348)
    struct.pack_into("<8h", hd, 40, 2, w, h, 1, 1, 1, 1, 1)
    struct.pack_into("<hh", hd, 70, code, bitpix)
    struct.pack_into("<8f", hd, 76, 1, 0.5, 0.5, 1, 0, 0, 0, 0)
    struct.pack_into("<fff", hd, 108, 352.0, 1.0, 0.0)
    hd[344:348] = b"n+1\0"
    open(name, "wb").write(bytes(hd) + b"\0" * 4 + struct.pack("<%d%s" % (len(vals), fmt), *vals))

# 4x3 image, x fastest: value x + 4*y.
nii("image_f4_4x3.nii", 16, 32, "f", 4, 3, [float(i) / 11 for i in range(12)])
nii("mask_u1_4x3.nii", 2, 8, "B", 4, 3, [0, 0, 1, 1, 0, 2, 2, 1, 0, 0, 0, 1])
