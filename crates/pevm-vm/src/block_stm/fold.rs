//! The block output of a Block-STM run: results with cumulative gas, then the state diff folded
//! from every transaction's writes and lazy payments, sharded by account.

use alloy_primitives::{map::AddressMap, Address, U256};
use pevm_core::Pool;

use crate::{
    block_stm::vm::{TxEffects, TxOutput},
    chain::block::BlockFacts,
    exec::outcome::BlockGas,
    lazy::{keep_lowest, pay, LazyCounts, Owing},
    state::diff::{apply_account, wipes_storage, AccountWrite},
    Block, BlockOutput, ExecutionError, StateDiff, StateProvider, TxResult,
};

/// Blocks of this many transactions or more fold their state diff on every worker.
pub(crate) const SHARDED_FOLD_MIN_TXS: usize = 4096;

/// The block output from the transactions' outputs: results with cumulative gas in block
/// order, then the state diff, folded by `shards` workers of `pool` that each take the
/// accounts of one shard (see [`fold_shard`]), their diffs then joined on one worker while
/// another moves the results out. The error is the one of the lowest transaction, as
/// serially: a failed transaction, a block gas overrun, or a failed read while folding. Also
/// returns how many lazy payments the block made.
pub(crate) fn fold_outputs<P: StateProvider>(
    pool: &Pool,
    shards: usize,
    provider: &P,
    block: &Block,
    mut outputs: Vec<Result<TxOutput, ExecutionError>>,
) -> Result<(BlockOutput, LazyCounts), ExecutionError> {
    let facts = BlockFacts::new(block);
    let mut counts = LazyCounts::default();
    // Results take their cumulative gas in place; the transactions up to the first failed
    // one (or gas overrun) are folded, by reference: a read failing there comes first.
    let (mut folded_txs, mut failed) = (outputs.len(), None);
    let mut gas = BlockGas::new(block);
    for (index, output) in outputs.iter_mut().enumerate() {
        let output = match gas.admit(index, block.txs[index].gas_limit) {
            Ok(()) => output.as_mut().ok(),
            Err(error) => {
                failed = Some(error);
                None
            }
        };
        let Some(output) = output else {
            folded_txs = index;
            break;
        };
        gas.add(&mut output.result);
        counts.fees += u64::from(output.effects.lazy_fee.is_some());
        counts.credits += u64::from(output.effects.lazy_credit.is_some());
    }
    let effects: Vec<&TxEffects> = outputs[..folded_txs]
        .iter()
        .flatten()
        .map(|output| &output.effects)
        .collect();
    let shard_ids: Vec<usize> = (0..shards.max(1)).collect();
    let folded = pool.map(&shard_ids, |&shard| {
        fold_shard(provider, facts, &effects, shard, shard_ids.len())
    });
    let mut parts = Vec::with_capacity(folded.len());
    let mut errors = Vec::new();
    for shard in folded {
        match shard {
            Ok((diff, slots, paid)) => {
                parts.push((diff, slots));
                counts.accounts += paid;
            }
            Err(error) => errors.push(error),
        }
    }
    let first_error = errors.into_iter().min_by_key(|(index, _)| *index);
    // The results are moved out of the outputs (the rest dropped) while the shards' diffs are
    // joined: neither needs the other, and each costs a pass over the block; on another
    // worker only where the shards had them.
    let results = move || {
        let mut outputs = outputs.into_iter();
        let results = outputs.by_ref().take(folded_txs).flatten();
        let results: Vec<TxResult> = results.map(|output| output.result).collect();
        // The failed transaction's own error, unless a gas overrun came first.
        (results, failed.or_else(|| outputs.next()?.err()))
    };
    let joined = || join(parts);
    let (state, (results, failed)) = if shards > 1 {
        pool.join(joined, results)
    } else {
        (joined(), results())
    };
    match first_error.map(|(_, error)| error).or(failed) {
        Some(error) => Err(error),
        None => Ok((BlockOutput::new(results, state), counts)),
    }
}

/// Which of `shards` folds `address`'s fields, wipes and lazy payments.
fn shard_of(address: &Address, shards: usize) -> usize {
    usize::from(address[19]) % shards
}

/// Which of `shards` folds the slot `slot` of `address`: a contract that every transaction
/// writes (a token, a pool) spreads its slots over every shard.
fn slot_shard_of(address: &Address, slot: &U256, shards: usize) -> usize {
    (usize::from(address[19]) ^ slot.as_limbs()[0] as usize) % shards
}

/// The slots a shard folded, by account: while folding, every write since the account's
/// storage was last wiped, in block order (a push, where a tree would take a search per
/// slot); once folded, each slot's last value, sorted by slot.
type Slots = AddressMap<Vec<(U256, U256)>>;

/// The block's state diff from the shards' diffs and slots: each account's fields and wipe
/// come from its shard (see [`shard_of`]), its slots from every shard (see
/// [`slot_shard_of`]), which no two shards share.
fn join(parts: Vec<(StateDiff, Slots)>) -> StateDiff {
    let mut state = StateDiff::new();
    let mut slots = Vec::new();
    for (mut diff, shard_slots) in parts {
        state.append(&mut diff);
        slots.extend(shard_slots);
    }
    // Address order, then each account's sorted runs (one per shard, of distinct slots) built
    // into its tree at once: the tree's bulk build merges sorted runs.
    slots.sort_by_key(|(address, _)| *address);
    let mut slots = slots.into_iter().peekable();
    while let Some((address, mut account_slots)) = slots.next() {
        while let Some((_, more)) = slots.next_if(|(next, _)| *next == address) {
            account_slots.extend(more);
        }
        // The account's own shard folded the write that set these slots: its change is there.
        state.entry(address).or_default().storage = account_slots.into_iter().collect();
    }
    state
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

/// The state diff of shard `shard` (of `shards`): its accounts' fields, wipes and lazy
/// payments, and its slots (see [`slot_shard_of`]), from every transaction's effects in block
/// order, and how many accounts in it were read only to be paid lazily; on a failed read, the
/// transaction index it is charged to. Lazy credits are paid in place; the fees owed to the
/// beneficiary are added up and paid before its next write and at the end (see [`Owing`]).
fn fold_shard<P: StateProvider>(
    provider: &P,
    facts: BlockFacts,
    effects: &[&TxEffects],
    shard: usize,
    shards: usize,
) -> Result<(StateDiff, Slots, u64), (usize, ExecutionError)> {
    let mine = |address: &Address| shard_of(address, shards) == shard;
    let BlockFacts {
        beneficiary,
        eip161,
        ..
    } = facts;
    let fees_here = mine(&beneficiary);
    let mut owing = Owing::default();
    let mut state = StateDiff::new();
    let mut slots = Slots::default();
    let (mut paid, mut first_error) = (0, None);
    let mut record = |result| match result {
        Ok(read) => paid += read,
        Err(error) => keep_lowest(&mut first_error, error),
    };
    for (index, effect) in effects.iter().enumerate() {
        for (address, write) in &effect.writes {
            // Only a write wipes slots: a lazy payment removes an account only when it is
            // empty after it (EIP-161), and an account whose slots the block wrote has code or
            // a nonce until a write destroys it.
            if wipes_storage(write) {
                slots.remove(address);
            }
            if let AccountWrite::Updated { storage, .. } = write {
                let mut here = storage
                    .iter()
                    .filter(|(slot, _)| {
                        shards == 1 || slot_shard_of(address, slot, shards) == shard
                    })
                    .peekable();
                if here.peek().is_some() {
                    slots.entry(*address).or_default().extend(here);
                }
            }
            if !mine(address) {
                // Another shard folds the account's fields and wipe.
                continue;
            }
            if *address == beneficiary {
                record(
                    owing
                        .settle_fees(provider, beneficiary, &mut state, eip161)
                        .map(u64::from),
                );
            }
            apply_account(state.entry(*address).or_default(), write);
        }
        if let Some(fee) = effect.lazy_fee.filter(|_| fees_here) {
            owing.fee(index, fee);
        }
        if let Some((address, value)) = effect.lazy_credit.filter(|(a, _)| mine(a)) {
            record(pay(provider, address, index, [value], &mut state, eip161).map(u64::from));
        }
    }
    record(owing.settle(provider, beneficiary, &mut state, eip161));
    if let Some(error) = first_error {
        return Err(error);
    }
    let slots = slots
        .into_iter()
        .map(|(address, writes)| (address, last_values(writes)))
        .collect();
    Ok((state, slots, paid))
}
