//! Block-STM parallel execution engine (Gelashvili et al., 2022), with no EVM knowledge.
//!
//! Transactions of a block are executed optimistically in parallel by a pool of workers.
//! Each execution reads through a [`MvMemory`] (multi-version memory) and records its
//! reads and writes there; a collaborative [`Scheduler`] hands out execution and
//! validation tasks, re-executing transactions whose reads were invalidated. The result
//! equals executing the transactions serially in index order.
//!
//! A virtual machine plugs in by implementing [`Vm`]; an [`Executor`] runs blocks on a pool
//! of worker threads that it keeps from one block to the next.

#![deny(missing_docs)]
// The unit tests do not use every dev-dependency.
#![cfg_attr(test, allow(unused_crate_dependencies))]

use std::sync::PoisonError;

use sync::{Mutex, MutexGuard};

// Under `--cfg loom` (model checking, `tests/loom.rs`) only the scheduler is built: loom
// cannot model rayon's pool nor DashMap.
pub mod analysis;
#[cfg(not(loom))]
pub mod executor;
#[cfg(not(loom))]
pub mod mv_memory;
#[cfg(not(loom))]
pub mod pool;
pub mod scheduler;
mod sync;
#[cfg(not(loom))]
pub mod vm;

pub use analysis::DependencyGraph;
#[cfg(not(loom))]
pub use executor::{BlockResult, ExecStats, ExecuteError, Executor};
#[cfg(not(loom))]
pub use mv_memory::{MvKey, MvMemory, MvRead, ReadOrigin, ReadSet, WriteSet};
#[cfg(not(loom))]
pub use pool::Pool;
pub use scheduler::{Commit, Scheduler, Task};
#[cfg(not(loom))]
pub use vm::{ExecOutcome, Vm};

/// Index of a transaction in its block.
pub type TxIdx = usize;

/// How many times a transaction had been (re-)started before this execution (0 for the first).
pub type Incarnation = u32;

/// One execution attempt of one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    /// The transaction.
    pub tx_idx: TxIdx,
    /// Its incarnation.
    pub incarnation: Incarnation,
}

impl Version {
    /// Incarnation `incarnation` of transaction `tx_idx`.
    pub const fn new(tx_idx: TxIdx, incarnation: Incarnation) -> Self {
        Self {
            tx_idx,
            incarnation,
        }
    }
}

/// Locks `mutex`, ignoring poisoning: every critical section in this crate leaves its data
/// consistent, and panics of the VM are caught outside of any lock.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The data of `mutex`, through exclusive access, ignoring poisoning (see [`lock`]).
fn lock_mut<T>(mutex: &mut Mutex<T>) -> &mut T {
    mutex.get_mut().unwrap_or_else(PoisonError::into_inner)
}
