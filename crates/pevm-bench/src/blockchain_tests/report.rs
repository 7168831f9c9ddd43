//! The `blockchain-tests` command: every test file run in parallel, a line (or a JSON row)
//! per test, a progress bar on a terminal, and the summary with counts per fork.

use std::{
    collections::BTreeMap,
    io::IsTerminal,
    num::NonZeroUsize,
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::{run_file, test_files, Outcome, TestResult};

/// Passed and failed counts; every test runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed, those a known revm limitation explains included.
    pub failed: usize,
}

impl Counts {
    fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Failed(_) | Outcome::Limited { .. } => self.failed += 1,
        }
    }

    fn to_json(self) -> Value {
        json!({"passed": self.passed, "failed": self.failed})
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
    /// Failures a known revm limitation explains, with how many each.
    pub limitations: BTreeMap<&'static str, usize>,
}

impl Summary {
    /// Counts one result.
    pub fn add(&mut self, result: &TestResult) {
        self.total.add(&result.outcome);
        let network = self.by_network.entry(result.network.clone()).or_default();
        network.add(&result.outcome);
        let folder = self.by_folder.entry(result.folder.clone()).or_default();
        folder.add(&result.outcome);
        if let Outcome::Limited { limitation, .. } = &result.outcome {
            *self.limitations.entry(limitation).or_default() += 1;
        }
    }

    /// `{"summary": {"passed", "failed", "by_network", "by_folder", "limitations"}}`.
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
            "by_network": table(&self.by_network),
            "by_folder": table(&self.by_folder),
            "limitations": self.limitations,
        }})
    }
}

/// The `blockchain-tests` command: runs every test file under `paths`, prints a line per
/// failing test (or with `json` an object per test) and the summary, with its progress on
/// stderr; success only when every failure is one a known revm limitation explains.
pub fn command(paths: &[PathBuf], json: bool, threads: NonZeroUsize) -> ExitCode {
    let start = Instant::now();
    let mut summary = Summary::default();
    let mut roots = Vec::new();
    for root in paths {
        match test_files(root) {
            Ok(files) => roots.push((root, files)),
            Err(e) => {
                let result = TestResult {
                    test: root.display().to_string(),
                    file: root.clone(),
                    folder: root.display().to_string(),
                    network: "-".to_string(),
                    outcome: Outcome::Failed(e),
                };
                report(&result, json, &mut summary);
            }
        }
    }
    let total = roots.iter().map(|(_, files)| files.len()).sum();
    let mut progress = Progress::new(total);
    for (root, files) in roots {
        for file in files {
            for result in run_file(&file, root, threads) {
                progress.suspend(|| report(&result, json, &mut summary));
            }
            progress.file_done(&summary.total);
        }
    }
    progress.finish();
    let elapsed = start.elapsed().as_secs_f64();
    if json {
        let mut line = summary.to_json();
        line["summary"]["elapsed_s"] = json!((elapsed * 1e3).round() / 1e3);
        println!("{line}");
    } else {
        print_summary(&summary, elapsed);
    }
    let limited: usize = summary.limitations.values().sum();
    if summary.total.failed == limited {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A run's progress on stderr: a bar on a terminal, otherwise a line every
/// [`Progress::EVERY`].
struct Progress {
    bar: ProgressBar,
    terminal: bool,
    total: usize,
    done: usize,
    last_line: Instant,
}

impl Progress {
    /// How often a line is printed when stderr is not a terminal.
    const EVERY: Duration = Duration::from_secs(15);

    fn new(total: usize) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = if terminal {
            let style =
                ProgressStyle::with_template("{bar:40} {pos}/{len} files  {msg}  eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::new(total as u64).with_style(style)
        } else {
            ProgressBar::hidden()
        };
        Self {
            bar,
            terminal,
            total,
            done: 0,
            last_line: Instant::now(),
        }
    }

    /// Prints through `f` without tearing the bar.
    fn suspend(&self, f: impl FnOnce()) {
        self.bar.suspend(f);
    }

    /// One more file done; `counts` so far.
    fn file_done(&mut self, counts: &Counts) {
        self.done += 1;
        let message = format!("{} passed, {} failed", counts.passed, counts.failed);
        if self.terminal {
            self.bar.set_message(message);
            self.bar.inc(1);
        } else if self.last_line.elapsed() >= Self::EVERY {
            self.last_line = Instant::now();
            eprintln!(
                "blockchain-tests: {}/{} files, {message}",
                self.done, self.total
            );
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Prints a result as the command does and counts it.
fn report(result: &TestResult, json: bool, summary: &mut Summary) {
    summary.add(result);
    if json {
        println!("{}", result.to_json());
        return;
    }
    let error = match &result.outcome {
        Outcome::Passed => return,
        Outcome::Failed(error) => error.clone(),
        Outcome::Limited {
            message,
            limitation,
        } => format!("{message} [{limitation}]"),
    };
    println!(
        "FAIL {} [{}] ({}): {error}",
        result.test,
        result.network,
        result.file.display()
    );
}

/// The human-readable summary: per network, per folder, known limitations and the total.
fn print_summary(summary: &Summary, elapsed: f64) {
    let rows = |title: &str, counts: &BTreeMap<String, Counts>| {
        println!("{title:<58} {:>7} {:>7}", "passed", "failed");
        for (name, c) in counts {
            println!("  {name:<56} {:>7} {:>7}", c.passed, c.failed);
        }
    };
    rows("network", &summary.by_network);
    rows("folder", &summary.by_folder);
    for (limitation, count) in &summary.limitations {
        println!("failed {count} of them because {limitation}");
    }
    let t = summary.total;
    println!(
        "{} tests: {} passed, {} failed in {elapsed:.1} s",
        t.passed + t.failed,
        t.passed,
        t.failed
    );
}
