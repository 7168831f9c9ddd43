//! State providers that read from the node while a block executes, recording what it reads:
//! block hashes for `BLOCKHASH`, and (when the node cannot trace) the accounts and slots.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, PoisonError},
};

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use pevm_vm::{
    revm::{bytecode::Bytecode, primitives::KECCAK_EMPTY},
    AccountBasic, InMemoryProvider, ProviderError, StateProvider,
};
use serde_json::{json, Value};

use super::{
    rpc::{RpcClient, RpcError},
    state::{decode, quantity, word, PreAccount, PreState},
};

/// The node, the block hashes read through it, and the first failed call.
#[derive(Debug)]
pub(super) struct Remote<'a> {
    client: &'a RpcClient,
    hashes: Mutex<BTreeMap<u64, B256>>,
    error: Mutex<Option<RpcError>>,
}

impl<'a> Remote<'a> {
    /// Reads through `client`.
    pub(super) fn new(client: &'a RpcClient) -> Self {
        Self {
            client,
            hashes: Mutex::default(),
            error: Mutex::default(),
        }
    }

    /// The block hashes read so far.
    pub(super) fn hashes(&self) -> BTreeMap<u64, B256> {
        self.hashes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The first call that failed, which is why execution stopped.
    pub(super) fn take_error(&self) -> Option<RpcError> {
        self.error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Calls `method`, keeping the first failure for [`Self::take_error`].
    fn call(&self, method: &str, params: Value) -> Result<Value, ProviderError> {
        self.client.call(method, params).map_err(|e| self.failed(e))
    }

    fn failed(&self, error: RpcError) -> ProviderError {
        let message = error.to_string();
        self.error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(error);
        ProviderError(message)
    }

    /// The hash of block `number`, from the node (once).
    fn block_hash(&self, number: u64) -> Result<B256, ProviderError> {
        if let Some(hash) = self.hashes().get(&number) {
            return Ok(*hash);
        }
        let block = self.call("eth_getBlockByNumber", json!([hex(number), false]))?;
        let hash = block
            .get("hash")
            .ok_or_else(|| format!("block {number} not found"))
            .and_then(|h| decode::<B256>(h, "block hash"))
            .map_err(ProviderError)?;
        self.hashes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(number, hash);
        Ok(hash)
    }
}

/// `n` as a JSON-RPC hex quantity.
pub(super) fn hex(n: u64) -> String {
    format!("{n:#x}")
}

/// A known state (a traced pre-state) whose block hashes come from the node.
pub(super) struct TracedState<'a> {
    /// The state.
    pub state: InMemoryProvider,
    /// Where block hashes come from.
    pub remote: &'a Remote<'a>,
}

impl StateProvider for TracedState<'_> {
    fn basic(&self, address: Address) -> Result<Option<AccountBasic>, ProviderError> {
        self.state.basic(address)
    }
    fn code_by_hash(&self, code_hash: B256) -> Result<Bytecode, ProviderError> {
        self.state.code_by_hash(code_hash)
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, ProviderError> {
        self.state.storage(address, slot)
    }
    fn block_hash(&self, number: u64) -> Result<B256, ProviderError> {
        self.remote.block_hash(number)
    }
}

/// The state after block `tag` read from the node account by account and slot by slot
/// (`eth_getBalance`, `eth_getTransactionCount`, `eth_getCode`, `eth_getStorageAt`), each read
/// once and recorded.
pub(super) struct RpcState<'a> {
    remote: &'a Remote<'a>,
    tag: String,
    accounts: Mutex<BTreeMap<Address, PreAccount>>,
    codes: Mutex<HashMap<B256, Bytecode>>,
    storage: Mutex<BTreeMap<(Address, U256), U256>>,
}

impl<'a> RpcState<'a> {
    /// Reads the state after block `parent`.
    pub(super) fn new(remote: &'a Remote<'a>, parent: u64) -> Self {
        Self {
            remote,
            tag: hex(parent),
            accounts: Mutex::default(),
            codes: Mutex::default(),
            storage: Mutex::default(),
        }
    }

    /// What was read: the accounts that exist, with the slots read from them.
    pub(super) fn into_pre_state(self) -> PreState {
        let mut accounts = self
            .accounts
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let storage = self
            .storage
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        for ((address, slot), value) in storage {
            if let Some(account) = accounts.get_mut(&address) {
                account.storage.insert(slot, value);
            }
        }
        PreState::from_accounts(accounts)
    }

    fn fetch_account(&self, address: Address) -> Result<PreAccount, ProviderError> {
        let address_hex = format!("{address:#x}");
        let values = self
            .remote
            .client
            .batch(&[
                ("eth_getBalance", json!([address_hex, self.tag])),
                ("eth_getTransactionCount", json!([address_hex, self.tag])),
                ("eth_getCode", json!([address_hex, self.tag])),
            ])
            .map_err(|e| self.remote.failed(e))?;
        let invalid = |e: String| ProviderError(format!("account {address_hex}: {e}"));
        Ok(PreAccount {
            balance: decode(&values[0], "balance").map_err(invalid)?,
            nonce: quantity(&values[1]).map_err(invalid)?,
            code: decode::<Bytes>(&values[2], "code").map_err(invalid)?,
            storage: BTreeMap::new(),
        })
    }
}

impl StateProvider for RpcState<'_> {
    fn basic(&self, address: Address) -> Result<Option<AccountBasic>, ProviderError> {
        let cached = self
            .accounts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&address)
            .cloned();
        let account = match cached {
            Some(account) => account,
            None => {
                let account = self.fetch_account(address)?;
                self.accounts
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(address, account.clone());
                account
            }
        };
        if account.balance.is_zero() && account.nonce == 0 && account.code.is_empty() {
            return Ok(None);
        }
        let code_hash = if account.code.is_empty() {
            KECCAK_EMPTY
        } else {
            let hash = keccak256(&account.code);
            self.codes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(hash)
                .or_insert_with(|| Bytecode::new_raw(account.code.clone()));
            hash
        };
        Ok(Some(AccountBasic {
            balance: account.balance,
            nonce: account.nonce,
            code_hash,
        }))
    }

    fn code_by_hash(&self, code_hash: B256) -> Result<Bytecode, ProviderError> {
        if code_hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        self.codes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&code_hash)
            .cloned()
            .ok_or_else(|| ProviderError(format!("no code with hash {code_hash} was read")))
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, ProviderError> {
        let key = (address, slot);
        if let Some(value) = self
            .storage
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(*value);
        }
        let value = self.remote.call(
            "eth_getStorageAt",
            json!([format!("{address:#x}"), word(slot), self.tag]),
        )?;
        let value: U256 = decode(&value, "storage value").map_err(ProviderError)?;
        self.storage
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, value);
        Ok(value)
    }

    fn block_hash(&self, number: u64) -> Result<B256, ProviderError> {
        self.remote.block_hash(number)
    }
}
