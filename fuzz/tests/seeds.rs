//! Replays the committed seed corpus (`seeds/<target>/*`) through the same checks as the
//! libFuzzer targets, on stable Rust: `cargo test --manifest-path fuzz/Cargo.toml`.
//!
//! `PEVM_FUZZ_CORPUS=DIR` replays `DIR/<target>/*` as well (e.g. `fuzz/corpus`, what
//! `cargo fuzz run` grew), without libFuzzer.

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
    let mut loaded = 0;
    let seeds = seeds("fixture_loader");
    let total = seeds.len();
    for path in seeds {
        let data = std::fs::read(&path).expect("readable seed");
        loaded += usize::from(pevm_fuzz::check_fixture_loader(&data));
    }
    println!("{loaded} of {total} fixture seeds loaded");
    assert!(loaded > 0, "no fixture seed is a loadable block folder");
}
