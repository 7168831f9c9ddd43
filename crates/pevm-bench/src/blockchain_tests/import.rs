//! Importing one block of a test chain: decode its RLP, recover senders, check the header
//! against its parent, execute serially and in parallel (with the pre/post-block hooks),
//! check the header against the output, and commit.

use std::num::NonZeroUsize;

use alloy_consensus::{
    transaction::SignerRecoverable, Header, Transaction as _, TxEip4844Variant, TxEnvelope,
};
use alloy_eips::eip4844::DATA_GAS_PER_BLOB;
use alloy_primitives::B256;
use alloy_rlp::Decodable;
use pevm_vm::{
    execute_block_serial, execute_block_with_hooks, signed_tx_env, Block, BlockHooks, Hardfork,
    InMemoryProvider, Ommer, Pevm, Strategy,
};

use crate::replay::first_difference;

/// A decoded block of a test chain.
pub type ConsensusBlock = alloy_consensus::Block<TxEnvelope>;

/// Why a block was not imported.
#[derive(Debug)]
pub enum ImportError {
    /// The block is invalid (a client rejects it); the chain stays where it was.
    Rejected(String),
    /// The block executed, but the state after it has another root than its header says;
    /// a client rejects it too. `head` is the chain with the block, for a caller expecting the
    /// block to carry on and name the account at fault.
    WrongStateRoot {
        /// The header's root and the computed one.
        message: String,
        /// The chain head after the block.
        head: Box<Head>,
    },
    /// Parallel execution differed from serial: an engine bug, whatever the block.
    ParallelMismatch(String),
}

/// The chain head a block is imported onto.
#[derive(Debug)]
pub struct Head {
    /// The state after the head block.
    pub state: InMemoryProvider,
    /// The head block's header.
    pub header: Header,
    /// Its hash.
    pub hash: B256,
}

impl Head {
    /// The genesis head: `state` and the genesis block `rlp`, whose state root must be
    /// `state`'s.
    pub fn genesis(state: InMemoryProvider, rlp: &[u8]) -> Result<Self, String> {
        let block = decode(rlp).map_err(|e| format!("genesis: {e}"))?;
        let root = state.state_root();
        if root != block.header.state_root {
            return Err(format!(
                "genesis: stateRoot: header {}, pre-state {root}",
                block.header.state_root
            ));
        }
        let hash = block.header.hash_slow();
        let mut state = state;
        state.insert_block_hash(block.header.number, hash);
        Ok(Self {
            state,
            header: block.header,
            hash,
        })
    }
}

/// Decodes a whole block; trailing bytes are an error.
pub fn decode(mut rlp: &[u8]) -> Result<ConsensusBlock, String> {
    let block = ConsensusBlock::decode(&mut rlp).map_err(|e| format!("RLP: {e}"))?;
    if !rlp.is_empty() {
        return Err(format!("RLP: {} trailing bytes", rlp.len()));
    }
    Ok(block)
}

/// Imports `rlp` onto `head` under `schedule` (the hardfork at a timestamp), running the
/// parallel executor on `threads`. On success `head` is the new block; on failure it is
/// unchanged.
pub fn import(
    head: &mut Head,
    rlp: &[u8],
    schedule: impl Fn(u64) -> Hardfork,
    threads: NonZeroUsize,
) -> Result<(), ImportError> {
    let rejected = ImportError::Rejected;
    let decoded = decode(rlp).map_err(rejected)?;
    let header = &decoded.header;
    let hardfork = schedule(header.timestamp);
    check_parent(head, header, hardfork).map_err(rejected)?;
    let txs = decoded
        .body
        .transactions
        .iter()
        .enumerate()
        .map(|(index, tx)| {
            // Frontier accepts high-s signatures (EIP-2 came with Homestead).
            let sender = if hardfork >= Hardfork::Homestead {
                tx.recover_signer()
            } else {
                tx.recover_signer_unchecked()
            };
            sender
                .map(|sender| signed_tx_env(tx, sender))
                .map_err(|e| format!("tx {index}: sender recovery: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(rejected)?;
    check_body(&decoded, hardfork).map_err(rejected)?;
    let block =
        Block::from_header(header, hardfork, 1, txs).map_err(|e| rejected(e.to_string()))?;
    let hooks = BlockHooks {
        withdrawals: decoded.body.withdrawals.clone().unwrap_or_default().0,
        ommers: decoded
            .body
            .ommers
            .iter()
            .map(|ommer| Ommer {
                beneficiary: ommer.beneficiary,
                number: ommer.number,
            })
            .collect(),
        ..BlockHooks::from_header(header)
    };

    let state = &head.state;
    let serial = execute_block_with_hooks(state, &block, &hooks, |p, b| execute_block_serial(p, b));
    let parallel = execute_block_with_hooks(state, &block, &hooks, |p, b| {
        Pevm::new(threads).force(Strategy::BlockStm).execute(p, b)
    });
    if serial != parallel {
        let difference = first_difference(&serial, &parallel);
        return Err(ImportError::ParallelMismatch(difference));
    }
    let output = serial.map_err(|e| rejected(e.to_string()))?;
    output
        .check_header(hardfork, header)
        .map_err(|e| rejected(e.to_string()))?;
    check_blob_gas_used(&block, header).map_err(rejected)?;

    let mut state = head.state.clone();
    state.commit(&output.state);
    let hash = header.hash_slow();
    state.insert_block_hash(header.number, hash);
    let root = state.state_root();
    let new_head = Head {
        state,
        header: decoded.header,
        hash,
    };
    if root != new_head.header.state_root {
        let message = format!(
            "stateRoot: header {}, computed {root}",
            new_head.header.state_root
        );
        return Err(ImportError::WrongStateRoot {
            message,
            head: Box::new(new_head),
        });
    }
    *head = new_head;
    Ok(())
}

/// Header checks against the parent: linkage, and from Cancun on the excess blob gas.
fn check_parent(head: &Head, header: &Header, hardfork: Hardfork) -> Result<(), String> {
    if header.parent_hash != head.hash || header.number != head.header.number + 1 {
        return Err(format!(
            "block {} (parent {}) does not extend the head {} ({})",
            header.number, header.parent_hash, head.header.number, head.hash
        ));
    }
    if let Some(params) = hardfork.blob_params() {
        let parent = &head.header;
        let target = params.target_blob_count * DATA_GAS_PER_BLOB;
        let expected = (parent.excess_blob_gas.unwrap_or_default()
            + parent.blob_gas_used.unwrap_or_default())
        .saturating_sub(target);
        if header.excess_blob_gas != Some(expected) {
            return Err(format!(
                "excessBlobGas: header {:?}, expected {expected}",
                header.excess_blob_gas
            ));
        }
    }
    Ok(())
}

/// Body checks: no blob sidecars, withdrawals exactly from Shanghai on, the header fields of the fork present,
/// and from Cancun on the blob gas within the block's limit.
fn check_body(block: &ConsensusBlock, hardfork: Hardfork) -> Result<(), String> {
    let header = &block.header;
    let with_sidecar = block.body.transactions.iter().position(|tx| {
        matches!(tx, TxEnvelope::Eip4844(signed)
            if matches!(signed.tx(), TxEip4844Variant::TxEip4844WithSidecar(_)))
    });
    if let Some(index) = with_sidecar {
        return Err(format!(
            "tx {index}: a blob transaction with its sidecar in a block"
        ));
    }
    let shanghai = hardfork >= Hardfork::Shanghai;
    if block.body.withdrawals.is_some() != shanghai || header.withdrawals_root.is_some() != shanghai
    {
        return Err(format!(
            "withdrawals present/absent wrongly for {hardfork:?}"
        ));
    }
    let cancun = hardfork >= Hardfork::Cancun;
    let cancun_fields = [
        header.blob_gas_used.is_some(),
        header.excess_blob_gas.is_some(),
        header.parent_beacon_block_root.is_some(),
    ];
    if cancun_fields.iter().any(|present| *present != cancun) {
        return Err(format!(
            "blob/beacon-root header fields wrong for {hardfork:?}"
        ));
    }
    if let Some(params) = hardfork.blob_params() {
        let blobs: u64 = block
            .body
            .transactions
            .iter()
            .filter_map(|tx| tx.blob_versioned_hashes())
            .map(|hashes| hashes.len() as u64)
            .sum();
        if blobs > params.max_blob_count {
            return Err(format!(
                "{blobs} blobs, more than the block maximum {}",
                params.max_blob_count
            ));
        }
    }
    Ok(())
}

/// The header's `blobGasUsed` against the block's blobs.
fn check_blob_gas_used(block: &Block, header: &Header) -> Result<(), String> {
    let Some(used) = header.blob_gas_used else {
        return Ok(());
    };
    let blobs: u64 = block.txs.iter().map(|tx| tx.blob_hashes.len() as u64).sum();
    if used != blobs * DATA_GAS_PER_BLOB {
        return Err(format!(
            "blobGasUsed: header {used}, block {}",
            blobs * DATA_GAS_PER_BLOB
        ));
    }
    Ok(())
}
