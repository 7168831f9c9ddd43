//! The interface a virtual machine implements to run on the engine.

use crate::{MvKey, MvMemory, ReadSet, TxIdx, Version, WriteSet};

/// Outcome of executing one incarnation.
#[derive(Debug)]
pub enum ExecOutcome<K, V, O, E> {
    /// Finished (successfully or not, from the VM's point of view the output is a value).
    Done {
        /// Every read made through the memory, with the origin it saw.
        reads: ReadSet<K>,
        /// Every key written, with its new value.
        writes: WriteSet<K, V>,
        /// The transaction's output.
        output: O,
    },
    /// Read an ESTIMATE written by `blocking`: suspend until it re-executes.
    Blocked {
        /// The lower transaction whose ESTIMATE was read.
        blocking: TxIdx,
    },
    /// Unrecoverable error (e.g. the state provider failed): halt the block with this error.
    Fatal(E),
}

/// A virtual machine that executes the transactions of a block.
pub trait Vm: Sync {
    /// A location of state.
    type Key: MvKey;
    /// A value stored at a location.
    type Value: Clone + Send + Sync;
    /// What executing a transaction produces.
    type Output: Send;
    /// An unrecoverable error.
    type Error: Send;

    /// A lower transaction that `tx_idx` is known to depend on before executing it (such as
    /// the previous transaction of the same sender): its first incarnation waits for that
    /// one to execute instead of running into the conflict.
    fn known_dependency(&self, tx_idx: TxIdx) -> Option<TxIdx> {
        let _ = tx_idx;
        None
    }

    /// State a worker thread keeps from one execution to the next within a block (such as
    /// an interpreter and its buffers), with access to the block's memory.
    type Worker<'m>
    where
        Self: 'm;

    /// The state of a new worker for a block whose multi-version memory is `mv`.
    fn worker<'m>(&'m self, mv: &'m MvMemory<Self::Key, Self::Value>) -> Self::Worker<'m>;

    /// Executes transaction `version.tx_idx` on `worker`, reading through its memory (the VM
    /// calls [`MvMemory::read`] and records a [`ReadSet`] itself). The worker is one made by
    /// this VM, borrowed as long: it may hold what the VM lends it, such as the transaction.
    fn execute<'m>(
        &'m self,
        worker: &mut Self::Worker<'m>,
        version: Version,
    ) -> ExecOutcome<Self::Key, Self::Value, Self::Output, Self::Error>;
}
