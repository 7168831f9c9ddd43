//! A failing or panicking state provider stops the block with an error, serially and in
//! parallel, without hanging the workers or breaking later executions.

use std::{
    num::NonZeroUsize,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc, Arc,
    },
    thread,
    time::Duration,
};

use alloy_primitives::{Address, B256, U256};
use pevm_testkit::{
    world::{index_of, world, COUNTER, DESTRUCTIBLES},
    Action, BlockSpec, TxSpec,
};
use pevm_vm::{
    execute_block_serial, revm::bytecode::Bytecode, AccountBasic, Block, BlockOutput,
    ExecutionError, Hardfork, InMemoryProvider, Pevm, ProviderError, StateProvider, Strategy,
};

/// The error of a failing storage read.
const STORAGE_FAILURE: &str = "injected storage failure";
/// The error of a failing account read.
const ACCOUNT_FAILURE: &str = "injected account failure";
/// The message of an injected panic.
const PANIC_MESSAGE: &str = "injected provider panic";
/// Thread counts the parallel executor is tried with.
const THREADS: [usize; 3] = [1, 2, 8];

/// [`world`] with faults injected into chosen reads.
#[derive(Default)]
struct FaultyProvider {
    inner: InMemoryProvider,
    /// `storage()` of this slot fails.
    failing_slot: Option<(Address, U256)>,
    /// `basic()` of this address fails from this call on (counting from 1).
    failing_account: Option<(Address, usize)>,
    /// `basic()` calls for `failing_account` so far.
    account_reads: AtomicUsize,
    /// `storage()` of this address panics while `panicking` is set.
    panicking_storage: Option<Address>,
    panicking: AtomicBool,
}

impl FaultyProvider {
    /// The faultless world.
    fn new() -> Self {
        Self {
            inner: world().clone(),
            ..Self::default()
        }
    }
}

impl StateProvider for FaultyProvider {
    fn basic(&self, address: Address) -> Result<Option<AccountBasic>, ProviderError> {
        if let Some((failing, from_call)) = self.failing_account {
            if address == failing
                && self.account_reads.fetch_add(1, Ordering::SeqCst) + 1 >= from_call
            {
                return Err(ProviderError(ACCOUNT_FAILURE.into()));
            }
        }
        self.inner.basic(address)
    }

    fn code_by_hash(&self, code_hash: B256) -> Result<Bytecode, ProviderError> {
        self.inner.code_by_hash(code_hash)
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, ProviderError> {
        if self.failing_slot == Some((address, slot)) {
            return Err(ProviderError(STORAGE_FAILURE.into()));
        }
        if self.panicking_storage == Some(address) && self.panicking.load(Ordering::SeqCst) {
            panic!("{PANIC_MESSAGE}");
        }
        self.inner.storage(address, slot)
    }

    fn block_hash(&self, number: u64) -> Result<B256, ProviderError> {
        self.inner.block_hash(number)
    }
}

/// `execute_block` on a spawned thread; fails the test if it panics or takes over 30 s.
fn execute_in_time(
    provider: &Arc<FaultyProvider>,
    block: &Arc<Block>,
    threads: usize,
) -> Result<BlockOutput, ExecutionError> {
    let (sender, receiver) = mpsc::channel();
    let (provider, block) = (Arc::clone(provider), Arc::clone(block));
    thread::spawn(move || {
        let threads = NonZeroUsize::new(threads).expect("at least one thread");
        // The receiver only goes away once the test has failed.
        let _ = sender.send(
            Pevm::new(threads)
                .force(Strategy::BlockStm)
                .execute(&*provider, &block),
        );
    });
    match receiver.recv_timeout(Duration::from_secs(30)) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{threads} threads: execution hung"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!("{threads} threads: execute_block panicked")
        }
    }
}

/// A `COUNTER` update `slot[store] = slot[load] + 1` from `sender`.
fn counter(sender: usize, load: u8, store: u8) -> TxSpec {
    TxSpec::new(
        sender,
        Action::Counter {
            load,
            store,
            add: 1,
        },
    )
}

/// A transfer of 1 wei from `sender` to recipient `to`.
fn transfer(sender: usize, to: u8) -> TxSpec {
    TxSpec::new(sender, Action::transfer(to, 1))
}

/// Conflicting `COUNTER` updates where transaction 5 is the first to touch slot 3.
fn counter_block() -> Block {
    BlockSpec::new(
        Hardfork::Cancun,
        vec![
            counter(0, 0, 1),
            transfer(1, 2),
            counter(2, 1, 2),
            counter(0, 2, 0),
            transfer(3, 0),
            counter(1, 3, 0),
            counter(4, 0, 3),
            transfer(0, 4),
            counter(2, 3, 1),
            counter(3, 1, 1),
            transfer(4, 1),
            counter(0, 0, 0),
        ],
    )
    .block()
}

/// Transactions 1, 4 and 7 read the balance of `DESTRUCTIBLES[1]`, which no one writes.
fn balance_block() -> Block {
    let of = index_of(DESTRUCTIBLES[1]);
    let read = |sender| TxSpec::new(sender, Action::Read { of, hash: false });
    BlockSpec::new(
        Hardfork::Cancun,
        vec![
            counter(0, 0, 1),
            read(1),
            transfer(2, 3),
            counter(3, 1, 0),
            read(4),
            transfer(0, 1),
            counter(1, 0, 0),
            read(2),
            counter(3, 0, 1),
        ],
    )
    .block()
}

#[test]
fn failing_storage_read_stops_the_block_at_the_same_transaction() {
    let provider = Arc::new(FaultyProvider {
        failing_slot: Some((COUNTER, U256::from(3))),
        ..FaultyProvider::new()
    });
    let block = Arc::new(counter_block());
    let expected = Err(ExecutionError::Provider {
        index: 5,
        error: ProviderError(STORAGE_FAILURE.into()),
    });
    assert_eq!(execute_block_serial(&*provider, &block), expected);
    for threads in THREADS {
        assert_eq!(
            execute_in_time(&provider, &block, threads),
            expected,
            "{threads} threads"
        );
    }
}

#[test]
fn account_read_failing_after_some_calls_stops_the_block() {
    // The third read fails, and every one after it: which transaction makes it depends on
    // scheduling, but some reader's final execution must fail.
    let readers = [1, 4, 7];
    let faulty = || {
        Arc::new(FaultyProvider {
            failing_account: Some((DESTRUCTIBLES[1], 3)),
            ..FaultyProvider::new()
        })
    };
    let block = Arc::new(balance_block());
    let is_expected = |result: &Result<BlockOutput, ExecutionError>| {
        matches!(result, Err(ExecutionError::Provider { index, error })
            if readers.contains(index) && error.0 == ACCOUNT_FAILURE)
    };
    let serial = execute_block_serial(&*faulty(), &block);
    assert!(is_expected(&serial), "serial: {serial:?}");
    for threads in THREADS {
        let parallel = execute_in_time(&faulty(), &block, threads);
        assert!(is_expected(&parallel), "{threads} threads: {parallel:?}");
    }
}

#[test]
fn provider_panic_is_reported_and_leaves_nothing_broken() {
    let provider = Arc::new(FaultyProvider {
        panicking_storage: Some(COUNTER),
        panicking: AtomicBool::new(true),
        ..FaultyProvider::new()
    });
    let block = Arc::new(counter_block());
    let counter_txs = [0, 2, 3, 5, 6, 8, 9, 11];
    for threads in THREADS {
        match execute_in_time(&provider, &block, threads) {
            Err(ExecutionError::Panic {
                tx: Some(tx),
                message,
            }) if counter_txs.contains(&tx) && message.contains(PANIC_MESSAGE) => {}
            other => panic!("{threads} threads: expected the injected panic, got {other:?}"),
        }
    }
    provider.panicking.store(false, Ordering::SeqCst);
    let serial = execute_block_serial(&*provider, &block).expect("the block is valid");
    assert!(serial.results.iter().all(|r| r.is_success()));
    for threads in THREADS {
        assert_eq!(
            execute_in_time(&provider, &block, threads).as_ref(),
            Ok(&serial),
            "{threads} threads after the panic"
        );
    }
}
