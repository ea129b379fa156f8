#!/usr/bin/env python3
"""Writes the embedded Fashion-MNIST subset (standard library only, deterministic).

Takes, in file order, the first 1,000 training and the first 200 test images of each of the 10 classes
from Debian's dataset-fashion-mnist and writes them as gzipped IDX files beside this script. The samples
keep their original relative order, so the files are class-balanced but not sorted by class.

usage: python3 make_subset.py [SOURCE_DIR]   (default /usr/share/datasets/fashion-mnist)
"""
import gzip
import os
import struct
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
DST = os.path.dirname(os.path.abspath(__file__))
PER_CLASS = {"train": 1000, "t10k": 200}
OUT_NAME = {"train": "fashion-train", "t10k": "fashion-test"}


def read_idx(path, magic):
    with gzip.open(path, "rb") as f:
        data = f.read()
    got, = struct.unpack(">I", data[:4])
    assert got == magic, f"{path}: magic {got:#x}, expected {magic:#x}"
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def write_idx(path, magic, dims, payload):
    header = struct.pack(">I", magic) + struct.pack(">" + "I" * len(dims), *dims)
    # mtime=0 and no file name keep the .gz bytes identical across runs.
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
        f.write(header + payload)


for split, per_class in PER_CLASS.items():
    (n,), labels = read_idx(os.path.join(SRC, f"{split}-labels-idx1-ubyte.gz"), 0x0801)
    (n2, rows, cols), images = read_idx(os.path.join(SRC, f"{split}-images-idx3-ubyte.gz"), 0x0803)
    assert n == n2
    taken = [0] * 10
    keep = []
    for i in range(n):
        c = labels[i]
        if taken[c] < per_class:
            taken[c] += 1
            keep.append(i)
    assert taken == [per_class] * 10, taken
    size = rows * cols
    out_images = b"".join(images[i * size:(i + 1) * size] for i in keep)
    out_labels = bytes(labels[i] for i in keep)
    base = os.path.join(DST, OUT_NAME[split])
    write_idx(base + "-images-idx3-ubyte.gz", 0x0803, (len(keep), rows, cols), out_images)
    write_idx(base + "-labels-idx1-ubyte.gz", 0x0801, (len(keep),), out_labels)
    print(f"{split}: {len(keep)} samples -> {base}-*-ubyte.gz")
