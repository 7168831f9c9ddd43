//! The cost-aware choice of parallelism: before a block runs, an estimate from the
//! transactions alone (their weights and the dependencies known up front) decides whether
//! parallel execution can win, and with how many workers.
//!
//! A transaction's weight is its gas limit, capped: a plain transfer (a call without calldata)
//! weighs at most the 21,000 gas it really costs (old blocks often give transfers limits far
//! above what they use), any other transaction at most [`CALL_WEIGHT_CAP`] (limits of calls
//! are generous, and a block's few huge limits would otherwise hide its many cheap
//! transactions). The engine's own work costs about [`ENGINE_COST`] per transaction.
//!
//! The constants were calibrated on the shared mainnet blocks and the gigagas workloads at 2
//! threads (see `BENCHMARKS.md`): with them, no block the plan sends to the engine was slower
//! than serial there.

use alloy_primitives::{Address, TxKind};
use pevm_core::TxIdx;
use revm::context::TxEnv;

/// Below this much weight, waking workers and merging their results costs more than a second
/// core saves: the block runs serially.
pub const MIN_PARALLEL_GAS: u64 = 4_000_000;

/// The estimated speedup, as a fraction `NUM / DEN` (1.3), under which a block runs serially:
/// work over the estimated parallel time, which is the longer of the critical path and the
/// work plus the engine's cost per transaction shared by the workers, plus the engine's cost
/// per block.
const MIN_BOUND: (u64, u64) = (13, 10);

/// How many transactions, from the start of a block, the plan looks at: enough to see the
/// shape of any mainnet block whole, and to keep the plan's cost (a hash-map lookup per
/// transaction) small beside the execution of a block of tens of thousands.
pub const PLAN_SAMPLE: usize = 4096;

/// The most a plain transfer weighs.
pub(crate) const TRANSFER_WEIGHT: u64 = 21_000;

/// The most any other transaction weighs.
pub const CALL_WEIGHT_CAP: u64 = 500_000;

/// The engine's own cost per transaction, in gas of the serial executor's speed.
pub const ENGINE_COST: u64 = 12_000;

/// The transfer strategy's own cost per transaction (see [`Strategy::Transfers`]), in gas of the
/// serial executor's speed: no multi-version memory, only the merge of the results.
pub const TRANSFER_COST: u64 = 4_000;

/// The engine's own cost per block (waking the workers, resetting the memory, folding the
/// results: some tens of microseconds), in gas of the serial executor's speed.
pub const BLOCK_COST: u64 = 800_000;

/// The estimated cost of `tx`, in gas.
fn weight(tx: &TxEnv) -> u64 {
    match tx.kind {
        TxKind::Call(_) if tx.data.is_empty() => tx.gas_limit.min(TRANSFER_WEIGHT),
        _ => tx.gas_limit.min(CALL_WEIGHT_CAP),
    }
}

/// `gas` of a sample of `sample_size` transactions, scaled to a block of `block_size`.
fn scaled(gas: u64, sample_size: usize, block_size: usize) -> u64 {
    let scaled = u128::from(gas) * block_size as u128 / sample_size.max(1) as u128;
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

/// Which executor runs a block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// The serial executor, with no engine at all.
    #[default]
    Serial,
    /// A block of plain transfers: groups of transactions that share no account run on the
    /// workers without speculation, their dependencies being known exactly up front.
    Transfers,
    /// Block-STM.
    BlockStm,
}

impl Strategy {
    /// The strategy's name in reports: `serial`, `transfers` or `block-stm`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Serial => "serial",
            Self::Transfers => "transfers",
            Self::BlockStm => "block-stm",
        }
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;

    /// The strategy named `serial`, `transfers` or `block-stm`.
    fn from_str(name: &str) -> Result<Self, String> {
        [Self::Serial, Self::Transfers, Self::BlockStm]
            .into_iter()
            .find(|strategy| strategy.name() == name)
            .ok_or_else(|| format!("unknown strategy {name:?}: serial, transfers or block-stm"))
    }
}

/// What running a block can use and what its reads cost: the input of every plan beside the
/// transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    /// The most workers the block may run on.
    pub concurrency: usize,
    /// What the state's reads cost each transaction beyond reads from memory, in gas of the
    /// serial executor's speed (see [`read_gas`]): a slow store makes every transaction
    /// heavier, and parallel workers overlap its waits.
    pub read_gas: u64,
}

impl Cost {
    /// Up to `concurrency` workers over state in memory.
    pub fn in_memory(concurrency: usize) -> Self {
        Self {
            concurrency,
            read_gas: 0,
        }
    }
}

/// A read from memory, of an account already in the caches, takes well under this; only the
/// time a read takes beyond it counts.
const MEMORY_READ_NS: u64 = 300;

/// The reads a transaction makes, as the plan counts them (sender, recipient, code, a slot).
const READS_PER_TX: u64 = 4;

/// The serial executor's speed the plan's gas is counted in: gas per nanosecond (the
/// engine's [`ENGINE_COST`] of 12,000 gas is about 6 µs).
const GAS_PER_NS: u64 = 2;

/// What reads taking `read_ns` each cost a transaction, in gas of the serial executor's speed.
pub fn read_gas(read_ns: u64) -> u64 {
    read_ns
        .saturating_sub(MEMORY_READ_NS)
        .saturating_mul(READS_PER_TX * GAS_PER_NS)
}

/// How a block is executed, decided before it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The executor that runs the block.
    pub strategy: Strategy,
    /// Workers the block runs on; 1 with [`Strategy::Serial`].
    pub workers: usize,
    /// Sum of the transactions' weights (gas limits; 21,000 for plain transfers): the
    /// estimated work.
    pub total_gas: u64,
    /// Weights along the longest chain of known dependencies: the estimated critical path
    /// (only the heaviest transaction's when [`Plan::independent`] already ran the block
    /// serially, without looking for dependencies).
    pub critical_gas: u64,
}

impl Plan {
    /// The plan for a block of `block_size` transactions on at most `concurrency` workers,
    /// estimated from its first transactions `txs` (see [`PLAN_SAMPLE`]), where
    /// `known_dependencies[i]` is the lower transaction that transaction `i` is known to
    /// depend on. Work and critical path are scaled from the sample to the whole block.
    pub fn new(
        txs: &[TxEnv],
        known_dependencies: &[Option<TxIdx>],
        cost: Cost,
        block_size: usize,
    ) -> Self {
        let mut path: Vec<u64> = Vec::with_capacity(txs.len());
        let (mut total_gas, mut critical_gas) = (0u64, 0u64);
        for (tx, dependency) in txs.iter().zip(known_dependencies) {
            let before = dependency.and_then(|d| path.get(d).copied()).unwrap_or(0);
            let weight = weight(tx).saturating_add(cost.read_gas);
            let length = before.saturating_add(weight);
            path.push(length);
            total_gas = total_gas.saturating_add(weight);
            critical_gas = critical_gas.max(length);
        }
        let scale = |gas| scaled(gas, txs.len(), block_size);
        let (total_gas, critical_gas) = (scale(total_gas), scale(critical_gas));
        let overhead = (block_size as u64).saturating_mul(ENGINE_COST);
        Self::estimated(
            Strategy::BlockStm,
            total_gas,
            critical_gas,
            overhead,
            cost.concurrency,
        )
    }

    /// The plan for a block of `block_size` transactions, estimated from its first `txs` as
    /// if none depended on another, at the transfer strategy's cost when they could all be
    /// plain transfers (calls without calldata or authorisation, `beneficiary` neither
    /// sender nor recipient; see [`Strategy::Transfers`]): a bound on what [`Self::new`] and
    /// [`Self::transfers`] give, since dependencies only lengthen the critical path. When
    /// this plan is already serial, the block is run serially without the hashing that
    /// finding its dependencies costs (a few percent of a block of cheap transactions).
    pub fn independent(txs: &[TxEnv], beneficiary: Address, cost: Cost, block_size: usize) -> Self {
        let (mut total_gas, mut heaviest, mut transfers) = (0u64, 0u64, true);
        for tx in txs {
            let weight = weight(tx).saturating_add(cost.read_gas);
            total_gas = total_gas.saturating_add(weight);
            heaviest = heaviest.max(weight);
            transfers &= plain_call(tx, beneficiary).is_some();
        }
        let (strategy, per_tx) = if transfers {
            (Strategy::Transfers, TRANSFER_COST)
        } else {
            (Strategy::BlockStm, ENGINE_COST)
        };
        let total_gas = scaled(total_gas, txs.len(), block_size);
        let overhead = (block_size as u64).saturating_mul(per_tx);
        Self::estimated(strategy, total_gas, heaviest, overhead, cost.concurrency)
    }

    /// The plan for a block of `block_size` plain transfers whose largest group of
    /// transactions sharing an account has `largest_group` of them (see [`Strategy::Transfers`]).
    pub fn transfers(block_size: usize, largest_group: usize, cost: Cost) -> Self {
        let weight = TRANSFER_WEIGHT.saturating_add(cost.read_gas);
        let total_gas = (block_size as u64).saturating_mul(weight);
        let critical_gas = (largest_group as u64).saturating_mul(weight);
        let overhead = (block_size as u64).saturating_mul(TRANSFER_COST);
        Self::estimated(
            Strategy::Transfers,
            total_gas,
            critical_gas,
            overhead,
            cost.concurrency,
        )
    }

    /// The plan on `strategy` with the workers [`choose_workers`] picks; serial on one.
    fn estimated(
        strategy: Strategy,
        total_gas: u64,
        critical_gas: u64,
        overhead: u64,
        concurrency: usize,
    ) -> Self {
        let workers = choose_workers(total_gas, critical_gas, overhead, concurrency);
        Self {
            strategy: if workers > 1 {
                strategy
            } else {
                Strategy::Serial
            },
            workers,
            total_gas,
            critical_gas,
        }
    }
}

impl Plan {
    /// Why the plan chose what it did, in words: the strategy and workers, the estimated work
    /// and critical path, and the speedup they bound.
    pub fn describe(&self) -> String {
        let m = |gas: u64| match gas {
            0..1_000_000 => format!("{}k gas", gas / 1_000),
            _ => format!("{:.1}M gas", gas as f64 / 1e6),
        };
        let bound = self.total_gas as f64
            / (self
                .critical_gas
                .max(self.total_gas / self.workers.max(1) as u64))
            .max(1) as f64;
        match self.strategy {
            Strategy::Serial if self.total_gas < MIN_PARALLEL_GAS => format!(
                "serial: {} of estimated work, under the {} a second worker needs to pay off",
                m(self.total_gas),
                m(MIN_PARALLEL_GAS)
            ),
            Strategy::Serial => format!(
                "serial: {} of estimated work with a critical path of {}, too little to gain \
                 x1.3",
                m(self.total_gas),
                m(self.critical_gas)
            ),
            Strategy::Transfers => format!(
                "transfers on {} workers: plain transfers in groups sharing no account, {} of \
                 work, largest group {} (at most x{bound:.2})",
                self.workers,
                m(self.total_gas),
                m(self.critical_gas)
            ),
            Strategy::BlockStm => format!(
                "block-stm on {} workers: {} of estimated work, critical path {} (at most \
                 x{bound:.2})",
                self.workers,
                m(self.total_gas),
                m(self.critical_gas)
            ),
        }
    }
}

/// The fewest workers, up to `concurrency`, that reach the best estimated time for a block
/// of `total_gas` work with a critical path of `critical_gas` and `overhead` of engine work;
/// 1 (serial) when that block is too small, or the estimate's speedup under [`MIN_BOUND`].
fn choose_workers(total_gas: u64, critical_gas: u64, overhead: u64, concurrency: usize) -> usize {
    // On `w` workers the block takes at least its critical path, and at least its work plus
    // the engine's own work shared by `w`; plus the cost per block.
    let parallel_time = |w: u64| {
        let shared = total_gas.saturating_add(overhead).div_ceil(w.max(1));
        critical_gas.max(shared).saturating_add(BLOCK_COST)
    };
    let best = (2..=concurrency.max(1) as u64)
        .min_by_key(|&w| (parallel_time(w), w))
        .unwrap_or(1);
    let parallel = total_gas >= MIN_PARALLEL_GAS
        && u128::from(total_gas) * u128::from(MIN_BOUND.1)
            >= u128::from(parallel_time(best)) * u128::from(MIN_BOUND.0);
    if parallel {
        (best as usize).min(concurrency.max(1))
    } else {
        1
    }
}

/// The recipient of `tx` when it is a call without calldata or EIP-7702 authorisation in
/// which `beneficiary` is neither sender nor recipient: a plain transfer, unless the recipient
/// is a precompile or has code.
pub(crate) fn plain_call(tx: &TxEnv, beneficiary: Address) -> Option<Address> {
    let TxKind::Call(to) = tx.kind else {
        return None;
    };
    let plain = tx.data.is_empty()
        && tx.authorization_list.is_empty()
        && tx.caller != beneficiary
        && to != beneficiary;
    plain.then_some(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan of a block that is all sample.
    fn whole(txs: &[TxEnv], known: &[Option<TxIdx>], concurrency: usize) -> Plan {
        Plan::new(txs, known, Cost::in_memory(concurrency), txs.len())
    }

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
        let block = txs(&[400_000; 40]);
        let plan = whole(&block, &[None; 40], 8);
        assert_eq!(plan.workers, 8);
        assert_eq!((plan.total_gas, plan.critical_gas), (16_000_000, 400_000));
        assert_eq!(whole(&block, &[None; 40], 1).workers, 1);
    }

    #[test]
    fn chain_and_small_blocks_run_serially() {
        let block = txs(&[400_000; 40]);
        let chain: Vec<_> = (0..40).map(|i: usize| i.checked_sub(1)).collect();
        let plan = whole(&block, &chain, 8);
        assert_eq!((plan.workers, plan.critical_gas), (1, 16_000_000));
        let small = txs(&[21_000; 40]);
        assert_eq!(whole(&small, &[None; 40], 8).workers, 1);
        assert_eq!(whole(&block[..1], &[None], 8).workers, 1);
        // Plain transfers weigh 21,000 whatever their gas limit, calls at most the cap.
        let mut transfers = txs(&[1_000_000; 40]);
        for tx in &mut transfers {
            tx.kind = TxKind::Call(Default::default());
            tx.data = Default::default();
        }
        let plan = whole(&transfers, &[None; 40], 8);
        assert_eq!((plan.workers, plan.total_gas), (1, 840_000));
        let plan = whole(&txs(&[30_000_000; 10]), &[None; 10], 8);
        assert_eq!(plan.total_gas, 10 * CALL_WEIGHT_CAP);
    }

    #[test]
    fn workers_are_bounded_by_the_estimated_speedup() {
        // Two chains of 20: the critical path (8M) bounds the time; two workers come close
        // (8.24M with the engine's cost), a third reaches it, more add nothing.
        let block = txs(&[400_000; 40]);
        let two_chains: Vec<_> = (0..40).map(|i: usize| i.checked_sub(2)).collect();
        let plan = whole(&block, &two_chains, 8);
        assert_eq!((plan.workers, plan.critical_gas), (3, 8_000_000));
        assert_eq!(whole(&block, &two_chains, 2).workers, 2);
    }

    #[test]
    fn cheap_transactions_do_not_pay_for_the_engine() {
        // Independent plain transfers: the engine's cost per transaction eats the gain at 2
        // workers, not at 8.
        let mut transfers = txs(&[21_000; 1000]);
        for tx in &mut transfers {
            tx.kind = TxKind::Call(Default::default());
            tx.data = Default::default();
        }
        let transfers = [transfers.clone(), transfers].concat();
        let none = vec![None; transfers.len()];
        assert_eq!(whole(&transfers, &none, 2).workers, 1);
        assert_eq!(whole(&transfers, &none, 8).workers, 8);
    }

    #[test]
    fn sample_is_scaled_to_the_block() {
        let block = txs(&[400_000; 40]);
        let plan = Plan::new(&block, &[None; 40], Cost::in_memory(8), 4000);
        assert_eq!(
            (plan.total_gas, plan.critical_gas),
            (1_600_000_000, 40_000_000)
        );
        // A small sample of a big block: parallel although the sample alone is too small.
        let small = txs(&[100_000; 10]);
        assert_eq!(whole(&small, &[None; 10], 2).workers, 1);
        assert_eq!(
            Plan::new(&small, &[None; 10], Cost::in_memory(2), 1000).workers,
            2
        );
    }

    #[test]
    fn transfer_blocks_are_planned_from_their_largest_group() {
        // Independent transfers: cheap enough on the transfer strategy for two workers.
        let plan = Plan::transfers(47_619, 1, Cost::in_memory(2));
        assert_eq!((plan.strategy, plan.workers), (Strategy::Transfers, 2));
        assert_eq!(plan.critical_gas, TRANSFER_WEIGHT);
        // One chain, or too little work: serial.
        assert_eq!(
            Plan::transfers(47_619, 47_619, Cost::in_memory(8)).strategy,
            Strategy::Serial
        );
        assert_eq!(
            Plan::transfers(150, 1, Cost::in_memory(8)).strategy,
            Strategy::Serial
        );
        // Two chains of equal length: a third worker takes the engine's own cost off the
        // chains' critical path, more add nothing.
        assert_eq!(Plan::transfers(2_000, 1_000, Cost::in_memory(8)).workers, 3);
    }

    #[test]
    fn independent_plan_bounds_the_others() {
        // Too little work: serial before any dependency is looked for.
        let small = txs(&[100_000; 30]);
        let plan = Plan::independent(&small, Address::ZERO, Cost::in_memory(8), small.len());
        assert_eq!(
            (plan.strategy, plan.total_gas),
            (Strategy::Serial, 3_000_000)
        );
        // Enough work without dependencies, none along a chain.
        let block = txs(&[400_000; 40]);
        let plan = Plan::independent(&block, Address::ZERO, Cost::in_memory(8), block.len());
        assert_eq!((plan.strategy, plan.workers), (Strategy::BlockStm, 8));
        assert_eq!(plan.critical_gas, 400_000);
        let chain: Vec<_> = (0..40).map(|i: usize| i.checked_sub(1)).collect();
        assert_eq!(whole(&block, &chain, 8).strategy, Strategy::Serial);
        // Plain transfers are estimated at the transfer strategy's cost: too many for the
        // engine at 2 workers, not for the transfer strategy.
        let mut transfers = txs(&[21_000; 1_414]);
        for tx in &mut transfers {
            tx.kind = TxKind::Call(Default::default());
            tx.data = Default::default();
        }
        let beneficiary = Address::with_last_byte(1);
        let plan = Plan::independent(&transfers, beneficiary, Cost::in_memory(2), transfers.len());
        assert_eq!((plan.strategy, plan.workers), (Strategy::Transfers, 2));
        assert_eq!(whole(&transfers, &vec![None; 1_414], 2).workers, 1);
        assert_eq!(Plan::transfers(1_414, 1, Cost::in_memory(2)), plan);
        // Unless the beneficiary sends or receives one: then at the engine's cost.
        transfers[700].caller = beneficiary;
        let plan = Plan::independent(&transfers, beneficiary, Cost::in_memory(2), transfers.len());
        assert_eq!(plan.strategy, Strategy::Serial);
        transfers[700].caller = Address::ZERO;
        transfers[900].kind = TxKind::Call(beneficiary);
        let plan = Plan::independent(&transfers, beneficiary, Cost::in_memory(2), transfers.len());
        assert_eq!(plan.strategy, Strategy::Serial);
    }

    #[test]
    fn strategies_are_named() {
        for strategy in [Strategy::Serial, Strategy::Transfers, Strategy::BlockStm] {
            assert_eq!(strategy.name().parse(), Ok(strategy));
        }
        assert!("parallel".parse::<Strategy>().is_err());
    }
}
