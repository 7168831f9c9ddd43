//! Receipts, the receipts root and logs bloom, and the check against a block header.

use alloy_consensus::{proofs::calculate_receipt_root, Eip658Value, Receipt, ReceiptEnvelope};
use alloy_eips::eip7928::{total_bal_items, ITEM_COST};
use alloy_primitives::{Bloom, B256};

use crate::{access_list_hash, BlockOutput, Hardfork, TxResult};

/// The EIP-2718 receipt of a transaction result (Byzantium status encoding).
pub(crate) fn receipt(result: &TxResult) -> ReceiptEnvelope {
    let receipt = Receipt {
        status: Eip658Value::Eip658(result.is_success()),
        cumulative_gas_used: result.cumulative_gas_used,
        logs: result.logs.clone(),
    }
    .with_bloom();
    match result.tx_type {
        1 => ReceiptEnvelope::Eip2930(receipt),
        2 => ReceiptEnvelope::Eip1559(receipt),
        3 => ReceiptEnvelope::Eip4844(receipt),
        4 => ReceiptEnvelope::Eip7702(receipt),
        _ => ReceiptEnvelope::Legacy(receipt),
    }
}

/// The receipts trie root of a block's results (status receipts, Byzantium and later).
pub fn receipts_root(results: &[TxResult]) -> B256 {
    let receipts: Vec<_> = results.iter().map(receipt).collect();
    calculate_receipt_root(&receipts)
}

/// The OR of every log's bloom in the block.
pub fn logs_bloom(results: &[TxResult]) -> Bloom {
    let mut bloom = Bloom::ZERO;
    for log in results.iter().flat_map(|r| &r.logs) {
        bloom.accrue_log(log);
    }
    bloom
}

/// The first header field a block's output does not reproduce.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderMismatch {
    /// Total gas used differs.
    #[error("gasUsed: header {expected}, executed {actual}")]
    GasUsed {
        /// The header's value.
        expected: u64,
        /// The executed value.
        actual: u64,
    },
    /// The logs bloom differs.
    #[error("logsBloom differs: header {expected}, executed {actual}")]
    LogsBloom {
        /// The header's value.
        expected: Box<Bloom>,
        /// The executed value.
        actual: Box<Bloom>,
    },
    /// The receipts root differs.
    #[error("receiptsRoot: header {expected}, executed {actual}")]
    ReceiptsRoot {
        /// The header's value.
        expected: B256,
        /// The executed value.
        actual: B256,
    },
    /// The block's access list has more items (accounts and slots) than its gas limit allows
    /// at 2,000 gas each (EIP-7928).
    #[error("the block access list has {items} items, more than its gas limit allows")]
    AccessListTooLarge {
        /// Accounts and slots in the list.
        items: u64,
    },
    /// The block access list hash differs (EIP-7928, Amsterdam on).
    #[error("blockAccessListHash: header {expected}, executed {actual}")]
    AccessListHash {
        /// The header's value.
        expected: B256,
        /// The hash of the executed block's access list.
        actual: B256,
    },
    /// The EIP-7685 requests hash differs (Prague on).
    #[error("requestsHash: header {expected}, executed {actual}")]
    RequestsHash {
        /// The header's value.
        expected: B256,
        /// The hash of the executed requests.
        actual: B256,
    },
}

impl BlockOutput {
    /// Checks gas used, logs bloom, (from Byzantium on, where receipts carry a status instead
    /// of a state root) the receipts root, and where the header has them the requests hash
    /// (Prague on) and the access list's hash and size (Amsterdam on) against a block header.
    pub fn check_header(
        &self,
        hardfork: Hardfork,
        header: &alloy_consensus::Header,
    ) -> Result<(), HeaderMismatch> {
        let gas_used = self.gas_used();
        if gas_used != header.gas_used {
            return Err(HeaderMismatch::GasUsed {
                expected: header.gas_used,
                actual: gas_used,
            });
        }
        let bloom = logs_bloom(&self.results);
        if bloom != header.logs_bloom {
            return Err(HeaderMismatch::LogsBloom {
                expected: Box::new(header.logs_bloom),
                actual: Box::new(bloom),
            });
        }
        if hardfork >= Hardfork::Byzantium {
            let root = receipts_root(&self.results);
            if root != header.receipts_root {
                return Err(HeaderMismatch::ReceiptsRoot {
                    expected: header.receipts_root,
                    actual: root,
                });
            }
        }
        if let Some(expected) = header.requests_hash {
            let actual = self.requests.requests_hash();
            if actual != expected {
                return Err(HeaderMismatch::RequestsHash { expected, actual });
            }
        }
        if let Some(expected) = header.block_access_list_hash {
            let list = self.access_list.as_deref().unwrap_or_default();
            let items = total_bal_items(list);
            if items.saturating_mul(ITEM_COST as u64) > header.gas_limit {
                return Err(HeaderMismatch::AccessListTooLarge { items });
            }
            let actual = access_list_hash(list);
            if actual != expected {
                return Err(HeaderMismatch::AccessListHash { expected, actual });
            }
        }
        Ok(())
    }
}
