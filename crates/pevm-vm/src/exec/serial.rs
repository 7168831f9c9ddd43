//! The serial reference executor: transactions one after another with revm.

use std::time::{Duration, Instant};

use revm::{
    context::{result::ResultAndState, ContextTr},
    ExecuteEvm,
};

use crate::{
    exec::outcome::{block_evm, tx_outcome, BlockGas, TxOutcome},
    state::{diff::apply_writes, serial_db::SerialDb},
    Block, BlockOutput, ExecutionError, StateProvider,
};

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
    let mut evm = block_evm(SerialDb::new(provider), block);
    let mut results = Vec::with_capacity(block.txs.len());
    let mut kept = Vec::with_capacity(if keep { block.txs.len() } else { 0 });
    let mut gas = BlockGas::new(block);
    for (index, tx) in block.txs.iter().enumerate() {
        let start = Instant::now();
        gas.admit(index, tx.gas_limit)?;
        let outcome = evm.transact(tx.clone());
        let TxOutcome {
            mut result,
            writes,
            evm: revm_output,
        } = tx_outcome(index, tx.tx_type, outcome, keep)?;
        gas.add(&mut result);
        apply_writes(&mut evm.ctx.db_mut().diff, &writes);
        results.push(result);
        kept.extend(revm_output);
        on_tx(index, start.elapsed());
    }
    let state = std::mem::take(&mut evm.ctx.db_mut().diff);
    Ok((BlockOutput::new(results, state), kept))
}
