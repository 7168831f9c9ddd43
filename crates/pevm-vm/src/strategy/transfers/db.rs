//! revm's database for one transfer: the group's writes over the provider, the recipient
//! shown without the credits owed to it, and a stop when an account turns out to have code.

use std::fmt;

use alloy_primitives::{map::AddressMap, Address, B256};
use revm::{
    bytecode::Bytecode,
    database_interface::DBErrorMarker,
    primitives::{StorageKey, StorageValue, KECCAK_EMPTY},
    state::AccountInfo,
    Database,
};

use crate::{
    lazy::can_credit, state::diff::AccountState, state::provider::account_info, AccountChange,
    ExecutionError, ProviderError, StateProvider,
};

/// The recipient of the transaction being run.
pub(super) struct Recipient {
    pub(super) address: Address,
    /// Whether it is credited as a delta.
    pub(super) credit: bool,
    /// The account it was shown (without other transactions' credits), once read.
    pub(super) shown: Option<Option<AccountState>>,
}

/// Why a read of a transfer failed.
#[derive(Debug)]
pub(super) enum TransferDbError {
    /// The recipient has code, or is too rich to take credits.
    NotATransfer,
    /// The state provider failed.
    Provider(ProviderError),
}

impl fmt::Display for TransferDbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotATransfer => f.write_str("not a plain transfer"),
            Self::Provider(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for TransferDbError {}
impl DBErrorMarker for TransferDbError {}

impl From<TransferDbError> for ExecutionError {
    fn from(error: TransferDbError) -> Self {
        match error {
            TransferDbError::Provider(error) => error.into(),
            TransferDbError::NotATransfer => Self::Evm {
                index: 0,
                message: "not a plain transfer".into(),
            },
        }
    }
}

/// revm's view of the state for a transfer: the group's earlier writes over the provider.
pub(super) struct TransferDb<'a, P> {
    pub(super) provider: &'a P,
    pub(super) recipient: Option<Recipient>,
    /// Whether a transfer to an empty account costs more (see [`can_credit`]).
    pub(super) empty_costs: bool,
    /// The changes of the accounts the worker's transactions wrote since they were last
    /// merged (only the current group's own accounts are ever read).
    pub(super) changes: AddressMap<AccountChange>,
}

impl<P: StateProvider> Database for TransferDb<'_, P> {
    type Error = TransferDbError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        let account = match self.changes.get(&address) {
            Some(change) => change.info.clone(),
            None => self
                .provider
                .basic(address)
                .map_err(TransferDbError::Provider)?
                .map(AccountState::from),
        };
        if let Some(recipient) = self.recipient.as_mut().filter(|r| r.address == address) {
            let codeless = account.as_ref().is_none_or(|a| a.code_hash == KECCAK_EMPTY);
            if !codeless || (recipient.credit && !can_credit(account.as_ref(), self.empty_costs)) {
                return Err(TransferDbError::NotATransfer);
            }
            recipient.shown = Some(account.clone());
        }
        account
            .map(|a| account_info(self.provider, a.balance, a.nonce, a.code_hash, a.code))
            .transpose()
            .map_err(TransferDbError::Provider)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        self.provider
            .code_by_hash(code_hash)
            .map_err(TransferDbError::Provider)
    }

    /// A transfer runs no code: it reads no storage.
    fn storage(&mut self, _: Address, _: StorageKey) -> Result<StorageValue, Self::Error> {
        Err(TransferDbError::NotATransfer)
    }

    /// A transfer runs no code: it reads no block hash.
    fn block_hash(&mut self, _: u64) -> Result<B256, Self::Error> {
        Err(TransferDbError::NotATransfer)
    }
}
