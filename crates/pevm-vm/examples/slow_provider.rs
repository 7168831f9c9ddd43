//! Embedding pevm over a slow state store.
//!
//! A client's state usually lives in a database, not in memory: every account, storage slot
//! and code read costs microseconds. This example implements [`StateProvider`] over such a
//! store — an [`InMemoryProvider`] behind a simulated per-read latency (a busy wait by
//! default, or a sleep), optionally fronted by a small approximately-LRU cache — and runs one
//! synthetic block serially and in parallel at several latencies.
//!
//! What it shows: serial execution pays every read's latency one after another, while
//! parallel workers overlap them, so the parallel speedup grows with the read latency. The
//! block (thousands of transfers between distinct accounts, and calls to a contract that reads
//! shared slots and updates a per-caller slot) has almost no conflicts, so what limits the
//! speedup at zero latency is the engine's own overhead.
//!
//! ```sh
//! cargo run --release -p pevm-vm --example slow_provider
//! cargo run --release -p pevm-vm --example slow_provider -- --sleep --latencies 0,20,100 --threads 2,8
//! ```
//!
//! Options: `--latencies µs,...` (default `0,1,5,20`), `--threads n,...` (default 2 and the
//! machine's cores), `--sleep` (sleep instead of spinning: models I/O that leaves the core
//! free, so more threads than cores still help; the OS rounds short sleeps up to tens of
//! microseconds), `--cache N` (cache entries, default 4096; 0 turns the cache rows off),
//! `--txs N` (default 3000), `--iters N` (best of N runs, default 3).
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]

use std::{
    collections::HashMap,
    hash::{Hash, Hasher},
    num::NonZeroUsize,
    sync::Mutex,
    thread,
    time::{Duration, Instant},
};

use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use pevm_vm::{
    execute_block_serial,
    revm::{
        bytecode::Bytecode,
        context::{BlockEnv, TxEnv},
    },
    AccountBasic, Block, BlockOutput, ChainSpec, Hardfork, InMemoryAccount, InMemoryProvider, Pevm,
    ProviderError, StateProvider,
};

/// How a simulated read waits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Busy-wait: the read occupies a core (a CPU-bound store, or precise short latencies).
    Spin,
    /// `thread::sleep`: the core is free while the read waits (I/O).
    Sleep,
}

/// One read a provider serves, as a cache key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Basic(Address),
    Code(B256),
    Storage(Address, U256),
    BlockHash(u64),
}

/// A cached answer.
#[derive(Clone)]
enum Value {
    Basic(Option<AccountBasic>),
    Code(Bytecode),
    Storage(U256),
    BlockHash(B256),
}

/// A cache shard: the new generation, and the old one.
type Generations = (HashMap<Key, Value>, HashMap<Key, Value>);

/// An approximately-LRU cache: two generations per shard. Hits in the old generation are
/// promoted to the new one; when the new one is full it becomes the old one, dropping what
/// was not read since.
struct Cache {
    shards: Vec<Mutex<Generations>>,
    per_generation: usize,
}

impl Cache {
    const SHARDS: usize = 16;

    fn new(capacity: usize) -> Self {
        Self {
            shards: (0..Self::SHARDS).map(|_| Mutex::default()).collect(),
            per_generation: (capacity / Self::SHARDS / 2).max(1),
        }
    }

    fn shard(&self, key: &Key) -> &Mutex<Generations> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        &self.shards[hasher.finish() as usize % Self::SHARDS]
    }

    fn get(&self, key: &Key) -> Option<Value> {
        let mut shard = self.shard(key).lock().unwrap();
        let (new, old) = &mut *shard;
        if let Some(value) = new.get(key) {
            return Some(value.clone());
        }
        let value = old.remove(key)?;
        self.insert_locked(&mut shard, *key, value.clone());
        Some(value)
    }

    fn insert(&self, key: Key, value: Value) {
        let mut shard = self.shard(&key).lock().unwrap();
        self.insert_locked(&mut shard, key, value);
    }

    fn insert_locked(&self, (new, old): &mut Generations, key: Key, value: Value) {
        if new.len() >= self.per_generation {
            *old = std::mem::take(new);
        }
        new.insert(key, value);
    }
}

/// A [`StateProvider`] over an in-memory state where every uncached read takes `latency`.
struct SlowProvider<'a> {
    store: &'a InMemoryProvider,
    latency: Duration,
    wait: Wait,
    cache: Option<Cache>,
}

impl SlowProvider<'_> {
    /// Serves `key` from the cache, or from the store after the read latency.
    fn read(
        &self,
        key: Key,
        load: impl FnOnce(&InMemoryProvider) -> Result<Value, ProviderError>,
    ) -> Result<Value, ProviderError> {
        if let Some(value) = self.cache.as_ref().and_then(|cache| cache.get(&key)) {
            return Ok(value);
        }
        self.wait();
        let value = load(self.store)?;
        if let Some(cache) = &self.cache {
            cache.insert(key, value.clone());
        }
        Ok(value)
    }

    fn wait(&self) {
        if self.latency.is_zero() {
            return;
        }
        match self.wait {
            Wait::Sleep => thread::sleep(self.latency),
            Wait::Spin => {
                let start = Instant::now();
                while start.elapsed() < self.latency {
                    std::hint::spin_loop();
                }
            }
        }
    }
}

impl StateProvider for SlowProvider<'_> {
    fn basic(&self, address: Address) -> Result<Option<AccountBasic>, ProviderError> {
        match self.read(Key::Basic(address), |s| s.basic(address).map(Value::Basic))? {
            Value::Basic(basic) => Ok(basic),
            _ => unreachable!("a basic key holds account basics"),
        }
    }

    fn code_by_hash(&self, code_hash: B256) -> Result<Bytecode, ProviderError> {
        match self.read(Key::Code(code_hash), |s| {
            s.code_by_hash(code_hash).map(Value::Code)
        })? {
            Value::Code(code) => Ok(code),
            _ => unreachable!("a code key holds code"),
        }
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, ProviderError> {
        match self.read(Key::Storage(address, slot), |s| {
            s.storage(address, slot).map(Value::Storage)
        })? {
            Value::Storage(value) => Ok(value),
            _ => unreachable!("a storage key holds a slot value"),
        }
    }

    fn block_hash(&self, number: u64) -> Result<B256, ProviderError> {
        match self.read(Key::BlockHash(number), |s| {
            s.block_hash(number).map(Value::BlockHash)
        })? {
            Value::BlockHash(hash) => Ok(hash),
            _ => unreachable!("a block-hash key holds a hash"),
        }
    }
}

/// The contract the block calls: reads shared slots 0..8 (read-only, so no conflicts) and
/// sets `slot[CALLER] += sum + 1`.
fn contract_code() -> Vec<u8> {
    const STOP: u8 = 0x00;
    const ADD: u8 = 0x01;
    const CALLER: u8 = 0x33;
    const SLOAD: u8 = 0x54;
    const SSTORE: u8 = 0x55;
    const PUSH1: u8 = 0x60;
    let mut code = vec![PUSH1, 0, SLOAD];
    for slot in 1..8 {
        code.extend([PUSH1, slot, SLOAD, ADD]);
    }
    code.extend([CALLER, SLOAD, ADD, PUSH1, 1, ADD, CALLER, SSTORE, STOP]);
    code
}

/// An address from a tag byte and an index.
fn address(tag: u8, index: usize) -> Address {
    let mut bytes = [0; 20];
    bytes[0] = tag;
    bytes[12..].copy_from_slice(&(index as u64).to_be_bytes());
    Address::new(bytes)
}

/// The pre-state and a block of `txs` transactions, every fifth a contract call and the rest
/// transfers to fresh accounts, each from its own sender.
fn synthetic_block(txs: usize) -> (InMemoryProvider, Block) {
    let contract = address(0xc0, 0);
    let mut state = InMemoryProvider::default();
    state.insert_account(
        contract,
        InMemoryAccount {
            nonce: 1,
            code: Some(Bytecode::new_raw(contract_code().into())),
            storage: (0..8u64)
                .map(|slot| (U256::from(slot), U256::from(slot + 1)))
                .collect(),
            ..InMemoryAccount::default()
        },
    );
    let ether = U256::from(10).pow(U256::from(18));
    let txs = (0..txs)
        .map(|i| {
            let sender = address(0x10, i);
            state.insert_account(
                sender,
                InMemoryAccount {
                    balance: ether,
                    ..InMemoryAccount::default()
                },
            );
            let (to, value, gas_limit) = if i % 5 == 4 {
                (contract, U256::ZERO, 100_000)
            } else {
                (address(0x20, i), U256::from(1_000 + i), 21_000)
            };
            TxEnv {
                caller: sender,
                kind: TxKind::Call(to),
                value,
                gas_limit,
                gas_price: 10,
                nonce: 0,
                chain_id: Some(1),
                data: Bytes::new(),
                ..TxEnv::default()
            }
        })
        .collect();
    let block = Block::new(
        &ChainSpec::from_genesis(Hardfork::Cancun, 1),
        BlockEnv {
            number: U256::from(1),
            beneficiary: address(0xbe, 0),
            timestamp: U256::from(1_750_000_000),
            gas_limit: u64::MAX / 2,
            basefee: 7,
            ..BlockEnv::default()
        },
        txs,
    );
    (state, block)
}

/// The best of `iters` timings of `run`, and its (last) output.
fn best_of<T>(iters: usize, mut run: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut output = None;
    for _ in 0..iters {
        let start = Instant::now();
        let out = run();
        best = best.min(start.elapsed());
        output = Some(out);
    }
    (best, output.expect("at least one run"))
}

/// Parsed command-line options.
struct Options {
    latencies: Vec<u64>,
    threads: Vec<usize>,
    wait: Wait,
    cache: usize,
    txs: usize,
    iters: usize,
}

fn list<T: std::str::FromStr>(arg: Option<String>, name: &str) -> Vec<T> {
    let arg = arg.unwrap_or_else(|| panic!("{name} needs a value"));
    arg.split(',')
        .map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|_| panic!("bad {name}: {s}"))
        })
        .collect()
}

fn options() -> Options {
    let cores = thread::available_parallelism().map_or(2, NonZeroUsize::get);
    let mut options = Options {
        latencies: vec![0, 1, 5, 20],
        threads: vec![2, cores],
        wait: Wait::Spin,
        cache: 4096,
        txs: 3000,
        iters: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--latencies" => options.latencies = list(args.next(), "--latencies"),
            "--threads" => options.threads = list(args.next(), "--threads"),
            "--sleep" => options.wait = Wait::Sleep,
            "--cache" => options.cache = list(args.next(), "--cache")[0],
            "--txs" => options.txs = list(args.next(), "--txs")[0],
            "--iters" => options.iters = list(args.next(), "--iters")[0],
            other => panic!("unknown argument {other} (see the doc comment at the top)"),
        }
    }
    options.threads.retain(|t| *t > 0);
    options.threads.dedup();
    options
}

fn main() {
    let options = options();
    let (store, block) = synthetic_block(options.txs);
    let mode = match options.wait {
        Wait::Spin => "spin",
        Wait::Sleep => "sleep",
    };
    println!(
        "{} transactions, {} accounts; read latency by {mode}; best of {} runs",
        block.txs.len(),
        store.accounts().count(),
        options.iters
    );
    let mut header = format!("{:>12} {:>7} {:>10}", "latency(µs)", "cache", "serial ms");
    for threads in &options.threads {
        header += &format!(" {:>12} {:>8}", format!("{threads} thr ms"), "speedup");
    }
    println!("{header}");
    let caches: &[bool] = if options.cache > 0 {
        &[false, true]
    } else {
        &[false]
    };
    for &latency in &options.latencies {
        for &cached in caches {
            // A fresh (cold) cache for every run, so each run pays the same misses.
            let provider = || SlowProvider {
                store: &store,
                latency: Duration::from_micros(latency),
                wait: options.wait,
                cache: cached.then(|| Cache::new(options.cache)),
            };
            let (serial_time, serial) = best_of(options.iters, || {
                execute_block_serial(&provider(), &block).expect("the block is valid")
            });
            let mut row = format!(
                "{latency:>12} {:>7} {:>10.1}",
                if cached { "yes" } else { "no" },
                ms(serial_time)
            );
            for &threads in &options.threads {
                let workers = NonZeroUsize::new(threads).expect("non-zero");
                // A client keeps one `Pevm`: its workers and memory serve block after block.
                let mut pevm = Pevm::new(workers);
                let (time, parallel): (_, BlockOutput) = best_of(options.iters, || {
                    pevm.execute(&provider(), &block)
                        .expect("the block is valid")
                });
                assert_eq!(parallel, serial, "parallel on {threads} threads != serial");
                let speedup = serial_time.as_secs_f64() / time.as_secs_f64();
                row += &format!(" {:>12.1} {:>7.2}x", ms(time), speedup);
            }
            println!("{row}");
        }
    }
    println!("every parallel output matched the serial one");
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
