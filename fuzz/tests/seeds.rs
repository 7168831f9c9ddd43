//! Replays the committed seed corpus (`seeds/<target>/*`) through the same checks as the
//! libFuzzer targets, on stable Rust: `cargo test --manifest-path fuzz/Cargo.toml`.
//!
//! `PEVM_FUZZ_CORPUS=DIR` replays `DIR/<target>/*` as well (e.g. `fuzz/corpus`, what
//! `cargo fuzz run` grew), without libFuzzer.
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]

use std::path::{Path, PathBuf};

/// The seed files of `target`, sorted by name, then those under `$PEVM_FUZZ_CORPUS/<target>`.
fn seeds(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    let mut files = files_in(&dir);
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    if let Some(corpus) = std::env::var_os("PEVM_FUZZ_CORPUS").filter(|v| !v.is_empty()) {
        files.extend(files_in(&Path::new(&corpus).join(target)));
    }
    files
}

/// The files in `dir`, sorted by name.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable folder").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn differential_seeds_match_serial() {
    let (mut ok, mut failed) = (0, 0);
    for path in seeds("differential") {
        let data = std::fs::read(&path).expect("readable seed");
        match pevm_fuzz::check_differential(&data) {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(_)) => failed += 1,
            Err(report) => panic!("{}: {report}", path.display()),
        }
    }
    // The seeds cover both valid blocks and blocks with an invalid transaction.
    println!("{ok} blocks executed, {failed} rejected identically");
    assert!(ok > 0, "no seed decodes to a valid block");
}

#[test]
fn fixture_loader_seeds_do_not_panic() {
    // Seeds come from the shared mainnet blocks (never copied into the repository), plus any
    // grown corpus.
    let Some(mainnet) = pevm_bench::data::require(pevm_bench::data::mainnet_dir()) else {
        return;
    };
    let mut inputs: Vec<Vec<u8>> = pevm_fuzz::fixture_seeds(&mainnet)
        .into_iter()
        .map(|(_, data)| data)
        .collect();
    if let Some(corpus) = std::env::var_os("PEVM_FUZZ_CORPUS").filter(|v| !v.is_empty()) {
        let dir = Path::new(&corpus).join("fixture_loader");
        inputs.extend(
            files_in(&dir)
                .iter()
                .map(|p| std::fs::read(p).expect("readable")),
        );
    }
    let total = inputs.len();
    let loaded: usize = inputs
        .iter()
        .map(|data| usize::from(pevm_fuzz::check_fixture_loader(data)))
        .sum();
    println!("{loaded} of {total} fixture inputs loaded");
    assert!(loaded > 0, "no fixture input is a loadable block folder");
    assert!(loaded < total, "every broken variant loaded");
}
