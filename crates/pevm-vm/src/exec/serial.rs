//! The serial reference executor: transactions one after another with revm.

use std::time::{Duration, Instant};

use revm::{
    context::{
        result::{EVMError, InvalidTransaction, ResultAndState},
        ContextTr,
    },
    ExecuteEvm,
};

use crate::{
    exec::{
        access_list::AccessListBuilder,
        outcome::{block_evm, tx_outcome, BlockGas, TxOutcome},
    },
    state::{diff::apply_writes, serial_db::SerialDb},
    Block, BlockOutput, ExecutionError, ProviderError, StateDiff, StateProvider, TxResult,
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
    let mut kept = Vec::with_capacity(if keep { block.txs.len() } else { 0 });
    let mut in_order = InOrder::new(block);
    for (index, tx) in block.txs.iter().enumerate() {
        let start = Instant::now();
        in_order.gas.admit(index, tx.gas_limit)?;
        let outcome = evm.transact(tx);
        let diff = &mut evm.ctx.db_mut().diff;
        kept.extend(in_order.push(diff, index, tx.tx_type, outcome, keep)?);
        on_tx(index, start.elapsed());
    }
    let state = std::mem::take(&mut evm.ctx.db_mut().diff);
    Ok((in_order.finish(state), kept))
}

/// A block's output built from its transactions' revm outputs taken in block order: the
/// serial executor's, and the parallel one's where the block asks for its access list.
pub(crate) struct InOrder {
    /// The block's gas so far.
    pub(crate) gas: BlockGas,
    results: Vec<TxResult>,
    two_dimensional: bool,
    /// The transactions' part of the access list, where the block asks for it.
    access_list: Option<AccessListBuilder>,
}

impl InOrder {
    /// Nothing taken yet of `block`; the access list built where the block asks for it.
    pub(crate) fn new(block: &Block) -> Self {
        Self::with_access_list(block, block.access_list)
    }

    /// Nothing taken yet of `block`; the access list built with `access_list`.
    pub(crate) fn with_access_list(block: &Block, access_list: bool) -> Self {
        Self {
            gas: BlockGas::new(block),
            results: Vec::with_capacity(block.txs.len()),
            two_dimensional: block.cfg.enable_amsterdam_eip8037,
            access_list: access_list.then(AccessListBuilder::default),
        }
    }

    /// Takes the revm outcome of transaction `index` (of `tx_type`, admitted already): its
    /// result and gas, its writes into `diff` and its part of the access list; returns revm's
    /// output with `keep`.
    pub(crate) fn push<E: Into<ExecutionError> + std::fmt::Display>(
        &mut self,
        diff: &mut StateDiff,
        index: usize,
        tx_type: u8,
        outcome: Result<ResultAndState, EVMError<E, InvalidTransaction>>,
        keep: bool,
    ) -> Result<Option<ResultAndState>, ExecutionError> {
        if let (Some(list), Ok(output)) = (&mut self.access_list, &outcome) {
            list.record(index as u64 + 1, &output.state);
        }
        let TxOutcome {
            mut result,
            writes,
            evm,
        } = tx_outcome(index, tx_type, self.two_dimensional, outcome, keep)?;
        self.gas.add(&mut result);
        apply_writes(diff, &writes);
        self.results.push(result);
        Ok(evm)
    }

    /// The output: the results taken, the block's changes `state`.
    pub(crate) fn finish(self, state: StateDiff) -> BlockOutput {
        BlockOutput {
            access_list: self.access_list.map(AccessListBuilder::finish),
            ..BlockOutput::new(self.results, state)
        }
    }
}

/// The output of a block from each transaction's revm result and state, in block order, all
/// admitted already (as a parallel run that kept them returns them).
pub(crate) fn output_of_states(
    block: &Block,
    states: Vec<ResultAndState>,
) -> Result<BlockOutput, ExecutionError> {
    let mut in_order = InOrder::new(block);
    let mut diff = StateDiff::new();
    for (index, (tx, state)) in block.txs.iter().zip(states).enumerate() {
        let outcome = Ok::<_, EVMError<ProviderError>>(state);
        in_order.push(&mut diff, index, tx.tx_type, outcome, false)?;
    }
    Ok(in_order.finish(diff))
}
