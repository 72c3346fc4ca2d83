#!/usr/bin/env python3
"""Deterministic corpus generator for bench/run.sh (Python 3 standard library only).

The corpus is 30 components (comp00..comp29), each an uncompressed tarball of a tree under
usr/ (plus one file under etc/ld.so.conf.d/), written to OUT/tars/<comp>.tar. Everything is
a pure function of (seed, scale, variant), so two runs with the same arguments write
byte-identical tarballs.

  gen.py generate --out DIR [--seed N] [--scale S]
      Write every tarball, unless OUT/corpus.json says the same corpus is already there
      (then only components left at a non-zero variant are rewritten).
  gen.py mutate --out DIR [--seed N] [--scale S] --comp comp07 --variant K
      Rewrite one component's tarball with variant K of its mutation target (variant 0 is
      the original content; variant K > 0 appends K-dependent bytes to one text file) and
      move the tarball's mtime forward.

Shape (scale 1): ~12,000 non-directory entries, ~12% of them relative symlinks inside the
component, ~300 MB of file data with heavy-tailed sizes (median a few KB, a few multi-MB
files), ~15% of the bytes random (incompressible), the rest word-salad text.
"""
import argparse
import hashlib
import io
import json
import math
import multiprocessing
import os
import posixpath
import random
import sys
import tarfile
import time

NCOMP = 30
BASE_ENTRIES = 12000          # regular files + symlinks at scale 1
BASE_BYTES = 300 * 1000 * 1000
SYMLINK_FRACTION = 0.12
RANDOM_FRACTION = 0.15        # share of bytes that are incompressible
MEDIAN_SIZE = 3000
SIGMA = 1.8
TAIL = 64 * 1024              # sizes above this are scaled to hit the byte target
MTIME = 1700000000            # every tar member's mtime
POOL_SIZE = 4 * 1024 * 1024   # text pool that text files are cut from
SHARED_DIRS = ["etc", "etc/ld.so.conf.d", "usr", "usr/bin", "usr/lib", "usr/share", "usr/share/doc"]

SYLLABLES = ("ka ri to mu sen dal or pex in qua ver lo tan fi ber go nu sal ex im ra te "
             "co mon dri ve ul stra pa ki zo hel mar ti un de lux net ab cor sys gra fo "
             "wen ly pro ta vi ge ster nol bi um ak").split()
TEXT_EXT = [".txt", ".py", ".conf", ".h", ".c", ".json", ".xml", ".md", ".sh", ".html", ".pc", ""]
RAND_EXT_LIB = [".so", ".so", ".so", ".bin", ".a", ".dat"]
RAND_EXT_SHARE = [".png", ".gz", ".bin", ".dat", ".zst", ".mo"]


def comp_name(i):
    return "comp%02d" % i


def stamp_of(seed, scale):
    with open(os.path.abspath(__file__), "rb") as f:
        src = f.read()
    return hashlib.sha256(src + ("|%d|%r" % (seed, scale)).encode()).hexdigest()


# ---------------------------------------------------------------- text pool

def make_pool(seed):
    rng = random.Random("%d:pool" % seed)
    vocab = set()
    while len(vocab) < 3000:
        vocab.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    vocab = sorted(vocab)
    rng.shuffle(vocab)
    cum, total = [], 0.0
    for rank in range(len(vocab)):          # Zipf-like word frequencies
        total += 1.0 / (rank + 1)
        cum.append(total)
    words = rng.choices(vocab, cum_weights=cum, k=POOL_SIZE // 5)
    punct = [" ", " ", " ", " ", ", ", ". ", " = ", "(", ") ", "; ", "_", ": "]
    out, i, n = [], 0, len(words)
    size = 0
    while size < POOL_SIZE and i < n:
        k = rng.randint(3, 14)
        parts = [" " * (4 * rng.randint(0, 3))]
        for w in words[i:i + k]:
            parts.append(w)
            parts.append(rng.choice(punct))
        if rng.random() < 0.2:
            parts.append(str(rng.randint(0, 1 << 20)))
        parts.append("\n")
        line = "".join(parts)
        out.append(line)
        size += len(line)
        i += k
        if i >= n:
            i = 0
    return "".join(out).encode()[:POOL_SIZE]


# ---------------------------------------------------------------- plan

def largest_remainder(total, weights, minimum):
    """Split `total` into integers proportional to `weights`, each >= minimum."""
    base = [minimum] * len(weights)
    rest = total - minimum * len(weights)
    if rest <= 0:
        return base
    s = sum(weights)
    raw = [rest * w / s for w in weights]
    parts = [int(r) for r in raw]
    left = rest - sum(parts)
    order = sorted(range(len(raw)), key=lambda j: raw[j] - parts[j], reverse=True)
    for j in order[:left]:
        parts[j] += 1
    return [b + p for b, p in zip(base, parts)]


def make_plan(seed, scale):
    """Every component's entries: dict name -> list of (kind, path, mode, extra)."""
    rng = random.Random("%d:plan:%r" % (seed, scale))
    entries = max(NCOMP * 10, int(round(BASE_ENTRIES * scale)))
    nsym = int(round(entries * SYMLINK_FRACTION))
    nreg = entries - nsym
    target = BASE_BYTES * scale

    sizes = [int(rng.lognormvariate(math.log(MEDIAN_SIZE), SIGMA)) for _ in range(nreg)]
    small = sum(x for x in sizes if x <= TAIL)
    big = sum(x for x in sizes if x > TAIL)
    if big > 0 and target > small:
        factor = (target - small) / big
        sizes = [x if x <= TAIL else max(TAIL + 1, int(x * factor)) for x in sizes]

    total = sum(sizes)
    order = list(range(nreg))
    rng.shuffle(order)
    israndom = [False] * nreg
    budget, acc = RANDOM_FRACTION * total, 0
    for j in order:
        if acc + sizes[j] <= budget:
            israndom[j] = True
            acc += sizes[j]
    files = list(zip(sizes, israndom))
    rng.shuffle(files)

    weights = [rng.lognormvariate(0, 0.6) for _ in range(NCOMP)]
    reg_counts = largest_remainder(nreg, weights, 6)
    sym_counts = largest_remainder(nsym, reg_counts, 1)

    plan, pos = {}, 0
    for ci in range(NCOMP):
        mine = files[pos:pos + reg_counts[ci]]
        pos += reg_counts[ci]
        plan[comp_name(ci)] = layout_component(seed, scale, ci, mine, sym_counts[ci])
    return plan


def layout_component(seed, scale, ci, files, nsym):
    name = comp_name(ci)
    rng = random.Random("%d:comp:%s:%r" % (seed, name, scale))
    names = {}                      # dir -> set of child names
    dirs = set(SHARED_DIRS)

    def word():
        w = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))
        return "x" + w if w.startswith("lib") else w

    def unique(d, base):
        taken = names.setdefault(d, set())
        cand, k = base, 1
        while cand in taken:
            k += 1
            root, ext = posixpath.splitext(base)
            cand = "%s%d%s" % (root, k, ext)
        taken.add(cand)
        return cand

    def add_dir(path):
        while path and path not in dirs:
            dirs.add(path)
            parent = posixpath.dirname(path)
            names.setdefault(parent, set()).add(posixpath.basename(path))
            path = parent

    def subtree(root, nfiles):
        add_dir(root)
        tree = [root]
        for _ in range(max(1, nfiles // 14)):
            parent = rng.choice([d for d in tree if d.count("/") < root.count("/") + 5])
            d = posixpath.join(parent, unique(parent, word()))
            add_dir(d)
            tree.append(d)
        return tree

    libroot, shareroot = "usr/lib/" + name, "usr/share/" + name
    docroot = "usr/share/doc/" + name
    cats = []
    for size, rnd in files:
        r = rng.random()
        if rnd:
            cats.append("lib" if r < 0.8 else "share")
        else:
            cats.append("bin" if r < 0.07 else "lib" if r < 0.45 else "doc" if r < 0.48 else "share")
    libdirs = subtree(libroot, cats.count("lib"))
    sharedirs = subtree(shareroot, cats.count("share"))

    out = []                         # (kind, path, mode, size-or-target, random?)
    regular = []
    for (size, rnd), cat in zip(files, cats):
        if cat == "bin":
            d = "usr/bin"
            fname = unique(d, "%s-%s" % (name, word()))
            mode = 0o755
        elif cat == "doc":
            d = docroot
            add_dir(d)
            fname = unique(d, word().upper() + rng.choice(["", ".md", ".txt"]))
            mode = 0o644
        else:
            d = rng.choice(libdirs if cat == "lib" else sharedirs)
            if rnd:
                ext = rng.choice(RAND_EXT_LIB if cat == "lib" else RAND_EXT_SHARE)
            else:
                ext = rng.choice(TEXT_EXT)
            fname = unique(d, word() + ext)
            if ext == ".so" or (ext in (".sh", ".py") and rng.random() < 0.4):
                mode = 0o755
            elif rng.random() < 0.03:
                mode = 0o600
            else:
                mode = 0o644
        path = posixpath.join(d, fname)
        out.append(("file", path, mode, size, rnd))
        regular.append(path)

    # One ld.so.conf.d snippet per component; comp00 also owns ld.so.conf itself.
    conf = "etc/ld.so.conf.d/%s.conf" % name
    out.append(("file", conf, 0o644, ("/usr/lib/%s\n" % name).encode(), False))
    if ci == 0:
        out.append(("file", "etc/ld.so.conf", 0o644, b"include /etc/ld.so.conf.d/*.conf\n", False))
        out.append(("file", "etc/os-release", 0o644,
                    b'NAME="ExampleOS"\nID=exampleos\nVERSION_ID=1\n', False))

    subdirs = [d for d in libdirs if d != libroot]
    for _ in range(nsym):
        if subdirs and rng.random() < 0.1:
            target = rng.choice(subdirs)
            d = shareroot
            link = posixpath.join(d, unique(d, posixpath.basename(target) + "-dir"))
        else:
            target = rng.choice(regular)
            r = rng.random()
            if r < 0.5:
                d = posixpath.dirname(target)
                link = posixpath.join(d, unique(d, posixpath.basename(target) + ".%d" % rng.randint(0, 9)))
            elif r < 0.75:
                d = "usr/bin"
                link = posixpath.join(d, unique(d, "%s-%s" % (name, word())))
            else:
                d = rng.choice(libdirs + sharedirs)
                link = posixpath.join(d, unique(d, word() + "-link"))
        rel = posixpath.relpath(target, posixpath.dirname(link))
        out.append(("symlink", link, 0o777, rel, False))

    for d in dirs:
        out.append(("dir", d, 0o755, None, False))
    out.sort(key=lambda e: e[1])
    return out


def mutation_target(entries):
    text = [e for e in entries if e[0] == "file" and not e[4] and isinstance(e[3], int)]
    for e in text:
        if "/share/" in e[1] and 2048 <= e[3] <= 65536:
            return e[1]
    return text[0][1]


# ---------------------------------------------------------------- content

POOL = None


def text_content(seed, path, size):
    header = ("# %s\n" % path).encode()
    if size <= len(header):
        return header[:size]
    r = random.Random("%d:text:%s" % (seed, path))
    parts, need = [header], size - len(header)
    while need > 0:
        off = r.randrange(len(POOL))
        take = min(need, len(POOL) - off)
        parts.append(POOL[off:off + take])
        need -= take
    return b"".join(parts)


def content(seed, entry, variant, target):
    kind, path, mode, spec, rnd = entry
    if not isinstance(spec, int):
        data = spec
    elif rnd:
        data = random.Random("%d:rand:%s" % (seed, path)).randbytes(spec)
    else:
        data = text_content(seed, path, spec)
    if variant and path == target:
        r = random.Random("%d:variant:%d" % (seed, variant))
        off = r.randrange(len(POOL) - 4096)
        data += ("\n# bench change %d\n" % variant).encode() + POOL[off:off + 100 + 37 * variant]
    return data


def write_tar(out, seed, name, entries, variant):
    target = mutation_target(entries)
    tars = os.path.join(out, "tars")
    os.makedirs(tars, exist_ok=True)
    final = os.path.join(tars, name + ".tar")
    tmp = final + ".tmp"
    nbytes = 0
    # Member names are "./"-prefixed under a "./" root entry, as `tar -C root -c .` writes
    # them: `ostree commit --tree=tar=` (2022.7) commits an empty tree without the root entry.
    with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tf:
        for e in [("dir", ".", 0o755)] + entries:
            kind, path, mode = e[0], e[1], e[2]
            ti = tarfile.TarInfo(path if path == "." else "./" + path)
            ti.mode, ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = mode, MTIME, 0, 0, "root", "root"
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e[3]
                tf.addfile(ti)
            else:
                data = content(seed, e, variant, target)
                ti.size = len(data)
                nbytes += len(data)
                tf.addfile(ti, io.BytesIO(data))
    old = None
    try:
        old = os.stat(final).st_mtime_ns
    except FileNotFoundError:
        pass
    os.replace(tmp, final)
    if old is not None:
        # Move the mtime forward even if the clock is coarse, so stamps always change.
        now = time.time_ns()
        new = max(now, old + 1_000_000_000)
        os.utime(final, ns=(new, new))
    return name, nbytes


def _worker(args):
    return write_tar(*args)


def stats(plan):
    sizes, nsym, nrand, rbytes = [], 0, 0, 0
    for entries in plan.values():
        for e in entries:
            if e[0] == "symlink":
                nsym += 1
            elif e[0] == "file":
                s = e[3] if isinstance(e[3], int) else len(e[3])
                sizes.append(s)
                if e[4]:
                    rbytes += s
    sizes.sort()
    total = sum(sizes)
    return {
        "components": len(plan),
        "regular_files": len(sizes),
        "symlinks": nsym,
        "entries": len(sizes) + nsym,
        "bytes": total,
        "random_bytes": rbytes,
        "random_fraction": round(rbytes / total, 3) if total else 0,
        "median_size": sizes[len(sizes) // 2] if sizes else 0,
        "max_size": sizes[-1] if sizes else 0,
        "files_over_1MB": sum(1 for s in sizes if s > 1_000_000),
    }


def load_state(out):
    try:
        with open(os.path.join(out, "corpus.json")) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def save_state(out, state):
    tmp = os.path.join(out, "corpus.json.tmp")
    with open(tmp, "w") as f:
        json.dump(state, f, indent=2, sort_keys=True)
    os.replace(tmp, os.path.join(out, "corpus.json"))


def main():
    global POOL
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["generate", "mutate"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--comp")
    ap.add_argument("--variant", type=int, default=0)
    a = ap.parse_args()
    if a.scale <= 0:
        sys.exit("gen.py: --scale must be > 0")
    os.makedirs(a.out, exist_ok=True)
    stamp = stamp_of(a.seed, a.scale)
    state = load_state(a.out)
    plan = make_plan(a.seed, a.scale)
    POOL = make_pool(a.seed)

    if a.command == "generate":
        if state and state.get("stamp") == stamp:
            todo = [c for c in plan
                    if state["variants"].get(c, 0) != 0
                    or not os.path.exists(os.path.join(a.out, "tars", c + ".tar"))]
        else:
            todo = list(plan)
            state = {"stamp": stamp, "seed": a.seed, "scale": a.scale, "variants": {},
                     "stats": stats(plan),
                     "mutation_targets": {c: mutation_target(e) for c, e in plan.items()}}
        t = time.time()
        jobs = [(a.out, a.seed, c, plan[c], 0) for c in todo]
        if len(jobs) > 1 and (os.cpu_count() or 1) > 1:
            with multiprocessing.Pool(min(os.cpu_count(), 4)) as pool:
                list(pool.imap_unordered(_worker, jobs))
        else:
            for j in jobs:
                _worker(j)
        for c in plan:
            state["variants"][c] = 0
        save_state(a.out, state)
        s = state["stats"]
        print("corpus: %d components, %d files (%d symlinks), %.1f MB, %.0f%% random bytes, "
              "median %d B, max %.1f MB, %d files > 1 MB; %d tarball(s) written in %.1fs"
              % (s["components"], s["entries"], s["symlinks"], s["bytes"] / 1e6,
                 100 * s["random_fraction"], s["median_size"], s["max_size"] / 1e6,
                 s["files_over_1MB"], len(todo), time.time() - t))
    else:
        if not a.comp or a.comp not in plan:
            sys.exit("gen.py mutate: --comp must be one of comp00..comp%02d" % (NCOMP - 1))
        if not state or state.get("stamp") != stamp:
            sys.exit("gen.py mutate: run `gen.py generate` with the same --seed/--scale first")
        write_tar(a.out, a.seed, a.comp, plan[a.comp], a.variant)
        state["variants"][a.comp] = a.variant
        save_state(a.out, state)
        print("%s: variant %d of %s" % (a.comp, a.variant, state["mutation_targets"][a.comp]))


if __name__ == "__main__":
    main()
