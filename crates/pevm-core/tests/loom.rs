//! Loom models of the Block-STM scheduler's state transitions.
//!
//! Two loom threads run the executor's worker loop (`next_task`, `finish_execution`,
//! `add_dependency`, `try_validation_abort` + `finish_validation`) over a toy block, and loom
//! explores their interleavings up to a preemption bound. In the toy block each transaction
//! writes one location of its own; optionally it reads the location of every lower
//! transaction (a toy multi-version memory with ESTIMATE markers, like `MvMemory`), waits for
//! a known dependency first, or fails validation at given versions. Every interleaving must
//! satisfy:
//! - the loop terminates with `done()` true, with no task left in hand but a validation of a
//!   committed transaction (a livelock shows up as a panic after a bounded number of rounds,
//!   not as a hang);
//! - no transaction is executed by two threads at once, and its incarnations are handed out
//!   once each, in order (0, 1, 2, ...);
//! - every transaction's last incarnation handed out was executed to the end (a transaction
//!   suspended by `add_dependency` is woken up and re-executed: no lost wake-up);
//! - that last execution was then validated successfully, by a validation that started after
//!   the execution finished;
//! - when a transaction's last execution wrote a new location, every higher transaction was
//!   validated successfully after it;
//! - with reads, the result is serial: the last execution of every transaction read the last
//!   incarnation of every lower transaction;
//! - transactions are committed (`try_commit`, by one worker at a time, as the executor does
//!   after each validation and when idle) once each, in block order, each with its last
//!   incarnation: when committed, it had read every lower transaction's last write, and it
//!   never ran again; every transaction is committed by the time the loop ends.
//!
//! Run with `RUSTFLAGS="--cfg loom -C debug-assertions" cargo test -p pevm-core --test loom
//! --release --target-dir target/loom -- --nocapture` (debug assertions turn on the
//! scheduler's own status checks). `LOOM_MAX_PREEMPTIONS` overrides the preemption bound.
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering};
use std::sync::{Mutex as StdMutex, MutexGuard as StdMutexGuard};
use std::time::Instant;

use loom::sync::{Arc, Mutex};
use pevm_core::{Commit, Incarnation, Scheduler, Task, TxIdx, Version};

/// Rounds of the worker loop after which a worker gives up and reports a livelock.
const MAX_ROUNDS: usize = 48;

/// Preemption bound used when `LOOM_MAX_PREEMPTIONS` is unset: 3 finds, with debug
/// assertions, a `try_validation_abort` that ignores the status (4 without them).
const DEFAULT_PREEMPTIONS: usize = 3;

/// A toy block.
#[derive(Clone, Copy, Debug)]
struct Spec {
    block_size: usize,
    /// Whether each transaction reads the location of every lower transaction.
    reads_lower: bool,
    /// Versions whose validation fails anyway (as if they read something that changed).
    invalid: &'static [Version],
    /// `(tx, blocking)` pairs: incarnation 0 of `tx` first waits for `blocking`, like the
    /// executor does with `Vm::known_dependency`.
    dependencies: &'static [(TxIdx, TxIdx)],
    /// Whether every incarnation reports a new location (else only the first write does).
    always_new_location: bool,
}

/// A transaction's location in the toy multi-version memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    /// Not written yet: readers see the storage value.
    Storage,
    /// Written by this incarnation.
    Written(Incarnation),
    /// The writer was aborted: readers must wait for its next incarnation.
    Estimate,
}

/// One transaction: its toy memory location and what happened to it, as observed by the
/// workers. Kept in std types, which loom does not see: they add no interleavings, and
/// loom runs one thread at a time anyway (no std lock is held across a scheduler call).
#[derive(Debug)]
struct TxLog {
    /// Its location in the toy memory.
    memory: Entry,
    /// What its last recorded execution read, one entry per lower transaction.
    reads: Vec<Entry>,
    /// Incarnation being executed right now, if any.
    executing: Option<Incarnation>,
    /// Every incarnation handed out in an execution task, in order.
    handed: Vec<Incarnation>,
    /// Incarnations suspended by a successful `add_dependency`.
    suspended: Vec<Incarnation>,
    /// Executions carried out to the end: incarnation, time it finished, new location?
    finished: Vec<(Incarnation, usize, bool)>,
    /// Validations that passed: incarnation, time they started.
    passed: Vec<(Incarnation, usize)>,
    /// The incarnation committed, if any.
    committed: Option<Incarnation>,
}

impl Default for TxLog {
    fn default() -> Self {
        Self {
            memory: Entry::Storage,
            reads: Vec::new(),
            executing: None,
            handed: Vec::new(),
            suspended: Vec::new(),
            finished: Vec::new(),
            passed: Vec::new(),
            committed: None,
        }
    }
}

/// The scheduler, the toy block and the log shared by the workers of one interleaving.
struct Model {
    spec: Spec,
    scheduler: Scheduler,
    logs: Vec<StdMutex<TxLog>>,
    /// Held by the worker committing, as the executor's commit lock.
    committer: Mutex<()>,
    /// Logical clock ordering the logged events.
    clock: StdAtomicUsize,
    /// Most rounds of the worker loop any worker needed, over every interleaving.
    max_rounds: &'static StdAtomicUsize,
}

impl Model {
    fn new(spec: Spec, max_rounds: &'static StdAtomicUsize) -> Self {
        Self {
            max_rounds,
            spec,
            scheduler: Scheduler::new(spec.block_size),
            logs: (0..spec.block_size).map(|_| StdMutex::default()).collect(),
            committer: Mutex::new(()),
            clock: StdAtomicUsize::new(0),
        }
    }

    fn log(&self, tx_idx: TxIdx) -> StdMutexGuard<'_, TxLog> {
        self.logs[tx_idx].lock().unwrap()
    }

    fn tick(&self) -> usize {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    /// What `tx_idx` reads now: every lower location, or the lowest ESTIMATE it meets.
    fn read(&self, tx_idx: TxIdx) -> Result<Vec<Entry>, TxIdx> {
        if !self.spec.reads_lower {
            return Ok(Vec::new());
        }
        (0..tx_idx)
            .map(|lower| match self.log(lower).memory {
                Entry::Estimate => Err(lower),
                entry => Ok(entry),
            })
            .collect()
    }

    /// The executor's worker loop, bounded.
    fn work(&self) {
        let mut task = None;
        let mut rounds = 0;
        while !self.scheduler.done() {
            rounds += 1;
            assert!(
                rounds <= MAX_ROUNDS,
                "livelock: {rounds} rounds, holding {task:?}"
            );
            task = match task {
                Some(Task::Execute(version)) => self.execute(version),
                Some(Task::Validate(version)) => self.validate(version).or_else(|| self.commit()),
                None => {
                    let next = self.scheduler.next_task().or_else(|| self.commit());
                    if next.is_none() {
                        // Let the other thread progress (the executor spins, yields, sleeps).
                        loom::thread::yield_now();
                    }
                    next
                }
            };
        }
        if let Some(task) = task {
            let Task::Validate(version) = task else {
                panic!("done while {task:?} was in hand");
            };
            assert!(
                self.log(version.tx_idx).committed.is_some(),
                "done while validating {version:?}, not committed"
            );
        }
        self.max_rounds.fetch_max(rounds, Ordering::Relaxed);
    }

    /// Toy execution of `version`, as `Block::try_execute` does it.
    fn execute(&self, version: Version) -> Option<Task> {
        let tx_idx = version.tx_idx;
        {
            let mut log = self.log(tx_idx);
            assert_eq!(
                version.incarnation as usize,
                log.handed.len(),
                "{version:?} handed out after incarnations {:?}",
                log.handed
            );
            log.handed.push(version.incarnation);
        }
        if version.incarnation == 0 {
            let known = self.spec.dependencies.iter().find(|&&(tx, _)| tx == tx_idx);
            if let Some(&(_, blocking)) = known {
                if self.scheduler.add_dependency(tx_idx, blocking) {
                    self.log(tx_idx).suspended.push(version.incarnation);
                    return None;
                }
            }
        }
        loop {
            {
                let mut log = self.log(tx_idx);
                assert_eq!(
                    log.executing, None,
                    "{version:?} executed while another thread executes the same transaction"
                );
                log.executing = Some(version.incarnation);
            }
            // The execution itself: nothing that loom sees. It ends (writes recorded) before
            // `finish_execution`, which lets other threads validate and abort it.
            let reads = self.read(tx_idx);
            let mut log = self.log(tx_idx);
            log.executing = None;
            match reads {
                Ok(reads) => {
                    let wrote_new_location =
                        log.memory == Entry::Storage || self.spec.always_new_location;
                    log.memory = Entry::Written(version.incarnation);
                    log.reads = reads;
                    let now = self.tick();
                    log.finished
                        .push((version.incarnation, now, wrote_new_location));
                    drop(log);
                    return self.scheduler.finish_execution(version, wrote_new_location);
                }
                Err(blocking) => {
                    drop(log);
                    if self.scheduler.add_dependency(tx_idx, blocking) {
                        self.log(tx_idx).suspended.push(version.incarnation);
                        return None;
                    }
                    // `blocking` already re-executed: its ESTIMATE is gone, try again.
                }
            }
        }
    }

    /// Toy validation of `version`, as `Block::validate` does it: re-reads the read set of
    /// the transaction's last recorded execution.
    fn validate(&self, version: Version) -> Option<Task> {
        let tx_idx = version.tx_idx;
        // The wave is read first: the validation starts after it.
        let wave = self.scheduler.wave();
        let started = self.tick();
        let recorded = self.log(tx_idx).reads.clone();
        let valid = !self.spec.invalid.contains(&version) && self.read(tx_idx) == Ok(recorded);
        if valid {
            self.log(tx_idx).passed.push((version.incarnation, started));
            self.scheduler.record_passed_validation(version, wave);
        }
        let aborted = !valid && self.scheduler.try_validation_abort(version);
        if aborted {
            let mut log = self.log(tx_idx);
            if log.memory != Entry::Storage {
                log.memory = Entry::Estimate;
            }
        }
        self.scheduler.finish_validation(tx_idx, aborted)
    }

    /// Commits what is final, as `Block::commit` does, validating a transaction first where
    /// it must; returns the re-execution of one found stale.
    fn commit(&self) -> Option<Task> {
        let _committer = self.committer.try_lock().ok()?;
        loop {
            match self.scheduler.try_commit() {
                Commit::Committed(tx_idx) => self.committed(tx_idx),
                Commit::Validate(version) => {
                    if let Some(task) = self.validate(version) {
                        return Some(task);
                    }
                }
                Commit::NotReady => return None,
            }
        }
    }

    /// Checks and logs the commit of `tx_idx`.
    fn committed(&self, tx_idx: TxIdx) {
        let lower: Vec<_> = (0..tx_idx).map(|lower| self.log(lower).memory).collect();
        let mut log = self.log(tx_idx);
        let Entry::Written(incarnation) = log.memory else {
            panic!("tx {tx_idx} committed unwritten: {log:?}");
        };
        assert!(
            (0..tx_idx).all(|lower| self.log(lower).committed.is_some()),
            "tx {tx_idx} committed before a lower one"
        );
        assert_eq!(log.committed, None, "tx {tx_idx} committed twice");
        assert_eq!(log.executing, None, "tx {tx_idx} committed while executing");
        if self.spec.reads_lower {
            assert_eq!(log.reads, lower, "tx {tx_idx} committed with stale reads");
        }
        log.committed = Some(incarnation);
    }

    /// The invariants of a finished block.
    fn check(&self) {
        assert_eq!(self.scheduler.committed(), self.spec.block_size);
        assert_eq!(self.scheduler.try_commit(), Commit::NotReady);
        assert!(self.scheduler.done());
        assert_eq!(
            self.scheduler.next_task(),
            None,
            "task handed out after done"
        );
        let logs: Vec<_> = (0..self.spec.block_size).map(|tx| self.log(tx)).collect();
        // First what each transaction must satisfy on its own.
        for (tx_idx, log) in logs.iter().enumerate() {
            let &last = log
                .handed
                .last()
                .unwrap_or_else(|| panic!("tx {tx_idx} never executed: {log:?}"));
            let &(executed, finished_at, _) = log
                .finished
                .last()
                .unwrap_or_else(|| panic!("tx {tx_idx} never finished executing: {log:?}"));
            assert_eq!(
                executed, last,
                "tx {tx_idx}: last incarnation handed out never finished (lost wake-up?): {log:?}"
            );
            assert!(
                log.suspended.iter().all(|&suspended| suspended < last),
                "tx {tx_idx} suspended and never resumed: {log:?}"
            );
            assert_eq!(log.memory, Entry::Written(last), "tx {tx_idx}: {log:?}");
            assert_eq!(
                log.committed,
                Some(last),
                "tx {tx_idx} ran after its commit: {log:?}"
            );
            assert!(
                !self.spec.invalid.contains(&Version::new(tx_idx, last)),
                "tx {tx_idx} ends with an invalid incarnation: {log:?}"
            );
            assert!(
                log.passed
                    .iter()
                    .any(|&(incarnation, at)| incarnation == last && at > finished_at),
                "tx {tx_idx}: last execution never validated after it finished: {log:?}"
            );
        }
        // Then what depends on other transactions.
        for (tx_idx, log) in logs.iter().enumerate() {
            if self.spec.reads_lower {
                let serial: Vec<_> = logs[..tx_idx].iter().map(|lower| lower.memory).collect();
                assert_eq!(log.reads, serial, "tx {tx_idx} kept stale reads: {logs:?}");
            }
            let &(_, finished_at, wrote_new_location) = log.finished.last().unwrap();
            if wrote_new_location {
                for (higher, higher_log) in logs.iter().enumerate().skip(tx_idx + 1) {
                    let &higher_last = higher_log.handed.last().unwrap();
                    assert!(
                        higher_log
                            .passed
                            .iter()
                            .any(
                                |&(incarnation, at)| incarnation == higher_last && at > finished_at
                            ),
                        "tx {higher} not validated after tx {tx_idx} wrote a new location: \
                         {log:?} / {higher_log:?}"
                    );
                }
            }
        }
    }
}

/// Explores every interleaving (within the preemption bound) of two workers on `spec`.
fn check(name: &str, spec: Spec) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(DEFAULT_PREEMPTIONS));
    if std::env::var_os("LOOM_MAX_BRANCHES").is_none() {
        // Room for `MAX_ROUNDS` rounds of both workers, so that a livelock reports as such.
        builder.max_branches = 5_000;
    }
    let preemptions = builder.preemption_bound;
    let iterations: &'static StdAtomicUsize = Box::leak(Box::default());
    let max_rounds: &'static StdAtomicUsize = Box::leak(Box::default());
    let start = Instant::now();
    builder.check(move || {
        iterations.fetch_add(1, Ordering::Relaxed);
        let model = Arc::new(Model::new(spec, max_rounds));
        let helper = {
            let model = model.clone();
            loom::thread::spawn(move || model.work())
        };
        model.work();
        helper.join().unwrap();
        model.check();
    });
    println!(
        "{name}: {} interleavings in {:.1?} (preemption bound {preemptions:?}, at most {} rounds \
         per worker)",
        iterations.load(Ordering::Relaxed),
        start.elapsed(),
        max_rounds.load(Ordering::Relaxed)
    );
}

/// Two independent transactions: plain execute, validate, done detection.
#[test]
fn independent() {
    check(
        "independent",
        Spec {
            block_size: 2,
            reads_lower: false,
            invalid: &[],
            dependencies: &[],
            always_new_location: true,
        },
    );
}

/// Tx 1's first incarnation fails validation: exactly one validator aborts it
/// (`try_validation_abort`), it is re-executed, and the stale validations are harmless.
#[test]
fn validation_abort() {
    check(
        "validation_abort",
        Spec {
            block_size: 2,
            reads_lower: false,
            invalid: const { &[Version::new(1, 0)] },
            dependencies: &[],
            always_new_location: false,
        },
    );
}

/// Tx 1 waits for tx 0 (`add_dependency`), racing with tx 0's `finish_execution`: the wake-up
/// is never lost, or `add_dependency` reports that tx 0 already executed.
#[test]
fn dependency() {
    check(
        "dependency",
        Spec {
            block_size: 2,
            reads_lower: false,
            invalid: &[],
            dependencies: &[(1, 0)],
            always_new_location: true,
        },
    );
}

/// Tx 1 waits for tx 0 while tx 0's first incarnation fails validation: `add_dependency` meets
/// tx 0 executing, executed, aborting or ready again; every higher transaction is revalidated
/// after tx 0's re-execution writes a new location.
#[test]
fn dependency_on_aborted() {
    check(
        "dependency_on_aborted",
        Spec {
            block_size: 2,
            reads_lower: false,
            invalid: const { &[Version::new(0, 0)] },
            dependencies: &[(1, 0)],
            always_new_location: true,
        },
    );
}

/// Three transactions: tx 2 waits for tx 1 and tx 1's first incarnation fails validation.
#[test]
fn three_txs() {
    check(
        "three_txs",
        Spec {
            block_size: 3,
            reads_lower: false,
            invalid: const { &[Version::new(1, 0)] },
            dependencies: &[(2, 1)],
            always_new_location: false,
        },
    );
}

/// Txs 1 and 2 both wait for tx 0: the worker that finishes tx 0 goes on with tx 1 itself
/// and hands tx 2 back to the execution index, or either finds tx 0 already executed.
#[test]
fn two_dependents() {
    check(
        "two_dependents",
        Spec {
            block_size: 3,
            reads_lower: false,
            invalid: &[],
            dependencies: &[(1, 0), (2, 0)],
            always_new_location: true,
        },
    );
}

/// Tx 1 reads tx 0's location: it may read storage or tx 0's write, and is revalidated (and
/// re-executed when stale) once tx 0 writes; the result must be serial.
#[test]
fn reads() {
    check(
        "reads",
        Spec {
            block_size: 2,
            reads_lower: true,
            invalid: &[],
            dependencies: &[],
            always_new_location: false,
        },
    );
}

/// Each transaction reads every lower one and tx 0's first incarnation fails validation:
/// its location becomes an ESTIMATE, readers block on it (`add_dependency` after a blocked
/// execution, or retry when it already re-executed), stale readers are aborted; the result
/// must be serial.
#[test]
fn reads_with_abort() {
    check(
        "reads_with_abort",
        Spec {
            block_size: 3,
            reads_lower: true,
            invalid: const { &[Version::new(0, 0)] },
            dependencies: &[],
            always_new_location: false,
        },
    );
}
