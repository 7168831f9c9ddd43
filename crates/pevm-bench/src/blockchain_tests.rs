//! `pevm-bench blockchain-tests`: ethereum/tests `BlockchainTests` replayed through the
//! serial and the parallel executor, every block's state root and the final state checked.

mod format;
mod import;
mod post_state;
mod report;

pub use report::{command, Counts, Summary};

use std::{
    num::NonZeroUsize,
    path::{Path, PathBuf},
};

use alloy_eips::eip7840::BlobParams;
use alloy_hardforks::ForkCondition;
use pevm_vm::{ChainSpec, Hardfork};
use serde_json::{json, Value};

use self::{
    format::{TestCase, TestConfig},
    import::{Head, ImportError},
};

/// How one test ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every block imported or was rejected as expected, and the final state matched.
    Passed,
    /// The first thing that went wrong: block, account and field where known.
    Failed(String),
    /// Failed where a known limitation of revm explains it (named), and the parallel run
    /// agreed with the serial one.
    Limited {
        /// What went wrong.
        message: String,
        /// The limitation.
        limitation: &'static str,
    },
}

/// The result of one test.
#[derive(Clone, Debug)]
pub struct TestResult {
    /// The test's name.
    pub test: String,
    /// The file holding it.
    pub file: PathBuf,
    /// The file's folder, relative to the path the run was given.
    pub folder: String,
    /// The test's `network`.
    pub network: String,
    /// How it ended.
    pub outcome: Outcome,
}

impl TestResult {
    /// The result as one JSON object: `test`, `file`, `network`, `passed`, and `error` when
    /// it did not pass.
    pub fn to_json(&self) -> Value {
        let mut row = json!({
            "test": self.test,
            "file": self.file.display().to_string(),
            "network": self.network,
            "passed": self.outcome == Outcome::Passed,
        });
        match &self.outcome {
            Outcome::Passed => {}
            Outcome::Failed(error) => row["error"] = json!(error),
            Outcome::Limited {
                message,
                limitation,
            } => {
                row["error"] = json!(message);
                row["limitation"] = json!(limitation);
            }
        }
        row
    }
}

/// The test files under `path` (itself if it is a file): `*.json` and `*.json.gz`, in path
/// order.
pub fn test_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                dirs.push(path);
            } else if name.ends_with(".json") || name.ends_with(".json.gz") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Runs every test of the file `file`, found under `root`; a file that cannot be loaded is
/// one failed result named after it.
pub fn run_file(file: &Path, root: &Path, threads: NonZeroUsize) -> Vec<TestResult> {
    let folder = match file.parent().and_then(|dir| dir.strip_prefix(root).ok()) {
        Some(relative) if !relative.as_os_str().is_empty() => relative.display().to_string(),
        _ => root
            .file_name()
            .unwrap_or(root.as_os_str())
            .to_string_lossy()
            .into_owned(),
    };
    let result = |test: String, network: String, outcome| TestResult {
        test,
        file: file.to_path_buf(),
        folder: folder.clone(),
        network,
        outcome,
    };
    match format::load(file) {
        Ok(tests) => tests
            .into_iter()
            .map(|(name, case)| {
                let outcome = run_test(&case, threads);
                result(name, case.network, outcome)
            })
            .collect(),
        Err(e) => vec![result(
            file.display().to_string(),
            "-".to_string(),
            Outcome::Failed(e),
        )],
    }
}

/// A fork as the consensus tests name it (`EIP150`, `ConstantinopleFix`, `Merge`, `BPO1`, or
/// alloy-hardforks' own names).
///
/// revm has no Constantinople rule set of its own (it went straight to Petersburg, which
/// dropped EIP-1283's net gas metering), so `Constantinople` runs under Petersburg's rules.
fn fork_named(name: &str) -> Result<Hardfork, String> {
    Ok(match name {
        "EIP150" => Hardfork::Tangerine,
        "EIP158" => Hardfork::SpuriousDragon,
        "Constantinople" | "ConstantinopleFix" => Hardfork::Petersburg,
        "Merge" => Hardfork::Paris,
        other => other
            .parse()
            .map_err(|_| format!("unknown fork {other:?}"))?,
    })
}

/// The chain a test runs on: its `network` (one fork from genesis, or a transition
/// `AToBAtTime15k` / `AToBAt5` where B activates at that timestamp or block), with the chain
/// id and blob schedule of its `config` where it has one.
pub fn network_chain(network: &str, config: Option<&TestConfig>) -> Result<ChainSpec, String> {
    let chain_id = config
        .and_then(|c| c.chainid)
        .map_or(1, |id| id.to::<u64>());
    let mut chain = match network.split_once("To") {
        None => ChainSpec::from_genesis(fork_named(network)?, chain_id),
        Some((from, rest)) => {
            let (to, at) = rest
                .rsplit_once("At")
                .ok_or_else(|| format!("network {network}: no activation point"))?;
            let condition = match at.strip_prefix("Time") {
                Some("15k") => ForkCondition::Timestamp(15_000),
                Some(time) => ForkCondition::Timestamp(
                    time.parse()
                        .map_err(|_| format!("network {network}: timestamp {time:?}"))?,
                ),
                None => ForkCondition::Block(at.parse().map_err(|_| {
                    format!("network {network}: activation {at:?} is not supported")
                })?),
            };
            ChainSpec::from_genesis(fork_named(from)?, chain_id)
                .with_fork(fork_named(to)?, condition)
        }
    };
    for (name, entry) in config.map(|c| &c.blob_schedule).into_iter().flatten() {
        let fork = fork_named(name)?;
        let base = chain
            .blob_schedule
            .get(&fork)
            .copied()
            .unwrap_or_else(BlobParams::bpo2);
        let max = entry.max.to::<u64>();
        let params = BlobParams {
            target_blob_count: entry.target.to(),
            max_blob_count: max,
            update_fraction: entry.base_fee_update_fraction.to(),
            // From Osaka on a transaction carries at most six blobs (EIP-7594), before that as
            // many as the block may.
            max_blobs_per_tx: if fork >= Hardfork::Osaka {
                base.max_blobs_per_tx.min(max)
            } else {
                max
            },
            ..base
        };
        chain.blob_schedule.insert(fork, params);
    }
    Ok(chain)
}

/// revm 43 has no Constantinople rule set: it runs as Petersburg, which lacks EIP-1283.
const NO_CONSTANTINOPLE: &str = "revm 43 has no Constantinople rules (EIP-1283 net gas \
metering): the test ran under Petersburg's";

/// Amsterdam is still a draft: revm 43 implements a later one than the devnet releases the
/// tests come from (EIP-2780's cheaper transactions, EIP-8037's state gas costs). A failure
/// that is not an engine one means pevm computed what alloy-evm's executor on revm computes.
const AMSTERDAM_DRAFT: &str = "revm 43's Amsterdam is another draft than this test's (EIP-2780, \
EIP-8037 costs): pevm computed what alloy-evm's executor on revm 43 computes";

/// revm's create-collision check ignores storage (EIP-7610).
const NO_EIP7610: &str = "revm does not implement EIP-7610 (creating onto an address that \
has storage but no code or nonce, impossible on mainnet)";

/// Replays one test; a failure that a known revm limitation explains (and that is not a
/// parallel/serial difference) names that limitation.
fn run_test(case: &TestCase, threads: NonZeroUsize) -> Outcome {
    let chain = match network_chain(&case.network, case.config.as_ref()) {
        Ok(chain) => chain,
        Err(reason) => return Outcome::Failed(reason),
    };
    let Err(failure) = replay(case, &chain, threads) else {
        return Outcome::Passed;
    };
    let limitation =
        if failure.engine {
            None
        } else if let Some(gap) = failure.gap {
            Some(gap)
        } else if case.network.contains("Amsterdam") {
            Some(AMSTERDAM_DRAFT)
        } else if case.network == "Constantinople" {
            Some(NO_CONSTANTINOPLE)
        } else if case.pre.values().any(|a| {
            a.nonce.is_zero() && a.code.is_empty() && a.storage.values().any(|v| !v.is_zero())
        }) {
            Some(NO_EIP7610)
        } else {
            None
        };
    match limitation {
        Some(limitation) => Outcome::Limited {
            message: failure.message,
            limitation,
        },
        None => Outcome::Failed(failure.message),
    }
}

/// Why a replay failed.
struct Failure {
    /// Block, account and field where known.
    message: String,
    /// Whether parallel execution differed from serial.
    engine: bool,
    /// The known gap of alloy-evm or revm the test failed on alone, where it is known.
    gap: Option<&'static str>,
}

impl Failure {
    fn new(message: String) -> Self {
        Self {
            message,
            engine: false,
            gap: None,
        }
    }
}

/// Replays one test: genesis, every block (valid ones must import with the header's gas
/// used, receipts, bloom and state root; ones with `expectException` must be rejected), then
/// the final state against `postState` or `postStateHash`.
fn replay(case: &TestCase, chain: &ChainSpec, threads: NonZeroUsize) -> Result<(), Failure> {
    let state = format::pre_state(&case.pre);
    let mut head = Head::genesis(state, &case.genesis_rlp).map_err(Failure::new)?;
    // A valid block whose state root differed: reported unless the final state says more.
    let mut root_error = None;
    // The first block imported despite a known gap (see `import::NO_EIP8282`).
    let mut gap = None;
    for (index, block) in case.blocks.iter().enumerate() {
        let listed = block.block_access_list.as_ref();
        let imported = import::import(&mut head, &block.rlp, listed, chain, threads);
        match (imported, &block.expect_exception) {
            (Ok(None), None) => {}
            (Ok(Some(known)), None) => {
                gap.get_or_insert((index, known));
            }
            (Err(ImportError::ParallelMismatch(difference)), _) => {
                return Err(Failure {
                    message: format!("block {index}: parallel differs from serial: {difference}"),
                    engine: true,
                    gap: None,
                })
            }
            (Err(ImportError::ReferenceMismatch(difference)), _) => {
                return Err(Failure {
                    message: format!(
                        "block {index}: differs from alloy-evm's EthBlockExecutor: {difference}"
                    ),
                    engine: true,
                    gap: None,
                })
            }
            (Err(_), Some(_)) => {}
            (Ok(_), Some(exception)) => {
                return Err(Failure::new(format!(
                    "block {index}: imported, but expected {exception}"
                )))
            }
            (
                Err(ImportError::WrongStateRoot {
                    message,
                    head: next,
                }),
                None,
            ) => {
                // Carry on with the state the block produced, to name the account at fault.
                root_error.get_or_insert(format!("block {index}: {message}"));
                head = *next;
            }
            (Err(ImportError::Rejected(reason)), None) => {
                return Err(Failure::new(format!("block {index}: rejected: {reason}")))
            }
        }
    }
    let last = case.blocks.len().saturating_sub(1);
    let post = match (&case.post_state, case.post_state_hash) {
        (Some(expected), _) => post_state::compare(&head.state, expected),
        (None, Some(root)) => {
            let got = head.state.state_root();
            (got == root)
                .then_some(())
                .ok_or_else(|| format!("postStateHash: expected {root}, got {got}"))
        }
        (None, None) => Err("the test has neither postState nor postStateHash".to_string()),
    };
    let post = post.and_then(|()| match case.lastblockhash {
        Some(hash) if hash != head.hash => Err(format!(
            "lastblockhash: expected {hash}, the chain ends at {}",
            head.hash
        )),
        _ => Ok(()),
    });
    let message = match (post, root_error) {
        (Ok(()), None) => {
            let Some((index, known)) = gap else {
                return Ok(());
            };
            return Err(Failure {
                message: format!(
                    "block {index}: blockAccessListHash differs, the rest of the test passed"
                ),
                engine: false,
                gap: Some(known),
            });
        }
        (Err(e), None) => format!("block {last}: post-state: {e}"),
        (Err(e), Some(root)) => format!("block {last}: post-state: {e} ({root})"),
        (Ok(()), Some(root)) => root,
    };
    Err(Failure::new(message))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use alloy_hardforks::EthereumHardforks;
    use alloy_primitives::U64;

    use super::*;
    use crate::blockchain_tests::format::BlobEntry;

    #[test]
    fn networks_name_a_fork_or_a_transition() {
        let osaka = network_chain("Osaka", None).unwrap();
        assert_eq!(osaka.hardfork_at(1, 1), Hardfork::Osaka);
        let ccf = network_chain("ConstantinopleFix", None).unwrap();
        assert_eq!(ccf.hardfork_at(1, 1), Hardfork::Petersburg);
        let to_prague = network_chain("CancunToPragueAtTime15k", None).unwrap();
        assert_eq!(to_prague.hardfork_at(1, 14_999), Hardfork::Cancun);
        assert_eq!(to_prague.hardfork_at(2, 15_000), Hardfork::Prague);
        let bpo = network_chain("BPO2ToBPO3AtTime15k", None).unwrap();
        assert_eq!(bpo.hardfork_at(1, 0), Hardfork::Bpo2);
        assert_eq!(bpo.hardfork_at(2, 15_000), Hardfork::Bpo3);
        let dao = network_chain("HomesteadToDaoAt5", None).unwrap();
        assert!(dao.is_ethereum_fork_active_at_block(Hardfork::Dao, 5));
        assert!(!dao.is_ethereum_fork_active_at_block(Hardfork::Dao, 4));
        assert!(network_chain("Atlantis", None).is_err());
        assert!(network_chain("ArrowGlacierToParisAtDiffC0000", None).is_err());
    }

    #[test]
    fn the_config_sets_chain_id_and_blob_schedule() {
        let entry = |target: u64, max: u64| BlobEntry {
            target: U64::from(target),
            max: U64::from(max),
            base_fee_update_fraction: U64::from(5_007_716),
        };
        let config = TestConfig {
            chainid: Some(U64::from(7)),
            blob_schedule: BTreeMap::from([
                ("Prague".to_string(), entry(6, 9)),
                ("BPO3".to_string(), entry(12, 18)),
            ]),
        };
        let chain = network_chain("BPO2ToBPO3AtTime15k", Some(&config)).unwrap();
        assert_eq!(chain.chain_id, 7);
        let bpo3 = chain.blob_params_at(15_000).unwrap();
        assert_eq!((bpo3.target_blob_count, bpo3.max_blob_count), (12, 18));
        assert_eq!(
            bpo3.max_blobs_per_tx, 6,
            "EIP-7594 caps a transaction at six"
        );
        assert_eq!(chain.blob_params_at(0).unwrap().max_blob_count, 21);
        let prague = network_chain("Prague", Some(&config)).unwrap();
        assert_eq!(prague.blob_params_at(0).unwrap().max_blobs_per_tx, 9);
    }
}
