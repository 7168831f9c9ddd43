//! Critical-path analysis of a block: from each transaction's dependencies and cost, the
//! ideal parallel speedup, and a list-scheduling simulation on a given number of workers.

use crate::TxIdx;

/// A block's transactions as a dependency DAG with a cost per transaction.
#[derive(Clone, Debug, Default)]
pub struct DependencyGraph {
    /// Per transaction: the lower transactions it depends on.
    deps: Vec<Vec<TxIdx>>,
    /// Per transaction: its cost (for instance its serial execution time in seconds).
    costs: Vec<f64>,
}

impl DependencyGraph {
    /// A graph from per-transaction dependencies (each on lower indices only; others are
    /// ignored) and costs of the same length.
    pub fn new(deps: Vec<Vec<TxIdx>>, costs: Vec<f64>) -> Self {
        assert_eq!(deps.len(), costs.len(), "one cost per transaction");
        let deps = deps
            .into_iter()
            .enumerate()
            .map(|(tx, d)| d.into_iter().filter(|&dep| dep < tx).collect())
            .collect();
        Self { deps, costs }
    }

    /// Total cost: the time of serial execution.
    pub fn work(&self) -> f64 {
        self.costs.iter().sum()
    }

    /// The costliest chain of dependent transactions.
    pub fn critical_path(&self) -> f64 {
        let mut finish = vec![0.0f64; self.costs.len()];
        for tx in 0..self.costs.len() {
            let start = self.deps[tx].iter().map(|&d| finish[d]).fold(0.0, f64::max);
            finish[tx] = start + self.costs[tx];
        }
        finish.into_iter().fold(0.0, f64::max)
    }

    /// The ideal speedup with unlimited workers: work over critical path (1 for an empty
    /// block).
    pub fn bound(&self) -> f64 {
        let path = self.critical_path();
        if path > 0.0 {
            self.work() / path
        } else {
            1.0
        }
    }

    /// The speedup of greedy list scheduling on `workers` workers with no overhead:
    /// transactions start in index order, each on the worker free first, once its
    /// dependencies have finished.
    pub fn simulated_speedup(&self, workers: usize) -> f64 {
        let mut free_at = vec![0.0f64; workers.max(1)];
        let mut finish = vec![0.0f64; self.costs.len()];
        for tx in 0..self.costs.len() {
            let ready = self.deps[tx].iter().map(|&d| finish[d]).fold(0.0, f64::max);
            let (worker, &free) = free_at
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .expect("at least one worker");
            finish[tx] = free.max(ready) + self.costs[tx];
            free_at[worker] = finish[tx];
        }
        let makespan = finish.into_iter().fold(0.0, f64::max);
        if makespan > 0.0 {
            self.work() / makespan
        } else {
            1.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn independent_transactions_scale_with_workers() {
        let graph = DependencyGraph::new(vec![vec![]; 8], vec![1.0; 8]);
        assert_eq!(graph.work(), 8.0);
        assert_eq!(graph.critical_path(), 1.0);
        assert_eq!(graph.bound(), 8.0);
        assert_eq!(graph.simulated_speedup(2), 2.0);
        assert_eq!(graph.simulated_speedup(4), 4.0);
        assert_eq!(graph.simulated_speedup(16), 8.0);
    }

    #[test]
    fn a_chain_does_not_scale() {
        let deps = (0..5)
            .map(|tx| if tx == 0 { vec![] } else { vec![tx - 1] })
            .collect();
        let graph = DependencyGraph::new(deps, vec![2.0; 5]);
        assert_eq!(graph.critical_path(), 10.0);
        assert_eq!(graph.bound(), 1.0);
        assert_eq!(graph.simulated_speedup(8), 1.0);
    }

    #[test]
    fn one_heavy_transaction_bounds_the_block() {
        // tx 0 costs 6; txs 1..=6 cost 1 each, and tx 6 depends on tx 0.
        let mut deps = vec![vec![]; 7];
        deps[6] = vec![0];
        let mut costs = vec![1.0; 7];
        costs[0] = 6.0;
        let graph = DependencyGraph::new(deps, costs);
        assert_eq!(graph.work(), 12.0);
        assert_eq!(graph.critical_path(), 7.0);
        assert!((graph.bound() - 12.0 / 7.0).abs() < 1e-12);
        // Two workers: tx 0 on one, txs 1..=5 on the other (done at 5), tx 6 at 6..7.
        assert!((graph.simulated_speedup(2) - 12.0 / 7.0).abs() < 1e-12);
    }

    #[test]
    fn dependencies_on_later_transactions_are_ignored() {
        let graph = DependencyGraph::new(vec![vec![1], vec![]], vec![1.0, 1.0]);
        assert_eq!(graph.critical_path(), 1.0);
    }
}
