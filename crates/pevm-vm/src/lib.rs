//! revm integration for pevm: the state a block reads (any revm `DatabaseRef + Sync`), the
//! chain rules and block steps of alloy-evm, blocks built from alloy RPC data or consensus
//! headers, and serial and parallel block execution with identical outputs, checked against
//! alloy-evm's own executor.
#![deny(missing_docs)]

mod block;
mod block_executor;
mod block_hooks;
mod chain;
mod error;
mod hints;
mod lazy;
mod mv_db;
mod overlay;
mod parallel;
mod plan;
mod provider;
mod receipts;
mod reference;
mod result;
mod serial;
mod state_root;
mod transfers;
mod tx_states;

pub use block::{signed_tx_env, tx_env, Block, BlockConversionError};
pub use block_executor::{ParallelBlockExecutor, ParallelBlockExecutorFactory, StateEvm};
pub use block_hooks::{
    block_context, execute_block_with_hooks, merge_diff, BlockContext, REQUEST_CONTRACTS,
};
pub use chain::{ChainSpec, Hardfork};
pub use error::ExecutionError;
pub use overlay::OverlayProvider;
pub use parallel::{analyze_block, execute_block, execute_block_with_stats, BlockStats, Pevm};
pub use pevm_core::{DependencyGraph, ExecStats};
pub use plan::{
    Plan, Strategy, BLOCK_COST, CALL_WEIGHT_CAP, ENGINE_COST, MIN_PARALLEL_GAS, PLAN_SAMPLE,
    TRANSFER_COST,
};
pub use provider::{AccountBasic, InMemoryAccount, InMemoryProvider, ProviderError, StateProvider};
pub use receipts::{logs_bloom, receipts_root, HeaderMismatch};
pub use reference::{execute_block_embedded, execute_block_reference, ReferenceOutput};
pub use result::{AccountChange, AccountState, BlockOutput, StateDiff, TxResult, TxStatus};
pub use serial::{execute_block_serial, execute_block_serial_timed, execute_transactions_serial};
pub use state_root::storage_root;

pub use alloy_evm;
pub use revm;
