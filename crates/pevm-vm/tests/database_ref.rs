//! A client's revm database as the state: revm's `CacheDB` over an empty database, holding
//! the same world as the in-memory provider, gives the serial and parallel executors the same
//! outputs as that provider does, and a failing database's error reaches the caller.

mod common;

use std::num::NonZeroUsize;

use alloy_primitives::{Address, B256, U256};
use common::{mixed_block, world, COUNTER};
use pevm_vm::{
    execute_block_serial,
    revm::{
        bytecode::Bytecode,
        database::{CacheDB, EmptyDB},
        database_interface::DBErrorMarker,
        state::AccountInfo,
        DatabaseRef,
    },
    ExecutionError, Hardfork, InMemoryProvider, Pevm, StateProvider, Strategy,
};

/// `provider`'s accounts, code and storage in a `CacheDB`.
fn cache_db(provider: &InMemoryProvider) -> CacheDB<EmptyDB> {
    let mut db = CacheDB::new(EmptyDB::new());
    for (address, basic, storage) in provider.accounts() {
        let code = provider.code_by_hash(basic.code_hash).unwrap();
        let info = AccountInfo::new(basic.balance, basic.nonce, basic.code_hash, code);
        db.insert_account_info(*address, info);
        for (slot, value) in storage {
            db.insert_account_storage(*address, *slot, *value).unwrap();
        }
    }
    db
}

#[test]
fn a_cache_db_is_a_state_provider() {
    let provider = world();
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

/// A client's database whose reads of one account fail.
struct Down(CacheDB<EmptyDB>, Address);

/// Its error.
#[derive(Debug)]
struct Unreachable;

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the database is unreachable")
    }
}

impl std::error::Error for Unreachable {}

impl DBErrorMarker for Unreachable {}

impl DatabaseRef for Down {
    type Error = Unreachable;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Unreachable> {
        if address == self.1 {
            return Err(Unreachable);
        }
        Ok(self.0.basic_ref(address).unwrap_or_else(|e| match e {}))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Unreachable> {
        Ok(self
            .0
            .code_by_hash_ref(code_hash)
            .unwrap_or_else(|e| match e {}))
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, Unreachable> {
        Ok(self
            .0
            .storage_ref(address, index)
            .unwrap_or_else(|e| match e {}))
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Unreachable> {
        Ok(self.0.block_hash_ref(number).unwrap_or_else(|e| match e {}))
    }
}

#[test]
fn a_database_error_names_the_transaction() {
    let db = Down(cache_db(&world()), COUNTER);
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
