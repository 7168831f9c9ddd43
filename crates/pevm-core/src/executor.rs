//! The [`Executor`]: Block-STM's worker loop over a [`Pool`], the multi-version memory and the
//! scheduler, kept from one block to the next.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, TryLockError};
use std::thread;

use crate::{
    lock, Commit, ExecOutcome, MvKey, MvMemory, Pool, Scheduler, Task, TxIdx, Version, Vm,
};

/// Why a block could not be executed.
#[derive(Debug)]
pub enum ExecuteError<E> {
    /// The VM reported an unrecoverable error while executing `tx_idx`.
    Vm {
        /// The transaction being executed.
        tx_idx: TxIdx,
        /// The VM's error.
        error: E,
    },
    /// A panic, inside the VM (with the transaction) or inside the engine (without).
    Panic {
        /// The transaction being executed, if the panic came from the VM.
        tx_idx: Option<TxIdx>,
        /// The panic message.
        message: String,
    },
}

impl<E> ExecuteError<E> {
    /// The transaction the error belongs to; engine errors sort last.
    fn rank(&self) -> TxIdx {
        match self {
            Self::Vm { tx_idx, .. } => *tx_idx,
            Self::Panic { tx_idx, .. } => tx_idx.unwrap_or(TxIdx::MAX),
        }
    }
}

impl<E: fmt::Display> fmt::Display for ExecuteError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vm { tx_idx, error } => write!(f, "transaction {tx_idx} failed: {error}"),
            Self::Panic {
                tx_idx: Some(tx_idx),
                message,
            } => write!(f, "transaction {tx_idx} panicked: {message}"),
            Self::Panic {
                tx_idx: None,
                message,
            } => write!(f, "execution engine panicked: {message}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for ExecuteError<E> {}

/// What a finished block hands back: outputs in transaction order and counters (the final
/// memory stays in the [`Executor`] until the next block).
#[derive(Debug)]
pub struct BlockResult<O> {
    /// Output of each transaction, in index order.
    pub outputs: Vec<O>,
    /// Counters of the run.
    pub stats: ExecStats,
}

/// Counters of one block run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecStats {
    /// Calls to [`Vm::execute`].
    pub executions: u64,
    /// Executions beyond one per transaction (`executions - block_size`).
    pub re_executions: u64,
    /// Validation tasks carried out.
    pub validations: u64,
    /// Executions that read an ESTIMATE ([`ExecOutcome::Blocked`]).
    pub estimate_aborts: u64,
    /// Validations that failed and aborted their incarnation.
    pub validation_aborts: u64,
    /// First incarnations that waited for a known dependency ([`Vm::known_dependency`]).
    pub dependency_waits: u64,
}

impl ExecStats {
    /// Adds another worker's counters to these.
    fn absorb(&mut self, other: Self) {
        self.executions += other.executions;
        self.re_executions += other.re_executions;
        self.validations += other.validations;
        self.estimate_aborts += other.estimate_aborts;
        self.validation_aborts += other.validation_aborts;
        self.dependency_waits += other.dependency_waits;
    }
}

/// Idle rounds spent spinning before a worker starts yielding its core.
const SPIN_ROUNDS: u32 = 64;

/// Idle rounds (spinning included) after which a worker sleeps between looks for work, so
/// that a block with little parallelism (a dependency chain) does not burn every core.
const YIELD_ROUNDS: u32 = 256;

/// How long an idle worker sleeps between looks once it has yielded long enough.
const IDLE_SLEEP: std::time::Duration = std::time::Duration::from_micros(20);

/// A long-lived Block-STM executor: its worker threads and its multi-version memory are
/// created once and reused from one block to the next, so a block spawns no thread and,
/// once blocks of its size have run, makes no large allocation.
pub struct Executor<K, V> {
    pool: Pool,
    memory: MvMemory<K, V>,
    scheduler: Scheduler,
}

impl<K, V> fmt::Debug for Executor<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("concurrency", &self.pool.concurrency())
            .finish_non_exhaustive()
    }
}

impl<K, V> Executor<K, V>
where
    K: MvKey,
    V: Clone + Send + Sync,
{
    /// An executor with `concurrency` workers (see [`Pool::new`]).
    pub fn new(concurrency: usize) -> Self {
        Self {
            pool: Pool::new(concurrency),
            memory: MvMemory::new(0),
            scheduler: Scheduler::new(0),
        }
    }

    /// Number of workers, the calling thread included.
    pub fn concurrency(&self) -> usize {
        self.pool.concurrency()
    }

    /// The workers, for parallel work outside Block-STM.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The multi-version memory of the last block executed (its final values, write and read
    /// sets).
    pub fn memory(&self) -> &MvMemory<K, V> {
        &self.memory
    }

    /// Runs a block of `block_size` transactions of `vm` on `min(concurrency, block_size)`
    /// workers. Block size 0 returns immediately.
    pub fn execute<M>(
        &mut self,
        vm: &M,
        block_size: usize,
    ) -> Result<BlockResult<M::Output>, ExecuteError<M::Error>>
    where
        M: Vm<Key = K, Value = V>,
    {
        self.execute_on(vm, block_size, self.pool.concurrency())
    }

    /// [`Self::execute`] on at most `workers` workers (at least one).
    #[allow(clippy::type_complexity)] // Spelled out on purpose: this is the crate's entry point.
    pub fn execute_on<M>(
        &mut self,
        vm: &M,
        block_size: usize,
        workers: usize,
    ) -> Result<BlockResult<M::Output>, ExecuteError<M::Error>>
    where
        M: Vm<Key = K, Value = V>,
    {
        let mut outputs = Vec::with_capacity(block_size);
        let stats = self.execute_committing(vm, block_size, workers, &mut |_, output| {
            outputs.push(output);
        })?;
        Ok(BlockResult { outputs, stats })
    }

    /// [`Self::execute_on`], handing each transaction's output to `commit` in block order
    /// as soon as it is final, while later transactions still run: on whichever worker
    /// finds it final, one at a time. On an error, the outputs handed on so far are not the
    /// block's.
    pub fn execute_committing<M>(
        &mut self,
        vm: &M,
        block_size: usize,
        workers: usize,
        commit: &mut (dyn FnMut(TxIdx, M::Output) + Send),
    ) -> Result<ExecStats, ExecuteError<M::Error>>
    where
        M: Vm<Key = K, Value = V>,
    {
        self.memory.reset(block_size, &self.pool);
        self.scheduler.reset(block_size);
        let block = Block {
            vm,
            memory: &self.memory,
            scheduler: &self.scheduler,
            outputs: (0..block_size).map(|_| Mutex::new(None)).collect(),
            commit: Mutex::new(commit),
            error: Mutex::new(None),
        };
        let workers = workers.min(block_size);
        let mut stats = ExecStats::default();
        if workers > 0 {
            for worker in self.pool.run_workers(workers, || block.run_worker()) {
                stats.absorb(worker);
            }
        }
        stats.re_executions = stats.executions.saturating_sub(block_size as u64);
        if let Some(error) = lock(&block.error).take() {
            return Err(error);
        }
        match self.scheduler.committed() {
            committed if committed == block_size => Ok(stats),
            tx_idx => Err(ExecuteError::Panic {
                tx_idx: Some(tx_idx),
                message: "block finished without committing this transaction".into(),
            }),
        }
    }
}

/// State shared by the workers of one block.
struct Block<'a, V: Vm> {
    vm: &'a V,
    memory: &'a MvMemory<V::Key, V::Value>,
    scheduler: &'a Scheduler,
    /// Per transaction: the output of its latest execution, until committed. Boxed: the
    /// vector is allocated for every block, and written through on the thread that starts the
    /// block, where a few hundred bytes per transaction would cost milliseconds.
    outputs: Vec<Mutex<Option<Box<V::Output>>>>,
    /// Where committed outputs go, in block order; held by the worker committing.
    commit: Mutex<&'a mut (dyn FnMut(TxIdx, V::Output) + Send)>,
    /// The error that halted the block, if any.
    error: Mutex<Option<ExecuteError<V::Error>>>,
}

impl<'a, V: Vm> Block<'a, V> {
    /// One worker: carries out tasks until the block is done; never panics.
    fn run_worker(&self) -> ExecStats {
        let mut stats = ExecStats::default();
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| self.work(&mut stats))) {
            self.fail(ExecuteError::Panic {
                tx_idx: None,
                message: panic_message(payload.as_ref()),
            });
        }
        stats
    }

    fn work(&self, stats: &mut ExecStats) {
        let mut worker = self.vm.worker(self.memory);
        let mut task = None;
        let mut idle_rounds = 0;
        while !self.scheduler.done() {
            task = match task {
                Some(Task::Execute(version)) => self.try_execute(&mut worker, version, stats),
                // A validation may have made the lowest transactions not committed final.
                Some(Task::Validate(version)) => {
                    self.validate(version, stats).or_else(|| self.commit(stats))
                }
                None => {
                    let next = self.scheduler.next_task().or_else(|| self.commit(stats));
                    if next.is_some() {
                        idle_rounds = 0;
                    } else {
                        idle_rounds += 1;
                        if idle_rounds < SPIN_ROUNDS {
                            std::hint::spin_loop();
                        } else if idle_rounds < YIELD_ROUNDS {
                            thread::yield_now();
                        } else {
                            thread::sleep(IDLE_SLEEP);
                        }
                    }
                    next
                }
            };
        }
    }

    /// Executes `version` until it finishes, suspends on a dependency, or fails.
    fn try_execute(
        &self,
        worker: &mut V::Worker<'a>,
        version: Version,
        stats: &mut ExecStats,
    ) -> Option<Task> {
        let tx_idx = version.tx_idx;
        if version.incarnation == 0 {
            let known = self.vm.known_dependency(tx_idx).filter(|&dep| dep < tx_idx);
            if known.is_some_and(|dep| self.scheduler.add_dependency(tx_idx, dep)) {
                stats.dependency_waits += 1;
                return None;
            }
        }
        loop {
            stats.executions += 1;
            let outcome = catch_unwind(AssertUnwindSafe(|| self.vm.execute(worker, version)));
            match outcome {
                Ok(ExecOutcome::Done {
                    reads,
                    writes,
                    output,
                }) => {
                    *lock(&self.outputs[tx_idx]) = Some(Box::new(output));
                    let wrote_new_location = self.memory.record(version, reads, writes);
                    return self.scheduler.finish_execution(version, wrote_new_location);
                }
                Ok(ExecOutcome::Blocked { blocking }) => {
                    stats.estimate_aborts += 1;
                    if blocking >= tx_idx {
                        // Waiting on itself or a later transaction would never resume.
                        self.fail(ExecuteError::Panic {
                            tx_idx: Some(tx_idx),
                            message: format!("VM reported blocking on transaction {blocking}"),
                        });
                        return None;
                    }
                    if self.scheduler.add_dependency(tx_idx, blocking) {
                        return None;
                    }
                    // `blocking` already re-executed: its ESTIMATE is gone, try again.
                }
                Ok(ExecOutcome::Fatal(error)) => {
                    self.fail(ExecuteError::Vm { tx_idx, error });
                    return None;
                }
                Err(payload) => {
                    self.fail(ExecuteError::Panic {
                        tx_idx: Some(tx_idx),
                        message: panic_message(payload.as_ref()),
                    });
                    return None;
                }
            }
        }
    }

    /// Hands on every output that is final, unless another worker is at it; returns the
    /// re-execution of a transaction found stale when every lower one was committed.
    fn commit(&self, stats: &mut ExecStats) -> Option<Task> {
        let mut commit = match self.commit.try_lock() {
            Ok(commit) => commit,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        loop {
            match self.scheduler.try_commit() {
                Commit::Committed(tx_idx) => match lock(&self.outputs[tx_idx]).take() {
                    Some(output) => commit(tx_idx, *output),
                    None => {
                        self.fail(ExecuteError::Panic {
                            tx_idx: Some(tx_idx),
                            message: "committed without an output".into(),
                        });
                        return None;
                    }
                },
                Commit::Validate(version) => {
                    if let Some(task) = self.validate(version, stats) {
                        // Stale: it runs again.
                        return Some(task);
                    }
                }
                Commit::NotReady => return None,
            }
        }
    }

    /// Validates `version`'s reads, aborting it when they changed.
    fn validate(&self, version: Version, stats: &mut ExecStats) -> Option<Task> {
        stats.validations += 1;
        // Read first: a later change of a lower transaction starts a later wave.
        let wave = self.scheduler.wave();
        let valid = self.memory.validate_read_set(version.tx_idx);
        if valid {
            self.scheduler.record_passed_validation(version, wave);
        }
        let aborted = !valid && self.scheduler.try_validation_abort(version);
        if aborted {
            stats.validation_aborts += 1;
            self.memory.convert_writes_to_estimates(version.tx_idx);
        }
        self.scheduler.finish_validation(version.tx_idx, aborted)
    }

    /// Records `error` (keeping the one of the lowest transaction) and halts the block.
    fn fail(&self, error: ExecuteError<V::Error>) {
        let mut slot = lock(&self.error);
        if slot.as_ref().is_none_or(|kept| error.rank() < kept.rank()) {
            *slot = Some(error);
        }
        drop(slot);
        self.scheduler.halt();
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
