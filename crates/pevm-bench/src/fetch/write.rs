//! Writing a block folder all at once: the files go into a staging folder that is renamed to
//! `<out>/<N>` only when complete, so an error never leaves a partial fixture behind.

use std::{
    collections::BTreeMap,
    fs, io,
    path::{Path, PathBuf},
};

use alloy_primitives::B256;
use serde_json::Value;

use super::FetchError;

/// The folder under `out` that holds block folders being written.
pub const STAGING: &str = ".fetch-staging";

/// Whether `dir` is a complete block folder (a block and its pre-state, plain or gzipped).
pub(super) fn is_complete(dir: &Path) -> bool {
    ["block.json", "pre_state.json"]
        .iter()
        .all(|name| dir.join(name).is_file() || dir.join(format!("{name}.gz")).is_file())
}

/// Writes `<out>/<number>/` with `block.json`, `pre_state.json`, and `block_hashes.json` when
/// `hashes` is not empty.
pub(super) fn write_block_dir(
    out: &Path,
    number: u64,
    block: &Value,
    pre_state: &Value,
    hashes: &BTreeMap<u64, B256>,
) -> Result<(), FetchError> {
    let staging = out.join(STAGING);
    let temp = staging.join(format!("{number}.{}", std::process::id()));
    let written = create_fresh(&temp).and_then(|()| {
        write_json(&temp.join("pre_state.json"), pre_state)?;
        if !hashes.is_empty() {
            let hashes: BTreeMap<String, String> = hashes
                .iter()
                .map(|(n, h)| (n.to_string(), format!("{h:#x}")))
                .collect();
            write_json(&temp.join("block_hashes.json"), &serde_json::json!(hashes))?;
        }
        // Last, so that the staged folder is a block folder only once it is complete.
        write_json(&temp.join("block.json"), block)?;
        let dir = out.join(number.to_string());
        fs::rename(&temp, &dir).map_err(|e| io_error(&dir, e))
    });
    if written.is_err() {
        let _ = fs::remove_dir_all(&temp);
    }
    // Gone once no other block is being written.
    let _ = fs::remove_dir(&staging);
    written
}

/// Creates `dir` (emptied if a stale one is there), and its parents.
fn create_fresh(dir: &Path) -> Result<(), FetchError> {
    let _ = fs::remove_dir_all(dir);
    // Another job may remove the (empty) staging folder between creating it and `dir`.
    let mut attempts = 0;
    loop {
        match fs::create_dir_all(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 5 => attempts += 1,
            outcome => return outcome.map_err(|e| io_error(dir, e)),
        }
    }
}

/// Writes `value` as compact JSON.
fn write_json(path: &Path, value: &Value) -> Result<(), FetchError> {
    let bytes = serde_json::to_vec(value).map_err(|e| io_error(path, e.into()))?;
    fs::write(path, bytes).map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, error: io::Error) -> FetchError {
    FetchError::Io {
        path: PathBuf::from(path),
        error,
    }
}
