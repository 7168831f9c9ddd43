//! A block's transactions as a Block-STM [`pevm_core::Vm`]: each incarnation runs revm
//! over the multi-version memory and reports its reads, writes and output.

use std::convert::Infallible;

use alloy_primitives::{Address, U256};
use pevm_core::{ExecOutcome, ExecuteError, TxIdx, Version, Vm, WriteSet};
use revm::{
    context::{
        result::{EVMError, ExecResultAndState, ResultAndState},
        ContextSetters,
    },
    handler::Handler,
    ExecuteEvm,
};

use crate::{
    block_stm::mv_db::{EvmMemory, Location, LocationValue, MvDb, ReadError},
    chain::block::BlockFacts,
    exec::outcome::{block_evm, tx_outcome, BlockEvm, TxOutcome},
    lazy::{take_credit, Credit, LazyBeneficiary, LazyCredits},
    state::diff::AccountWrite,
    strategy::hints::Hints,
    Block, ExecutionError, StateProvider, TxResult,
};

/// What one transaction produced.
#[derive(Debug)]
pub(crate) struct TxOutput {
    pub(crate) result: TxResult,
    pub(crate) effects: TxEffects,
    /// revm's own result and state, when kept (before its lazy payments are settled); boxed,
    /// so that a block's output slots stay small when it is not.
    pub(crate) evm: Option<Box<ResultAndState>>,
}

/// What a transaction did to the state.
#[derive(Debug)]
pub(crate) struct TxEffects {
    pub(crate) writes: Vec<(Address, AccountWrite)>,
    /// The fee owed to the beneficiary, when the transaction never read its account.
    pub(crate) lazy_fee: Option<U256>,
    /// The value credited to a recipient without reading its account; boxed, as most
    /// transactions make none, so that every transaction's output stays small.
    pub(crate) lazy_credit: Option<Box<Credit>>,
}

/// The revm EVM of one incarnation.
type MvEvm<'a, P> = BlockEvm<'a, MvDb<'a, P>>;

/// A block's transactions as a Block-STM VM.
pub(crate) struct EvmVm<'a, P> {
    provider: &'a P,
    block: &'a Block,
    facts: BlockFacts,
    lazy: LazyCredits,
    /// Per transaction: the lower transaction it is known to depend on.
    known_dependencies: Vec<Option<TxIdx>>,
    /// The hints that gave them, which also say who owns each account's location.
    hints: &'a Hints,
    /// Whether each transaction's revm output is kept.
    keep: bool,
}

impl<'a, P: StateProvider> EvmVm<'a, P> {
    /// The VM of `block` over `provider`, with the dependencies known before it runs and the
    /// `hints` that gave them (from all of `block`'s transactions); `keep` keeps each
    /// transaction's revm output, and `lazy_credits` lets transfers credit their recipients
    /// lazily (see [`crate::lazy`]).
    pub(crate) fn new(
        provider: &'a P,
        block: &'a Block,
        known_dependencies: Vec<Option<TxIdx>>,
        hints: &'a Hints,
        keep: bool,
        lazy_credits: bool,
    ) -> Self {
        let lazy = if lazy_credits {
            LazyCredits::new(&block.txs, block.env.beneficiary, block.cfg.spec, hints)
        } else {
            LazyCredits::default()
        };
        Self {
            provider,
            block,
            facts: BlockFacts::new(block),
            lazy,
            known_dependencies,
            hints,
            keep,
        }
    }
}

impl<P: StateProvider> Vm for EvmVm<'_, P> {
    type Key = Location;
    type Value = LocationValue;
    type Output = Result<TxOutput, ExecutionError>;
    type Error = Infallible;
    type Worker<'m>
        = MvEvm<'m, P>
    where
        Self: 'm;

    fn known_dependency(&self, tx_idx: TxIdx) -> Option<TxIdx> {
        self.known_dependencies[tx_idx]
    }

    fn worker<'m>(&'m self, memory: &'m EvmMemory) -> MvEvm<'m, P> {
        let db = MvDb::new(memory, self.provider, self.facts, &self.lazy, self.hints);
        block_evm(db, self.block)
    }

    fn execute<'m>(
        &'m self,
        evm: &mut MvEvm<'m, P>,
        version: Version,
    ) -> ExecOutcome<Location, LocationValue, Self::Output, Infallible> {
        let index = version.tx_idx;
        let tx = &self.block.txs[index];
        evm.ctx.journaled_state.database.start(index);
        evm.ctx.set_tx(tx);
        let mut handler = LazyBeneficiary::default();
        let result = handler.run(evm);
        let state = evm.finalize();
        let reads = evm.ctx.journaled_state.database.take_reads();
        let outcome = match result {
            Err(EVMError::Database(ReadError::Blocked(blocking))) => {
                return ExecOutcome::Blocked { blocking };
            }
            Err(EVMError::Database(ReadError::Provider(error))) => {
                Err(ExecutionError::Provider { index, error })
            }
            other => tx_outcome::<ReadError>(
                index,
                tx.tx_type,
                evm.ctx.cfg.enable_amsterdam_eip8037,
                other.map(|result| ExecResultAndState::new(result, state)),
                self.keep,
            ),
        };
        let lazy_fee = handler.fee.get();
        let db = &evm.ctx.journaled_state.database;
        let output = outcome.and_then(|outcome| {
            let TxOutcome {
                result,
                mut writes,
                evm,
            } = outcome;
            let lazy_credit = match db.lazy_credit() {
                Some((to, base)) => take_credit(&mut writes, to, base)
                    .map_err(|write| ExecutionError::Evm {
                        index,
                        message: format!("unexpected write to lazily credited {to}: {write:?}"),
                    })?
                    .map(|value| {
                        let shown = base.cloned();
                        Box::new(Credit { to, value, shown })
                    }),
                None => None,
            };
            let effects = TxEffects {
                writes,
                lazy_fee,
                lazy_credit,
            };
            Ok(TxOutput {
                result,
                effects,
                evm: evm.map(Box::new),
            })
        });
        let writes = match &output {
            Ok(out) => memory_writes(index, &out.effects, self.hints),
            Err(_) => Vec::new(),
        };
        ExecOutcome::Done {
            reads,
            writes,
            output,
        }
    }
}

/// The block error for an engine failure (the EVM VM reports no fatal errors).
pub(crate) fn engine_error(error: ExecuteError<Infallible>) -> ExecutionError {
    match error {
        ExecuteError::Vm { error, .. } => match error {},
        ExecuteError::Panic { tx_idx, message } => ExecutionError::Panic {
            tx: tx_idx,
            message,
        },
    }
}

/// The memory writes of transaction `tx_idx`: its account writes (each account's location
/// owned as `hints` say), the fee it owes the beneficiary when it did not read the
/// beneficiary's account, and its lazy credit.
pub(crate) fn memory_writes(
    tx_idx: TxIdx,
    effects: &TxEffects,
    hints: &Hints,
) -> WriteSet<Location, LocationValue> {
    let TxEffects {
        writes,
        lazy_fee,
        lazy_credit,
    } = effects;
    let mut out = Vec::with_capacity(writes.len() * 2 + 2);
    if let Some(fee) = *lazy_fee {
        out.push((Location::LazyFee(tx_idx), LocationValue::Credit(fee)));
    }
    if let Some(credit) = lazy_credit {
        out.push((
            Location::LazyCredit(credit.to, tx_idx),
            LocationValue::Credit(credit.value),
        ));
    }
    let owner = |address| hints.owner(hints.slot(tx_idx, address));
    for (address, write) in writes {
        match write {
            AccountWrite::Destroyed => {
                let location = Location::Basic(*address, owner(address));
                out.push((location, LocationValue::Basic(None)));
                out.push((
                    Location::StorageReset(*address),
                    LocationValue::StorageReset,
                ));
            }
            AccountWrite::Updated {
                info,
                info_changed,
                created,
                storage,
                ..
            } => {
                if *info_changed || *created {
                    out.push((
                        Location::Basic(*address, owner(address)),
                        LocationValue::Basic(Some(info.clone())),
                    ));
                }
                if *created {
                    out.push((
                        Location::StorageReset(*address),
                        LocationValue::StorageReset,
                    ));
                }
                out.extend(storage.iter().map(|(slot, value)| {
                    (
                        Location::Storage(*address, *slot),
                        LocationValue::Storage(*value),
                    )
                }));
            }
        }
    }
    out
}
