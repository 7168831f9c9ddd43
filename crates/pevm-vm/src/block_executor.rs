//! alloy-evm's `BlockExecutor` on the engine: a client that drives blocks through the trait,
//! over revm's `State`, gets the parallel engine for whole blocks and the same receipts,
//! requests and bundle (with reverts) as alloy-evm's own `EthBlockExecutor`.
//!
//! The pre- and post-block steps, receipts and commits are alloy-evm's executor itself; only
//! the transactions of `execute_block` run on the engine, whose per-transaction outputs equal
//! serial revm's ([`Pevm::execute_transactions`]) and are committed to the `State` in block
//! order, as the serial executor commits them.

use std::sync::{Mutex, MutexGuard, PoisonError};

use alloy_consensus::{
    transaction::Recovered, Transaction, TransactionEnvelope, TxEnvelope, TxReceipt,
};
use alloy_eips::eip2718::Encodable2718;
use alloy_evm::{
    block::{
        BlockExecutionError, BlockExecutionResult, BlockExecutor, ExecutableTx, ExecutableTxParts,
        GasOutput,
    },
    eth::{
        receipt_builder::{AlloyReceiptBuilder, ReceiptBuilder},
        EthBlockExecutionCtx, EthBlockExecutor, EthTxResult,
    },
    Database, EthEvmFactory, Evm, FromRecoveredTx, FromTxWithEncoded, RecoveredTx,
};
use alloy_primitives::{Address, Log, B256, U256};
use revm::{
    bytecode::Bytecode,
    context::TxEnv,
    database::{states::block_hash_cache::BlockHashCache, CacheState, State},
    primitives::{StorageKey, StorageValue},
    state::{bal::BlockAccessIndex, AccountInfo},
    DatabaseRef,
};

use crate::{
    exec::reference::{run_over_state, ReferenceOutput},
    Block, BlockContext, ChainSpec, Pevm, StateEvm, StateProvider,
};

/// Makes [`ParallelBlockExecutor`]s: alloy-evm's Ethereum block executor factory whose
/// blocks run on one shared [`Pevm`].
///
/// It is not alloy-evm's `BlockExecutorFactory`: that trait makes executors over any
/// `Database + DatabaseCommit`, which worker threads cannot read at the same time. Here the
/// state is revm's `State` over a database the workers can share (`DatabaseRef + Sync`, as
/// revm's `CacheDB` and `AlloyDB` and reth's `StateProviderDatabase` are).
#[derive(Debug)]
pub struct ParallelBlockExecutorFactory<R = AlloyReceiptBuilder> {
    chain: ChainSpec,
    receipt_builder: R,
    evm_factory: EthEvmFactory,
    pevm: Mutex<Pevm>,
}

impl ParallelBlockExecutorFactory {
    /// Executors for `chain` building alloy's receipts, whose blocks run on `pevm`.
    pub fn new(chain: ChainSpec, pevm: Pevm) -> Self {
        Self::with_receipt_builder(chain, AlloyReceiptBuilder::default(), pevm)
    }
}

impl<R> ParallelBlockExecutorFactory<R> {
    /// Executors for `chain` building receipts with `receipt_builder`, whose blocks run on
    /// `pevm`.
    pub fn with_receipt_builder(chain: ChainSpec, receipt_builder: R, pevm: Pevm) -> Self {
        Self {
            chain,
            receipt_builder,
            evm_factory: EthEvmFactory::default(),
            pevm: Mutex::new(pevm),
        }
    }

    /// The factory of the EVMs the executors take (`create_evm(&mut state, evm_env)`).
    pub fn evm_factory(&self) -> &EthEvmFactory {
        &self.evm_factory
    }

    /// The chain the executors run.
    pub fn chain(&self) -> &ChainSpec {
        &self.chain
    }

    /// The engine's number of workers.
    pub fn concurrency(&self) -> usize {
        self.pevm().concurrency()
    }

    /// The engine, waiting for an executor that is running a block on it.
    fn pevm(&self) -> MutexGuard<'_, Pevm> {
        self.pevm.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An executor of one block on `evm` (over the client's `State`), with the block's
    /// pre- and post-block context `ctx`.
    pub fn create_executor<'a, 'db, DB>(
        &'a self,
        evm: StateEvm<'db, DB>,
        ctx: EthBlockExecutionCtx<'a>,
    ) -> ParallelBlockExecutor<'a, 'db, DB, R>
    where
        R: ReceiptBuilder,
        DB: Database,
    {
        ParallelBlockExecutor {
            inner: EthBlockExecutor::new(evm, ctx, &self.chain, &self.receipt_builder),
            chain: &self.chain,
            pevm: &self.pevm,
        }
    }
}

/// alloy-evm's Ethereum block executor whose `execute_block` runs the transactions on the
/// engine. Everything else, the per-transaction methods (for block building) included, is
/// alloy-evm's `EthBlockExecutor`, serial.
///
/// A block the engine rejects (an invalid transaction, a failed read) is run again by
/// alloy-evm's executor, so the error is alloy-evm's own. A `State` that reads through a
/// preloaded bundle or an EIP-7928 access list runs serially as well, and so does a block
/// with Amsterdam's state gas (EIP-8037).
pub struct ParallelBlockExecutor<'a, 'db, DB: Database, R: ReceiptBuilder = AlloyReceiptBuilder> {
    inner: EthBlockExecutor<'a, StateEvm<'db, DB>, &'a ChainSpec, &'a R>,
    chain: &'a ChainSpec,
    pevm: &'a Mutex<Pevm>,
}

impl<'db, DB, R> BlockExecutor for ParallelBlockExecutor<'_, 'db, DB, R>
where
    DB: Database + DatabaseRef + Sync,
    R: ReceiptBuilder<Transaction: Transaction + Encodable2718, Receipt: TxReceipt<Log = Log>>,
    <R::Transaction as TransactionEnvelope>::TxType: Send + 'static,
    TxEnv: FromRecoveredTx<R::Transaction> + FromTxWithEncoded<R::Transaction>,
{
    type Transaction = R::Transaction;
    type Receipt = R::Receipt;
    type Evm = StateEvm<'db, DB>;
    type Result = EthTxResult<
        revm::context::result::HaltReason,
        <R::Transaction as TransactionEnvelope>::TxType,
    >;

    fn apply_pre_execution_changes(&mut self) -> Result<(), BlockExecutionError> {
        self.inner.apply_pre_execution_changes()
    }

    fn execute_transaction_without_commit(
        &mut self,
        tx: impl ExecutableTx<Self>,
    ) -> Result<Self::Result, BlockExecutionError> {
        self.inner.execute_transaction_without_commit(tx)
    }

    fn commit_transaction(&mut self, output: Self::Result) -> GasOutput {
        self.inner.commit_transaction(output)
    }

    fn finish(
        self,
    ) -> Result<(Self::Evm, BlockExecutionResult<Self::Receipt>), BlockExecutionError> {
        self.inner.finish()
    }

    fn evm_mut(&mut self) -> &mut Self::Evm {
        self.inner.evm_mut()
    }

    fn evm(&self) -> &Self::Evm {
        self.inner.evm()
    }

    fn receipts(&self) -> &[Self::Receipt] {
        self.inner.receipts()
    }

    /// Applies the pre-block steps, runs the transactions on the engine and commits each
    /// one's state in block order, then applies the post-block steps.
    fn execute_block(
        mut self,
        transactions: impl IntoIterator<Item = impl ExecutableTx<Self>>,
    ) -> Result<BlockExecutionResult<Self::Receipt>, BlockExecutionError> {
        self.inner.apply_pre_execution_changes()?;
        // The environments go to the engine's block; the signed transactions stay for the
        // receipts.
        let (envs, signed): (Vec<_>, Vec<_>) = transactions
            .into_iter()
            .map(ExecutableTxParts::into_parts)
            .unzip();
        let evm = self.inner.evm();
        let block = Block {
            hardfork: self.chain.hardfork_at(
                evm.block().number.saturating_to(),
                evm.block().timestamp.saturating_to(),
            ),
            cfg: evm.cfg_env().clone(),
            env: evm.block().clone(),
            txs: envs,
            // The client's `State` builds the access list from the states committed to it.
            access_list: false,
        };
        let state: &State<DB> = evm.db();
        let view = StateView::of(state);
        let executed = view.and_then(|view| {
            let mut pevm = self.pevm.lock().unwrap_or_else(PoisonError::into_inner);
            pevm.execute_transactions(&view, &block).ok()
        });
        match executed {
            Some(outputs) => {
                for (index, (tx, result)) in signed.iter().zip(outputs).enumerate() {
                    let tx = tx.tx();
                    // Each transaction's part of the access list (EIP-7928) at its index.
                    self.inner
                        .evm_mut()
                        .db_mut()
                        .set_bal_index(BlockAccessIndex::new(index as u64 + 1));
                    self.inner.commit_transaction(EthTxResult {
                        result,
                        blob_gas_used: tx.blob_gas_used().unwrap_or_default(),
                        tx_type: tx.tx_type(),
                    });
                }
            }
            None => {
                for (index, (env, tx)) in block.txs.into_iter().zip(signed).enumerate() {
                    let bal_index = BlockAccessIndex::new(index as u64 + 1);
                    self.inner.evm_mut().db_mut().set_bal_index(bal_index);
                    self.inner.execute_transaction((env, tx))?;
                }
            }
        }
        let post_block = BlockAccessIndex::new(self.inner.receipts().len() as u64 + 1);
        self.inner.evm_mut().db_mut().set_bal_index(post_block);
        self.inner.apply_post_execution_changes()
    }
}

/// What the workers read of revm's `State`: its cache (the block's changes so far and what
/// it loaded) over its database. Hand-written because revm's `State` is not `Sync` (its
/// state hook is only `Send`), so the workers cannot share it; the reads are those of
/// `State`'s own `Database` methods.
struct StateView<'a, DB> {
    cache: &'a CacheState,
    block_hashes: &'a BlockHashCache,
    database: &'a DB,
}

impl<'a, DB> StateView<'a, DB> {
    /// The view of `state`; `None` when it also reads a preloaded bundle or an access list.
    fn of(state: &'a State<DB>) -> Option<Self> {
        (!state.use_preloaded_bundle && state.bal_state.bal.is_none()).then_some(Self {
            cache: &state.cache,
            block_hashes: &state.block_hashes,
            database: &state.database,
        })
    }
}

impl<DB: DatabaseRef> DatabaseRef for StateView<'_, DB> {
    type Error = DB::Error;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        match self.cache.accounts.get(&address) {
            Some(account) => Ok(account.account_info()),
            None => self.database.basic_ref(address),
        }
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        match self.cache.contracts.get(&code_hash) {
            Some(code) => Ok(code.clone()),
            None => self.database.code_by_hash_ref(code_hash),
        }
    }

    fn storage_ref(
        &self,
        address: Address,
        index: StorageKey,
    ) -> Result<StorageValue, Self::Error> {
        let Some(cached) = self.cache.accounts.get(&address) else {
            return self.database.storage_ref(address, index);
        };
        // A cached account that does not exist has no storage.
        let Some(account) = &cached.account else {
            return Ok(U256::ZERO);
        };
        match account.storage.get(&index) {
            Some(value) => Ok(*value),
            // Destroyed or created in the block: no earlier storage.
            None if cached.status.is_storage_known() => Ok(U256::ZERO),
            None => self.database.storage_ref(address, index),
        }
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Self::Error> {
        match self.block_hashes.get(number) {
            Some(hash) => Ok(hash),
            None => self.database.block_hash_ref(number),
        }
    }
}

/// [`execute_block_reference`](crate::execute_block_reference), but with the executor a client embedding the engine gets from
/// `factory`: the [`ParallelBlockExecutor`], driven through
/// alloy-evm's `BlockExecutor` trait alone.
pub fn execute_block_embedded<'t, P: StateProvider>(
    factory: &ParallelBlockExecutorFactory,
    provider: &P,
    block: &Block,
    ctx: BlockContext<'_>,
    txs: impl IntoIterator<Item = Recovered<&'t TxEnvelope>>,
) -> Result<ReferenceOutput, String> {
    run_over_state(provider, factory.chain(), block, txs, |evm, txs| {
        factory.create_executor(evm, ctx).execute_block(txs)
    })
}
