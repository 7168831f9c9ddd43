//! Loading a mainnet block folder: `block.json`, `pre_state.json`, optional `block_hashes.json`,
//! each plain or gzip-compressed (`.json.gz`).

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    fs::File,
    io::{BufReader, Read},
    path::{Path, PathBuf},
};

use alloy_consensus::{transaction::Recovered, TxEnvelope};
use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_rpc_types_eth::Block as RpcBlock;
use pevm_vm::{
    block_context, revm::bytecode::Bytecode, Block, BlockContext, InMemoryAccount, InMemoryProvider,
};
use serde::{de::DeserializeOwned, Deserialize};

/// A block folder that could not be loaded: the file, and what is wrong with it.
#[derive(Debug)]
pub struct FixtureError {
    /// The file (or folder) at fault.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for FixtureError {}

/// A loaded block folder: the RPC block, the executable block, and its pre-state.
#[derive(Debug)]
pub struct Fixture {
    /// The folder it came from.
    pub dir: PathBuf,
    /// `block.json` as the node returned it (the header to check against).
    pub rpc_block: RpcBlock,
    /// The block to execute.
    pub block: Block,
    /// The state before the block.
    pub provider: InMemoryProvider,
}

/// One account of `pre_state.json` (geth's prestateTracer shape).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreAccount {
    #[serde(default)]
    balance: U256,
    #[serde(default)]
    nonce: u64,
    #[serde(default)]
    code: Option<Bytes>,
    #[serde(default)]
    storage: HashMap<B256, B256>,
}

/// Whether `dir` holds a block (a `block.json` or `block.json.gz`).
pub fn is_block_dir(dir: &Path) -> bool {
    find(dir, "block.json").is_some()
}

/// The block folders under `path`: `path` itself if it is one, else its sub-folders that are,
/// in block-number order (names that are not numbers last, by name).
pub fn block_dirs(path: &Path) -> Result<Vec<PathBuf>, FixtureError> {
    if is_block_dir(path) {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| error(path, e))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && is_block_dir(p))
        .collect();
    if dirs.is_empty() {
        return Err(error(path, "no block folder (with a block.json) here"));
    }
    dirs.sort_by_key(|p| {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        (name.parse::<u64>().unwrap_or(u64::MAX), name)
    });
    Ok(dirs)
}

impl Fixture {
    /// Loads the block folder `dir`.
    pub fn load(dir: &Path) -> Result<Self, FixtureError> {
        let block_path = require(dir, "block.json")?;
        let rpc_block: RpcBlock = read_json(&block_path)?;
        let block = Block::from_rpc_mainnet(&rpc_block).map_err(|e| error(&block_path, e))?;

        let state_path = require(dir, "pre_state.json")?;
        let pre_state: BTreeMap<Address, PreAccount> = read_json(&state_path)?;
        let mut provider = InMemoryProvider::default();
        for (address, account) in pre_state {
            let storage = account
                .storage
                .into_iter()
                .map(|(slot, value)| (U256::from_be_bytes(slot.0), U256::from_be_bytes(value.0)))
                .collect();
            let code = account
                .code
                .filter(|c| !c.is_empty())
                .map(Bytecode::new_raw);
            provider.insert_account(
                address,
                InMemoryAccount {
                    balance: account.balance,
                    nonce: account.nonce,
                    code,
                    storage,
                },
            );
        }

        if let Some(path) = find(dir, "block_hashes.json") {
            let hashes: BTreeMap<String, B256> = read_json(&path)?;
            for (number, hash) in hashes {
                let number = number.parse().map_err(|_| {
                    error(&path, format!("{number:?} is not a decimal block number"))
                })?;
                provider.insert_block_hash(number, hash);
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            rpc_block,
            block,
            provider,
        })
    }

    /// The block number.
    pub fn number(&self) -> u64 {
        self.rpc_block.header.number
    }

    /// What the steps around the block's transactions need (see [`rpc_context`]).
    pub fn context(&self) -> BlockContext<'_> {
        rpc_context(&self.rpc_block)
    }

    /// The signed transactions with their senders, as the block lists them.
    pub fn signed_txs(&self) -> Vec<Recovered<&TxEnvelope>> {
        self.rpc_block
            .transactions
            .txns()
            .map(|tx| tx.inner.as_recovered_ref())
            .collect()
    }
}

/// What the steps around an RPC block's transactions need: the parent hash and beacon root,
/// and the withdrawals. An RPC block names its uncles by hash only, so no uncle is rewarded.
pub fn rpc_context(rpc_block: &RpcBlock) -> BlockContext<'_> {
    let withdrawals = rpc_block.withdrawals.as_ref().map(|w| w.as_slice());
    block_context(&rpc_block.header, &[], withdrawals)
}

fn error(path: &Path, message: impl fmt::Display) -> FixtureError {
    FixtureError {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// `dir/name`, or `dir/name.gz`, whichever exists.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Some(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    gz.is_file().then_some(gz)
}

fn require(dir: &Path, name: &str) -> Result<PathBuf, FixtureError> {
    find(dir, name).ok_or_else(|| error(&dir.join(name), "missing (neither it nor its .gz exists)"))
}

/// Reads and deserialises a JSON file, gunzipping a `.gz` one.
fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, FixtureError> {
    let file = File::open(path).map_err(|e| error(path, e))?;
    let mut reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).map_err(|e| error(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| error(path, format!("invalid JSON: {e}")))
}
