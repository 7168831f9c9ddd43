//! The state before a block as `pre_state.json` holds it: built from prestateTracer traces or
//! from recorded state reads, written in the fixture format.

use std::collections::{btree_map::Entry, BTreeMap};

use alloy_primitives::{Address, Bytes, B256, U256};
use pevm_vm::{revm::bytecode::Bytecode, InMemoryAccount, InMemoryProvider};
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

/// One account before the block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreAccount {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Runtime code (empty for none).
    pub code: Bytes,
    /// The slots the block reads or writes, with their values before the block.
    pub storage: BTreeMap<U256, U256>,
}

impl PreAccount {
    /// An account the prestateTracer would not list: no balance, nonce, code or storage.
    fn is_empty(&self) -> bool {
        self.balance.is_zero()
            && self.nonce == 0
            && self.code.is_empty()
            && self.storage.values().all(U256::is_zero)
    }
}

/// The accounts a block touches, as they were before it (`pre_state.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreState(pub BTreeMap<Address, PreAccount>);

impl PreState {
    /// Merges the per-transaction results of `debug_traceBlockByNumber` with the
    /// prestateTracer. Transaction k's prestate shows the state after transactions 0..k, so the
    /// first transaction that reports an account (or a slot) has its value before the block.
    pub fn from_traces(traces: &Value) -> Result<Self, String> {
        let traces = traces
            .as_array()
            .ok_or("the trace is not an array of per-transaction results")?;
        let mut accounts = BTreeMap::new();
        for (index, trace) in traces.iter().enumerate() {
            let Some(result) = trace.get("result").and_then(Value::as_object) else {
                let error = trace.get("error").map_or("no result", |e| {
                    e.as_str().unwrap_or("an error that is not a string")
                });
                return Err(format!("tx {index}: {error}"));
            };
            for (address, account) in result {
                let address: Address = decode(&json!(address), "address")?;
                let account = traced_account(account).map_err(|e| format!("{address:#x}: {e}"))?;
                match accounts.entry(address) {
                    Entry::Vacant(entry) => {
                        entry.insert(account);
                    }
                    Entry::Occupied(mut entry) => {
                        let storage = &mut entry.get_mut().storage;
                        for (slot, value) in account.storage {
                            storage.entry(slot).or_insert(value);
                        }
                    }
                }
            }
        }
        Ok(Self::from_accounts(accounts))
    }

    /// The existing accounts among `accounts` (empty ones did not exist before the block).
    pub fn from_accounts(mut accounts: BTreeMap<Address, PreAccount>) -> Self {
        accounts.retain(|_, account| !account.is_empty());
        Self(accounts)
    }

    /// An in-memory provider holding this state (and no block hashes).
    pub fn provider(&self) -> InMemoryProvider {
        let mut provider = InMemoryProvider::default();
        for (address, account) in &self.0 {
            let code = (!account.code.is_empty()).then(|| Bytecode::new_raw(account.code.clone()));
            provider.insert_account(
                *address,
                InMemoryAccount {
                    balance: account.balance,
                    nonce: account.nonce,
                    code,
                    storage: account.storage.iter().map(|(k, v)| (*k, *v)).collect(),
                },
            );
        }
        provider
    }

    /// `pre_state.json`: lower-case addresses in order, `nonce` a JSON integer, `code` and
    /// `storage` only when there are some, slots and values as 32-byte hex.
    pub fn to_json(&self) -> Value {
        let accounts: Map<String, Value> = self
            .0
            .iter()
            .map(|(address, account)| {
                let mut entry = json!({
                    "balance": format!("{:#x}", account.balance),
                    "nonce": account.nonce,
                });
                if !account.code.is_empty() {
                    entry["code"] = json!(account.code.to_string());
                }
                if !account.storage.is_empty() {
                    let storage: Map<String, Value> = account
                        .storage
                        .iter()
                        .map(|(slot, value)| (word(*slot), json!(word(*value))))
                        .collect();
                    entry["storage"] = Value::Object(storage);
                }
                (format!("{address:#x}"), entry)
            })
            .collect();
        Value::Object(accounts)
    }
}

/// `value` as 32-byte lower-case hex.
pub fn word(value: U256) -> String {
    format!("{:#x}", B256::from(value))
}

/// One account of a prestateTracer result (fields absent when zero or empty).
fn traced_account(account: &Value) -> Result<PreAccount, String> {
    let field = |name: &str| account.get(name).filter(|v| !v.is_null());
    let storage = match field("storage") {
        Some(Value::Object(slots)) => slots
            .iter()
            .map(|(slot, value)| Ok((decode(&json!(slot), "slot")?, decode(value, "value")?)))
            .collect::<Result<_, String>>()?,
        Some(_) => return Err("storage is not an object".into()),
        None => BTreeMap::new(),
    };
    Ok(PreAccount {
        balance: field("balance").map_or(Ok(U256::ZERO), |v| decode(v, "balance"))?,
        nonce: field("nonce").map_or(Ok(0), quantity)?,
        code: field("code").map_or(Ok(Bytes::new()), |v| decode(v, "code"))?,
        storage,
    })
}

/// A nonce written as a JSON integer (geth) or a hex quantity string.
pub fn quantity(value: &Value) -> Result<u64, String> {
    let parsed = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s
            .strip_prefix("0x")
            .and_then(|hex| u64::from_str_radix(hex, 16).ok()),
        _ => None,
    };
    parsed.ok_or_else(|| format!("{value} is not a quantity"))
}

/// Deserialises `value`, naming `what` it should have been on failure.
pub fn decode<T: DeserializeOwned>(value: &Value, what: &str) -> Result<T, String> {
    serde_json::from_value(value.clone()).map_err(|e| format!("{value} is not a valid {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0x00000000000000000000000000000000000000aa";
    const B: &str = "0x00000000000000000000000000000000000000bb";
    const SLOT1: &str = "0x0000000000000000000000000000000000000000000000000000000000000001";
    const SLOT2: &str = "0x0000000000000000000000000000000000000000000000000000000000000002";
    const ZERO: &str = "0x0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn the_first_transaction_reporting_an_account_or_slot_wins() {
        let traces = json!([
            {"txHash": "0x01", "result": {
                A: {"balance": "0x10", "nonce": 1, "storage": {SLOT1: SLOT2}},
                B: {"balance": "0x0"}
            }},
            {"txHash": "0x02", "result": {
                A: {"balance": "0x5", "nonce": 2, "storage": {SLOT1: ZERO, SLOT2: SLOT1}},
                B: {"balance": "0x7", "nonce": "0x3"}
            }}
        ]);
        let state = PreState::from_traces(&traces).unwrap();
        let a = &state.0[&A.parse::<Address>().unwrap()];
        assert_eq!((a.balance, a.nonce), (U256::from(0x10), 1));
        assert_eq!(
            a.storage,
            BTreeMap::from([
                (U256::from(1), U256::from(2)),
                (U256::from(2), U256::from(1))
            ])
        );
        // B was reported empty first: it did not exist before the block.
        assert_eq!(state.0.len(), 1);
        assert_eq!(
            state.to_json(),
            json!({A: {"balance": "0x10", "nonce": 1, "storage": {SLOT1: SLOT2, SLOT2: SLOT1}}})
        );
    }

    #[test]
    fn a_failed_transaction_trace_is_an_error() {
        let traces = json!([{"error": "execution timeout"}]);
        assert_eq!(
            PreState::from_traces(&traces).unwrap_err(),
            "tx 0: execution timeout"
        );
    }
}
