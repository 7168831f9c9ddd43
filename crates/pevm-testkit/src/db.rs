//! The test world as a client's database: revm's `CacheDB`, and one whose reads of an
//! account fail.

use alloy_primitives::{Address, B256, U256};
use pevm_vm::{
    revm::{
        bytecode::Bytecode,
        database::{CacheDB, EmptyDB},
        database_interface::DBErrorMarker,
        state::AccountInfo,
        DatabaseRef,
    },
    InMemoryProvider, StateProvider,
};

/// `provider`'s accounts, code and storage in a `CacheDB`.
pub fn cache_db(provider: &InMemoryProvider) -> CacheDB<EmptyDB> {
    let mut db = CacheDB::new(EmptyDB::new());
    for (address, basic, storage) in provider.accounts() {
        let code = provider
            .code_by_hash(basic.code_hash)
            .expect("the provider holds its accounts' code");
        let info = AccountInfo::new(basic.balance, basic.nonce, basic.code_hash, code);
        db.insert_account_info(*address, info);
        for (slot, value) in storage {
            db.insert_account_storage(*address, *slot, *value)
                .unwrap_or_else(|e| match e {});
        }
    }
    db
}

/// A client's database whose reads of one account (`.1`) fail.
#[derive(Debug)]
pub struct Down(pub CacheDB<EmptyDB>, pub Address);

/// The error of [`Down`].
#[derive(Debug)]
pub struct Unreachable;

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
