//! The cost-aware choice of parallelism: before a block runs, an estimate from the
//! transactions alone (gas limits and the dependencies known up front) decides whether
//! parallel execution can win, and with how many workers.

use pevm_core::TxIdx;
use revm::context::TxEnv;

/// Below this much gas (summed gas limits), waking workers and merging their results costs
/// more than a second core saves: the block runs serially.
pub const MIN_PARALLEL_GAS: u64 = 4_000_000;

/// The estimated speedup, as a fraction `NUM / DEN` (1.25), under which a block runs serially.
const MIN_BOUND: (u64, u64) = (5, 4);

/// How a block is executed, decided before it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Workers the block runs on; 1 means the serial executor, with no engine at all.
    pub workers: usize,
    /// Sum of the transactions' gas limits: the estimated work.
    pub total_gas: u64,
    /// Gas limits along the longest chain of known dependencies: the estimated critical path.
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
            let length = before.saturating_add(tx.gas_limit);
            path.push(length);
            total_gas = total_gas.saturating_add(tx.gas_limit);
            critical_gas = critical_gas.max(length);
        }
        // The estimated speedup is total / critical; it also bounds the useful workers.
        let parallel = txs.len() >= 2
            && total_gas >= MIN_PARALLEL_GAS
            && u128::from(total_gas) * u128::from(MIN_BOUND.1)
                >= u128::from(critical_gas) * u128::from(MIN_BOUND.0);
        let useful = total_gas.div_ceil(critical_gas.max(1));
        let workers = if parallel {
            concurrency
                .min(usize::try_from(useful).unwrap_or(usize::MAX))
                .max(2)
        } else {
            1
        };
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
        assert_eq!(Plan::new(&block[..1], &[None], 8).workers, 1);
    }

    #[test]
    fn workers_are_bounded_by_the_estimated_speedup() {
        // Two chains of 20: at most two workers are useful.
        let block = txs(&[1_000_000; 40]);
        let two_chains: Vec<_> = (0..40).map(|i: usize| i.checked_sub(2)).collect();
        let plan = Plan::new(&block, &two_chains, 8);
        assert_eq!((plan.workers, plan.critical_gas), (2, 20_000_000));
    }
}
