#!/usr/bin/env python3
"""Safetensors interop fixture for the Go package safetensors.

Uses only torch, json and struct (not the safetensors package), so it also
serves as an independent implementation of the format.

    safetensors_gen.py write PATH   write the expected state dict to PATH
    safetensors_gen.py check PATH   parse PATH strictly and check it holds
                                    exactly the expected state dict and
                                    metadata; exit 1 if not

torch/safetensors/testdata/golden.safetensors was made with
`python3 internal/oracle/py/safetensors_gen.py write torch/safetensors/testdata/golden.safetensors`.
The Go tests mirror expected() in expectedFile()
(torch/safetensors/interop_test.go); keep the two in sync.
"""

import json
import struct
import sys

import torch

METADATA = {"format": "pt", "producer": "jmedseg gen.py"}

DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}

# A same-size integer dtype per dtype, used to get at the raw bytes through
# numpy (which has no bfloat16).
RAW = {
    torch.float64: torch.int64,
    torch.float32: torch.int32,
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
    torch.bool: torch.uint8,
}


def expected():
    """The state dict, in data order."""
    return {
        "encoder.conv.weight": torch.tensor(
            [[[-1.0, -0.5, 0.0], [0.5, 1.0, 1.5]], [[2.0, 3.25, -7.125], [1e-3, 3e38, -0.0]]],
            dtype=torch.float32,
        ),
        "encoder.conv.bias": torch.tensor([0.1, -2.25, 3e100], dtype=torch.float64),
        "num_batches_tracked": torch.tensor(-(2**40) + 7, dtype=torch.int64),  # 0-d
        "mask": torch.tensor([[True, False, True], [False, False, True]]),
        "half": torch.tensor(
            [1.0, -2.5, 65504.0, 2.0**-24, float("-inf"), 0.333251953125], dtype=torch.float16
        ),
        "bhalf": torch.tensor([1.0, -3.0, 0.15625, 2.0**100], dtype=torch.bfloat16),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
        "labels": torch.tensor([-7, 0, 2**31 - 1, -(2**31)], dtype=torch.int32),
        "small": torch.tensor([-32768, 32767], dtype=torch.int16),
        "tiny": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "bytes": torch.tensor([[0, 1], [128, 255]], dtype=torch.uint8),
    }


def raw_bytes(t):
    t = t.contiguous().reshape(-1)
    t = t.view(RAW.get(t.dtype, t.dtype))
    a = t.numpy()
    return a.astype(a.dtype.newbyteorder("<")).tobytes()


def write(path, tensors, metadata):
    """Write tensors in safetensors layout. Data follows dict order; header
    keys are sorted, so header order differs from data order on purpose."""
    header = {"__metadata__": metadata}
    chunks = []
    offset = 0
    for name, t in tensors.items():
        b = raw_bytes(t)
        header[name] = {
            "dtype": NAMES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(b)],
        }
        chunks.append(b)
        offset += len(b)
    h = json.dumps(header, sort_keys=True).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)  # pad like the reference writer
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in chunks:
            f.write(b)


def read(path):
    """Parse a safetensors file strictly. Returns (metadata, tensors, header_len)."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > 100_000_000 or 8 + n > len(buf):
        raise ValueError("bad header length %d" % n)

    def no_dups(pairs):
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError("duplicate keys in header")
        return dict(pairs)

    raw = buf[8 : 8 + n]
    if not raw.startswith(b"{"):
        raise ValueError("header does not start with '{'")
    header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_dups)
    data = buf[8 + n :]
    metadata = header.pop("__metadata__", None) or {}
    for k, v in metadata.items():
        if not isinstance(v, str):
            raise ValueError("metadata %r is not a string" % k)
    tensors = {}
    spans = []
    for name, info in header.items():
        if set(info) != {"dtype", "shape", "data_offsets"}:
            raise ValueError("%s: bad fields %s" % (name, sorted(info)))
        dtype = DTYPES[info["dtype"]]
        shape = info["shape"]
        begin, end = info["data_offsets"]
        if any(d < 0 for d in shape) or not 0 <= begin <= end <= len(data):
            raise ValueError("%s: bad shape or offsets" % name)
        numel = 1
        for d in shape:
            numel *= d
        itemsize = torch.empty((), dtype=dtype).element_size()
        if end - begin != numel * itemsize:
            raise ValueError("%s: %d bytes for shape %s" % (name, end - begin, shape))
        if numel == 0:
            t = torch.empty(shape, dtype=dtype)
        else:
            t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype).reshape(shape)
        tensors[name] = t
        spans.append((begin, end, name))
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            raise ValueError("%s: gap or overlap at %d" % (name, begin))
        pos = end
    if pos != len(data):
        raise ValueError("trailing data")
    return metadata, tensors, n


def check(path):
    metadata, tensors, n = read(path)
    ok = True
    if (8 + n) % 8 != 0:
        print("header not padded to 8 bytes: %d" % n)
        ok = False
    if metadata != METADATA:
        print("metadata: got %r want %r" % (metadata, METADATA))
        ok = False
    want = expected()
    if set(tensors) != set(want):
        print("names: got %s want %s" % (sorted(tensors), sorted(want)))
        ok = False
    for name, w in want.items():
        g = tensors.get(name)
        if g is None:
            continue
        if g.dtype != w.dtype or g.shape != w.shape or not torch.equal(g, w):
            print("%s: got %s %s %s want %s %s %s" % (name, g.dtype, tuple(g.shape), g, w.dtype, tuple(w.shape), w))
            ok = False
    for name, t in tensors.items():
        print("%s %s %s" % (name, NAMES[t.dtype], list(t.shape)))
    print("OK" if ok else "MISMATCH")
    return ok


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "check"):
        sys.exit(__doc__)
    if sys.argv[1] == "write":
        write(sys.argv[2], expected(), METADATA)
    else:
        sys.exit(0 if check(sys.argv[2]) else 1)


if __name__ == "__main__":
    main()
