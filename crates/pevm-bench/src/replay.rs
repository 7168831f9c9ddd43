//! `pevm-bench replay`: execute blocks serially (and in parallel), check them against their
//! headers and against each other, and report one row per block.

use std::{
    collections::BTreeMap,
    num::NonZeroUsize,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use alloy_hardforks::EthereumHardforks;
use pevm_vm::{
    execute_block_embedded, execute_block_reference, execute_block_serial,
    execute_block_with_hooks, first_access_list_difference, revm::primitives::KECCAK_EMPTY, Block,
    BlockOutput, BlockStats, ChainSpec, ExecutionError, HeaderMismatch,
    ParallelBlockExecutorFactory, Pevm, StateProvider, Strategy, REQUEST_CONTRACTS,
};
use serde_json::{json, Value};

use crate::{
    disk::{state_file, DiskState},
    fixture::Fixture,
    synthetic::Workload,
};

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
    /// Whether the block with its pre- and post-block steps, run serially, equals alloy-evm's
    /// `EthBlockExecutor` (receipts, gas, requests, state); `None` when not compared.
    pub reference_match: Option<bool>,
    /// Why the requests or the reference were not checked, when they were not.
    pub unchecked: Option<String>,
    /// Per thread count: parallel time, and whether its output equalled the serial one.
    pub parallel: BTreeMap<usize, Parallel>,
    /// Per thread count: how long recovering every sender from its signature took
    /// (`--verify-senders`).
    pub senders: BTreeMap<usize, Duration>,
    /// The first failure: load error, execution error or mismatch.
    pub error: Option<String>,
    /// The strategy the engines were forced to (`--strategy`), if any.
    pub forced: Option<Strategy>,
    /// Whether the block's access list equalled the one revm's `State` builds (`--bal`);
    /// `None` when not compared.
    pub bal_match: Option<bool>,
    /// Per thread count: the block run with its access list (`--bal`): time, and whether its
    /// output equalled serial.
    pub listed: BTreeMap<usize, Parallel>,
    /// Serial time of the transactions, timed alongside the runs with the access list.
    pub listed_serial: Duration,
}

impl Row {
    /// Whether the block passed every check.
    pub fn ok(&self) -> bool {
        self.error.is_none()
            && self.header_match != Some(false)
            && self.reference_match != Some(false)
            && self.bal_match != Some(false)
            && self.parallel_match()
            && self.listed.values().all(|p| p.matches)
    }

    /// Whether every parallel run matched the serial one.
    pub fn parallel_match(&self) -> bool {
        self.parallel.values().all(|p| p.matches)
    }

    /// What happened, in plain words: whether the parallel output was identical to serial,
    /// the checks against the header and alloy-evm's executor, what the plan chose and why
    /// (at the most threads), and the speedup.
    pub fn verdict(&self) -> String {
        let mut parts = Vec::new();
        let threads: Vec<String> = self.parallel.keys().map(usize::to_string).collect();
        let differs: Vec<String> = self
            .parallel
            .iter()
            .filter(|(_, p)| !p.matches)
            .map(|(t, _)| t.to_string())
            .collect();
        let at = |threads: &[String]| {
            let unit = if threads == ["1"] {
                "thread"
            } else {
                "threads"
            };
            format!("at {} {unit}", threads.join(", "))
        };
        if threads.is_empty() {
        } else if differs.is_empty() {
            parts.push(format!(
                "parallel output identical to serial {}",
                at(&threads)
            ));
        } else {
            parts.push(format!(
                "parallel output DIFFERS from serial {}",
                at(&differs)
            ));
        }
        parts.push(
            match self.header_match {
                Some(true) => "header matches",
                Some(false) => "header MISMATCH",
                None => "no header to check",
            }
            .to_string(),
        );
        match self.reference_match {
            Some(true) => parts.push("equal to alloy-evm's executor".to_string()),
            Some(false) => parts.push("DIFFERS from alloy-evm's executor".to_string()),
            None => {}
        }
        if let Some((t, p)) = self.parallel.iter().next_back() {
            parts.push(match self.forced {
                Some(strategy) => format!("forced to {}", strategy.name()),
                None if *t == 1 => "one thread: the plan runs it serially".to_string(),
                None => format!("plan: {}", p.stats.plan.describe()),
            });
            if let Some(speedup) = self.speedup(*t) {
                parts.push(format!("x{speedup:.2} {}", at(&[t.to_string()])));
            }
        }
        parts.join("; ")
    }

    /// Serial time over parallel time at `threads`.
    pub fn speedup(&self, threads: usize) -> Option<f64> {
        let p = self.parallel.get(&threads)?;
        Some(self.serial.as_secs_f64() / p.elapsed.as_secs_f64().max(1e-9))
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
            "reference_match": self.reference_match,
            "verdict": self.verdict(),
        });
        if let Some(reason) = &self.unchecked {
            row["unchecked"] = json!(reason);
        }
        if !self.parallel.is_empty() {
            let per_thread = |f: &dyn Fn(usize, &Parallel) -> Value| -> Value {
                self.parallel
                    .iter()
                    .map(|(t, p)| (t.to_string(), f(*t, p)))
                    .collect()
            };
            row["parallel_match"] = json!(self.parallel_match());
            row["parallel_ms"] = per_thread(&|_, p| json!(ms(p.elapsed)));
            row["speedup"] =
                per_thread(&|t, _| json!((self.speedup(t).unwrap_or(0.0) * 1e3).round() / 1e3));
            row["re_executions"] = per_thread(&|_, p| json!(p.stats.engine.re_executions));
            row["workers"] = per_thread(&|_, p| json!(p.stats.plan.workers));
            row["strategy"] = per_thread(&|_, p| json!(p.stats.plan.strategy.name()));
            row["stats"] = per_thread(&|_, p| stats_json(&p.stats));
        }
        if !self.senders.is_empty() {
            let per_thread = |f: &dyn Fn(&Duration) -> Value| -> Value {
                self.senders
                    .iter()
                    .map(|(t, d)| (t.to_string(), f(d)))
                    .collect()
            };
            row["senders_ms"] = per_thread(&|d| json!(ms(*d)));
            let rate = |d: &Duration| (self.txs as f64 / d.as_secs_f64().max(1e-9)).round();
            row["senders_per_s"] = per_thread(&|d| json!(rate(d)));
        }
        if !self.listed.is_empty() {
            let per_thread = |f: &dyn Fn(&Parallel) -> Value| -> Value {
                self.listed
                    .iter()
                    .map(|(t, p)| (t.to_string(), f(p)))
                    .collect()
            };
            let serial = self.listed_serial.as_secs_f64();
            row["bal_match"] = json!(self.bal_match);
            row["bal_listed_match"] = json!(self.listed.values().all(|p| p.matches));
            row["bal_re_executions"] = per_thread(&|p| json!(p.stats.engine.re_executions));
            row["bal_ms"] = per_thread(&|p| json!(ms(p.elapsed)));
            row["bal_serial_ms"] = json!(ms(self.listed_serial));
            row["bal_speedup"] = per_thread(&|p| {
                let speedup = serial / p.elapsed.as_secs_f64().max(1e-9);
                json!((speedup * 1e3).round() / 1e3)
            });
        }
        if let Some(error) = &self.error {
            row["error"] = json!(error);
        }
        row
    }
}

/// What the engine did for a block, as JSON.
pub fn stats_json(stats: &BlockStats) -> Value {
    let s = &stats.engine;
    json!({
        "strategy": stats.plan.strategy.name(),
        "workers": stats.plan.workers,
        "total_gas": stats.plan.total_gas,
        "critical_gas": stats.plan.critical_gas,
        "executions": s.executions,
        "re_executions": s.re_executions,
        "validations": s.validations,
        "estimate_aborts": s.estimate_aborts,
        "validation_aborts": s.validation_aborts,
        "dependency_waits": s.dependency_waits,
        "lazy_fees": stats.lazy_fees,
        "lazy_credits": stats.lazy_credits,
        "lazy_accounts": stats.lazy_accounts,
    })
}

/// One parallel run of a block.
#[derive(Clone, Copy, Debug, Default)]
pub struct Parallel {
    /// Wall time.
    pub elapsed: Duration,
    /// Whether its output (or error) equalled the serial one.
    pub matches: bool,
    /// What the engine did.
    pub stats: BlockStats,
}

/// Milliseconds, rounded to microseconds.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The median of some durations (they are sorted in place).
pub fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// Runs `f` and returns its value and how long it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

/// The fewest timed rounds per block (after an untimed warm-up); each time is the median of
/// the rounds.
const MIN_ROUNDS: usize = 5;

/// The most timed rounds per block.
const MAX_ROUNDS: usize = 201;

/// Serial time per block that the rounds go on to reach (up to [`MAX_ROUNDS`]): a block of
/// a tenth of a millisecond is timed hundreds of times, so that one preemption or cache
/// miss on this noisy machine does not decide its speedup.
const TIMED_SERIAL: Duration = Duration::from_millis(60);

/// One long-lived parallel executor per thread count, reused for every block of a run.
pub type Engines = Vec<(NonZeroUsize, Pevm)>;

/// An executor for each of `threads`; with `forced`, every block runs with that strategy
/// on every worker (see [`Pevm::force`]).
pub fn engines(threads: &[NonZeroUsize], forced: Option<Strategy>) -> Engines {
    threads
        .iter()
        .map(|&t| {
            let pevm = Pevm::new(t);
            (
                t,
                match forced {
                    Some(strategy) => pevm.force(strategy),
                    None => pevm,
                },
            )
        })
        .collect()
}

/// The optional checks of [`replay_dir`].
#[derive(Clone, Debug, Default)]
pub struct Checks {
    /// Recover every transaction's sender on each engine's workers.
    pub verify_senders: bool,
    /// Build the block's access list, compare it with the reference's, and run and time the
    /// block with it.
    pub bal: bool,
    /// The folder of the blocks' on-disk states (see [`crate::disk`]): the timed runs read
    /// the state from there instead of memory.
    pub state_db: Option<PathBuf>,
}

/// Replays the block folder `dir`: serially, then in parallel on each of `engines`, with the
/// optional `checks`.
pub fn replay_dir(dir: &Path, engines: &mut Engines, checks: &Checks) -> Row {
    let fixture = match Fixture::load(dir) {
        Ok(fixture) => fixture,
        Err(e) => {
            let name = dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            return Row {
                block: name,
                error: Some(e.to_string()),
                ..Row::default()
            };
        }
    };
    let header = &fixture.rpc_block.header.inner;
    let disk = match &checks.state_db {
        Some(folder) => match DiskState::open(&state_file(folder, fixture.number())) {
            Ok(disk) => Some(disk),
            Err(e) => {
                return Row {
                    block: fixture.number().to_string(),
                    error: Some(format!("{e} (write it with `pevm-bench store`)")),
                    ..Row::default()
                }
            }
        },
        None => None,
    };
    let name = fixture.number().to_string();
    let mut row = match &disk {
        Some(disk) => run(name, &fixture.block, disk, engines),
        None => run(name, &fixture.block, &fixture.provider, engines),
    };
    if checks.verify_senders {
        for (t, engine) in engines.iter() {
            let rpc_block = &fixture.rpc_block;
            let (verified, elapsed) =
                timed(|| engine.verify_senders(rpc_block, fixture.block.hardfork));
            row.0.senders.insert(t.get(), elapsed);
            if let Err(e) = verified {
                row.0.error.get_or_insert(e.to_string());
            }
        }
    }
    let (mut row, output) = row;
    let Some(output) = output else {
        return row;
    };
    // The transactions alone have no requests: the whole block gives them, where the
    // pre-state holds the system contracts its steps call.
    let full = match missing_system_contract(&fixture) {
        Some(reason) => {
            row.unchecked = Some(reason);
            None
        }
        None => {
            let full = full_serial(&fixture, &fixture.block);
            let most = engines
                .iter()
                .map(|(t, _)| *t)
                .max()
                .unwrap_or(NonZeroUsize::MIN);
            let difference = reference_difference(&fixture, &full, &[checking_factory(most)]);
            row.reference_match = Some(difference.is_none());
            if let Some(difference) = difference {
                row.error.get_or_insert(format!(
                    "differs from alloy-evm's EthBlockExecutor: {difference}"
                ));
            }
            full.ok()
        }
    };
    let check = match &full {
        Some(full) => full.check_header(fixture.block.hardfork, header),
        None => match output.check_header(fixture.block.hardfork, header) {
            Err(HeaderMismatch::RequestsHash { .. }) => Ok(()),
            other => other,
        },
    };
    row.header_match = Some(check.is_ok());
    if let Err(mismatch) = check {
        row.error
            .get_or_insert(format!("header mismatch: {mismatch}"));
    }
    if checks.bal {
        match &disk {
            Some(disk) => with_access_list(&fixture, disk, full.is_some(), engines, &mut row),
            None => {
                let memory = &fixture.provider;
                with_access_list(&fixture, memory, full.is_some(), engines, &mut row);
            }
        }
    }
    row
}

/// The `--bal` checks of a fixture's block: its access list built serially (with the steps
/// around the transactions where `whole` says their system contracts are present) and
/// compared with the one revm's `State` builds under alloy-evm's executor; the block run with
/// it on each engine, equal to serial and timed against it (the transactions alone, over
/// `timed`: the fixture's state in memory or on disk).
fn with_access_list<T: StateProvider>(
    fixture: &Fixture,
    timed_state: &T,
    whole: bool,
    engines: &mut Engines,
    row: &mut Row,
) {
    let provider = &fixture.provider;
    let listing = Block {
        access_list: true,
        ..fixture.block.clone()
    };
    let full = if whole {
        full_serial(fixture, &listing)
    } else {
        execute_block_serial(provider, &listing)
    };
    let list = match &full {
        Ok(output) => output.access_list.clone().unwrap_or_default(),
        Err(e) => {
            row.error
                .get_or_insert(format!("with its access list: {e}"));
            return;
        }
    };
    if whole {
        let reference = execute_block_reference(
            provider,
            &ChainSpec::mainnet(),
            &listing,
            fixture.context(),
            fixture.signed_txs(),
        );
        let difference = match &reference {
            Ok(reference) => match &reference.access_list {
                Some(theirs) => first_access_list_difference(&list, theirs),
                None => Some("the reference built no access list".to_string()),
            },
            Err(e) => Some(format!("the reference failed: {e}")),
        };
        row.bal_match = Some(difference.is_none());
        if let Some(difference) = difference {
            row.error.get_or_insert(format!(
                "access list differs from revm's State: {difference}"
            ));
        }
    }
    // The whole block with its list equals the whole block run serially.
    for (t, engine) in engines.iter_mut() {
        let listed = if whole {
            execute_block_with_hooks(
                provider,
                &ChainSpec::mainnet(),
                &listing,
                fixture.context(),
                |p, b| {
                    let listed = engine.execute_with_access_list(p, b, &list);
                    listed.map(|(output, _)| output)
                },
            )
        } else {
            let listed = engine.execute_with_access_list(provider, &listing, &list);
            listed.map(|(output, _)| output)
        };
        let matches = listed == full;
        // Re-executions of the transactions alone with the list.
        let stats = engine
            .execute_with_access_list(provider, &fixture.block, &list)
            .map(|(_, stats)| stats)
            .unwrap_or_default();
        if !matches {
            let difference = first_difference(&full, &listed);
            row.error.get_or_insert(format!(
                "with its access list at {t} threads, differs from serial: {difference}"
            ));
        }
        let stats = BlockStats {
            engine: stats,
            ..BlockStats::default()
        };
        row.listed.insert(
            t.get(),
            Parallel {
                matches,
                stats,
                ..Parallel::default()
            },
        );
    }
    // The transactions alone, timed: serial and with the list, interleaved.
    let block = &fixture.block;
    let (serial, listed) = time_interleaved(timed_state, block, engines, |engine| {
        let _ = engine.execute_with_access_list(timed_state, block, &list);
    });
    row.listed_serial = serial;
    for ((t, _), elapsed) in engines.iter().zip(listed) {
        if let Some(listed) = row.listed.get_mut(&t.get()) {
            listed.elapsed = elapsed;
        }
    }
}

/// `block` run serially over `provider`, then by `run` on each of `engines`, in interleaved
/// rounds (see [`TIMED_SERIAL`]): the median serial time, and each engine's median.
fn time_interleaved<P: StateProvider>(
    provider: &P,
    block: &Block,
    engines: &mut Engines,
    mut run: impl FnMut(&mut Pevm),
) -> (Duration, Vec<Duration>) {
    let mut serial_times = Vec::with_capacity(MIN_ROUNDS);
    let mut engine_times = vec![Vec::with_capacity(MIN_ROUNDS); engines.len()];
    let mut serial_total = Duration::ZERO;
    while serial_times.len() < MIN_ROUNDS
        || (serial_total < TIMED_SERIAL && serial_times.len() < MAX_ROUNDS)
    {
        let elapsed = timed(|| execute_block_serial(provider, block)).1;
        serial_total += elapsed;
        serial_times.push(elapsed);
        for ((_, engine), times) in engines.iter_mut().zip(&mut engine_times) {
            times.push(timed(|| run(engine)).1);
        }
    }
    let medians = engine_times.iter_mut().map(|times| median(times)).collect();
    (median(&mut serial_times), medians)
}

/// Why a fixture's block cannot be run with its pre- and post-block steps: a request
/// contract its fork calls after the transactions (EIP-7002, EIP-7251) is not in the
/// pre-state (fixtures fetched before `fetch` recorded the system calls' reads), so the
/// requests it yields are unknown. (A missing beacon-root or history contract only leaves
/// its own storage out, for this executor and the reference alike.)
pub fn missing_system_contract(fixture: &Fixture) -> Option<String> {
    let timestamp = fixture.rpc_block.header.timestamp;
    if !ChainSpec::mainnet().is_prague_active_at_timestamp(timestamp) {
        return None;
    }
    let missing = REQUEST_CONTRACTS.into_iter().find(|contract| {
        fixture
            .provider
            .basic(*contract)
            .ok()
            .flatten()
            .is_none_or(|a| a.code_hash == KECCAK_EMPTY)
    })?;
    Some(format!(
        "the pre-state lacks system contract {missing}: requests and the reference not checked"
    ))
}

/// The fixture's block (`block`: its own, or a copy asking for more) run serially with its
/// pre- and post-block steps (alloy-evm's).
pub fn full_serial(fixture: &Fixture, block: &Block) -> Result<BlockOutput, ExecutionError> {
    let provider = &fixture.provider;
    execute_block_with_hooks(
        provider,
        &ChainSpec::mainnet(),
        block,
        fixture.context(),
        |p, b| execute_block_serial(p, b),
    )
}

/// Where `full` (the fixture's block run by [`full_serial`], or by any executor between the
/// same steps) first differs from alloy-evm's `EthBlockExecutor` over revm's `State`, and
/// where the engine driven through alloy-evm's `BlockExecutor` by each of `embedded` first
/// differs from it (receipts, gas, requests, the bundle with reverts); `None` when all agree.
pub fn reference_difference(
    fixture: &Fixture,
    full: &Result<BlockOutput, ExecutionError>,
    embedded: &[ParallelBlockExecutorFactory],
) -> Option<String> {
    let (provider, block) = (&fixture.provider, &fixture.block);
    let reference = execute_block_reference(
        provider,
        &ChainSpec::mainnet(),
        block,
        fixture.context(),
        fixture.signed_txs(),
    );
    let reference = match (full, reference) {
        (Ok(full), Ok(reference)) => match full.reference_difference(&reference, provider) {
            Some(difference) => return Some(difference),
            None => reference,
        },
        (Err(e), Err(r)) => return Some(format!("both failed: {e}; reference: {r}")),
        (Ok(_), Err(r)) => return Some(format!("the reference failed: {r}")),
        (Err(e), Ok(_)) => return Some(format!("failed ({e}), the reference did not")),
    };
    embedded.iter().find_map(|factory| {
        let ran = execute_block_embedded(
            factory,
            provider,
            block,
            fixture.context(),
            fixture.signed_txs(),
        );
        let difference = match ran {
            Ok(ran) => ran.difference(&reference)?,
            Err(e) => format!("failed: {e}"),
        };
        Some(format!(
            "through BlockExecutor on {} threads: {difference}",
            factory.concurrency()
        ))
    })
}

/// A factory of [`ParallelBlockExecutor`](pevm_vm::ParallelBlockExecutor)s for mainnet that
/// runs every block on Block-STM on `threads` workers (for checking, not timing).
pub fn checking_factory(threads: NonZeroUsize) -> ParallelBlockExecutorFactory {
    ParallelBlockExecutorFactory::new(
        ChainSpec::mainnet(),
        Pevm::new(threads).force(Strategy::BlockStm),
    )
}

/// Replays a synthetic workload (no header to check).
pub fn replay_workload(workload: &Workload, engines: &mut Engines) -> Row {
    run(
        workload.name.clone(),
        &workload.block,
        &workload.provider,
        engines,
    )
    .0
}

/// Executes a block serially and on each engine in parallel, and fills in everything but
/// the header check. Times are medians of interleaved rounds (see [`TIMED_SERIAL`]) after
/// an untimed warm-up of each (which also checks parallel against serial).
fn run<P: StateProvider>(
    name: String,
    block: &Block,
    provider: &P,
    engines: &mut Engines,
) -> (Row, Option<BlockOutput>) {
    let mut row = Row {
        block: name,
        hardfork: block.hardfork.name().to_string(),
        txs: block.txs.len(),
        forced: engines.first().and_then(|(_, engine)| engine.forced()),
        ..Row::default()
    };
    // The untimed first runs warm caches and one-time set-ups (such as the KZG trusted setup).
    let serial = execute_block_serial(provider, block);
    for (t, engine) in engines.iter_mut() {
        let (output, stats) = match engine.execute_with_stats(provider, block) {
            Ok((output, stats)) => (Ok(output), stats),
            Err(e) => (Err(e), BlockStats::default()),
        };
        let matches = output == serial;
        if !matches && row.error.is_none() {
            let difference = first_difference(&serial, &output);
            row.error = Some(format!(
                "parallel output at {t} threads differs from serial: {difference}"
            ));
        }
        row.parallel.insert(
            t.get(),
            Parallel {
                elapsed: Duration::ZERO,
                matches,
                stats,
            },
        );
    }
    let (serial_time, parallel) = time_interleaved(provider, block, engines, |engine| {
        let _ = engine.execute(provider, block);
    });
    row.serial = serial_time;
    for ((t, _), elapsed) in engines.iter().zip(parallel) {
        if let Some(parallel) = row.parallel.get_mut(&t.get()) {
            parallel.elapsed = elapsed;
        }
    }
    match serial {
        Ok(output) => {
            row.gas_used = output.gas_used();
            (row, Some(output))
        }
        Err(e) => {
            row.error.get_or_insert(describe(&e, block, provider));
            (row, None)
        }
    }
}

/// Where two execution outcomes first differ: a receipt, an account, or the error.
pub fn first_difference(
    a: &Result<BlockOutput, ExecutionError>,
    b: &Result<BlockOutput, ExecutionError>,
) -> String {
    let (a, b) = match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => return format!("{:?} vs {:?}", a.as_ref().err(), b.as_ref().err()),
    };
    if a.results.len() != b.results.len() {
        return format!("{} vs {} results", a.results.len(), b.results.len());
    }
    if let Some((i, (x, y))) = a
        .results
        .iter()
        .zip(&b.results)
        .enumerate()
        .find(|(_, (x, y))| x != y)
    {
        return format!("receipt {i}: {x:?} vs {y:?}");
    }
    let accounts = a.state.keys().chain(b.state.keys());
    for address in accounts {
        let (x, y) = (a.state.get(address), b.state.get(address));
        if x != y {
            return format!("account {address}: {x:?} vs {y:?}");
        }
    }
    "no difference".into()
}

/// An execution error, with the sender's absence from the pre-state pointed out.
fn describe<P: StateProvider>(error: &ExecutionError, block: &Block, provider: &P) -> String {
    if let ExecutionError::InvalidTransaction { index, .. } = error {
        if let Some(tx) = block.txs.get(*index) {
            if provider.basic(tx.caller).ok().flatten().is_none() {
                return format!("{error} (sender {} is not in the pre-state)", tx.caller);
            }
        }
    }
    error.to_string()
}

/// The closing summary of a run.
pub fn summary(rows: &[Row], total: Duration) -> Value {
    let matched = rows.iter().filter(|r| r.header_match == Some(true)).count();
    let with_header = rows.iter().filter(|r| r.header_match.is_some()).count();
    let identical = rows
        .iter()
        .filter(|r| !r.parallel.is_empty() && r.parallel_match())
        .count();
    let reference = rows
        .iter()
        .filter(|r| r.reference_match == Some(true))
        .count();
    let failed = rows.iter().filter(|r| !r.ok()).count();
    json!({"summary": {
        "blocks": rows.len(),
        "identical_to_serial": identical,
        "with_header": with_header,
        "header_matched": matched,
        "reference_matched": reference,
        "failed": failed,
        "txs": rows.iter().map(|r| r.txs).sum::<usize>(),
        "gas_used": rows.iter().map(|r| r.gas_used).sum::<u64>(),
        "serial_ms": ms(rows.iter().map(|r| r.serial).sum()),
        "wall_ms": ms(total),
    }})
}
