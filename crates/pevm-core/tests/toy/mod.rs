//! A toy VM over `u64` keys and values, and a serial reference interpreter.

use std::collections::HashMap;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use pevm_core::{
    BlockResult, ExecOutcome, ExecuteError, Executor, MvMemory, MvRead, ReadOrigin, Version, Vm,
};

/// One instruction of a toy transaction.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    /// Read a key (adds its value to the running sum).
    Read(u64),
    /// Write `f(sum of reads so far, tx_idx, salt)` to a key.
    Write(u64, u64),
    /// Panic.
    Panic,
    /// Return a fatal error.
    Fail,
}

/// What a toy transaction observed, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Read(u64, u64),
    Wrote(u64, u64),
}

/// The fatal error of [`Op::Fail`]: the failing transaction.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ToyError(pub usize);

/// A block of toy transactions over a base state (missing keys read as 0).
pub(crate) struct ToyVm {
    pub txs: Vec<Vec<Op>>,
    pub base: HashMap<u64, u64>,
    /// Known dependencies handed to the engine (none when empty).
    pub hints: Vec<Option<usize>>,
}

fn written_value(sum: u64, tx_idx: usize, salt: u64) -> u64 {
    sum.wrapping_mul(31)
        .wrapping_add(salt)
        .wrapping_add(tx_idx as u64)
}

fn set(writes: &mut Vec<(u64, u64)>, key: u64, value: u64) {
    match writes.iter_mut().find(|(k, _)| *k == key) {
        Some(entry) => entry.1 = value,
        None => writes.push((key, value)),
    }
}

impl ToyVm {
    fn base_value(&self, key: u64) -> u64 {
        self.base.get(&key).copied().unwrap_or(0)
    }

    /// Runs the block serially; returns the outputs and the final state.
    pub(crate) fn serial(&self) -> (Vec<Vec<Event>>, HashMap<u64, u64>) {
        let mut state = self.base.clone();
        let outputs = self
            .txs
            .iter()
            .enumerate()
            .map(|(tx_idx, ops)| {
                let mut sum = 0u64;
                let mut events = Vec::new();
                for op in ops {
                    match *op {
                        Op::Read(key) => {
                            let value = state.get(&key).copied().unwrap_or(0);
                            sum = sum.wrapping_add(value);
                            events.push(Event::Read(key, value));
                        }
                        Op::Write(key, salt) => {
                            let value = written_value(sum, tx_idx, salt);
                            state.insert(key, value);
                            events.push(Event::Wrote(key, value));
                        }
                        Op::Panic | Op::Fail => unreachable!("serial run of a faulty block"),
                    }
                }
                events
            })
            .collect();
        (outputs, state)
    }
}

impl Vm for ToyVm {
    type Key = u64;
    type Value = u64;
    type Output = Vec<Event>;
    type Error = ToyError;

    type Worker<'m> = &'m MvMemory<u64, u64>;

    fn known_dependency(&self, tx_idx: usize) -> Option<usize> {
        self.hints.get(tx_idx).copied().flatten()
    }

    fn worker<'m>(&'m self, mv: &'m MvMemory<u64, u64>) -> Self::Worker<'m> {
        mv
    }

    fn execute(
        &self,
        mv: &mut &MvMemory<u64, u64>,
        version: Version,
    ) -> ExecOutcome<u64, u64, Vec<Event>, ToyError> {
        let tx_idx = version.tx_idx;
        let mut reads = Vec::new();
        let mut writes = Vec::new();
        let mut events = Vec::new();
        let mut sum = 0u64;
        for op in &self.txs[tx_idx] {
            match *op {
                Op::Read(key) => {
                    let own = writes.iter().find(|(k, _)| *k == key).map(|&(_, v)| v);
                    let value = match own {
                        Some(value) => value,
                        None => match mv.read(&key, tx_idx) {
                            MvRead::Value(writer, value) => {
                                reads.push((key, ReadOrigin::Tx(writer)));
                                value
                            }
                            MvRead::Base => {
                                reads.push((key, ReadOrigin::Base));
                                self.base_value(key)
                            }
                            MvRead::Estimate(blocking) => return ExecOutcome::Blocked { blocking },
                        },
                    };
                    sum = sum.wrapping_add(value);
                    events.push(Event::Read(key, value));
                }
                Op::Write(key, salt) => {
                    let value = written_value(sum, tx_idx, salt);
                    set(&mut writes, key, value);
                    events.push(Event::Wrote(key, value));
                }
                Op::Panic => panic!("toy panic in tx {tx_idx}"),
                Op::Fail => return ExecOutcome::Fatal(ToyError(tx_idx)),
            }
        }
        ExecOutcome::Done {
            reads,
            writes,
            output: events,
        }
    }
}

/// Result of running a toy block.
pub(crate) type ToyResult = Result<BlockResult<Vec<Event>>, ExecuteError<ToyError>>;

/// An executor of toy blocks.
pub(crate) type ToyExecutor = Executor<u64, u64>;

/// Runs the block on `executor` on another thread, failing if it takes longer than 10 s;
/// hands the executor back.
pub(crate) fn run_on(vm: Arc<ToyVm>, mut executor: ToyExecutor) -> (ToyResult, ToyExecutor) {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let result = executor.execute(vm.as_ref(), vm.txs.len());
        let _ = sender.send((result, executor));
    });
    receiver
        .recv_timeout(Duration::from_secs(10))
        .expect("execute did not finish within 10 s")
}

/// Runs the block on a new executor of `concurrency` workers (see [`run_on`]).
pub(crate) fn run_with_timeout(vm: Arc<ToyVm>, concurrency: usize) -> ToyResult {
    run_on(vm, Executor::new(concurrency)).0
}

/// Runs the block in parallel and asserts it matches the serial run; returns the result.
pub(crate) fn assert_matches_serial(
    vm: &Arc<ToyVm>,
    concurrency: usize,
) -> BlockResult<Vec<Event>> {
    assert_matches_serial_on(vm, Executor::new(concurrency)).0
}

/// [`assert_matches_serial`] on a given executor, which is handed back.
pub(crate) fn assert_matches_serial_on(
    vm: &Arc<ToyVm>,
    executor: ToyExecutor,
) -> (BlockResult<Vec<Event>>, ToyExecutor) {
    let concurrency = executor.concurrency();
    let (outputs, state) = vm.serial();
    let (result, executor) = run_on(Arc::clone(vm), executor);
    let result = match result {
        Ok(result) => result,
        Err(error) => panic!("block failed at {concurrency} threads: {error:?}"),
    };
    assert_eq!(result.outputs, outputs, "outputs at {concurrency} threads");
    let memory = executor.memory();
    for tx_idx in 0..vm.txs.len() {
        for key in memory.written_keys(tx_idx) {
            assert_eq!(
                memory.final_value(&key),
                state.get(&key).copied(),
                "final value of key {key} at {concurrency} threads"
            );
        }
    }
    let stats = result.stats;
    let block_size = vm.txs.len() as u64;
    assert!(stats.executions >= block_size);
    assert_eq!(stats.re_executions, stats.executions - block_size);
    assert!(stats.validations >= block_size);
    (result, executor)
}
