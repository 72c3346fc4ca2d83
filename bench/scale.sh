#!/usr/bin/env bash
# Scale benchmark (issue 13): "one-file change, rebuild + publish" on a small and a large
# project (same shape, BENCH_SMALL vs BENCH_LARGE files in BENCH_COMPS dir components). Per
# project and per delta policy ("never" and the default): generate, warm build, then
# BENCH_RUNS times change one file of comp01 and time `ostree-build build` (which composes
# and publishes). Prints each run, the medians, the large/small ratio and the median time
# of every phase (the `summary` event of `--message-format json`).
#
#   OSTREE_BUILD=target/debug/ostree-build bench/scale.sh
#
# Environment: BENCH_DIR (default /tmp/ostree-build-scale), BENCH_RUNS (default 5),
# BENCH_SMALL (6000), BENCH_LARGE (60000), BENCH_COMPS (6), BENCH_KIND (dir | tar: the
# changed component as a dir or as a tarball repacked each run), OSTREE_BUILD (binary,
# default target/release/ostree-build).
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OB=$(realpath "${OSTREE_BUILD:-$HERE/../target/release/ostree-build}")
DIR=${BENCH_DIR:-/tmp/ostree-build-scale}
RUNS=${BENCH_RUNS:-5}
COMPS=${BENCH_COMPS:-6}
KIND=${BENCH_KIND:-dir}
CHANGED=comp01

manifest() { # $1 project dir, $2 delta policy
  {
    printf '[os]\nname = "exampleos"\narch = "x86_64"\n\n'
    local list=()
    for c in $(seq 0 $((COMPS - 1))); do
      local n
      n=$(printf 'comp%02d' "$c")
      list+=("\"$n\"")
      if [ "$KIND" = tar ] && [ "$n" = "$CHANGED" ]; then
        printf '[component.%s]\nbackend = "tarball"\npath = "%s.tar"\n\n' "$n" "$n"
      else
        printf '[component.%s]\nbackend = "dir"\npath = "src/%s"\n\n' "$n" "$n"
      fi
    done
    printf '[image.standard]\ncomponents = [%s]\n\n' "$(IFS=,; echo "${list[*]}")"
    printf '[publish]\ndelta = "%s"\n' "$2"
  } > "$1/ostree-build.toml"
}

repack() { # $1 project dir
  [ "$KIND" = tar ] || return 0
  tar -C "$1/src/$CHANGED" --owner=0 --group=0 -cf "$1/$CHANGED.tar" .
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# One project: prints "total" and "phase NAME SECONDS" lines (medians) to $1/result.
bench_project() { # $1 project dir, $2 files, $3 delta policy
  local p=$1
  if [ ! -f "$p/gen.done" ]; then
    rm -rf "$p" && mkdir -p "$p/src"
    python3 "$HERE/scale_gen.py" gen "$p/src" "$2" "$COMPS"
    touch "$p/gen.done"
  fi
  # A build by another binary is started over; the second delta policy reuses the first's.
  if [ "$(cat "$p/built-by" 2>/dev/null)" != "$OB" ]; then rm -rf "$p/build"; fi
  echo "$OB" > "$p/built-by"
  manifest "$p" "$3"
  repack "$p"
  (cd "$p" && "$OB" build -q)
  local times=() json=()
  for r in $(seq "$RUNS"); do
    python3 "$HERE/scale_gen.py" change "$p/src/$CHANGED" "$3-$r-$RANDOM"
    repack "$p"
    sync
    local out
    out=$(cd "$p" && "$OB" build --message-format json)
    json+=("$(grep '"summary"' <<<"$out")")
    local t
    t=$(jq -r '.seconds' <<<"${json[-1]}")
    times+=("$t")
    echo "  $(basename "$p") delta=$3 run $r: ${t}s ($(jq -r '[.phases[] | "\(.[0]) \(.[1]*1000|floor)ms"] | join(", ")' <<<"${json[-1]}"))"
  done
  echo "total $(median "${times[@]}")" > "$p/result"
  for ph in $(printf '%s\n' "${json[@]}" | jq -r '.phases[][0]' | sort -u); do
    local v=()
    for j in "${json[@]}"; do v+=("$(jq -r --arg ph "$ph" '[.phases[] | select(.[0]==$ph) | .[1]] | add // 0' <<<"$j")"); done
    echo "phase $ph $(median "${v[@]}")" >> "$p/result"
  done
}

for delta in never auto; do
  for size in "${BENCH_SMALL:-6000}" "${BENCH_LARGE:-60000}"; do
    bench_project "$DIR/p$size-$KIND" "$size" "$delta"
    cp "$DIR/p$size-$KIND/result" "$DIR/result-$size-$KIND-$delta"
  done
  s=$(awk '/^total/ {print $2}' "$DIR/result-${BENCH_SMALL:-6000}-$KIND-$delta")
  l=$(awk '/^total/ {print $2}' "$DIR/result-${BENCH_LARGE:-60000}-$KIND-$delta")
  echo "delta=$delta kind=$KIND: ${BENCH_SMALL:-6000} files ${s}s, ${BENCH_LARGE:-60000} files ${l}s, ratio $(awk -v a="$l" -v b="$s" 'BEGIN {printf "%.2fx", a/b}')"
  echo "  median per phase (small / large):"
  join <(grep ^phase "$DIR/result-${BENCH_SMALL:-6000}-$KIND-$delta" | cut -d' ' -f2-) \
       <(grep ^phase "$DIR/result-${BENCH_LARGE:-60000}-$KIND-$delta" | cut -d' ' -f2-) |
    awk '{printf "    %-12s %8.3fs %8.3fs\n", $1, $2, $3}'
done
