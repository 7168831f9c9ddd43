//! Parallel block execution: revm transactions as a Block-STM [`Vm`](pevm_core::Vm).

use std::{convert::Infallible, num::NonZeroUsize, time::Duration};

use alloy_consensus::transaction::SignerRecoverable;
use alloy_rpc_types_eth::{Block as RpcBlock, BlockTransactions};

use alloy_primitives::{map::AddressSet, Address, U256};
use pevm_core::{
    DependencyGraph, ExecOutcome, ExecStats, ExecuteError, Executor, TxIdx, Version, Vm,
};
use revm::{
    context::{
        result::{EVMError, ExecResultAndState, ResultAndState},
        CfgEnv, ContextSetters,
    },
    handler::Handler,
    Context, ExecuteEvm, MainBuilder, MainContext,
};

use crate::{
    hints::Hints,
    lazy::{take_credit, LazyBeneficiary, LazyCredits, LazyEvm},
    mv_db::{memory_writes, BlockFacts, EvmMemory, Location, LocationValue, MvDb, ReadError},
    plan::{Plan, Strategy, MIN_PARALLEL_GAS, PLAN_SAMPLE, TRANSFER_WEIGHT},
    result::{apply_write, fee_write, AccountState, AccountWrite},
    serial::{
        check_block_gas, execute_block_serial, execute_block_serial_timed,
        execute_transactions_serial, tx_outcome, TxOutcome,
    },
    transfers::{execute_transfers, TransferBlock},
    tx_states::settle_tx_states,
    Block, BlockOutput, ExecutionError, Hardfork, StateDiff, StateProvider, TxResult,
};

/// What one transaction produced.
#[derive(Debug)]
pub(crate) struct TxOutput {
    pub(crate) result: TxResult,
    pub(crate) effects: TxEffects,
    /// revm's own result and state, when kept (before its lazy payments are settled).
    pub(crate) evm: Option<ResultAndState>,
}

/// What a transaction did to the state.
#[derive(Debug)]
pub(crate) struct TxEffects {
    pub(crate) writes: Vec<(Address, AccountWrite)>,
    /// The fee owed to the beneficiary, when the transaction never read its account.
    pub(crate) lazy_fee: Option<U256>,
    /// The value credited to a recipient without reading its account.
    pub(crate) lazy_credit: Option<(Address, U256)>,
}

/// The revm EVM of one incarnation.
type MvEvm<'a, P> = LazyEvm<MvDb<'a, P>>;

/// A block's transactions as a Block-STM VM.
struct EvmVm<'a, P> {
    provider: &'a P,
    block: &'a Block,
    cfg: CfgEnv,
    facts: BlockFacts,
    lazy: LazyCredits,
    /// Per transaction: the lower transaction it is known to depend on.
    known_dependencies: Vec<Option<TxIdx>>,
    /// Whether each transaction's revm output is kept.
    keep: bool,
}

impl<'a, P: StateProvider> EvmVm<'a, P> {
    fn new(
        provider: &'a P,
        block: &'a Block,
        known_dependencies: Vec<Option<TxIdx>>,
        keep: bool,
    ) -> Self {
        Self {
            provider,
            block,
            cfg: block.cfg.clone(),
            facts: BlockFacts::new(block),
            lazy: LazyCredits::new(&block.txs, block.env.beneficiary, block.cfg.spec),
            known_dependencies,
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
        let db = MvDb::new(memory, self.provider, self.facts, &self.lazy);
        Context::mainnet()
            .with_db(db)
            .with_block(self.block.env.clone())
            .with_cfg(self.cfg.clone())
            .build_mainnet()
    }

    fn execute(
        &self,
        evm: &mut MvEvm<'_, P>,
        version: Version,
    ) -> ExecOutcome<Location, LocationValue, Self::Output, Infallible> {
        let index = version.tx_idx;
        let tx = &self.block.txs[index];
        evm.ctx.journaled_state.database.start(index);
        evm.ctx.set_tx(tx.clone());
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
                    .map(|value| (to, value)),
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
                evm,
            })
        });
        let writes = match &output {
            Ok(out) => memory_writes(index, &out.effects),
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
fn engine_error(error: ExecuteError<Infallible>) -> ExecutionError {
    match error {
        ExecuteError::Vm { error, .. } => match error {},
        ExecuteError::Panic { tx_idx, message } => ExecutionError::Panic {
            tx: tx_idx,
            message,
        },
    }
}

/// The critical-path analysis of `block`: each transaction's dependencies (the transactions
/// whose writes its final execution read, lazy fees included) weighted by its serial
/// execution time in seconds.
pub fn analyze_block<P: StateProvider>(
    provider: &P,
    block: &Block,
) -> Result<DependencyGraph, ExecutionError> {
    let (_, times) = execute_block_serial_timed(provider, block)?;
    let vm = EvmVm::new(
        provider,
        block,
        Hints::default().known_dependencies(&block.txs, true),
        false,
    );
    let mut executor = Executor::new(1);
    executor
        .execute(&vm, block.txs.len())
        .map_err(engine_error)?;
    let memory = executor.memory();
    let deps = (0..block.txs.len())
        .map(|tx| memory.dependencies(tx))
        .collect();
    let costs = times.iter().map(Duration::as_secs_f64).collect();
    Ok(DependencyGraph::new(deps, costs))
}

impl From<ReadError> for ExecutionError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Provider(error) => Self::Provider { index: 0, error },
            ReadError::Blocked(tx) => Self::Evm {
                index: 0,
                message: format!("blocked on tx {tx}"),
            },
        }
    }
}

/// What the engine did for one block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockStats {
    /// How the block was run: the workers chosen and the estimate behind the choice.
    pub plan: Plan,
    /// The Block-STM counters; for a block run serially, one execution per transaction.
    pub engine: ExecStats,
    /// Transactions whose fee was owed to the beneficiary instead of written to its account.
    pub lazy_fees: u64,
    /// Transactions whose value was credited to the recipient as a delta.
    pub lazy_credits: u64,
    /// Accounts whose owed fees and credits were added up into the state diff.
    pub lazy_accounts: u64,
}

/// A long-lived parallel block executor: configured once with its worker count, it runs
/// block after block on the same worker threads and the same multi-version memory.
///
/// Each block first gets a [`Plan`]: a block of plain transfers runs in groups that share no
/// account ([`Strategy::Transfers`]), any other on Block-STM, and a block too small or too
/// dependent to win runs on the serial executor, or on fewer workers (see [`Pevm::force`]).
/// Outputs are identical to [`execute_block_serial`](crate::execute_block_serial)'s, and so
/// is the error for an invalid block.
#[derive(Debug)]
pub struct Pevm {
    executor: Executor<Location, LocationValue>,
    forced: Option<Strategy>,
    hints: Hints,
}

impl Pevm {
    /// An executor with `concurrency` workers (the calling thread is one of them) that plans
    /// each block.
    pub fn new(concurrency: NonZeroUsize) -> Self {
        Self {
            executor: Executor::new(concurrency.get()),
            forced: None,
            hints: Hints::default(),
        }
    }

    /// Runs every block with `strategy` on every worker, whatever its plan says (for
    /// measuring and testing each strategy). A block that is not all plain transfers runs
    /// on Block-STM when forced to [`Strategy::Transfers`].
    pub fn force(mut self, strategy: Strategy) -> Self {
        self.forced = Some(strategy);
        self
    }
    /// The strategy every block is forced to, if any (see [`Pevm::force`]).
    pub fn forced(&self) -> Option<Strategy> {
        self.forced
    }

    /// The number of workers.
    pub fn concurrency(&self) -> usize {
        self.executor.concurrency()
    }

    /// Recovers the signer of every transaction of `block` from its signature, on the
    /// workers, and fails on the first (lowest) one that differs from its claimed sender.
    /// Before Homestead, signatures with a high `s` value are valid (EIP-2 not yet in force).
    pub fn verify_senders(
        &self,
        block: &RpcBlock,
        hardfork: Hardfork,
    ) -> Result<(), ExecutionError> {
        let BlockTransactions::Full(txs) = &block.transactions else {
            return Ok(());
        };
        let homestead = hardfork >= Hardfork::Homestead;
        let recovered = self.executor.map(txs, |tx| {
            let envelope = tx.inner.inner();
            let signer = if homestead {
                envelope.recover_signer()
            } else {
                envelope.recover_signer_unchecked()
            };
            signer.ok()
        });
        for (index, (tx, recovered)) in txs.iter().zip(recovered).enumerate() {
            let claimed = tx.inner.signer();
            if recovered != Some(claimed) {
                return Err(ExecutionError::WrongSender {
                    index,
                    claimed,
                    recovered,
                });
            }
        }
        Ok(())
    }

    /// Executes `block` on top of `provider`.
    pub fn execute<P: StateProvider>(
        &mut self,
        provider: &P,
        block: &Block,
    ) -> Result<BlockOutput, ExecutionError> {
        self.execute_with_stats(provider, block)
            .map(|(output, _)| output)
    }

    /// [`Self::execute`], also returning what the engine did.
    pub fn execute_with_stats<P: StateProvider>(
        &mut self,
        provider: &P,
        block: &Block,
    ) -> Result<(BlockOutput, BlockStats), ExecutionError> {
        let (mut plan, known, transfers) = self.plan(block);
        if let Some(transfers) = transfers.filter(|_| plan.strategy == Strategy::Transfers) {
            let ran = execute_transfers(&self.executor, plan.workers, provider, block, &transfers)?;
            if let Some((output, stats)) = ran {
                return Ok((output, BlockStats { plan, ..stats }));
            }
            // A recipient had code after all.
            plan = self.engine_plan(block, &known);
        }
        if plan.strategy == Strategy::Serial {
            let output = execute_block_serial(provider, block)?;
            let engine = ExecStats {
                executions: block.txs.len() as u64,
                ..ExecStats::default()
            };
            let stats = BlockStats {
                plan,
                engine,
                ..BlockStats::default()
            };
            return Ok((output, stats));
        }
        let (outputs, engine) = self.run_engine(provider, block, plan, known, false)?;
        let mut stats = BlockStats {
            plan,
            engine,
            ..BlockStats::default()
        };
        // Waking the workers again costs more than folding a small block alone.
        let shards = if block.txs.len() >= SHARDED_FOLD_MIN_TXS {
            plan.workers
        } else {
            1
        };
        let output = fold_outputs(
            &self.executor,
            shards,
            provider,
            block,
            BlockFacts::new(block),
            outputs,
            &mut stats,
        )?;
        Ok((output, stats))
    }

    /// Executes `block` on top of `provider`, returning revm's result and state of each
    /// transaction in block order, equal to what serial revm returns for it
    /// ([`execute_transactions_serial`](crate::execute_transactions_serial)): what a client
    /// commits, one transaction after another, to its own state (as
    /// [`ParallelBlockExecutor`](crate::ParallelBlockExecutor) does). The error for an invalid
    /// block is the serial one.
    pub fn execute_transactions<P: StateProvider>(
        &mut self,
        provider: &P,
        block: &Block,
    ) -> Result<Vec<ResultAndState>, ExecutionError> {
        let (mut plan, known, _) = self.plan(block);
        if plan.strategy == Strategy::Transfers {
            // The transfer groups keep no per-transaction state: Block-STM runs the block.
            plan = self.engine_plan(block, &known);
        }
        if plan.strategy == Strategy::Serial {
            return execute_transactions_serial(provider, block);
        }
        let (outputs, _) = self.run_engine(provider, block, plan, known, true)?;
        settle_tx_states(provider, block, outputs)
    }

    /// Runs `block` on Block-STM as `plan` says, `known` holding the dependencies known of
    /// its first transactions; with `keep`, each output keeps revm's own.
    fn run_engine<P: StateProvider>(
        &mut self,
        provider: &P,
        block: &Block,
        plan: Plan,
        mut known: Vec<Option<TxIdx>>,
        keep: bool,
    ) -> Result<(Vec<Result<TxOutput, ExecutionError>>, ExecStats), ExecutionError> {
        if known.len() < block.txs.len() {
            // Token holders only if the plan's sample linked some through them.
            let tokens = self.hints.linked_holders();
            known = self.hints.known_dependencies(&block.txs, tokens);
        }
        let vm = EvmVm::new(provider, block, known, keep);
        let run = self
            .executor
            .execute_on(&vm, block.txs.len(), plan.workers)
            .map_err(engine_error)?;
        Ok((run.outputs, run.stats))
    }

    /// How `block` runs; the dependencies known of its first transactions (see
    /// [`PLAN_SAMPLE`]; none when its weights alone make it serial), and its transfer groups
    /// when it is all plain transfers.
    fn plan(&mut self, block: &Block) -> (Plan, Vec<Option<TxIdx>>, Option<TransferBlock>) {
        let sample = &block.txs[..block.txs.len().min(PLAN_SAMPLE)];
        if self.forced.is_none() {
            let independent = Plan::independent(
                sample,
                block.env.beneficiary,
                self.concurrency(),
                block.txs.len(),
            );
            if independent.strategy == Strategy::Serial {
                return (independent, Vec::new(), None);
            }
        }
        let known = self.hints.known_dependencies(sample, true);
        let engine = self.engine_plan(block, &known);
        let concurrency = self.concurrency();
        let try_transfers = match self.forced {
            // The known dependencies all link transactions of one group: their longest chain
            // is no longer than the largest group, so a block they already show too
            // dependent (a chain of transfers) is not analysed at all.
            None => {
                let chain = (engine.critical_gas / TRANSFER_WEIGHT) as usize;
                engine.total_gas >= MIN_PARALLEL_GAS
                    && Plan::transfers(block.txs.len(), chain, concurrency).strategy
                        == Strategy::Transfers
            }
            Some(strategy) => strategy == Strategy::Transfers,
        };
        let Some(transfers) = try_transfers
            .then(|| TransferBlock::new(&block.txs, block, &self.executor))
            .flatten()
        else {
            return (engine, known, None);
        };
        let mut plan = Plan::transfers(block.txs.len(), transfers.largest_group(), concurrency);
        if self.forced.is_some() {
            plan.strategy = Strategy::Transfers;
            plan.workers = concurrency;
        }
        (plan, known, Some(transfers))
    }

    /// The plan of `block` on Block-STM (or serially), from its first transactions and the
    /// dependencies `known` of them; when forced, on every worker (Block-STM for a block
    /// forced to transfers but not all plain transfers).
    fn engine_plan(&self, block: &Block, known: &[Option<TxIdx>]) -> Plan {
        let sample = &block.txs[..known.len()];
        let plan = Plan::new(sample, known, self.concurrency(), block.txs.len());
        match self.forced {
            Some(strategy @ (Strategy::Serial | Strategy::BlockStm)) => Plan {
                strategy,
                workers: if strategy == Strategy::Serial {
                    1
                } else {
                    self.concurrency()
                },
                ..plan
            },
            Some(Strategy::Transfers) => Plan {
                strategy: Strategy::BlockStm,
                workers: self.concurrency(),
                ..plan
            },
            None => plan,
        }
    }
}

/// Executes `block` on top of `provider` with Block-STM on `concurrency` worker threads
/// started for this block (a node executing block after block keeps a [`Pevm`] instead).
///
/// The output is identical to [`execute_block_serial`](crate::execute_block_serial)'s, and so
/// is the error for an invalid block.
pub fn execute_block<P: StateProvider>(
    provider: &P,
    block: &Block,
    concurrency: NonZeroUsize,
) -> Result<BlockOutput, ExecutionError> {
    Pevm::new(concurrency).execute(provider, block)
}

/// [`execute_block`], also returning what the engine did.
pub fn execute_block_with_stats<P: StateProvider>(
    provider: &P,
    block: &Block,
    concurrency: NonZeroUsize,
) -> Result<(BlockOutput, BlockStats), ExecutionError> {
    Pevm::new(concurrency).execute_with_stats(provider, block)
}

/// Blocks of this many transactions or more fold their state diff on every worker.
const SHARDED_FOLD_MIN_TXS: usize = 4096;

/// The block output from the transactions' outputs: results with cumulative gas in block
/// order, then the state diff, folded by `shards` workers of `executor` that each take the
/// accounts of one shard (see [`fold_shard`]). The error is the one of the lowest
/// transaction, as serially: a failed transaction, a block gas overrun, or a failed read
/// while folding.
fn fold_outputs<P: StateProvider>(
    executor: &Executor<Location, LocationValue>,
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
    let mut cumulative_gas_used = 0;
    for (index, output) in outputs.into_iter().enumerate() {
        let gas_limit = block.txs[index].gas_limit;
        let checked = check_block_gas(index, gas_limit, block.env.gas_limit, cumulative_gas_used);
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
        cumulative_gas_used += result.gas_used;
        result.cumulative_gas_used = cumulative_gas_used;
        stats.lazy_fees += u64::from(effect.lazy_fee.is_some());
        stats.lazy_credits += u64::from(effect.lazy_credit.is_some());
        results.push(result);
        effects.push(effect);
    }
    // Only the transactions before a failed one are folded: a read failing there comes first.
    let shard_ids: Vec<usize> = (0..shards.max(1)).collect();
    let folded = executor.map(&shard_ids, |&shard| {
        fold_shard(provider, facts, &effects, shard, shard_ids.len())
    });
    let mut state = StateDiff::new();
    let mut first_error: Option<(usize, ExecutionError)> = None;
    for shard in folded {
        match shard {
            Ok((mut diff, credited)) => {
                state.append(&mut diff);
                stats.lazy_accounts += credited;
            }
            Err((index, error)) => {
                if first_error.as_ref().is_none_or(|(first, _)| index < *first) {
                    first_error = Some((index, error));
                }
            }
        }
    }
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
