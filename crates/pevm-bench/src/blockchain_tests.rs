//! `pevm-bench blockchain-tests`: ethereum/tests `BlockchainTests` replayed through the
//! serial and the parallel executor, every block's state root and the final state checked.

mod format;
mod import;
mod post_state;

use std::{
    collections::BTreeMap,
    num::NonZeroUsize,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Instant,
};

use pevm_vm::Hardfork;
use serde_json::{json, Value};

use self::{
    format::TestCase,
    import::{Head, ImportError},
};

/// How one test ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every block imported or was rejected as expected, and the final state matched.
    Passed,
    /// The first thing that went wrong: block, account and field where known.
    Failed(String),
    /// Not run: its network is one revm does not support.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// The result of one test.
#[derive(Clone, Debug)]
pub struct TestResult {
    /// The test's name.
    pub test: String,
    /// The file holding it.
    pub file: PathBuf,
    /// The file's folder, relative to the path the run was given.
    pub folder: String,
    /// The test's `network`.
    pub network: String,
    /// How it ended.
    pub outcome: Outcome,
}

impl TestResult {
    /// The result as one JSON object: `test`, `file`, `network`, `passed`, and `error` or
    /// `skipped` when it did not pass.
    pub fn to_json(&self) -> Value {
        let mut row = json!({
            "test": self.test,
            "file": self.file.display().to_string(),
            "network": self.network,
            "passed": self.outcome == Outcome::Passed,
        });
        match &self.outcome {
            Outcome::Passed => {}
            Outcome::Failed(error) => row["error"] = json!(error),
            Outcome::Skipped { reason } => row["skipped"] = json!(reason),
        }
        row
    }
}

/// The test files under `path` (itself if it is a file): `*.json` and `*.json.gz`, in path
/// order.
pub fn test_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                dirs.push(path);
            } else if name.ends_with(".json") || name.ends_with(".json.gz") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Runs every test of the file `file`, found under `root`; a file that cannot be loaded is
/// one failed result named after it.
pub fn run_file(file: &Path, root: &Path, threads: NonZeroUsize) -> Vec<TestResult> {
    let folder = match file.parent().and_then(|dir| dir.strip_prefix(root).ok()) {
        Some(relative) if !relative.as_os_str().is_empty() => relative.display().to_string(),
        _ => root
            .file_name()
            .unwrap_or(root.as_os_str())
            .to_string_lossy()
            .into_owned(),
    };
    let result = |test: String, network: String, outcome| TestResult {
        test,
        file: file.to_path_buf(),
        folder: folder.clone(),
        network,
        outcome,
    };
    match format::load(file) {
        Ok(tests) => tests
            .into_iter()
            .map(|(name, case)| {
                let outcome = run_test(&case, threads);
                result(name, case.network, outcome)
            })
            .collect(),
        Err(e) => vec![result(
            file.display().to_string(),
            "-".to_string(),
            Outcome::Failed(e),
        )],
    }
}

/// The hardfork of a test `network` at a block timestamp; `None` for a network not known or
/// not supported (Prague on: its request system calls are not implemented here).
///
/// revm has no Constantinople rule set (it went straight to Petersburg, which dropped
/// EIP-1283's net gas metering), so `Constantinople` runs under Petersburg's rules.
pub fn network_schedule(network: &str) -> Option<fn(u64) -> Hardfork> {
    Some(match network {
        "Frontier" => |_| Hardfork::Frontier,
        "Homestead" => |_| Hardfork::Homestead,
        "EIP150" => |_| Hardfork::Tangerine,
        "EIP158" => |_| Hardfork::SpuriousDragon,
        "Byzantium" => |_| Hardfork::Byzantium,
        "Constantinople" | "ConstantinopleFix" | "Petersburg" => |_| Hardfork::Petersburg,
        "Istanbul" => |_| Hardfork::Istanbul,
        "Berlin" => |_| Hardfork::Berlin,
        "London" => |_| Hardfork::London,
        "Paris" | "Merge" => |_| Hardfork::Paris,
        "Shanghai" => |_| Hardfork::Shanghai,
        "ShanghaiToCancunAtTime15k" => |t| {
            if t >= 15_000 {
                Hardfork::Cancun
            } else {
                Hardfork::Shanghai
            }
        },
        "Cancun" => |_| Hardfork::Cancun,
        _ => return None,
    })
}

/// revm 43 has no Constantinople rule set: it runs as Petersburg, which lacks EIP-1283.
const NO_CONSTANTINOPLE: &str = "revm 43 has no Constantinople rules (EIP-1283 net gas \
metering): the test ran under Petersburg's";

/// revm's create-collision check ignores storage (EIP-7610).
const NO_EIP7610: &str = "revm does not implement EIP-7610 (creating onto an address that \
has storage but no code or nonce, impossible on mainnet)";

/// Replays one test; a failure that a known revm limitation explains (and that is not a
/// parallel/serial difference) names that limitation.
fn run_test(case: &TestCase, threads: NonZeroUsize) -> Outcome {
    let Some(schedule) = network_schedule(&case.network) else {
        return Outcome::Skipped {
            reason: format!("network {} is not supported", case.network),
        };
    };
    let Err(failure) = replay(case, schedule, threads) else {
        return Outcome::Passed;
    };
    let limitation =
        if failure.engine {
            None
        } else if case.network == "Constantinople" {
            Some(NO_CONSTANTINOPLE)
        } else if case.pre.values().any(|a| {
            a.nonce.is_zero() && a.code.is_empty() && a.storage.values().any(|v| !v.is_zero())
        }) {
            Some(NO_EIP7610)
        } else {
            None
        };
    match limitation {
        Some(reason) => Outcome::Failed(format!("{} [{reason}]", failure.message)),
        None => Outcome::Failed(failure.message),
    }
}

/// Why a replay failed.
struct Failure {
    /// Block, account and field where known.
    message: String,
    /// Whether parallel execution differed from serial.
    engine: bool,
}

impl Failure {
    fn new(message: String) -> Self {
        Self {
            message,
            engine: false,
        }
    }
}

/// Replays one test: genesis, every block (valid ones must import with the header's gas
/// used, receipts, bloom and state root; ones with `expectException` must be rejected), then
/// the final state against `postState` or `postStateHash`.
fn replay(
    case: &TestCase,
    schedule: fn(u64) -> Hardfork,
    threads: NonZeroUsize,
) -> Result<(), Failure> {
    let state = format::pre_state(&case.pre);
    let mut head = Head::genesis(state, &case.genesis_rlp).map_err(Failure::new)?;
    // A valid block whose state root differed: reported unless the final state says more.
    let mut root_error = None;
    for (index, block) in case.blocks.iter().enumerate() {
        let imported = import::import(&mut head, &block.rlp, schedule, threads);
        match (imported, &block.expect_exception) {
            (Ok(()), None) => {}
            (Err(ImportError::ParallelMismatch(difference)), _) => {
                return Err(Failure {
                    message: format!("block {index}: parallel differs from serial: {difference}"),
                    engine: true,
                })
            }
            (Err(_), Some(_)) => {}
            (Ok(()), Some(exception)) => {
                return Err(Failure::new(format!(
                    "block {index}: imported, but expected {exception}"
                )))
            }
            (
                Err(ImportError::WrongStateRoot {
                    message,
                    head: next,
                }),
                None,
            ) => {
                // Carry on with the state the block produced, to name the account at fault.
                root_error.get_or_insert(format!("block {index}: {message}"));
                head = *next;
            }
            (Err(ImportError::Rejected(reason)), None) => {
                return Err(Failure::new(format!("block {index}: rejected: {reason}")))
            }
        }
    }
    let last = case.blocks.len().saturating_sub(1);
    let post = match (&case.post_state, case.post_state_hash) {
        (Some(expected), _) => post_state::compare(&head.state, expected),
        (None, Some(root)) => {
            let got = head.state.state_root();
            (got == root)
                .then_some(())
                .ok_or_else(|| format!("postStateHash: expected {root}, got {got}"))
        }
        (None, None) => Err("the test has neither postState nor postStateHash".to_string()),
    };
    let message = match (post, root_error) {
        (Ok(()), None) => return Ok(()),
        (Err(e), None) => format!("block {last}: post-state: {e}"),
        (Err(e), Some(root)) => format!("block {last}: post-state: {e} ({root})"),
        (Ok(()), Some(root)) => root,
    };
    Err(Failure::new(message))
}

/// Passed, failed and skipped counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Tests not run.
    pub skipped: usize,
}

impl Counts {
    fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Failed(_) => self.failed += 1,
            Outcome::Skipped { .. } => self.skipped += 1,
        }
    }

    fn to_json(self) -> Value {
        json!({"passed": self.passed, "failed": self.failed, "skipped": self.skipped})
    }
}

/// The counts of a run, overall, by network and by folder.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// All tests.
    pub total: Counts,
    /// By the tests' `network`.
    pub by_network: BTreeMap<String, Counts>,
    /// By the folder of the tests' files.
    pub by_folder: BTreeMap<String, Counts>,
    /// Why tests were skipped, with how many each.
    pub skip_reasons: BTreeMap<String, usize>,
}

impl Summary {
    /// Counts one result.
    pub fn add(&mut self, result: &TestResult) {
        self.total.add(&result.outcome);
        let network = self.by_network.entry(result.network.clone()).or_default();
        network.add(&result.outcome);
        let folder = self.by_folder.entry(result.folder.clone()).or_default();
        folder.add(&result.outcome);
        if let Outcome::Skipped { reason, .. } = &result.outcome {
            *self.skip_reasons.entry(reason.clone()).or_default() += 1;
        }
    }

    /// `{"summary": {"passed", "failed", "skipped", "by_network", "by_folder"}}`.
    pub fn to_json(&self) -> Value {
        let table = |counts: &BTreeMap<String, Counts>| -> Value {
            counts
                .iter()
                .map(|(name, c)| (name.clone(), c.to_json()))
                .collect()
        };
        json!({"summary": {
            "passed": self.total.passed,
            "failed": self.total.failed,
            "skipped": self.total.skipped,
            "by_network": table(&self.by_network),
            "by_folder": table(&self.by_folder),
            "skip_reasons": self.skip_reasons,
        }})
    }
}

/// The `blockchain-tests` command: runs every test file under `paths`, prints a line per
/// failing test (or with `json` an object per test) and the summary; success only when
/// nothing failed.
pub fn command(paths: &[PathBuf], json: bool, threads: NonZeroUsize) -> ExitCode {
    let start = Instant::now();
    let mut summary = Summary::default();
    for root in paths {
        let files = match test_files(root) {
            Ok(files) => files,
            Err(e) => {
                let result = TestResult {
                    test: root.display().to_string(),
                    file: root.clone(),
                    folder: root.display().to_string(),
                    network: "-".to_string(),
                    outcome: Outcome::Failed(e),
                };
                report(&result, json, &mut summary);
                continue;
            }
        };
        for file in files {
            for result in run_file(&file, root, threads) {
                report(&result, json, &mut summary);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    if json {
        let mut line = summary.to_json();
        line["summary"]["elapsed_s"] = json!((elapsed * 1e3).round() / 1e3);
        println!("{line}");
    } else {
        print_summary(&summary, elapsed);
    }
    if summary.total.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints a result as the command does and counts it.
fn report(result: &TestResult, json: bool, summary: &mut Summary) {
    summary.add(result);
    if json {
        println!("{}", result.to_json());
        return;
    }
    let Outcome::Failed(error) = &result.outcome else {
        return;
    };
    println!(
        "FAIL {} [{}] ({}): {error}",
        result.test,
        result.network,
        result.file.display()
    );
}

/// The human-readable summary: per network, per folder, skip reasons and the total.
fn print_summary(summary: &Summary, elapsed: f64) {
    let rows = |title: &str, counts: &BTreeMap<String, Counts>| {
        println!(
            "{title:<58} {:>7} {:>7} {:>7}",
            "passed", "failed", "skipped"
        );
        for (name, c) in counts {
            println!(
                "  {name:<56} {:>7} {:>7} {:>7}",
                c.passed, c.failed, c.skipped
            );
        }
    };
    rows("network", &summary.by_network);
    rows("folder", &summary.by_folder);
    for (reason, count) in &summary.skip_reasons {
        println!("skipped {count}: {reason}");
    }
    let t = summary.total;
    println!(
        "{} tests: {} passed, {} failed, {} skipped in {elapsed:.1} s",
        t.passed + t.failed + t.skipped,
        t.passed,
        t.failed,
        t.skipped
    );
}
