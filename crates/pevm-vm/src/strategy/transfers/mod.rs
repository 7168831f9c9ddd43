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

use alloy_primitives::map::AddressMap;
use pevm_core::{ExecStats, Pool, TxIdx};
use revm::{
    context::{result::EVMError, result::ExecResultAndState, ContextSetters},
    handler::Handler,
    ExecuteEvm,
};

use crate::{
    chain::block::BlockFacts,
    exec::outcome::{block_evm, tx_outcome, BlockEvm, BlockGas},
    lazy::{take_credit, LazyBeneficiary, Owing},
    state::diff::apply_write,
    AccountChange, Block, BlockOutput, BlockStats, ExecutionError, StateDiff, StateProvider,
    TxResult,
};

use db::{Recipient, TransferDb, TransferDbError};
use groups::recipient;
pub(crate) use groups::{Links, TransferBlock};

/// Runs `transfers`, the groups of `block`, on up to `workers` workers of `pool`, and
/// merges what they did into the block's output; `None` when a transaction turned out not to
/// be a plain transfer: the block must then run on Block-STM. The error is the one of the
/// lowest transaction, as serially.
pub(crate) fn execute_transfers<'a, P: StateProvider>(
    pool: &Pool,
    workers: usize,
    provider: &'a P,
    block: &'a Block,
    transfers: &TransferBlock,
) -> Result<Option<(BlockOutput, BlockStats)>, ExecutionError> {
    let init = || Worker {
        evm: block_evm(
            TransferDb {
                provider,
                recipient: None,
                empty_costs: block.cfg.enable_amsterdam_eip8037,
                changes: AddressMap::default(),
            },
            block,
        ),
    };
    let merged = Mutex::new(Merged {
        results: (0..block.txs.len()).map(|_| None).collect(),
        state: StateDiff::new(),
    });
    let run = |worker: &mut Worker<'a, P>, ran: &mut Ran, groups: &[Range<usize>]| {
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
    let mut owing = Owing::default();
    for ran in ran {
        owing.absorb(ran.owing);
    }
    let (lazy_fees, lazy_credits) = owing.counts();
    let eip161 = BlockFacts::new(block).eip161;
    // The beneficiary and the credited recipients, which no transaction wrote.
    let (paid, read_error) = match owing.settle(provider, block.env.beneficiary, state, eip161) {
        Ok(paid) => (paid, None),
        Err(error) => (0, Some(error)),
    };
    let error = failed
        .into_iter()
        .chain(read_error)
        .min_by_key(|(index, _)| *index);
    if let Some((_, error)) = error {
        return Err(error);
    }
    Ok(BlockStats {
        engine: ExecStats {
            executions: block.txs.len() as u64,
            ..ExecStats::default()
        },
        lazy_fees,
        lazy_credits,
        lazy_accounts: paid,
        ..BlockStats::default()
    })
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

/// A transaction was not the plain transfer the analysis took it for.
#[derive(Debug)]
struct NotATransfer;

/// One worker of a transfer block.
struct Worker<'a, P: StateProvider> {
    evm: BlockEvm<'a, TransferDb<'a, P>>,
}

/// What one worker did.
#[derive(Default)]
struct Ran {
    /// The results of its transactions, not merged yet.
    results: Vec<(TxIdx, TxResult)>,
    /// The failed transaction of each group that failed.
    errors: Vec<(TxIdx, ExecutionError)>,
    /// The fees and credits owed by its transactions.
    owing: Owing,
    /// The changes of the accounts its groups wrote, not merged yet (its database's while it
    /// runs).
    changes: AddressMap<AccountChange>,
    /// Whether one of its transactions was not a plain transfer.
    not_a_transfer: bool,
}

impl<'a, P: StateProvider> Worker<'a, P> {
    /// Runs `groups`, each in block order until one of its transactions fails, into `ran`.
    fn run(
        &mut self,
        block: &'a Block,
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
        block: &'a Block,
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
        self.evm.ctx.set_tx(tx);
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
                block.cfg.enable_amsterdam_eip8037,
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
                ran.owing.credit(index, to, value);
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
        ran.owing.fee(index, fee);
        ran.results.push((index, result));
        Ok(Ok(()))
    }
}
