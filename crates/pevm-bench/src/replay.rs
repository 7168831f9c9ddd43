//! `pevm-bench replay`: execute blocks serially (and in parallel), check them against their
//! headers and against each other, and report one row per block.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use pevm_vm::{execute_block_serial, Block, BlockOutput, ExecutionError, InMemoryProvider};
use serde_json::{json, Value};

use crate::{fixture::Fixture, synthetic::Workload};

/// The outcome of replaying one block.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// Block number, or the synthetic workload's name.
    pub block: String,
    /// The hardfork's name.
    pub hardfork: String,
    /// Number of transactions.
    pub txs: usize,
    /// Gas used by the block.
    pub gas_used: u64,
    /// Serial execution time.
    pub serial: Duration,
    /// Whether the serial output matches the header; `None` for a block without one.
    pub header_match: Option<bool>,
    /// The first failure: load error, execution error or mismatch.
    pub error: Option<String>,
}

impl Row {
    /// Whether the block passed every check.
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.header_match != Some(false)
    }

    /// The row as one JSON object.
    pub fn to_json(&self) -> Value {
        let mut row = json!({
            "block": self.block,
            "hardfork": self.hardfork,
            "txs": self.txs,
            "gas_used": self.gas_used,
            "serial_ms": ms(self.serial),
            "header_match": self.header_match,
        });
        if let Some(error) = &self.error {
            row["error"] = json!(error);
        }
        row
    }
}

/// Milliseconds, rounded to microseconds.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Runs `f` and returns its value and how long it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

/// Replays the block folder `dir`.
pub fn replay_dir(dir: &Path) -> Row {
    let fixture = match Fixture::load(dir) {
        Ok(fixture) => fixture,
        Err(e) => {
            let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
            return Row { block: name, error: Some(e.to_string()), ..Row::default() };
        }
    };
    let header = &fixture.rpc_block.header.inner;
    let mut row = run(fixture.number().to_string(), &fixture.block, &fixture.provider);
    if let Some(output) = row.1.as_ref() {
        let check = output.check_header(fixture.block.hardfork, header);
        row.0.header_match = Some(check.is_ok());
        if let Err(mismatch) = check {
            row.0.error.get_or_insert(format!("header mismatch: {mismatch}"));
        }
    }
    row.0
}

/// Replays a synthetic workload (no header to check).
pub fn replay_workload(workload: &Workload) -> Row {
    run(workload.name.clone(), &workload.block, &workload.provider).0
}

/// Executes a block serially and fills in everything but the header check.
fn run(name: String, block: &Block, provider: &InMemoryProvider) -> (Row, Option<BlockOutput>) {
    let mut row = Row {
        block: name,
        hardfork: block.hardfork.name().to_string(),
        txs: block.txs.len(),
        ..Row::default()
    };
    let (serial, elapsed) = timed(|| execute_block_serial(provider, block));
    row.serial = elapsed;
    match serial {
        Ok(output) => {
            row.gas_used = output.gas_used();
            (row, Some(output))
        }
        Err(e) => {
            row.error = Some(describe(&e, block, provider));
            (row, None)
        }
    }
}

/// An execution error, with the sender's absence from the pre-state pointed out.
fn describe(error: &ExecutionError, block: &Block, provider: &InMemoryProvider) -> String {
    if let ExecutionError::InvalidTransaction { index, .. } = error {
        if let Some(tx) = block.txs.get(*index) {
            if !provider.contains(&tx.caller) {
                return format!("{error} (sender {} is not in the pre-state)", tx.caller);
            }
        }
    }
    error.to_string()
}

/// The closing summary of a run.
pub fn summary(rows: &[Row], total: Duration) -> Value {
    let matched = rows.iter().filter(|r| r.header_match == Some(true)).count();
    let failed = rows.iter().filter(|r| !r.ok()).count();
    json!({"summary": {
        "blocks": rows.len(),
        "header_matched": matched,
        "failed": failed,
        "txs": rows.iter().map(|r| r.txs).sum::<usize>(),
        "gas_used": rows.iter().map(|r| r.gas_used).sum::<u64>(),
        "serial_ms": ms(rows.iter().map(|r| r.serial).sum()),
        "wall_ms": ms(total),
    }})
}
