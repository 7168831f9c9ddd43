//! criterion benchmarks: serial and parallel execution side by side, for each gigagas
//! workload and for the shared mainnet blocks of at least 50 transactions.
//!
//! `cargo bench -p pevm-bench --bench gigagas` (jemalloc on by default; add
//! `--no-default-features` for the system allocator).
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::{num::NonZeroUsize, thread};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use pevm_bench::{
    data,
    fixture::{block_dirs, Fixture},
    gigagas,
};
use pevm_vm::{execute_block, execute_block_serial, Block, InMemoryProvider};

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Serial, and parallel on every core, of one block.
fn bench_block(
    c: &mut Criterion,
    group: &str,
    name: &str,
    block: &Block,
    provider: &InMemoryProvider,
) {
    let threads = thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
    let mut group = c.benchmark_group(group);
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("serial", name), |b| {
        b.iter(|| execute_block_serial(provider, block).expect("block executes"))
    });
    group.bench_function(BenchmarkId::new(format!("parallel-{threads}"), name), |b| {
        b.iter(|| execute_block(provider, block, threads).expect("block executes"))
    });
    group.finish();
}

fn gigagas_workloads(c: &mut Criterion) {
    let contracts = data::data_dir().join("contracts");
    for kind in [
        "raw",
        "raw-same-recipient",
        "erc20",
        "uniswap",
        "hot30",
        "chain",
    ] {
        match gigagas::workload(kind, &contracts, 1) {
            Ok(w) => bench_block(c, "gigagas", kind, &w.block, &w.provider),
            Err(e) => eprintln!("skipping gigagas {kind}: {e}"),
        }
    }
}

fn mainnet_blocks(c: &mut Criterion) {
    let Ok(dirs) = block_dirs(&data::mainnet_dir()) else {
        eprintln!(
            "skipping mainnet: no data at {}",
            data::mainnet_dir().display()
        );
        return;
    };
    for dir in dirs {
        match Fixture::load(&dir) {
            Ok(f) if f.block.txs.len() >= 50 => {
                bench_block(c, "mainnet", &f.number().to_string(), &f.block, &f.provider)
            }
            Ok(_) => {}
            Err(e) => eprintln!("skipping {}: {e}", dir.display()),
        }
    }
}

criterion_group!(benches, gigagas_workloads, mainnet_blocks);
criterion_main!(benches);
