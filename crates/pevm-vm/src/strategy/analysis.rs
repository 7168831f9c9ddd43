//! The critical-path analysis of a block: its dependency graph as Block-STM finds it, each
//! transaction weighted by its serial execution time (the bound a perfect engine could reach).

use std::time::Duration;

use pevm_core::{DependencyGraph, Executor};

use crate::{
    block_stm::vm::{engine_error, EvmVm},
    exec::serial::execute_block_serial_timed,
    strategy::hints::Hints,
    Block, ExecutionError, StateProvider,
};

/// The critical-path analysis of `block`: each transaction's dependencies (the transactions
/// whose writes its final execution read, lazy fees included) weighted by its serial
/// execution time in seconds.
pub fn analyze_block<P: StateProvider>(
    provider: &P,
    block: &Block,
) -> Result<DependencyGraph, ExecutionError> {
    let (_, times) = execute_block_serial_timed(provider, block)?;
    let mut executor = Executor::new(1);
    let mut hints = Hints::default();
    let known = hints.known_dependencies(&block.txs, true, true, executor.pool(), 1);
    let vm = EvmVm::new(provider, block, known, &hints, false, true);
    executor
        .execute(&vm, block.txs.len())
        .map_err(engine_error)?;
    let memory = executor.memory();
    let deps = (0..block.txs.len())
        .map(|tx| memory.dependencies(tx))
        .collect();
    let costs = times.iter().map(Duration::as_secs_f64).collect();
    Ok(DependencyGraph::new(deps, costs))
}
