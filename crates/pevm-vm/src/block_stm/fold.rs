//! The block output of a Block-STM run, folded one committed transaction at a time (while
//! later ones still run): results with cumulative gas, and the state diff from every
//! transaction's writes and lazy payments.

use alloy_primitives::{map::AddressMap, U256};
use pevm_core::Pool;

use crate::{
    block_stm::vm::TxOutput,
    chain::block::BlockFacts,
    exec::outcome::BlockGas,
    lazy::{keep_lowest, pay, LazyCounts, Owing},
    state::diff::{apply_account, wipes_storage, AccountWrite},
    Block, BlockOutput, ExecutionError, StateDiff, StateProvider, TxResult,
};

/// The block output folded so far from the transactions' outputs, handed in in block order
/// (see [`Self::add`]). Lazy credits are paid in place; the fees owed to the beneficiary are
/// added up and paid before its next write and at the end (see [`Owing`]).
pub(crate) struct Fold<'a, P> {
    provider: &'a P,
    block: &'a Block,
    facts: BlockFacts,
    gas: BlockGas,
    counts: LazyCounts,
    owing: Owing,
    results: Vec<TxResult>,
    state: StateDiff,
    /// Per account, every slot written since its storage was last wiped, in block order: a
    /// push, where the diff's tree (or a hash map) would take a search per slot; sorted into
    /// the tree once, at the end.
    slots: AddressMap<Vec<(U256, U256)>>,
    /// The failed transaction or gas overrun that ended the fold.
    failed: Option<ExecutionError>,
    /// The lowest transaction a failed read while folding is charged to, with its error.
    read_error: Option<(usize, ExecutionError)>,
}

impl<'a, P: StateProvider> Fold<'a, P> {
    /// An empty fold of `block` over `provider`.
    pub(crate) fn new(provider: &'a P, block: &'a Block) -> Self {
        Self {
            provider,
            block,
            facts: BlockFacts::new(block),
            gas: BlockGas::new(block),
            counts: LazyCounts::default(),
            owing: Owing::default(),
            results: Vec::with_capacity(block.txs.len()),
            state: StateDiff::new(),
            slots: AddressMap::default(),
            failed: None,
            read_error: None,
        }
    }

    /// Folds transaction `index`'s output, the one after the last folded; nothing more once
    /// a transaction failed or overran the block's gas.
    pub(crate) fn add(&mut self, index: usize, output: Result<TxOutput, ExecutionError>) {
        if self.failed.is_some() || self.read_error.is_some() {
            return;
        }
        let admitted = self.gas.admit(index, self.block.txs[index].gas_limit);
        let mut output = match admitted.and(output) {
            Ok(output) => output,
            Err(error) => {
                self.failed = Some(error);
                return;
            }
        };
        self.gas.add(&mut output.result);
        let effects = &output.effects;
        let BlockFacts {
            beneficiary,
            eip161,
            ..
        } = self.facts;
        let (provider, state) = (self.provider, &mut self.state);
        let mut record = |result| match result {
            Ok(read) => self.counts.accounts += read,
            Err(error) => keep_lowest(&mut self.read_error, error),
        };
        for (address, write) in &effects.writes {
            // Only a write wipes slots: a lazy payment removes an account only when it is
            // empty after it (EIP-161), and an account whose slots the block wrote has code or
            // a nonce until a write destroys it.
            if wipes_storage(write) {
                self.slots.remove(address);
            }
            if let AccountWrite::Updated { storage, .. } = write {
                if !storage.is_empty() {
                    self.slots
                        .entry(*address)
                        .or_default()
                        .extend(storage.iter().copied());
                }
            }
            if *address == beneficiary {
                let paid = self.owing.settle_fees(provider, beneficiary, state, eip161);
                record(paid.map(u64::from));
            }
            apply_account(state.entry(*address).or_default(), write);
        }
        if let Some(fee) = effects.lazy_fee {
            self.owing.fee(index, fee);
            self.counts.fees += 1;
        }
        if let Some(credit) = &effects.lazy_credit {
            let shown = Some(&credit.shown);
            let paid = pay(
                provider,
                credit.to,
                index,
                [credit.value],
                shown,
                state,
                eip161,
            );
            record(paid.map(u64::from));
            self.counts.credits += 1;
        }
        self.results.push(output.result);
    }

    /// The block output, with how many lazy payments it made; the error is the one of the
    /// lowest transaction, as serially: a failed read while folding (always charged to a
    /// transaction folded), else the failed transaction or gas overrun. The storage of
    /// accounts with many slots written is sorted on the workers of `pool`.
    pub(crate) fn finish(
        mut self,
        pool: &Pool,
    ) -> Result<(BlockOutput, LazyCounts), ExecutionError> {
        let BlockFacts {
            beneficiary,
            eip161,
            ..
        } = self.facts;
        let paid = self
            .owing
            .settle(self.provider, beneficiary, &mut self.state, eip161);
        match paid {
            Ok(read) => self.counts.accounts += read,
            Err(error) => keep_lowest(&mut self.read_error, error),
        }
        if let Some(error) = self.read_error.map(|(_, error)| error).or(self.failed) {
            return Err(error);
        }
        for (address, writes) in self.slots {
            // The write that set these slots made the account's change; sorted, the tree is
            // built at once.
            let storage = last_values(writes, pool).into_iter().collect();
            self.state.entry(address).or_default().storage = storage;
        }
        Ok((BlockOutput::new(self.results, self.state), self.counts))
    }
}

/// The fewest writes to one account whose sort [`last_values`] splits by leading byte and
/// shares out among the workers; fewer sort faster at once.
const SPLIT_SORT_MIN: usize = 8192;

/// Each slot's last value of `writes` (in block order), sorted by slot, on the workers of
/// `pool`.
///
/// Many writes are first split by their slot's leading byte (a stable counting sort), and the
/// 256 runs then sorted apart: each run fits in the caches, and the workers share them out.
/// Slots are mostly hashes (mapping entries), so the runs are even; where they are not (small
/// slot numbers), one run holds them and it is one sort as without the split.
fn last_values(writes: Vec<(U256, U256)>, pool: &Pool) -> Vec<(U256, U256)> {
    let lead = |slot: &U256| (slot.as_limbs()[3] >> 56) as usize;
    let mut sorted = if writes.len() < SPLIT_SORT_MIN {
        let mut writes = writes;
        // Stable: a slot's writes stay in block order, and the last one is kept.
        writes.sort_by_key(|(slot, _)| *slot);
        writes
    } else {
        let mut ends = [0usize; 256];
        for (slot, _) in &writes {
            ends[lead(slot)] += 1;
        }
        let mut end = 0;
        for count in &mut ends {
            end += *count;
            *count = end;
        }
        // Filled from each run's end backwards, in reverse block order: block order in runs.
        let mut split = vec![(U256::ZERO, U256::ZERO); writes.len()];
        for write in writes.into_iter().rev() {
            let end = &mut ends[lead(&write.0)];
            *end -= 1;
            split[*end] = write;
        }
        let mut runs = Vec::with_capacity(256);
        let mut rest = split.as_mut_slice();
        for start in ends.iter().rev() {
            let (left, run) = rest.split_at_mut(*start);
            runs.push(run);
            rest = left;
        }
        pool.for_each_mut(&mut runs, |_, run| run.sort_by_key(|(slot, _)| *slot));
        split
    };
    sorted.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 = later.1;
        }
        same
    });
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Split or not, on any number of workers, the last value of each slot, sorted: what a
    /// tree fed the writes in order holds.
    #[test]
    fn last_values_keeps_each_slots_last_write() {
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 11
        };
        for len in [0, 5, SPLIT_SORT_MIN - 1, SPLIT_SORT_MIN * 3] {
            // Hashed slots with repeats, and small slot numbers that all lead with a zero byte.
            let writes: Vec<(U256, U256)> = (0..len)
                .map(|_| {
                    let slot = match next() % 3 {
                        0 => U256::from(next() % 64),
                        _ => U256::from(next() % 4096) << 244 | U256::from(next() % 8),
                    };
                    (slot, U256::from(next()))
                })
                .collect();
            let tree: BTreeMap<U256, U256> = writes.iter().copied().collect();
            let expected: Vec<(U256, U256)> = tree.into_iter().collect();
            for workers in [1, 3] {
                let got = last_values(writes.clone(), &Pool::new(workers));
                assert_eq!(got, expected, "{len} writes, {workers} workers");
            }
        }
    }
}
