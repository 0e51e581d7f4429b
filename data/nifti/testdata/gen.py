# Generates small golden NIfTI-1 files with the Python standard library only.
# Every volume is 3x4x2 with voxel value v(i,j,k) = i + 10*j + 100*k stored
# in the named datatype (first axis fastest), before scaling.
import gzip, struct

DT = {"u1": (2, 8, "B"), "i2": (4, 16, "h"), "i4": (8, 32, "i"), "f4": (16, 32, "f"), "f8": (64, 64, "d")}

def header(e, dt, dims, pixdim, slope=1.0, inter=0.0, qform=0, sform=0, quat=(0, 0, 0), qoff=(0, 0, 0), srow=None):
    code, bitpix, _ = DT[dt]
    h = bytearray(348)
    struct.pack_into(e + "i", h, 0, 348)
    d = [len(dims)] + list(dims) + [1] * (7 - len(dims))
    struct.pack_into(e + "8h", h, 40, *d)
    struct.pack_into(e + "hh", h, 70, code, bitpix)
    struct.pack_into(e + "8f", h, 76, *pixdim)
    struct.pack_into(e + "fff", h, 108, 352.0, slope, inter)
    h[148:148 + 6] = b"golden"
    struct.pack_into(e + "hh", h, 252, qform, sform)
    struct.pack_into(e + "3f", h, 256, *quat)
    struct.pack_into(e + "3f", h, 268, *qoff)
    if srow:
        struct.pack_into(e + "12f", h, 280, *[x for r in srow for x in r])
    h[344:348] = b"n+1\0"
    return bytes(h) + b"\0\0\0\0"

def vol(e, dt, **kw):
    fmt = DT[dt][2]
    vals = [i + 10 * j + 100 * k for k in range(2) for j in range(4) for i in range(3)]
    return header(e, dt, (3, 4, 2), kw.pop("pixdim", (1, 2, 3, 4, 0, 0, 0, 0)), **kw) + struct.pack(e + "%d%s" % (len(vals), fmt), *vals)

# sform: diagonal 2,3,4 with an offset (RAS).
sform = [(2, 0, 0, -10), (0, 3, 0, -20), (0, 0, 4, -30)]
for dt in DT:
    open("%s_sform.nii" % dt, "wb").write(vol("<", dt, sform=1, srow=sform))
open("i2_be_sform.nii", "wb").write(vol(">", "i2", sform=1, srow=sform))
with gzip.open("u1_sform.nii.gz", "wb") as f:
    f.write(vol("<", "u1", sform=1, srow=sform))
# Slope 0.5, intercept -1.
open("i2_scaled.nii", "wb").write(vol("<", "i2", slope=0.5, inter=-1.0, sform=1, srow=sform))
# qform only: quaternion (0, 0.7071, 0.7071) as in ITK's KmeansTest data:
# x = -dx*i, y = dz*k, z = dy*j (orientation "LSA").
open("u1_qform_lsa.nii", "wb").write(vol("<", "u1", qform=2, quat=(0, 0.70710677, 0.70710677), qoff=(0, -254, 0), pixdim=(1, 2, 2, 3, 0, 0, 0, 0)))
