//! What executing a block produces: per-transaction results, the block's state diff (see
//! [`crate::state::diff`]) and requests, identical in type (and, by the engine's promise, in
//! value) for serial and parallel runs.

use alloy_eips::eip7685::Requests;
use alloy_primitives::{keccak256, Address, Log, B256};
use revm::context::result::{ExecutionResult, HaltReason};

use crate::{access_list_hash, BlockAccessList, StateDiff};

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
    /// Gas used by this transaction, after refunds: what its sender pays for.
    pub gas_used: u64,
    /// The gas it counts against the block's limit: `gas_used` before Amsterdam, from
    /// Amsterdam on its regular gas before refunds (EIP-7778, EIP-8037).
    pub block_gas_used: u64,
    /// The state gas it counts against the block's limit (EIP-8037; zero before Amsterdam).
    pub state_gas_used: u64,
    /// Gas used by the block up to and including this transaction.
    pub cumulative_gas_used: u64,
    /// Logs emitted (empty unless successful).
    pub logs: Vec<Log>,
    /// Address of the contract a creation transaction deployed.
    pub created_address: Option<Address>,
}

impl TxResult {
    /// The result of a transaction of `tx_type` from revm's execution result, in a block that
    /// counts state gas apart or not (`two_dimensional`, EIP-8037); `cumulative_gas_used` is
    /// set by the block executor.
    pub(crate) fn new(tx_type: u8, result: ExecutionResult, two_dimensional: bool) -> Self {
        let gas = result.gas();
        let gas_used = gas.tx_gas_used();
        let (block_gas_used, state_gas_used) = if two_dimensional {
            (gas.block_regular_gas_used(), gas.block_state_gas_used())
        } else {
            (gas_used, 0)
        };
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
            block_gas_used,
            state_gas_used,
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
    /// The block's access list (EIP-7928) where the block asks for it (see
    /// [`Block::access_list`](crate::Block::access_list)); only the transactions' part when
    /// only the transactions ran.
    pub access_list: Option<BlockAccessList>,
}

impl BlockOutput {
    /// The output of a block's transactions alone: no requests.
    pub fn new(results: Vec<TxResult>, state: StateDiff) -> Self {
        Self {
            results,
            state,
            requests: Requests::default(),
            access_list: None,
        }
    }

    /// Gas used by the whole block: the gas after refunds before Amsterdam, from Amsterdam on
    /// the larger of the regular and the state gas (EIP-8037).
    pub fn gas_used(&self) -> u64 {
        let sum = |gas: fn(&TxResult) -> u64| self.results.iter().map(gas).sum::<u64>();
        sum(|r| r.block_gas_used).max(sum(|r| r.state_gas_used))
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
            buf.extend(r.block_gas_used.to_be_bytes());
            buf.extend(r.state_gas_used.to_be_bytes());
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
        if let Some(list) = &self.access_list {
            buf.extend(access_list_hash(list));
        }
        keccak256(buf)
    }
}
