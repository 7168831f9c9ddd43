//! What executing a block produces: per-transaction results and the block's state diff,
//! identical in type (and, by the engine's promise, in value) for serial and parallel runs.

use std::collections::BTreeMap;

use alloy_eips::eip7685::Requests;
use alloy_primitives::{keccak256, Address, Log, B256, U256};
use revm::{
    bytecode::Bytecode,
    context::result::{ExecutionResult, HaltReason},
    primitives::KECCAK_EMPTY,
    state::{EvmState, EvmStorageSlot},
};

/// How a transaction ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// Executed to completion.
    Success,
    /// Reverted (`REVERT`): state changes undone, gas paid.
    Revert,
    /// Halted by an exceptional condition (out of gas, invalid opcode, ...): all gas paid.
    Halt(HaltReason),
}

/// The result of one transaction: what its receipt holds, and more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxResult {
    /// EIP-2718 type (0 legacy, 1 access list, 2 dynamic fee, 3 blob, 4 set code).
    pub tx_type: u8,
    /// Success, revert or halt.
    pub status: TxStatus,
    /// Gas used by this transaction, after refunds.
    pub gas_used: u64,
    /// Gas used by the block up to and including this transaction.
    pub cumulative_gas_used: u64,
    /// Logs emitted (empty unless successful).
    pub logs: Vec<Log>,
    /// Address of the contract a creation transaction deployed.
    pub created_address: Option<Address>,
}

impl TxResult {
    /// The result of a transaction of `tx_type` from revm's execution result;
    /// `cumulative_gas_used` is set by the block executor.
    pub(crate) fn new(tx_type: u8, result: ExecutionResult) -> Self {
        let gas_used = result.tx_gas_used();
        let created_address = result.created_address();
        let (status, logs) = match result {
            ExecutionResult::Success { logs, .. } => (TxStatus::Success, logs),
            ExecutionResult::Revert { logs, .. } => (TxStatus::Revert, logs),
            ExecutionResult::Halt { reason, logs, .. } => (TxStatus::Halt(reason), logs),
        };
        Self {
            tx_type,
            status,
            gas_used,
            cumulative_gas_used: 0,
            logs,
            created_address,
        }
    }

    /// Whether the transaction succeeded (receipt status 1).
    pub fn is_success(&self) -> bool {
        self.status == TxStatus::Success
    }
}

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

/// Everything a block's execution produces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockOutput {
    /// One result per transaction, in block order.
    pub results: Vec<TxResult>,
    /// The state changes of the whole block.
    pub state: StateDiff,
    /// The block's EIP-7685 requests (deposits, withdrawals, consolidations), from Prague on;
    /// empty when only the transactions ran.
    pub requests: Requests,
}

impl BlockOutput {
    /// The output of a block's transactions alone: no requests.
    pub fn new(results: Vec<TxResult>, state: StateDiff) -> Self {
        Self {
            results,
            state,
            requests: Requests::default(),
        }
    }

    /// Gas used by the whole block.
    pub fn gas_used(&self) -> u64 {
        self.results.last().map_or(0, |r| r.cumulative_gas_used)
    }

    /// A keccak-256 digest of every result and every state change: equal digests mean equal
    /// outputs, whatever produced them.
    pub fn digest(&self) -> B256 {
        let mut buf = Vec::with_capacity(256 * (self.results.len() + self.state.len()));
        for r in &self.results {
            buf.push(r.tx_type);
            match &r.status {
                TxStatus::Success => buf.push(1),
                TxStatus::Revert => buf.push(0),
                TxStatus::Halt(reason) => buf.extend(format!("halt:{reason:?}").bytes()),
            }
            buf.extend(r.gas_used.to_be_bytes());
            buf.extend(r.cumulative_gas_used.to_be_bytes());
            buf.extend(r.created_address.unwrap_or_default());
            for log in &r.logs {
                buf.extend(log.address);
                for topic in log.topics() {
                    buf.extend(topic);
                }
                buf.extend((log.data.data.len() as u64).to_be_bytes());
                buf.extend(&log.data.data);
            }
        }
        for (address, change) in &self.state {
            buf.extend(address);
            if let Some(info) = &change.info {
                buf.extend(info.balance.to_be_bytes::<32>());
                buf.extend(info.nonce.to_be_bytes());
                buf.extend(info.code_hash);
                buf.extend(
                    info.code
                        .as_ref()
                        .map(|c| c.original_bytes())
                        .unwrap_or_default(),
                );
            }
            buf.push(change.storage_cleared as u8);
            for (slot, value) in &change.storage {
                buf.extend(slot.to_be_bytes::<32>());
                buf.extend(value.to_be_bytes::<32>());
            }
        }
        for request in self.requests.iter() {
            buf.extend((request.len() as u64).to_be_bytes());
            buf.extend(request);
        }
        keccak256(buf)
    }
}

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
        let code = info.code.clone().filter(|_| info.code_hash != KECCAK_EMPTY);
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
    match write {
        AccountWrite::Destroyed => {
            change.info = None;
            change.storage_cleared = true;
            change.storage.clear();
        }
        AccountWrite::Updated {
            info,
            code_changed,
            created,
            storage,
            ..
        } => {
            if *created {
                change.storage_cleared = true;
                change.storage.clear();
            }
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
            change.storage.extend(storage.iter().copied());
        }
    }
}
