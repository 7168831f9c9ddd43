//! Settling what was owed: the one rule for adding a lazy fee or credit to an account (as
//! revm's fee payment writes it), the sums a block owes while it runs, and their payment into
//! the block's state diff or into a transaction's revm state.

use std::collections::btree_map;

use alloy_primitives::{map::AddressMap, Address, U256};
use pevm_core::TxIdx;
use revm::{
    primitives::KECCAK_EMPTY,
    state::{Account, AccountInfo, EvmState, TransactionId},
};
use smallvec::SmallVec;

use crate::{
    state::diff::{apply_write, AccountState, AccountWrite},
    ExecutionError, StateDiff, StateProvider,
};

/// What paying `value` into the account `prev` (`None` if absent) writes, as revm's
/// post-execution reward and journal finalisation would write it. `None` when nothing is
/// written: a zero value to an existing account that stays (non-empty, or empty before
/// EIP-161).
pub(crate) fn payment_write(
    prev: Option<&AccountState>,
    value: U256,
    eip161: bool,
) -> Option<AccountWrite> {
    let mut info = prev.cloned().unwrap_or(AccountState {
        balance: U256::ZERO,
        nonce: 0,
        code_hash: KECCAK_EMPTY,
        code: None,
    });
    info.balance = info.balance.saturating_add(value);
    let empty = info.balance.is_zero() && info.nonce == 0 && info.code_hash == KECCAK_EMPTY;
    let updated = |created| AccountWrite::Updated {
        info: info.clone(),
        info_changed: true,
        code_changed: false,
        created,
        storage: Vec::new(),
    };
    match (empty, eip161, prev.is_some()) {
        // A zero value leaves a non-empty account unchanged: nothing to write.
        (false, _, _) => (!value.is_zero()).then(|| updated(false)),
        (true, true, _) => Some(AccountWrite::Destroyed),
        // Before EIP-161 a touched empty account is kept, and a new one materialised.
        (true, false, true) => None,
        (true, false, false) => Some(updated(true)),
    }
}

/// The account `prev` with `value` paid into it (see [`payment_write`]).
pub(crate) fn account_paid(
    prev: Option<AccountState>,
    value: U256,
    eip161: bool,
) -> Option<AccountState> {
    match payment_write(prev.as_ref(), value, eip161) {
        None => prev,
        Some(AccountWrite::Destroyed) => None,
        Some(AccountWrite::Updated { info, .. }) => Some(info),
    }
}

/// How many lazy payments a block made (reported in [`crate::BlockStats`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LazyCounts {
    /// Transactions that owed their fee.
    pub(crate) fees: u64,
    /// Transactions that credited their recipient lazily.
    pub(crate) credits: u64,
    /// Accounts read only to be paid.
    pub(crate) accounts: u64,
}

/// Credits owed to one account by the transactions that did not read it.
#[derive(Clone, Copy, Debug)]
struct Owed {
    /// Their sum: each is non-zero and the sum cannot overflow (see [`crate::lazy`]), so paying
    /// it at once is paying them one by one.
    value: U256,
    /// The first transaction that owed (a failed read of the account is its).
    first: TxIdx,
}

/// The fees owed to the beneficiary by the transactions that did not touch it.
#[derive(Clone, Copy, Debug, Default)]
struct Fees {
    /// Their sum.
    sum: U256,
    /// The first transaction that owed a fee (a failed read of the beneficiary is its).
    first: Option<TxIdx>,
    /// The first transactions that owed a zero fee, and a non-zero one.
    first_zero: Option<TxIdx>,
    first_non_zero: Option<TxIdx>,
}

impl Fees {
    /// Adds the fee of transaction `index`.
    fn add(&mut self, index: TxIdx, fee: U256) {
        self.sum = self.sum.saturating_add(fee);
        let first = |slot: &mut Option<TxIdx>| *slot = Some(slot.map_or(index, |f| f.min(index)));
        first(&mut self.first);
        first(if fee.is_zero() {
            &mut self.first_zero
        } else {
            &mut self.first_non_zero
        });
    }

    /// Adds the fees of `other`.
    fn absorb(&mut self, other: &Self) {
        self.sum = self.sum.saturating_add(other.sum);
        let min = |a: Option<TxIdx>, b: Option<TxIdx>| a.into_iter().chain(b).min();
        self.first = min(self.first, other.first);
        self.first_zero = min(self.first_zero, other.first_zero);
        self.first_non_zero = min(self.first_non_zero, other.first_non_zero);
    }

    /// The payments that settle the fees, in order. Only a zero fee paid before any non-zero
    /// one can touch an empty account (later, its balance is not zero); the non-zero fees
    /// add up.
    fn payments(&self) -> impl Iterator<Item = U256> {
        let zero_first = match (self.first_zero, self.first_non_zero) {
            (Some(zero), Some(non_zero)) => zero < non_zero,
            (zero, _) => zero.is_some(),
        };
        let sum = Some(self.sum).filter(|sum| !sum.is_zero());
        zero_first.then_some(U256::ZERO).into_iter().chain(sum)
    }
}

/// What a block (or one worker's part of it) owes lazily: fees to the beneficiary
/// and credits to recipients, since each account's last write.
#[derive(Debug, Default)]
pub(crate) struct Owing {
    fees: Fees,
    credits: AddressMap<Owed>,
    /// How many fees and credits were owed in all, paid by a later write or not.
    counts: (u64, u64),
}

impl Owing {
    /// How many fees and how many credits were owed in all (some of them later read and
    /// written by a transaction).
    pub(crate) fn counts(&self) -> (u64, u64) {
        self.counts
    }

    /// Transaction `index` owes `fee` to the beneficiary.
    pub(crate) fn fee(&mut self, index: TxIdx, fee: U256) {
        self.fees.add(index, fee);
        self.counts.0 += 1;
    }

    /// Transaction `index` owes `value` to `address`.
    pub(crate) fn credit(&mut self, index: TxIdx, address: Address, value: U256) {
        self.owe(address, index, value);
        self.counts.1 += 1;
    }

    /// Adds `value`, owed to `address` since transaction `first`.
    fn owe(&mut self, address: Address, first: TxIdx, value: U256) {
        let owed = self.credits.entry(address).or_insert(Owed {
            value: U256::ZERO,
            first,
        });
        owed.value += value;
        owed.first = owed.first.min(first);
    }

    /// Pays the fees owed so far into `state`, as [`Self::settle`] does; call it before a
    /// write of the `beneficiary`, which read them and so includes them, but whose change must
    /// follow theirs (a zero fee may first have touched an empty account). Returns whether the
    /// beneficiary's account was read to pay them.
    pub(crate) fn settle_fees<P: StateProvider>(
        &mut self,
        provider: &P,
        beneficiary: Address,
        state: &mut StateDiff,
        eip161: bool,
    ) -> Result<bool, (TxIdx, ExecutionError)> {
        let fees = std::mem::take(&mut self.fees);
        match fees.first {
            Some(first) => pay(
                provider,
                beneficiary,
                first,
                fees.payments(),
                None,
                state,
                eip161,
            ),
            None => Ok(false),
        }
    }

    /// Adds what `other` owes.
    pub(crate) fn absorb(&mut self, other: Self) {
        self.fees.absorb(&other.fees);
        for (address, owed) in other.credits {
            self.owe(address, owed.first, owed.value);
        }
        self.counts.0 += other.counts.0;
        self.counts.1 += other.counts.1;
    }

    /// Pays everything owed into `state`, each account as `state` (or else `provider`) has it,
    /// and returns how many accounts were read to be paid; a failed read is charged to the
    /// first transaction that owed to the account, and the lowest such transaction's error is
    /// the one returned. `eip161`: whether touched empty accounts are removed.
    pub(crate) fn settle<P: StateProvider>(
        mut self,
        provider: &P,
        beneficiary: Address,
        state: &mut StateDiff,
        eip161: bool,
    ) -> Result<u64, (TxIdx, ExecutionError)> {
        let mut credits: Vec<_> = std::mem::take(&mut self.credits).into_iter().collect();
        // Address order, so that which of two failed reads charged to one transaction is
        // reported does not depend on hashing; a credit's read comes before a fee's, as in
        // the transaction itself.
        credits.sort_unstable_by_key(|(address, _)| *address);
        let payments = credits.into_iter().map(|(address, owed)| {
            pay(
                provider,
                address,
                owed.first,
                [owed.value],
                None,
                state,
                eip161,
            )
        });
        let (mut read, mut first_error) = (0, None);
        let mut record = |paid| match paid {
            Ok(was_read) => read += u64::from(was_read),
            Err(error) => keep_lowest(&mut first_error, error),
        };
        payments.for_each(&mut record);
        record(self.settle_fees(provider, beneficiary, state, eip161));
        first_error.map_or(Ok(read), Err)
    }
}

/// Keeps in `lowest` the error of the lowest transaction (the earlier one on a tie).
pub(crate) fn keep_lowest(
    lowest: &mut Option<(TxIdx, ExecutionError)>,
    error: (TxIdx, ExecutionError),
) {
    if lowest.as_ref().is_none_or(|(index, _)| error.0 < *index) {
        *lowest = Some(error);
    }
}

/// Pays `payments`, owed since transaction `first`, one after another into the account at
/// `address` as `state` (or else `provider`) has it. Returns whether the account was read
/// from `provider` (nothing before changed it in `state`).
///
/// `shown` is the account as the one transaction that owes was shown it, without the credits
/// owed to it, when there is one such transaction: where `state` has nothing, nothing before
/// that transaction changed the account (else it would have been folded), so it was shown
/// what `provider` has, and is not read again.
pub(crate) fn pay<P: StateProvider>(
    provider: &P,
    address: Address,
    first: TxIdx,
    payments: impl IntoIterator<Item = U256>,
    shown: Option<&Option<AccountState>>,
    state: &mut StateDiff,
    eip161: bool,
) -> Result<bool, (TxIdx, ExecutionError)> {
    // One search of the diff: the entry found (or its vacant place) takes the writes.
    let entry = state.entry(address);
    let (mut account, read) = match &entry {
        btree_map::Entry::Occupied(change) => (change.get().info.clone(), false),
        btree_map::Entry::Vacant(_) if shown.is_some() => {
            let shown = shown.cloned().flatten();
            // A failed read here proves nothing: a provider may fail on any read.
            debug_assert!(
                provider.basic(address).map_or(true, |read| {
                    let read = read.map(AccountState::from);
                    let fields = |a: &AccountState| (a.balance, a.nonce, a.code_hash);
                    read.as_ref().map(fields) == shown.as_ref().map(fields)
                }),
                "{address} was shown other than the state has"
            );
            (shown, false)
        }
        btree_map::Entry::Vacant(_) => {
            let read = provider.basic(address).map_err(|error| {
                let error = ExecutionError::Provider {
                    index: first,
                    error,
                };
                (first, error)
            })?;
            (read.map(AccountState::from), true)
        }
    };
    let mut writes: SmallVec<[AccountWrite; 2]> = SmallVec::new();
    for value in payments {
        let Some(write) = payment_write(account.as_ref(), value, eip161) else {
            continue;
        };
        account = match &write {
            AccountWrite::Destroyed => None,
            AccountWrite::Updated { info, .. } => Some(info.clone()),
        };
        writes.push(write);
    }
    if !writes.is_empty() {
        let change = entry.or_default();
        for write in &writes {
            apply_write(change, write);
        }
    }
    Ok(read)
}

/// Puts into a transaction's revm `state` the account at `address` (`before`, as the
/// transactions before left it) with `value` paid into it, marked as revm's fee payment or
/// transfer marks it: touched and, before EIP-161, an empty account kept (or materialised
/// when it did not exist) as revm's journal leaves it.
pub(crate) fn settle_in_evm_state(
    state: &mut EvmState,
    address: Address,
    value: U256,
    before: Option<AccountInfo>,
    eip161: bool,
) {
    let mut account = match before {
        Some(info) => Account::from(info),
        None => Account::new_not_existing(TransactionId::ZERO),
    };
    account.info.balance = account.info.balance.saturating_add(value);
    account.mark_touch();
    if !eip161 && account.is_empty() {
        if account.is_loaded_as_not_existing() {
            account.mark_created();
        } else {
            account.unmark_touch();
        }
    }
    state.insert(address, account);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(balance: u64) -> AccountState {
        AccountState {
            balance: U256::from(balance),
            nonce: 0,
            code_hash: KECCAK_EMPTY,
            code: None,
        }
    }

    fn updated(balance: u64, created: bool) -> Option<AccountWrite> {
        Some(AccountWrite::Updated {
            info: account(balance),
            info_changed: true,
            code_changed: false,
            created,
            storage: Vec::new(),
        })
    }

    #[test]
    fn payments_follow_revm_touch_rules() {
        let fee = |prev: Option<u64>, fee: u64, eip161| {
            payment_write(prev.map(account).as_ref(), U256::from(fee), eip161)
        };
        for eip161 in [false, true] {
            assert_eq!(fee(Some(5), 3, eip161), updated(8, false));
            assert_eq!(fee(None, 3, eip161), updated(3, false));
            // A zero fee changes nothing in an account that stays.
            assert_eq!(fee(Some(5), 0, eip161), None);
        }
        // A zero fee touches an empty account: EIP-161 removes it...
        assert_eq!(fee(Some(0), 0, true), Some(AccountWrite::Destroyed));
        assert_eq!(fee(None, 0, true), Some(AccountWrite::Destroyed));
        // ...while before it an existing one stays and a missing one is created.
        assert_eq!(fee(Some(0), 0, false), None);
        assert_eq!(fee(None, 0, false), updated(0, true));
    }

    #[test]
    fn owed_payments_settle_once_whatever_the_split() {
        use crate::{InMemoryAccount, InMemoryProvider};
        let beneficiary = Address::with_last_byte(0xbb);
        let (x, y) = (Address::with_last_byte(1), Address::with_last_byte(2));
        let mut provider = InMemoryProvider::default();
        let funded = InMemoryAccount {
            balance: U256::from(100),
            ..InMemoryAccount::default()
        };
        provider.insert_account(x, funded);
        // One part of the block owes a zero fee first, the other the non-zero ones and the
        // credits.
        let (mut first, mut second) = (Owing::default(), Owing::default());
        first.fee(0, U256::ZERO);
        first.credit(4, x, U256::from(5));
        second.fee(1, U256::from(7));
        second.credit(1, x, U256::from(3));
        second.credit(2, y, U256::from(9));
        second.credit(3, y, U256::from(1));
        let mut state = StateDiff::new();
        second.fee(5, U256::from(2));
        first.absorb(second);
        assert_eq!(first.counts(), (3, 4));
        let paid = first.settle(&provider, beneficiary, &mut state, true);
        assert_eq!(paid.ok(), Some(3));
        let balance = |address| state[&address].info.as_ref().map(|a| a.balance);
        assert_eq!(balance(x), Some(U256::from(108)));
        // The zero fee touched the absent beneficiary before the others paid into it.
        assert_eq!(balance(beneficiary), Some(U256::from(9)));
        assert!(state[&beneficiary].storage_cleared);
        assert_eq!(balance(y), Some(U256::from(10)));
    }

    #[test]
    fn fees_before_a_write_of_the_beneficiary_are_paid_first() {
        let beneficiary = Address::with_last_byte(0xbb);
        let provider = crate::InMemoryProvider::default();
        let mut owing = Owing::default();
        owing.fee(0, U256::ZERO);
        let mut state = StateDiff::new();
        let read = owing.settle_fees(&provider, beneficiary, &mut state, true);
        assert_eq!(read.ok(), Some(true));
        // EIP-161 removes the touched empty account: its storage is wiped before the write.
        assert!(state[&beneficiary].storage_cleared);
        assert_eq!(state[&beneficiary].info, None);
        let read = owing.settle_fees(&provider, beneficiary, &mut state, true);
        assert_eq!(read.ok(), Some(false), "nothing owed any more");
    }
}
