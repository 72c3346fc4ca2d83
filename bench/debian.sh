#!/usr/bin/env bash
# Benchmark on a real distribution: a Debian bookworm minbase component, cold and after one
# small package is added to it, `ostree-build build` against the seed's recipe done by hand
# (debootstrap, `ostree commit`, `pull-local`, `static-delta generate`). See bench/README.md.
#
#   bench/debian.sh                       # 3 runs of each step, medians and ratios
#   BENCH_RUNS=1 BENCH_ADD=vim-tiny bench/debian.sh
#   BENCH_ADD=linux-image-amd64 bench/debian.sh   # the kernel case (minutes per run)
#
# Environment: BENCH_DIR (default /tmp/ostree-build-bench-debian), BENCH_RUNS (default 3),
# BENCH_MIRROR (default http://deb.debian.org/debian), BENCH_SUITE (default bookworm),
# BENCH_ADD (the packages added, comma-separated, default less), OSTREE_BUILD (binary;
# default: build target/release/ostree-build). Needs root, debootstrap, ostree, network.
# Both sides share one warm package cache, so the times are not download times.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/ostree-build-bench-debian}
BENCH_RUNS=${BENCH_RUNS:-3}
MIRROR=${BENCH_MIRROR:-http://deb.debian.org/debian}
SUITE=${BENCH_SUITE:-bookworm}
ADD=${BENCH_ADD:-less}
PREFIX=debos/x86_64

die() { echo "bench: error: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

[[ "$BENCH_RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer (got '$BENCH_RUNS')"
[[ "$ADD" =~ ^[a-z0-9][a-z0-9+.,-]*$ ]] || die "BENCH_ADD must be package names separated by commas (got '$ADD')"
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap needs it)"
for c in debootstrap ostree; do
  command -v "$c" >/dev/null || die "'$c' not found (Debian: apt-get install debootstrap ostree)"
done
case "$BENCH_DIR" in /|"") die "refusing BENCH_DIR='$BENCH_DIR'";; esac
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(realpath "$BENCH_DIR")
CACHE=$BENCH_DIR/debs          # the recipe's debootstrap --cache-dir
RECIPE=$BENCH_DIR/recipe
OBUILD=$BENCH_DIR/ostree-build
LOGS=$BENCH_DIR/logs
RESULTS=$BENCH_DIR/results.tsv
mkdir -p "$CACHE" "$LOGS"
: >"$RESULTS"

if [ -z "${OSTREE_BUILD:-}" ]; then
  note "building ostree-build (cargo build --release -p ostree-build)"
  (cd "$ROOT" && cargo build --release -p ostree-build) || die "cargo build failed"
  OSTREE_BUILD=$ROOT/target/release/ostree-build
fi
[ -x "$OSTREE_BUILD" ] || die "OSTREE_BUILD=$OSTREE_BUILD is not an executable"
OSTREE_BUILD=$(realpath "$OSTREE_BUILD")   # the runs change directory

unmount_below() {
  awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r mp; do umount -l "$mp" 2>/dev/null || true; done
}
trap 'unmount_below "$BENCH_DIR"' EXIT

secs_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
# timed NAME RUN LOG CMD...: run CMD in the current directory, record its seconds.
timed() {
  local name=$1 run=$2 log=$3 t0 secs
  shift 3
  sync
  t0=$EPOCHREALTIME
  "$@" >"$log" 2>&1 || { tail -n 30 "$log" >&2; die "$name failed (run $run): see $log"; }
  secs=$(secs_since "$t0")
  printf '%s\t%s\t%s\n' "$name" "$run" "$secs" >>"$RESULTS"
  printf '  run %d  %-22s %8.2f s\n' "$run" "$name" "$secs"
}

# ------------------------------------------------------------- the recipe, by hand
recipe() { # recipe INCLUDE DELTA: debootstrap, commit, pull-local (and a static delta)
  local include=$1 delta=$2
  unmount_below "$RECIPE/rootfs"
  rm -rf "$RECIPE/rootfs"
  debootstrap --variant=minbase ${include:+--include="$include"} --cache-dir="$CACHE" \
    "$SUITE" "$RECIPE/rootfs" "$MIRROR"
  unmount_below "$RECIPE/rootfs"
  rm -rf "$RECIPE/rootfs/dev/"* "$RECIPE/rootfs/proc/"* "$RECIPE/rootfs/sys/"*
  ostree --repo="$RECIPE/build-repo" commit -b "$PREFIX/base" --tree=dir="$RECIPE/rootfs"
  ostree --repo="$RECIPE/repo" pull-local "$RECIPE/build-repo" "$PREFIX/base"
  if [ "$delta" = yes ]; then
    ostree --repo="$RECIPE/repo" static-delta generate "$PREFIX/base"
  fi
}
recipe_init() {
  rm -rf "$RECIPE"
  mkdir -p "$RECIPE"
  ostree --repo="$RECIPE/build-repo" init --mode=bare-user
  ostree --repo="$RECIPE/repo" init --mode=archive
}

# ------------------------------------------------------------- ostree-build
manifest() { # manifest INCLUDE
  local list=""
  local IFS=,
  for p in $1; do list+="${list:+, }\"$p\""; done
  cat >"$OBUILD/ostree-build.toml" <<EOF
[os]
name = "debos"
arch = "x86_64"

[component.base]
backend = "debootstrap"
suite = "$SUITE"
variant = "minbase"
mirror = "$MIRROR"
include = [$list]

[image.min]
components = ["base"]
EOF
}
obuild() { "$OSTREE_BUILD" build; }

# ------------------------------------------------------------- runs
note "warming the package caches (not timed)"
recipe_init
(recipe "$ADD" no) >"$LOGS/warm-recipe.log" 2>&1 || die "warm-up debootstrap failed: see $LOGS/warm-recipe.log"
mkdir -p "$OBUILD"
manifest "$ADD"
(cd "$OBUILD" && obuild) >"$LOGS/warm-ostree-build.log" 2>&1 ||
  die "warm-up build failed: see $LOGS/warm-ostree-build.log"

for run in $(seq 1 "$BENCH_RUNS"); do
  recipe_init
  cd "$RECIPE"
  timed recipe-cold "$run" "$LOGS/recipe-cold-$run.log" recipe "" no
  timed recipe-add "$run" "$LOGS/recipe-add-$run.log" recipe "$ADD" yes
  # A fresh project, keeping the package cache (.ostree-build/cache) warm.
  rm -rf "$OBUILD/build/repo" "$OBUILD/build/cache-repo"
  cd "$OBUILD"
  manifest ""
  timed ostree-build-cold "$run" "$LOGS/ostree-build-cold-$run.log" obuild
  manifest "$ADD"
  timed ostree-build-add "$run" "$LOGS/ostree-build-add-$run.log" obuild
  grep -q "extending the previous build" "$LOGS/ostree-build-add-$run.log" ||
    note "run $run: the add did not extend the previous build (see $LOGS/ostree-build-add-$run.log)"
done

median() { awk -F'\t' -v n="$1" '$1 == n { print $3 }' "$RESULTS" | sort -g |
  awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
rc=$(median recipe-cold); ra=$(median recipe-add)
oc=$(median ostree-build-cold); oa=$(median ostree-build-add)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo
echo "medians of $BENCH_RUNS (adding: $ADD)"
printf '  %-34s %8s s\n' "recipe: cold minbase" "$rc" "recipe: re-bootstrap with it" "$ra" \
  "ostree-build: cold minbase" "$oc" "ostree-build: add it" "$oa"
printf '  add vs its cold build:     %s (goal <= 0.15)\n' "$(ratio "$oa" "$oc")"
printf '  add vs the recipe'"'"'s add:   %s\n' "$(ratio "$oa" "$ra")"
