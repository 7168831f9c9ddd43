//! Parallel block execution: revm transactions as a Block-STM [`Vm`](pevm_core::Vm).

use std::{convert::Infallible, num::NonZeroUsize};

use alloy_primitives::Address;
use pevm_core::{ExecOutcome, ExecStats, ExecuteError, Version, Vm};
use revm::{
    context::{result::EVMError, CfgEnv, ContextTr},
    Context, ExecuteEvm, MainBuilder, MainContext,
};

use crate::{
    mv_db::{memory_writes, EvmMemory, Location, LocationValue, MvDb, ReadError},
    result::{apply_writes, AccountWrite},
    serial::{check_block_gas, tx_outcome},
    Block, BlockOutput, ExecutionError, StateDiff, StateProvider, TxResult,
};

/// What one transaction produced: its result and account writes, or why it is invalid.
type TxOutput = Result<(TxResult, Vec<(Address, AccountWrite)>), ExecutionError>;

/// A block's transactions as a Block-STM VM.
struct EvmVm<'a, P> {
    provider: &'a P,
    block: &'a Block,
    cfg: CfgEnv,
}

impl<P: StateProvider> Vm for EvmVm<'_, P> {
    type Key = Location;
    type Value = LocationValue;
    type Output = TxOutput;
    type Error = Infallible;

    fn execute(
        &self,
        memory: &EvmMemory,
        version: Version,
    ) -> ExecOutcome<Location, LocationValue, TxOutput, Infallible> {
        let index = version.tx_idx;
        let tx = &self.block.txs[index];
        let db = MvDb::new(memory, self.provider, index);
        let mut evm = Context::mainnet()
            .with_db(db)
            .with_block(self.block.env.clone())
            .with_cfg(self.cfg.clone())
            .build_mainnet();
        let outcome = evm.transact(tx.clone());
        let reads = std::mem::take(&mut evm.ctx.db_mut().reads);
        let output = match outcome {
            Err(EVMError::Database(ReadError::Blocked(blocking))) => {
                return ExecOutcome::Blocked { blocking };
            }
            Err(EVMError::Database(ReadError::Provider(error))) => {
                Err(ExecutionError::Provider { index, error })
            }
            other => tx_outcome::<ReadError>(index, tx.tx_type, other),
        };
        let writes = match &output {
            Ok((_, writes)) => memory_writes(writes),
            Err(_) => Vec::new(),
        };
        ExecOutcome::Done {
            reads,
            writes,
            output,
        }
    }
}

impl From<ReadError> for ExecutionError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Provider(error) => Self::Provider { index: 0, error },
            ReadError::Blocked(tx) => Self::Evm {
                index: 0,
                message: format!("blocked on tx {tx}"),
            },
        }
    }
}

/// Executes `block` on top of `provider` with Block-STM on `concurrency` worker threads.
///
/// The output is identical to [`execute_block_serial`](crate::execute_block_serial)'s, and so
/// is the error for an invalid block.
pub fn execute_block<P: StateProvider>(
    provider: &P,
    block: &Block,
    concurrency: NonZeroUsize,
) -> Result<BlockOutput, ExecutionError> {
    execute_block_with_stats(provider, block, concurrency).map(|(output, _)| output)
}

/// [`execute_block`], also returning the engine's counters (executions, re-executions,
/// validations, aborts).
pub fn execute_block_with_stats<P: StateProvider>(
    provider: &P,
    block: &Block,
    concurrency: NonZeroUsize,
) -> Result<(BlockOutput, ExecStats), ExecutionError> {
    let vm = EvmVm {
        provider,
        block,
        cfg: block.cfg(),
    };
    let run = pevm_core::execute(&vm, block.txs.len(), concurrency.get()).map_err(|e| match e {
        ExecuteError::Vm { error, .. } => match error {},
        ExecuteError::Panic { tx_idx, message } => ExecutionError::Panic {
            tx: tx_idx,
            message,
        },
    })?;
    let mut results = Vec::with_capacity(run.outputs.len());
    let mut state = StateDiff::new();
    let mut cumulative_gas_used = 0;
    for (index, output) in run.outputs.into_iter().enumerate() {
        check_block_gas(
            index,
            block.txs[index].gas_limit,
            block.env.gas_limit,
            cumulative_gas_used,
        )?;
        let (mut result, writes) = output?;
        cumulative_gas_used += result.gas_used;
        result.cumulative_gas_used = cumulative_gas_used;
        apply_writes(&mut state, &writes);
        results.push(result);
    }
    Ok((BlockOutput { results, state }, run.stats))
}
