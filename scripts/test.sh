#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit/property/integration tests, loom models of the
# scheduler (crates/pevm-core/tests/loom.rs), the release replay of every shared mainnet
# block (serial == header == alloy-evm's executor, parallel == serial at 1, 2, 4, 8 threads),
# every execution-spec and ethereum/tests blockchain test (serial, parallel and alloy-evm's
# executor agree, every header and post-state matches), and every gigagas workload
# (parallel == serial at 2 and 4 threads).
set -euo pipefail
cd "$(dirname "$0")/.."

# One lock file and one build for every crate, the fuzz crate's library and committed seeds
# included (parallel == serial, the loader never panics).
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --workspace
cargo test --locked --workspace
# Loom models of the scheduler (every interleaving of two workers, preemption bound 3); the
# cfg flag needs a build of its own.
RUSTFLAGS="--cfg loom -C debug-assertions" cargo test --locked -p pevm-core --test loom --release --target-dir target/loom
# The release tools; of the examples, the one run below (`cargo test` builds them all).
cargo build --locked --release -p pevm-bench -p pevm-vm --bins --example embedding
# A range of blocks through alloy-evm's BlockExecutor on the engine over a CacheDB: receipts,
# requests and bundle with reverts identical to alloy-evm's EthBlockExecutor (it fails if not).
target/release/examples/embedding 2
data="${PEVM_DATA:-../shared}"
if [ -d "$data/mainnet" ]; then
  target/release/pevm-bench replay "$data/mainnet" --threads 1,2,4,8 --always-parallel
  # Frontier to Osaka and the blob-parameter forks; only EIP-7610 tests may fail (named so).
  target/release/pevm-bench blockchain-tests "$data/eest/blockchain_tests" --threads 8
  # Amsterdam (devnet): serial, parallel and alloy-evm agree on every test, and every block
  # access list equals the header's; only named revm/alloy-evm draft gaps may fail.
  target/release/pevm-bench blockchain-tests "$data/eest/blockchain_tests_devnet" --threads 8
  target/release/pevm-bench blockchain-tests "$data/ethereum-tests/BlockchainTests" --threads 2
  # Every gigagas workload (ERC-20 and Uniswap bytecode from $data/contracts), planned and on
  # each strategy: `bench` fails when a parallel output differs from serial.
  workloads=raw,raw-same-recipient,erc20,hot10,hot30,hot100,chain,uniswap
  for strategy in "" block-stm transfers; do
    target/release/pevm-bench bench --gigagas "$workloads" --threads 2,4 --iters 1 \
      ${strategy:+--strategy "$strategy"}
  done
elif [ "${CI:-}" = "true" ]; then
  echo "shared data missing: $data/mainnet (set PEVM_DATA)" >&2
  exit 1
else
  echo "SKIPPED: no shared data at $data (set PEVM_DATA): no mainnet replay, blockchain tests or gigagas workloads; replaying the built-in blocks only"
  target/release/pevm-bench replay --threads 1,2,4,8
fi
