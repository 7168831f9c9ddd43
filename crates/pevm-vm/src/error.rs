//! Why a block could not be executed.

use alloy_primitives::Address;

use revm::database_interface::DBErrorMarker;

use crate::ProviderError;

/// A block that cannot be executed, or whose execution failed.
///
/// Serial and parallel execution report the same error for the same block.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExecutionError {
    /// A transaction is invalid in its position (nonce, balance, fee, gas limit, type, ...).
    #[error("tx {index} is invalid: {reason}")]
    InvalidTransaction {
        /// Index of the transaction in the block.
        index: usize,
        /// What revm's validation reported.
        reason: String,
    },
    /// A transaction's gas limit exceeds the gas the block has left.
    #[error("tx {index} gas limit {gas_limit} exceeds the block's remaining gas {available}")]
    BlockGasExceeded {
        /// Index of the transaction in the block.
        index: usize,
        /// The transaction's gas limit.
        gas_limit: u64,
        /// Block gas limit minus the gas used before this transaction.
        available: u64,
    },
    /// The state provider failed.
    #[error("tx {index}: state read failed: {error}")]
    Provider {
        /// Index of the transaction that read.
        index: usize,
        /// The provider's error.
        error: ProviderError,
    },
    /// A transaction's signature does not recover to its claimed sender.
    #[error("tx {index}: signed by {}, not by its sender {claimed}", recovered.map_or("an invalid signature".to_string(), |a| a.to_string()))]
    WrongSender {
        /// Index of the transaction in the block.
        index: usize,
        /// The sender the block claims (`from`).
        claimed: Address,
        /// The signer recovered from the signature; `None` when the signature is invalid.
        recovered: Option<Address>,
    },
    /// A worker thread panicked; the block's state is discarded.
    #[error("worker panicked{}: {message}", tx.map(|i| format!(" on tx {i}")).unwrap_or_default())]
    Panic {
        /// The transaction being executed, when known.
        tx: Option<usize>,
        /// The panic message.
        message: String,
    },
    /// The access list a block was run with (EIP-7928) is wrong or incomplete for it.
    #[error("tx {index}: the block access list {message}")]
    AccessList {
        /// Index of the transaction that read or wrote what the list does not have.
        index: usize,
        /// What is missing or different.
        message: String,
    },
    /// A block-level step around the transactions failed (a system call, a balance change).
    #[error("{message}")]
    Block {
        /// The step and what went wrong in it.
        message: String,
    },
    /// Any other error revm reported.
    #[error("tx {index}: {message}")]
    Evm {
        /// Index of the transaction in the block.
        index: usize,
        /// revm's message.
        message: String,
    },
}

impl DBErrorMarker for ProviderError {}

impl From<ProviderError> for ExecutionError {
    fn from(error: ProviderError) -> Self {
        Self::Provider { index: 0, error }
    }
}

impl ExecutionError {
    /// Sets the transaction index of an error raised below the transaction level.
    pub(crate) fn at_tx(self, index: usize) -> Self {
        match self {
            Self::Provider { error, .. } => Self::Provider { index, error },
            Self::AccessList { message, .. } => Self::AccessList { index, message },
            other => other,
        }
    }
}
