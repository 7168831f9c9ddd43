//! A block run with its access list (EIP-7928): equal to serial with the list its serial run
//! builds, and an error naming the transaction, never a wrong result, with a wrong or an
//! incomplete one.
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]

use std::num::NonZeroUsize;

use alloy_primitives::U256;
use pevm_testkit::{mixed_block, world::world};
use pevm_vm::{execute_block_serial, Block, ExecutionError, Hardfork, Pevm};

/// A mixed Cancun block that asks for its access list, and the list of its serial run.
fn listed_block() -> (Block, pevm_vm::BlockOutput) {
    let block = Block {
        access_list: true,
        ..mixed_block(Hardfork::Cancun, 60).block()
    };
    let serial = execute_block_serial(world(), &block).expect("valid block");
    (block, serial)
}

#[test]
fn the_serial_list_runs_the_block_to_the_serial_output() {
    let (block, serial) = listed_block();
    let list = serial.access_list.clone().expect("asked for");
    for threads in [1, 2, 4] {
        let mut pevm = Pevm::new(NonZeroUsize::new(threads).unwrap());
        let (output, stats) = pevm
            .execute_with_access_list(world(), &block, &list)
            .expect("a right list");
        assert_eq!(output, serial, "{threads} threads");
        assert_eq!(stats.re_executions, 0);
        assert_eq!(stats.executions, block.txs.len() as u64);
    }
}

#[test]
fn a_wrong_value_or_a_missing_account_is_an_error_naming_the_transaction() {
    let (block, serial) = listed_block();
    let list = serial.access_list.clone().expect("asked for");
    let mut pevm = Pevm::new(NonZeroUsize::new(2).unwrap());

    // A balance one transaction leaves, one wei off.
    let mut wrong = list.clone();
    let changed = wrong
        .iter_mut()
        .find(|a| !a.balance_changes.is_empty())
        .expect("some balance changes");
    let (account, change) = (changed.address, &mut changed.balance_changes[0]);
    change.post_balance += U256::from(1);
    let index = change.block_access_index.get() as usize - 1;
    match pevm.execute_with_access_list(world(), &block, &wrong) {
        Err(ExecutionError::AccessList { index: at, message }) => {
            assert!(
                at <= index,
                "named tx {at}, the wrong value is at tx {index}"
            );
            assert!(
                message.contains("Balance") || message.contains("lacks"),
                "{message}"
            );
        }
        other => panic!("a wrong balance of {account} gave {other:?}"),
    }

    // An account a transaction reads, left out.
    let sender = block.txs[0].caller;
    let incomplete: Vec<_> = list
        .iter()
        .filter(|a| a.address != sender)
        .cloned()
        .collect();
    match pevm.execute_with_access_list(world(), &block, &incomplete) {
        Err(ExecutionError::AccessList { index: 0, message }) => {
            assert!(message.contains(&sender.to_string()), "{message}");
        }
        other => panic!("a list without the first sender gave {other:?}"),
    }
}
