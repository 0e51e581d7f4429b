"""Safetensors files for the parity oracles, read and written with torch,
json and struct alone (not the safetensors package, which Debian's
python3-torch does not bring). safetensors_gen.py keeps its own stricter
reader: it is the format's independent implementation.
"""
import json
import struct

import torch

DTYPES = {"F64": torch.float64, "F32": torch.float32, "I64": torch.int64, "I32": torch.int32,
          "U8": torch.uint8, "BOOL": torch.bool}
NAMES = {v: k for k, v in DTYPES.items()}


def read(path):
    """Returns ({name: tensor}, metadata) of the file at path."""
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    meta = header.pop("__metadata__", None) or {}
    base = 8 + n
    out = {}
    for k, v in header.items():
        s, e = v["data_offsets"]
        dt = DTYPES[v["dtype"]]
        t = torch.frombuffer(bytearray(b[base + s:base + e]), dtype=dt) if e > s else torch.empty(0, dtype=dt)
        out[k] = t.reshape(v["shape"])
    return out, meta


def write(path, tensors):
    """Writes {name: tensor} to path, in dict order."""
    header, blobs, off = {}, [], 0
    for k, t in tensors.items():
        raw = t.detach().contiguous().cpu().numpy().tobytes()
        header[k] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
