//! revm integration for pevm: the state a block reads (any revm `DatabaseRef + Sync`), the
//! chain rules and block steps of alloy-evm, blocks built from alloy RPC data or consensus
//! headers, and serial and parallel block execution with identical outputs, checked against
//! alloy-evm's own executor.
//!
//! Where things live, each folder importing only the ones before it: `state/` (the state
//! provider, the state diff, overlays), `chain/` (fork schedule, block and transaction
//! environments, state root), `exec/` (outputs, receipts, the steps around the transactions,
//! the serial executor, alloy-evm's reference), `lazy/` (fees and credits paid without
//! reading the account, and settled in one place), `block_stm/` (the multi-version database,
//! the VM, the fold, per-transaction outputs), `strategy/` (the plan, known dependencies, the
//! transfer strategy, the critical-path analysis), then `pevm` (the front door) and
//! `block_executor` (alloy-evm's `BlockExecutor`).
#![deny(missing_docs)]
// The unit tests do not use every dev-dependency.
#![cfg_attr(test, allow(unused_crate_dependencies))]

mod block_executor;
mod block_stm;
mod chain;
mod error;
mod exec;
mod lazy;
mod pevm;
mod state;
mod strategy;

pub use block_executor::{
    execute_block_embedded, ParallelBlockExecutor, ParallelBlockExecutorFactory,
};
pub use chain::{
    block::{signed_tx_env, tx_env, Block, BlockConversionError},
    spec::{ChainSpec, Hardfork},
    state_root::storage_root,
};
pub use error::ExecutionError;
pub use exec::{
    access_list::{access_list_hash, first_access_list_difference, BlockAccessList},
    hooks::{block_context, execute_block_with_hooks, merge_diff, BlockContext, REQUEST_CONTRACTS},
    output::{BlockOutput, TxResult, TxStatus},
    receipts::{logs_bloom, receipts_root, HeaderMismatch},
    reference::{execute_block_reference, ReferenceOutput, StateEvm},
    serial::{execute_block_serial, execute_block_serial_timed, execute_transactions_serial},
};
pub use pevm::{execute_block, execute_block_with_stats, Pevm};
pub use pevm_core::{DependencyGraph, ExecStats};
pub use state::{
    diff::{AccountChange, AccountState, StateDiff},
    overlay::OverlayProvider,
    provider::{AccountBasic, InMemoryAccount, InMemoryProvider, ProviderError, StateProvider},
};
pub use strategy::{
    analysis::analyze_block,
    plan::{
        read_gas, Cost, Plan, Strategy, BLOCK_COST, CALL_WEIGHT_CAP, ENGINE_COST, MIN_PARALLEL_GAS,
        PLAN_SAMPLE, TRANSFER_COST,
    },
    stats::BlockStats,
};

pub use alloy_evm;
pub use revm;
