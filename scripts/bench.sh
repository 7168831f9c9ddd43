#!/usr/bin/env bash
# The benchmark run behind BENCHMARKS.md: gigagas workloads and the shared mainnet blocks,
# serial and parallel in one process, at the given thread counts (default 1,2).
# Writes JSON lines and plots to bench-results/.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-1,2}"
iters="${ITERS:-5}"
out=bench-results
mkdir -p "$out"
cargo build --release -p pevm-bench
bin=target/release/pevm-bench
"$bin" bench --gigagas raw,raw-same-recipient,erc20,uniswap,hot10,hot30,hot100,chain \
  --threads "$threads" --iters "$iters" --json --plot "$out/gigagas.svg" | tee "$out/gigagas.jsonl"
"$bin" bench "${PEVM_DATA:-../shared}/mainnet" --threads "$threads" --iters "$iters" --json \
  --plot "$out/mainnet.svg" | tee "$out/mainnet.jsonl"
