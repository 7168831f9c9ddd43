//! A block run with its access list (EIP-7928): equal to serial with the list its serial run
//! builds, and an error naming the transaction, never a wrong result, with a wrong or an
//! incomplete one.

use std::num::NonZeroUsize;

use alloy_primitives::U256;
use pevm_testkit::{
    mixed_block,
    world::{child_init_code, index_of, world, FACTORY},
    Action, BlockSpec, TxSpec,
};
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
fn a_contract_destroyed_then_recreated_runs_with_its_list() {
    // Before Cancun: the factory deploys its child (which sets its slots), the child
    // self-destructs, then the factory deploys it again at the same address (CREATE2),
    // setting the same values, and with mode 3 destroys it again at once. revm's builder
    // lists no change for a write of the value it last recorded, though the destruction in
    // between wiped it: the run with the list must see the same changes.
    let create2 = |mode| Action::Factory {
        mode,
        salt: 1,
        heir: 0,
        value: U256::ZERO,
    };
    let child = FACTORY.create2_from_code(U256::from(1).to_be_bytes::<32>(), child_init_code());
    let destroy = Action::Call {
        target: index_of(child),
        destroy_to: Some(0),
        value: U256::ZERO,
    };
    for last in [1, 3] {
        let txs = vec![
            TxSpec::new(0, create2(1)),
            TxSpec::new(0, destroy.clone()),
            TxSpec::new(0, create2(last)),
        ];
        let block = Block {
            access_list: true,
            ..BlockSpec::new(Hardfork::London, txs).block()
        };
        let serial = execute_block_serial(world(), &block).expect("valid block");
        let list = serial.access_list.clone().expect("asked for");
        for threads in [1, 2] {
            let mut pevm = Pevm::new(NonZeroUsize::new(threads).unwrap());
            let (output, _) = pevm
                .execute_with_access_list(world(), &block, &list)
                .unwrap_or_else(|e| panic!("mode {last}, {threads} threads: {e}"));
            assert_eq!(output, serial, "mode {last}, {threads} threads");
        }
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
