//! Every shared mainnet block, with the steps around its transactions: serial == header ==
//! alloy-evm's `EthBlockExecutor`, and parallel == serial at 1, 2, 4 and 8 threads (one
//! long-lived engine per thread count runs every block, on the parallel path); the engine
//! driven through alloy-evm's `BlockExecutor` at 1, 2, 4 and 8 threads gives alloy-evm's
//! receipts, requests and bundle with reverts.
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]

use std::num::NonZeroUsize;

use alloy_consensus::transaction::Recovered;
use alloy_primitives::Address;
use alloy_rpc_types_eth::BlockTransactions;
use pevm_bench::{
    data,
    fixture::{block_dirs, Fixture},
    replay::{
        checking_factory, first_difference, full_serial, missing_system_contract,
        reference_difference,
    },
};
use pevm_vm::{
    execute_block_with_hooks, ChainSpec, ExecutionError, HeaderMismatch, Pevm, Strategy,
};

#[test]
fn mainnet_blocks_match_headers_and_serial_at_every_thread_count() {
    let Some(dir) = data::require(data::mainnet_dir()) else {
        return;
    };
    let dirs = block_dirs(&dir).expect("mainnet folder lists blocks");
    assert!(!dirs.is_empty());
    let mut engines: Vec<_> = [1, 2, 4, 8]
        .map(|t| {
            (
                t,
                Pevm::new(NonZeroUsize::new(t).unwrap()).force(Strategy::BlockStm),
            )
        })
        .into();
    let embedded = [1, 2, 4, 8].map(|t| checking_factory(NonZeroUsize::new(t).unwrap()));
    let chain = ChainSpec::mainnet();
    let mut compared = 0;
    for dir in dirs {
        let fixture = Fixture::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        let number = fixture.number();
        let (provider, block) = (&fixture.provider, &fixture.block);
        let serial = full_serial(&fixture, &fixture.block);
        let output = serial
            .as_ref()
            .unwrap_or_else(|e| panic!("block {number}: {e}"));
        let unchecked = missing_system_contract(&fixture);
        match output.check_header(block.hardfork, &fixture.rpc_block.header) {
            Err(HeaderMismatch::RequestsHash { .. }) if unchecked.is_some() => {}
            Err(mismatch) => panic!("block {number}: {mismatch}"),
            Ok(()) => {}
        }
        match &unchecked {
            Some(reason) => eprintln!("block {number}: {reason}"),
            None => {
                if let Some(difference) = reference_difference(&fixture, &serial, &embedded) {
                    panic!("block {number}: against alloy-evm's executor: {difference}");
                }
                compared += 1;
            }
        }
        for (threads, engine) in &mut engines {
            let parallel =
                execute_block_with_hooks(provider, &chain, block, fixture.context(), |p, b| {
                    engine.execute(p, b)
                });
            assert!(
                parallel == serial,
                "block {number} at {threads} threads: {}",
                first_difference(&serial, &parallel)
            );
        }
    }
    assert!(
        compared > 0,
        "no block was compared with alloy-evm's executor"
    );
}

#[test]
fn mainnet_senders_verify_and_a_forged_sender_is_caught() {
    let Some(dir) = data::require(data::mainnet_dir()) else {
        return;
    };
    let pevm = Pevm::new(NonZeroUsize::new(2).unwrap());
    let mut checked = 0;
    for dir in block_dirs(&dir).expect("mainnet folder lists blocks") {
        let fixture = Fixture::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        let hardfork = fixture.block.hardfork;
        pevm.verify_senders(&fixture.rpc_block, hardfork)
            .unwrap_or_else(|e| panic!("block {}: {e}", fixture.number()));
        let mut forged = fixture.rpc_block.clone();
        let BlockTransactions::Full(txs) = &mut forged.transactions else {
            continue;
        };
        let Some(last) = txs.len().checked_sub(1) else {
            continue;
        };
        let claimed = Address::repeat_byte(0x42);
        let envelope = txs[last].inner.inner().clone();
        txs[last].inner = Recovered::new_unchecked(envelope, claimed);
        match pevm.verify_senders(&forged, hardfork) {
            Err(ExecutionError::WrongSender {
                index,
                claimed: c,
                recovered: Some(_),
            }) => assert_eq!((index, c), (last, claimed)),
            other => panic!(
                "block {}: forged sender not caught: {other:?}",
                fixture.number()
            ),
        }
        checked += 1;
    }
    assert!(checked > 10);
}
