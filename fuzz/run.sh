#!/usr/bin/env bash
# Runs hale's fuzz targets, each until it has done RUNS executions or SECONDS seconds
# have passed, whichever comes first (default: 10 M or 30 min, as issue 15 asks).
# Corpora start from the repository's own files and ../shared's traces; crashes land
# in fuzz/artifacts/TARGET/. Needs the nightly toolchain and cargo-fuzz:
#
#   cargo install cargo-fuzz
#   fuzz/run.sh [--runs N] [--seconds S] [--lanes L] [TARGET ...]
#
# Prints one line per target: executions, seconds, crashes. Builds into
# $HALE_FUZZ_TARGET_DIR (default ~/.cache/hale/fuzz-target), apart from the main build:
# not $CARGO_TARGET_DIR, which hale's own builds export (a coverage build there would
# rebuild everything, cold, beside the main build's artifacts).
set -euo pipefail
cd "$(dirname "$0")"
runs=10000000 seconds=1800 lanes=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --lanes) lanes=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
export CARGO_TARGET_DIR=${HALE_FUZZ_TARGET_DIR:-$HOME/.cache/hale/fuzz-target}
shared=../../shared
repo=..

# Seeds: a target's corpus starts from the files of the kind it reads.
seed() {
  local target=$1 dir=corpus/$1
  mkdir -p "$dir"
  local files=()
  case "$target" in
    scenario) files=("$repo"/sim/scenarios/*.toml) ;;
    experiment_config) files=("$repo"/experiments/configs/*.toml) ;;
    adapter_config) files=("$repo"/adapter/configs/*.toml) ;;
    prometheus) files=(seeds/prometheus/*) ;;
    bundle) files=(seeds/bundle/*) ;;
    trace_azure_invocations) files=("$repo"/datasets/fixtures/azure_invocations.csv) ;;
    trace_azure_durations) files=("$repo"/datasets/fixtures/azure_durations.csv) ;;
    trace_counts) files=("$repo"/datasets/fixtures/counts.txt) ;;
    trace_bitbrains) files=("$repo"/datasets/fixtures/bitbrains/*) ;;
    trace_lanl) files=("$repo"/datasets/fixtures/lanl.csv) ;;
    trace_series_csv) files=("$repo"/datasets/fixtures/series.csv) ;;
    trace_series_parquet) files=($(find "$shared"/traces "$repo"/datasets -name '*.parquet' -size -256k 2>/dev/null | head -5)) ;;
    trace_synthetic) files=("$repo"/datasets/fixtures/synthetic.toml) ;;
  esac
  for f in "${files[@]}"; do
    [ -f "$f" ] && head -c 65536 "$f" > "$dir/seed-$(basename "$f")"
  done
  return 0
}

cargo +nightly fuzz build -s none >&2
bin=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release
run_one() {
  local target=$1 log=logs/$1.log
  seed "$target"
  mkdir -p logs "artifacts/$target"
  local start=$SECONDS
  # -s none: no sanitizer (safe Rust; panics are what is looked for); -timeout: an
  # input that takes over 10 s is reported as a hang.
  set +e
  # The binaries run directly (not through `cargo fuzz run`), so that sources edited
  # meanwhile do not rebuild in the middle of a campaign.
  "$bin/$target" "corpus/$target" -artifact_prefix="artifacts/$target/" \
    -runs="$runs" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
    -max_len=65536 -print_final_stats=1 > "$log" 2>&1
  local rc=$?
  set -e
  local execs
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  local crashes
  crashes=$(find "artifacts/$target" -type f | wc -l)
  printf '%-26s %12s execs %6d s  exit %d  %d crash/timeout files\n' \
    "$target" "${execs:-?}" $((SECONDS - start)) "$rc" "$crashes"
}
export -f run_one seed
export runs seconds shared repo bin
printf '%s\n' "${targets[@]}" | xargs -P "$lanes" -I{} bash -c 'run_one {}'
