//! Fuzzing harnesses for pevm, usable without libFuzzer:
//!
//! - [`check_differential`]: decodes bytes into a block ([`decode::block_spec`]) over the
//!   test kit's small fixed state (`pevm_testkit::world`), executes it serially and in
//!   parallel on 1, 2, 4 and 8 threads, and reports any difference in results, state diff
//!   or error.
//! - [`check_fixture_loader`]: writes bytes as a block folder's files and loads it with
//!   [`pevm_bench::fixture::Fixture::load`]; any error is fine, a panic is not.
//!
//! The libFuzzer targets in `fuzz_targets/` call these; `tests/seeds.rs` replays the committed
//! seed corpus through them on stable Rust.
#![deny(missing_docs)]

pub mod decode;

use std::{num::NonZeroUsize, path::PathBuf};

use pevm_bench::replay::first_difference;
use pevm_vm::{execute_block_serial, BlockOutput, ExecutionError, Pevm, Strategy};

/// The worker counts every parallel run is compared at.
pub const THREADS: [usize; 4] = [1, 2, 4, 8];

/// What serial execution of a fuzzed block gave.
pub type Outcome = Result<BlockOutput, ExecutionError>;

/// Executes the block `data` decodes to serially and on every count of [`THREADS`], and
/// returns the serial outcome, or a report of the first parallel run that differs.
pub fn check_differential(data: &[u8]) -> Result<Outcome, String> {
    let case = decode::block_spec(data);
    let provider = case.provider();
    let block = case.block();
    let serial = execute_block_serial(&provider, &block);
    if let Ok(output) = &serial {
        if output.results.len() != block.txs.len() {
            return Err(format!(
                "serial output has {} results for {} transactions\n{case:#?}",
                output.results.len(),
                block.txs.len()
            ));
        }
    }
    // Each parallel strategy itself, even where the plan would run such a small block
    // serially (a block that is not all plain transfers goes to Block-STM either way).
    for strategy in [Strategy::BlockStm, Strategy::Transfers] {
        for threads in THREADS {
            let workers = NonZeroUsize::new(threads).expect("non-zero");
            let parallel = Pevm::new(workers)
                .force(strategy)
                .execute(&provider, &block);
            if parallel != serial {
                return Err(format!(
                    "{} on {threads} threads differs from serial\n{}\ncase: {case:#?}",
                    strategy.name(),
                    first_difference(&serial, &parallel)
                ));
            }
        }
    }
    Ok(serial)
}

/// The file names a fixture-loader input is split into, in order.
pub const FIXTURE_FILES: [&str; 3] = ["block.json", "pre_state.json", "block_hashes.json"];

/// What separates the files of a fixture-loader input: a line no JSON file holds and a gzip
/// stream almost never does.
pub const FIXTURE_SEPARATOR: &[u8] = b"\n--8<--\n";

/// Splits `data` at [`FIXTURE_SEPARATOR`] into `block.json`, `pre_state.json` and (when there
/// is a third part) `block_hashes.json`, writes them into a scratch block folder (a part starting with
/// the gzip magic bytes is written as `NAME.json.gz`), and loads the folder. Returns whether
/// it loaded; panics only if the loader does.
pub fn check_fixture_loader(data: &[u8]) -> bool {
    let dir = scratch_dir();
    for name in FIXTURE_FILES {
        for path in [dir.join(name), dir.join(format!("{name}.gz"))] {
            if path.exists() {
                std::fs::remove_file(&path).expect("scratch file can be removed");
            }
        }
    }
    for (name, part) in FIXTURE_FILES.iter().zip(split(data, FIXTURE_SEPARATOR)) {
        let file = if part.starts_with(&[0x1f, 0x8b]) {
            format!("{name}.gz")
        } else {
            (*name).to_string()
        };
        std::fs::write(dir.join(file), part).expect("scratch file can be written");
    }
    pevm_bench::fixture::Fixture::load(&dir).is_ok()
}

/// Largest block folder (all files together) that [`fixture_seeds`] turns into seeds.
const SEED_FOLDER_MAX_BYTES: u64 = 64 * 1024;

/// Fixture-loader inputs built from the small block folders under `mainnet` (the shared data,
/// which is never copied into the repository): each folder whole, without its pre-state, and
/// with its `block.json` cut in half. Named `<block>_<variant>`, sorted by name.
pub fn fixture_seeds(mainnet: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(mainnet) else {
        return Vec::new();
    };
    let mut folders: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    folders.sort();
    let mut seeds = Vec::new();
    for folder in folders {
        let Ok(files) = std::fs::read_dir(&folder) else {
            continue;
        };
        let files: Vec<_> = files.filter_map(Result::ok).map(|e| e.path()).collect();
        let size: u64 = files
            .iter()
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .sum();
        if size > SEED_FOLDER_MAX_BYTES {
            continue;
        }
        let part = |name: &str| {
            [name.to_string(), format!("{name}.gz")]
                .iter()
                .find_map(|file| std::fs::read(folder.join(file)).ok())
        };
        let parts: Vec<Option<Vec<u8>>> = FIXTURE_FILES.iter().map(|name| part(name)).collect();
        let [Some(block), Some(pre_state), hashes] =
            <[_; 3]>::try_from(parts).ok().unwrap_or_default()
        else {
            continue;
        };
        let join = |parts: &[&[u8]]| parts.join(FIXTURE_SEPARATOR);
        let name = folder
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut whole = vec![block.as_slice(), pre_state.as_slice()];
        whole.extend(hashes.as_deref());
        seeds.push((format!("{name}_whole"), join(&whole)));
        seeds.push((format!("{name}_no_pre_state"), block.clone()));
        let cut = &block[..block.len() / 2];
        seeds.push((
            format!("{name}_cut_block"),
            join(&[cut, pre_state.as_slice()]),
        ));
    }
    seeds
}

/// The parts of `data` between occurrences of `separator`.
fn split<'a>(mut data: &'a [u8], separator: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    while let Some(at) = data.windows(separator.len()).position(|w| w == separator) {
        parts.push(&data[..at]);
        data = &data[at + separator.len()..];
    }
    parts.push(data);
    parts
}

/// A block folder of this thread's own under the temporary directory, removed when the
/// thread ends (Rust does not promise to run the main thread's thread-local destructors, so
/// that thread's folder may stay).
fn scratch_dir() -> PathBuf {
    thread_local! {
        static DIR: tempfile::TempDir = tempfile::Builder::new()
            .prefix("pevm-fuzz-fixture-")
            .tempdir()
            .expect("scratch folder can be created");
    }
    DIR.with(|dir| dir.path().to_path_buf())
}
