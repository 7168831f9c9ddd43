//! The block's access list (EIP-7928): every account and slot the block touched, with the value
//! each step left behind, by step: index 0 for the pre-block system calls, `i + 1` for
//! transaction `i`, the next index for the post-block steps.
//!
//! Each step's part is built with revm's own builder (`Bal`, the one revm's `State` fills on
//! commit) from the revm state the step returned, and the parts are joined here in index order
//! into alloy's canonical list.

use std::collections::{BTreeMap, BTreeSet};

use alloy_eips::eip7928::{
    compute_block_access_list_hash, AccountChanges, SlotChanges, StorageChange,
};
use alloy_primitives::{Address, B256, U256};
use revm::state::{
    bal::{Bal, BlockAccessIndex},
    EvmState,
};

pub use alloy_eips::eip7928::BlockAccessList;

/// The access list of consecutive steps of a block, recorded one step's revm state at a time.
#[derive(Debug, Default)]
pub(crate) struct AccessListBuilder {
    bal: Bal,
}

impl AccessListBuilder {
    /// Records what the step at `index` (later than any recorded before) read and wrote:
    /// `state` as revm returned it.
    pub(crate) fn record(&mut self, index: u64, state: &EvmState) {
        let index = BlockAccessIndex::new(index);
        for (address, account) in state {
            self.bal.update_account(index, *address, account);
        }
    }

    /// The canonical list of the recorded steps.
    pub(crate) fn finish(self) -> BlockAccessList {
        self.bal.into_alloy_bal()
    }
}

/// The list of a block from the lists of its consecutive parts, `parts` in index order: changes
/// are concatenated, a slot read in one part and written in another is a written slot, and the
/// result is ordered as the EIP says (accounts and slots ascending).
pub(crate) fn join(parts: impl IntoIterator<Item = BlockAccessList>) -> BlockAccessList {
    /// One account's changes, slots keyed for the join.
    #[derive(Default)]
    struct Joined {
        changes: AccountChanges,
        slots: BTreeMap<U256, Vec<StorageChange>>,
    }
    let mut accounts = BTreeMap::<Address, Joined>::new();
    for part in parts {
        for account in part {
            let joined = accounts.entry(account.address).or_default();
            let changes = &mut joined.changes;
            changes.balance_changes.extend(account.balance_changes);
            changes.nonce_changes.extend(account.nonce_changes);
            changes.code_changes.extend(account.code_changes);
            for slot in account.storage_changes {
                joined
                    .slots
                    .entry(slot.slot)
                    .or_default()
                    .extend(slot.changes);
            }
            for slot in account.storage_reads {
                joined.slots.entry(slot).or_default();
            }
        }
    }
    accounts
        .into_iter()
        .map(|(address, joined)| {
            let mut changes = joined.changes;
            changes.address = address;
            for (slot, writes) in joined.slots {
                if writes.is_empty() {
                    changes.storage_reads.push(slot);
                } else {
                    changes.storage_changes.push(SlotChanges::new(slot, writes));
                }
            }
            changes
        })
        .collect()
}

/// The hash of an access list, as a header's `blockAccessListHash` holds it.
pub fn access_list_hash(list: &[AccountChanges]) -> B256 {
    compute_block_access_list_hash(list)
}

/// The first account whose entry differs between two access lists (`ours`, then `theirs` in
/// the message), or how their order differs; `None` when they are equal.
pub fn first_access_list_difference(
    ours: &[AccountChanges],
    theirs: &[AccountChanges],
) -> Option<String> {
    let by_address = |list: &'_ [AccountChanges]| -> BTreeMap<Address, AccountChanges> {
        list.iter().map(|a| (a.address, a.clone())).collect()
    };
    let (a, b) = (by_address(ours), by_address(theirs));
    let addresses: BTreeSet<&Address> = a.keys().chain(b.keys()).collect();
    for address in addresses {
        if a.get(address) != b.get(address) {
            return Some(format!(
                "access list entry of {address}: {:?}, the other {:?}",
                a.get(address),
                b.get(address)
            ));
        }
    }
    (ours != theirs).then(|| "access lists with the same entries in another order".to_string())
}

#[cfg(test)]
mod tests {
    use alloy_eips::eip7928::{BalanceChange, BlockAccessIndex};
    use alloy_primitives::address;

    use super::*;

    fn index(i: u64) -> BlockAccessIndex {
        BlockAccessIndex::new(i)
    }

    #[test]
    fn parts_join_in_index_order_and_a_slot_written_anywhere_is_no_read() {
        let a = address!("00000000000000000000000000000000000000aa");
        let b = address!("00000000000000000000000000000000000000bb");
        let write = |i: u64, value: u64| StorageChange::new(index(i), U256::from(value));
        let pre_block = vec![AccountChanges {
            storage_changes: vec![SlotChanges::new(U256::from(1), vec![write(0, 5)])],
            storage_reads: vec![U256::from(2)],
            ..AccountChanges::new(b)
        }];
        let txs = vec![
            AccountChanges {
                balance_changes: vec![BalanceChange::new(index(1), U256::from(7))],
                ..AccountChanges::new(a)
            },
            AccountChanges {
                storage_changes: vec![SlotChanges::new(U256::from(2), vec![write(2, 9)])],
                storage_reads: vec![U256::from(1), U256::from(3)],
                ..AccountChanges::new(b)
            },
        ];
        let joined = join([pre_block, txs]);
        assert_eq!(joined.len(), 2);
        assert_eq!(joined[0].address, a, "accounts ascend");
        assert_eq!(joined[0].balance_changes.len(), 1);
        let b_changes = &joined[1];
        assert_eq!(
            b_changes.storage_changes,
            vec![
                SlotChanges::new(U256::from(1), vec![write(0, 5)]),
                SlotChanges::new(U256::from(2), vec![write(2, 9)]),
            ]
        );
        assert_eq!(b_changes.storage_reads, vec![U256::from(3)]);
        assert_ne!(access_list_hash(&joined), access_list_hash(&[]));
    }
}
