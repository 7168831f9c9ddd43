//! `pevm-bench`: replay real and synthetic blocks, serial against parallel.

use std::{num::NonZeroUsize, path::PathBuf, process::ExitCode, thread, time::Instant};

use clap::{Parser, Subcommand};
use pevm_bench::{
    data,
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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay {
            paths,
            json,
            threads,
        } => {
            let threads = threads.unwrap_or_else(|| {
                vec![thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)]
            });
            replay_command(paths, json, &threads)
        }
    }
}

fn replay_command(mut paths: Vec<PathBuf>, json: bool, threads: &[NonZeroUsize]) -> ExitCode {
    let start = Instant::now();
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
            report(replay::replay_workload(
                &synthetic::small_mixed(2_000, 500, 1),
                threads,
            ));
        }
    }
    for path in &paths {
        match block_dirs(path) {
            Ok(dirs) => dirs
                .iter()
                .for_each(|dir| report(replay::replay_dir(dir, threads))),
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
        println!(
            "{} blocks, {} header matches, {} failed; serial {} ms for {} gas",
            s["blocks"], s["header_matched"], s["failed"], s["serial_ms"], s["gas_used"]
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
    let header = match row.header_match {
        Some(true) => "match",
        Some(false) => "MISMATCH",
        None => "-",
    };
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
        "{:>10} {:<14} {:>6} txs {:>12} gas  header {:<8} serial {:>9.3} ms{parallel}",
        row.block,
        row.hardfork,
        row.txs,
        row.gas_used,
        header,
        row.serial.as_secs_f64() * 1e3,
    );
    if let Some(error) = &row.error {
        println!("{:>10} error: {error}", "");
    }
}
