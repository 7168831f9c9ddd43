//! `fetch` against a JSON-RPC server on 127.0.0.1 that serves mainnet fixture blocks: both ways
//! of getting the pre-state round-trip to a fixture that replays to its header, and every
//! failure is one clear line that leaves no folder behind.
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]

use std::{
    collections::HashMap,
    fs,
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use pevm_bench::{
    data,
    fetch::{
        fetch_block,
        rpc::{ClientConfig, RpcClient},
        Outcome, Source,
    },
    fixture::Fixture,
};
use pevm_vm::execute_block_serial;
use serde_json::{json, Value};
use tempfile::TempDir;

/// A Homestead block that executes `BLOCKHASH`.
const HOMESTEAD: u64 = 2_462_997;
/// A larger Cancun block that executes `BLOCKHASH`.
const CANCUN: u64 = 19_932_703;
/// Two consecutive blocks (Byzantium, Petersburg), for a range.
const RANGE: [u64; 2] = [7_279_999, 7_280_000];
/// The longest a test server lives, whatever its test does.
const SERVER_LIFETIME: Duration = Duration::from_secs(60);

/// How the test node behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// An archive node with the debug namespace.
    Archive,
    /// An archive node without the debug namespace.
    NoDebug,
    /// Every request fails with HTTP 500.
    Http500,
    /// With the debug namespace, but prestate traces that miss every account.
    EmptyTraces,
    /// Every response is not JSON.
    Malformed,
    /// Requests are read and never answered.
    Silent,
    /// No debug namespace, and the state of old blocks is pruned.
    Pruned,
}

/// What the test node knows: fixture blocks, their pre-states, and ancestor hashes.
#[derive(Default)]
struct Chain {
    blocks: HashMap<u64, Value>,
    pre_states: HashMap<u64, Value>,
    hashes: HashMap<u64, Value>,
}

impl Chain {
    /// The fixture blocks `numbers`; `None` (a skipped test) without the shared data.
    fn load(numbers: &[u64]) -> Option<Arc<Self>> {
        let mainnet = data::require(data::mainnet_dir())?;
        let mut chain = Self::default();
        for &number in numbers {
            let dir = mainnet.join(number.to_string());
            chain.blocks.insert(number, read_json(&dir, "block.json"));
            chain
                .pre_states
                .insert(number, read_json(&dir, "pre_state.json"));
            if let Some(Value::Object(hashes)) = try_read_json(&dir, "block_hashes.json") {
                for (n, hash) in hashes {
                    chain.hashes.insert(n.parse().unwrap(), hash);
                }
            }
        }
        Some(Arc::new(chain))
    }
}

fn try_read_json(dir: &Path, name: &str) -> Option<Value> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Some(serde_json::from_slice(&fs::read(plain).unwrap()).unwrap());
    }
    let gz = fs::File::open(dir.join(format!("{name}.gz"))).ok()?;
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut bytes)
        .unwrap();
    Some(serde_json::from_slice(&bytes).unwrap())
}

fn read_json(dir: &Path, name: &str) -> Value {
    try_read_json(dir, name).unwrap_or_else(|| panic!("{}/{name} is missing", dir.display()))
}

/// A JSON-RPC server on 127.0.0.1, stopped when dropped (or after [`SERVER_LIFETIME`]).
struct Server {
    url: String,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(chain: Arc<Chain>, mode: Mode) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicUsize::new(0));
    let (stopped, counter) = (Arc::clone(&stop), Arc::clone(&requests));
    thread::spawn(move || {
        let deadline = Instant::now() + SERVER_LIFETIME;
        while !stopped.load(Ordering::SeqCst) && Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    let (chain, stopped, counter) = (
                        Arc::clone(&chain),
                        Arc::clone(&stopped),
                        Arc::clone(&counter),
                    );
                    thread::spawn(move || {
                        connection(stream, &chain, mode, &stopped, &counter, deadline)
                    });
                }
                Err(_) => thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    Server {
        url,
        stop,
        requests,
    }
}

/// Answers the requests of one keep-alive connection.
fn connection(
    stream: TcpStream,
    chain: &Chain,
    mode: Mode,
    stop: &AtomicBool,
    requests: &AtomicUsize,
    deadline: Instant,
) {
    stream.set_nonblocking(false).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    while let Some(body) = read_request(&mut reader) {
        requests.fetch_add(1, Ordering::SeqCst);
        let (status, response) = match mode {
            Mode::Silent => {
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(20));
                }
                return;
            }
            Mode::Http500 => ("500 Internal Server Error", "upstream failed".to_string()),
            Mode::Malformed => ("200 OK", "<html>busy</html>".to_string()),
            _ => ("200 OK", answer(chain, mode, &body).to_string()),
        };
        let message = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{response}",
            response.len()
        );
        if writer.write_all(message.as_bytes()).is_err() {
            return;
        }
    }
}

/// The body of the next HTTP request, `None` when the connection is done.
fn read_request(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut length = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

fn answer(chain: &Chain, mode: Mode, body: &[u8]) -> Value {
    match serde_json::from_slice(body).unwrap() {
        Value::Array(calls) => calls.iter().map(|c| answer_one(chain, mode, c)).collect(),
        call => answer_one(chain, mode, &call),
    }
}

fn answer_one(chain: &Chain, mode: Mode, call: &Value) -> Value {
    let params = call["params"].as_array().unwrap();
    let number = |v: &Value| u64::from_str_radix(&v.as_str().unwrap()[2..], 16).unwrap();
    let method = call["method"].as_str().unwrap();
    let outcome = match method {
        "eth_getBlockByNumber" => {
            let n = number(&params[0]);
            Ok(chain.blocks.get(&n).cloned().unwrap_or_else(|| {
                chain
                    .hashes
                    .get(&n)
                    .map_or(Value::Null, |h| json!({"number": params[0], "hash": h}))
            }))
        }
        "debug_traceBlockByNumber" if matches!(mode, Mode::NoDebug | Mode::Pruned) => Err((
            -32601,
            "the method debug_traceBlockByNumber does not exist/is not available",
        )),
        "debug_traceBlockByNumber" => {
            let n = number(&params[0]);
            assert_eq!(params[1], json!({"tracer": "prestateTracer"}));
            let txs = chain.blocks[&n]["transactions"].as_array().unwrap();
            // The whole pre-state for the first transaction, nothing new for the others.
            let pre_state = match mode {
                Mode::EmptyTraces => json!({}),
                _ => chain.pre_states[&n].clone(),
            };
            Ok(txs
                .iter()
                .enumerate()
                .map(|(i, tx)| {
                    let result = if i == 0 { pre_state.clone() } else { json!({}) };
                    json!({"txHash": tx["hash"], "result": result})
                })
                .collect())
        }
        _ if mode == Mode::Pruned => Err((-32000, "missing trie node 9f1e2d (path ) <nil>")),
        "eth_getBalance" | "eth_getTransactionCount" | "eth_getCode" | "eth_getStorageAt" => {
            let tag = number(params.last().unwrap());
            match chain.pre_states.get(&(tag + 1)) {
                Some(state) => Ok(read_state(state, method, params)),
                None => Err((-32000, "header not found")),
            }
        }
        _ => Err((-32601, "method not found")),
    };
    match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": call["id"], "result": result}),
        Err((code, message)) => {
            json!({"jsonrpc": "2.0", "id": call["id"], "error": {"code": code, "message": message}})
        }
    }
}

/// A state read from a fixture's pre-state: absent accounts and slots are zero.
fn read_state(state: &Value, method: &str, params: &[Value]) -> Value {
    let account = &state[params[0].as_str().unwrap()];
    match method {
        "eth_getBalance" => account.get("balance").cloned().unwrap_or(json!("0x0")),
        "eth_getTransactionCount" => {
            json!(format!("{:#x}", account["nonce"].as_u64().unwrap_or(0)))
        }
        "eth_getCode" => account.get("code").cloned().unwrap_or(json!("0x")),
        _ => account["storage"]
            .get(params[1].as_str().unwrap())
            .cloned()
            .unwrap_or(json!(format!("0x{}", "0".repeat(64)))),
    }
}

fn client(server: &Server, timeout: Duration, retries: u32) -> RpcClient {
    let config = ClientConfig {
        timeout,
        retries,
        backoff: Duration::from_millis(20),
    };
    RpcClient::new(&server.url, config)
}

/// A fresh, empty output folder, removed when dropped.
fn out_dir(name: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("pevm-fetch-{name}-"))
        .tempdir()
        .unwrap()
}

fn original(number: u64) -> PathBuf {
    data::mainnet_dir().join(number.to_string())
}

/// The fetched folder replays to its header, and holds the original block and block hashes.
fn assert_replays(out: &Path, number: u64) {
    let dir = out.join(number.to_string());
    let fixture = Fixture::load(&dir).unwrap();
    let output = execute_block_serial(&fixture.provider, &fixture.block).unwrap();
    output
        .check_header(fixture.block.hardfork, &fixture.rpc_block.header.inner)
        .unwrap();
    assert!(dir.join("block.json").is_file() && dir.join("pre_state.json").is_file());
    let original = original(number);
    assert_eq!(
        read_json(&dir, "block.json"),
        read_json(&original, "block.json")
    );
    assert_eq!(
        try_read_json(&dir, "block_hashes.json"),
        try_read_json(&original, "block_hashes.json"),
        "block {number}: the block hashes BLOCKHASH reads"
    );
}

/// Every account and slot of the fetched pre-state has its value in the original.
fn assert_agrees_with_original(out: &Path, number: u64) {
    let fetched = read_json(&out.join(number.to_string()), "pre_state.json");
    let original = read_json(&original(number), "pre_state.json");
    let zero = json!(format!("0x{}", "0".repeat(64)));
    for (address, account) in fetched.as_object().unwrap() {
        let expected = &original[address];
        for field in ["balance", "nonce", "code"] {
            assert_eq!(account.get(field), expected.get(field), "{address} {field}");
        }
        for (slot, value) in account["storage"].as_object().into_iter().flatten() {
            assert_eq!(
                value,
                expected["storage"].get(slot).unwrap_or(&zero),
                "{address} {slot}"
            );
        }
    }
}

#[test]
fn traced_pre_state_round_trips() {
    let Some(chain) = Chain::load(&[HOMESTEAD, CANCUN]) else {
        return;
    };
    let server = serve(chain, Mode::Archive);
    let client = client(&server, Duration::from_secs(10), 0);
    let temp = out_dir("traced");
    let out = temp.path();
    for number in [HOMESTEAD, CANCUN] {
        let outcome = fetch_block(&client, number, out).unwrap();
        assert_eq!(outcome, Outcome::Written(Source::Trace));
        assert_replays(out, number);
        // Complete folders are not fetched again.
        let before = server.requests.load(Ordering::SeqCst);
        assert_eq!(fetch_block(&client, number, out).unwrap(), Outcome::Skipped);
        assert_eq!(server.requests.load(Ordering::SeqCst), before);
    }
    assert_eq!(fs::read_dir(out).unwrap().count(), 2, "no staging left");
}

#[test]
fn state_reads_round_trip_without_the_debug_namespace() {
    let Some(chain) = Chain::load(&[HOMESTEAD, CANCUN]) else {
        return;
    };
    let server = serve(chain, Mode::NoDebug);
    let client = client(&server, Duration::from_secs(10), 0);
    let temp = out_dir("state-reads");
    let out = temp.path();
    for number in [HOMESTEAD, CANCUN] {
        let outcome = fetch_block(&client, number, out).unwrap();
        let Outcome::Written(Source::StateReads { reason }) = outcome else {
            panic!("block {number}: {outcome:?}");
        };
        assert!(reason.contains("debug_traceBlockByNumber"), "{reason}");
        assert_replays(out, number);
        assert_agrees_with_original(out, number);
    }
}

#[test]
fn a_trace_that_does_not_replay_falls_back_to_state_reads() {
    let Some(chain) = Chain::load(&[HOMESTEAD]) else {
        return;
    };
    let server = serve(chain, Mode::EmptyTraces);
    let client = client(&server, Duration::from_secs(10), 0);
    let temp = out_dir("empty-traces");
    let out = temp.path();
    let outcome = fetch_block(&client, HOMESTEAD, out).unwrap();
    let Outcome::Written(Source::StateReads { reason }) = outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        reason.starts_with("the traced pre-state does not execute"),
        "{reason}"
    );
    assert_replays(out, HOMESTEAD);
}

#[test]
fn cli_fetches_a_range_that_replays() {
    let Some(chain) = Chain::load(&RANGE) else {
        return;
    };
    let server = serve(chain, Mode::Archive);
    let temp = out_dir("cli");
    let out = temp.path();
    let bin = env!("CARGO_BIN_EXE_pevm-bench");
    let range = format!("{}..{}", RANGE[0], RANGE[1]);
    let fetch = || {
        let args = [
            "fetch",
            "--rpc",
            &server.url,
            "--block",
            &range,
            "--jobs",
            "2",
        ];
        let output = Command::new(bin)
            .args(args)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        stdout
    };
    assert!(fetch().contains("2 written, 0 skipped, 0 failed"));
    assert!(fetch().contains("0 written, 2 skipped, 0 failed"));
    let replay = Command::new(bin)
        .arg("replay")
        .arg(out)
        .args(["--threads", "1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success(), "{stdout}");
    assert!(
        stdout.contains(
            "2 blocks: 2 with parallel output identical to serial; 2 of 2 headers matched, 2 \
             blocks equal to alloy-evm's executor; 0 failed"
        ),
        "{stdout}"
    );
}

/// Fetches [`HOMESTEAD`] from a failing node: the error is one line naming the block and every
/// part of `expected`, `out` is left empty, and the server saw `requests` requests.
fn assert_fails_cleanly(mode: Mode, timeout: Duration, retries: u32, expected: &[&str]) -> usize {
    let Some(chain) = Chain::load(&[HOMESTEAD]) else {
        return 0;
    };
    let server = serve(chain, mode);
    let client = client(&server, timeout, retries);
    let temp = out_dir(&format!("{mode:?}"));
    let out = temp.path();
    let error = fetch_block(&client, HOMESTEAD, out)
        .unwrap_err()
        .to_string();
    assert!(!error.contains('\n'), "{error}");
    assert!(
        error.starts_with(&format!("block {HOMESTEAD}: ")),
        "{error}"
    );
    for part in expected {
        assert!(error.contains(part), "{error:?} lacks {part:?}");
    }
    let left: Vec<_> = fs::read_dir(out).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    server.requests.load(Ordering::SeqCst)
}

#[test]
fn http_errors_are_retried_then_reported() {
    let requests = assert_fails_cleanly(
        Mode::Http500,
        Duration::from_secs(5),
        2,
        &["eth_getBlockByNumber", "HTTP 500", "upstream failed"],
    );
    assert!(matches!(requests, 0 | 3), "{requests} requests");
}

#[test]
fn malformed_responses_are_reported() {
    assert_fails_cleanly(
        Mode::Malformed,
        Duration::from_secs(5),
        2,
        &[
            "eth_getBlockByNumber",
            "malformed response",
            "<html>busy</html>",
        ],
    );
}

#[test]
fn unanswered_requests_time_out() {
    let start = Instant::now();
    assert_fails_cleanly(
        Mode::Silent,
        Duration::from_millis(500),
        1,
        &["eth_getBlockByNumber", "no response within 500ms"],
    );
    // Two attempts of half a second each, and a short backoff.
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_pruned_node_is_reported() {
    assert_fails_cleanly(
        Mode::Pruned,
        Duration::from_secs(5),
        2,
        &[
            "eth_getBalance",
            "missing trie node",
            "does not have the state of block 2462996",
        ],
    );
}
