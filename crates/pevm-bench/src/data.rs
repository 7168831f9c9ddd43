//! Where shared data lives: one resolver for every command and test.

use std::{io::Write, path::PathBuf};

/// The environment variable naming the shared data folder.
pub const DATA_ENV: &str = "PEVM_DATA";

/// The shared data folder: `$PEVM_DATA` (when set and not empty), or `../shared` beside the
/// repository root.
pub fn data_dir() -> PathBuf {
    match std::env::var_os(DATA_ENV).filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")),
    }
}

/// The folder of real mainnet blocks.
pub fn mainnet_dir() -> PathBuf {
    data_dir().join("mainnet")
}

/// A shared-data folder a test needs: `Some(path)` when present. When it is missing the test
/// fails under `CI=true`, and elsewhere returns `None` after saying so on stderr (not captured
/// by the test harness: the skip shows in `cargo test`'s output).
pub fn require(path: PathBuf) -> Option<PathBuf> {
    if path.is_dir() {
        return Some(path);
    }
    let message = format!(
        "shared data {} is missing (set {DATA_ENV} to the folder holding mainnet/)",
        path.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    // Straight to stderr, past the test harness's capture, so that a test that finds no data
    // says it was skipped rather than passing silently.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {message}");
    None
}
