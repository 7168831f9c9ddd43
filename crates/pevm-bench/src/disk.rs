//! State on disk: a block's pre-state in an embedded redb database, read by the executors
//! through revm's `DatabaseRef` (and so as a `StateProvider`), as a client reads its own
//! store.
//!
//! redb is a pure-Rust embedded key-value store (copy-on-write B-trees in one file, ACID
//! transactions, readers that never block writers or each other). It is hand-wrapped here
//! because no crate maps revm's state onto it: four tables with fixed-size keys (an address,
//! an address and a slot, a code hash, a block number). One read transaction serves every
//! read of a run, from every worker at once.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use alloy_primitives::{Address, B256, U256};
use pevm_vm::{
    revm::{bytecode::Bytecode, primitives::KECCAK_EMPTY, state::AccountInfo, DatabaseRef},
    InMemoryProvider, ProviderError, StateProvider,
};
use redb::{Database, ReadOnlyTable, ReadableDatabase, TableDefinition};

/// Address → balance (32 bytes), nonce (8), code hash (32).
const ACCOUNTS: TableDefinition<'_, [u8; 20], [u8; 72]> = TableDefinition::new("accounts");
/// Address and slot → value.
const STORAGE: TableDefinition<'_, [u8; 52], [u8; 32]> = TableDefinition::new("storage");
/// Code hash → code.
const CODE: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("code");
/// Block number → hash.
const BLOCK_HASHES: TableDefinition<'_, u64, [u8; 32]> = TableDefinition::new("block_hashes");

/// What went wrong with a state database: the file and the store's message.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DiskError {
    /// The database file.
    pub path: String,
    /// What redb (or the state written) reported.
    pub message: String,
}

/// The error of `path` with `error`'s message.
fn disk_error(path: &Path, error: impl std::fmt::Display) -> DiskError {
    DiskError {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

/// The key of `slot` of `address`.
fn slot_key(address: Address, slot: U256) -> [u8; 52] {
    let mut key = [0; 52];
    key[..20].copy_from_slice(address.as_slice());
    key[20..].copy_from_slice(&slot.to_be_bytes::<32>());
    key
}

/// Writes `state` (accounts, storage, code, block hashes) into a new database at `path`,
/// replacing any file there, in one transaction.
pub fn write_state(path: &Path, state: &InMemoryProvider) -> Result<(), DiskError> {
    let err = |e: &dyn std::fmt::Display| disk_error(path, e);
    if path.exists() {
        std::fs::remove_file(path).map_err(|e| err(&e))?;
    }
    let db = Database::create(path).map_err(|e| err(&e))?;
    let tx = db.begin_write().map_err(|e| err(&e))?;
    {
        let mut accounts = tx.open_table(ACCOUNTS).map_err(|e| err(&e))?;
        let mut storage = tx.open_table(STORAGE).map_err(|e| err(&e))?;
        let mut code = tx.open_table(CODE).map_err(|e| err(&e))?;
        for (address, basic, slots) in state.accounts() {
            let mut value = [0; 72];
            value[..32].copy_from_slice(&basic.balance.to_be_bytes::<32>());
            value[32..40].copy_from_slice(&basic.nonce.to_be_bytes());
            value[40..].copy_from_slice(basic.code_hash.as_slice());
            accounts.insert(address.0 .0, value).map_err(|e| err(&e))?;
            for (slot, word) in slots.iter().filter(|(_, word)| !word.is_zero()) {
                let key = slot_key(*address, *slot);
                storage
                    .insert(key, word.to_be_bytes::<32>())
                    .map_err(|e| err(&e))?;
            }
            if basic.code_hash != KECCAK_EMPTY {
                let bytecode = state.code_by_hash(basic.code_hash).map_err(|e| err(&e))?;
                let bytes = bytecode.original_bytes();
                code.insert(basic.code_hash.0, bytes.as_ref())
                    .map_err(|e| err(&e))?;
            }
        }
        let mut hashes = tx.open_table(BLOCK_HASHES).map_err(|e| err(&e))?;
        for (number, hash) in state.block_hashes() {
            hashes.insert(number, hash.0).map_err(|e| err(&e))?;
        }
    }
    tx.commit().map_err(|e| err(&e))
}

/// The state in a database [`write_state`] wrote, read through one read transaction.
pub struct DiskState {
    accounts: ReadOnlyTable<[u8; 20], [u8; 72]>,
    storage: ReadOnlyTable<[u8; 52], [u8; 32]>,
    code: ReadOnlyTable<[u8; 32], &'static [u8]>,
    block_hashes: ReadOnlyTable<u64, [u8; 32]>,
    /// The database the tables read, open while they are (dropped after them).
    _db: Database,
}

impl std::fmt::Debug for DiskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskState").finish_non_exhaustive()
    }
}

impl DiskState {
    /// Opens the database at `path` for reading.
    pub fn open(path: &Path) -> Result<Self, DiskError> {
        let err = |e: &dyn std::fmt::Display| disk_error(path, e);
        let db = Database::open(path).map_err(|e| err(&e))?;
        let tx = db.begin_read().map_err(|e| err(&e))?;
        Ok(Self {
            accounts: tx.open_table(ACCOUNTS).map_err(|e| err(&e))?,
            storage: tx.open_table(STORAGE).map_err(|e| err(&e))?,
            code: tx.open_table(CODE).map_err(|e| err(&e))?,
            block_hashes: tx.open_table(BLOCK_HASHES).map_err(|e| err(&e))?,
            _db: db,
        })
    }
}

/// A store error as a provider's.
fn read_error(error: impl std::fmt::Display) -> ProviderError {
    ProviderError(format!("state database: {error}"))
}

impl DatabaseRef for DiskState {
    type Error = ProviderError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        let Some(value) = self.accounts.get(address.0 .0).map_err(read_error)? else {
            return Ok(None);
        };
        let value = value.value();
        let code_hash = B256::from_slice(&value[40..]);
        Ok(Some(AccountInfo {
            balance: U256::from_be_slice(&value[..32]),
            nonce: u64::from_be_bytes(value[32..40].try_into().expect("eight bytes")),
            code_hash,
            ..AccountInfo::default()
        }))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        if code_hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        match self.code.get(code_hash.0).map_err(read_error)? {
            Some(code) => Ok(Bytecode::new_raw(code.value().to_vec().into())),
            None => Err(read_error(format!("no code with hash {code_hash}"))),
        }
    }

    fn storage_ref(&self, address: Address, slot: U256) -> Result<U256, Self::Error> {
        let value = self
            .storage
            .get(slot_key(address, slot))
            .map_err(read_error)?;
        Ok(value.map_or(U256::ZERO, |v| U256::from_be_bytes(v.value())))
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Self::Error> {
        match self.block_hashes.get(number).map_err(read_error)? {
            Some(hash) => Ok(B256::from(hash.value())),
            None => Err(read_error(format!("no hash of block {number}"))),
        }
    }
}

/// The database file of block `number` in the folder `dir`.
pub fn state_file(dir: &Path, number: u64) -> std::path::PathBuf {
    dir.join(format!("{number}.redb"))
}

/// What writing and reading one block's pre-state on disk cost.
#[derive(Debug)]
pub struct StoreRow {
    /// The block.
    pub block: u64,
    /// Accounts written.
    pub accounts: usize,
    /// Non-zero storage slots written.
    pub slots: usize,
    /// The file's size in bytes.
    pub bytes: u64,
    /// How long writing took (zero where an existing file was reused).
    pub write: Duration,
    /// Mean time of a read (every account, then every slot) in a freshly opened database.
    pub first_read: Duration,
    /// The same reads again.
    pub warm_read: Duration,
    /// The same reads from the state in memory.
    pub memory_read: Duration,
}

/// Writes the pre-state of the block in `dir` to its file in `out` (with `reuse`, only where
/// there is none yet: to time reads of a file the OS has not cached), then times reading
/// every account and slot of it back: from the freshly opened file, again, and from memory.
pub fn store_block(dir: &Path, out: &Path, reuse: bool) -> Result<StoreRow, String> {
    let fixture = crate::fixture::Fixture::load(dir).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let path = state_file(out, fixture.number());
    let start = Instant::now();
    if !(reuse && path.exists()) {
        write_state(&path, &fixture.provider).map_err(|e| e.to_string())?;
    }
    let write = start.elapsed();
    let reads: Vec<(Address, Option<U256>)> = fixture
        .provider
        .accounts()
        .flat_map(|(address, _, slots)| {
            let slots = slots
                .iter()
                .filter(|(_, v)| !v.is_zero())
                .map(|(s, _)| Some(*s));
            std::iter::once(None)
                .chain(slots)
                .map(|slot| (*address, slot))
        })
        .collect();
    let time_reads = |provider: &dyn Fn(Address, Option<U256>) -> Result<(), ProviderError>| {
        let start = Instant::now();
        for (address, slot) in &reads {
            provider(*address, *slot)?;
        }
        Ok::<_, ProviderError>(start.elapsed() / reads.len().max(1) as u32)
    };
    let read = |state: &dyn StateProvider, address, slot: Option<U256>| match slot {
        None => state.basic(address).map(drop),
        Some(slot) => state.storage(address, slot).map(drop),
    };
    let disk = DiskState::open(&path).map_err(|e| e.to_string())?;
    let first_read = time_reads(&|a, s| read(&disk, a, s)).map_err(|e| e.to_string())?;
    let warm_read = time_reads(&|a, s| read(&disk, a, s)).map_err(|e| e.to_string())?;
    let memory = &fixture.provider;
    let memory_read = time_reads(&|a, s| read(memory, a, s)).map_err(|e| e.to_string())?;
    let slots = reads.iter().filter(|(_, slot)| slot.is_some()).count();
    Ok(StoreRow {
        block: fixture.number(),
        accounts: reads.len() - slots,
        slots,
        bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        write,
        first_read,
        warm_read,
        memory_read,
    })
}

#[cfg(test)]
mod tests {
    use pevm_vm::{revm::bytecode::Bytecode, InMemoryAccount};

    use super::*;

    #[test]
    fn the_state_reads_back_as_written() {
        let (a, b) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xbb));
        let mut memory = InMemoryProvider::default();
        memory.insert_account(
            a,
            InMemoryAccount {
                balance: U256::from(7),
                nonce: 3,
                code: Some(Bytecode::new_raw(vec![0x60, 0x01, 0x00].into())),
                storage: [(U256::from(1), U256::from(9)), (U256::MAX, U256::from(2))].into(),
            },
        );
        memory.insert_account(
            b,
            InMemoryAccount {
                balance: U256::MAX,
                ..InMemoryAccount::default()
            },
        );
        memory.insert_block_hash(41, B256::repeat_byte(4));
        let path = std::env::temp_dir().join(format!("pevm-disk-test-{}.redb", std::process::id()));
        write_state(&path, &memory).unwrap();
        let disk = DiskState::open(&path).unwrap();
        for address in [a, b, Address::ZERO] {
            assert_eq!(
                StateProvider::basic(&disk, address).unwrap(),
                memory.basic(address).unwrap()
            );
        }
        let code_hash = memory.basic(a).unwrap().unwrap().code_hash;
        assert_eq!(
            StateProvider::code_by_hash(&disk, code_hash)
                .unwrap()
                .original_bytes(),
            memory.code_by_hash(code_hash).unwrap().original_bytes()
        );
        for slot in [U256::from(1), U256::MAX, U256::from(5)] {
            assert_eq!(
                StateProvider::storage(&disk, a, slot).unwrap(),
                memory.storage(a, slot).unwrap()
            );
        }
        assert_eq!(
            StateProvider::block_hash(&disk, 41).unwrap(),
            B256::repeat_byte(4)
        );
        assert!(StateProvider::block_hash(&disk, 40).is_err());
        drop(disk);
        std::fs::remove_file(&path).unwrap();
    }
}
