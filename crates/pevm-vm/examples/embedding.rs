//! The engine embedded as a reth-style client embeds an executor: a range of blocks driven
//! through alloy-evm's `BlockExecutor` over one revm `State` on a `CacheDB`, the bundle with
//! reverts taken at the end. The same range through alloy-evm's own `EthBlockExecutor` gives
//! the same receipts, requests and bundle (checked here; the example fails otherwise).
//!
//! `cargo run --release -p pevm-vm --example embedding [threads]`
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]

use std::{borrow::Cow, error::Error, time::Instant};

use alloy_consensus::{
    crypto::secp256k1::sign_message, transaction::Recovered, Header, ReceiptEnvelope,
    SignableTransaction, TxEip1559, TxEnvelope,
};
use alloy_eips::eip4895::Withdrawal;
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use pevm_vm::{
    alloy_evm::{
        block::{BlockExecutionError, BlockExecutionResult, BlockExecutor},
        eth::{receipt_builder::AlloyReceiptBuilder, EthBlockExecutionCtx, EthBlockExecutor},
        EthEvmFactory, EvmEnv, EvmFactory,
    },
    revm::{
        bytecode::Bytecode,
        database::{states::bundle_state::BundleRetention, BundleState, CacheDB, State},
        database_interface::EmptyDB,
        state::AccountInfo,
    },
    ChainSpec, ParallelBlockExecutorFactory, Pevm,
};

/// Accounts that send transactions.
const SENDERS: u64 = 2_000;
/// Blocks in the range.
const BLOCKS: u64 = 3;
/// A Prague timestamp on mainnet.
const TIMESTAMP: u64 = 1_750_000_000;
/// A counter contract: `sstore(0, sload(0) + 1)`.
const COUNTER_CODE: [u8; 8] = [0x5f, 0x54, 0x60, 0x01, 0x01, 0x5f, 0x55, 0x00];
/// Where the counter lives.
const COUNTER: Address = Address::with_last_byte(0xc0);

/// One block of the range: its header, its withdrawals and its signed transactions with
/// their senders.
struct TestBlock {
    header: Header,
    withdrawals: Vec<Withdrawal>,
    txs: Vec<Recovered<TxEnvelope>>,
}

/// What a client keeps of a range: each block's receipts and the bundle of the range.
type RangeOutput = (Vec<BlockExecutionResult<ReceiptEnvelope>>, BundleState);

fn main() -> Result<(), Box<dyn Error>> {
    let threads = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => std::thread::available_parallelism()?,
    };
    let chain = ChainSpec::mainnet();
    let (db, blocks) = world_and_blocks()?;

    let factory = ParallelBlockExecutorFactory::new(chain.clone(), Pevm::new(threads));
    let started = Instant::now();
    let parallel = run_range(&chain, &db, &blocks, |state, env, ctx, txs| {
        let evm = factory.evm_factory().create_evm(state, env);
        factory.create_executor(evm, ctx).execute_block(txs)
    })?;
    let parallel_time = started.elapsed();

    let started = Instant::now();
    let serial = run_range(&chain, &db, &blocks, |state, env, ctx, txs| {
        let evm = EthEvmFactory::default().create_evm(state, env);
        EthBlockExecutor::new(evm, ctx, &chain, AlloyReceiptBuilder::default()).execute_block(txs)
    })?;
    let serial_time = started.elapsed();

    for (number, (ours, theirs)) in parallel.0.iter().zip(&serial.0).enumerate() {
        assert_eq!(ours.receipts, theirs.receipts, "block {number}: receipts");
        assert_eq!(ours.requests, theirs.requests, "block {number}: requests");
        assert_eq!(ours.gas_used, theirs.gas_used, "block {number}: gas used");
        println!(
            "block {number}: {} transactions, {} gas",
            ours.receipts.len(),
            ours.gas_used
        );
    }
    assert_eq!(parallel.1, serial.1, "the bundles differ");
    println!(
        "bundle: {} accounts, reverts of {} blocks ({} entries)",
        parallel.1.state.len(),
        parallel.1.reverts.len(),
        parallel.1.reverts_size
    );
    println!(
        "receipts, requests and bundle with reverts identical to alloy-evm's EthBlockExecutor; \
         {threads} threads {:.1} ms, serial {:.1} ms",
        parallel_time.as_secs_f64() * 1e3,
        serial_time.as_secs_f64() * 1e3
    );
    Ok(())
}

/// Runs `blocks` one after another with `execute` over one revm `State` on `db`, and takes
/// the bundle of the range with reverts, as a client's execution stage does.
fn run_range(
    chain: &ChainSpec,
    db: &CacheDB<EmptyDB>,
    blocks: &[TestBlock],
    execute: impl Fn(
        &mut State<CacheDB<EmptyDB>>,
        EvmEnv,
        EthBlockExecutionCtx<'_>,
        &[Recovered<TxEnvelope>],
    ) -> Result<BlockExecutionResult<ReceiptEnvelope>, BlockExecutionError>,
) -> Result<RangeOutput, BlockExecutionError> {
    let mut state = State::builder()
        .with_database(db.clone())
        .with_bundle_update()
        .build();
    let mut results = Vec::with_capacity(blocks.len());
    for block in blocks {
        let header = &block.header;
        let blob_params = chain.blob_params_at(header.timestamp);
        let env = EvmEnv::for_eth_block(header, chain, 1, blob_params);
        let ctx = EthBlockExecutionCtx {
            parent_hash: header.parent_hash,
            parent_beacon_block_root: header.parent_beacon_block_root,
            ommers: &[],
            withdrawals: Some(Cow::Borrowed(&block.withdrawals)),
            extra_data: header.extra_data.clone(),
            tx_count_hint: Some(block.txs.len()),
            slot_number: None,
        };
        results.push(execute(&mut state, env, ctx, &block.txs)?);
        state.merge_transitions(BundleRetention::Reverts);
    }
    Ok((results, state.take_bundle()))
}

/// The client's database (senders with ether, the counter contract) and a range of blocks:
/// transfers to a few hot recipients, calls to the counter, and withdrawals.
fn world_and_blocks() -> Result<(CacheDB<EmptyDB>, Vec<TestBlock>), Box<dyn Error>> {
    let mut db = CacheDB::new(EmptyDB::default());
    let keys: Vec<B256> = (1..=SENDERS).map(|i| B256::from(U256::from(i))).collect();
    let mut senders = Vec::with_capacity(keys.len());
    for key in &keys {
        let address = sign_message(*key, B256::ZERO)?.recover_address_from_prehash(&B256::ZERO)?;
        let rich = AccountInfo::from_balance(U256::from(10u128.pow(21)));
        db.insert_account_info(address, rich);
        senders.push(address);
    }
    let code = Bytecode::new_raw(Bytes::from_static(&COUNTER_CODE));
    db.insert_account_info(COUNTER, AccountInfo::default().with_code(code));

    let mut blocks = Vec::new();
    let mut parent_hash = B256::with_last_byte(1);
    for number in 0..BLOCKS {
        let mut txs = Vec::with_capacity(keys.len());
        for (i, (key, sender)) in keys.iter().zip(&senders).enumerate() {
            let (to, value, gas_limit) = if i % 10 == 0 {
                (COUNTER, U256::ZERO, 60_000)
            } else {
                (
                    Address::with_last_byte((i % 50) as u8 + 1),
                    U256::from(i),
                    21_000,
                )
            };
            let tx = TxEip1559 {
                chain_id: 1,
                nonce: number,
                gas_limit,
                max_fee_per_gas: 100,
                max_priority_fee_per_gas: 2,
                to: TxKind::Call(to),
                value,
                ..TxEip1559::default()
            };
            let signature = sign_message(*key, tx.signature_hash())?;
            txs.push(Recovered::new_unchecked(
                tx.into_signed(signature).into(),
                *sender,
            ));
        }
        let withdrawals = vec![Withdrawal {
            index: number,
            validator_index: 7,
            address: Address::with_last_byte(0xee),
            amount: 1_000_000_000,
        }];
        let header = Header {
            parent_hash,
            number: 20_000_000 + number,
            timestamp: TIMESTAMP + 12 * number,
            gas_limit: 100_000_000,
            base_fee_per_gas: Some(7),
            beneficiary: Address::with_last_byte(0xbe),
            parent_beacon_block_root: Some(B256::with_last_byte(2)),
            excess_blob_gas: Some(0),
            blob_gas_used: Some(0),
            ..Header::default()
        };
        parent_hash = header.hash_slow();
        blocks.push(TestBlock {
            header,
            withdrawals,
            txs,
        });
    }
    Ok((db, blocks))
}
