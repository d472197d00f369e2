#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/) with the stable toolchain and runs each for a bounded time.
#
# No nightly and no cargo-fuzz: libfuzzer-sys compiles libFuzzer with the system C++ compiler,
# and SanitizerCoverage comes from stable codegen flags (the ones cargo-fuzz passes). The build
# uses `--target <host>` so that RUSTFLAGS instrument the targets but not build scripts or
# proc-macros. A crash fails the script; its input is written to fuzz/artifacts/<target>/.
#
#   FUZZ_SECONDS   upper bound in seconds per target (default 60)
#   FUZZ_RUNS      inputs per target (default: a per-target count that takes about 20 s here;
#                  0 = unbounded, then FUZZ_SECONDS decides)
#   FUZZ_SEED      libFuzzer's seed (default 1): with a fixed seed and a run count, a run is
#                  reproducible, so CI fails only on what a local run of the same commit finds;
#                  FUZZ_SEED=0 lets libFuzzer pick one (exploration, as `-seed` is printed)
#   FUZZ_TARGETS   which targets (default: classify_url batch_body fetchxml json_rewrite)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

seconds="${FUZZ_SECONDS:-60}"
seed="${FUZZ_SEED:-1}"
targets="${FUZZ_TARGETS:-classify_url batch_body fetchxml json_rewrite}"
host="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 --cfg fuzzing -Cdebug-assertions -Coverflow-checks"

echo "== building the fuzz targets (stable $(rustc --version | cut -d' ' -f2), --target $host)"
(cd fuzz && cargo build --locked --quiet --target "$host" --bins)

for target in $targets; do
  case "$target" in
    classify_url) dict=odata.dict; max_len=4096; runs=100000 ;;
    batch_body) dict=batch.dict; max_len=8192; runs=20000 ;;
    fetchxml) dict=fetchxml.dict; max_len=4096; runs=400000 ;;
    json_rewrite) dict=json.dict; max_len=4096; runs=30000 ;;
    *) echo "unknown fuzz target $target" >&2; exit 2 ;;
  esac
  # New inputs go to a scratch folder; the committed seeds are read from fuzz/corpus.
  scratch="$(mktemp -d)"
  mkdir -p "fuzz/artifacts/$target"
  runs="${FUZZ_RUNS:-$runs}"
  [ "$runs" = 0 ] && runs=-1
  echo "== fuzzing $target: seed $seed, $runs inputs, at most ${seconds}s"
  log="$scratch.log"
  status=0
  "$CARGO_TARGET_DIR/$host/debug/$target" \
    -seed="$seed" -runs="$runs" -max_total_time="$seconds" -timeout=10 -max_len="$max_len" \
    -dict="fuzz/dict/$dict" -artifact_prefix="fuzz/artifacts/$target/" \
    -print_final_stats=1 "$scratch" "fuzz/corpus/$target" > "$log" 2>&1 || status=$?
  grep -E '^(Done|stat::number_of_executed_units|==[0-9]+==|SUMMARY)|panicked|assertion|artifact' "$log" || true
  if [ "$status" != 0 ]; then
    grep -A8 'panicked' "$log" | head -20 >&2 || true
  fi
  rm -f "$log"
  rm -rf "$scratch"
  if [ "$status" != 0 ]; then
    echo "fuzz target $target failed (exit $status); the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
echo "== fuzzing passed"
