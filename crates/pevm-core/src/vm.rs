//! The interface a virtual machine implements to run on the engine.

use std::hash::Hash;

use crate::{MvMemory, ReadSet, TxIdx, Version, WriteSet};

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
    type Key: Eq + Hash + Clone + Send + Sync;
    /// A value stored at a location.
    type Value: Clone + Send + Sync;
    /// What executing a transaction produces.
    type Output: Send;
    /// An unrecoverable error.
    type Error: Send;

    /// Executes transaction `version.tx_idx` reading through `mv` (the VM calls
    /// [`MvMemory::read`] and records a [`ReadSet`] itself).
    fn execute(
        &self,
        mv: &MvMemory<Self::Key, Self::Value>,
        version: Version,
    ) -> ExecOutcome<Self::Key, Self::Value, Self::Output, Self::Error>;
}
