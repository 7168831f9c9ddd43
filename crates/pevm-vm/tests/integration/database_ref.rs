//! A client's revm database as the state: revm's `CacheDB` over an empty database, holding
//! the same world as the in-memory provider, gives the serial and parallel executors the same
//! outputs as that provider does, and a failing database's error reaches the caller.

use std::num::NonZeroUsize;

use pevm_testkit::{
    cache_db, mixed_block,
    world::{world, COUNTER},
    Down,
};
use pevm_vm::{execute_block_serial, ExecutionError, Hardfork, Pevm, Strategy};

#[test]
fn a_cache_db_is_a_state_provider() {
    let provider = world().clone();
    let db = cache_db(&provider);
    for hardfork in [Hardfork::Homestead, Hardfork::Cancun, Hardfork::Prague] {
        let block = mixed_block(hardfork, 200).block();
        let expected = execute_block_serial(&provider, &block).unwrap();
        assert_eq!(execute_block_serial(&db, &block).unwrap(), expected);
        for threads in [1, 2, 4] {
            let mut pevm = Pevm::new(NonZeroUsize::new(threads).unwrap());
            assert_eq!(
                pevm.execute(&db, &block).unwrap(),
                expected,
                "{hardfork:?} at {threads} threads"
            );
            let forced = pevm.force(Strategy::BlockStm).execute(&db, &block);
            assert_eq!(forced.unwrap(), expected, "{hardfork:?}, Block-STM");
        }
    }
}

#[test]
fn a_database_error_names_the_transaction() {
    let db = Down(cache_db(&world().clone()), COUNTER);
    let block = mixed_block(Hardfork::Cancun, 200).block();
    let first_reader = block
        .txs
        .iter()
        .position(|tx| tx.kind.to() == Some(&COUNTER))
        .expect("the mixed block calls the counter");
    let serial = execute_block_serial(&db, &block);
    let parallel = Pevm::new(NonZeroUsize::new(2).unwrap())
        .force(Strategy::BlockStm)
        .execute(&db, &block);
    assert_eq!(parallel, serial);
    match serial {
        Err(ExecutionError::Provider { index, error }) => {
            assert!(index <= first_reader, "tx {index}");
            assert_eq!(error.0, "the database is unreachable");
        }
        other => panic!("expected the database's error, got {other:?}"),
    }
}
