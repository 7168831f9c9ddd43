//! The block a pevm executor runs: revm's block and transaction environments and the rules
//! they execute under, built from an alloy RPC block or by hand.

use alloy_consensus::{Transaction as _, Typed2718 as _};
use alloy_primitives::U256;
use alloy_rpc_types_eth::{Block as RpcBlock, BlockTransactions, Transaction as RpcTransaction};
use revm::context::{BlockEnv, CfgEnv, TxEnv};

use crate::Hardfork;

/// A block to execute: environment, rules and transactions.
#[derive(Clone, Debug)]
pub struct Block {
    /// The hardfork whose rules apply.
    pub hardfork: Hardfork,
    /// The chain id (`CHAINID`, EIP-155 checks).
    pub chain_id: u64,
    /// Number, beneficiary, timestamp, gas limit, base fee, randomness and blob price.
    pub env: BlockEnv,
    /// Transactions in block order.
    pub txs: Vec<TxEnv>,
}

/// Why an RPC block could not be turned into a [`Block`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockConversionError {
    /// The block lists transaction hashes only.
    #[error("the block lists transaction hashes, not full transactions")]
    HashesOnly,
    /// A Cancun (or later) block without `excessBlobGas`.
    #[error("the {0} block has no excessBlobGas")]
    MissingExcessBlobGas(&'static str),
}

impl Block {
    /// The revm configuration for this block's rules.
    pub fn cfg(&self) -> CfgEnv {
        let mut cfg = CfgEnv::new_with_spec(self.hardfork.spec_id()).with_chain_id(self.chain_id);
        if let Some(params) = self.hardfork.blob_params() {
            cfg.max_blobs_per_tx = Some(params.max_blobs_per_tx);
            cfg.blob_base_fee_update_fraction = Some(params.update_fraction as u64);
        }
        cfg
    }

    /// A mainnet block from `eth_getBlockByNumber(n, true)`, hardfork picked by number and time.
    pub fn from_rpc_mainnet(block: &RpcBlock) -> Result<Self, BlockConversionError> {
        let header = &block.header;
        Self::from_rpc(block, Hardfork::mainnet(header.number, header.timestamp), 1)
    }

    /// A block from `eth_getBlockByNumber(n, true)` under the given rules.
    pub fn from_rpc(
        block: &RpcBlock,
        hardfork: Hardfork,
        chain_id: u64,
    ) -> Result<Self, BlockConversionError> {
        let txs = match &block.transactions {
            BlockTransactions::Full(txs) => txs.iter().map(tx_env).collect(),
            BlockTransactions::Uncle => Vec::new(),
            BlockTransactions::Hashes(hashes) if hashes.is_empty() => Vec::new(),
            BlockTransactions::Hashes(_) => return Err(BlockConversionError::HashesOnly),
        };
        let header = &block.header;
        let mut env = BlockEnv {
            number: U256::from(header.number),
            beneficiary: header.beneficiary,
            timestamp: U256::from(header.timestamp),
            gas_limit: header.gas_limit,
            basefee: header.base_fee_per_gas.unwrap_or_default(),
            difficulty: header.difficulty,
            prevrandao: (hardfork >= Hardfork::Paris).then_some(header.mix_hash),
            blob_excess_gas_and_price: None,
            slot_num: 0,
        };
        if let Some(params) = hardfork.blob_params() {
            let excess = header
                .excess_blob_gas
                .ok_or(BlockConversionError::MissingExcessBlobGas(hardfork.name()))?;
            env.set_blob_excess_gas_and_price(excess, params.update_fraction as u64);
        }
        Ok(Self {
            hardfork,
            chain_id,
            env,
            txs,
        })
    }
}

/// revm's transaction environment for an RPC transaction (any type: legacy with or without
/// EIP-155 chain id, EIP-2930, EIP-1559, EIP-4844, EIP-7702).
pub fn tx_env(tx: &RpcTransaction) -> TxEnv {
    let envelope = tx.inner.inner();
    let mut env = TxEnv {
        tx_type: envelope.ty(),
        caller: tx.inner.signer(),
        gas_limit: envelope.gas_limit(),
        gas_price: envelope.max_fee_per_gas(),
        kind: envelope.kind(),
        value: envelope.value(),
        data: envelope.input().clone(),
        nonce: envelope.nonce(),
        chain_id: envelope.chain_id(),
        access_list: envelope.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: envelope.max_priority_fee_per_gas(),
        blob_hashes: envelope
            .blob_versioned_hashes()
            .map(<[_]>::to_vec)
            .unwrap_or_default(),
        max_fee_per_blob_gas: envelope.max_fee_per_blob_gas().unwrap_or_default(),
        ..TxEnv::default()
    };
    if let Some(auths) = envelope.authorization_list() {
        env.set_signed_authorization(auths.to_vec());
    }
    env
}
