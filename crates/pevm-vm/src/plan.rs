//! The cost-aware choice of parallelism: before a block runs, an estimate from the
//! transactions alone (their weights and the dependencies known up front) decides whether
//! parallel execution can win, and with how many workers.
//!
//! A transaction's weight is its gas limit, except that a plain transfer (a call without
//! calldata) weighs the 21,000 gas it really costs: old blocks often give transfers limits
//! far above what they use, and a transfer is about as cheap as the engine's own work per
//! transaction.

use alloy_primitives::TxKind;
use pevm_core::TxIdx;
use revm::context::TxEnv;

/// Below this much weight, waking workers and merging their results costs more than a second
/// core saves: the block runs serially. (On the shared mainnet blocks at 2 threads, blocks
/// under it were slower in parallel, and most above it faster.)
pub const MIN_PARALLEL_GAS: u64 = 6_000_000;

/// The estimated speedup, as a fraction `NUM / DEN` (1.4), under which a block runs serially:
/// work over the estimated parallel time, which is the longer of the critical path and the
/// work plus the engine's cost per transaction (the weight of a transfer) shared by the
/// workers.
const MIN_BOUND: (u64, u64) = (7, 5);

/// Weight of a plain transfer.
const TRANSFER_WEIGHT: u64 = 21_000;

/// The estimated cost of `tx`, in gas.
fn weight(tx: &TxEnv) -> u64 {
    match tx.kind {
        TxKind::Call(_) if tx.data.is_empty() => tx.gas_limit.min(TRANSFER_WEIGHT),
        _ => tx.gas_limit,
    }
}

/// How a block is executed, decided before it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Workers the block runs on; 1 means the serial executor, with no engine at all.
    pub workers: usize,
    /// Sum of the transactions' weights (gas limits; 21,000 for plain transfers): the
    /// estimated work.
    pub total_gas: u64,
    /// Weights along the longest chain of known dependencies: the estimated critical path.
    pub critical_gas: u64,
}

impl Plan {
    /// The plan for `txs` on at most `concurrency` workers, where `known_dependencies[i]` is
    /// the lower transaction that transaction `i` is known to depend on.
    pub fn new(txs: &[TxEnv], known_dependencies: &[Option<TxIdx>], concurrency: usize) -> Self {
        let mut path: Vec<u64> = Vec::with_capacity(txs.len());
        let (mut total_gas, mut critical_gas) = (0u64, 0u64);
        for (tx, dependency) in txs.iter().zip(known_dependencies) {
            let before = dependency.and_then(|d| path.get(d).copied()).unwrap_or(0);
            let length = before.saturating_add(weight(tx));
            path.push(length);
            total_gas = total_gas.saturating_add(weight(tx));
            critical_gas = critical_gas.max(length);
        }
        // On `w` workers the block takes at least its critical path, and at least its work
        // plus the engine's own cost per transaction (about a transfer's) shared by `w`.
        let overhead = (txs.len() as u64).saturating_mul(TRANSFER_WEIGHT);
        let parallel_time =
            |w: u64| critical_gas.max(total_gas.saturating_add(overhead).div_ceil(w.max(1)));
        // The fewest workers that reach the best estimate.
        let best = (2..=concurrency.max(1) as u64)
            .min_by_key(|&w| (parallel_time(w), w))
            .unwrap_or(1);
        let parallel = txs.len() >= 2
            && total_gas >= MIN_PARALLEL_GAS
            && u128::from(total_gas) * u128::from(MIN_BOUND.1)
                >= u128::from(parallel_time(best)) * u128::from(MIN_BOUND.0);
        let workers = if parallel { best as usize } else { 1 };
        Self {
            workers: workers.min(concurrency.max(1)),
            total_gas,
            critical_gas,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txs(gas: &[u64]) -> Vec<TxEnv> {
        gas.iter()
            .map(|&gas_limit| TxEnv {
                gas_limit,
                data: vec![1].into(),
                ..TxEnv::default()
            })
            .collect()
    }

    #[test]
    fn independent_block_uses_every_worker() {
        let block = txs(&[1_000_000; 40]);
        let plan = Plan::new(&block, &[None; 40], 8);
        assert_eq!(plan.workers, 8);
        assert_eq!((plan.total_gas, plan.critical_gas), (40_000_000, 1_000_000));
        assert_eq!(Plan::new(&block, &[None; 40], 1).workers, 1);
    }

    #[test]
    fn chain_and_small_blocks_run_serially() {
        let block = txs(&[1_000_000; 40]);
        let chain: Vec<_> = (0..40).map(|i: usize| i.checked_sub(1)).collect();
        let plan = Plan::new(&block, &chain, 8);
        assert_eq!((plan.workers, plan.critical_gas), (1, 40_000_000));
        let small = txs(&[21_000; 40]);
        assert_eq!(Plan::new(&small, &[None; 40], 8).workers, 1);
        // Plain transfers weigh 21,000 whatever their gas limit.
        let mut transfers = txs(&[1_000_000; 40]);
        for tx in &mut transfers {
            tx.kind = TxKind::Call(Default::default());
            tx.data = Default::default();
        }
        let plan = Plan::new(&transfers, &[None; 40], 8);
        assert_eq!((plan.workers, plan.total_gas), (1, 840_000));
        assert_eq!(Plan::new(&block[..1], &[None], 8).workers, 1);
    }

    #[test]
    fn workers_are_bounded_by_the_estimated_speedup() {
        // Two chains of 20: the critical path (20M) bounds the time; two workers come close
        // (20.42M with the engine's cost), a third reaches it, more add nothing.
        let block = txs(&[1_000_000; 40]);
        let two_chains: Vec<_> = (0..40).map(|i: usize| i.checked_sub(2)).collect();
        let plan = Plan::new(&block, &two_chains, 8);
        assert_eq!((plan.workers, plan.critical_gas), (3, 20_000_000));
        assert_eq!(Plan::new(&block, &two_chains, 2).workers, 2);
    }
}
