//! The front door: [`Pevm`], a long-lived executor that plans each block and runs it on the
//! serial executor, the transfer strategy or Block-STM.

use std::{num::NonZeroUsize, time::Instant};

use alloy_consensus::transaction::SignerRecoverable;
use alloy_rpc_types_eth::{Block as RpcBlock, BlockTransactions};
use pevm_core::{ExecStats, Executor, TxIdx};
use revm::context::result::ResultAndState;

use crate::{
    block_stm::{
        fold::Fold,
        mv_db::{Location, LocationValue},
        tx_states::settle_tx_states,
        vm::{engine_error, EvmVm, TxOutput},
    },
    chain::block::BlockFacts,
    exec::serial::{execute_block_serial, execute_transactions_serial, output_of_states},
    strategy::{
        hints::Hints,
        listed::{check_states, execute_listed},
        plan::{read_gas, Cost, Plan, Strategy, MIN_PARALLEL_GAS, PLAN_SAMPLE, TRANSFER_WEIGHT},
        stats::BlockStats,
        transfers::{execute_transfers, Links, TransferBlock},
    },
    Block, BlockAccessList, BlockOutput, ExecutionError, Hardfork, StateProvider,
};

/// How many reads the plan times to learn what the state's reads cost.
const READ_PROBES: usize = 8;

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
    links: Links,
}

impl Pevm {
    /// An executor with `concurrency` workers (the calling thread is one of them) that plans
    /// each block.
    pub fn new(concurrency: NonZeroUsize) -> Self {
        Self {
            executor: Executor::new(concurrency.get()),
            forced: None,
            hints: Hints::default(),
            links: Links::default(),
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
        let recovered = self.executor.pool().map(txs, |tx| {
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
        // The transfer groups keep no per-transaction state to build an access list from.
        let cost = self.cost(provider, block);
        let (mut plan, known, transfers) = self.plan(block, !block.access_list, cost);
        if let Some(transfers) = transfers.filter(|_| plan.strategy == Strategy::Transfers) {
            let ran = execute_transfers(
                self.executor.pool(),
                plan.workers,
                provider,
                block,
                &transfers,
            )?;
            if let Some((output, stats)) = ran {
                return Ok((output, BlockStats { plan, ..stats }));
            }
            // A recipient had code after all.
            plan = self.engine_plan(block, &known, cost);
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
        // The access list is built from each transaction's revm state, as serially.
        let keep = block.access_list;
        if keep {
            let mut outputs = Vec::with_capacity(block.txs.len());
            let commit = &mut |_, output| outputs.push(output);
            let engine = self.run_engine(provider, block, plan, known, cost, keep, commit)?;
            let effects = outputs.iter().flatten().map(|output| &output.effects);
            let (lazy_fees, lazy_credits) = effects.fold((0, 0), |(fees, credits), e| {
                let (fee, credit) = (e.lazy_fee.is_some(), e.lazy_credit.is_some());
                (fees + u64::from(fee), credits + u64::from(credit))
            });
            let states = settle_tx_states(provider, block, outputs)?;
            let output = output_of_states(block, states)?;
            let stats = BlockStats {
                plan,
                engine,
                lazy_fees,
                lazy_credits,
                ..BlockStats::default()
            };
            return Ok((output, stats));
        }
        // Each transaction is folded into the block's output once committed, while later
        // ones still run.
        let mut fold = Fold::new(provider, block);
        let commit = &mut |index, output| fold.add(index, output);
        let engine = self.run_engine(provider, block, plan, known, cost, keep, commit)?;
        let (output, lazy) = fold.finish(self.executor.pool())?;
        let stats = BlockStats {
            plan,
            engine,
            lazy_fees: lazy.fees,
            lazy_credits: lazy.credits,
            lazy_accounts: lazy.accounts,
        };
        Ok((output, stats))
    }

    /// Executes `block` on top of `provider` with its access list `list` (EIP-7928: an
    /// Amsterdam block's own, or the one an earlier run of the block returned), every
    /// transaction at once on the workers: each reads what the ones before it left from the
    /// list, so none waits and none runs twice. The output is
    /// [`execute_block_serial`](crate::execute_block_serial)'s; a list that is wrong or lacks
    /// what a transaction read is an [`ExecutionError::AccessList`] naming the transaction.
    ///
    /// Before Spurious Dragon (EIP-161) an account can exist empty, which a list cannot show:
    /// such a block runs as [`Self::execute`] runs it, and the list is checked after.
    pub fn execute_with_access_list<P: StateProvider>(
        &mut self,
        provider: &P,
        block: &Block,
        list: &BlockAccessList,
    ) -> Result<(BlockOutput, ExecStats), ExecutionError> {
        if !BlockFacts::new(block).eip161 {
            let (states, stats) = self.execute_transactions_with_stats(provider, block)?;
            check_states(list, &states)?;
            return Ok((output_of_states(block, states)?, stats));
        }
        let workers = self.concurrency();
        let output = execute_listed(self.executor.pool(), workers, provider, block, list)?;
        let stats = ExecStats {
            executions: block.txs.len() as u64,
            ..ExecStats::default()
        };
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
        self.execute_transactions_with_stats(provider, block)
            .map(|(states, _)| states)
    }

    /// [`Self::execute_transactions`], also returning what the engine did.
    fn execute_transactions_with_stats<P: StateProvider>(
        &mut self,
        provider: &P,
        block: &Block,
    ) -> Result<(Vec<ResultAndState>, ExecStats), ExecutionError> {
        // The transfer groups keep no per-transaction state: Block-STM runs the block.
        let cost = self.cost(provider, block);
        let (plan, known, _) = self.plan(block, false, cost);
        if plan.strategy == Strategy::Serial {
            let states = execute_transactions_serial(provider, block)?;
            let stats = ExecStats {
                executions: block.txs.len() as u64,
                ..ExecStats::default()
            };
            return Ok((states, stats));
        }
        let mut outputs = Vec::with_capacity(block.txs.len());
        let commit = &mut |_, output| outputs.push(output);
        let stats = self.run_engine(provider, block, plan, known, cost, true, commit)?;
        Ok((settle_tx_states(provider, block, outputs)?, stats))
    }

    /// Runs `block` on Block-STM as `plan` says, `known` holding the dependencies known of
    /// its first transactions, handing each transaction's output to `commit` in block order
    /// as soon as it is final; with `keep`, each output keeps revm's own.
    ///
    /// Where `cost` says the state's reads are slow, transfers credit their recipients as
    /// they run: there the reads outweigh the conflicts of a shared recipient, and lazy
    /// credits were measured to gain nothing (BENCHMARKS.md).
    #[allow(clippy::too_many_arguments)] // The plan's parts, as `plan` hands them on.
    fn run_engine<P: StateProvider>(
        &mut self,
        provider: &P,
        block: &Block,
        plan: Plan,
        mut known: Vec<Option<TxIdx>>,
        cost: Cost,
        keep: bool,
        commit: &mut (dyn FnMut(TxIdx, Result<TxOutput, ExecutionError>) + Send),
    ) -> Result<ExecStats, ExecutionError> {
        let lazy_credits = cost.read_gas == 0;
        if known.len() < block.txs.len() {
            // Token holders only if the plan's sample linked some through them.
            let tokens = self.hints.linked_holders();
            let (pool, workers) = (self.executor.pool(), plan.workers);
            known = self
                .hints
                .known_dependencies(&block.txs, tokens, lazy_credits, pool, workers);
        }
        let vm = EvmVm::new(provider, block, known, &self.hints, keep, lazy_credits);
        self.executor
            .execute_committing(&vm, block.txs.len(), plan.workers, commit)
            .map_err(engine_error)
    }

    /// How `block` runs; the dependencies known of its first transactions (see
    /// [`PLAN_SAMPLE`]; none when its weights alone make it serial), and its transfer groups
    /// when it is all plain transfers and `transfers` allows the transfer strategy.
    fn plan(
        &mut self,
        block: &Block,
        transfers: bool,
        cost: Cost,
    ) -> (Plan, Vec<Option<TxIdx>>, Option<TransferBlock>) {
        let sample = &block.txs[..block.txs.len().min(PLAN_SAMPLE)];
        if self.forced.is_none() {
            let independent =
                Plan::independent(sample, block.env.beneficiary, cost, block.txs.len());
            if independent.strategy == Strategy::Serial {
                return (independent, Vec::new(), None);
            }
        }
        // The block may well run on the workers: they wake while its dependencies are found.
        if self.forced != Some(Strategy::Serial) {
            self.executor.pool().wake();
        }
        let (pool, concurrency) = (self.executor.pool(), self.concurrency());
        let known =
            self.hints
                .known_dependencies(sample, true, cost.read_gas == 0, pool, concurrency);
        let engine = self.engine_plan(block, &known, cost);
        let try_transfers = transfers
            && match self.forced {
                // The known dependencies all link transactions of one group: their longest chain
                // is no longer than the largest group, so a block they already show too
                // dependent (a chain of transfers) is not analysed at all.
                None => {
                    let weight = TRANSFER_WEIGHT.saturating_add(cost.read_gas);
                    let chain = (engine.critical_gas / weight) as usize;
                    engine.total_gas >= MIN_PARALLEL_GAS
                        && Plan::transfers(block.txs.len(), chain, cost).strategy
                            == Strategy::Transfers
                }
                Some(strategy) => strategy == Strategy::Transfers,
            };
        let Some(transfers) = try_transfers
            .then(|| TransferBlock::new(&block.txs, block, self.executor.pool(), &mut self.links))
            .flatten()
        else {
            return (engine, known, None);
        };
        let mut plan = Plan::transfers(block.txs.len(), transfers.largest_group(), cost);
        if self.forced.is_some() {
            plan.strategy = Strategy::Transfers;
            plan.workers = concurrency;
        }
        (plan, known, Some(transfers))
    }

    /// What running `block` over `provider` can use: this executor's workers, and what
    /// `provider`'s reads cost: the median time of reads of the first transactions' senders
    /// (which the block reads anyway), timed as it is about to run (a median, so that one
    /// preemption of this thread does not make memory look slow). Each sender is read twice
    /// and the second read timed: a first read from memory that the caches lost takes as long
    /// as one from a database (300 to 1,700 ns against 600 to 900 ns from redb here), a
    /// second one does not (under 160 ns against 560 ns and more).
    fn cost<P: StateProvider>(&self, provider: &P, block: &Block) -> Cost {
        let mut times: Vec<u64> = block
            .txs
            .iter()
            .take(READ_PROBES)
            .map(|tx| {
                // A failing read fails the block's run just the same; here it only costs time.
                // The first read brings the account into the caches; the second is timed.
                let _ = provider.basic(tx.caller);
                let start = Instant::now();
                let _ = provider.basic(tx.caller);
                start.elapsed().as_nanos() as u64
            })
            .collect();
        times.sort_unstable();
        let read_ns = times.get(times.len() / 2).copied().unwrap_or(0);
        Cost {
            concurrency: self.concurrency(),
            read_gas: read_gas(read_ns),
        }
    }

    /// The plan of `block` on Block-STM (or serially), from its first transactions and the
    /// dependencies `known` of them; when forced, on every worker (Block-STM for a block
    /// forced to transfers but not all plain transfers).
    fn engine_plan(&self, block: &Block, known: &[Option<TxIdx>], cost: Cost) -> Plan {
        let sample = &block.txs[..known.len()];
        let plan = Plan::new(sample, known, cost, block.txs.len());
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
