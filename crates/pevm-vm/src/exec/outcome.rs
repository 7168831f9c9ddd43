//! One transaction through revm: the EVM every executor of this crate runs a block's
//! transactions on, the block gas each transaction must fit in, and the transaction's outcome
//! from revm's (its result, the accounts it changed, or the error that stops the block).

use alloy_primitives::Address;
use revm::{
    context::{
        result::{EVMError, InvalidTransaction, ResultAndState},
        BlockEnv, CfgEnv, TxEnv,
    },
    handler::MainnetEvm,
    Context, Database, Journal, MainBuilder, MainContext,
};

use crate::{
    state::diff::{account_writes, AccountWrite},
    Block, ExecutionError, TxResult,
};

/// revm's mainnet EVM over `DB`.
pub(crate) type BlockEvm<DB> = MainnetEvm<Context<BlockEnv, TxEnv, CfgEnv, DB, Journal<DB>, ()>>;

/// revm's mainnet EVM for `block`'s environment over `db`.
pub(crate) fn block_evm<DB: Database>(db: DB, block: &Block) -> BlockEvm<DB> {
    Context::mainnet()
        .with_db(db)
        .with_block(block.env.clone())
        .with_cfg(block.cfg.clone())
        .build_mainnet()
}

/// The gas a block's transactions have used so far, in block order.
pub(crate) struct BlockGas {
    limit: u64,
    used: u64,
}

impl BlockGas {
    /// Nothing used yet of `block`'s gas limit.
    pub(crate) fn new(block: &Block) -> Self {
        Self {
            limit: block.env.gas_limit,
            used: 0,
        }
    }

    /// Fails when transaction `index`, of `gas_limit`, does not fit in what the block has
    /// left.
    pub(crate) fn admit(&self, index: usize, gas_limit: u64) -> Result<(), ExecutionError> {
        let available = self.limit.saturating_sub(self.used);
        if gas_limit > available {
            return Err(ExecutionError::BlockGasExceeded {
                index,
                gas_limit,
                available,
            });
        }
        Ok(())
    }

    /// Adds `result`'s gas, and gives it the block's gas up to and including it.
    pub(crate) fn add(&mut self, result: &mut TxResult) {
        self.used += result.gas_used;
        result.cumulative_gas_used = self.used;
    }
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
