//! The serial reference executor: transactions one after another with revm.

use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use revm::{
    bytecode::Bytecode,
    context::{
        result::{EVMError, InvalidTransaction, ResultAndState},
        ContextTr,
    },
    database_interface::DBErrorMarker,
    primitives::{AddressMap, StorageKey, StorageValue, KECCAK_EMPTY},
    state::{Account, AccountInfo},
    Context, Database, DatabaseCommit, DatabaseRef, ExecuteEvm, MainBuilder, MainContext,
};

use crate::{
    result::{account_writes, apply_writes, AccountWrite},
    Block, BlockOutput, ExecutionError, ProviderError, StateDiff, StateProvider, TxResult,
};

impl DBErrorMarker for ProviderError {}

/// Executes `block` on top of `provider`, one transaction after another.
///
/// This is the reference the parallel executor is compared with.
pub fn execute_block_serial<P: StateProvider>(
    provider: &P,
    block: &Block,
) -> Result<BlockOutput, ExecutionError> {
    run_serial(provider, block, false, |_, _| {}).map(|(output, _)| output)
}

/// Executes `block` on top of `provider` serially, returning revm's result and state of each
/// transaction, in block order, exactly as revm returned them.
pub fn execute_transactions_serial<P: StateProvider>(
    provider: &P,
    block: &Block,
) -> Result<Vec<ResultAndState>, ExecutionError> {
    run_serial(provider, block, true, |_, _| {}).map(|(_, states)| states)
}

/// [`execute_block_serial`], also returning how long each transaction took (including the
/// folding of its writes into the state diff).
pub fn execute_block_serial_timed<P: StateProvider>(
    provider: &P,
    block: &Block,
) -> Result<(BlockOutput, Vec<Duration>), ExecutionError> {
    let mut times = Vec::with_capacity(block.txs.len());
    let (output, _) = run_serial(provider, block, false, |_, elapsed| times.push(elapsed))?;
    Ok((output, times))
}

/// Executes `block` serially, reporting each transaction's duration to `on_tx`; with `keep`,
/// also returns revm's result and state of each transaction.
fn run_serial<P: StateProvider>(
    provider: &P,
    block: &Block,
    keep: bool,
    mut on_tx: impl FnMut(usize, Duration),
) -> Result<(BlockOutput, Vec<ResultAndState>), ExecutionError> {
    let mut evm = Context::mainnet()
        .with_db(SerialDb::new(provider))
        .with_block(block.env.clone())
        .with_cfg(block.cfg.clone())
        .build_mainnet();
    let mut results = Vec::with_capacity(block.txs.len());
    let mut kept = Vec::with_capacity(if keep { block.txs.len() } else { 0 });
    let mut cumulative_gas_used = 0;
    for (index, tx) in block.txs.iter().enumerate() {
        let start = Instant::now();
        check_block_gas(
            index,
            tx.gas_limit,
            block.env.gas_limit,
            cumulative_gas_used,
        )?;
        let outcome = evm.transact(tx.clone());
        let TxOutcome {
            mut result,
            writes,
            evm: revm_output,
        } = tx_outcome(index, tx.tx_type, outcome, keep)?;
        cumulative_gas_used += result.gas_used;
        result.cumulative_gas_used = cumulative_gas_used;
        apply_writes(&mut evm.ctx.db_mut().diff, &writes);
        results.push(result);
        kept.extend(revm_output);
        on_tx(index, start.elapsed());
    }
    let state = std::mem::take(&mut evm.ctx.db_mut().diff);
    Ok((BlockOutput::new(results, state), kept))
}

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
            other => other,
        }
    }
}

/// revm's view of the state during serial execution: the block's writes so far over the
/// provider. Committing revm's state folds it into the writes, so alloy-evm's block executor
/// can run its system calls and balance changes on it.
pub(crate) struct SerialDb<'a, P> {
    provider: &'a P,
    /// The writes so far.
    pub(crate) diff: StateDiff,
}

impl<'a, P> SerialDb<'a, P> {
    /// No writes yet over `provider`.
    pub(crate) fn new(provider: &'a P) -> Self {
        Self {
            provider,
            diff: StateDiff::new(),
        }
    }
}

impl<P> std::fmt::Debug for SerialDb<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialDb")
            .field("diff", &self.diff)
            .finish_non_exhaustive()
    }
}

impl<P: StateProvider> DatabaseCommit for SerialDb<'_, P> {
    fn commit(&mut self, changes: AddressMap<Account>) {
        apply_writes(&mut self.diff, &account_writes(&changes));
    }
}

/// revm's account info for `basic`, with its code loaded from `code` or the provider.
pub(crate) fn account_info<P: StateProvider>(
    provider: &P,
    balance: U256,
    nonce: u64,
    code_hash: B256,
    code: Option<Bytecode>,
) -> Result<AccountInfo, ProviderError> {
    let code = match code {
        Some(code) => code,
        None if code_hash == KECCAK_EMPTY => Bytecode::default(),
        None => provider.code_by_hash(code_hash)?,
    };
    Ok(AccountInfo::new(balance, nonce, code_hash, code))
}

impl<P: StateProvider> DatabaseRef for SerialDb<'_, P> {
    type Error = ProviderError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        match self.diff.get(&address) {
            Some(change) => change
                .info
                .as_ref()
                .map(|i| {
                    account_info(
                        self.provider,
                        i.balance,
                        i.nonce,
                        i.code_hash,
                        i.code.clone(),
                    )
                })
                .transpose(),
            None => self
                .provider
                .basic(address)?
                .map(|a| account_info(self.provider, a.balance, a.nonce, a.code_hash, None))
                .transpose(),
        }
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        self.provider.code_by_hash(code_hash)
    }

    fn storage_ref(
        &self,
        address: Address,
        index: StorageKey,
    ) -> Result<StorageValue, Self::Error> {
        if let Some(change) = self.diff.get(&address) {
            if let Some(value) = change.storage.get(&index) {
                return Ok(*value);
            }
            if change.storage_cleared {
                return Ok(U256::ZERO);
            }
        }
        self.provider.storage(address, index)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Self::Error> {
        self.provider.block_hash(number)
    }
}

impl<P: StateProvider> Database for SerialDb<'_, P> {
    type Error = ProviderError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        self.basic_ref(address)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        self.code_by_hash_ref(code_hash)
    }

    fn storage(
        &mut self,
        address: Address,
        index: StorageKey,
    ) -> Result<StorageValue, Self::Error> {
        self.storage_ref(address, index)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, Self::Error> {
        self.block_hash_ref(number)
    }
}
