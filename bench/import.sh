#!/usr/bin/env bash
# Import benchmark (issue 13): one large gzip tarball into a bare-user repository with fsync
# off (the build repository's mode), `ostree-build build` of a one-tarball project against
# `ostree commit --tree=tar=FILE`. Interleaved runs, medians of BENCH_RUNS, wall and CPU
# seconds, the root tree checksums compared. Called by bench/run.sh; runs on its own too:
#
#   OSTREE_BUILD=target/release/ostree-build bench/import.sh
#
# Environment: BENCH_DIR (default /tmp/ostree-build-import), BENCH_RUNS (default 3),
# BENCH_SCALE (gen.py scale of the corpus, default 0.5: ~6,700 entries, 155 MB, 64 MB
# gzip), BENCH_SEED, OSTREE_BUILD (default target/release/ostree-build), BENCH_TAR (a
# tarball to import instead of the generated one, e.g. a Debian base made with debootstrap).
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OB=$(realpath "${OSTREE_BUILD:-$HERE/../target/release/ostree-build}")
DIR=${BENCH_DIR:-/tmp/ostree-build-import}
RUNS=${BENCH_RUNS:-3}
SCALE=${BENCH_SCALE:-0.5}
SEED=${BENCH_SEED:-20240601}
case "$DIR" in /|"") echo "import: refusing BENCH_DIR='$DIR'" >&2; exit 1;; esac
mkdir -p "$DIR"
DIR=$(realpath "$DIR")

# The tarball: gen.py's 30 components concatenated into one (a Debian-like spread of many
# small files and a few large ones, 12% symlinks), gzip -6. Cached by seed and scale.
TAR=${BENCH_TAR:-$DIR/base-$SEED-$SCALE.tar.gz}
if [ ! -f "$TAR" ]; then
  python3 "$HERE/gen.py" generate --out "$DIR/corpus" --seed "$SEED" --scale "$SCALE" >/dev/null
  cp "$DIR/corpus/tars/comp00.tar" "$DIR/base.tar"
  for i in $(seq 1 29); do tar -Af "$DIR/base.tar" "$DIR/corpus/tars/comp$(printf %02d "$i").tar"; done
  gzip -6 -c "$DIR/base.tar" >"$TAR.part" && mv "$TAR.part" "$TAR"
  rm -rf "$DIR/base.tar" "$DIR/corpus"
fi
TAR=$(realpath "$TAR")
echo "== import: $(du -m "$TAR" | cut -f1) MB ($TAR), $(tar -tzf "$TAR" | wc -l) entries; $RUNS runs; load $(cut -d' ' -f1 /proc/loadavg)"

# Nothing is deleted between runs: on ext4 without a journal (these VMs) the inode allocator
# skips inodes freed in the last 30 s, one by one, so a `rm -rf` of the previous run's
# repository made every object creation of the next run scan thousands of them (half the
# run's time, kernel CPU, either tool). The runs' directories go at the end, and what an
# earlier invocation left is deleted 30 s before the first run.
if [ -d "$DIR/runs" ]; then
  rm -rf "$DIR/runs"
  sleep 31
fi
mkdir -p "$DIR/runs"
timed() { # LABEL RUN CMD...: "LABEL RUN wall user sys" appended to the results
  local label=$1 run=$2
  shift 2
  sync
  /usr/bin/time -f "$label $run %e %U %S" -a -o "$DIR/runs/times" "$@" >>"$DIR/runs/log" 2>&1
}
cli() {
  local r=$DIR/runs/$1/cli-repo
  ostree --repo="$r" init --mode=bare-user
  ostree --repo="$r" config set core.fsync false
  timed cli "$1" ostree --repo="$r" commit -b base --tree=tar="$TAR"
}
ours() {
  local p=$DIR/runs/$1/project
  mkdir -p "$p"
  printf '[os]\nname = "exampleos"\narch = "x86_64"\n\n[component.base]\nbackend = "tarball"\npath = "%s"\n' \
    "$TAR" >"$p/ostree-build.toml"
  (cd "$p" && timed ostree-build "$1" "$OB" build -q)
}
for run in $(seq 1 "$RUNS"); do
  mkdir -p "$DIR/runs/$run"
  if [ $((run % 2)) -eq 1 ]; then cli "$run"; ours "$run"; else ours "$run"; cli "$run"; fi
  grep " $run " "$DIR/runs/times" | awk '{ printf "  run %s  %-12s %6.2f s wall, %5.2f s CPU\n", $2, $1, $3, $4 + $5 }'
done
last=$DIR/runs/$RUNS
a=$(ostree --repo="$last/cli-repo" ls -d -C base / | awk '{ print $5, $6 }')
b=$(ostree --repo="$last/project/build/cache-repo" ls -d -C exampleos/x86_64/components/base / |
  awk '{ print $5, $6 }')
if [ "$a" = "$b" ]; then echo "  trees equal (root tree and metadata checksums identical)"
else echo "  WARNING: the root trees differ: cli $a, ostree-build $b"; fi
awk -v load="$(cut -d' ' -f1 /proc/loadavg)" '
  function median(list, n,   i, j, t, a) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { wall[$1] = wall[$1] " " $3; cpu[$1] = cpu[$1] " " ($4 + $5) }
  END {
    cw = median(wall["cli"]); ow = median(wall["ostree-build"])
    cc = median(cpu["cli"]); oc = median(cpu["ostree-build"])
    printf "  median: ostree commit %.2f s (%.2f s CPU), ostree-build %.2f s (%.2f s CPU): %.3fx wall (target <=0.6x %s), %.3fx CPU; load %s at end\n",
      cw, cc, ow, oc, ow / cw, (ow / cw <= 0.6 ? "ok" : "MISSED"), oc / cc, load
  }' "$DIR/runs/times"
rm -rf "$DIR/runs"
