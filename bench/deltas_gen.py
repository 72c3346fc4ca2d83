#!/usr/bin/env python3
"""The tree of the delta scenario (bench/deltas.sh): `base DIR` writes a base of many small
text files plus a few large binaries; `change DIR` adds ~80 MB of new, poorly compressible
files and rewrites the large binaries with a byte changed every 2 KiB (too scattered for
libostree's rollsum, so they go to bsdiff); `one DIR` changes one small file instead (what a
delta costs against the size of the tree). Seeded: the same trees every run."""
import os
import random
import sys

SMALL_FILES = int(os.environ.get("DELTA_SMALL_FILES", "20000"))
LARGE = [("usr/lib/big%d.bin" % i, 12 * 1024 * 1024) for i in range(3)]
WORDS = [w.encode() for w in "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()]


def write(root, rel, data):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def base(root):
    rng = random.Random(1)
    for i in range(SMALL_FILES):
        n = rng.randint(60, 600)
        text = b" ".join(rng.choice(WORDS) for _ in range(n)) + b"\n"
        write(root, "usr/share/small/d%03d/f%05d.txt" % (i % 200, i), text)
    for rel, size in LARGE:
        write(root, rel, random.Random(rel).randbytes(size))


def change(root):
    rng = random.Random(2)
    # New, poorly compressible: 40 files of 1.5 MB and 200 of 100 KB.
    for i in range(40):
        write(root, "opt/new/blob%02d.bin" % i, rng.randbytes(1536 * 1024))
    for i in range(200):
        write(root, "opt/new/mod%03d.ko" % i, rng.randbytes(100 * 1024))
    for rel, size in LARGE:
        data = bytearray(random.Random(rel).randbytes(size))
        for off in range(0, size, 2048):
            data[off] ^= 0xFF
        write(root, rel, bytes(data))


def one(root):
    write(root, "usr/share/small/d000/f00000.txt", b"changed\n")


if __name__ == "__main__":
    {"base": base, "change": change, "one": one}[sys.argv[1]](sys.argv[2])
