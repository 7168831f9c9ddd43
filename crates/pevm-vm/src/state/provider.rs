//! The state a block executes on: the [`StateProvider`] trait, which every revm
//! `DatabaseRef + Sync` implements (reth's `StateProviderDatabase`, revm's `CacheDB`,
//! `AlloyDB`), and [`InMemoryProvider`], a provider held entirely in memory for fixtures.

use std::{collections::HashMap, fmt};

use alloy_primitives::{Address, B256, U256};
use revm::{bytecode::Bytecode, primitives::KECCAK_EMPTY, state::AccountInfo, DatabaseRef};

use crate::{state::code::empty_code, AccountState, StateDiff};

/// An account's fields as a client's state database stores them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountBasic {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Keccak-256 of the account's code, [`KECCAK_EMPTY`] when it has none.
    pub code_hash: B256,
}

impl AccountBasic {
    /// An account with a balance and a nonce, and no code.
    pub const fn new(balance: U256, nonce: u64) -> Self {
        Self {
            balance,
            nonce,
            code_hash: KECCAK_EMPTY,
        }
    }
}

/// A failed read from a [`StateProvider`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderError(pub String);

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProviderError {}

/// Read access to the state before a block: what a client's state database offers.
///
/// A client passes its revm database as it is: every `DatabaseRef + Sync` is a
/// `StateProvider`, its errors becoming [`ProviderError`]s that name the transaction that read.
/// Every method may fail; the executor stops the block and returns the error.
/// Implementations are shared by all worker threads, hence `Sync`.
pub trait StateProvider: Sync {
    /// The account at `address`, `None` when it does not exist.
    fn basic(&self, address: Address) -> Result<Option<AccountBasic>, ProviderError>;
    /// The code whose keccak-256 is `code_hash`.
    fn code_by_hash(&self, code_hash: B256) -> Result<Bytecode, ProviderError>;
    /// The value of storage slot `slot` of `address` (zero when unset).
    fn storage(&self, address: Address, slot: U256) -> Result<U256, ProviderError>;
    /// The hash of block `number`, for the `BLOCKHASH` opcode.
    fn block_hash(&self, number: u64) -> Result<B256, ProviderError>;
}

/// A revm database's error as a provider's: its message.
fn provider_error(error: impl fmt::Display) -> ProviderError {
    ProviderError(error.to_string())
}

impl<D: DatabaseRef + Sync> StateProvider for D {
    fn basic(&self, address: Address) -> Result<Option<AccountBasic>, ProviderError> {
        let info = self.basic_ref(address).map_err(provider_error)?;
        Ok(info.map(|info| AccountBasic {
            balance: info.balance,
            nonce: info.nonce,
            code_hash: info.code_hash,
        }))
    }
    fn code_by_hash(&self, code_hash: B256) -> Result<Bytecode, ProviderError> {
        if code_hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        self.code_by_hash_ref(code_hash).map_err(provider_error)
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, ProviderError> {
        self.storage_ref(address, slot).map_err(provider_error)
    }
    fn block_hash(&self, number: u64) -> Result<B256, ProviderError> {
        self.block_hash_ref(number).map_err(provider_error)
    }
}

impl From<AccountBasic> for AccountState {
    /// The account as the state provider stores it (its code stays with the provider).
    fn from(basic: AccountBasic) -> Self {
        Self {
            balance: basic.balance,
            nonce: basic.nonce,
            code_hash: basic.code_hash,
            code: None,
        }
    }
}

/// An account of an [`InMemoryProvider`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InMemoryAccount {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Runtime code, `None` for an account without code.
    pub code: Option<Bytecode>,
    /// Storage slots; unlisted slots read as zero.
    pub storage: HashMap<U256, U256>,
}

/// A [`StateProvider`] held in memory: accounts, their code and storage, and block hashes.
#[derive(Clone, Debug, Default)]
pub struct InMemoryProvider {
    accounts: HashMap<Address, (AccountBasic, HashMap<U256, U256>)>,
    codes: HashMap<B256, Bytecode>,
    block_hashes: HashMap<u64, B256>,
}

impl InMemoryProvider {
    /// Adds (or replaces) an account.
    pub fn insert_account(&mut self, address: Address, account: InMemoryAccount) {
        let code_hash = match account.code {
            Some(code) if !code.is_empty() => {
                let hash = code.hash_slow();
                self.codes.insert(hash, code);
                hash
            }
            _ => KECCAK_EMPTY,
        };
        let basic = AccountBasic {
            balance: account.balance,
            nonce: account.nonce,
            code_hash,
        };
        self.accounts.insert(address, (basic, account.storage));
    }

    /// Records the hash of block `number`.
    pub fn insert_block_hash(&mut self, number: u64, hash: B256) {
        self.block_hashes.insert(number, hash);
    }

    /// Every block hash held, in no particular order.
    pub fn block_hashes(&self) -> impl Iterator<Item = (u64, B256)> + '_ {
        self.block_hashes
            .iter()
            .map(|(number, hash)| (*number, *hash))
    }

    /// Whether `address` exists in this state.
    pub fn contains(&self, address: &Address) -> bool {
        self.accounts.contains_key(address)
    }

    /// Every account: address, basics and storage (zero-valued slots may be listed).
    pub fn accounts(
        &self,
    ) -> impl Iterator<Item = (&Address, &AccountBasic, &HashMap<U256, U256>)> {
        self.accounts
            .iter()
            .map(|(address, (basic, storage))| (address, basic, storage))
    }

    /// Applies a block's state diff, so that the next block executes on the state after it:
    /// removed accounts are dropped, wiped storage is cleared before the diff's slots are
    /// set (zero-valued slots are dropped), and new code is registered under its hash.
    pub fn commit(&mut self, diff: &StateDiff) {
        for (address, change) in diff {
            let Some(info) = &change.info else {
                self.accounts.remove(address);
                continue;
            };
            if let Some(code) = info
                .code
                .as_ref()
                .filter(|_| info.code_hash != KECCAK_EMPTY)
            {
                self.codes
                    .entry(info.code_hash)
                    .or_insert_with(|| code.clone());
            }
            let (basic, storage) = self
                .accounts
                .entry(*address)
                .or_insert_with(|| (AccountBasic::new(U256::ZERO, 0), HashMap::new()));
            *basic = AccountBasic {
                balance: info.balance,
                nonce: info.nonce,
                code_hash: info.code_hash,
            };
            if change.storage_cleared {
                storage.clear();
            }
            for (slot, value) in &change.storage {
                if value.is_zero() {
                    storage.remove(slot);
                } else {
                    storage.insert(*slot, *value);
                }
            }
        }
    }
}

impl StateProvider for InMemoryProvider {
    fn basic(&self, address: Address) -> Result<Option<AccountBasic>, ProviderError> {
        Ok(self.accounts.get(&address).map(|(basic, _)| *basic))
    }

    fn code_by_hash(&self, code_hash: B256) -> Result<Bytecode, ProviderError> {
        if code_hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        self.codes
            .get(&code_hash)
            .cloned()
            .ok_or_else(|| ProviderError(format!("no code with hash {code_hash}")))
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, ProviderError> {
        Ok(self
            .accounts
            .get(&address)
            .and_then(|(_, storage)| storage.get(&slot).copied())
            .unwrap_or_default())
    }

    fn block_hash(&self, number: u64) -> Result<B256, ProviderError> {
        self.block_hashes
            .get(&number)
            .copied()
            .ok_or_else(|| ProviderError(format!("hash of block {number} is not in the state")))
    }
}

/// revm's account info for `basic`, with its code loaded from `code` or the provider.
pub(crate) fn account_info<P: StateProvider>(
    provider: &P,
    balance: U256,
    nonce: u64,
    code_hash: B256,
    code: Option<Bytecode>,
) -> Result<AccountInfo, ProviderError> {
    let code = match code {
        Some(code) => code,
        None if code_hash == KECCAK_EMPTY => empty_code(),
        None => provider.code_by_hash(code_hash)?,
    };
    Ok(AccountInfo::new(balance, nonce, code_hash, code))
}
