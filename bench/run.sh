#!/usr/bin/env bash
# Benchmark: the OSTree manual's "Writing a buildsystem" recipe (ostree CLI) against
# `ostree-build build`, on the same generated tarballs. See bench/README.md.
#
#   bench/run.sh                              # full run: ~300 MB corpus, 3 runs per scenario
#   BENCH_SCALE=0.1 BENCH_RUNS=1 bench/run.sh # quick run
#
# Environment: BENCH_DIR (scratch, default /tmp/ostree-build-bench), BENCH_SCALE (default 1),
# BENCH_RUNS (default 3), BENCH_SEED (default 20240601), BENCH_CHANGED (component changed by
# the rebuild scenario, default comp07), OSTREE_BUILD (binary; default: build
# target/release/ostree-build with cargo), BENCH_IMPORT (0: skip the one-tarball import
# scenario, bench/import.sh), BENCH_IMPORT_SCALE (its corpus scale, default 0.5),
# BENCH_DEBIAN (1: also the Debian scenario, bench/debian.sh).
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/ostree-build-bench}
BENCH_SCALE=${BENCH_SCALE:-1}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_SEED=${BENCH_SEED:-20240601}
CHANGED=${BENCH_CHANGED:-comp07}
PREFIX=exampleos/x86_64
COMPS=()
for i in $(seq 0 29); do COMPS+=("$(printf 'comp%02d' "$i")"); done

die() { echo "bench: error: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

# ------------------------------------------------------------------ preflight
[[ "$BENCH_RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer (got '$BENCH_RUNS')"
[[ "$BENCH_SCALE" =~ ^[0-9]*\.?[0-9]+$ ]] || die "BENCH_SCALE must be a positive number (got '$BENCH_SCALE')"
[[ " ${COMPS[*]} " == *" $CHANGED "* ]] || die "BENCH_CHANGED must be one of comp00..comp29"
[ "$(id -u)" -eq 0 ] || die "run as root (ldconfig -r chroots; rofiles-fuse needs FUSE)"
command -v /usr/bin/time >/dev/null || die "/usr/bin/time not found: apt-get install time"
for c in ostree rofiles-fuse fusermount3 ldconfig python3; do
  command -v "$c" >/dev/null || die "'$c' not found (Debian: apt-get install ostree fuse3 python3)"
done
[ -e /dev/fuse ] || die "/dev/fuse is missing (FUSE is needed by rofiles-fuse)"
case "$BENCH_DIR" in /|"") die "refusing BENCH_DIR='$BENCH_DIR'";; esac
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(realpath "$BENCH_DIR")   # /proc/mounts shows resolved paths

CORPUS=$BENCH_DIR/corpus
TARS=$CORPUS/tars
RECIPE=$BENCH_DIR/recipe
OBUILD=$BENCH_DIR/ostree-build
LOGS=$BENCH_DIR/logs
RESULTS=$BENCH_DIR/results.tsv
WARNINGS=$BENCH_DIR/warnings.txt
LOG=/dev/null
RSS_FILE=/dev/null

# Every FUSE mount under BENCH_DIR (ours: the recipe's mnt, ostree-build's trigger mount),
# deepest first.
cleanup_mounts() {
  local mps=() mp
  mapfile -t mps < <(awk -v d="$BENCH_DIR/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r)
  for mp in "${mps[@]}"; do
    fusermount3 -u -z "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || note "could not unmount $mp"
  done
}
on_exit() {
  local rc=$?
  cleanup_mounts
  if [ "$rc" -ne 0 ] && [ -s "$LOG" ] && [ "$LOG" != /dev/null ]; then
    echo "---- last lines of $LOG ----" >&2
    tail -n 25 "$LOG" >&2
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM
cleanup_mounts   # stale mounts of an interrupted earlier run

if [ -z "${OSTREE_BUILD:-}" ]; then
  note "building ostree-build (cargo build --release -p ostree-build)"
  command -v cargo >/dev/null || die "cargo not found; install Rust or set OSTREE_BUILD"
  (cd "$ROOT" && cargo build --release -p ostree-build) ||
    die "cargo build failed (the tree may be mid-edit: retry, or set OSTREE_BUILD=$ROOT/target/debug/ostree-build)"
  OSTREE_BUILD=$ROOT/target/release/ostree-build
fi
[ -x "$OSTREE_BUILD" ] || { [ -x "$ROOT/$OSTREE_BUILD" ] && OSTREE_BUILD=$ROOT/$OSTREE_BUILD; }
[ -x "$OSTREE_BUILD" ] || die "OSTREE_BUILD=$OSTREE_BUILD is not an executable"
OSTREE_BUILD=$(realpath "$OSTREE_BUILD")

# ------------------------------------------------------------------ helpers
fail() {
  echo "bench: error: $*" >&2
  exit 1
}
secs_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }
max_rss() { awk '$1 ~ /^[0-9]+$/ && $1 > m { m = $1 } END { print m + 0 }' "$1"; }
warn() { echo "bench: WARNING: $*" >&2; echo "$*" >>"$WARNINGS"; }
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }

# An ostree command of the recipe: output to the log; "maxRSS-KiB seconds command" appended
# to RSS_FILE.
o() {
  /usr/bin/time -f '%M %e %C' -a -o "$RSS_FILE" "$@" >>"$LOG" 2>&1 || fail "recipe step failed: $*"
}
# Any other recipe step.
step() {
  "$@" >>"$LOG" 2>&1 || fail "recipe step failed: $*"
}

recipe_import() { # the per-component commit of the manual
  o ostree --repo=build-repo commit -b "$PREFIX/$1" --tree=tar="$TARS/$1.tar"
}

recipe_compose() { # checkout union, trigger, commit, publish; $1 = yes: generate a delta
  local c
  step rm -rf exampleos-build
  for c in "${COMPS[@]}"; do
    o ostree --repo=build-repo checkout -U --union "$PREFIX/$c" exampleos-build
  done
  step mkdir -p mnt
  step rofiles-fuse exampleos-build mnt
  step ldconfig -r mnt
  step fusermount3 -u mnt
  o ostree --repo=build-repo commit -b "$PREFIX/standard" --link-checkout-speedup exampleos-build
  o ostree --repo=repo pull-local build-repo "$PREFIX/standard"
  if [ "$1" = yes ]; then
    o ostree --repo=repo static-delta generate "$PREFIX/standard"
  fi
}

# run_recipe SCENARIO RUN: one timed run of the recipe in $RECIPE.
run_recipe() {
  local scenario=$1 run=$2 t0 secs c
  LOG=$LOGS/$scenario-recipe-$run.log
  RSS_FILE=$LOGS/$scenario-recipe-$run.rss
  : >"$LOG"; : >"$RSS_FILE"
  if [ "$scenario" = cold ]; then
    rm -rf "$RECIPE"
    mkdir -p "$RECIPE"
  fi
  cd "$RECIPE"
  sync
  t0=$EPOCHREALTIME
  case "$scenario" in
    cold)
      o ostree --repo=build-repo init --mode=bare-user
      o ostree --repo=repo init --mode=archive
      for c in "${COMPS[@]}"; do recipe_import "$c"; done
      recipe_compose no
      ;;
    rebuild)
      recipe_import "$CHANGED"
      recipe_compose yes
      ;;
    noop)
      recipe_compose yes
      ;;
  esac
  secs=$(secs_since "$t0")
  cd "$BENCH_DIR"
  record "$scenario" recipe "$run" "$secs" "$(max_rss "$RSS_FILE")"
  printf '  %-8s run %d  recipe        %8.2f s  (heaviest ostree process %d MB)\n' \
    "$scenario" "$run" "$secs" $(( $(max_rss "$RSS_FILE") / 1024 ))
}

write_manifest() {
  local c list=""
  for c in "${COMPS[@]}"; do list+="${list:+, }\"$c\""; done
  {
    printf '[os]\nname = "exampleos"\narch = "x86_64"\n\n'
    printf '[repos]\nbuild = "build/cache-repo"\nexport = "build/repo"\n\n'
    for c in "${COMPS[@]}"; do
      printf '[component.%s]\nbackend = "tarball"\npath = "%s"\n\n' "$c" "$TARS/$c.tar"
    done
    printf '[image.standard]\ncomponents = [%s]\n' "$list"
    printf '%s\n' 'triggers = [{ name = "ldconfig" }]'
  } >"$OBUILD/ostree-build.toml"
}

# run_obuild SCENARIO RUN: one timed `ostree-build build` in $OBUILD.
run_obuild() {
  local scenario=$1 run=$2 t0 secs rss
  LOG=$LOGS/$scenario-ostree-build-$run.log
  RSS_FILE=$LOGS/$scenario-ostree-build-$run.rss
  : >"$LOG"; : >"$RSS_FILE"
  if [ "$scenario" = cold ]; then
    rm -rf "$OBUILD"
    mkdir -p "$OBUILD"
    write_manifest
  fi
  cd "$OBUILD"
  sync
  t0=$EPOCHREALTIME
  if ! /usr/bin/time -f %M -o "$RSS_FILE" "$OSTREE_BUILD" build >"$LOG" 2>&1; then
    echo "---- ostree-build build failed ($scenario, run $run); its output: ----" >&2
    cat "$LOG" >&2
    LOG=/dev/null
    exit 1
  fi
  secs=$(secs_since "$t0")
  cd "$BENCH_DIR"
  rss=$(max_rss "$RSS_FILE")
  record "$scenario" ostree-build "$run" "$secs" "$rss"
  printf '  %-8s run %d  ostree-build  %8.2f s  (peak RSS %d MB)\n' "$scenario" "$run" "$secs" $((rss / 1024))
  if grep -qiE 'warning|error' "$LOG"; then
    warn "ostree-build printed warnings/errors in $scenario run $run (see $LOG): $(grep -iE -m1 'warning|error' "$LOG")"
  fi
}

rev() { ostree --repo="$1" rev-parse "$PREFIX/standard" 2>/dev/null || echo none; }

# The mutated file must show up in both sides' new image.
check_change() { # $1 = variant
  local target side repo
  target=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mutation_targets"][sys.argv[2]])' \
    "$CORPUS/corpus.json" "$CHANGED")
  for side in recipe:"$RECIPE/build-repo" ostree-build:"$OBUILD/build/cache-repo" \
              recipe-export:"$RECIPE/repo" ostree-build-export:"$OBUILD/build/repo"; do
    repo=${side#*:}
    if ! ostree --repo="$repo" cat "$PREFIX/standard" "/$target" 2>/dev/null | tail -c 4096 |
         grep -q "bench change $1\$"; then
      warn "${side%%:*}: /$target in $PREFIX/standard does not carry change $1 after the rebuild"
    fi
  done
}

ls_tree() { # normalised `ostree ls -R` of the image; ld.so.cache size ignored
  ostree --repo="$1" ls -R "$PREFIX/standard" |
    awk '{ if ($5 == "/etc/ld.so.cache") $4 = "*"; $1 = $1; print }' | sort
}

verify_trees() {
  local a=$LOGS/ls-recipe.txt b=$LOGS/ls-ostree-build.txt
  ls_tree "$RECIPE/build-repo" >"$a"
  ls_tree "$OBUILD/build/cache-repo" >"$b"
  if cmp -s "$a" "$b"; then
    echo "  trees match: $(wc -l <"$a") entries, same paths, modes, owners, sizes and symlink targets"
    echo match >"$BENCH_DIR/verify.txt"
  else
    warn "final trees differ between the recipe and ostree-build ($(diff "$a" "$b" | grep -c '^[<>]') lines; full diff: diff $a $b)"
    diff -u "$a" "$b" | sed -n '3,30p' >&2 || true
    { echo differ; diff -u "$a" "$b" | sed -n '3,30p'; } >"$BENCH_DIR/verify.txt" || true
  fi
  # Informational: the root dirtree/dirmeta checksums say whether the trees are bit-identical.
  local ra rb
  ra=$(ostree --repo="$RECIPE/build-repo" ls -d -C "$PREFIX/standard" / | awk '{ print $5, $6 }')
  rb=$(ostree --repo="$OBUILD/build/cache-repo" ls -d -C "$PREFIX/standard" / | awk '{ print $5, $6 }')
  if [ "$ra" = "$rb" ]; then
    echo "  root tree checksums identical too: the two trees are bit-for-bit the same"
  else
    echo "  note: root tree checksums differ (content, xattrs or directory metadata differ somewhere)"
  fi
}

# ------------------------------------------------------------------ corpus
mkdir -p "$LOGS"
rm -f "$RESULTS" "$WARNINGS" "$BENCH_DIR/verify.txt" "$LOGS"/*.log "$LOGS"/*.rss
echo "== corpus (seed $BENCH_SEED, scale $BENCH_SCALE) in $CORPUS"
python3 "$HERE/gen.py" generate --out "$CORPUS" --seed "$BENCH_SEED" --scale "$BENCH_SCALE"
for c in "${COMPS[@]}"; do [ -f "$TARS/$c.tar" ] || die "generator did not write $TARS/$c.tar"; done

LIBOSTREE=$(ostree --version | awk -F"'" '/Version:/ { print $2; exit }')
NPROC=$(nproc)
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
OBUILD_VERSION=$("$OSTREE_BUILD" --version 2>/dev/null | head -n 1 || true)
echo "== machine: $NPROC CPUs ($CPU), $(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
echo "== libostree $LIBOSTREE; $OBUILD_VERSION at $OSTREE_BUILD"
LOAD=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$LOAD" -v n="$NPROC" 'BEGIN { exit !(l > n / 2) }'; then
  warn "machine busy at start (load average $LOAD on $NPROC CPUs): timings will be noisy"
fi

# ------------------------------------------------------------------ scenarios
# The two sides alternate which goes first, run to run.
pair() { # scenario run
  if [ $(($2 % 2)) -eq 1 ]; then run_recipe "$1" "$2"; run_obuild "$1" "$2"
  else run_obuild "$1" "$2"; run_recipe "$1" "$2"; fi
}

echo "== cold: fresh repositories, full build ($BENCH_RUNS runs)"
for run in $(seq 1 "$BENCH_RUNS"); do pair cold "$run"; done

echo "== correctness: recipe build-repo vs ostree-build build/cache-repo after the cold run"
verify_trees
[ "$(rev "$OBUILD/build/cache-repo")" = "$(rev "$OBUILD/build/repo")" ] ||
  warn "ostree-build: export ref differs from the build repository's after the cold run"

echo "== rebuild: one file of $CHANGED changed, tarball repacked ($BENCH_RUNS runs)"
for run in $(seq 1 "$BENCH_RUNS"); do
  python3 "$HERE/gen.py" mutate --out "$CORPUS" --seed "$BENCH_SEED" --scale "$BENCH_SCALE" \
    --comp "$CHANGED" --variant "$run" >/dev/null
  before=$(rev "$OBUILD/build/cache-repo")
  pair rebuild "$run"
  [ "$(rev "$OBUILD/build/cache-repo")" != "$before" ] ||
    warn "ostree-build: rebuild run $run did not move $PREFIX/standard"
  check_change "$run"
done

echo "== no-op: nothing changed ($BENCH_RUNS runs)"
for run in $(seq 1 "$BENCH_RUNS"); do
  before=$(rev "$OBUILD/build/cache-repo")
  pair noop "$run"
  [ "$(rev "$OBUILD/build/cache-repo")" = "$before" ] ||
    warn "ostree-build: no-op run $run created a new $PREFIX/standard commit"
done
[ "$(rev "$OBUILD/build/cache-repo")" = "$(rev "$OBUILD/build/repo")" ] ||
  warn "ostree-build: export ref differs from the build repository's at the end"

# Leave the corpus as generated (variant 0) for the next invocation.
python3 "$HERE/gen.py" mutate --out "$CORPUS" --seed "$BENCH_SEED" --scale "$BENCH_SCALE" \
  --comp "$CHANGED" --variant 0 >/dev/null

# ------------------------------------------------------------------ import
# One large tarball against `ostree commit --tree=tar=` (bench/import.sh; its own scratch
# directory and corpus). BENCH_IMPORT=0 skips it.
if [ "${BENCH_IMPORT:-1}" != 0 ]; then
  OSTREE_BUILD=$OSTREE_BUILD BENCH_RUNS=$BENCH_RUNS BENCH_SEED=$BENCH_SEED BENCH_SCALE=${BENCH_IMPORT_SCALE:-0.5} \
    BENCH_DIR=$BENCH_DIR/import "$HERE/import.sh" | tee "$BENCH_DIR/import.txt"
fi

# A real distribution: Debian minbase, cold and with a package added (bench/debian.sh;
# minutes, needs the network). BENCH_DEBIAN=1 runs it.
if [ "${BENCH_DEBIAN:-0}" = 1 ]; then
  OSTREE_BUILD=$OSTREE_BUILD BENCH_RUNS=$BENCH_RUNS BENCH_DIR=$BENCH_DIR/debian \
    "$HERE/debian.sh" | tee "$BENCH_DIR/debian.txt"
fi

# ------------------------------------------------------------------ report
LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
export BENCH_DIR BENCH_SCALE BENCH_RUNS BENCH_SEED CHANGED LIBOSTREE NPROC CPU OBUILD_VERSION OSTREE_BUILD LOAD LOAD_END
python3 - "$RESULTS" "$CORPUS/corpus.json" "$WARNINGS" "$BENCH_DIR/verify.txt" "$BENCH_DIR/results.json" <<'EOF'
import json, os, platform, statistics, sys

results, corpus, warnings, verify, out = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(results) if l.strip()]
targets = {"cold": 0.5, "rebuild": 0.1, "noop": 0.02}
labels = {"cold": "cold", "rebuild": "rebuild (1 changed)", "noop": "no-op"}
scen = []
for name in ["cold", "rebuild", "noop"]:
    d = {"name": name, "target_ratio": targets[name]}
    for side, key in [("recipe", "recipe"), ("ostree-build", "ostree_build")]:
        secs = [float(r[3]) for r in rows if r[0] == name and r[1] == side]
        rss = [int(r[4]) for r in rows if r[0] == name and r[1] == side]
        d[key] = {"seconds": secs, "median_seconds": round(statistics.median(secs), 3) if secs else None,
                  "peak_rss_mb": round(max(rss) / 1024, 1) if rss else None}
    r, o = d["recipe"]["median_seconds"], d["ostree_build"]["median_seconds"]
    d["ratio"] = round(o / r, 4) if r and o is not None else None
    d["meets_target"] = d["ratio"] is not None and d["ratio"] <= targets[name]
    scen.append(d)

hdr = ["scenario", "recipe median s", "ostree-build median s", "ratio", "target",
       "ostree-build peak RSS MB", "recipe peak RSS MB"]
table = []
for d in scen:
    table.append([labels[d["name"]], "%.2f" % d["recipe"]["median_seconds"],
                  "%.2f" % d["ostree_build"]["median_seconds"], "%.3fx" % d["ratio"],
                  "<=%gx %s" % (d["target_ratio"], "ok" if d["meets_target"] else "MISSED"),
                  "%.0f" % d["ostree_build"]["peak_rss_mb"], "%.0f" % d["recipe"]["peak_rss_mb"]])
w = [max(len(str(x)) for x in col) for col in zip(hdr, *table)]
line = lambda cells: "| " + " | ".join(str(c).ljust(n) for c, n in zip(cells, w)) + " |"
c = json.load(open(corpus))
s = c["stats"]
print()
print("machine: %s CPUs (%s), kernel %s; libostree %s; %s; load average %s at start, %s at end" % (
    os.environ["NPROC"], os.environ["CPU"], platform.release(), os.environ["LIBOSTREE"],
    os.environ["OBUILD_VERSION"], os.environ["LOAD"], os.environ["LOAD_END"]))
print("corpus: %d components, %d files (%d symlinks), %.1f MB (%.0f%% random), median file %d B, "
      "largest %.1f MB; scale %s, seed %s; %s runs per scenario, medians shown" % (
    s["components"], s["entries"], s["symlinks"], s["bytes"] / 1e6, 100 * s["random_fraction"],
    s["median_size"], s["max_size"] / 1e6, os.environ["BENCH_SCALE"], os.environ["BENCH_SEED"],
    os.environ["BENCH_RUNS"]))
print(line(hdr))
print("|" + "|".join("-" * (n + 2) for n in w) + "|")
for t in table:
    print(line(t))
warns = [l.rstrip("\n") for l in open(warnings)] if os.path.exists(warnings) else []
ver = open(verify).read() if os.path.exists(verify) else ""
if warns:
    print("\nwarnings:")
    for l in warns:
        print("  - " + l)
doc = {
    "machine": {"nproc": int(os.environ["NPROC"]), "cpu": os.environ["CPU"], "kernel": platform.release(),
                "libostree": os.environ["LIBOSTREE"], "ostree_build": os.environ["OBUILD_VERSION"],
                "ostree_build_binary": os.environ["OSTREE_BUILD"],
                "load_average_start": float(os.environ["LOAD"]), "load_average_end": float(os.environ["LOAD_END"])},
    "config": {"bench_dir": os.environ["BENCH_DIR"], "scale": float(os.environ["BENCH_SCALE"]),
               "runs": int(os.environ["BENCH_RUNS"]), "seed": int(os.environ["BENCH_SEED"]),
               "changed_component": os.environ["CHANGED"]},
    "corpus": s,
    "scenarios": scen,
    "trees_match_after_cold": ver.startswith("match"),
    "tree_diff": "" if ver.startswith("match") else ver,
    "warnings": warns,
}
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
print("\nresults: %s" % out)
EOF
