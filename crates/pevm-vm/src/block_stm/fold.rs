//! The block output of a Block-STM run, folded one committed transaction at a time (while
//! later ones still run): results with cumulative gas, and the state diff from every
//! transaction's writes and lazy payments.

use alloy_primitives::{map::AddressMap, U256};

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
        if let Some((address, value)) = effects.lazy_credit {
            record(pay(provider, address, index, [value], state, eip161).map(u64::from));
            self.counts.credits += 1;
        }
        self.results.push(output.result);
    }

    /// The block output, with how many lazy payments it made; the error is the one of the
    /// lowest transaction, as serially: a failed read while folding (always charged to a
    /// transaction folded), else the failed transaction or gas overrun.
    pub(crate) fn finish(mut self) -> Result<(BlockOutput, LazyCounts), ExecutionError> {
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
            let storage = last_values(writes).into_iter().collect();
            self.state.entry(address).or_default().storage = storage;
        }
        Ok((BlockOutput::new(self.results, self.state), self.counts))
    }
}

/// Each slot's last value of `writes` (in block order), sorted by slot.
fn last_values(mut writes: Vec<(U256, U256)>) -> Vec<(U256, U256)> {
    // Stable: a slot's writes stay in block order, and the last one is kept.
    writes.sort_by_key(|(slot, _)| *slot);
    let mut last: Vec<(U256, U256)> = Vec::with_capacity(writes.len());
    for (slot, value) in writes {
        match last.last_mut() {
            Some(kept) if kept.0 == slot => kept.1 = value,
            _ => last.push((slot, value)),
        }
    }
    last
}
