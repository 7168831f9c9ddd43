//! The independent reference: a block run serially by alloy-evm's `EthBlockExecutor` over
//! revm's `State`, as a reth-style client runs it, and the comparison of an output with it.
//!
//! Nothing of this crate's executors runs here but the read-only view of the provider; the
//! receipts, requests and state changes come from alloy-evm and revm alone.

use std::collections::{BTreeMap, BTreeSet};

use alloy_consensus::{transaction::Recovered, ReceiptEnvelope, TxEnvelope};
use alloy_eips::eip7685::Requests;
use alloy_evm::{
    block::{BlockExecutionError, BlockExecutionResult, BlockExecutor},
    eth::{receipt_builder::AlloyReceiptBuilder, EthBlockExecutor},
    precompiles::PrecompilesMap,
    EthEvm, Evm, EvmEnv, EvmFactory,
};
use alloy_primitives::{Address, U256};
use revm::database::{
    states::{bundle_state::BundleRetention, reverts::AccountRevert},
    BundleState, State,
};
use revm::database_interface::WrapDatabaseRef;
use revm::inspector::NoOpInspector;
use revm::primitives::KECCAK_EMPTY;
use revm::state::bal::BlockAccessIndex;

use crate::{
    exec::{
        access_list::first_access_list_difference, hooks::check_request_contracts,
        receipts::receipt,
    },
    state::serial_db::SerialDb,
    Block, BlockAccessList, BlockContext, BlockOutput, ChainSpec, StateProvider,
};

/// What an alloy-evm block executor produced for a block over revm's `State`: what a client
/// gets.
#[derive(Debug)]
pub struct ReferenceOutput {
    /// One receipt per transaction.
    pub receipts: Vec<ReceiptEnvelope>,
    /// The block's EIP-7685 requests.
    pub requests: Requests,
    /// Gas used by the block.
    pub gas_used: u64,
    /// revm's bundle of the block's changes, with reverts.
    pub bundle: BundleState,
    /// The access list revm's `State` built (EIP-7928), where the block asks for one.
    pub access_list: Option<BlockAccessList>,
}

impl ReferenceOutput {
    /// The first difference between this output and `other`: a receipt, the gas, the
    /// requests, or in the bundle an account, a contract, a revert or a size; `None` when
    /// they are equal.
    pub fn difference(&self, other: &Self) -> Option<String> {
        if self.receipts.len() != other.receipts.len() {
            return Some(format!(
                "{} receipts, the other has {}",
                self.receipts.len(),
                other.receipts.len()
            ));
        }
        let receipts = self.receipts.iter().zip(&other.receipts).enumerate();
        if let Some((index, (ours, theirs))) = receipts.into_iter().find(|(_, (a, b))| a != b) {
            return Some(format!(
                "tx {index}: receipt {ours:?}, the other {theirs:?}"
            ));
        }
        if self.gas_used != other.gas_used {
            return Some(format!(
                "gas used {}, the other {}",
                self.gas_used, other.gas_used
            ));
        }
        if self.requests != other.requests {
            return Some("requests differ".to_string());
        }
        if let Some(difference) = access_list_difference(&self.access_list, &other.access_list) {
            return Some(difference);
        }
        bundle_difference(&self.bundle, &other.bundle)
    }
}

/// The first difference between two optional access lists.
fn access_list_difference(
    ours: &Option<BlockAccessList>,
    theirs: &Option<BlockAccessList>,
) -> Option<String> {
    match (ours, theirs) {
        (Some(ours), Some(theirs)) => first_access_list_difference(ours, theirs),
        (None, None) => None,
        (Some(_), None) => Some("access list missing from the other".to_string()),
        (None, Some(_)) => Some("access list missing from this one".to_string()),
    }
}

/// One block's reverts, by address.
fn by_address(reverts: &[(Address, AccountRevert)]) -> BTreeMap<Address, &AccountRevert> {
    reverts
        .iter()
        .map(|(address, revert)| (*address, revert))
        .collect()
}

/// The first difference between two bundles, field by field.
fn bundle_difference(ours: &BundleState, theirs: &BundleState) -> Option<String> {
    let addresses: BTreeSet<&Address> = ours.state.keys().chain(theirs.state.keys()).collect();
    for address in addresses {
        let (a, b) = (ours.state.get(address), theirs.state.get(address));
        if a != b {
            return Some(format!("bundle account {address}: {a:?}, the other {b:?}"));
        }
    }
    let codes: BTreeSet<_> = ours
        .contracts
        .keys()
        .chain(theirs.contracts.keys())
        .collect();
    for hash in codes {
        if ours.contracts.get(hash) != theirs.contracts.get(hash) {
            return Some(format!("bundle contract {hash} differs"));
        }
    }
    if ours.reverts.len() != theirs.reverts.len() {
        return Some(format!(
            "reverts of {} blocks, the other {}",
            ours.reverts.len(),
            theirs.reverts.len()
        ));
    }
    for (block, (a, b)) in ours.reverts.iter().zip(theirs.reverts.iter()).enumerate() {
        let (a, b) = (by_address(a), by_address(b));
        let addresses: BTreeSet<&Address> = a.keys().chain(b.keys()).collect();
        for address in addresses {
            let (x, y) = (a.get(address), b.get(address));
            if x != y {
                return Some(format!(
                    "block {block} revert of {address}: {x:?}, the other {y:?}"
                ));
            }
        }
    }
    if (ours.state_size, ours.reverts_size) != (theirs.state_size, theirs.reverts_size) {
        return Some(format!(
            "bundle sizes (state, reverts) ({}, {}), the other ({}, {})",
            ours.state_size, ours.reverts_size, theirs.state_size, theirs.reverts_size
        ));
    }
    None
}

/// The client's database in these runs: the provider, read through revm's `State`.
pub(crate) type ClientDb<'p, P> = WrapDatabaseRef<SerialDb<'p, P>>;

/// The EVM an alloy-evm block executor over revm's `State` runs on (and so the
/// [`ParallelBlockExecutor`](crate::ParallelBlockExecutor)): alloy-evm's Ethereum EVM, as
/// `EthEvmFactory` builds it, without an inspector.
pub type StateEvm<'a, DB> = EthEvm<&'a mut State<DB>, NoOpInspector, PrecompilesMap>;

/// Runs `block`'s transactions `txs` (the signed transactions with their senders) on `chain`
/// through alloy-evm's `EthBlockExecutor` over revm's `State` on `provider`, with the pre- and
/// post-block steps of `ctx`. An invalid block is an error with alloy-evm's message.
pub fn execute_block_reference<'t, P: StateProvider>(
    provider: &P,
    chain: &ChainSpec,
    block: &Block,
    ctx: BlockContext<'_>,
    txs: impl IntoIterator<Item = Recovered<&'t TxEnvelope>>,
) -> Result<ReferenceOutput, String> {
    run_over_state(provider, chain, block, txs, |evm, txs| {
        let mut executor = EthBlockExecutor::new(evm, ctx, chain, AlloyReceiptBuilder::default());
        executor.apply_pre_execution_changes()?;
        // Each step's index in the access list (EIP-7928): 0 before, `i + 1` for transaction
        // `i`, the next one after.
        let count = txs.len() as u64;
        for (index, tx) in (1..).zip(txs) {
            executor
                .evm
                .db_mut()
                .set_bal_index(BlockAccessIndex::new(index));
            executor.execute_transaction(tx)?;
        }
        executor
            .evm
            .db_mut()
            .set_bal_index(BlockAccessIndex::new(count + 1));
        executor.apply_post_execution_changes()
    })
}

/// Runs `block` with `execute` (an executor's `execute_block` on the EVM given) over a fresh
/// revm `State` on `provider` that keeps reverts, and takes its bundle.
pub(crate) fn run_over_state<'t, P: StateProvider>(
    provider: &P,
    chain: &ChainSpec,
    block: &Block,
    txs: impl IntoIterator<Item = Recovered<&'t TxEnvelope>>,
    execute: impl for<'s> FnOnce(
        StateEvm<'s, ClientDb<'_, P>>,
        Vec<Recovered<&'t TxEnvelope>>,
    )
        -> Result<BlockExecutionResult<ReceiptEnvelope>, BlockExecutionError>,
) -> Result<ReferenceOutput, String> {
    let mut state = State::builder()
        .with_database_ref(SerialDb::new(provider))
        .with_bundle_update()
        .with_bal_builder_if(block.access_list)
        .build();
    let evm = alloy_evm::EthEvmFactory::default().create_evm(
        &mut state,
        EvmEnv::new(block.cfg.clone(), block.env.clone()),
    );
    let result = execute(evm, txs.into_iter().collect()).map_err(|e| e.to_string())?;
    // The post-block steps change no code: the contracts lack it now if they lacked it then.
    check_request_contracts(chain, block, &mut state).map_err(|e| e.to_string())?;
    state.merge_transitions(BundleRetention::Reverts);
    Ok(ReferenceOutput {
        receipts: result.receipts,
        requests: result.requests,
        gas_used: result.gas_used,
        access_list: state.take_built_alloy_bal(),
        bundle: state.take_bundle(),
    })
}

impl BlockOutput {
    /// The first difference between this output and the reference's for the same block on
    /// `provider` (the state before it): a receipt field naming the transaction, the gas, the
    /// requests, or an account field or slot; `None` when they agree.
    pub fn reference_difference<P: StateProvider>(
        &self,
        reference: &ReferenceOutput,
        provider: &P,
    ) -> Option<String> {
        if self.results.len() != reference.receipts.len() {
            return Some(format!(
                "{} results, the reference has {} receipts",
                self.results.len(),
                reference.receipts.len()
            ));
        }
        for (index, (result, expected)) in self.results.iter().zip(&reference.receipts).enumerate()
        {
            let actual = receipt(result);
            if actual.status() != expected.status() {
                return Some(format!(
                    "tx {index}: status {}, reference {}",
                    actual.status(),
                    expected.status()
                ));
            }
            if actual.cumulative_gas_used() != expected.cumulative_gas_used() {
                return Some(format!(
                    "tx {index}: cumulative gas {}, reference {}",
                    actual.cumulative_gas_used(),
                    expected.cumulative_gas_used()
                ));
            }
            if actual.logs() != expected.logs() {
                return Some(format!("tx {index}: logs differ from the reference"));
            }
            if actual.tx_type() != expected.tx_type() {
                return Some(format!(
                    "tx {index}: receipt type differs from the reference"
                ));
            }
        }
        if self.gas_used() != reference.gas_used {
            return Some(format!(
                "gas used {}, reference {}",
                self.gas_used(),
                reference.gas_used
            ));
        }
        if self.requests != reference.requests {
            return Some(format!(
                "requests hash {}, reference {}",
                self.requests.requests_hash(),
                reference.requests.requests_hash()
            ));
        }
        if let Some(difference) = access_list_difference(&self.access_list, &reference.access_list)
        {
            return Some(format!("{difference} (the other: the reference)"));
        }
        self.state_difference(&reference.bundle, provider)
    }

    /// The first account or slot whose value after the block differs between this output's
    /// diff and the reference's bundle, both read over `provider`.
    fn state_difference<P: StateProvider>(
        &self,
        bundle: &BundleState,
        provider: &P,
    ) -> Option<String> {
        let addresses: BTreeSet<Address> = self
            .state
            .keys()
            .chain(bundle.state.keys())
            .copied()
            .collect();
        for address in addresses {
            let before = match provider.basic(address) {
                Ok(before) => before,
                Err(e) => return Some(format!("{address}: state read failed: {e}")),
            };
            let (change, account) = (self.state.get(&address), bundle.state.get(&address));
            let unchanged = before.map(|a| (a.balance, a.nonce, a.code_hash));
            let ours = change.map_or(unchanged, |c| {
                c.info.as_ref().map(|i| (i.balance, i.nonce, i.code_hash))
            });
            let theirs = account.map_or(unchanged, |a| {
                a.info.as_ref().map(|i| (i.balance, i.nonce, i.code_hash))
            });
            if ours != theirs {
                return Some(format!(
                    "{address}: (balance, nonce, code hash) {ours:?}, reference {theirs:?}"
                ));
            }
            if ours.is_none() {
                continue;
            }
            let cleared = change.is_some_and(|c| c.storage_cleared);
            let destroyed = account.is_some_and(|a| a.status.was_destroyed());
            // Creating onto an existing account without code wipes storage it cannot have
            // (EIP-7610), which revm's bundle does not record as a wipe.
            let had_code = before.is_some_and(|a| a.code_hash != KECCAK_EMPTY);
            if destroyed && !cleared || cleared && !destroyed && had_code {
                return Some(format!(
                    "{address}: storage wiped {cleared}, reference {destroyed}"
                ));
            }
            let slots: BTreeSet<U256> = change
                .into_iter()
                .flat_map(|c| c.storage.keys())
                .chain(account.into_iter().flat_map(|a| a.storage.keys()))
                .copied()
                .collect();
            for slot in slots {
                let stored = || provider.storage(address, slot).unwrap_or_default();
                let ours = match change.and_then(|c| c.storage.get(&slot)) {
                    Some(value) => *value,
                    None if cleared => U256::ZERO,
                    None => stored(),
                };
                let theirs = match account.and_then(|a| a.storage.get(&slot)) {
                    Some(value) => value.present_value,
                    None if destroyed => U256::ZERO,
                    None => stored(),
                };
                if ours != theirs {
                    return Some(format!(
                        "{address}: slot {slot:#x} = {ours:#x}, reference {theirs:#x}"
                    ));
                }
            }
        }
        None
    }
}
