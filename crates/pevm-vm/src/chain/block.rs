//! The block a pevm executor runs: revm's block and transaction environments and the rules
//! they execute under, built from an alloy RPC block or by hand.

use alloy_consensus::{BlockHeader, Header, TxEnvelope};
use alloy_evm::{EvmEnv, FromRecoveredTx};
use alloy_primitives::Address;
use alloy_rpc_types_eth::{Block as RpcBlock, BlockTransactions, Transaction as RpcTransaction};
use revm::{
    context::{BlockEnv, CfgEnv, TxEnv},
    primitives::hardfork::SpecId,
};

use crate::{ChainSpec, Hardfork};

/// A block to execute: environment, rules and transactions.
#[derive(Clone, Debug)]
pub struct Block {
    /// The latest hardfork active at this block (for naming and for rules outside revm).
    pub hardfork: Hardfork,
    /// revm's configuration: rule set, chain id, blob and transaction gas limits.
    pub cfg: CfgEnv,
    /// Number, beneficiary, timestamp, gas limit, base fee, randomness and blob price.
    pub env: BlockEnv,
    /// Transactions in block order.
    pub txs: Vec<TxEnv>,
    /// Whether executing the block returns its access list (EIP-7928): from Amsterdam on, where
    /// the header commits to it, always; before, when asked.
    pub access_list: bool,
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
    /// A block with this environment and these transactions on `chain`; the rules and revm's
    /// configuration are alloy-evm's for the block's number and timestamp.
    pub fn new(chain: &ChainSpec, env: BlockEnv, txs: Vec<TxEnv>) -> Self {
        let header = Header {
            number: env.number.saturating_to(),
            timestamp: env.timestamp.saturating_to(),
            beneficiary: env.beneficiary,
            gas_limit: env.gas_limit,
            base_fee_per_gas: Some(env.basefee),
            difficulty: env.difficulty,
            mix_hash: env.prevrandao.unwrap_or_default(),
            excess_blob_gas: env.blob_excess_gas_and_price.map(|b| b.excess_blob_gas),
            ..Header::default()
        };
        let (hardfork, cfg, _) = rules(chain, &header);
        Self {
            access_list: hardfork >= Hardfork::Amsterdam,
            hardfork,
            cfg,
            env,
            txs,
        }
    }

    /// A mainnet block from `eth_getBlockByNumber(n, true)`, hardfork picked by number and time.
    pub fn from_rpc_mainnet(block: &RpcBlock) -> Result<Self, BlockConversionError> {
        Self::from_rpc(block, &ChainSpec::mainnet())
    }

    /// A block from `eth_getBlockByNumber(n, true)` on `chain`.
    pub fn from_rpc(block: &RpcBlock, chain: &ChainSpec) -> Result<Self, BlockConversionError> {
        let txs = match &block.transactions {
            BlockTransactions::Full(txs) => txs.iter().map(tx_env).collect(),
            BlockTransactions::Uncle => Vec::new(),
            BlockTransactions::Hashes(hashes) if hashes.is_empty() => Vec::new(),
            BlockTransactions::Hashes(_) => return Err(BlockConversionError::HashesOnly),
        };
        Self::from_header(&block.header, chain, txs)
    }

    /// A block with this consensus header and these transactions on `chain`: environment and
    /// configuration from alloy-evm (`EvmEnv::for_eth_block`).
    pub fn from_header(
        header: &Header,
        chain: &ChainSpec,
        txs: Vec<TxEnv>,
    ) -> Result<Self, BlockConversionError> {
        let (hardfork, cfg, env) = rules(chain, header);
        if chain.blob_params_at(header.timestamp).is_some() && header.excess_blob_gas.is_none() {
            return Err(BlockConversionError::MissingExcessBlobGas(hardfork.name()));
        }
        Ok(Self {
            access_list: hardfork >= Hardfork::Amsterdam,
            hardfork,
            cfg,
            env,
            txs,
        })
    }
}

/// The fork, revm configuration and block environment alloy-evm derives for `header`.
fn rules(chain: &ChainSpec, header: &Header) -> (Hardfork, CfgEnv, BlockEnv) {
    let blob_params = chain.blob_params_at(header.timestamp);
    let env = EvmEnv::for_eth_block(header, chain, chain.chain_id, blob_params);
    let hardfork = chain.hardfork_at(header.number(), header.timestamp());
    (hardfork, env.cfg_env, env.block_env)
}

/// revm's transaction environment for an RPC transaction (any type: legacy with or without
/// EIP-155 chain id, EIP-2930, EIP-1559, EIP-4844, EIP-7702).
pub fn tx_env(tx: &RpcTransaction) -> TxEnv {
    signed_tx_env(tx.inner.inner(), tx.inner.signer())
}

/// revm's transaction environment for a signed transaction sent by `sender` (its recovered
/// signer), built by alloy-evm; EIP-7702 authorities are recovered here, once per block rather
/// than on every execution of the transaction.
pub fn signed_tx_env(envelope: &TxEnvelope, sender: Address) -> TxEnv {
    TxEnv::from_recovered_tx(envelope, sender)
}

/// The block-wide facts that lazy payments follow: who is paid the fees, whether a touched
/// empty account is removed, and whether a transfer to an empty account costs more.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockFacts {
    /// The fee recipient, whose account is materialised only when really read.
    pub(crate) beneficiary: Address,
    /// Whether EIP-161 (removal of touched empty accounts) applies.
    pub(crate) eip161: bool,
    /// Whether a transfer to an empty account costs state gas (EIP-8037, Amsterdam on).
    pub(crate) empty_costs: bool,
}

impl BlockFacts {
    /// The facts of `block`.
    pub(crate) fn new(block: &Block) -> Self {
        Self {
            beneficiary: block.env.beneficiary,
            eip161: block.cfg.spec.is_enabled_in(SpecId::SPURIOUS_DRAGON),
            empty_costs: block.cfg.enable_amsterdam_eip8037,
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{address, b256, TxKind, U256};

    use super::*;

    /// An RPC transaction of `type` with extra fields, as a node returns it.
    fn rpc_tx(extra: &str) -> RpcTransaction {
        let json = format!(
            r#"{{"hash":"0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060",
            "from":"0xa1e4380a3b1f749673e270229993ee55f35663b4","nonce":"0x7","gas":"0x5208",
            "to":"0x5df9b87991262f6ba471f09758cde1c0fc1de734","value":"0x7a69","input":"0x1234",
            "r":"0x1","s":"0x2",{extra}}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    const SENDER: alloy_primitives::Address = address!("a1e4380a3b1f749673e270229993ee55f35663b4");

    fn assert_common(tx: &TxEnv, tx_type: u8) {
        assert_eq!(tx.tx_type, tx_type);
        assert_eq!(tx.caller, SENDER);
        assert_eq!(tx.nonce, 7);
        assert_eq!(tx.gas_limit, 21_000);
        assert_eq!(tx.value, U256::from(0x7a69));
        assert_eq!(tx.data.as_ref(), &[0x12, 0x34]);
        assert_eq!(
            tx.kind,
            TxKind::Call(address!("5df9b87991262f6ba471f09758cde1c0fc1de734"))
        );
    }

    #[test]
    fn legacy_without_chain_id() {
        let tx = tx_env(&rpc_tx(r#""type":"0x0","gasPrice":"0x10","v":"0x1b""#));
        assert_common(&tx, 0);
        assert_eq!(tx.chain_id, None);
        assert_eq!(tx.gas_price, 16);
        assert_eq!(tx.gas_priority_fee, None);
    }

    #[test]
    fn legacy_with_eip155_chain_id() {
        let tx = tx_env(&rpc_tx(
            r#""type":"0x0","gasPrice":"0x10","v":"0x25","chainId":"0x1""#,
        ));
        assert_common(&tx, 0);
        assert_eq!(tx.chain_id, Some(1));
    }

    #[test]
    fn access_list_transaction() {
        let tx = tx_env(&rpc_tx(
            r#""type":"0x1","gasPrice":"0x10","chainId":"0x1","yParity":"0x0","v":"0x0",
            "accessList":[{"address":"0x5df9b87991262f6ba471f09758cde1c0fc1de734",
            "storageKeys":["0x0000000000000000000000000000000000000000000000000000000000000001"]}]"#,
        ));
        assert_common(&tx, 1);
        assert_eq!(tx.gas_price, 16);
        assert_eq!(tx.access_list.0.len(), 1);
        assert_eq!(tx.access_list.0[0].storage_keys.len(), 1);
    }

    #[test]
    fn dynamic_fee_transaction() {
        let tx = tx_env(&rpc_tx(
            r#""type":"0x2","maxFeePerGas":"0x30","maxPriorityFeePerGas":"0x3","gasPrice":"0x20",
            "chainId":"0x1","yParity":"0x1","v":"0x1","accessList":[]"#,
        ));
        assert_common(&tx, 2);
        assert_eq!(
            tx.gas_price, 0x30,
            "revm takes the fee cap, not the effective price"
        );
        assert_eq!(tx.gas_priority_fee, Some(3));
    }

    #[test]
    fn blob_transaction() {
        let tx = tx_env(&rpc_tx(
            r#""type":"0x3","maxFeePerGas":"0x30","maxPriorityFeePerGas":"0x3","chainId":"0x1",
            "yParity":"0x0","v":"0x0","accessList":[],"maxFeePerBlobGas":"0x9",
            "blobVersionedHashes":["0x01a915e4d060149eb4365960e6a7a45f334393093061116b197e3240065ff2d8"]"#,
        ));
        assert_common(&tx, 3);
        assert_eq!(tx.max_fee_per_blob_gas, 9);
        assert_eq!(
            tx.blob_hashes,
            vec![b256!(
                "01a915e4d060149eb4365960e6a7a45f334393093061116b197e3240065ff2d8"
            )]
        );
    }

    #[test]
    fn set_code_transaction() {
        let tx = tx_env(&rpc_tx(
            r#""type":"0x4","maxFeePerGas":"0x30","maxPriorityFeePerGas":"0x3","chainId":"0x1",
            "yParity":"0x0","v":"0x0","accessList":[],"authorizationList":[{"chainId":"0x1",
            "address":"0x5df9b87991262f6ba471f09758cde1c0fc1de734","nonce":"0x8","yParity":"0x1",
            "r":"0x3","s":"0x4"}]"#,
        ));
        assert_common(&tx, 4);
        assert_eq!(tx.authorization_list.len(), 1);
    }

    #[test]
    fn hashes_only_block_is_rejected() {
        let mut block: RpcBlock = serde_json::from_str(
            r#"{"hash":"0x4e3a3754410177e6937ef1f84bba68ea139e8d1a2258c5f85db9f1cd715a1bdd",
            "parentHash":"0x5a41d0e66b4120775176c09fcf39e7c0520517a13d2b57b18d33d342df038bfc",
            "sha3Uncles":"0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347",
            "miner":"0xe6a7a1d47ff21b6321162aea7c6cb457d5476bca",
            "stateRoot":"0x0e0df2706b0a4fb8bd08c9246d472abbe850af446405d9eba1db41db18b4a169",
            "transactionsRoot":"0x4513310fcb9f6f616972a3b948dc5d547f280849a87ebb5af0191f98b87be598",
            "receiptsRoot":"0xfe2bf2a941abf41d72637e5b91750332a30283efd40c424dc522b77e6f0ed8c4",
            "logsBloom":"0x00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
            "difficulty":"0x1","number":"0x1312d00","gasLimit":"0x1c9c380","gasUsed":"0x0",
            "timestamp":"0x6650c5e7","extraData":"0x","nonce":"0x0000000000000000",
            "mixHash":"0x0000000000000000000000000000000000000000000000000000000000000002",
            "baseFeePerGas":"0x7","uncles":[],"transactions":[]}"#,
        )
        .unwrap();
        // A Cancun block must carry its excess blob gas.
        assert_eq!(
            Block::from_rpc_mainnet(&block).unwrap_err(),
            BlockConversionError::MissingExcessBlobGas("Cancun")
        );
        block.header.inner.excess_blob_gas = Some(0);
        let converted = Block::from_rpc_mainnet(&block).unwrap();
        assert_eq!(converted.hardfork, Hardfork::Cancun);
        assert_eq!(converted.env.basefee, 7);
        assert_eq!(converted.env.prevrandao, Some(block.header.mix_hash));
        block.transactions = BlockTransactions::Hashes(vec![block.header.hash]);
        assert_eq!(
            Block::from_rpc_mainnet(&block).unwrap_err(),
            BlockConversionError::HashesOnly
        );
    }
}
