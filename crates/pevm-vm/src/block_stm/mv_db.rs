//! revm's view of the state for one transaction incarnation in parallel execution: reads go
//! through the multi-version memory (earlier transactions' writes), fall back to the state
//! provider, and are all recorded for validation.

use std::fmt;

use smallvec::SmallVec;

use alloy_primitives::{Address, B256, U256};
use pevm_core::{MvKey, MvMemory, MvRead, ReadOrigin, ReadSet, TxIdx};
use revm::{
    bytecode::Bytecode,
    database_interface::DBErrorMarker,
    primitives::{StorageKey, StorageValue},
    state::AccountInfo,
    Database,
};

use crate::{
    chain::block::BlockFacts,
    lazy::{account_paid, can_credit, LazyCredits},
    state::{code::WorkerCodes, diff::AccountState},
    strategy::hints::Hints,
    ExecutionError, ProviderError, StateProvider,
};

/// A place in the EVM state that transactions read and write.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Location {
    /// An account's balance, nonce and code, with the one transaction expected to write it
    /// ([`Hints::owner`]), which every reader and writer of the block names alike.
    Basic(Address, Option<TxIdx>),
    /// One storage slot.
    Storage(Address, U256),
    /// The account's storage was wiped (destroyed or created) by the writing transaction.
    StorageReset(Address),
    /// The fee transaction `TxIdx` paid to the beneficiary without reading its account.
    LazyFee(TxIdx),
    /// The value transaction `TxIdx` credited to the address without reading its account.
    LazyCredit(Address, TxIdx),
}

impl MvKey for Location {
    /// A lazy fee or credit is written only by the transaction that owes it; an account,
    /// most likely, only by the one transaction [`Hints::owner`] names.
    fn owner(&self) -> Option<TxIdx> {
        match self {
            Self::LazyFee(tx) | Self::LazyCredit(_, tx) => Some(*tx),
            Self::Basic(_, owner) => *owner,
            Self::Storage(..) | Self::StorageReset(_) => None,
        }
    }
}

/// The value a transaction wrote to a [`Location`].
#[derive(Clone, Debug)]
pub(crate) enum LocationValue {
    /// An account, `None` when the write removed it.
    Basic(Option<AccountState>),
    /// A storage value.
    Storage(U256),
    /// A storage wipe.
    StorageReset,
    /// A fee owed to the beneficiary, or a value owed to a lazily credited recipient.
    Credit(U256),
}

/// The multi-version memory of an EVM block.
pub(crate) type EvmMemory = MvMemory<Location, LocationValue>;

/// Why a read could not be served.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// An earlier transaction's write is being re-done: wait for it.
    Blocked(TxIdx),
    /// The state provider failed.
    Provider(ProviderError),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blocked(tx) => write!(f, "blocked on tx {tx}"),
            Self::Provider(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReadError {}
impl DBErrorMarker for ReadError {}

impl From<ReadError> for ExecutionError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Provider(error) => Self::Provider { index: 0, error },
            ReadError::Blocked(tx) => Self::Evm {
                index: 0,
                message: format!("blocked on tx {tx}"),
            },
        }
    }
}

/// The database of one worker for a block: each incarnation it runs ([`MvDb::start`]) reads
/// through it as transaction `tx_idx`.
pub(crate) struct MvDb<'a, P> {
    memory: &'a EvmMemory,
    provider: &'a P,
    facts: BlockFacts,
    lazy: &'a LazyCredits,
    /// The block's hints: who owns each account's location.
    hints: &'a Hints,
    tx_idx: TxIdx,
    /// The recipient this incarnation may credit lazily, and, once it has been shown its
    /// account without the credits owed to it, that account.
    lazy_recipient: Option<(Address, Option<Option<AccountState>>)>,
    /// Every read, with the version it saw.
    reads: ReadSet<Location>,
    /// Whether an earlier transaction wrote each account read so far: only then can its
    /// storage have been wiped within the block.
    written_accounts: SmallVec<[(Address, bool); 4]>,
    /// The worker's own copies of the codes it loaded.
    codes: WorkerCodes,
}

impl<'a, P: StateProvider> MvDb<'a, P> {
    /// A worker's database over `memory` and `provider`, for the block of `facts`, `lazy` and
    /// `hints`.
    pub(crate) fn new(
        memory: &'a EvmMemory,
        provider: &'a P,
        facts: BlockFacts,
        lazy: &'a LazyCredits,
        hints: &'a Hints,
    ) -> Self {
        Self {
            memory,
            provider,
            facts,
            lazy,
            hints,
            tx_idx: 0,
            lazy_recipient: None,
            reads: Vec::new(),
            written_accounts: SmallVec::new(),
            codes: WorkerCodes::default(),
        }
    }

    /// Prepares for an incarnation of transaction `tx_idx`.
    pub(crate) fn start(&mut self, tx_idx: TxIdx) {
        self.tx_idx = tx_idx;
        self.lazy_recipient = self.lazy.recipient(tx_idx).map(|to| (to, None));
        self.reads.clear();
        self.written_accounts.clear();
    }

    /// The reads of the incarnation that just ran, in a vector of their exact size (the
    /// worker's buffer is kept for the next incarnation).
    pub(crate) fn take_reads(&mut self) -> ReadSet<Location> {
        self.reads.clone()
    }

    /// Reads `location` from the memory, recording what was seen.
    fn read(&mut self, location: Location) -> Result<Option<LocationValue>, ReadError> {
        match self.memory.read(&location, self.tx_idx) {
            MvRead::Value(version, value) => {
                self.reads.push((location, ReadOrigin::Tx(version)));
                Ok(Some(value))
            }
            MvRead::Base => {
                self.reads.push((location, ReadOrigin::Base));
                Ok(None)
            }
            MvRead::Estimate(blocking) => Err(ReadError::Blocked(blocking)),
        }
    }

    /// The recipient credited lazily by the incarnation that just ran, with the account it
    /// was shown.
    pub(crate) fn lazy_credit(&self) -> Option<(Address, Option<&AccountState>)> {
        match &self.lazy_recipient {
            Some((to, Some(base))) => Some((*to, base.as_ref())),
            _ => None,
        }
    }

    /// The transaction whose write the latest read saw, `None` for the base state.
    fn last_writer(&self) -> Option<TxIdx> {
        match self.reads.last() {
            Some((_, ReadOrigin::Tx(version))) => Some(version.tx_idx),
            _ => None,
        }
    }

    /// The transaction index of the last storage wipe of `address` before this one, if any.
    fn last_reset(&mut self, address: Address) -> Result<Option<TxIdx>, ReadError> {
        self.read(Location::StorageReset(address))?;
        Ok(self.last_writer())
    }

    /// `account` with the fee or credit that `location` holds added (nothing when its
    /// transaction owed nothing there), as revm's payment would add it.
    fn add_owed(
        &mut self,
        account: Option<AccountState>,
        location: Location,
    ) -> Result<Option<AccountState>, ReadError> {
        Ok(match self.read(location)? {
            Some(LocationValue::Credit(value)) => account_paid(account, value, self.facts.eip161),
            _ => account,
        })
    }

    /// The account at `address` as the transactions before this one left it, `None` if absent.
    fn account(&mut self, address: Address) -> Result<Option<AccountState>, ReadError> {
        let slot = self.hints.slot(self.tx_idx, &address);
        let written = self.read(Location::Basic(address, self.hints.owner(slot)))?;
        let writer = self.last_writer();
        self.written_accounts.push((address, writer.is_some()));
        let mut account = match written {
            Some(LocationValue::Basic(account)) => account,
            _ => self
                .provider
                .basic(address)
                .map_err(ReadError::Provider)?
                .map(AccountState::from),
        };
        if address == self.facts.beneficiary {
            // The fees of the transactions since the account's last full write are owed to it.
            for tx in writer.map_or(0, |w| w + 1)..self.tx_idx {
                account = self.add_owed(account, Location::LazyFee(tx))?;
            }
            // Fee reads above make `last_writer` meaningless for this account's storage.
            self.written_accounts.push((address, true));
            return Ok(account);
        }
        if let Some((to, shown @ None)) = &mut self.lazy_recipient {
            if *to == address && can_credit(account.as_ref(), self.facts.empty_costs) {
                // The transfer only adds to this balance: show the account without the
                // credits owed to it, and record the increase as one more credit.
                *shown = Some(account.clone());
                return Ok(account);
            }
        }
        let lazy = self.lazy;
        let creditors = lazy.creditors_between(slot, writer, self.tx_idx);
        for &tx in creditors {
            account = self.add_owed(account, Location::LazyCredit(address, tx))?;
        }
        if !creditors.is_empty() {
            self.written_accounts.push((address, true));
        }
        Ok(account)
    }
}

impl<P: StateProvider> Database for MvDb<'_, P> {
    type Error = ReadError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        let Some(account) = self.account(address)? else {
            return Ok(None);
        };
        let code = self
            .codes
            .get(self.provider, account.code_hash, account.code)
            .map_err(ReadError::Provider)?;
        Ok(Some(AccountInfo::new(
            account.balance,
            account.nonce,
            account.code_hash,
            code,
        )))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        self.codes
            .get(self.provider, code_hash, None)
            .map_err(ReadError::Provider)
    }

    fn storage(
        &mut self,
        address: Address,
        index: StorageKey,
    ) -> Result<StorageValue, Self::Error> {
        let slot = self.read(Location::Storage(address, index))?;
        let slot_writer = self.last_writer();
        // revm loads an account before its storage; if no earlier transaction wrote the
        // account, none wiped its storage either.
        let written = self
            .written_accounts
            .iter()
            .rev()
            .find(|(a, _)| *a == address);
        let reset = if written.is_none_or(|(_, written)| *written) {
            self.last_reset(address)?
        } else {
            None
        };
        match (slot, reset) {
            (_, Some(reset)) if slot_writer.is_none_or(|w| w < reset) => Ok(U256::ZERO),
            (Some(LocationValue::Storage(value)), _) => Ok(value),
            _ => self
                .provider
                .storage(address, index)
                .map_err(ReadError::Provider),
        }
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, Self::Error> {
        self.provider
            .block_hash(number)
            .map_err(ReadError::Provider)
    }
}
