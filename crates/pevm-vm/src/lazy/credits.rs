//! The credit half of lazy payments: which transactions may credit their recipient as a
//! delta, which accounts can take such a credit, and the credit a transaction made.

use alloy_primitives::{Address, TxKind, U256};
use pevm_core::TxIdx;
use revm::{
    context::TxEnv,
    precompile::{PrecompileSpecId, Precompiles},
    primitives::{hardfork::SpecId, KECCAK_EMPTY},
};

use crate::{
    state::diff::{AccountState, AccountWrite},
    strategy::hints::{AccountSlot, Hints},
};

/// Balances from this value (2^254) on are always read, never credited lazily: below it, no
/// sum of a block's credits (each below [`LAZY_VALUE_LIMIT`]) can overflow, exactly as the
/// serial transfers would not.
const LAZY_BALANCE_LIMIT: U256 = U256::from_limbs([0, 0, 0, 1 << 62]);

/// Transfers of this value (2^128) or more are never lazy.
const LAZY_VALUE_LIMIT: U256 = U256::from_limbs([0, 0, 1, 0]);

/// Whether a transfer of `value` may be credited lazily: not zero (a zero transfer touches
/// the recipient, which can remove it when empty), and small enough that no sum of credits
/// can overflow.
pub(crate) fn lazy_value(value: U256) -> bool {
    !value.is_zero() && value < LAZY_VALUE_LIMIT
}

/// Which transactions may credit their recipient lazily, decided before execution from the
/// transactions alone; whether a credit really is lazy is decided during execution, from the
/// recipient's account as read (see [`can_credit`]).
#[derive(Debug, Default)]
pub(crate) struct LazyCredits {
    /// Per transaction: the recipient it may credit lazily.
    recipients: Vec<Option<Address>>,
    /// The transactions that may credit each recipient, by the recipient's slot in the
    /// block's [`Hints`] and then in block order: those of slot `s` are
    /// `creditors[starts[s]..starts[s + 1]]`. One vector for the block, where a vector per
    /// recipient would take an allocation each.
    creditors: Vec<TxIdx>,
    /// Per slot: where its creditors start; one more entry ends the last.
    starts: Vec<u32>,
}

impl LazyCredits {
    /// The candidates of a block: plain calls with value to another address that is neither
    /// the beneficiary (credited by fees already) nor a precompile, without EIP-7702
    /// authorisations, to a recipient that is shared ([`Hints::shared`]: another
    /// transaction of the block sends from it or calls it). A recipient no other transaction
    /// names conflicts with none of them through the transfer, and a lazy credit would only
    /// add a write of the credit and a payment in the fold. `hints` are those of `txs`.
    pub(crate) fn new(txs: &[TxEnv], beneficiary: Address, spec: SpecId, hints: &Hints) -> Self {
        let precompiles = Precompiles::new(PrecompileSpecId::from_spec_id(spec));
        let mut starts = vec![0u32; hints.slot_count() + 1];
        let mut slots = Vec::new();
        let recipients = txs
            .iter()
            .enumerate()
            .map(|(index, tx)| {
                let (TxKind::Call(to), Some((named, slot))) = (tx.kind, hints.callee(index)) else {
                    return None;
                };
                // Hints of other transactions than these would credit the wrong slot.
                let candidate = named == to
                    && lazy_value(tx.value)
                    && to != tx.caller
                    && to != beneficiary
                    && tx.authorization_list.is_empty()
                    && hints.shared(slot)
                    && !precompiles.contains(&to);
                candidate.then(|| {
                    starts[slot.index() + 1] += 1;
                    slots.push((slot, index));
                    to
                })
            })
            .collect();
        // Counts to starts, then each creditor into its recipient's run, in block order.
        for s in 1..starts.len() {
            starts[s] += starts[s - 1];
        }
        let mut next = starts.clone();
        let mut creditors = vec![0; slots.len()];
        for (slot, index) in slots {
            creditors[next[slot.index()] as usize] = index;
            next[slot.index()] += 1;
        }
        Self {
            recipients,
            creditors,
            starts,
        }
    }

    /// The recipient transaction `tx_idx` may credit lazily.
    pub(crate) fn recipient(&self, tx_idx: TxIdx) -> Option<Address> {
        self.recipients.get(tx_idx).copied().flatten()
    }

    /// The transactions strictly between `after` (or the block's start) and `before` that may
    /// have credited the account in `slot` lazily.
    pub(crate) fn creditors_between(
        &self,
        slot: Option<AccountSlot>,
        after: Option<TxIdx>,
        before: TxIdx,
    ) -> &[TxIdx] {
        let Some(slot) = slot else {
            return &[];
        };
        let (Some(&start), Some(&end)) = (
            self.starts.get(slot.index()),
            self.starts.get(slot.index() + 1),
        ) else {
            return &[];
        };
        let txs = &self.creditors[start as usize..end as usize];
        let start = after.map_or(0, |after| txs.partition_point(|&tx| tx <= after));
        let end = txs.partition_point(|&tx| tx < before);
        txs.get(start..end).unwrap_or_default()
    }
}

/// A credit a transaction made lazily: to whom, how much, and the recipient's account as the
/// transaction was shown it (without the credits owed to it), which the fold pays into rather
/// than reading the account again (see [`crate::lazy::pay`]).
#[derive(Clone, Debug)]
pub(crate) struct Credit {
    pub(crate) to: Address,
    pub(crate) value: U256,
    pub(crate) shown: Option<AccountState>,
}

/// Whether `account` (as the transactions before left it) can take a lazy credit: it has no
/// code, so a transfer to it runs nothing that could see its balance, and its balance is far
/// from overflowing. Where a transfer to an empty account costs more gas (`empty_costs`: state
/// gas for the new account from Amsterdam on, EIP-8037), it must also be non-empty, which the
/// credits before it cannot change: without them it would be shown empty when it is not.
pub(crate) fn can_credit(account: Option<&AccountState>, empty_costs: bool) -> bool {
    match account {
        None => !empty_costs,
        Some(a) => {
            let empty = a.balance.is_zero() && a.nonce == 0;
            a.code_hash == KECCAK_EMPTY && a.balance < LAZY_BALANCE_LIMIT && !(empty_costs && empty)
        }
    }
}

/// The credit a transaction made to the lazily credited `recipient`, taking its write of
/// the recipient out of `writes`: `base` is the account it was shown (without the credits
/// owed to it). `Ok(None)` when the transaction left the recipient unchanged (it failed);
/// `Err` with the unexpected write when the transaction changed more than the balance.
pub(crate) fn take_credit(
    writes: &mut Vec<(Address, AccountWrite)>,
    recipient: Address,
    base: Option<&AccountState>,
) -> Result<Option<U256>, AccountWrite> {
    let Some(position) = writes.iter().position(|(a, _)| *a == recipient) else {
        return Ok(None);
    };
    let (_, write) = writes.remove(position);
    let (balance, nonce, code_hash) = base.map_or((U256::ZERO, 0, KECCAK_EMPTY), |a| {
        (a.balance, a.nonce, a.code_hash)
    });
    match &write {
        AccountWrite::Updated {
            info,
            created: false,
            code_changed: false,
            storage,
            ..
        } if storage.is_empty()
            && info.nonce == nonce
            && info.code_hash == code_hash
            && info.balance > balance =>
        {
            Ok(Some(info.balance - balance))
        }
        _ => Err(write),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pevm_core::Pool;

    fn transfer(from: u8, to: u8, value: u64) -> TxEnv {
        TxEnv {
            caller: Address::with_last_byte(from),
            kind: TxKind::Call(Address::with_last_byte(to)),
            value: U256::from(value),
            ..TxEnv::default()
        }
    }

    #[test]
    fn candidates_are_plain_value_transfers_to_others() {
        let beneficiary = Address::with_last_byte(0xbb);
        let txs = vec![
            transfer(0x10, 0x20, 5),
            transfer(0x11, 0x20, 0), // no value
            transfer(0x12, 0x12, 5), // to itself
            transfer(0x13, 0xbb, 5), // to the beneficiary
            transfer(0x14, 0x01, 5), // to a precompile
            transfer(0x15, 0x20, 7),
            TxEnv::default(),        // a creation
            transfer(0x16, 0x21, 5), // to a recipient no other transaction names
        ];
        // 0x20 and 0x01 are shared, 0x21 is not; the beneficiary is named below.
        let mut named = txs.clone();
        named.push(transfer(0x01, 0xbb, 1));
        let mut hints = Hints::default();
        hints.known_dependencies(&named, false, true, &Pool::new(1), 1);
        let lazy = LazyCredits::new(&named[..txs.len()], beneficiary, SpecId::CANCUN, &hints);
        let recipients: Vec<_> = (0..txs.len()).map(|tx| lazy.recipient(tx)).collect();
        let to = Some(Address::with_last_byte(0x20));
        assert_eq!(recipients, [to, None, None, None, None, to, None, None]);
        let x = hints.slot(0, &Address::with_last_byte(0x20));
        assert_eq!(lazy.creditors_between(x, None, 6), &[0, 5]);
        assert_eq!(lazy.creditors_between(x, Some(0), 6), &[5]);
        assert_eq!(lazy.creditors_between(x, None, 5), &[0]);
        assert_eq!(lazy.creditors_between(x, Some(5), 6), &[] as &[TxIdx]);
        let none = &[] as &[TxIdx];
        let beneficiary = hints.slot(0, &beneficiary);
        assert!(beneficiary.is_some());
        assert_eq!(lazy.creditors_between(beneficiary, None, 6), none);
        assert_eq!(lazy.creditors_between(None, None, 6), none);
    }

    #[test]
    fn only_codeless_accounts_far_from_overflow_take_credits() {
        let account = |balance: U256, code_hash| AccountState {
            balance,
            nonce: 1,
            code_hash,
            code: None,
        };
        assert!(can_credit(None, false));
        assert!(can_credit(
            Some(&account(U256::from(9), KECCAK_EMPTY)),
            false
        ));
        assert!(!can_credit(
            Some(&account(LAZY_BALANCE_LIMIT, KECCAK_EMPTY)),
            false
        ));
        assert!(!can_credit(
            Some(&account(U256::ZERO, [1; 32].into())),
            false
        ));
        // From Amsterdam on, only an account that exists and is not empty.
        assert!(!can_credit(None, true));
        assert!(can_credit(
            Some(&account(U256::from(9), KECCAK_EMPTY)),
            true
        ));
        let empty = AccountState {
            nonce: 0,
            ..account(U256::ZERO, KECCAK_EMPTY)
        };
        assert!(can_credit(Some(&empty), false));
        assert!(!can_credit(Some(&empty), true));
    }

    #[test]
    fn credit_is_the_balance_increase_of_a_plain_update() {
        let x = Address::with_last_byte(0x20);
        let base = AccountState {
            balance: U256::from(100),
            nonce: 3,
            code_hash: KECCAK_EMPTY,
            code: None,
        };
        let update = |balance: u64, nonce| AccountWrite::Updated {
            info: AccountState {
                balance: U256::from(balance),
                nonce,
                ..base.clone()
            },
            info_changed: true,
            code_changed: false,
            created: false,
            storage: Vec::new(),
        };
        let other = (Address::with_last_byte(0x10), update(1, 1));
        let mut writes = vec![other.clone(), (x, update(130, 3))];
        assert_eq!(
            take_credit(&mut writes, x, Some(&base)),
            Ok(Some(U256::from(30)))
        );
        assert_eq!(writes, [other]);
        assert_eq!(take_credit(&mut writes, x, Some(&base)), Ok(None));
        let mut writes = vec![(x, update(130, 4))];
        assert_eq!(
            take_credit(&mut writes, x, Some(&base)),
            Err(update(130, 4))
        );
        let mut writes = vec![(x, update(7, 0))];
        assert_eq!(take_credit(&mut writes, x, None), Ok(Some(U256::from(7))));
    }
}
