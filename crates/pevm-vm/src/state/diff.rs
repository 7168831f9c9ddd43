//! The block's state diff: each account's fields and storage after the block, and how one
//! transaction's writes (from revm's state) fold into it.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256, U256};
use revm::{
    bytecode::Bytecode,
    primitives::KECCAK_EMPTY,
    state::{EvmState, EvmStorageSlot},
};

/// An account's fields after the block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountState {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Keccak-256 of the code.
    pub code_hash: B256,
    /// The code, when the block changed it (deployment, EIP-7702 delegation); otherwise the
    /// state provider has it under `code_hash`.
    pub code: Option<Bytecode>,
}

/// How the block changed one account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountChange {
    /// The account after the block; `None` when it no longer exists (self-destructed, or
    /// emptied and removed under EIP-161).
    pub info: Option<AccountState>,
    /// Whether the account's earlier storage was wiped during the block (destruction or
    /// creation); `storage` then holds every slot written since.
    pub storage_cleared: bool,
    /// Final values of the storage slots the block changed.
    pub storage: BTreeMap<U256, U256>,
}

/// The block's effect on the state, by address, in address order.
pub type StateDiff = BTreeMap<Address, AccountChange>;

/// What one transaction did to one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AccountWrite {
    /// Self-destructed, or touched while empty and removed (EIP-161).
    Destroyed,
    /// Changed, possibly newly created (storage wiped first). `info.code` holds the account's
    /// code whenever it has some; `info_changed` says whether this transaction changed its
    /// balance, nonce or code, and `code_changed` whether it changed the code.
    Updated {
        info: AccountState,
        info_changed: bool,
        code_changed: bool,
        created: bool,
        storage: Vec<(U256, U256)>,
    },
}

/// The accounts one transaction changed, from revm's post-transaction state.
pub(crate) fn account_writes(state: &EvmState) -> Vec<(Address, AccountWrite)> {
    let mut writes = Vec::with_capacity(state.len());
    for (&address, account) in state {
        if !account.is_touched() {
            continue;
        }
        if account.is_selfdestructed() || (account.is_empty() && !account.is_created()) {
            writes.push((address, AccountWrite::Destroyed));
            continue;
        }
        let created = account.is_created();
        let original = account.original_info();
        let unchanged = original.balance == account.info.balance
            && original.nonce == account.info.nonce
            && original.code_hash == account.info.code_hash;
        if unchanged && !created && !account.storage.values().any(EvmStorageSlot::is_changed) {
            // Touched, but nothing to write.
            continue;
        }
        let storage = account
            .storage
            .iter()
            .filter(|(_, slot)| slot.is_changed())
            .map(|(key, slot)| (*key, slot.present_value))
            .collect();
        let original_code_hash = original.code_hash;
        let info = &account.info;
        let code_changed = info.code_hash != original_code_hash;
        // Not cloned for an account without code: that clone would count up a code every
        // such account shares.
        let code = info
            .code
            .as_ref()
            .filter(|_| info.code_hash != KECCAK_EMPTY)
            .cloned();
        let state = AccountState {
            balance: info.balance,
            nonce: info.nonce,
            code_hash: info.code_hash,
            code,
        };
        writes.push((
            address,
            AccountWrite::Updated {
                info: state,
                info_changed: !unchanged,
                code_changed,
                created,
                storage,
            },
        ));
    }
    writes
}

/// Folds one transaction's writes into the block's state diff.
pub(crate) fn apply_writes(diff: &mut StateDiff, writes: &[(Address, AccountWrite)]) {
    for (address, write) in writes {
        apply_write(diff.entry(*address).or_default(), write);
    }
}

/// Folds one transaction's write of an account into the account's change over the block.
pub(crate) fn apply_write(change: &mut AccountChange, write: &AccountWrite) {
    apply_account(change, write);
    if let AccountWrite::Updated { storage, .. } = write {
        change.storage.extend(storage.iter().copied());
    }
}

/// Whether `write` wipes the account's earlier storage (destruction or creation).
pub(crate) fn wipes_storage(write: &AccountWrite) -> bool {
    match write {
        AccountWrite::Destroyed => true,
        AccountWrite::Updated { created, .. } => *created,
    }
}

/// Folds the account's part of one transaction's write into its change over the block: its
/// fields and the wipe of its storage, not the slots the write sets.
pub(crate) fn apply_account(change: &mut AccountChange, write: &AccountWrite) {
    if wipes_storage(write) {
        change.storage_cleared = true;
        change.storage.clear();
    }
    match write {
        AccountWrite::Destroyed => change.info = None,
        AccountWrite::Updated {
            info, code_changed, ..
        } => {
            let mut info = info.clone();
            if !code_changed {
                // Keep code only where the block itself deployed it.
                info.code = change
                    .info
                    .as_ref()
                    .filter(|previous| previous.code_hash == info.code_hash)
                    .and_then(|previous| previous.code.clone());
            }
            change.info = Some(info);
        }
    }
}
