//! One transaction through revm: the EVM every executor of this crate runs a block's
//! transactions on, the block gas each transaction must fit in, and the transaction's outcome
//! from revm's (its result, the accounts it changed, or the error that stops the block).

use std::sync::LazyLock;

use alloy_primitives::Address;
use revm::{
    context::{
        result::{EVMError, InvalidTransaction, ResultAndState},
        BlockEnv, CfgEnv, TxEnv,
    },
    context_interface::Cfg,
    handler::MainnetEvm,
    Context, Database, Journal, MainBuilder, MainContext,
};

use crate::{
    state::diff::{account_writes, AccountWrite},
    Block, ExecutionError, TxResult,
};

/// revm's mainnet EVM over `DB`, running the transactions of a block it borrows: it is
/// handed each transaction by reference, as a clone of each would cost a copy of a few hundred
/// bytes and of its lists (revm implements its `Transaction` for references).
pub(crate) type BlockEvm<'t, DB> =
    MainnetEvm<Context<BlockEnv, &'t TxEnv, CfgEnv, DB, Journal<DB>, ()>>;

/// The transaction an EVM holds before it is handed one.
static NO_TX: LazyLock<TxEnv> = LazyLock::new(TxEnv::default);

/// revm's mainnet EVM for `block`'s environment over `db`.
pub(crate) fn block_evm<'t, DB: Database>(db: DB, block: &Block) -> BlockEvm<'t, DB> {
    Context::mainnet()
        .with_tx(&*NO_TX)
        .with_db(db)
        .with_block(block.env.clone())
        .with_cfg(block.cfg.clone())
        .build_mainnet()
}

/// The gas a block's transactions have used so far, in block order.
///
/// Before Amsterdam one number: the gas each transaction used after refunds. From Amsterdam on
/// (EIP-7778, EIP-8037) two: the regular gas before refunds and the state gas, each within the
/// block's gas limit, and the block uses the larger; receipts still add up the gas after refunds.
pub(crate) struct BlockGas {
    limit: u64,
    /// revm's per-transaction gas cap (EIP-7825), which bounds the regular gas a transaction
    /// can use.
    tx_cap: u64,
    /// Whether the block counts regular and state gas apart (EIP-8037).
    two_dimensional: bool,
    /// Gas after refunds, for the receipts.
    cumulative: u64,
    /// The regular gas (the gas after refunds before Amsterdam).
    regular: u64,
    /// The state gas (zero before Amsterdam).
    state: u64,
}

impl BlockGas {
    /// Nothing used yet of `block`'s gas limit.
    pub(crate) fn new(block: &Block) -> Self {
        Self {
            limit: block.env.gas_limit,
            tx_cap: block.cfg.tx_gas_limit_cap(),
            two_dimensional: block.cfg.enable_amsterdam_eip8037,
            cumulative: 0,
            regular: 0,
            state: 0,
        }
    }

    /// Fails when transaction `index`, of `gas_limit`, does not fit in what the block has
    /// left: its gas limit (at most the cap from Amsterdam on) in the regular gas left, and
    /// from Amsterdam on its whole gas limit in the state gas left.
    pub(crate) fn admit(&self, index: usize, gas_limit: u64) -> Result<(), ExecutionError> {
        let fits = |needed: u64, used: u64| {
            let available = self.limit.saturating_sub(used);
            if needed > available {
                return Err(ExecutionError::BlockGasExceeded {
                    index,
                    gas_limit,
                    available,
                });
            }
            Ok(())
        };
        if !self.two_dimensional {
            return fits(gas_limit, self.cumulative);
        }
        fits(gas_limit.min(self.tx_cap), self.regular)?;
        fits(gas_limit, self.state)
    }

    /// Adds `result`'s gas, and gives it the block's gas (after refunds) up to and including
    /// it.
    pub(crate) fn add(&mut self, result: &mut TxResult) {
        self.cumulative += result.gas_used;
        self.regular += result.block_gas_used;
        self.state += result.state_gas_used;
        result.cumulative_gas_used = self.cumulative;
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
/// that stops the block; `two_dimensional` when the block counts state gas apart (EIP-8037).
pub(crate) fn tx_outcome<E: Into<ExecutionError> + std::fmt::Display>(
    index: usize,
    tx_type: u8,
    two_dimensional: bool,
    outcome: Result<ResultAndState, EVMError<E, InvalidTransaction>>,
    keep: bool,
) -> Result<TxOutcome, ExecutionError> {
    match outcome {
        Ok(output) => {
            let writes = account_writes(&output.state);
            let (result, evm) = if keep {
                (
                    TxResult::new(tx_type, output.result.clone(), two_dimensional),
                    Some(output),
                )
            } else {
                (TxResult::new(tx_type, output.result, two_dimensional), None)
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
