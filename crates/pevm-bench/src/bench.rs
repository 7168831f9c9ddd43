//! `pevm-bench bench`: serial and parallel execution of the same blocks in one process,
//! interleaved over several iterations, reported as medians with their spread.

use std::{
    collections::BTreeMap,
    num::NonZeroUsize,
    path::{Path, PathBuf},
    time::Duration,
};

use pevm_vm::{
    analyze_block, execute_block_serial, Block, BlockStats, DependencyGraph, InMemoryProvider,
    StateProvider, Strategy,
};
use serde_json::{json, Value};

use crate::{
    data,
    disk::{write_state, DiskState},
    fixture::{block_dirs, Fixture},
    gigagas, plot,
    replay::{self, first_difference, median, ms, timed, Engines},
};

/// A block to measure.
pub struct Subject<'a, P> {
    /// Block number or workload name.
    pub name: String,
    /// The block.
    pub block: &'a Block,
    /// Its pre-state.
    pub provider: &'a P,
}

/// Timings of one block.
#[derive(Clone, Debug, Default)]
pub struct Measurement {
    /// Block number or workload name.
    pub name: String,
    /// Transactions.
    pub txs: usize,
    /// Gas used.
    pub gas_used: u64,
    /// Serial times, one per iteration.
    pub serial: Vec<Duration>,
    /// Per thread count: parallel times, one per iteration.
    pub parallel: BTreeMap<usize, Vec<Duration>>,
    /// Per thread count: the engine's counters of the last run.
    pub stats: BTreeMap<usize, BlockStats>,
    /// Per thread count: times of the block run with its access list (`--bal`), one per
    /// iteration.
    pub listed: BTreeMap<usize, Vec<Duration>>,
    /// The block's dependency graph, weighted by serial execution time.
    pub graph: DependencyGraph,
}

/// Worker counts the list-scheduling simulation reports.
pub const SIMULATED_WORKERS: [usize; 5] = [2, 4, 8, 16, 32];

/// Measures `subject`: first one untimed serial and parallel run per thread count (which must
/// agree), then `iters` rounds that each time serial and every thread count in turn (serial
/// first, then last, alternately); with `bal`, each thread count also runs the block with the
/// access list its serial run builds.
pub fn measure<P: StateProvider>(
    subject: &Subject<'_, P>,
    engines: &mut Engines,
    iters: usize,
    bal: bool,
) -> Result<Measurement, String> {
    let Subject {
        name,
        block,
        provider,
    } = subject;
    let serial = execute_block_serial(*provider, block);
    let output = serial.as_ref().map_err(|e| format!("{name}: {e}"))?;
    let mut m = Measurement {
        name: name.clone(),
        txs: block.txs.len(),
        gas_used: output.gas_used(),
        ..Measurement::default()
    };
    for (t, engine) in engines.iter_mut() {
        let parallel = engine.execute(*provider, block);
        if parallel != serial {
            let difference = first_difference(&serial, &parallel);
            return Err(format!(
                "{name}: parallel at {t} threads differs from serial: {difference}"
            ));
        }
    }
    let list = if bal {
        let listing = Block {
            access_list: true,
            ..(*block).clone()
        };
        let listed =
            execute_block_serial(*provider, &listing).map_err(|e| format!("{name}: {e}"))?;
        let list = listed.access_list.unwrap_or_default();
        for (t, engine) in engines.iter_mut() {
            let run = engine.execute_with_access_list(*provider, block, &list);
            let run = run.map(|(output, _)| output);
            if run != serial {
                let difference = first_difference(&serial, &run);
                return Err(format!(
                    "{name}: with its access list at {t} threads, differs from serial: {difference}"
                ));
            }
        }
        Some(list)
    } else {
        None
    };
    m.graph = analyze_block(*provider, block).map_err(|e| format!("{name}: {e}"))?;
    for round in 0..iters.max(1) {
        // Serial first in even rounds and last in odd ones, so that neither side always runs
        // on what the other left in the caches.
        if round % 2 == 0 {
            m.serial
                .push(timed(|| execute_block_serial(*provider, block)).1);
        }
        for (t, engine) in engines.iter_mut() {
            let (run, elapsed) = timed(|| engine.execute_with_stats(*provider, block));
            if let Ok((_, stats)) = run {
                m.stats.insert(t.get(), stats);
            }
            m.parallel.entry(t.get()).or_default().push(elapsed);
            if let Some(list) = &list {
                let elapsed = timed(|| engine.execute_with_access_list(*provider, block, list)).1;
                m.listed.entry(t.get()).or_default().push(elapsed);
            }
        }
        if round % 2 == 1 {
            m.serial
                .push(timed(|| execute_block_serial(*provider, block)).1);
        }
    }
    Ok(m)
}

impl Measurement {
    /// Median serial time.
    pub fn serial_median(&self) -> Duration {
        median(&mut self.serial.clone())
    }

    /// Median parallel time at `threads`.
    pub fn parallel_median(&self, threads: usize) -> Duration {
        median(&mut self.parallel.get(&threads).cloned().unwrap_or_default())
    }

    /// The speedup of each round at `threads`: its serial time over its parallel time, so that
    /// the machine slowing down or speeding up between rounds does not skew the ratio.
    fn round_speedups(&self, threads: usize) -> Vec<f64> {
        let parallel = self.parallel.get(&threads).map_or(&[][..], Vec::as_slice);
        let mut ratios: Vec<f64> = self
            .serial
            .iter()
            .zip(parallel)
            .map(|(s, p)| s.as_secs_f64() / p.as_secs_f64().max(1e-9))
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios
    }

    /// The median of the rounds' speedups at `threads`: each round's serial time over its
    /// parallel time.
    pub fn speedup(&self, threads: usize) -> f64 {
        let ratios = self.round_speedups(threads);
        ratios.get(ratios.len() / 2).copied().unwrap_or(0.0)
    }

    /// The lowest and highest of the rounds' speedups at `threads`.
    pub fn speedup_spread(&self, threads: usize) -> (f64, f64) {
        let ratios = self.round_speedups(threads);
        let (first, last) = (ratios.first(), ratios.last());
        (first.copied().unwrap_or(0.0), last.copied().unwrap_or(0.0))
    }

    /// The speedup the dependency graph allows on `threads` workers (list scheduling without
    /// overhead): what a measured speedup is judged against.
    pub fn bound(&self, threads: usize) -> f64 {
        self.graph.simulated_speedup(threads)
    }

    /// Measured speedup over the bound at `threads`.
    pub fn efficiency(&self, threads: usize) -> f64 {
        self.speedup(threads) / self.bound(threads)
    }

    /// The measurement as one JSON object.
    pub fn to_json(&self) -> Value {
        let gas_per_s = |d: Duration| (self.gas_used as f64 / d.as_secs_f64().max(1e-9)).round();
        let spread = |times: &[Duration]| {
            let min = times.iter().min().copied().unwrap_or_default();
            let max = times.iter().max().copied().unwrap_or_default();
            json!([ms(min), ms(max)])
        };
        let per_thread = |f: &dyn Fn(usize, &[Duration]) -> Value| -> Value {
            self.parallel
                .iter()
                .map(|(t, times)| (t.to_string(), f(*t, times)))
                .collect()
        };
        let round3 = |x: f64| (x * 1e3).round() / 1e3;
        json!({
            "block": self.name,
            "txs": self.txs,
            "gas_used": self.gas_used,
            "iters": self.serial.len(),
            "serial_ms": ms(self.serial_median()),
            "serial_spread_ms": spread(&self.serial),
            "serial_gas_per_s": gas_per_s(self.serial_median()),
            "parallel_ms": per_thread(&|t, _| json!(ms(self.parallel_median(t)))),
            "parallel_spread_ms": per_thread(&|_, times| spread(times)),
            "speedup": per_thread(&|t, _| json!(round3(self.speedup(t)))),
            "speedup_spread": per_thread(&|t, _| {
                let (low, high) = self.speedup_spread(t);
                json!([round3(low), round3(high)])
            }),
            "gas_per_s": per_thread(&|t, _| json!(gas_per_s(self.parallel_median(t)))),
            "workers": per_thread(&|t, _| json!(self.stats.get(&t).map_or(0, |s| s.plan.workers))),
            "strategy": per_thread(&|t, _| json!(self.stats.get(&t).map_or("", |s| s.plan.strategy.name()))),
            "re_executions": per_thread(&|t, _| json!(self.stats.get(&t).map_or(0, |s| s.engine.re_executions))),
            "estimate_aborts": per_thread(&|t, _| json!(self.stats.get(&t).map_or(0, |s| s.engine.estimate_aborts))),
            "validation_aborts": per_thread(&|t, _| json!(self.stats.get(&t).map_or(0, |s| s.engine.validation_aborts))),
            "bound": per_thread(&|t, _| json!(round3(self.bound(t)))),
            "efficiency": per_thread(&|t, _| json!(round3(self.efficiency(t)))),
            "bal_speedup": self
                .listed
                .iter()
                .map(|(t, times)| {
                    let listed = median(&mut times.clone()).as_secs_f64().max(1e-9);
                    (t.to_string(), json!(round3(self.serial_median().as_secs_f64() / listed)))
                })
                .collect::<serde_json::Map<_, _>>(),
            "critical_path_bound": round3(self.graph.bound()),
            "sim_speedup": SIMULATED_WORKERS
                .iter()
                .map(|w| (w.to_string(), json!(round3(self.graph.simulated_speedup(*w)))))
                .collect::<serde_json::Map<_, _>>(),
        })
    }
}

/// How `pevm-bench bench` runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Thread counts of the parallel runs.
    pub threads: Vec<NonZeroUsize>,
    /// Timed iterations per block.
    pub iters: usize,
    /// One JSON object per block per line, instead of a table.
    pub json: bool,
    /// An SVG file to draw into.
    pub plot: Option<PathBuf>,
    /// The strategy every block is forced to, with every worker; `None`: each block's plan.
    pub forced: Option<Strategy>,
    /// Also time each block run with its access list.
    pub bal: bool,
    /// A folder to write each block's pre-state to (`<name>.redb`), which the timed runs then
    /// read instead of memory.
    pub state_db: Option<PathBuf>,
}

/// `pevm-bench bench`: measures the `gigagas` workloads and the blocks under `paths`, prints
/// a row per block, and draws the plot. False when any block failed.
pub fn command(paths: &[PathBuf], gigagas: &[String], options: &Options) -> bool {
    let mut ok = true;
    let mut measured = Vec::new();
    let mut engines = replay::engines(&options.threads, options.forced);
    let mut run = |name: &str, block: &Block, provider: &InMemoryProvider| {
        let outcome = match &options.state_db {
            Some(dir) => on_disk(dir, name, provider).and_then(|disk| {
                let subject = Subject {
                    name: name.to_string(),
                    block,
                    provider: &disk,
                };
                measure(&subject, &mut engines, options.iters, options.bal)
            }),
            None => {
                let subject = Subject {
                    name: name.to_string(),
                    block,
                    provider,
                };
                measure(&subject, &mut engines, options.iters, options.bal)
            }
        };
        match outcome {
            Ok(m) => {
                print_row(&m, options.json);
                measured.push(m);
                true
            }
            Err(e) => print_error(name, &e, options.json),
        }
    };
    let contracts = data::data_dir().join("contracts");
    for kind in gigagas {
        match gigagas::workload(kind, &contracts, 1) {
            Ok(w) => ok &= run(&w.name, &w.block, &w.provider),
            Err(e) => ok &= print_error(kind, &e, options.json),
        }
    }
    for path in paths {
        match block_dirs(path) {
            Ok(dirs) => {
                for dir in dirs {
                    match Fixture::load(&dir) {
                        Ok(f) => ok &= run(&f.number().to_string(), &f.block, &f.provider),
                        Err(e) => ok &= print_error(&name_of(&dir), &e.to_string(), options.json),
                    }
                }
            }
            Err(e) => ok &= print_error(&name_of(path), &e.to_string(), options.json),
        }
    }
    if let (Some(path), Some(threads)) = (&options.plot, options.threads.iter().max()) {
        if let Err(e) = plot::plot(path, &measured, threads.get()) {
            ok &= print_error("plot", &e, options.json);
        }
    }
    ok
}

/// `state` written to `dir/<name>.redb` and opened for reading.
fn on_disk(dir: &Path, name: &str, state: &InMemoryProvider) -> Result<DiskState, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("{name}.redb"));
    write_state(&path, state).map_err(|e| e.to_string())?;
    DiskState::open(&path).map_err(|e| e.to_string())
}

fn name_of(path: &Path) -> String {
    path.display().to_string()
}

/// Prints one measured block: a JSON line, or a table row.
fn print_row(m: &Measurement, json: bool) {
    if json {
        println!("{}", m.to_json());
        return;
    }
    let parallel: String = m
        .parallel
        .keys()
        .map(|&t| {
            let p = m.parallel_median(t).as_secs_f64() * 1e3;
            let stats = m.stats.get(&t);
            let re = stats.map_or(0, |s| s.engine.re_executions);
            let how = stats.map_or(String::new(), |s| {
                format!(" {}/{}", s.plan.strategy.name(), s.plan.workers)
            });
            let (speedup, bound) = (m.speedup(t), m.bound(t));
            let (low, high) = m.speedup_spread(t);
            format!(
                "  {t}t {p:.3} ms x{speedup:.2} [{low:.2}-{high:.2}]{how} (bound x{bound:.2}) re-exec {re}"
            )
        })
        .collect();
    let serial = m.serial_median().as_secs_f64() * 1e3;
    println!(
        "{:>18} {:>6} txs {:>11} gas  serial {serial:>9.3} ms{parallel}",
        m.name, m.txs, m.gas_used
    );
}

/// Prints a block that could not be measured; always false.
fn print_error(name: &str, error: &str, json: bool) -> bool {
    if json {
        println!("{}", json!({"block": name, "error": error}));
    } else {
        println!("{name:>18} error: {error}");
    }
    false
}
