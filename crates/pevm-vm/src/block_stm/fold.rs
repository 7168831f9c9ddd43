//! The block output of a Block-STM run: results with cumulative gas, then the state diff folded
//! from every transaction's writes and lazy payments, sharded by account.

use alloy_primitives::{map::AddressSet, Address, U256};
use pevm_core::Pool;

use crate::{
    block_stm::{
        mv_db::BlockFacts,
        vm::{TxEffects, TxOutput},
    },
    exec::{
        outcome::BlockGas,
        output::{apply_write, fee_write, AccountState},
    },
    strategy::stats::BlockStats,
    Block, BlockOutput, ExecutionError, StateDiff, StateProvider,
};

/// Blocks of this many transactions or more fold their state diff on every worker.
pub(crate) const SHARDED_FOLD_MIN_TXS: usize = 4096;

/// The block output from the transactions' outputs: results with cumulative gas in block
/// order, then the state diff, folded by `shards` workers of `pool` that each take the
/// accounts of one shard (see [`fold_shard`]). The error is the one of the lowest
/// transaction, as serially: a failed transaction, a block gas overrun, or a failed read
/// while folding.
pub(crate) fn fold_outputs<P: StateProvider>(
    pool: &Pool,
    shards: usize,
    provider: &P,
    block: &Block,
    facts: BlockFacts,
    outputs: Vec<Result<TxOutput, ExecutionError>>,
    stats: &mut BlockStats,
) -> Result<BlockOutput, ExecutionError> {
    let mut results = Vec::with_capacity(outputs.len());
    let mut effects = Vec::with_capacity(outputs.len());
    let mut failed = None;
    let mut gas = BlockGas::new(block);
    for (index, output) in outputs.into_iter().enumerate() {
        let checked = gas.admit(index, block.txs[index].gas_limit);
        let TxOutput {
            mut result,
            effects: effect,
            ..
        } = match checked.and(output) {
            Ok(output) => output,
            Err(error) => {
                failed = Some(error);
                break;
            }
        };
        gas.add(&mut result);
        stats.lazy_fees += u64::from(effect.lazy_fee.is_some());
        stats.lazy_credits += u64::from(effect.lazy_credit.is_some());
        results.push(result);
        effects.push(effect);
    }
    // Only the transactions before a failed one are folded: a read failing there comes first.
    let shard_ids: Vec<usize> = (0..shards.max(1)).collect();
    let folded = pool.map(&shard_ids, |&shard| {
        fold_shard(provider, facts, &effects, shard, shard_ids.len())
    });
    let mut state = StateDiff::new();
    let mut errors = Vec::new();
    for shard in folded {
        match shard {
            Ok((mut diff, credited)) => {
                state.append(&mut diff);
                stats.lazy_accounts += credited;
            }
            Err(error) => errors.push(error),
        }
    }
    let first_error = errors.into_iter().min_by_key(|(index, _)| *index);
    match first_error.map(|(_, error)| error).or(failed) {
        Some(error) => Err(error),
        None => Ok(BlockOutput::new(results, state)),
    }
}

/// Which of `shards` folds `address`'s changes.
fn shard_of(address: &Address, shards: usize) -> usize {
    usize::from(address[19]) % shards
}

/// The state diff of the accounts of shard `shard` (of `shards`), from every transaction's
/// effects in block order, and how many accounts in it took lazy credits; on a failed read,
/// the transaction index it is charged to.
///
/// Non-zero fees owed to the beneficiary are summed and added once: at the end of the block,
/// or dropped when a transaction writes the beneficiary (it read the account, owed fees
/// included). A zero fee, which can touch an empty account, is applied in place, as is every
/// lazy credit.
fn fold_shard<P: StateProvider>(
    provider: &P,
    facts: BlockFacts,
    effects: &[TxEffects],
    shard: usize,
    shards: usize,
) -> Result<(StateDiff, u64), (usize, ExecutionError)> {
    let mine = |address: &Address| shard_of(address, shards) == shard;
    let beneficiary = facts.beneficiary;
    let fees_here = mine(&beneficiary);
    // Fees owed since the beneficiary's last write, and the first transaction that owes one
    // (a failed read while adding them is charged to it, as serially).
    let (mut owed_fees, mut owed_since) = (U256::ZERO, 0);
    let mut credited = AddressSet::default();
    let mut state = StateDiff::new();
    let at = |index: usize| move |error| (index, error);
    for (index, effect) in effects.iter().enumerate() {
        for (address, write) in effect.writes.iter().filter(|(a, _)| mine(a)) {
            if *address == beneficiary {
                owed_fees = U256::ZERO;
            }
            apply_write(state.entry(*address).or_default(), write);
        }
        match effect.lazy_fee {
            Some(fee) if fees_here && fee.is_zero() => {
                if !owed_fees.is_zero() {
                    pay(
                        &mut state,
                        provider,
                        facts,
                        owed_since,
                        beneficiary,
                        owed_fees,
                    )
                    .map_err(at(owed_since))?;
                    owed_fees = U256::ZERO;
                }
                pay(&mut state, provider, facts, index, beneficiary, fee).map_err(at(index))?;
            }
            Some(fee) if fees_here => {
                if owed_fees.is_zero() {
                    owed_since = index;
                }
                owed_fees = owed_fees.saturating_add(fee);
            }
            _ => {}
        }
        if let Some((address, value)) = effect.lazy_credit.filter(|(a, _)| mine(a)) {
            credited.insert(address);
            pay(&mut state, provider, facts, index, address, value).map_err(at(index))?;
        }
    }
    if !owed_fees.is_zero() {
        pay(
            &mut state,
            provider,
            facts,
            owed_since,
            beneficiary,
            owed_fees,
        )
        .map_err(at(owed_since))?;
        credited.insert(beneficiary);
    }
    Ok((state, credited.len() as u64))
}

/// Adds `value` owed from transaction `index` on to `address`'s change, as revm's
/// fee payment would; nothing for a zero `value` owed to a non-empty account.
fn pay<P: StateProvider>(
    state: &mut StateDiff,
    provider: &P,
    facts: BlockFacts,
    index: usize,
    address: Address,
    value: U256,
) -> Result<(), ExecutionError> {
    let prev = match state.get(&address) {
        Some(change) => change.info.clone(),
        None => provider
            .basic(address)
            .map_err(|error| ExecutionError::Provider { index, error })?
            .map(AccountState::from),
    };
    if let Some(write) = fee_write(prev.as_ref(), value, facts.eip161) {
        apply_write(state.entry(address).or_default(), &write);
    }
    Ok(())
}
