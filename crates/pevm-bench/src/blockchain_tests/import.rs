//! Importing one block of a test chain: decode its RLP, check the header against its parent
//! and the body, recover senders, execute serially, in parallel and through alloy-evm's
//! reference executor (each with the pre/post-block steps), check the header against the
//! output, and commit.

use std::num::NonZeroUsize;

use alloy_consensus::{
    constants::MAXIMUM_EXTRA_DATA_SIZE,
    proofs::{calculate_ommers_root, calculate_transaction_root, calculate_withdrawals_root},
    transaction::{Recovered, SignerRecoverable},
    Header, Transaction as _, TxEip4844Variant, TxEnvelope,
};
use alloy_eips::{
    eip1559::{
        calculate_block_gas_limit, BaseFeeParams, DEFAULT_ELASTICITY_MULTIPLIER, INITIAL_BASE_FEE,
    },
    eip4844::DATA_GAS_PER_BLOB,
};
use alloy_hardforks::EthereumHardforks;
use alloy_primitives::{Address, B256};
use alloy_rlp::Decodable;
use pevm_vm::{
    access_list_hash,
    alloy_evm::block::{
        BUILDER_DEPOSIT_REQUEST_PREDEPLOY_ADDRESS, BUILDER_EXIT_REQUEST_PREDEPLOY_ADDRESS,
    },
    block_context, execute_block_embedded, execute_block_reference, execute_block_serial,
    execute_block_with_hooks, first_access_list_difference, signed_tx_env, Block, BlockAccessList,
    BlockContext, BlockOutput, ChainSpec, ExecutionError, Hardfork, HeaderMismatch,
    InMemoryProvider, ParallelBlockExecutorFactory, Pevm, Strategy,
};

use crate::replay::first_difference;

/// A decoded block of a test chain.
pub(super) type ConsensusBlock = alloy_consensus::Block<TxEnvelope>;

/// Why a block was not imported.
#[derive(Debug)]
pub(super) enum ImportError {
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
    /// Serial execution differed from alloy-evm's `EthBlockExecutor` over revm's `State`.
    ReferenceMismatch(String),
}

/// The chain head a block is imported onto.
#[derive(Debug)]
pub(super) struct Head {
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
    pub(super) fn genesis(state: InMemoryProvider, rlp: &[u8]) -> Result<Self, String> {
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
pub(super) fn decode(mut rlp: &[u8]) -> Result<ConsensusBlock, String> {
    let block = ConsensusBlock::decode(&mut rlp).map_err(|e| format!("RLP: {e}"))?;
    if !rlp.is_empty() {
        return Err(format!("RLP: {} trailing bytes", rlp.len()));
    }
    Ok(block)
}

/// alloy-evm 0.39 calls EIP-8282's builder-request contracts after every Amsterdam block; the
/// devnet releases before EIP-8282 do not, so their lists lack these two addresses.
pub(super) const NO_EIP8282: &str = "alloy-evm 0.39 makes EIP-8282's builder-request system \
calls after each Amsterdam block, which this test's Amsterdam lacks: the block access list also \
names those two contracts, and hashes to the header's without them";

/// The EIP-8282 contracts alloy-evm calls after an Amsterdam block.
const EIP8282_CONTRACTS: [Address; 2] = [
    BUILDER_DEPOSIT_REQUEST_PREDEPLOY_ADDRESS,
    BUILDER_EXIT_REQUEST_PREDEPLOY_ADDRESS,
];

/// Imports `rlp` onto `head` on `chain`, running the parallel executor on `threads`. On
/// success `head` is the new block, and the known gap it was imported despite, if any (see
/// [`NO_EIP8282`]); on failure it is unchanged.
///
/// The block is validated against its parent as a client does, executed serially, in
/// parallel and by alloy-evm's reference executor (all three must agree), and checked
/// against its header.
pub(super) fn import(
    head: &mut Head,
    rlp: &[u8],
    listed: Option<&BlockAccessList>,
    chain: &ChainSpec,
    threads: NonZeroUsize,
) -> Result<Option<&'static str>, ImportError> {
    let rejected = ImportError::Rejected;
    let decoded = decode(rlp).map_err(rejected)?;
    let header = &decoded.header;
    let hardfork = chain.hardfork_at(header.number, header.timestamp);
    check_parent(head, header, chain).map_err(rejected)?;
    check_body(&decoded, rlp.len(), chain).map_err(rejected)?;
    let signed = recover_senders(&decoded, hardfork).map_err(rejected)?;
    let txs = signed
        .iter()
        .map(|tx| signed_tx_env(tx.inner(), tx.signer()))
        .collect();
    let block = Block::from_header(header, chain, txs).map_err(|e| rejected(e.to_string()))?;
    let body = &decoded.body;
    let withdrawals = body.withdrawals.as_ref().map(|w| w.as_slice());
    let ctx = block_context(header, &body.ommers, withdrawals);

    let output = execute_checked(&head.state, chain, &block, ctx, &signed, listed, threads)?;
    let mut gap = None;
    if let Err(mismatch) = output.check_header(hardfork, header) {
        let mut message = mismatch.to_string();
        let ours = output.access_list.as_deref().unwrap_or_default();
        if let HeaderMismatch::AccessListHash { expected, .. } = mismatch {
            let without: Vec<_> = ours
                .iter()
                .filter(|a| !EIP8282_CONTRACTS.contains(&a.address))
                .cloned()
                .collect();
            if access_list_hash(&without) == expected {
                gap = Some(NO_EIP8282);
            }
            // What differs from the list the test gives.
            if let Some(difference) = listed.and_then(|l| first_access_list_difference(ours, l)) {
                message = format!("{message}; against the test's blockAccessList: {difference}");
            }
        }
        if gap.is_none() {
            return Err(rejected(message));
        }
    }

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
    Ok(gap)
}

/// The block's transactions with their senders recovered from their signatures (Frontier
/// accepts high-s signatures: EIP-2 came with Homestead).
fn recover_senders(
    decoded: &ConsensusBlock,
    hardfork: Hardfork,
) -> Result<Vec<Recovered<&TxEnvelope>>, String> {
    decoded
        .body
        .transactions
        .iter()
        .enumerate()
        .map(|(index, tx)| {
            let sender = if hardfork >= Hardfork::Homestead {
                tx.recover_signer()
            } else {
                tx.recover_signer_unchecked()
            };
            sender
                .map(|sender| Recovered::new_unchecked(tx, sender))
                .map_err(|e| format!("tx {index}: sender recovery: {e}"))
        })
        .collect()
}

/// `block` (its transactions `signed`, its steps `ctx`) on `state`, executed serially, in
/// parallel on `threads` (on Block-STM, and with the block's own access list `listed` where it
/// has one), by alloy-evm's reference executor and by the engine through alloy-evm's
/// `BlockExecutor`: the serial output when all agree. A block whose list is wrong for its
/// transactions is rejected.
fn execute_checked(
    state: &InMemoryProvider,
    chain: &ChainSpec,
    block: &Block,
    ctx: BlockContext<'_>,
    signed: &[Recovered<&TxEnvelope>],
    listed: Option<&BlockAccessList>,
    threads: NonZeroUsize,
) -> Result<BlockOutput, ImportError> {
    let rejected = ImportError::Rejected;
    let serial = execute_block_with_hooks(state, chain, block, ctx.clone(), |p, b| {
        execute_block_serial(p, b)
    });
    let parallel = execute_block_with_hooks(state, chain, block, ctx.clone(), |p, b| {
        Pevm::new(threads).force(Strategy::BlockStm).execute(p, b)
    });
    if serial != parallel {
        let difference = first_difference(&serial, &parallel);
        return Err(ImportError::ParallelMismatch(difference));
    }
    if let Some(list) = listed {
        let with_list = execute_block_with_hooks(state, chain, block, ctx.clone(), |p, b| {
            let listed = Pevm::new(threads).execute_with_access_list(p, b, list);
            listed.map(|(output, _)| output)
        });
        match with_list {
            Err(error @ ExecutionError::AccessList { .. }) => {
                return Err(rejected(error.to_string()))
            }
            with_list if with_list != serial => {
                let difference = first_difference(&serial, &with_list);
                return Err(ImportError::ParallelMismatch(format!(
                    "with the block's access list: {difference}"
                )));
            }
            _ => {}
        }
    }
    let reference =
        execute_block_reference(state, chain, block, ctx.clone(), signed.iter().copied());
    // The engine as a client embeds it: through alloy-evm's `BlockExecutor` over revm's `State`.
    let factory = ParallelBlockExecutorFactory::new(
        chain.clone(),
        Pevm::new(threads).force(Strategy::BlockStm),
    );
    let embedded = execute_block_embedded(&factory, state, block, ctx, signed.iter().copied());
    match (&reference, &embedded) {
        (Ok(reference), Ok(embedded)) => {
            if let Some(difference) = embedded.difference(reference) {
                return Err(ImportError::ReferenceMismatch(format!(
                    "through BlockExecutor: {difference}"
                )));
            }
        }
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => {
            return Err(ImportError::ReferenceMismatch(format!(
                "through BlockExecutor: only one of it and the reference failed: {e}"
            )))
        }
    }
    let output = match (serial, reference) {
        (Ok(output), Ok(reference)) => {
            if let Some(difference) = output.reference_difference(&reference, state) {
                return Err(ImportError::ReferenceMismatch(difference));
            }
            output
        }
        (Err(e), Err(_)) => return Err(rejected(e.to_string())),
        (Ok(_), Err(e)) => {
            return Err(ImportError::ReferenceMismatch(format!(
                "executed, but the reference rejected the block: {e}"
            )))
        }
        (Err(e), Ok(_)) => {
            return Err(ImportError::ReferenceMismatch(format!(
                "rejected ({e}), but the reference executed the block"
            )))
        }
    };
    Ok(output)
}

/// geth's floor for a block's gas limit (consensus rule since Frontier; alloy-eips has the
/// bound divisor but not this floor).
const MIN_GAS_LIMIT: u64 = 5_000;

/// EIP-7934 (Osaka): the largest RLP-encoded block, 10 MiB less a 2 MiB margin for the beacon
/// block around it (not in alloy-eips 2.5).
const MAX_RLP_BLOCK_SIZE: usize = 8 * 1024 * 1024;

/// Header checks against the parent, as a client makes them before executing: linkage,
/// timestamp, extra data, gas limit bounds and change, base fee (EIP-1559), excess blob gas
/// (EIP-4844/7918 with the block's blob parameters), and the proof-of-stake constants.
fn check_parent(head: &Head, header: &Header, chain: &ChainSpec) -> Result<(), String> {
    let parent = &head.header;
    if header.parent_hash != head.hash || header.number != parent.number + 1 {
        return Err(format!(
            "block {} (parent {}) does not extend the head {} ({})",
            header.number, header.parent_hash, parent.number, head.hash
        ));
    }
    if header.timestamp <= parent.timestamp {
        return Err(format!(
            "timestamp {} not after the parent's {}",
            header.timestamp, parent.timestamp
        ));
    }
    if header.extra_data.len() > MAXIMUM_EXTRA_DATA_SIZE {
        return Err(format!("extraData of {} bytes", header.extra_data.len()));
    }
    if header.gas_used > header.gas_limit {
        return Err(format!(
            "gasUsed {} above gasLimit {}",
            header.gas_used, header.gas_limit
        ));
    }
    let london = chain.is_london_active_at_block(header.number);
    let london_starts = london && !chain.is_london_active_at_block(parent.number);
    // The first London block doubles the gas target: its limit is bounded by twice the parent's.
    let parent_limit = if london_starts {
        parent.gas_limit * DEFAULT_ELASTICITY_MULTIPLIER
    } else {
        parent.gas_limit
    };
    if header.gas_limit < MIN_GAS_LIMIT
        || calculate_block_gas_limit(parent_limit, header.gas_limit) != header.gas_limit
    {
        return Err(format!(
            "gasLimit {} out of bounds for the parent's {parent_limit}",
            header.gas_limit
        ));
    }
    let base_fee = if !london {
        None
    } else if london_starts {
        Some(INITIAL_BASE_FEE)
    } else {
        parent.next_block_base_fee(BaseFeeParams::ethereum())
    };
    if header.base_fee_per_gas != base_fee {
        return Err(format!(
            "baseFeePerGas: header {:?}, expected {base_fee:?}",
            header.base_fee_per_gas
        ));
    }
    if let Some(params) = chain.blob_params_at(header.timestamp) {
        let expected = parent.next_block_excess_blob_gas(params).unwrap_or(0);
        if header.excess_blob_gas != Some(expected) {
            return Err(format!(
                "excessBlobGas: header {:?}, expected {expected}",
                header.excess_blob_gas
            ));
        }
    }
    if chain.is_paris_active_at_block(header.number)
        && (!header.difficulty.is_zero() || !header.nonce.is_zero())
    {
        return Err("a proof-of-stake block with difficulty or nonce".to_string());
    }
    Ok(())
}

/// Body checks: the header's roots of the transactions, ommers and withdrawals, no blob
/// sidecars, the header fields of each fork present exactly from that fork on (withdrawals
/// from Shanghai, blob gas and beacon root from Cancun, requests hash from Prague), no ommers
/// after the Merge, the blob gas within the block's limit and equal to the header's, and from
/// Osaka on the block's encoded size (EIP-7934).
fn check_body(block: &ConsensusBlock, size: usize, chain: &ChainSpec) -> Result<(), String> {
    let header = &block.header;
    let body = &block.body;
    let (number, timestamp) = (header.number, header.timestamp);
    let with_sidecar = body.transactions.iter().position(|tx| {
        matches!(tx, TxEnvelope::Eip4844(signed)
            if matches!(signed.tx(), TxEip4844Variant::TxEip4844WithSidecar(_)))
    });
    if let Some(index) = with_sidecar {
        return Err(format!(
            "tx {index}: a blob transaction with its sidecar in a block"
        ));
    }
    let transactions_root = calculate_transaction_root(&body.transactions);
    if transactions_root != header.transactions_root {
        return Err(format!(
            "transactionsRoot: header {}, body {transactions_root}",
            header.transactions_root
        ));
    }
    let ommers_hash = calculate_ommers_root(&body.ommers);
    if ommers_hash != header.ommers_hash {
        return Err(format!(
            "ommersHash: header {}, body {ommers_hash}",
            header.ommers_hash
        ));
    }
    if chain.is_paris_active_at_block(number) && !body.ommers.is_empty() {
        return Err("ommers in a proof-of-stake block".to_string());
    }
    let shanghai = chain.is_shanghai_active_at_timestamp(timestamp);
    if body.withdrawals.is_some() != shanghai || header.withdrawals_root.is_some() != shanghai {
        return Err("withdrawals present/absent wrongly for the fork".to_string());
    }
    if let (Some(withdrawals), Some(root)) = (&body.withdrawals, header.withdrawals_root) {
        let computed = calculate_withdrawals_root(withdrawals);
        if computed != root {
            return Err(format!("withdrawalsRoot: header {root}, body {computed}"));
        }
    }
    let cancun = chain.is_cancun_active_at_timestamp(timestamp);
    let cancun_fields = [
        header.blob_gas_used.is_some(),
        header.excess_blob_gas.is_some(),
        header.parent_beacon_block_root.is_some(),
    ];
    if cancun_fields.iter().any(|present| *present != cancun) {
        return Err("blob/beacon-root header fields wrong for the fork".to_string());
    }
    if header.requests_hash.is_some() != chain.is_prague_active_at_timestamp(timestamp) {
        return Err("requestsHash present/absent wrongly for the fork".to_string());
    }
    if let Some(params) = chain.blob_params_at(timestamp) {
        let blobs: u64 = body
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
        if header.blob_gas_used != Some(blobs * DATA_GAS_PER_BLOB) {
            return Err(format!(
                "blobGasUsed: header {:?}, block {}",
                header.blob_gas_used,
                blobs * DATA_GAS_PER_BLOB
            ));
        }
    }
    if chain.is_osaka_active_at_timestamp(timestamp) && size > MAX_RLP_BLOCK_SIZE {
        return Err(format!(
            "{size} bytes of RLP, more than EIP-7934's {MAX_RLP_BLOCK_SIZE}"
        ));
    }
    Ok(())
}
