//! `pevm-bench fetch`: download mainnet blocks from a JSON-RPC node into fixture folders
//! (`<out>/<N>/` with `block.json`, `pre_state.json` and, when needed, `block_hashes.json`).
//!
//! The pre-state comes from `debug_traceBlockByNumber` with geth's prestateTracer when the node
//! offers it, and otherwise from executing the block over the node's state at block N-1, read
//! account by account and slot by slot. Either way the block is replayed over the result and
//! must match its header; the block hashes `BLOCKHASH` asks for are recorded on the way.

mod cli;
mod remote;
pub mod rpc;
pub mod state;
mod write;

use std::{
    collections::BTreeMap,
    fmt, io,
    num::NonZeroUsize,
    ops::RangeInclusive,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, PoisonError,
    },
    thread,
};

use alloy_primitives::B256;
use alloy_rpc_types_eth::Block as RpcBlock;
use pevm_vm::{execute_block_serial, execute_block_with_hooks, Block, ChainSpec, StateProvider};
use serde_json::json;

pub use cli::FetchArgs;
pub use write::STAGING;

use remote::{hex, Remote, RpcState, TracedState};
use rpc::{RpcClient, RpcError};
use state::PreState;

use crate::fixture::rpc_context;

/// Why a block could not be fetched. Displays as one line naming the block.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A call to the node failed.
    #[error("block {block}: {error}{}", pruned_hint(error, *block))]
    Rpc {
        /// The block being fetched.
        block: u64,
        /// The failed call.
        error: RpcError,
    },
    /// The node has no such block, or what it returned does not execute to the header.
    #[error("block {block}: {message}")]
    Block {
        /// The block being fetched.
        block: u64,
        /// What is wrong.
        message: String,
    },
    /// A file or folder could not be written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The failure.
        error: io::Error,
    },
}

fn pruned_hint(error: &RpcError, block: u64) -> String {
    if error.is_state_missing() {
        let parent = block.saturating_sub(1);
        format!(" (the node does not have the state of block {parent}: use an archive node)")
    } else {
        String::new()
    }
}

/// What fetching one block did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The folder was already complete; nothing was fetched.
    Skipped,
    /// The folder was written, with its pre-state from this source.
    Written(Source),
}

/// Where a written pre-state came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `debug_traceBlockByNumber` with the prestateTracer.
    Trace,
    /// Executing the block over state read from the node, because the trace was not usable.
    StateReads {
        /// Why the trace was not used.
        reason: String,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Skipped => f.write_str("skipped (already fetched)"),
            Self::Written(Source::Trace) => f.write_str("written (pre-state traced)"),
            Self::Written(Source::StateReads { reason }) => {
                write!(f, "written (pre-state from state reads: {reason})")
            }
        }
    }
}

/// A block's pre-state and the block hashes it reads.
struct Fetched {
    pre_state: PreState,
    hashes: BTreeMap<u64, B256>,
}

/// Fetches block `number` into `out/<number>/`, unless that folder is already complete.
/// Nothing is left in `out` when it fails.
pub fn fetch_block(client: &RpcClient, number: u64, out: &Path) -> Result<Outcome, FetchError> {
    let dir = out.join(number.to_string());
    if write::is_complete(&dir) {
        return Ok(Outcome::Skipped);
    }
    if dir.exists() {
        return Err(FetchError::Io {
            path: dir,
            error: io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists but is not a complete block folder (remove it to fetch the block)",
            ),
        });
    }
    let raw = client
        .call("eth_getBlockByNumber", json!([hex(number), true]))
        .map_err(|error| rpc_error(number, error))?;
    if raw.is_null() {
        return Err(block_error(number, "eth_getBlockByNumber: no such block"));
    }
    let rpc_block: RpcBlock = serde_json::from_value(raw.clone())
        .map_err(|e| block_error(number, format!("eth_getBlockByNumber: not a block: {e}")))?;
    let block = Block::from_rpc_mainnet(&rpc_block).map_err(|e| block_error(number, e))?;
    let (fetched, source) = match traced(client, number, &block, &rpc_block)? {
        Ok(fetched) => (fetched, Source::Trace),
        Err(reason) => (
            read_state(client, number, &block, &rpc_block)?,
            Source::StateReads { reason },
        ),
    };
    write::write_block_dir(
        out,
        number,
        &raw,
        &fetched.pre_state.to_json(),
        &fetched.hashes,
    )?;
    Ok(Outcome::Written(source))
}

/// Fetches every block of `blocks` (both ends included), `jobs` at a time, calling `done` as
/// each one finishes. Returns the outcomes in block order.
pub fn fetch_range(
    client: &RpcClient,
    blocks: RangeInclusive<u64>,
    out: &Path,
    jobs: NonZeroUsize,
    done: &(dyn Fn(u64, &Result<Outcome, FetchError>) + Sync),
) -> Vec<(u64, Result<Outcome, FetchError>)> {
    let (start, end) = blocks.into_inner();
    let next = AtomicU64::new(start);
    let results = Mutex::new(Vec::new());
    let count = end.saturating_sub(start).saturating_add(1);
    let workers = jobs.get().min(usize::try_from(count).unwrap_or(usize::MAX));
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let number = next.fetch_add(1, Ordering::Relaxed);
                if number > end || number < start {
                    break;
                }
                let outcome = fetch_block(client, number, out);
                done(number, &outcome);
                results
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((number, outcome));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(PoisonError::into_inner);
    results.sort_by_key(|(number, _)| *number);
    results
}

/// Parses `N`, or an inclusive range `N..M` (also written `N..=M`).
pub fn parse_range(text: &str) -> Result<RangeInclusive<u64>, String> {
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("{s:?} is not a block number"))
    };
    let (start, end) = match text.split_once("..") {
        Some((start, end)) => (
            number(start)?,
            number(end.strip_prefix('=').unwrap_or(end))?,
        ),
        None => (number(text)?, number(text)?),
    };
    if end < start {
        return Err(format!("the range {text} is empty"));
    }
    Ok(start..=end)
}

/// The pre-state from `debug_traceBlockByNumber`, checked by replaying the block over it; the
/// inner error says why it is not usable (so the state is to be read instead).
fn traced(
    client: &RpcClient,
    number: u64,
    block: &Block,
    rpc_block: &RpcBlock,
) -> Result<Result<Fetched, String>, FetchError> {
    let params = json!([hex(number), {"tracer": "prestateTracer"}]);
    let traces = match client.call("debug_traceBlockByNumber", params) {
        Ok(traces) => traces,
        Err(error) if error.is_method_missing() => return Ok(Err(error.to_string())),
        Err(error) => return Err(rpc_error(number, error)),
    };
    let pre_state = match PreState::from_traces(&traces) {
        Ok(pre_state) => pre_state,
        Err(e) => return Ok(Err(format!("unusable trace: {e}"))),
    };
    let remote = Remote::new(client);
    let provider = TracedState {
        state: pre_state.provider(),
        remote: &remote,
    };
    let checked = check(&provider, block, rpc_block);
    if let Some(error) = remote.take_error() {
        return Err(rpc_error(number, error));
    }
    Ok(match checked {
        Ok(()) => Ok(Fetched {
            hashes: remote.hashes(),
            pre_state,
        }),
        Err(e) => Err(format!("the traced pre-state {e}")),
    })
}

/// The pre-state recorded while executing the block over the node's state at block N-1.
fn read_state(
    client: &RpcClient,
    number: u64,
    block: &Block,
    rpc_block: &RpcBlock,
) -> Result<Fetched, FetchError> {
    let remote = Remote::new(client);
    let state = RpcState::new(&remote, number.saturating_sub(1));
    let checked = check(&state, block, rpc_block);
    if let Some(error) = remote.take_error() {
        return Err(rpc_error(number, error));
    }
    checked.map_err(|e| block_error(number, format!("the state read from the node {e}")))?;
    Ok(Fetched {
        hashes: remote.hashes(),
        pre_state: state.into_pre_state(),
    })
}

/// Whether the block, with the system calls and balance changes around its transactions,
/// executes over `state` and matches the header (requests hash included); the error
/// completes a sentence. What the system calls read is recorded like the transactions' reads.
fn check<P: StateProvider>(state: &P, block: &Block, rpc_block: &RpcBlock) -> Result<(), String> {
    let output = execute_block_with_hooks(
        state,
        &ChainSpec::mainnet(),
        block,
        rpc_context(rpc_block),
        |p, b| execute_block_serial(p, b),
    )
    .map_err(|e| format!("does not execute: {e}"))?;
    output
        .check_header(block.hardfork, &rpc_block.header.inner)
        .map_err(|e| format!("does not replay to the header: {e}"))
}

fn rpc_error(block: u64, error: RpcError) -> FetchError {
    FetchError::Rpc { block, error }
}

fn block_error(block: u64, message: impl fmt::Display) -> FetchError {
    FetchError::Block {
        block,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_include_both_ends() {
        assert_eq!(parse_range("7"), Ok(7..=7));
        assert_eq!(parse_range("7..9"), Ok(7..=9));
        assert_eq!(parse_range("7..=9"), Ok(7..=9));
        assert!(parse_range("9..7").is_err());
        assert!(parse_range("0x7").is_err());
    }
}
