//! Dependencies known before execution, read off the transactions alone: a transaction's
//! first execution waits for the one it will most likely conflict with, instead of running
//! into the conflict and being re-executed. A hint is never trusted for correctness (Block-STM
//! validates every read anyway): a wrong one costs parallelism, a missing one a re-execution.

use alloy_primitives::{Address, FixedBytes, TxKind};
use pevm_core::{Pool, TxIdx};
use revm::context::TxEnv;

use crate::{lazy::lazy_value, strategy::numbered::Numbered};

/// The selector of ERC-20 `transfer(address to, uint256 amount)`.
const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];

/// The selector of ERC-20 `transferFrom(address from, address to, uint256 amount)`.
const TRANSFER_FROM: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];

/// The fewest transactions each part of [`Hints`] reads: for fewer, waking a worker and
/// joining it costs more than its share of the lookups saves. A mainnet block of 1,346
/// transactions was read in 80 to 110 µs by one part, and in 150 to 330 µs by two: the
/// second worker started 35 to 95 µs late, ran cold, and was joined 30 µs after it finished.
const MIN_TXS_PER_PART: usize = 2048;

/// The maps behind [`Hints::known_dependencies`], kept by a long-lived executor: a block of
/// tens of thousands of transactions would otherwise allocate, and fault in, megabytes of
/// fresh map every time (a few milliseconds on this project's machines).
///
/// Each account a transaction names gets a slot, and each transaction keeps the slots of the
/// accounts it names: the engine asks about those accounts on every incarnation, and a slot
/// answers from a dense vector where a hash-map lookup would take a cache miss or two.
///
/// The accounts (and token holders) are split into parts by a hash of their address, one part
/// per worker: each worker reads every transaction but looks up only its part's accounts, in
/// block order, so the lookups (each a cache miss or two, 60 to 150 ns) are shared out. An
/// account's history is all in its part: what a part finds does not depend on the number of
/// parts.
#[derive(Debug, Default)]
pub(crate) struct Hints {
    /// The parts of the last call; the first is the only one for one worker.
    parts: Vec<Part>,
    /// How many parts the last call used.
    used: usize,
    /// Per transaction: its sender and the account it calls (none for a creation), with their
    /// slots.
    named: Vec<[Option<(Address, AccountSlot)>; 2]>,
    /// Whether the last call linked any transaction through a token holder.
    linked_holders: bool,
}

/// The accounts and token holders of one part, with what each transaction found in it.
#[derive(Debug, Default)]
struct Part {
    /// Per account a transaction sends from or calls, numbered in the order first named:
    /// the transactions that sent from it or called it.
    accounts: Numbered<20, Touches>,
    /// Per token contract and holder: the last transfer that moved the holder's tokens.
    holders: Numbered<40, Option<u32>>,
    /// Whether any transaction was linked through a token holder.
    linked_holders: bool,
    /// Per transaction: what this part knows of it.
    found: Vec<Found>,
}

/// What one part knows of a transaction, so encoded that the parts' findings merge by
/// `max` and `min`.
#[derive(Clone, Copy, Debug)]
struct Found {
    /// The latest lower transaction it depends on through this part's accounts, plus one; 0
    /// for none.
    dependency: u32,
    /// Its sender's slot, if the sender is in this part; `u32::MAX` if not.
    sender: u32,
    /// Its callee's slot, if the callee is in this part; `u32::MAX` if not.
    callee: u32,
}

impl Found {
    /// Nothing found.
    const NOTHING: Self = Self {
        dependency: 0,
        sender: u32::MAX,
        callee: u32::MAX,
    };

    /// What `self` and `other` found together.
    fn merge(self, other: Self) -> Self {
        Self {
            dependency: self.dependency.max(other.dependency),
            sender: self.sender.min(other.sender),
            callee: self.callee.min(other.callee),
        }
    }
}

/// The place of an account in [`Hints`]: `index * parts + part`, where `index` numbers the
/// accounts of its part from 0 in the order first named.
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
    last: u32,
    /// Whether there were several.
    several: bool,
    /// The last one expected to write the account: a sender, or a call that is not a
    /// transfer credited lazily (see [`crate::lazy`]).
    writer: Option<u32>,
    /// Whether more than one was expected to write it.
    writers: bool,
}

/// The part of `address` out of `parts`: a multiplicative hash of its first and last bytes
/// (addresses that differ only in their middle bytes share a part, which costs only balance).
fn part_of(address: &Address, parts: usize) -> usize {
    if parts == 1 {
        return 0;
    }
    let bytes = address.as_slice();
    let low = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let high = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let mixed = (low ^ high.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((mixed >> 32) as usize * parts) >> 32
}

impl Part {
    /// Notes that transaction `index` sends from or calls `address`, and whether it is
    /// expected to write its account; returns the account's index in this part, and the last
    /// other transaction before it that sent from or called it.
    fn touch(&mut self, address: Address, index: TxIdx, writes: bool) -> (u32, Option<TxIdx>) {
        let index = index as u32;
        let (slot, touched) = self.accounts.entry(address.0, || Touches {
            last: index,
            several: false,
            writer: None,
            writers: false,
        });
        let last = touched.last;
        touched.several |= last != index;
        touched.last = index;
        if writes {
            touched.writers |= touched.writer.is_some_and(|writer| writer != index);
            touched.writer = Some(index);
        }
        (slot, (last != index).then_some(last as TxIdx))
    }

    /// Reads `txs` in order and notes what part `part` of `parts` holds of them (see
    /// [`Hints::known_dependencies`]).
    fn scan(&mut self, txs: &[TxEnv], part: usize, parts: usize, tokens: bool, lazy_credits: bool) {
        self.accounts.clear(txs.len() * 2 / parts);
        self.holders
            .clear(if tokens { txs.len() * 2 / parts } else { 0 });
        self.found.clear();
        self.linked_holders = false;
        let global = |slot: u32| slot * parts as u32 + part as u32;
        for (index, tx) in txs.iter().enumerate() {
            let mut found = Found::NOTHING;
            let mut dependency = None;
            if part_of(&tx.caller, parts) == part {
                let (slot, last) = self.touch(tx.caller, index, true);
                found.sender = global(slot);
                dependency = last;
            }
            if let TxKind::Call(to) = tx.kind {
                if part_of(&to, parts) == part {
                    // A transfer that may credit its recipient lazily leaves its account alone.
                    let lazy =
                        lazy_credits && lazy_value(tx.value) && tx.authorization_list.is_empty();
                    found.callee = global(self.touch(to, index, !lazy).0);
                }
                // Calldata is read only when the holders are wanted: every part reads it.
                let moved = tokens.then(|| token_holders(tx)).flatten();
                for holder in moved.into_iter().flatten() {
                    if part_of(&holder, parts) == part {
                        let (_, last) = self.holders.entry(holder_key(to, holder), || None);
                        let moved_before = last.replace(index as u32).map(|last| last as TxIdx);
                        self.linked_holders |= moved_before.is_some();
                        dependency = dependency.max(moved_before);
                    }
                }
            }
            found.dependency = dependency.map_or(0, |dependency| dependency as u32 + 1);
            self.found.push(found);
        }
    }
}

impl Hints {
    /// Per transaction of `txs`: the latest lower transaction it is known to depend on, or
    /// likely to, found by `workers` workers of `pool`.
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
        pool: &Pool,
        workers: usize,
    ) -> Vec<Option<TxIdx>> {
        let parts = workers
            .min(pool.concurrency())
            .min(txs.len() / MIN_TXS_PER_PART)
            .max(1);
        if self.parts.len() < parts {
            self.parts.resize_with(parts, Part::default);
        }
        self.used = parts;
        pool.for_each_mut(&mut self.parts[..parts], |part, state| {
            state.scan(txs, part, parts, tokens, lazy_credits);
        });
        let parts = &self.parts[..parts];
        self.linked_holders = parts.iter().any(|part| part.linked_holders);
        self.named.clear();
        let slot = |slot| (slot != u32::MAX).then_some(AccountSlot(slot));
        txs.iter()
            .enumerate()
            .map(|(index, tx)| {
                let found = parts.iter().map(|part| part.found[index]);
                let found = found.fold(Found::NOTHING, Found::merge);
                let sender = slot(found.sender).map(|slot| (tx.caller, slot));
                let callee = match tx.kind {
                    TxKind::Call(to) => slot(found.callee).map(|slot| (to, slot)),
                    TxKind::Create => None,
                };
                self.named.push([sender, callee]);
                found
                    .dependency
                    .checked_sub(1)
                    .map(|dependency| dependency as TxIdx)
            })
            .collect()
    }

    /// The slot of `address` when a transaction of the block names it; transaction
    /// `tx_idx`'s own sender and callee are found without hashing.
    pub(crate) fn slot(&self, tx_idx: TxIdx, address: &Address) -> Option<AccountSlot> {
        let mut named = self.named.get(tx_idx).into_iter().flatten().flatten();
        match named.find(|(named, _)| named == address) {
            Some((_, slot)) => Some(*slot),
            None => {
                let part = part_of(address, self.used);
                let index = self.parts.get(part)?.accounts.find(&address.0)?;
                Some(AccountSlot(index * self.used as u32 + part as u32))
            }
        }
    }

    /// The account transaction `tx_idx` calls, with its slot, if it calls one.
    pub(crate) fn callee(&self, tx_idx: TxIdx) -> Option<(Address, AccountSlot)> {
        self.named.get(tx_idx)?[1]
    }

    /// A number every slot is below (the parts' slots interleave: with several parts, not
    /// every slot below it names an account).
    pub(crate) fn slot_count(&self) -> usize {
        let parts = self.parts.iter().take(self.used);
        let longest = parts.map(|part| part.accounts.len()).max().unwrap_or(0);
        longest * self.used
    }

    /// The transactions that sent from or called the account in `slot`.
    fn touches(&self, slot: AccountSlot) -> Option<&Touches> {
        let used = self.used.max(1);
        let part = self.parts.get(slot.index() % used)?;
        part.accounts.get(slot.index() / used)
    }

    /// The one transaction of the transactions last passed to [`Self::known_dependencies`]
    /// expected to write the account in `slot`, if only one is: it sends from it, calls it
    /// with no value to credit lazily, or is the only one to name it (see [`Self::shared`]
    /// and [`pevm_core::MvKey::owner`]).
    pub(crate) fn owner(&self, slot: Option<AccountSlot>) -> Option<TxIdx> {
        let touches = self.touches(slot?)?;
        let owner = match touches.writer {
            Some(writer) => (!touches.writers).then_some(writer),
            None => (!touches.several).then_some(touches.last),
        };
        owner.map(|owner| owner as TxIdx)
    }

    /// Whether several of the transactions last passed to [`Self::known_dependencies`] send
    /// from or call the account in `slot`.
    pub(crate) fn shared(&self, slot: AccountSlot) -> bool {
        self.touches(slot).is_some_and(|touches| touches.several)
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
        let (mut hints, one) = (Hints::default(), Pool::new(1));
        assert_eq!(
            hints.known_dependencies(&txs, true, true, &one, 1),
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
        hints.known_dependencies(&txs, true, true, &one, 1);
        assert!(shared(&hints, 8));
        assert_eq!(owner(&hints, 8), Some(5));
        hints.known_dependencies(&txs, true, false, &one, 1);
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
        let (mut hints, one) = (Hints::default(), Pool::new(1));
        assert_eq!(
            hints.known_dependencies(&txs, true, true, &one, 1),
            [None, Some(0), None, Some(1), None, None, Some(3)]
        );
        assert!(hints.linked_holders());
        // Without tokens, only the accounts link: none here (tx 6's sender 4 only got tokens).
        assert_eq!(
            hints.known_dependencies(&txs, false, true, &one, 1),
            [None; 7]
        );
        assert!(!hints.linked_holders());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Split into parts on several workers, the hints are those of one part: the same
        /// dependencies, owners and shared accounts.
        #[test]
        fn parts_find_what_one_finds(
            txs in proptest::collection::vec(
                (0u8..40, 0u8..48, 0u8..4, 0u8..40, proptest::bool::ANY),
                3 * MIN_TXS_PER_PART..4 * MIN_TXS_PER_PART,
            ),
            tokens: bool,
            lazy_credits: bool,
        ) {
            let txs: Vec<TxEnv> = txs
                .into_iter()
                .map(|(from, to, kind, holder, value)| {
                    let data = match kind {
                        0 => calldata(TRANSFER, &[holder]),
                        1 => calldata(TRANSFER_FROM, &[holder, to]),
                        _ => vec![],
                    };
                    TxEnv {
                        value: U256::from(u8::from(value)),
                        kind: if kind == 3 && to < 4 { TxKind::Create } else { TxKind::Call(account(to)) },
                        ..call(from, to, data)
                    }
                })
                .collect();
            let (mut one, mut three) = (Hints::default(), Hints::default());
            let pool = Pool::new(3);
            let known = one.known_dependencies(&txs, tokens, lazy_credits, &pool, 1);
            proptest::prop_assert_eq!(
                three.known_dependencies(&txs, tokens, lazy_credits, &pool, 3),
                known
            );
            proptest::prop_assert_eq!(three.used, 3);
            proptest::prop_assert_eq!(one.linked_holders(), three.linked_holders());
            for n in 0..=u8::MAX {
                let address = account(n);
                let (a, b) = (one.slot(0, &address), three.slot(0, &address));
                proptest::prop_assert_eq!(a.is_some(), b.is_some());
                proptest::prop_assert!(b.is_none_or(|b| b.index() < three.slot_count()));
                proptest::prop_assert_eq!(one.owner(a), three.owner(b));
                proptest::prop_assert_eq!(a.map(|a| one.shared(a)), b.map(|b| three.shared(b)));
            }
            for (index, tx) in txs.iter().enumerate() {
                let callee = |hints: &Hints| hints.callee(index).map(|(address, _)| address);
                proptest::prop_assert_eq!(callee(&one), callee(&three));
                let caller = &tx.caller;
                proptest::prop_assert_eq!(three.slot(index, caller), three.slot(0, caller));
            }
        }
    }
}
