//! Where shared data lives: one resolver for every command and test.

use std::path::PathBuf;

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
/// fails under `CI=true`, and elsewhere returns `None` after saying so on stderr.
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
    eprintln!("skipping: {message}");
    None
}
