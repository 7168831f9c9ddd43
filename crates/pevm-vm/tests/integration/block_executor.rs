//! The engine through alloy-evm's `BlockExecutor` over revm's `State` on a client's
//! `CacheDB`: receipts, requests and the bundle with reverts equal alloy-evm's
//! `EthBlockExecutor`'s at every thread count, an invalid block fails with alloy-evm's own
//! error, and a failing database gives an error, not a panic.

use std::{fmt::Debug, num::NonZeroUsize};

use alloy_consensus::{
    transaction::Recovered, ReceiptEnvelope, SignableTransaction, TxEip1559, TxEnvelope, TxLegacy,
};
use alloy_primitives::{Signature, B256, U256};
use pevm_testkit::{
    cache_db, mixed_block,
    world::{world, COUNTER},
    Down, CHAIN_ID,
};
use pevm_vm::{
    alloy_evm::{
        block::{BlockExecutionResult, BlockExecutor},
        eth::{receipt_builder::AlloyReceiptBuilder, EthBlockExecutionCtx, EthBlockExecutor},
        Database, EthEvmFactory, EvmEnv, EvmFactory,
    },
    revm::{
        context::TxEnv,
        database::{states::bundle_state::BundleRetention, BundleState, State},
        database_interface::WrapDatabaseRef,
        DatabaseRef,
    },
    Block, ChainSpec, Hardfork, ParallelBlockExecutorFactory, Pevm, Strategy,
};

/// A block's transactions as alloy-evm takes them: each environment with a signed envelope
/// of its type (the receipt takes its type from it) and its sender.
fn executable(block: &Block) -> Vec<(TxEnv, Recovered<TxEnvelope>)> {
    let signature = Signature::new(U256::from(1), U256::from(1), false);
    block
        .txs
        .iter()
        .map(|tx| {
            let envelope: TxEnvelope = match tx.tx_type {
                0 => TxLegacy::default().into_signed(signature).into(),
                _ => TxEip1559::default().into_signed(signature).into(),
            };
            (tx.clone(), Recovered::new_unchecked(envelope, tx.caller))
        })
        .collect()
}

/// The steps around the block's transactions: the beacon root from Cancun on.
fn context(block: &Block) -> EthBlockExecutionCtx<'static> {
    EthBlockExecutionCtx {
        parent_hash: B256::with_last_byte(1),
        parent_beacon_block_root: (block.hardfork >= Hardfork::Cancun)
            .then(|| B256::with_last_byte(2)),
        ommers: &[],
        withdrawals: (block.hardfork >= Hardfork::Shanghai).then(Default::default),
        extra_data: Default::default(),
        tx_count_hint: Some(block.txs.len()),
        slot_number: None,
    }
}

/// The chain of the test blocks: every fork up to the block's from genesis.
fn chain(block: &Block) -> ChainSpec {
    ChainSpec::from_genesis(block.hardfork, CHAIN_ID)
}

/// What a client keeps of a block: alloy-evm's result, or its error's message, and the
/// bundle with reverts.
type Kept = (
    Result<BlockExecutionResult<ReceiptEnvelope>, String>,
    BundleState,
);

/// `block` on `db` through the engine on `threads` workers (Block-STM on every block).
fn parallel<DB>(db: DB, block: &Block, threads: usize) -> Kept
where
    DB: Database + DatabaseRef + Sync,
{
    let pevm = Pevm::new(NonZeroUsize::new(threads).unwrap()).force(Strategy::BlockStm);
    let factory = ParallelBlockExecutorFactory::new(chain(block), pevm);
    let mut state = State::builder()
        .with_database(db)
        .with_bundle_update()
        .build();
    let env = EvmEnv::new(block.cfg.clone(), block.env.clone());
    let evm = factory.evm_factory().create_evm(&mut state, env);
    let result = factory
        .create_executor(evm, context(block))
        .execute_block(executable(block));
    state.merge_transitions(BundleRetention::Reverts);
    (result.map_err(|e| e.to_string()), state.take_bundle())
}

/// `block` on `db` through alloy-evm's own executor.
fn serial<DB: Database + Debug>(db: DB, block: &Block) -> Kept {
    let chain = chain(block);
    let mut state = State::builder()
        .with_database(db)
        .with_bundle_update()
        .build();
    let env = EvmEnv::new(block.cfg.clone(), block.env.clone());
    let evm = EthEvmFactory::default().create_evm(&mut state, env);
    let result = EthBlockExecutor::new(evm, context(block), &chain, AlloyReceiptBuilder::default())
        .execute_block(executable(block));
    state.merge_transitions(BundleRetention::Reverts);
    (result.map_err(|e| e.to_string()), state.take_bundle())
}

#[test]
fn blocks_through_the_trait_equal_alloy_evm() {
    let db = cache_db(&world().clone());
    for hardfork in [
        Hardfork::Frontier,
        Hardfork::SpuriousDragon,
        Hardfork::Cancun,
        Hardfork::Prague,
    ] {
        let block = mixed_block(hardfork, 200).block();
        let (expected, bundle) = serial(db.clone(), &block);
        let expected = expected.unwrap_or_else(|e| panic!("{hardfork:?}: {e}"));
        assert!(!bundle.reverts.is_empty() && bundle.reverts_size > 0);
        for threads in [1, 2, 4, 8] {
            let (result, ours) = parallel(db.clone(), &block, threads);
            let result = result.unwrap_or_else(|e| panic!("{hardfork:?}: {e}"));
            assert_eq!(
                result.receipts, expected.receipts,
                "{hardfork:?}, {threads}"
            );
            assert_eq!(
                result.gas_used, expected.gas_used,
                "{hardfork:?}, {threads}"
            );
            assert_eq!(
                result.requests, expected.requests,
                "{hardfork:?}, {threads}"
            );
            assert!(
                ours == bundle,
                "{hardfork:?}, {threads} threads: bundles differ"
            );
        }
    }
}

#[test]
fn an_invalid_block_fails_with_alloy_evms_error() {
    let db = cache_db(&world().clone());
    let mut block = mixed_block(Hardfork::Cancun, 100).block();
    block.txs[60].nonce += 1;
    let (expected, _) = serial(db.clone(), &block);
    let expected = expected.expect_err("a nonce too high");
    for threads in [1, 2, 4] {
        let (result, _) = parallel(db.clone(), &block, threads);
        assert_eq!(result.expect_err("a nonce too high"), expected);
    }
}

#[test]
fn a_failing_database_is_an_error() {
    let block = mixed_block(Hardfork::Cancun, 100).block();
    let down = || WrapDatabaseRef(Down(cache_db(&world().clone()), COUNTER));
    let (expected, _) = serial(down(), &block);
    let expected = expected.expect_err("the counter cannot be read");
    assert!(expected.contains("unreachable"), "{expected}");
    let (result, _) = parallel(down(), &block, 2);
    assert_eq!(result.expect_err("the counter cannot be read"), expected);
}
