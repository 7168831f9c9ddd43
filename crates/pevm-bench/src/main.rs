//! `pevm-bench`: replay real and synthetic blocks, serial against parallel.
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]

use std::{
    num::NonZeroUsize,
    path::{Path, PathBuf},
    process::ExitCode,
    thread,
    time::Instant,
};

use clap::{Parser, Subcommand};
use pevm_vm::Strategy;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options (read before `main`; a C string): transparent huge pages for the heap
/// and its metadata, where the kernel lets a process ask for them (`madvise`). A gigagas
/// block allocates tens of MB anew (outputs, read sets, the state diff), and with 4 KiB pages
/// each first touch is a page fault: about 7,000 of them per block, 16 % of a one-thread
/// Block-STM run's profile on `chain`; huge pages take 15 times fewer (see `BENCHMARKS.md`).
#[cfg(feature = "jemalloc")]
#[export_name = "_rjem_malloc_conf"]
#[used]
static MALLOC_CONF: &[u8; 31] = b"thp:always,metadata_thp:always\0";
use pevm_bench::{
    bench, data,
    fixture::block_dirs,
    replay::{self, Row},
    synthetic,
};

#[derive(Parser)]
#[command(version, about = "Replay and benchmark Ethereum blocks with pevm")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Execute blocks and check them against their headers. With no PATH, replays the shared
    /// mainnet folder if present, else a built-in synthetic block.
    Replay {
        /// Block folders, or folders of block folders.
        paths: Vec<PathBuf>,
        /// One JSON object per block per line, then a summary line.
        #[arg(long)]
        json: bool,
        /// Thread counts for parallel runs, comma-separated (default: the machine's cores).
        #[arg(long, value_delimiter = ',')]
        threads: Option<Vec<NonZeroUsize>>,
        /// Run every block on Block-STM with every worker, even where the plan would run it
        /// otherwise (the same as `--strategy block-stm`).
        #[arg(long, conflicts_with = "strategy")]
        always_parallel: bool,
        /// Run every block with this strategy on every worker instead of the plan's choice:
        /// serial, transfers (blocks of plain transfers; others go to Block-STM) or block-stm.
        #[arg(long)]
        strategy: Option<Strategy>,
        /// Recover every transaction's sender from its signature on the workers, and fail a
        /// block whose signer differs from its `from`.
        #[arg(long)]
        verify_senders: bool,
        /// Also build each block's access list (EIP-7928, any fork), check it against the one
        /// revm's `State` builds under alloy-evm's executor, and time the block run with it
        /// (every transaction at once, none twice) against serial.
        #[arg(long)]
        bal: bool,
        /// Read each block's pre-state from its database in this folder (`<block>.redb`, as
        /// `store` writes it) instead of memory for the timed runs.
        #[arg(long)]
        state_db: Option<PathBuf>,
    },

    /// Write each block's pre-state into an on-disk database (`OUT/<block>.redb`, redb), then
    /// time reading every account and slot back: from the freshly opened file, again, and
    /// from memory.
    Store {
        /// Block folders, or folders of block folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The folder the databases go to.
        #[arg(long)]
        out: PathBuf,
        /// Keep a database already there and only time its reads (after dropping the OS's
        /// page cache, reads from the disk itself).
        #[arg(long)]
        reuse: bool,
    },

    /// Replay blockchain tests (ethereum/tests `BlockchainTests`, execution-spec
    /// `blockchain_tests`) serially, in parallel and through alloy-evm's executor, checking
    /// every header, state root and the final state.
    BlockchainTests {
        /// Test files (`.json`, `.json.gz`) or folders of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// One JSON object per test per line, then a summary line.
        #[arg(long)]
        json: bool,
        /// Threads for the parallel runs.
        #[arg(long, default_value = "2")]
        threads: NonZeroUsize,
    },

    /// Time serial and parallel execution of the same blocks in one process, interleaved.
    Bench {
        /// Block folders, or folders of block folders.
        paths: Vec<PathBuf>,
        /// Synthetic gigagas workloads, comma-separated (raw, raw-same-recipient, erc20,
        /// hot10, hot30, hot100, chain).
        #[arg(long, value_delimiter = ',')]
        gigagas: Vec<String>,
        /// Thread counts for parallel runs, comma-separated (default: the machine's cores).
        #[arg(long, value_delimiter = ',')]
        threads: Option<Vec<NonZeroUsize>>,
        /// Timed rounds per block (the median of the rounds' speedups is reported).
        #[arg(long, default_value_t = 5)]
        iters: usize,
        /// One JSON object per block per line.
        #[arg(long)]
        json: bool,
        /// Also draw speedup against bound, and gas per second, into this SVG file.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Run every block on Block-STM with every worker, even where the plan would run it
        /// otherwise (the same as `--strategy block-stm`).
        #[arg(long, conflicts_with = "strategy")]
        always_parallel: bool,
        /// Run every block with this strategy on every worker instead of the plan's choice:
        /// serial, transfers (blocks of plain transfers; others go to Block-STM) or block-stm.
        #[arg(long)]
        strategy: Option<Strategy>,
        /// Also time each block run with the access list its serial run builds (every
        /// transaction at once; `bal_speedup` in `--json`).
        #[arg(long)]
        bal: bool,
        /// Write each block's pre-state into a database in this folder (`<block>.redb`) and
        /// time the runs reading it instead of memory.
        #[arg(long)]
        state_db: Option<PathBuf>,
    },

    /// Download blocks from a JSON-RPC node into fixture folders (`DIR/<N>/`).
    Fetch(pevm_bench::fetch::FetchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay {
            paths,
            json,
            threads,
            always_parallel,
            strategy,
            verify_senders,
            bal,
            state_db,
        } => replay_command(
            paths,
            json,
            &threads.unwrap_or_else(default_threads),
            forced_strategy(always_parallel, strategy),
            replay::Checks {
                verify_senders,
                bal,
                state_db,
            },
        ),
        Command::Store { paths, out, reuse } => exit_code(store_command(&paths, &out, reuse)),
        Command::BlockchainTests {
            paths,
            json,
            threads,
        } => pevm_bench::blockchain_tests::command(&paths, json, threads),
        Command::Bench {
            paths,
            gigagas,
            threads,
            iters,
            json,
            plot,
            always_parallel,
            strategy,
            bal,
            state_db,
        } => {
            let options = bench::Options {
                bal,
                state_db,
                threads: threads.unwrap_or_else(default_threads),
                iters,
                json,
                plot,
                forced: forced_strategy(always_parallel, strategy),
            };
            exit_code(bench::command(&paths, &gigagas, &options))
        }
        Command::Fetch(args) => args.run(),
    }
}

/// `store`: every block's pre-state into `out`, with what its reads cost; success when every
/// block was written.
fn store_command(paths: &[PathBuf], out: &Path, reuse: bool) -> bool {
    let mut ok = true;
    println!(
        "{:>10} {:>8} {:>8} {:>10} {:>9} {:>13} {:>12} {:>14}",
        "block",
        "accounts",
        "slots",
        "bytes",
        "write ms",
        "first read µs",
        "warm read µs",
        "memory read µs"
    );
    for path in paths {
        let dirs = match block_dirs(path) {
            Ok(dirs) => dirs,
            Err(e) => {
                eprintln!("{e}");
                ok = false;
                continue;
            }
        };
        for dir in dirs {
            match pevm_bench::disk::store_block(&dir, out, reuse) {
                Ok(row) => println!(
                    "{:>10} {:>8} {:>8} {:>10} {:>9.1} {:>13.2} {:>12.2} {:>14.3}",
                    row.block,
                    row.accounts,
                    row.slots,
                    row.bytes,
                    row.write.as_secs_f64() * 1e3,
                    row.first_read.as_secs_f64() * 1e6,
                    row.warm_read.as_secs_f64() * 1e6,
                    row.memory_read.as_secs_f64() * 1e6,
                ),
                Err(e) => {
                    eprintln!("{}: {e}", dir.display());
                    ok = false;
                }
            }
        }
    }
    ok
}

/// The strategy every block is forced to, if any.
fn forced_strategy(always_parallel: bool, strategy: Option<Strategy>) -> Option<Strategy> {
    if always_parallel {
        Some(Strategy::BlockStm)
    } else {
        strategy
    }
}

/// Success when `ok`.
fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The machine's cores.
fn default_threads() -> Vec<NonZeroUsize> {
    vec![thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)]
}

fn replay_command(
    mut paths: Vec<PathBuf>,
    json: bool,
    threads: &[NonZeroUsize],
    forced: Option<Strategy>,
    checks: replay::Checks,
) -> ExitCode {
    let start = Instant::now();
    let mut engines = replay::engines(threads, forced);
    let mut rows = Vec::new();
    let mut report = |row: Row| {
        print_row(&row, json);
        rows.push(row);
    };
    if paths.is_empty() {
        let mainnet = data::mainnet_dir();
        if mainnet.is_dir() {
            paths.push(mainnet);
        } else {
            for workload in synthetic::built_in() {
                report(replay::replay_workload(&workload, &mut engines));
            }
        }
    }
    for path in &paths {
        match block_dirs(path) {
            Ok(dirs) => dirs
                .iter()
                .for_each(|dir| report(replay::replay_dir(dir, &mut engines, &checks))),
            Err(e) => report(Row {
                block: path.display().to_string(),
                error: Some(e.to_string()),
                ..Row::default()
            }),
        }
    }
    let summary = replay::summary(&rows, start.elapsed());
    if json {
        println!("{summary}");
    } else {
        let s = &summary["summary"];
        let headers = if s["with_header"] == 0 {
            "no block has a header to check".to_string()
        } else {
            format!(
                "{} of {} headers matched, {} blocks equal to alloy-evm's executor",
                s["header_matched"], s["with_header"], s["reference_matched"]
            )
        };
        println!(
            "{} blocks: {} with parallel output identical to serial; {headers}; {} failed; \
             serial {} ms for {} gas",
            s["blocks"], s["identical_to_serial"], s["failed"], s["serial_ms"], s["gas_used"]
        );
    }
    if rows.iter().all(Row::ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_row(row: &Row, json: bool) {
    if json {
        println!("{}", row.to_json());
        return;
    }
    let verdict = |check: Option<bool>| match check {
        Some(true) => "match",
        Some(false) => "MISMATCH",
        None => "-",
    };
    let (header, reference) = (verdict(row.header_match), verdict(row.reference_match));
    let parallel: String = row
        .parallel
        .iter()
        .map(|(t, p)| {
            let mark = if p.matches { "" } else { " DIFFERS" };
            format!(
                "  {t}t {:.3} ms x{:.2}{mark}",
                p.elapsed.as_secs_f64() * 1e3,
                row.speedup(*t).unwrap_or(0.0)
            )
        })
        .collect();
    println!(
        "{:>17} {:<14} {:>6} txs {:>12} gas  header {:<8} alloy-evm {:<8} serial {:>9.3} ms{parallel}",
        row.block,
        row.hardfork,
        row.txs,
        row.gas_used,
        header,
        reference,
        row.serial.as_secs_f64() * 1e3,
    );
    if !row.parallel.is_empty() || row.header_match.is_some() {
        println!("{:>17} {}", "", row.verdict());
    }
    if let Some(reason) = &row.unchecked {
        println!("{:>17} {reason}", "");
    }
    if let Some(error) = &row.error {
        println!("{:>17} error: {error}", "");
    }
}
