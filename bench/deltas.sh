#!/usr/bin/env bash
# Delta benchmark (issue 13): publish's static delta on a dir component of 20,000 small
# files after a change that adds ~80 MB of poorly compressible files and rewrites three
# 12 MB binaries (bench/deltas_gen.py). Builds the base and the change once, then, BENCH_RUNS
# times: move the export ref back, drop the deltas, `ostree-build publish`; prints the
# delta's time (publish's "delta" phase) and its size on disk, then their medians.
#
#   OSTREE_BUILD=target/debug/ostree-build bench/deltas.sh
#
# Environment: BENCH_DIR (default /tmp/ostree-build-deltas), BENCH_RUNS (default 3),
# OSTREE_BUILD (binary, default target/release/ostree-build), BENCH_DEB (a .deb whose files
# are the change instead, e.g. a kernel: `apt-get download linux-image-6.1.0-56-amd64`),
# BENCH_CHANGE=one (change one small file instead), DELTA_SMALL_FILES (base size, 20000).
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OB=$(realpath "${OSTREE_BUILD:-$HERE/../target/release/ostree-build}")
DIR=${BENCH_DIR:-/tmp/ostree-build-deltas}
RUNS=${BENCH_RUNS:-3}
REF=exampleos/x86_64/standard
EXPORT=$DIR/build/repo

if [ ! -f "$DIR/change.done" ]; then
  rm -rf "$DIR" && mkdir -p "$DIR"
  cat > "$DIR/ostree-build.toml" <<'TOML'
[os]
name = "exampleos"
arch = "x86_64"

[component.base]
backend = "dir"
path = "rootfs"

[image.standard]
components = ["base"]
TOML
  python3 "$HERE/deltas_gen.py" base "$DIR/rootfs"
  (cd "$DIR" && "$OB" build -q)
  if [ -n "${BENCH_DEB:-}" ]; then
    dpkg-deb -x "$BENCH_DEB" "$DIR/rootfs"
  else
    python3 "$HERE/deltas_gen.py" "${BENCH_CHANGE:-change}" "$DIR/rootfs"
  fi
  (cd "$DIR" && "$OB" build -q)
  touch "$DIR/change.done"
fi
TO=$(ostree --repo="$EXPORT" rev-parse "$REF")
FROM=$(ostree --repo="$EXPORT" rev-parse "$TO^")
times=() sizes=()
for _ in $(seq "$RUNS"); do
  rm -rf "$EXPORT/deltas" "$EXPORT/delta-indexes"
  ostree --repo="$EXPORT" reset "$REF" "$FROM"
  out=$(cd "$DIR" && "$OB" publish 2>&1)
  t=$(grep -o 'delta [0-9.]*s' <<<"$out" | grep -o '[0-9.]*' || echo 0)
  s=$( (du -sb "$EXPORT/deltas" 2>/dev/null || echo 0) | cut -f1)
  echo "run: delta ${t}s, size ${s} bytes; $(grep -o 'static delta[^;]*' <<<"$out" || echo 'no delta')"
  times+=("$t") sizes+=("$s")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median: delta $(median "${times[@]}")s, size $(median "${sizes[@]}") bytes (runs: ${times[*]})"
