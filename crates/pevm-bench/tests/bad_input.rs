//! Bad input gives a one-line error naming the file or block and what is wrong, a non-zero
//! exit, no panic, and the other blocks are still reported.
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use pevm_bench::fixture::Fixture;
use tempfile::TempDir;

const BLOCK: &str = r#"{"hash":"0x4e3a3754410177e6937ef1f84bba68ea139e8d1a2258c5f85db9f1cd715a1bdd","parentHash":"0x5a41d0e66b4120775176c09fcf39e7c0520517a13d2b57b18d33d342df038bfc","sha3Uncles":"0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347","miner":"0xe6a7a1d47ff21b6321162aea7c6cb457d5476bca","stateRoot":"0x0e0df2706b0a4fb8bd08c9246d472abbe850af446405d9eba1db41db18b4a169","transactionsRoot":"0x4513310fcb9f6f616972a3b948dc5d547f280849a87ebb5af0191f98b87be598","receiptsRoot":"0xfe2bf2a941abf41d72637e5b91750332a30283efd40c424dc522b77e6f0ed8c4","logsBloom":"0x00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000","difficulty":"0x1","number":"0xb443","gasLimit":"0x2fefd8","gasUsed":"0x5208","timestamp":"0x55c42659","extraData":"0x","mixHash":"0x0000000000000000000000000000000000000000000000000000000000000000","nonce":"0x0000000000000000","totalDifficulty":"0x1","size":"0x1","uncles":[],"transactions":[{"blockHash":"0x4e3a3754410177e6937ef1f84bba68ea139e8d1a2258c5f85db9f1cd715a1bdd","blockNumber":"0xb443","from":"0xa1e4380a3b1f749673e270229993ee55f35663b4","gas":"0x5208","gasPrice":"0x2d79883d2000","hash":"0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060","input":"0x","nonce":"0x0","to":"0x5df9b87991262f6ba471f09758cde1c0fc1de734","transactionIndex":"0x0","value":"0x7a69","type":"0x0","v":"0x1c","r":"0x88ff6cf0fefd94db46111149ae4bfc179e9b94721fffd821d38d16464b3f71d0","s":"0x45e0aff800961cfce805daef7016b9b675c137a6a41a548f7b60a3484c06a33a"}]}"#;

/// A fresh, empty scratch folder for one test, removed when dropped.
fn scratch(name: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("pevm-bad-input-{name}-"))
        .tempdir()
        .unwrap()
}

/// Writes a block folder with the given files.
fn block_dir(root: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = root.join(name);
    fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        fs::write(dir.join(file), text).unwrap();
    }
    dir
}

const PRE_STATE: &str = r#"{"0xa1e4380a3b1f749673e270229993ee55f35663b4":{"balance":"0x6c6b935b8bbd400000","nonce":0,"storage":{}}}"#;

/// Runs `pevm-bench replay --json DIR` and returns (exit success, stdout, stderr).
fn replay(dir: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pevm-bench"))
        .args(["replay", "--json", "--threads", "2"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn load_error(dir: &Path) -> String {
    Fixture::load(dir)
        .expect_err("loading must fail")
        .to_string()
}

#[test]
fn missing_file_is_named() {
    let scratch = scratch("missing");
    let root = scratch.path();
    let dir = block_dir(root, "1", &[("block.json", BLOCK)]);
    let error = load_error(&dir);
    assert!(
        error.contains("pre_state.json") && error.contains("missing"),
        "{error}"
    );
}

#[test]
fn malformed_json_is_named() {
    let scratch = scratch("malformed");
    let root = scratch.path();
    let dir = block_dir(
        root,
        "1",
        &[
            ("block.json", "{\"number\": "),
            ("pre_state.json", PRE_STATE),
        ],
    );
    let error = load_error(&dir);
    assert!(
        error.contains("block.json") && error.contains("invalid JSON"),
        "{error}"
    );
}

#[test]
fn wrong_field_type_is_named() {
    let scratch = scratch("field");
    let root = scratch.path();
    let bad = r#"{"0xa1e4380a3b1f749673e270229993ee55f35663b4":{"balance":"0x1","nonce":"zero","storage":{}}}"#;
    let dir = block_dir(root, "1", &[("block.json", BLOCK), ("pre_state.json", bad)]);
    let error = load_error(&dir);
    assert!(
        error.contains("pre_state.json") && error.contains("invalid type"),
        "{error}"
    );
}

#[test]
fn gzip_and_plain_files_both_load() {
    let scratch = scratch("gzip");
    let root = scratch.path();
    let dir = block_dir(root, "46147", &[("block.json", BLOCK)]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, PRE_STATE.as_bytes()).unwrap();
    fs::write(dir.join("pre_state.json.gz"), gz.finish().unwrap()).unwrap();
    let fixture = Fixture::load(&dir).unwrap();
    assert_eq!(fixture.number(), 46147);
    assert_eq!(fixture.block.txs.len(), 1);
}

#[test]
fn cli_reports_every_block_and_fails_on_bad_ones() {
    let scratch = scratch("cli");
    let root = scratch.path();
    block_dir(
        root,
        "46147",
        &[("block.json", BLOCK), ("pre_state.json", PRE_STATE)],
    );
    block_dir(
        root,
        "2",
        &[("block.json", "not json"), ("pre_state.json", PRE_STATE)],
    );
    // The sender is absent from the pre-state: it cannot pay for gas.
    block_dir(
        root,
        "3",
        &[("block.json", BLOCK), ("pre_state.json", "{}")],
    );
    let (ok, stdout, stderr) = replay(root);
    assert!(!ok, "a bad block must fail the run");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "three rows and a summary: {stdout}");
    assert_eq!(lines[0]["block"], "2");
    assert!(lines[0]["error"]
        .as_str()
        .unwrap()
        .contains("block.json: invalid JSON"));
    // Folder 3 holds block 46147 over an empty pre-state.
    assert_eq!(lines[1]["block"], "46147");
    let error = lines[1]["error"].as_str().unwrap();
    assert!(
        error.contains("tx 0 is invalid") && error.contains("not in the pre-state"),
        "{error}"
    );
    assert_eq!(lines[2]["block"], "46147");
    assert_eq!(lines[2]["header_match"], true);
    assert_eq!(lines[2]["parallel_match"], true);
    assert_eq!(lines[3]["summary"]["failed"], 2);
}

#[test]
fn cli_fails_on_a_path_without_blocks() {
    let scratch = scratch("empty");
    let root = scratch.path();
    let (ok, stdout, _) = replay(root);
    assert!(!ok);
    assert!(stdout.contains("no block folder"), "{stdout}");
}
