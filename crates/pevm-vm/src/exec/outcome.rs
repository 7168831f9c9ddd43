//! One transaction's outcome, from revm's: its result, the accounts it changed, or the error
//! that stops the block; and the block gas check every executor makes before a transaction.

use alloy_primitives::Address;
use revm::context::result::{EVMError, InvalidTransaction, ResultAndState};

use crate::{
    exec::output::{account_writes, AccountWrite},
    ExecutionError, TxResult,
};

/// Fails when a transaction's gas limit exceeds what the block has left.
pub(crate) fn check_block_gas(
    index: usize,
    gas_limit: u64,
    block_gas_limit: u64,
    used: u64,
) -> Result<(), ExecutionError> {
    let available = block_gas_limit.saturating_sub(used);
    if gas_limit > available {
        return Err(ExecutionError::BlockGasExceeded {
            index,
            gas_limit,
            available,
        });
    }
    Ok(())
}

/// What one transaction did.
pub(crate) struct TxOutcome {
    /// Its result.
    pub(crate) result: TxResult,
    /// The accounts it changed.
    pub(crate) writes: Vec<(Address, AccountWrite)>,
    /// revm's own result and state, when kept.
    pub(crate) evm: Option<ResultAndState>,
}

/// The outcome of transaction `index` (revm's own output kept with `keep`), or the error
/// that stops the block.
pub(crate) fn tx_outcome<E: Into<ExecutionError> + std::fmt::Display>(
    index: usize,
    tx_type: u8,
    outcome: Result<ResultAndState, EVMError<E, InvalidTransaction>>,
    keep: bool,
) -> Result<TxOutcome, ExecutionError> {
    match outcome {
        Ok(output) => {
            let writes = account_writes(&output.state);
            let (result, evm) = if keep {
                (TxResult::new(tx_type, output.result.clone()), Some(output))
            } else {
                (TxResult::new(tx_type, output.result), None)
            };
            Ok(TxOutcome {
                result,
                writes,
                evm,
            })
        }
        Err(EVMError::Transaction(reason)) => Err(ExecutionError::InvalidTransaction {
            index,
            reason: reason.to_string(),
        }),
        Err(EVMError::Database(error)) => Err(error.into().at_tx(index)),
        Err(other) => Err(ExecutionError::Evm {
            index,
            message: other.to_string(),
        }),
    }
}
