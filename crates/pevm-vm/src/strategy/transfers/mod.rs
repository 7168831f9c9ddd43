//! Blocks of plain value transfers need no speculation: which transaction depends on which is
//! known exactly before they run, so they execute in independent groups, without the
//! multi-version memory and without validation.
//!
//! A transfer reads and writes its sender's account, and its recipient's. When every
//! transaction of a block is a call without calldata to an account without code (no
//! creation, no EIP-7702 authorisation, no precompile, beneficiary neither sender nor
//! recipient), nothing in the block can run code, so no transaction reads any other account.
//! Two transactions then depend on each other exactly when they share an account, except that
//! credits to a recipient that never sends commute: each is recorded as a delta (see
//! [`crate::lazy`]), and fees are owed to the beneficiary as in parallel execution. The block
//! is cut into the groups of transactions linked by shared accounts; a worker runs a whole
//! group in block order, against the state provider and the group's own writes.
//!
//! Whether a recipient has code is only known from the state: a transaction that finds code
//! (or a write the analysis did not foresee) stops the run, and the block goes to Block-STM.

mod db;
mod groups;

use std::{
    ops::{ControlFlow, Range},
    sync::{Mutex, PoisonError},
};

use alloy_primitives::{map::AddressMap, U256};
use pevm_core::{ExecStats, Pool, TxIdx};
use revm::{
    context::{result::EVMError, result::ExecResultAndState, ContextSetters},
    handler::Handler,
    ExecuteEvm,
};

use crate::{
    block_stm::mv_db::BlockFacts,
    exec::{
        outcome::{block_evm, tx_outcome, BlockEvm, BlockGas},
        output::{account_after, apply_write, fee_write, AccountState},
    },
    lazy::{take_credit, LazyBeneficiary},
    AccountBasic, AccountChange, Block, BlockOutput, BlockStats, ExecutionError, ProviderError,
    StateDiff, StateProvider, TxResult,
};

use db::{Recipient, TransferDb, TransferDbError};
use groups::recipient;
pub(crate) use groups::TransferBlock;

/// Runs `transfers`, the groups of `block`, on up to `workers` workers of `pool`, and
/// merges what they did into the block's output; `None` when a transaction turned out not to
/// be a plain transfer: the block must then run on Block-STM. The error is the one of the
/// lowest transaction, as serially.
pub(crate) fn execute_transfers<P: StateProvider>(
    pool: &Pool,
    workers: usize,
    provider: &P,
    block: &Block,
    transfers: &TransferBlock,
) -> Result<Option<(BlockOutput, BlockStats)>, ExecutionError> {
    let init = || Worker {
        evm: block_evm(
            TransferDb {
                provider,
                recipient: None,
                changes: AddressMap::default(),
            },
            block,
        ),
    };
    let merged = Mutex::new(Merged {
        results: (0..block.txs.len()).map(|_| None).collect(),
        state: StateDiff::new(),
    });
    let run = |worker: &mut Worker<'_, P>, ran: &mut Ran, groups: &[Range<usize>]| {
        // The worker's changes not merged yet, which its database reads, go with its result.
        let changes = &mut worker.evm.ctx.journaled_state.database.changes;
        std::mem::swap(changes, &mut ran.changes);
        let flow = worker.run(block, transfers, groups, ran);
        let changes = &mut worker.evm.ctx.journaled_state.database.changes;
        std::mem::swap(changes, &mut ran.changes);
        // The batch's groups are done: no later transaction reads their accounts. Merge them
        // unless another worker is merging, so that merging overlaps execution.
        if let Ok(mut merged) = merged.try_lock() {
            merged.absorb(ran);
        }
        flow
    };
    let mut ran = pool
        .run_batches(&transfers.groups, workers, init, run)
        .map_err(|message| ExecutionError::Panic { tx: None, message })?;
    if ran.iter().any(|ran| ran.not_a_transfer) {
        return Ok(None);
    }
    let mut merged = merged.into_inner().unwrap_or_else(PoisonError::into_inner);
    for ran in &mut ran {
        merged.absorb(ran);
    }
    let Merged { results, mut state } = merged;
    let (results, failed) = block_results(block, results, &mut ran);
    let stats = pay_owed(provider, block, ran, failed, &mut state)?;
    let output = BlockOutput::new(results, state);
    Ok(Some((output, stats)))
}

/// Adds the fees and credits the transactions owed (`ran`) to the beneficiary's and the
/// credited recipients' accounts, as read now, into `state`, and counts them; the error is the
/// lowest transaction's: `failed` (from the results) or a failed read, charged to the first
/// transaction that owed to the account, as serially.
fn pay_owed<P: StateProvider>(
    provider: &P,
    block: &Block,
    ran: Vec<Ran>,
    failed: Option<(TxIdx, ExecutionError)>,
    state: &mut StateDiff,
) -> Result<BlockStats, ExecutionError> {
    let eip161 = BlockFacts::new(block).eip161;
    let engine = ExecStats {
        executions: block.txs.len() as u64,
        ..ExecStats::default()
    };
    let mut stats = BlockStats {
        engine,
        ..BlockStats::default()
    };
    let mut fees = Fees::default();
    let mut credits = AddressMap::<Owed>::default();
    for ran in ran {
        fees.absorb(&ran.fees);
        for (address, owed) in ran.credits {
            credits.entry(address).or_insert(Owed::NONE).absorb(&owed);
        }
    }
    stats.lazy_fees = fees.count;
    stats.lazy_credits = credits.values().map(|owed| owed.count).sum();
    stats.lazy_accounts = credits.len() as u64 + u64::from(!fees.sum.is_zero());
    // The beneficiary and the credited recipients, which no transaction wrote.
    let mut errors: Vec<(TxIdx, ExecutionError)> = failed.into_iter().collect();
    let mut pay =
        |address, change: Result<Option<AccountChange>, ProviderError>, first| match change {
            Ok(change) => state.extend(change.map(|change| (address, change))),
            Err(error) => errors.push((
                first,
                ExecutionError::Provider {
                    index: first,
                    error,
                },
            )),
        };
    if let Some(first) = fees.first {
        let beneficiary = block.env.beneficiary;
        let change = provider
            .basic(beneficiary)
            .map(|base| fees.change(base, eip161));
        pay(beneficiary, change, first);
    }
    for (address, owed) in credits {
        let change = provider
            .basic(address)
            .map(|base| owed.change(base, eip161));
        pay(address, change, owed.first);
    }
    if let Some((_, error)) = errors.into_iter().min_by_key(|(index, _)| *index) {
        return Err(error);
    }
    Ok(stats)
}

/// What the workers did, merged: the results of their transactions and the changes of the
/// accounts they wrote.
struct Merged {
    results: Vec<Option<TxResult>>,
    state: StateDiff,
}

impl Merged {
    /// Takes in the results and changes `ran` holds.
    fn absorb(&mut self, ran: &mut Ran) {
        for (index, result) in ran.results.drain(..) {
            self.results[index] = Some(result);
        }
        self.state.extend(ran.changes.drain());
    }
}

/// The transactions' results in block order with their cumulative gas, up to the first
/// failure: a failed transaction, or one over the block's gas limit.
fn block_results(
    block: &Block,
    slots: Vec<Option<TxResult>>,
    ran: &mut [Ran],
) -> (Vec<TxResult>, Option<(TxIdx, ExecutionError)>) {
    let mut first_error = ran
        .iter_mut()
        .flat_map(|ran| ran.errors.drain(..))
        .min_by_key(|(index, _)| *index);
    let mut gas = BlockGas::new(block);
    let mut failure = None;
    // In place: the results take the slots' memory.
    let results = slots
        .into_iter()
        .enumerate()
        .map_while(|(index, slot)| {
            match (gas.admit(index, block.txs[index].gas_limit), slot) {
                (Ok(()), Some(mut result)) => {
                    gas.add(&mut result);
                    Some(result)
                }
                (Err(error), _) => {
                    failure = Some((index, error));
                    None
                }
                // Only transactions after a failed one of their group did not run.
                (Ok(()), None) => {
                    failure = Some(first_error.take().unwrap_or_else(|| {
                        let message = "transaction did not run".into();
                        (index, ExecutionError::Evm { index, message })
                    }));
                    None
                }
            }
        })
        .collect();
    (results, failure.or(first_error))
}

/// What is owed to one account by the transactions that credited it without reading it.
#[derive(Clone, Copy, Debug)]
struct Owed {
    /// The sum owed.
    value: U256,
    /// The first transaction that owed it.
    first: TxIdx,
    /// How many transactions owed it.
    count: u64,
}

impl Owed {
    /// Nothing owed.
    const NONE: Self = Self {
        value: U256::ZERO,
        first: TxIdx::MAX,
        count: 0,
    };

    /// Adds `value`, owed by transaction `index`.
    fn add(&mut self, index: TxIdx, value: U256) {
        self.value += value;
        self.first = self.first.min(index);
        self.count += 1;
    }

    /// Adds what `other` owes.
    fn absorb(&mut self, other: &Self) {
        self.value += other.value;
        self.first = self.first.min(other.first);
        self.count += other.count;
    }

    /// The account's change once paid, from the account as read. The credits are all
    /// non-zero and their sum cannot overflow (see [`crate::lazy`]), so paying them at once
    /// is paying them one by one.
    fn change(&self, base: Option<AccountBasic>, eip161: bool) -> Option<AccountChange> {
        paid(base, [self.value], eip161)
    }
}

/// The fees owed to the beneficiary.
#[derive(Clone, Copy, Debug, Default)]
struct Fees {
    /// Their sum.
    sum: U256,
    /// The first transaction that owed a fee (a failed read of the beneficiary is its).
    first: Option<TxIdx>,
    /// The first transactions that owed a zero fee, and a non-zero one.
    first_zero: Option<TxIdx>,
    first_non_zero: Option<TxIdx>,
    /// How many transactions owed one.
    count: u64,
}

impl Fees {
    /// Adds the fee of transaction `index`.
    fn add(&mut self, index: TxIdx, fee: U256) {
        self.sum = self.sum.saturating_add(fee);
        let first = |slot: &mut Option<TxIdx>| *slot = Some(slot.map_or(index, |f| f.min(index)));
        first(&mut self.first);
        first(if fee.is_zero() {
            &mut self.first_zero
        } else {
            &mut self.first_non_zero
        });
        self.count += 1;
    }

    /// Adds the fees of `other`.
    fn absorb(&mut self, other: &Self) {
        self.sum = self.sum.saturating_add(other.sum);
        let min = |a: Option<TxIdx>, b: Option<TxIdx>| a.into_iter().chain(b).min();
        self.first = min(self.first, other.first);
        self.first_zero = min(self.first_zero, other.first_zero);
        self.first_non_zero = min(self.first_non_zero, other.first_non_zero);
        self.count += other.count;
    }

    /// The beneficiary's change once paid, from its account as read. Only a zero fee paid
    /// before any non-zero one can touch an empty account (later, its balance is not zero);
    /// the non-zero fees add up.
    fn change(&self, base: Option<AccountBasic>, eip161: bool) -> Option<AccountChange> {
        let zero_first = match (self.first_zero, self.first_non_zero) {
            (Some(zero), Some(non_zero)) => zero < non_zero,
            (zero, _) => zero.is_some(),
        };
        let fees = [
            zero_first.then_some(U256::ZERO),
            Some(self.sum).filter(|sum| !sum.is_zero()),
        ];
        paid(base, fees.into_iter().flatten(), eip161)
    }
}

/// The change of the account `base` once `payments` are paid into it one after another, as
/// revm pays a fee; `None` when none changes it.
fn paid(
    base: Option<AccountBasic>,
    payments: impl IntoIterator<Item = U256>,
    eip161: bool,
) -> Option<AccountChange> {
    let mut account = base.map(AccountState::from);
    let mut change = None;
    for value in payments {
        if let Some(write) = fee_write(account.as_ref(), value, eip161) {
            apply_write(change.get_or_insert_with(AccountChange::default), &write);
            account = account_after(account, Some(&write));
        }
    }
    change
}

/// A transaction was not the plain transfer the analysis took it for.
#[derive(Debug)]
struct NotATransfer;

/// One worker of a transfer block.
struct Worker<'a, P: StateProvider> {
    evm: BlockEvm<TransferDb<'a, P>>,
}

/// What one worker did.
#[derive(Default)]
struct Ran {
    /// The results of its transactions, not merged yet.
    results: Vec<(TxIdx, TxResult)>,
    /// The failed transaction of each group that failed.
    errors: Vec<(TxIdx, ExecutionError)>,
    /// The credits owed by its transactions, per recipient.
    credits: AddressMap<Owed>,
    /// The fees owed by its transactions.
    fees: Fees,
    /// The changes of the accounts its groups wrote, not merged yet (its database's while it
    /// runs).
    changes: AddressMap<AccountChange>,
    /// Whether one of its transactions was not a plain transfer.
    not_a_transfer: bool,
}

impl<P: StateProvider> Worker<'_, P> {
    /// Runs `groups`, each in block order until one of its transactions fails, into `ran`.
    fn run(
        &mut self,
        block: &Block,
        transfers: &TransferBlock,
        groups: &[Range<usize>],
        ran: &mut Ran,
    ) -> ControlFlow<()> {
        for group in groups {
            for &index in &transfers.order[group.clone()] {
                match self.execute(block, index, transfers.credits[index], ran) {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        // The rest of the group depends on the failed transaction.
                        ran.errors.push((index, error));
                        break;
                    }
                    Err(NotATransfer) => {
                        ran.not_a_transfer = true;
                        return ControlFlow::Break(());
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// Runs transaction `index`, crediting its recipient as a delta if `credit`, into `ran`.
    fn execute(
        &mut self,
        block: &Block,
        index: TxIdx,
        credit: bool,
        ran: &mut Ran,
    ) -> Result<Result<(), ExecutionError>, NotATransfer> {
        let tx = &block.txs[index];
        let to = recipient(tx);
        let db = &mut self.evm.ctx.journaled_state.database;
        db.recipient = Some(Recipient {
            address: to,
            credit,
            shown: None,
        });
        self.evm.ctx.set_tx(tx.clone());
        let mut handler = LazyBeneficiary::default();
        let result = handler.run(&mut self.evm);
        let state = self.evm.finalize();
        let db = &mut self.evm.ctx.journaled_state.database;
        let shown = db.recipient.take().and_then(|r| r.shown);
        let outcome = match result {
            Err(EVMError::Database(TransferDbError::NotATransfer)) => return Err(NotATransfer),
            other => tx_outcome(
                index,
                tx.tx_type,
                other.map(|result| ExecResultAndState::new(result, state)),
                false,
            ),
        };
        let (result, mut writes) = match outcome {
            Ok(outcome) => (outcome.result, outcome.writes),
            Err(error) => return Ok(Err(error)),
        };
        if let Some(base) = shown.filter(|_| credit) {
            if let Some(value) =
                take_credit(&mut writes, to, base.as_ref()).map_err(|_| NotATransfer)?
            {
                ran.credits
                    .entry(to)
                    .or_insert(Owed::NONE)
                    .add(index, value);
            }
        }
        let Some(fee) = handler.fee.get() else {
            return Err(NotATransfer);
        };
        for (address, write) in &writes {
            if *address != tx.caller && (*address != to || credit) {
                return Err(NotATransfer);
            }
            apply_write(db.changes.entry(*address).or_default(), write);
        }
        ran.fees.add(index, fee);
        ran.results.push((index, result));
        Ok(Ok(()))
    }
}
