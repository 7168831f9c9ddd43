//! revm integration for pevm: the state provider a client implements, blocks built from alloy
//! RPC data, and serial and parallel block execution with identical outputs.
#![deny(missing_docs)]

mod block;
mod error;
mod hardfork;
mod mv_db;
mod parallel;
mod provider;
mod receipts;
mod result;
mod serial;

pub use block::{tx_env, Block, BlockConversionError};
pub use error::ExecutionError;
pub use hardfork::Hardfork;
pub use parallel::{execute_block, execute_block_with_stats};
pub use pevm_core::ExecStats;
pub use provider::{AccountBasic, InMemoryAccount, InMemoryProvider, ProviderError, StateProvider};
pub use receipts::{logs_bloom, receipts_root, HeaderMismatch};
pub use result::{AccountChange, AccountState, BlockOutput, StateDiff, TxResult, TxStatus};
pub use serial::execute_block_serial;

pub use revm;
