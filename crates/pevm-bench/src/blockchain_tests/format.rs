//! The ethereum/tests `BlockchainTests` file format (the parts a replay needs), and loading a
//! file, plain or gzip-compressed.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{BufReader, Read},
    path::Path,
};

use alloy_primitives::{Address, Bytes, B256, U256, U64};
use pevm_vm::{revm::bytecode::Bytecode, BlockAccessList, InMemoryAccount, InMemoryProvider};
use serde::Deserialize;

/// One test: a genesis state, blocks to import, and the expected state after them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TestCase {
    /// The rules the chain runs under (`Cancun`, `ShanghaiToCancunAtTime15k`, ...).
    pub network: String,
    /// The genesis state.
    pub pre: BTreeMap<Address, TestAccount>,
    /// The encoded genesis block.
    #[serde(rename = "genesisRLP")]
    pub genesis_rlp: Bytes,
    /// The blocks, in import order.
    pub blocks: Vec<TestBlock>,
    /// The full state after the last valid block.
    pub post_state: Option<BTreeMap<Address, TestAccount>>,
    /// The state root after the last valid block, for tests too large to list the state.
    pub post_state_hash: Option<B256>,
    /// The hash of the last valid block.
    pub lastblockhash: Option<B256>,
    /// The chain id and blob schedule (execution-spec tests).
    pub config: Option<TestConfig>,
}

/// A test's `config`: chain id and blob parameters by fork name.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestConfig {
    /// The chain id.
    pub chainid: Option<U64>,
    /// Blob parameters by fork name (`Cancun`, `Prague`, `BPO1`, ...).
    #[serde(default)]
    pub blob_schedule: BTreeMap<String, BlobEntry>,
}

/// One fork's blob parameters in a test's `config`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobEntry {
    /// Target blobs per block.
    pub target: U64,
    /// Maximum blobs per block.
    pub max: U64,
    /// The blob base fee update fraction.
    pub base_fee_update_fraction: U64,
}

/// An account of `pre` or `postState`.
#[derive(Debug, Deserialize)]
pub(super) struct TestAccount {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: U64,
    /// Runtime code (`0x` for none).
    pub code: Bytes,
    /// Storage slots.
    pub storage: BTreeMap<U256, U256>,
}

/// A block to import.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TestBlock {
    /// The encoded block.
    pub rlp: Bytes,
    /// Why the block must be rejected, when it must.
    pub expect_exception: Option<String>,
    /// The block's access list (EIP-7928), from Amsterdam on.
    pub block_access_list: Option<BlockAccessList>,
}

/// The tests of one file, by name.
pub(super) fn load(path: &Path) -> Result<BTreeMap<String, TestCase>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("invalid test file: {e}"))
}

/// The genesis state of `pre` as a provider.
pub(super) fn pre_state(pre: &BTreeMap<Address, TestAccount>) -> InMemoryProvider {
    let mut provider = InMemoryProvider::default();
    for (address, account) in pre {
        provider.insert_account(
            *address,
            InMemoryAccount {
                balance: account.balance,
                nonce: account.nonce.to(),
                code: (!account.code.is_empty()).then(|| Bytecode::new_raw(account.code.clone())),
                storage: account
                    .storage
                    .iter()
                    .filter(|(_, value)| !value.is_zero())
                    .map(|(slot, value)| (*slot, *value))
                    .collect(),
            },
        );
    }
    provider
}
