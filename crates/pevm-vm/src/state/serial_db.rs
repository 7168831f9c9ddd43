//! revm's database over a provider and the block's writes so far: what the serial executor,
//! alloy-evm's block steps and the reference read and commit to.

use alloy_primitives::{Address, B256, U256};
use revm::{
    bytecode::Bytecode,
    primitives::{AddressMap, StorageKey, StorageValue},
    state::{Account, AccountInfo},
    Database, DatabaseCommit, DatabaseRef,
};

use crate::{
    exec::access_list::AccessListBuilder,
    state::diff::{account_writes, apply_writes},
    state::provider::account_info,
    ProviderError, StateDiff, StateProvider,
};

/// revm's view of the state during serial execution: the block's writes so far over the
/// provider. Committing revm's state folds it into the writes, so alloy-evm's block executor
/// can run its system calls and balance changes on it.
pub(crate) struct SerialDb<'a, P> {
    provider: &'a P,
    /// The writes so far.
    pub(crate) diff: StateDiff,
    /// Where commits are recorded into an access list: the index of the step committing.
    pub(crate) access_list: Option<(u64, AccessListBuilder)>,
}

impl<'a, P> SerialDb<'a, P> {
    /// No writes yet over `provider`.
    pub(crate) fn new(provider: &'a P) -> Self {
        Self {
            provider,
            diff: StateDiff::new(),
            access_list: None,
        }
    }
}

impl<P> std::fmt::Debug for SerialDb<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialDb")
            .field("diff", &self.diff)
            .finish_non_exhaustive()
    }
}

impl<P: StateProvider> DatabaseCommit for SerialDb<'_, P> {
    fn commit(&mut self, changes: AddressMap<Account>) {
        if let Some((index, list)) = &mut self.access_list {
            list.record(*index, &changes);
        }
        apply_writes(&mut self.diff, &account_writes(&changes));
    }
}

impl<P: StateProvider> DatabaseRef for SerialDb<'_, P> {
    type Error = ProviderError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        match self.diff.get(&address) {
            Some(change) => change
                .info
                .as_ref()
                .map(|i| {
                    account_info(
                        self.provider,
                        i.balance,
                        i.nonce,
                        i.code_hash,
                        i.code.clone(),
                    )
                })
                .transpose(),
            None => self
                .provider
                .basic(address)?
                .map(|a| account_info(self.provider, a.balance, a.nonce, a.code_hash, None))
                .transpose(),
        }
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        self.provider.code_by_hash(code_hash)
    }

    fn storage_ref(
        &self,
        address: Address,
        index: StorageKey,
    ) -> Result<StorageValue, Self::Error> {
        if let Some(change) = self.diff.get(&address) {
            if let Some(value) = change.storage.get(&index) {
                return Ok(*value);
            }
            if change.storage_cleared {
                return Ok(U256::ZERO);
            }
        }
        self.provider.storage(address, index)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Self::Error> {
        self.provider.block_hash(number)
    }
}

impl<P: StateProvider> Database for SerialDb<'_, P> {
    type Error = ProviderError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        self.basic_ref(address)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        self.code_by_hash_ref(code_hash)
    }

    fn storage(
        &mut self,
        address: Address,
        index: StorageKey,
    ) -> Result<StorageValue, Self::Error> {
        self.storage_ref(address, index)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, Self::Error> {
        self.block_hash_ref(number)
    }
}
