//! The collaborative scheduler of Block-STM: hands out execution and validation tasks.
//!
//! Workers repeatedly take the lowest-indexed task available. Indices and counters are
//! atomics; each transaction's status and dependents sit behind one small mutex.
//! A task returned by [`Scheduler::next_task`], [`Scheduler::finish_execution`] or
//! [`Scheduler::finish_validation`] must be carried out and then finished with the
//! matching `finish_*` call (or suspended with [`Scheduler::add_dependency`]).
//!
//! Transactions are also committed in block order while later ones still run (see
//! [`Scheduler::try_commit`]): once every lower transaction is committed, a transaction whose
//! current incarnation has executed and passed a validation begun after the last change of a
//! lower one that could stale it can never be aborted again, so its output is final. Such
//! changes are counted in waves: a lower transaction's execution writing a location its last
//! one did not, and its abort, each start a wave that every higher one must be validated in.
//! The block is done when its last transaction is committed: no count of the tasks in flight
//! is kept, which would cost every task two read-modify-writes of one shared counter.

use crossbeam_utils::CachePadded;
use smallvec::SmallVec;

use crate::sync::{AtomicBool, AtomicUsize, Mutex, Ordering::SeqCst};
use crate::{lock, lock_mut, Incarnation, TxIdx, Version};

/// A unit of work handed to a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Execute this incarnation.
    Execute(Version),
    /// Validate the read set of this incarnation.
    Validate(Version),
}

/// Where a transaction is in its life cycle (for its current incarnation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    ReadyToExecute,
    Executing,
    Executed,
    Aborting,
    /// Executed, every lower transaction committed, validated since their last wave: final.
    Committed,
}

/// Status of one transaction, with the incarnation it applies to, and the transactions
/// waiting for it.
#[derive(Debug)]
struct TxState {
    incarnation: Incarnation,
    status: Status,
    /// The latest wave (see [`Scheduler::wave`]) that a validation of the current incarnation
    /// passed in.
    validated_wave: Option<usize>,
    /// The wave of this transaction's latest change that may stale higher ones' reads.
    wave_above: usize,
    /// Transactions suspended until it finishes executing.
    dependents: SmallVec<[TxIdx; 2]>,
}

impl TxState {
    /// Incarnation 0, ready to execute.
    fn ready() -> Self {
        Self {
            incarnation: 0,
            status: Status::ReadyToExecute,
            validated_wave: None,
            wave_above: 0,
            dependents: SmallVec::new(),
        }
    }

    /// Whether the transaction has executed (and may be committed already).
    fn executed(&self) -> bool {
        matches!(self.status, Status::Executed | Status::Committed)
    }
}

/// What [`Scheduler::try_commit`] found of the lowest transaction not committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    /// Committed now: its output is final.
    Committed(TxIdx),
    /// Executed, but not validated since the committed transactions' last wave: a validation
    /// task (like one of [`Scheduler::next_task`]'s) that the caller carries out at once,
    /// before trying again.
    Validate(Version),
    /// Not executed yet, or every transaction of the block is committed.
    NotReady,
}

/// The collaborative scheduler of one block.
#[derive(Debug)]
pub struct Scheduler {
    block_size: usize,
    /// Next transaction to try executing.
    execution_idx: CachePadded<AtomicUsize>,
    /// Next transaction to try validating.
    validation_idx: CachePadded<AtomicUsize>,
    /// Set once every transaction is committed, or on `halt`.
    done_marker: CachePadded<AtomicBool>,
    /// How many transactions, from the first, are committed.
    commit_idx: CachePadded<AtomicUsize>,
    /// Bumped by every change of a transaction that may stale higher ones' reads.
    wave: CachePadded<AtomicUsize>,
    /// The latest such wave of the committed transactions: what the next one's validation
    /// must have begun in.
    commit_wave: CachePadded<AtomicUsize>,
    /// Per transaction: its status and dependents. A transaction's lock is taken while a
    /// lower one's is held (suspending it on that one), never the reverse.
    states: Vec<Mutex<TxState>>,
}

impl Scheduler {
    /// Creates a scheduler for a block of `block_size` transactions, all ready to execute.
    pub fn new(block_size: usize) -> Self {
        Self {
            block_size,
            execution_idx: CachePadded::new(AtomicUsize::new(0)),
            validation_idx: CachePadded::new(AtomicUsize::new(0)),
            done_marker: CachePadded::new(AtomicBool::new(block_size == 0)),
            commit_idx: CachePadded::new(AtomicUsize::new(0)),
            wave: CachePadded::new(AtomicUsize::new(0)),
            commit_wave: CachePadded::new(AtomicUsize::new(0)),
            states: (0..block_size)
                .map(|_| Mutex::new(TxState::ready()))
                .collect(),
        }
    }

    /// Makes every transaction of a block of `block_size` ready to execute again, keeping
    /// the allocations.
    pub fn reset(&mut self, block_size: usize) {
        self.block_size = block_size;
        // Fresh atomics rather than `get_mut`, which loom's atomics lack.
        for index in [
            &mut self.execution_idx,
            &mut self.validation_idx,
            &mut self.commit_idx,
            &mut self.wave,
            &mut self.commit_wave,
        ] {
            **index = AtomicUsize::new(0);
        }
        *self.done_marker = AtomicBool::new(block_size == 0);
        self.states.truncate(block_size);
        for state in &mut self.states {
            *lock_mut(state) = TxState::ready();
        }
        self.states
            .resize_with(block_size, || Mutex::new(TxState::ready()));
    }

    /// Next task to carry out; None when nothing is available right now (check [`Self::done`]).
    pub fn next_task(&self) -> Option<Task> {
        if self.done() {
            return None;
        }
        if self.validation_idx.load(SeqCst) < self.execution_idx.load(SeqCst) {
            self.next_version_to_validate().map(Task::Validate)
        } else {
            self.next_version_to_execute().map(Task::Execute)
        }
    }

    /// Whether the block is finished, every transaction committed (or halted). A task still in
    /// hand then is a validation of a committed transaction: it need not be carried out.
    pub fn done(&self) -> bool {
        self.done_marker.load(SeqCst)
    }

    /// Stops everything (error or panic): [`Self::done`] becomes true and no task is handed out.
    pub fn halt(&self) {
        self.done_marker.store(true, SeqCst);
    }

    /// Suspends executing `tx_idx` until `blocking`, a lower transaction, finishes its next
    /// execution.
    ///
    /// Returns false when `blocking` has already executed: re-execute `tx_idx` right away.
    pub fn add_dependency(&self, tx_idx: TxIdx, blocking: TxIdx) -> bool {
        assert!(blocking < tx_idx, "{tx_idx} cannot wait for {blocking}");
        let mut blocking = lock(&self.states[blocking]);
        if blocking.executed() {
            return false;
        }
        // Aborting before `blocking` can finish and resume it.
        lock(&self.states[tx_idx]).status = Status::Aborting;
        blocking.dependents.push(tx_idx);
        true
    }

    /// Marks `version` executed and resumes its dependents; returns its validation task
    /// when it can be validated right away, else the execution of its lowest dependent (so
    /// that a chain of dependent transactions runs on one worker, its data in that
    /// worker's cache, rather than be handed between workers at every step).
    pub fn finish_execution(&self, version: Version, wrote_new_location: bool) -> Option<Task> {
        let tx_idx = version.tx_idx;
        let mut dependents = {
            let mut state = lock(&self.states[tx_idx]);
            debug_assert_eq!(
                (state.incarnation, state.status),
                (version.incarnation, Status::Executing)
            );
            if wrote_new_location {
                // Higher transactions validated before may have missed the new location. Set
                // before the status: whoever sees it executed sees the wave.
                state.wave_above = self.wave.fetch_add(1, SeqCst) + 1;
            }
            state.status = Status::Executed;
            std::mem::take(&mut state.dependents)
        };
        dependents.sort_unstable();
        for &dependent in &dependents {
            self.set_ready(dependent);
        }
        if self.validation_idx.load(SeqCst) > tx_idx {
            if !wrote_new_location {
                // Only this transaction's own reads need checking; the dependents go back
                // to the execution index.
                if let Some(&lowest) = dependents.first() {
                    self.decrease_execution_idx(lowest);
                }
                return Some(Task::Validate(version));
            }
            // Higher transactions may have missed the new write: validate them all again.
            self.decrease_validation_idx(tx_idx);
        }
        if let Some((&lowest, rest)) = dependents.split_first() {
            if let Some(&next) = rest.first() {
                self.decrease_execution_idx(next);
            }
            // Claimed by another worker already if the execution index had come back to it.
            if let Some(continuation) = self.try_incarnate(lowest) {
                return Some(Task::Execute(continuation));
            }
        }
        None
    }

    /// Claims the right to abort `version` after a failed validation; false when it was
    /// already aborted (or re-executed) by someone else.
    pub fn try_validation_abort(&self, version: Version) -> bool {
        let mut state = lock(&self.states[version.tx_idx]);
        let claimed = state.incarnation == version.incarnation && state.status == Status::Executed;
        if claimed {
            state.status = Status::Aborting;
        }
        claimed
    }

    /// Finishes validating `tx_idx`; when `aborted`, schedules its re-execution (returned
    /// directly when possible) and revalidation of every higher transaction.
    pub fn finish_validation(&self, tx_idx: TxIdx, aborted: bool) -> Option<Task> {
        if aborted {
            {
                // Its writes are estimates by now: a validation begun in a later wave sees them
                // (or the next incarnation's).
                let mut state = lock(&self.states[tx_idx]);
                state.wave_above = self.wave.fetch_add(1, SeqCst) + 1;
            }
            self.set_ready(tx_idx);
            self.decrease_validation_idx(tx_idx + 1);
            if self.execution_idx.load(SeqCst) > tx_idx {
                if let Some(version) = self.try_incarnate(tx_idx) {
                    return Some(Task::Execute(version));
                }
            }
        }
        None
    }

    /// How many transactions, from the first, are committed.
    pub fn committed(&self) -> TxIdx {
        self.commit_idx.load(SeqCst)
    }

    /// The current wave: a validation reads it before it starts, and hands it to
    /// [`Self::record_passed_validation`] when it passes.
    pub fn wave(&self) -> usize {
        self.wave.load(SeqCst)
    }

    /// Records that `version` passed a validation begun in `wave`; ignored when it is no
    /// longer the executed incarnation.
    pub fn record_passed_validation(&self, version: Version, wave: usize) {
        let mut state = lock(&self.states[version.tx_idx]);
        if state.incarnation == version.incarnation && state.status == Status::Executed {
            state.validated_wave = state.validated_wave.max(Some(wave));
        }
    }

    /// Commits the lowest transaction not committed when it is final (it passed a validation
    /// begun no earlier than the lower ones' last wave), or says what it lacks; committing the
    /// last transaction finishes the block. Called by one thread at a time: the caller hands
    /// the committed outputs on in block order.
    pub fn try_commit(&self) -> Commit {
        let tx_idx = self.commit_idx.load(SeqCst);
        let Some(state) = self.states.get(tx_idx) else {
            return Commit::NotReady;
        };
        let mut state = lock(state);
        if state.status != Status::Executed {
            return Commit::NotReady;
        }
        let commit_wave = self.commit_wave.load(SeqCst);
        if state.validated_wave >= Some(commit_wave) {
            state.status = Status::Committed;
            // Final: it changes no more.
            self.commit_wave
                .store(commit_wave.max(state.wave_above), SeqCst);
            self.commit_idx.store(tx_idx + 1, SeqCst);
            if tx_idx + 1 == self.block_size {
                self.done_marker.store(true, SeqCst);
            }
            return Commit::Committed(tx_idx);
        }
        // The validation pass has yet to hand it out, and then begins it in a wave no earlier
        // than every committed one's (stored before this load).
        if self.validation_idx.load(SeqCst) <= tx_idx {
            return Commit::NotReady;
        }
        Commit::Validate(Version {
            tx_idx,
            incarnation: state.incarnation,
        })
    }

    /// Claims the next transaction to execute, if it is ready.
    fn next_version_to_execute(&self) -> Option<Version> {
        if self.execution_idx.load(SeqCst) >= self.block_size {
            return None;
        }
        let tx_idx = self.execution_idx.fetch_add(1, SeqCst);
        self.try_incarnate(tx_idx)
    }

    /// Claims the next transaction to validate, if it is executed.
    fn next_version_to_validate(&self) -> Option<Version> {
        if self.validation_idx.load(SeqCst) >= self.block_size {
            return None;
        }
        let tx_idx = self.validation_idx.fetch_add(1, SeqCst);
        let state = self.states.get(tx_idx).map(lock)?;
        (state.status == Status::Executed).then_some(Version {
            tx_idx,
            incarnation: state.incarnation,
        })
    }

    /// Moves `tx_idx` from ready to executing and returns the incarnation to run.
    fn try_incarnate(&self, tx_idx: TxIdx) -> Option<Version> {
        let mut state = self.states.get(tx_idx).map(lock)?;
        (state.status == Status::ReadyToExecute).then(|| {
            state.status = Status::Executing;
            Version {
                tx_idx,
                incarnation: state.incarnation,
            }
        })
    }

    /// Starts the next incarnation of an aborted transaction.
    fn set_ready(&self, tx_idx: TxIdx) {
        let mut state = lock(&self.states[tx_idx]);
        debug_assert_eq!(state.status, Status::Aborting);
        state.incarnation += 1;
        state.status = Status::ReadyToExecute;
        state.validated_wave = None;
    }

    fn decrease_execution_idx(&self, target: TxIdx) {
        self.execution_idx.fetch_min(target, SeqCst);
    }

    fn decrease_validation_idx(&self, target: TxIdx) {
        self.validation_idx.fetch_min(target, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls `next_task` until it returns a task (bounded).
    fn poll(scheduler: &Scheduler) -> Option<Task> {
        (0..16).find_map(|_| scheduler.next_task())
    }

    /// A validation of `version` that passes, begun now.
    fn pass(scheduler: &Scheduler, version: Version) -> Option<Task> {
        scheduler.record_passed_validation(version, scheduler.wave());
        scheduler.finish_validation(version.tx_idx, false)
    }

    #[test]
    fn single_tx_executes_validates_commits_and_finishes() {
        let scheduler = Scheduler::new(1);
        assert!(!scheduler.done());
        let version = Version::new(0, 0);
        assert_eq!(scheduler.next_task(), Some(Task::Execute(version)));
        assert_eq!(scheduler.finish_execution(version, true), None);
        assert_eq!(scheduler.next_task(), Some(Task::Validate(version)));
        assert_eq!(pass(&scheduler, version), None);
        // Validated, not committed yet: the block is not done.
        assert!(!scheduler.done());
        assert_eq!(scheduler.try_commit(), Commit::Committed(0));
        assert!(scheduler.done());
        assert_eq!(scheduler.next_task(), None);
    }

    #[test]
    fn commit_needs_a_passed_validation() {
        let scheduler = Scheduler::new(1);
        let version = Version::new(0, 0);
        assert_eq!(scheduler.next_task(), Some(Task::Execute(version)));
        assert_eq!(scheduler.finish_execution(version, true), None);
        assert_eq!(scheduler.next_task(), Some(Task::Validate(version)));
        // Finished without a passed validation recorded: not final.
        assert_eq!(scheduler.finish_validation(0, false), None);
        assert_eq!(scheduler.try_commit(), Commit::Validate(version));
        assert!(!scheduler.done());
    }

    #[test]
    fn empty_block_is_done_at_once() {
        let scheduler = Scheduler::new(0);
        assert_eq!(scheduler.next_task(), None);
        assert!(scheduler.done());
    }

    #[test]
    fn add_dependency_fails_when_blocking_already_executed() {
        let scheduler = Scheduler::new(2);
        assert_eq!(poll(&scheduler), Some(Task::Execute(Version::new(0, 0))));
        assert_eq!(poll(&scheduler), Some(Task::Execute(Version::new(1, 0))));
        assert_eq!(scheduler.finish_execution(Version::new(0, 0), true), None);
        assert!(!scheduler.add_dependency(1, 0));
    }

    #[test]
    fn dependency_resumes_with_next_incarnation() {
        let scheduler = Scheduler::new(2);
        assert_eq!(poll(&scheduler), Some(Task::Execute(Version::new(0, 0))));
        assert_eq!(poll(&scheduler), Some(Task::Execute(Version::new(1, 0))));
        assert!(scheduler.add_dependency(1, 0));
        // Validation already passed tx 0 and it wrote nothing new: validate it directly.
        let validate_0 = Task::Validate(Version::new(0, 0));
        assert_eq!(
            scheduler.finish_execution(Version::new(0, 0), false),
            Some(validate_0)
        );
        // Carry out every remaining task (nothing conflicts), following continuations.
        let mut seen = Vec::new();
        let mut next = Some(validate_0);
        while let Some(task) = next {
            seen.push(task);
            next = match task {
                Task::Execute(version) => scheduler.finish_execution(version, false),
                Task::Validate(version) => pass(&scheduler, version),
            }
            .or_else(|| poll(&scheduler));
        }
        assert!(seen.contains(&Task::Execute(Version::new(1, 1))));
        assert!(seen.contains(&Task::Validate(Version::new(1, 1))));
        assert!(!scheduler.done());
        assert_eq!(scheduler.try_commit(), Commit::Committed(0));
        assert_eq!(scheduler.try_commit(), Commit::Committed(1));
        assert!(scheduler.done());
    }

    #[test]
    fn finished_transaction_continues_with_its_lowest_dependent() {
        let scheduler = Scheduler::new(3);
        for tx_idx in 0..3 {
            assert_eq!(
                poll(&scheduler),
                Some(Task::Execute(Version::new(tx_idx, 0)))
            );
        }
        assert!(scheduler.add_dependency(2, 0));
        assert!(scheduler.add_dependency(1, 0));
        // Tx 0 is not validated yet: the worker goes straight on to tx 1.
        assert_eq!(
            scheduler.finish_execution(Version::new(0, 0), true),
            Some(Task::Execute(Version::new(1, 1)))
        );
        // Tx 2 goes back to the execution index, behind tx 0's validation.
        assert_eq!(poll(&scheduler), Some(Task::Validate(Version::new(0, 0))));
        assert_eq!(pass(&scheduler, Version::new(0, 0)), None);
        assert_eq!(poll(&scheduler), Some(Task::Execute(Version::new(2, 1))));
        assert_eq!(scheduler.finish_execution(Version::new(1, 1), true), None);
        assert_eq!(scheduler.finish_execution(Version::new(2, 1), true), None);
        for tx_idx in 1..3 {
            let version = Version::new(tx_idx, 1);
            assert_eq!(poll(&scheduler), Some(Task::Validate(version)));
            assert_eq!(pass(&scheduler, version), None);
        }
        assert_eq!(poll(&scheduler), None);
        for tx_idx in 0..3 {
            assert!(!scheduler.done());
            assert_eq!(scheduler.try_commit(), Commit::Committed(tx_idx));
        }
        assert!(scheduler.done());
    }

    #[test]
    fn validation_abort_reexecutes_next_incarnation() {
        let scheduler = Scheduler::new(1);
        assert_eq!(
            scheduler.next_task(),
            Some(Task::Execute(Version::new(0, 0)))
        );
        assert_eq!(scheduler.finish_execution(Version::new(0, 0), true), None);
        assert_eq!(
            scheduler.next_task(),
            Some(Task::Validate(Version::new(0, 0)))
        );
        assert!(scheduler.try_validation_abort(Version::new(0, 0)));
        assert!(!scheduler.try_validation_abort(Version::new(0, 0)));
        assert_eq!(
            scheduler.finish_validation(0, true),
            Some(Task::Execute(Version::new(0, 1)))
        );
        // Validation index is already past tx 0 and nothing new was written: validate directly.
        assert_eq!(
            scheduler.finish_execution(Version::new(0, 1), false),
            Some(Task::Validate(Version::new(0, 1)))
        );
        assert_eq!(pass(&scheduler, Version::new(0, 1)), None);
        assert_eq!(scheduler.next_task(), None);
        assert_eq!(scheduler.try_commit(), Commit::Committed(0));
        assert!(scheduler.done());
    }

    #[test]
    fn commit_takes_a_validation_begun_after_the_lower_ones_last_wave() {
        let scheduler = Scheduler::new(2);
        for tx_idx in 0..2 {
            let version = Version::new(tx_idx, 0);
            assert_eq!(poll(&scheduler), Some(Task::Execute(version)));
        }
        // Tx 1 executes and is validated in wave 1, before tx 0 has written.
        assert_eq!(scheduler.finish_execution(Version::new(1, 0), true), None);
        assert_eq!(poll(&scheduler), Some(Task::Validate(Version::new(1, 0))));
        assert_eq!(scheduler.wave(), 1);
        scheduler.record_passed_validation(Version::new(1, 0), 1);
        assert_eq!(scheduler.finish_validation(1, false), None);
        // Tx 0's write starts wave 2 and sends the validation pass back.
        assert_eq!(scheduler.finish_execution(Version::new(0, 0), true), None);
        assert_eq!(scheduler.try_commit(), Commit::NotReady);
        assert_eq!(poll(&scheduler), Some(Task::Validate(Version::new(0, 0))));
        scheduler.record_passed_validation(Version::new(0, 0), scheduler.wave());
        assert_eq!(scheduler.finish_validation(0, false), None);
        assert_eq!(scheduler.try_commit(), Commit::Committed(0));
        // Tx 1's validation in wave 1 does not do: the pass validates it again.
        assert_eq!(scheduler.try_commit(), Commit::NotReady);
        let version = Version::new(1, 0);
        assert_eq!(poll(&scheduler), Some(Task::Validate(version)));
        // While that one runs, the pass is past tx 1: the committer validates it itself.
        assert_eq!(scheduler.try_commit(), Commit::Validate(version));
        scheduler.record_passed_validation(version, scheduler.wave());
        assert_eq!(scheduler.finish_validation(1, false), None);
        assert_eq!(scheduler.try_commit(), Commit::Committed(1));
        assert_eq!(scheduler.committed(), 2);
        // The pass's validation ends after the commit, harmlessly.
        scheduler.record_passed_validation(version, scheduler.wave());
        assert_eq!(scheduler.finish_validation(1, false), None);
        assert_eq!(scheduler.try_commit(), Commit::NotReady);
        assert_eq!(scheduler.next_task(), None);
        assert!(scheduler.done());
    }

    #[test]
    fn committed_transaction_is_not_aborted_by_a_stale_validation() {
        let scheduler = Scheduler::new(2);
        let version = Version::new(0, 0);
        assert_eq!(scheduler.next_task(), Some(Task::Execute(version)));
        assert_eq!(scheduler.finish_execution(version, true), None);
        assert_eq!(scheduler.next_task(), Some(Task::Validate(version)));
        scheduler.record_passed_validation(version, scheduler.wave());
        assert_eq!(scheduler.finish_validation(0, false), None);
        assert_eq!(scheduler.try_commit(), Commit::Committed(0));
        assert!(!scheduler.try_validation_abort(version));
        // A transaction waiting on it finds it executed.
        assert!(!scheduler.add_dependency(1, 0));
    }

    #[test]
    fn halt_stops_handing_out_tasks() {
        let scheduler = Scheduler::new(3);
        scheduler.halt();
        assert!(scheduler.done());
        assert_eq!(scheduler.next_task(), None);
    }
}
