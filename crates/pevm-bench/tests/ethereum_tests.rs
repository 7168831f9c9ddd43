//! A fixed, fast subset of ethereum/tests `BlockchainTests` through the serial and parallel
//! executors: every block's state root, gas used, receipts and the final state must match.
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]

use std::{num::NonZeroUsize, path::Path};

use pevm_bench::{
    blockchain_tests::{run_file, test_files, Outcome, Summary},
    data,
};

/// Folders of the suite, each with how many of its files (in path order) to run: both
/// groups, several forks (the Pyspecs folders run pre-Cancun networks from Frontier on).
const SUBSET: [(&str, usize); 13] = [
    ("ValidBlocks/bcExample", 4),
    ("ValidBlocks/bcEIP4844-blobtransactions", 6),
    ("ValidBlocks/bcEIP1559", 6),
    ("ValidBlocks/bcStateTests", 12),
    ("ValidBlocks/bcValidBlockTest", 20),
    (
        "GeneralStateTests/Pyspecs/byzantium/eip198_modexp_precompile",
        1,
    ),
    ("GeneralStateTests/stCallCodes", 20),
    ("GeneralStateTests/Pyspecs/frontier/opcodes", 4),
    ("GeneralStateTests/Pyspecs/shanghai/eip4895_withdrawals", 10),
    ("GeneralStateTests/Pyspecs/cancun/eip4788_beacon_root", 10),
    ("GeneralStateTests/Pyspecs/cancun/eip4844_blobs", 6),
    ("GeneralStateTests/stCreate2", 12),
    ("GeneralStateTests/stRevertTest", 11),
];

/// Fewer tests than this means the subset did not really run.
const MIN_TESTS: usize = 600;

#[test]
fn blockchain_tests_subset_passes_serially_and_in_parallel() {
    let Some(root) = data::require(data::data_dir().join("ethereum-tests/BlockchainTests")) else {
        return;
    };
    let threads = NonZeroUsize::new(2).unwrap();
    let mut summary = Summary::default();
    let mut failures = Vec::new();
    for (folder, files) in SUBSET {
        let dir = root.join(folder);
        let listed = test_files(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(!listed.is_empty(), "{} holds no test files", dir.display());
        for file in listed.iter().take(files) {
            for result in run_file(file, Path::new(&root), threads) {
                summary.add(&result);
                if let Outcome::Failed(error) | Outcome::Limited { message: error, .. } =
                    &result.outcome
                {
                    failures.push(format!("{} ({}): {error}", result.test, result.folder));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let ran = summary.total.passed;
    assert!(ran >= MIN_TESTS, "only {ran} tests passed: {summary:?}");
    assert!(
        summary.by_network.len() >= 8,
        "too few networks: {summary:?}"
    );
    eprintln!("{}", summary.to_json());
}
