#!/usr/bin/env python3
"""The trees of the scale scenario (bench/scale.sh): `gen DIR FILES COMPS` writes COMPS dir
components `DIR/compNN` with FILES small text files in all (100 per directory, seeded, so the
same tree every run); `change DIR/compNN RUN` rewrites one file of that component with text
that depends on RUN (each run a new variant)."""
import os
import random
import sys


def gen(root, files, comps):
    rng = random.Random(7)
    per = files // comps
    for c in range(comps):
        comp = "comp%02d" % c
        for i in range(per):
            rel = "%s/usr/share/%s/d%04d/f%06d.txt" % (comp, comp, i // 100, i)
            path = os.path.join(root, rel)
            if i % 100 == 0:
                os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write("%s %d %x\n" % (comp, i, rng.getrandbits(256)) * rng.randint(1, 8))


def change(comp_dir, run):
    comp = os.path.basename(comp_dir.rstrip("/"))
    path = os.path.join(comp_dir, "usr/share/%s/d0000/f000000.txt" % comp)
    with open(path, "w") as f:
        f.write("changed %s run %s\n" % (comp, run))


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        change(sys.argv[2], sys.argv[3])
