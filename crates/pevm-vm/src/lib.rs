//! revm integration for pevm: the state a block reads (any revm `DatabaseRef + Sync`), the
//! chain rules and block steps of alloy-evm, blocks built from alloy RPC data or consensus
//! headers, and serial and parallel block execution with identical outputs, checked against
//! alloy-evm's own executor.
//!
//! Where things live: `chain/` (fork schedule, block and transaction environments, the steps
//! around the transactions, receipts, state root), `state/` (the state provider, overlays),
//! `exec/` (outputs, the serial executor, alloy-evm's reference), `lazy/` (fees and credits
//! paid without reading the account, and settled in one place), `block_stm/` (the
//! multi-version database, the VM, the fold, per-transaction outputs), `strategy/` (the plan,
//! known dependencies, the transfer strategy), `pevm` (the front door) and `block_executor`
//! (alloy-evm's `BlockExecutor`).
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

pub use block_executor::{ParallelBlockExecutor, ParallelBlockExecutorFactory, StateEvm};
pub use block_stm::analyze_block;
pub use chain::{
    block::{signed_tx_env, tx_env, Block, BlockConversionError},
    hooks::{block_context, execute_block_with_hooks, merge_diff, BlockContext, REQUEST_CONTRACTS},
    receipts::{logs_bloom, receipts_root, HeaderMismatch},
    spec::{ChainSpec, Hardfork},
    state_root::storage_root,
};
pub use error::ExecutionError;
pub use exec::{
    output::{AccountChange, AccountState, BlockOutput, StateDiff, TxResult, TxStatus},
    reference::{execute_block_embedded, execute_block_reference, ReferenceOutput},
    serial::{execute_block_serial, execute_block_serial_timed, execute_transactions_serial},
};
pub use pevm::{execute_block, execute_block_with_stats, Pevm};
pub use pevm_core::{DependencyGraph, ExecStats};
pub use state::{
    overlay::OverlayProvider,
    provider::{AccountBasic, InMemoryAccount, InMemoryProvider, ProviderError, StateProvider},
};
pub use strategy::{
    plan::{
        Plan, Strategy, BLOCK_COST, CALL_WEIGHT_CAP, ENGINE_COST, MIN_PARALLEL_GAS, PLAN_SAMPLE,
        TRANSFER_COST,
    },
    stats::BlockStats,
};

pub use alloy_evm;
pub use revm;
