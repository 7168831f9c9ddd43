//! A block's [`StateDiff`] as revm's [`BundleState`], for clients that persist state through
//! revm's database types (plain-state changesets, `State::merge_transitions` style bundles).

use alloy_primitives::U256;
use revm::{
    database::{
        states::StorageSlot, AccountStatus, BundleAccount, BundleState, StorageWithOriginalValues,
    },
    primitives::KECCAK_EMPTY,
    state::AccountInfo,
};

use crate::{ProviderError, StateDiff, StateProvider};

/// Converts `diff`, the state diff of a block executed on top of `provider`, into a
/// [`BundleState`] holding, per changed account, the values before the block (read from
/// `provider`) and after it.
///
/// - `original_info` is the account before the block (`None` if absent); its `code` is left
///   `None` (loadable by `code_hash`). `info` is the account after the block (`None` if
///   destroyed); it carries `code` where the block deployed it, and that code is also listed
///   in `contracts`.
/// - Every slot in the diff becomes a [`StorageSlot`] from its pre-block value (zero for an
///   account that did not exist) to its final value.
/// - Status: [`AccountStatus::Destroyed`] for an account the block removed,
///   [`AccountStatus::DestroyedChanged`] for an existing account whose storage the block wiped
///   (self-destruct then re-creation, or creation over a pre-funded address) and that exists
///   after it, [`AccountStatus::InMemoryChange`] for an account that did not exist before, and
///   [`AccountStatus::Changed`] otherwise. An account absent both before and after the block
///   (touched and removed under EIP-161) is left out.
///
/// No reverts are recorded (`reverts` is empty): the bundle describes one block's change, as
/// `BundleState::to_plain_state` consumes it.
pub fn to_bundle_state<P: StateProvider>(
    diff: &StateDiff,
    provider: &P,
) -> Result<BundleState, ProviderError> {
    let mut bundle = BundleState::default();
    for (address, change) in diff {
        let original = provider.basic(*address)?.map(|account| AccountInfo {
            balance: account.balance,
            nonce: account.nonce,
            code_hash: account.code_hash,
            code: None,
            ..AccountInfo::default()
        });
        let present = change.info.as_ref().map(|account| AccountInfo {
            balance: account.balance,
            nonce: account.nonce,
            code_hash: account.code_hash,
            code: account.code.clone(),
            ..AccountInfo::default()
        });
        let status = match (&original, &present) {
            (None, None) => continue,
            (Some(_), None) => AccountStatus::Destroyed,
            (None, Some(_)) => AccountStatus::InMemoryChange,
            (Some(_), Some(_)) if change.storage_cleared => AccountStatus::DestroyedChanged,
            (Some(_), Some(_)) => AccountStatus::Changed,
        };
        let mut storage = StorageWithOriginalValues::default();
        for (slot, value) in &change.storage {
            let before = match original {
                Some(_) => provider.storage(*address, *slot)?,
                None => U256::ZERO,
            };
            storage.insert(*slot, StorageSlot::new_changed(before, *value));
        }
        if let Some(info) = present
            .as_ref()
            .filter(|info| info.code_hash != KECCAK_EMPTY)
        {
            if let Some(code) = &info.code {
                bundle.contracts.insert(info.code_hash, code.clone());
            }
        }
        let account = BundleAccount::new(original, present, storage, status);
        bundle.state_size += account.size_hint();
        bundle.state.insert(*address, account);
    }
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{address, Address};
    use revm::{bytecode::Bytecode, database::OriginalValuesKnown};

    use super::*;
    use crate::{AccountChange, AccountState, InMemoryAccount, InMemoryProvider};

    const CHANGED: Address = address!("00000000000000000000000000000000000000a1");
    const CREATED: Address = address!("00000000000000000000000000000000000000a2");
    const DESTROYED: Address = address!("00000000000000000000000000000000000000a3");
    const TOUCHED_ABSENT: Address = address!("00000000000000000000000000000000000000a4");

    fn slots(pairs: &[(u64, u64)]) -> impl Iterator<Item = (U256, U256)> + '_ {
        pairs
            .iter()
            .map(|(slot, value)| (U256::from(*slot), U256::from(*value)))
    }

    fn state(balance: u64, nonce: u64, code: Option<Bytecode>) -> Option<AccountState> {
        Some(AccountState {
            balance: U256::from(balance),
            nonce,
            code_hash: code.as_ref().map_or(KECCAK_EMPTY, Bytecode::hash_slow),
            code,
        })
    }

    #[test]
    fn changed_created_and_destroyed_accounts() {
        let mut provider = InMemoryProvider::default();
        let with_storage = |balance: u64, storage: &[(u64, u64)]| InMemoryAccount {
            balance: U256::from(balance),
            storage: slots(storage).collect(),
            ..InMemoryAccount::default()
        };
        provider.insert_account(CHANGED, with_storage(10, &[(1, 5), (2, 6)]));
        provider.insert_account(DESTROYED, with_storage(3, &[(1, 8)]));

        let code = Bytecode::new_raw(vec![0x60, 0x00, 0x00].into());
        let diff = StateDiff::from([
            (
                CHANGED,
                AccountChange {
                    info: state(7, 1, None),
                    storage_cleared: false,
                    storage: slots(&[(1, 0), (3, 9)]).collect(),
                },
            ),
            (
                CREATED,
                AccountChange {
                    info: state(0, 1, Some(code.clone())),
                    storage_cleared: true,
                    storage: slots(&[(0, 42)]).collect(),
                },
            ),
            (
                DESTROYED,
                AccountChange {
                    info: None,
                    storage_cleared: true,
                    storage: Default::default(),
                },
            ),
            (
                TOUCHED_ABSENT,
                AccountChange {
                    info: None,
                    storage_cleared: true,
                    storage: Default::default(),
                },
            ),
        ]);
        let bundle = to_bundle_state(&diff, &provider).unwrap();
        assert_eq!(
            bundle.state.len(),
            3,
            "the absent, removed account is left out"
        );

        let changed = &bundle.state[&CHANGED];
        assert_eq!(changed.status, AccountStatus::Changed);
        let original = changed.original_info.as_ref().unwrap();
        assert_eq!((original.balance, original.nonce), (U256::from(10), 0));
        let present = changed.info.as_ref().unwrap();
        assert_eq!((present.balance, present.nonce), (U256::from(7), 1));
        let slot = |account: &BundleAccount, slot: u64| {
            let slot = account.storage[&U256::from(slot)];
            (slot.original_value(), slot.present_value())
        };
        assert_eq!(slot(changed, 1), (U256::from(5), U256::ZERO));
        assert_eq!(slot(changed, 3), (U256::ZERO, U256::from(9)));
        assert_eq!(changed.storage.len(), 2, "unchanged slot 2 is not listed");

        let created = &bundle.state[&CREATED];
        assert_eq!(created.status, AccountStatus::InMemoryChange);
        assert_eq!(created.original_info, None);
        let info = created.info.as_ref().unwrap();
        assert_eq!(info.code_hash, code.hash_slow());
        assert_eq!(bundle.contracts[&code.hash_slow()], code);
        assert_eq!(slot(created, 0), (U256::ZERO, U256::from(42)));

        let destroyed = &bundle.state[&DESTROYED];
        assert_eq!(destroyed.status, AccountStatus::Destroyed);
        assert_eq!(
            destroyed.original_info.as_ref().unwrap().balance,
            U256::from(3)
        );
        assert_eq!(destroyed.info, None);
        assert!(destroyed.storage.is_empty());

        // The plain-state changeset a database would write.
        let plain = bundle.to_plain_state(OriginalValuesKnown::Yes);
        assert_eq!(plain.accounts.len(), 3);
        assert!(plain.accounts.contains(&(DESTROYED, None)));
        let wiped: Vec<_> = plain.storage.iter().filter(|s| s.wipe_storage).collect();
        assert_eq!(wiped.len(), 1);
        assert_eq!(wiped[0].address, DESTROYED);
        assert_eq!(plain.contracts, vec![(code.hash_slow(), code)]);
    }
}
