//! The final state of a test chain against the test's `postState`, account by account.

use std::collections::{BTreeMap, HashMap};

use alloy_primitives::{Address, U256};
use pevm_vm::{InMemoryProvider, StateProvider};

use super::format::TestAccount;

/// The first account field where `state` differs from `expected`, as
/// `account 0x..: field: expected X, got Y`; accounts missing from `expected` must not exist.
pub(super) fn compare(
    state: &InMemoryProvider,
    expected: &BTreeMap<Address, TestAccount>,
) -> Result<(), String> {
    let held: BTreeMap<&Address, &HashMap<U256, U256>> = state
        .accounts()
        .map(|(address, _, storage)| (address, storage))
        .collect();
    for (address, want) in expected {
        let mismatch = |field: &str, want: &dyn std::fmt::Debug, got: &dyn std::fmt::Debug| {
            format!("account {address}: {field}: expected {want:?}, got {got:?}")
        };
        let Some(got) = state.basic(*address).map_err(|e| e.to_string())? else {
            return Err(format!("account {address}: missing"));
        };
        if got.balance != want.balance {
            return Err(mismatch("balance", &want.balance, &got.balance));
        }
        if got.nonce != want.nonce.to::<u64>() {
            return Err(mismatch("nonce", &want.nonce.to::<u64>(), &got.nonce));
        }
        let code = state
            .code_by_hash(got.code_hash)
            .map_err(|e| e.to_string())?;
        if code.original_bytes() != want.code {
            return Err(mismatch("code", &want.code, &code.original_bytes()));
        }
        let got_slots: BTreeMap<U256, U256> = held
            .get(address)
            .into_iter()
            .flat_map(|storage| storage.iter())
            .filter(|(_, value)| !value.is_zero())
            .map(|(slot, value)| (*slot, *value))
            .collect();
        let want_slots = want.storage.iter().filter(|(_, value)| !value.is_zero());
        for (slot, value) in want_slots {
            let got = got_slots.get(slot).copied().unwrap_or_default();
            if got != *value {
                return Err(mismatch(&format!("storage {slot:#x}"), value, &got));
            }
        }
        for (slot, value) in &got_slots {
            if !want.storage.contains_key(slot) {
                return Err(mismatch(&format!("storage {slot:#x}"), &U256::ZERO, value));
            }
        }
    }
    if let Some(address) = held.keys().find(|a| !expected.contains_key(**a)) {
        return Err(format!("account {address}: exists, expected absent"));
    }
    Ok(())
}
