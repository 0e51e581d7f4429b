# Generates the golden .npy files with the Python standard library only
# (byte-for-byte what numpy.save writes for these arrays).
import struct

def save(name, descr, shape, fmt, values, fortran=False, version=1):
    shp = "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, "True" if fortran else "False", shp)
    pre = 10 if version == 1 else 12
    pad = (64 - (pre + len(d) + 1) % 64) % 64
    d = d + " " * pad + "\n"
    with open(name, "wb") as f:
        f.write(b"\x93NUMPY" + bytes([version, 0]))
        f.write(struct.pack("<H" if version == 1 else "<I", len(d)))
        f.write(d.encode("latin1"))
        f.write(struct.pack(fmt % len(values), *values))

save("u1_2x3.npy", "|u1", (2, 3), "<%dB", [0, 1, 2, 3, 254, 255])
save("i2be_2x2.npy", ">i2", (2, 2), ">%dh", [-300, 0, 7, 32767])
# Fortran order: logical [[1,2,3],[4,5,6]] stored column by column.
save("f4fortran_2x3.npy", "<f4", (2, 3), "<%df", [1, 4, 2, 5, 3, 6], fortran=True)
save("i8_3.npy", "<i8", (3,), "<%dq", [-1, 0, 1 << 40])
save("b1_2x2.npy", "|b1", (2, 2), "<%dB", [1, 0, 0, 1])
save("f8v2_1x2x2.npy", "<f8", (1, 2, 2), "<%dd", [0.5, -0.25, 1e10, 3.0], version=2)
save("u2_rgb_1x2x3.npy", "<u2", (1, 2, 3), "<%dH", [0, 65535, 1000, 1, 2, 3])
