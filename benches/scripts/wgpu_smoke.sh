#!/usr/bin/env bash
# `hale train --device wgpu` end to end: CartPole-v1 and Scaling-v0 with the MLP, and
# Scaling-v0 with the GNN, each for a few iterations, then each run's greedy
# evaluation. Fails if a run fails or writes no metrics.
#
#     bash benches/scripts/wgpu_smoke.sh [OUT_DIR]
#
# Builds hale with `--features hale-experiments/wgpu` into its own target folder
# ($HALE_WGPU_TARGET, default ~/.cache/hale/target-wgpu: the wgpu feature changes
# burn's features, and sharing the CPU build's folder would rebuild both in turn;
# a cold build takes about 25 min on two cores). Without a GPU, Mesa's lavapipe
# (`apt-get install mesa-vulkan-drivers`) runs the same Vulkan path on the CPU:
# slowly, but every kernel is compiled and run.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$(mktemp -d)}
target=${HALE_WGPU_TARGET:-$HOME/.cache/hale/target-wgpu}
# The Vulkan loader and Mesa want a runtime folder; a headless machine may have none.
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}

CARGO_TARGET_DIR=$target cargo build --release --quiet -p hale-experiments --bin hale \
  --features hale-experiments/wgpu --manifest-path "$root/Cargo.toml"
hale=$target/release/hale

mkdir -p "$out"
# One config per case, cut to a few iterations.
cut_to() { sed "s/^total_timesteps = .*/total_timesteps = $2/" "$root/experiments/configs/$1"; }
cut_to cartpole-ppo.toml 2048 > "$out/cartpole.toml"
cut_to scaling-ppo.toml 2048 > "$out/scaling.toml"
cut_to scaling-ppo-gnn.toml 1024 > "$out/scaling-gnn.toml"

for case in cartpole scaling scaling-gnn; do
  start=$(date +%s)
  "$hale" train "$out/$case.toml" --device wgpu --out "$out/runs-$case" > "$out/$case.log" 2>&1 || {
    echo "wgpu smoke: $case failed; its log:" >&2
    tail -20 "$out/$case.log" >&2
    exit 1
  }
  metrics=$(ls "$out"/runs-"$case"/*/metrics.csv)
  rows=$(($(wc -l < "$metrics") - 1))
  [ "$rows" -ge 1 ] || { echo "wgpu smoke: $case wrote no metrics" >&2; exit 1; }
  sps=$(tail -1 "$metrics" | cut -d, -f6)
  echo "$case: $rows iteration(s) on wgpu, $(($(date +%s) - start)) s with evaluation, last charts/SPS $sps"
done
echo "runs in $out"
