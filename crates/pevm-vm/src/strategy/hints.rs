//! Dependencies known before execution, read off the transactions alone: a transaction's
//! first execution waits for the one it will most likely conflict with, instead of running
//! into the conflict and being re-executed. A hint is never trusted for correctness (Block-STM
//! validates every read anyway): a wrong one costs parallelism, a missing one a re-execution.

use alloy_primitives::{
    map::{AddressMap, FbMap},
    Address, FixedBytes, TxKind,
};
use pevm_core::TxIdx;
use revm::context::TxEnv;

use crate::lazy::lazy_value;

/// The selector of ERC-20 `transfer(address to, uint256 amount)`.
const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];

/// The selector of ERC-20 `transferFrom(address from, address to, uint256 amount)`.
const TRANSFER_FROM: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];

/// The maps behind [`Hints::known_dependencies`], kept by a long-lived executor: a block of
/// tens of thousands of transactions would otherwise allocate, and fault in, megabytes of
/// fresh map every time (a few milliseconds on this project's machines).
///
/// Each account a transaction names gets a slot, and each transaction keeps the slots of the
/// accounts it names: the engine asks about those accounts on every incarnation, and a slot
/// answers from a dense vector where a hash-map lookup would take a cache miss or two.
#[derive(Debug, Default)]
pub(crate) struct Hints {
    /// Per account a transaction sends from or calls: its slot.
    slots: AddressMap<AccountSlot>,
    /// Per slot: the transactions that sent from its account or called it.
    touches: Vec<Touches>,
    /// Per transaction: its sender and the account it calls (none for a creation), with their
    /// slots.
    named: Vec<[Option<(Address, AccountSlot)>; 2]>,
    /// Per token contract and holder: the last transfer that moved the holder's tokens.
    holders: FbMap<40, TxIdx>,
    /// Whether the last call linked any transaction through a token holder.
    linked_holders: bool,
}

/// The place of an account in [`Hints`]: the accounts the block's transactions name are
/// numbered from 0, in the order first named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AccountSlot(u32);

impl AccountSlot {
    /// The slot as an index.
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// The transactions that sent from an account or called it.
#[derive(Clone, Copy, Debug)]
struct Touches {
    /// The last one.
    last: TxIdx,
    /// Whether there were several.
    several: bool,
    /// The last one expected to write the account: a sender, or a call that is not a
    /// transfer credited lazily (see [`crate::lazy`]).
    writer: Option<TxIdx>,
    /// Whether more than one was expected to write it.
    writers: bool,
}

/// Notes that transaction `index` sends from or calls `address`, and whether it is expected to
/// write its account; returns the account's slot, and the last other transaction before it
/// that sent from or called it.
fn touch(
    slots: &mut AddressMap<AccountSlot>,
    touches: &mut Vec<Touches>,
    address: Address,
    index: TxIdx,
    writes: bool,
) -> (AccountSlot, Option<TxIdx>) {
    let next = AccountSlot(touches.len() as u32);
    let slot = *slots.entry(address).or_insert(next);
    if slot == next {
        touches.push(Touches {
            last: index,
            several: false,
            writer: None,
            writers: false,
        });
    }
    let touches = &mut touches[slot.index()];
    let last = touches.last;
    touches.several |= last != index;
    touches.last = index;
    if writes {
        touches.writers |= touches.writer.is_some_and(|writer| writer != index);
        touches.writer = Some(index);
    }
    (slot, (last != index).then_some(last))
}

impl Hints {
    /// Per transaction of `txs`: the latest lower transaction it is known to depend on, or
    /// likely to.
    ///
    /// - The last one its sender sent (the nonce), or that sent ETH or a call to its sender
    ///   (its balance).
    /// - For calldata of an ERC-20 `transfer` or `transferFrom`: the last such call to the
    ///   same contract that moved tokens from or to one of the same two holders (a
    ///   read-modify-write of the same balance slot, if the contract is a standard token).
    ///   Only with `tokens`: the holders' map costs a cache miss or two per transaction
    ///   (several milliseconds for a block of 30,000 token transfers), which a block whose
    ///   plan sample showed no such link (see [`Self::linked_holders`]) need not pay.
    ///
    /// With `lazy_credits` (transfers may credit their recipients lazily), a transfer of value
    /// is not expected to write its recipient's account (see [`Self::owner`]).
    pub(crate) fn known_dependencies(
        &mut self,
        txs: &[TxEnv],
        tokens: bool,
        lazy_credits: bool,
    ) -> Vec<Option<TxIdx>> {
        let Self {
            slots,
            touches,
            named,
            holders,
            linked_holders,
        } = self;
        slots.clear();
        touches.clear();
        named.clear();
        holders.clear();
        slots.reserve(txs.len() * 2);
        *linked_holders = false;
        txs.iter()
            .enumerate()
            .map(|(index, tx)| {
                let (sender, mut dependency) = touch(slots, touches, tx.caller, index, true);
                let mut callee = None;
                if let TxKind::Call(to) = tx.kind {
                    // A transfer that may credit its recipient lazily leaves its account alone.
                    let lazy =
                        lazy_credits && lazy_value(tx.value) && tx.authorization_list.is_empty();
                    callee = Some((to, touch(slots, touches, to, index, !lazy).0));
                    let moved = token_holders(tx).filter(|_| tokens);
                    for holder in moved.into_iter().flatten() {
                        let last = holders.insert(holder_key(to, holder), index);
                        *linked_holders |= last.is_some();
                        dependency = dependency.max(last);
                    }
                }
                named.push([Some((tx.caller, sender)), callee]);
                dependency
            })
            .collect()
    }

    /// The slot of `address` when a transaction of the block names it; transaction
    /// `tx_idx`'s own sender and callee are found without hashing.
    pub(crate) fn slot(&self, tx_idx: TxIdx, address: &Address) -> Option<AccountSlot> {
        let mut named = self.named.get(tx_idx).into_iter().flatten().flatten();
        match named.find(|(named, _)| named == address) {
            Some((_, slot)) => Some(*slot),
            None => self.slots.get(address).copied(),
        }
    }

    /// The account transaction `tx_idx` calls, with its slot, if it calls one.
    pub(crate) fn callee(&self, tx_idx: TxIdx) -> Option<(Address, AccountSlot)> {
        self.named.get(tx_idx)?[1]
    }

    /// How many accounts the transactions name: every slot is below it.
    pub(crate) fn slot_count(&self) -> usize {
        self.touches.len()
    }

    /// The one transaction of the transactions last passed to [`Self::known_dependencies`]
    /// expected to write the account in `slot`, if only one is: it sends from it, calls it
    /// with no value to credit lazily, or is the only one to name it (see [`Self::shared`]
    /// and [`pevm_core::MvKey::owner`]).
    pub(crate) fn owner(&self, slot: Option<AccountSlot>) -> Option<TxIdx> {
        let touches = self.touches.get(slot?.index())?;
        match touches.writer {
            Some(writer) => (!touches.writers).then_some(writer),
            None => (!touches.several).then_some(touches.last),
        }
    }

    /// Whether several of the transactions last passed to [`Self::known_dependencies`] send
    /// from or call the account in `slot`.
    pub(crate) fn shared(&self, slot: AccountSlot) -> bool {
        self.touches
            .get(slot.index())
            .is_some_and(|touches| touches.several)
    }

    /// Whether the last [`Self::known_dependencies`] linked two transactions through a
    /// token holder.
    pub(crate) fn linked_holders(&self) -> bool {
        self.linked_holders
    }
}

/// The two holders whose balances an ERC-20 `transfer` (the sender and `to`) or
/// `transferFrom` (`from` and `to`) in `tx`'s calldata moves tokens between.
fn token_holders(tx: &TxEnv) -> Option<[Address; 2]> {
    let data = &tx.data;
    let selector: [u8; 4] = data.get(..4)?.try_into().ok()?;
    let address = |word: usize| {
        data.get(4 + 32 * word + 12..4 + 32 * (word + 1))
            .map(Address::from_slice)
    };
    match selector {
        TRANSFER if data.len() >= 4 + 2 * 32 => Some([tx.caller, address(0)?]),
        TRANSFER_FROM if data.len() >= 4 + 3 * 32 => Some([address(0)?, address(1)?]),
        _ => None,
    }
}

/// The key of `holder`'s balance in `token`.
fn holder_key(token: Address, holder: Address) -> FixedBytes<40> {
    let mut key = FixedBytes::<40>::ZERO;
    key[..20].copy_from_slice(token.as_slice());
    key[20..].copy_from_slice(holder.as_slice());
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Bytes, U256};

    fn account(n: u8) -> Address {
        Address::with_last_byte(n)
    }

    fn call(from: u8, to: u8, data: Vec<u8>) -> TxEnv {
        TxEnv {
            caller: account(from),
            kind: TxKind::Call(account(to)),
            data: Bytes::from(data),
            ..TxEnv::default()
        }
    }

    /// Calldata of `selector` with `addresses` as its first words and an amount after them.
    fn calldata(selector: [u8; 4], addresses: &[u8]) -> Vec<u8> {
        let mut data = selector.to_vec();
        for &a in addresses {
            data.extend_from_slice(&[0; 12]);
            data.extend_from_slice(account(a).as_slice());
        }
        data.extend_from_slice(&U256::from(7).to_be_bytes::<32>());
        data
    }

    #[test]
    fn senders_and_recipients_chain() {
        // 1 -> 2, then 2 sends (its balance), then 2 again (its nonce); 3 -> 4 is apart, and
        // so is 7's transfer of value to 8.
        let transfer = TxEnv {
            value: U256::from(1),
            ..call(7, 8, vec![])
        };
        let txs = [
            call(1, 2, vec![]),
            call(2, 5, vec![]),
            call(3, 4, vec![]),
            call(2, 6, vec![]),
            transfer,
        ];
        let mut hints = Hints::default();
        assert_eq!(
            hints.known_dependencies(&txs, true, true),
            [None, Some(0), None, Some(1), None]
        );
        // An account only one transaction is expected to write is that one's: its sender, a
        // call without value, or the only transfer to it (only a shared recipient is credited
        // lazily: 2 is shared, 8 is not).
        let owner = |hints: &Hints, n| hints.owner(hints.slot(0, &account(n)));
        let owners: Vec<_> = (1..=9).map(|n| owner(&hints, n)).collect();
        let expected = [
            Some(0),
            None,
            Some(2),
            Some(2),
            Some(1),
            Some(3),
            Some(4),
            Some(4),
            None,
        ];
        assert_eq!(owners, expected);
        let shared = |hints: &Hints, n| hints.shared(hints.slot(0, &account(n)).unwrap());
        assert!(shared(&hints, 2) && !shared(&hints, 8));
        // A transaction's own sender and callee are found in its slots, others in the map.
        assert_eq!(hints.slot(1, &account(2)), hints.slot(0, &account(2)));
        assert_eq!(
            hints.callee(2),
            Some((account(4), hints.slot(0, &account(4)).unwrap()))
        );
        assert_eq!(hints.slot(0, &account(10)), None);
        assert_eq!(hints.slot_count(), 8);
        // 8 sends on what it got: a transfer credits it lazily, and its own transaction writes
        // it; without lazy credits, both write it.
        let onward = TxEnv {
            caller: account(8),
            kind: TxKind::Call(account(9)),
            ..txs[4].clone()
        };
        let txs: Vec<_> = txs.into_iter().chain([onward]).collect();
        hints.known_dependencies(&txs, true, true);
        assert!(shared(&hints, 8));
        assert_eq!(owner(&hints, 8), Some(5));
        hints.known_dependencies(&txs, true, false);
        assert_eq!(owner(&hints, 8), None);
    }

    #[test]
    fn token_transfers_chain_on_shared_holders() {
        const TOKEN: u8 = 100;
        const OTHER_TOKEN: u8 = 101;
        let txs = [
            // Holders 1 and 2 pay holder 9 in the token: both depend on the credit before.
            call(1, TOKEN, calldata(TRANSFER, &[9])),
            call(2, TOKEN, calldata(TRANSFER, &[9])),
            // The same recipient in another token: independent.
            call(3, OTHER_TOKEN, calldata(TRANSFER, &[9])),
            // A spender moves holder 9's tokens to 4: depends on the last credit to 9.
            call(5, TOKEN, calldata(TRANSFER_FROM, &[9, 4])),
            // Truncated calldata and other selectors are no hint.
            call(6, TOKEN, calldata(TRANSFER, &[9])[..40].to_vec()),
            call(7, TOKEN, calldata([0xde, 0xad, 0xbe, 0xef], &[9])),
            // Holder 4 pays on: depends on the transferFrom that credited it.
            call(4, TOKEN, calldata(TRANSFER, &[8])),
        ];
        let mut hints = Hints::default();
        assert_eq!(
            hints.known_dependencies(&txs, true, true),
            [None, Some(0), None, Some(1), None, None, Some(3)]
        );
        assert!(hints.linked_holders());
        // Without tokens, only the accounts link: none here (tx 6's sender 4 only got tokens).
        assert_eq!(hints.known_dependencies(&txs, false, true), [None; 7]);
        assert!(!hints.linked_holders());
    }
}
