//! [`OverlayProvider`]: a state diff read over a provider, the state a later step of the same
//! block sees.

use alloy_primitives::{Address, B256, U256};
use revm::bytecode::Bytecode;

use crate::{AccountBasic, ProviderError, StateDiff, StateProvider};

/// The state of `base` with `diff` applied on top, without copying either.
#[derive(Clone, Copy, Debug)]
pub struct OverlayProvider<'a, P> {
    base: &'a P,
    diff: &'a StateDiff,
}

impl<'a, P: StateProvider> OverlayProvider<'a, P> {
    /// `diff` over `base`.
    pub const fn new(base: &'a P, diff: &'a StateDiff) -> Self {
        Self { base, diff }
    }
}

impl<P: StateProvider> StateProvider for OverlayProvider<'_, P> {
    fn basic(&self, address: Address) -> Result<Option<AccountBasic>, ProviderError> {
        match self.diff.get(&address) {
            Some(change) => Ok(change.info.as_ref().map(|info| AccountBasic {
                balance: info.balance,
                nonce: info.nonce,
                code_hash: info.code_hash,
            })),
            None => self.base.basic(address),
        }
    }

    fn code_by_hash(&self, code_hash: B256) -> Result<Bytecode, ProviderError> {
        let in_diff = self
            .diff
            .values()
            .filter_map(|change| change.info.as_ref())
            .find(|info| info.code_hash == code_hash)
            .and_then(|info| info.code.clone());
        match in_diff {
            Some(code) => Ok(code),
            None => self.base.code_by_hash(code_hash),
        }
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, ProviderError> {
        if let Some(change) = self.diff.get(&address) {
            if let Some(value) = change.storage.get(&slot) {
                return Ok(*value);
            }
            if change.storage_cleared || change.info.is_none() {
                return Ok(U256::ZERO);
            }
        }
        self.base.storage(address, slot)
    }

    fn block_hash(&self, number: u64) -> Result<B256, ProviderError> {
        self.base.block_hash(number)
    }
}
