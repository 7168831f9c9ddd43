//! End-to-end tests of the engine with a toy VM, against a serial reference.
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]

mod toy;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use pevm_core::{ExecOutcome, ExecuteError, MvMemory, Pool, Version, Vm};
use proptest::prelude::*;
use toy::{
    assert_matches_serial, assert_matches_serial_on, run_on, run_with_timeout, Op, ToyError,
    ToyExecutor, ToyVm,
};

fn vm(txs: Vec<Vec<Op>>) -> Arc<ToyVm> {
    let base = (0..8).map(|key| (key, key * 100 + 7)).collect();
    Arc::new(ToyVm {
        txs,
        base,
        hints: Vec::new(),
    })
}

#[test]
fn independent_transactions() {
    let block = vm((0..1000)
        .map(|i| vec![Op::Read(i), Op::Write(10_000 + i, i)])
        .collect());
    for threads in [1, 2, 4, 8] {
        let result = assert_matches_serial(&block, threads);
        if threads == 1 {
            assert_eq!(result.stats.re_executions, 0);
            assert_eq!(result.stats.validation_aborts, 0);
            assert_eq!(result.stats.estimate_aborts, 0);
        }
    }
}

#[test]
fn chain_of_dependencies() {
    let block = vm((0..500)
        .map(|i| vec![Op::Read(i), Op::Write(i + 1, 1)])
        .collect());
    for threads in 1..=8 {
        let result = assert_matches_serial(&block, threads);
        if threads == 1 {
            assert_eq!(result.stats.re_executions, 0);
        }
    }
}

#[test]
fn known_dependencies_avoid_re_execution() {
    let txs: Vec<_> = (0..300)
        .map(|i| vec![Op::Read(i), Op::Write(i + 1, 1)])
        .collect();
    let hints = (0..300).map(|i: usize| i.checked_sub(1)).collect();
    let base = (0..8).map(|key| (key, key * 100 + 7)).collect();
    let block = Arc::new(ToyVm { txs, base, hints });
    for threads in [1, 2, 4, 8] {
        let result = assert_matches_serial(&block, threads);
        // Every transaction runs once, after the one it depends on.
        assert_eq!(result.stats.re_executions, 0, "{threads} threads");
    }
    // A wrong hint only costs waiting, never correctness.
    let txs = (0..200)
        .map(|i| vec![Op::Read(i % 5), Op::Write(i % 7, i)])
        .collect();
    let hints = (0..200)
        .map(|i: usize| i.is_multiple_of(3).then_some(i / 2))
        .collect();
    let block = Arc::new(ToyVm {
        txs,
        base: HashMap::new(),
        hints,
    });
    for threads in [1, 2, 8] {
        assert_matches_serial(&block, threads);
    }
}

#[test]
fn hot_key_read_modify_write() {
    let block = vm((0..300)
        .map(|i| vec![Op::Read(0), Op::Write(0, i), Op::Read(0)])
        .collect());
    for threads in [1, 2, 3, 8] {
        assert_matches_serial(&block, threads);
    }
}

#[test]
fn many_threads_on_small_block() {
    let block = vm((0..100)
        .map(|i| vec![Op::Read(i % 3), Op::Write((i + 1) % 3, i)])
        .collect());
    assert_matches_serial(&block, 64);
}

#[test]
fn stale_writes_are_removed() {
    // Tx 0 writes key 1 or key 2 depending on what tx 0 reads; later txs read both.
    let block = vm(vec![
        vec![Op::Write(1, 0), Op::Write(2, 0)],
        vec![Op::Read(1), Op::Write(3, 0)],
        vec![Op::Read(3), Op::Read(2), Op::Write(2, 5)],
        vec![Op::Read(2), Op::Read(1)],
    ]);
    for threads in 1..=4 {
        assert_matches_serial(&block, threads);
    }
}

#[test]
fn degenerate_sizes() {
    let empty = vm(Vec::new());
    let result = run_with_timeout(Arc::clone(&empty), 4).expect("empty block");
    assert!(result.outputs.is_empty());
    assert_eq!(result.stats, Default::default());

    let single = vm(vec![vec![Op::Read(3), Op::Write(3, 1)]]);
    assert_matches_serial(&single, 0);
    assert_matches_serial(&single, 8);
}

#[test]
fn vm_panic_is_reported() {
    let mut txs: Vec<Vec<Op>> = (0..200)
        .map(|i| vec![Op::Read(i % 4), Op::Write(i % 4, i)])
        .collect();
    txs[77] = vec![Op::Read(0), Op::Panic];
    let block = vm(txs);
    let healthy = vm((0..50)
        .map(|i| vec![Op::Read(i % 3), Op::Write(i % 3, i)])
        .collect());
    for threads in [1, 4, 64] {
        let (result, executor) = run_on(Arc::clone(&block), ToyExecutor::new(threads));
        // The pool survives the panic: the next block on it runs normally.
        assert_matches_serial_on(&healthy, executor);
        match result {
            Err(ExecuteError::Panic {
                tx_idx: Some(77),
                message,
            }) => assert!(message.contains("toy panic in tx 77"), "{message}"),
            other => panic!(
                "expected a panic error at {threads} threads, got {:?}",
                other.map(|r| r.outputs)
            ),
        }
    }
}

#[test]
fn vm_fatal_error_is_reported() {
    let mut txs: Vec<Vec<Op>> = (0..200)
        .map(|i| vec![Op::Read(i % 4), Op::Write(i % 4, i)])
        .collect();
    txs[120] = vec![Op::Read(1), Op::Fail];
    let block = vm(txs);
    for threads in [1, 4, 64] {
        match run_with_timeout(Arc::clone(&block), threads) {
            Err(ExecuteError::Vm { tx_idx, error }) => {
                assert_eq!((tx_idx, error), (120, ToyError(120)));
            }
            other => panic!(
                "expected a VM error at {threads} threads, got {:?}",
                other.map(|r| r.outputs)
            ),
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4u64).prop_map(Op::Read),
        (0..4u64, 0..100u64).prop_map(|(key, salt)| Op::Write(key, salt)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_blocks_match_serial(
        txs in prop::collection::vec(prop::collection::vec(op(), 0..6), 1..200),
        threads in 1..16usize,
    ) {
        assert_matches_serial(&vm(txs), threads);
    }
}

#[test]
fn base_state_is_read_when_nobody_wrote() {
    let block = Arc::new(ToyVm {
        txs: vec![vec![Op::Read(42)], vec![Op::Read(43), Op::Write(42, 0)]],
        base: HashMap::from([(42, 5), (43, 6)]),
        hints: Vec::new(),
    });
    let result = assert_matches_serial(&block, 2);
    assert_eq!(result.outputs[0], vec![toy::Event::Read(42, 5)]);
}

#[test]
fn executor_is_reused_across_blocks_of_any_size() {
    let mut executor = ToyExecutor::new(4);
    for round in 0..60u64 {
        let size = [0, 1, 7, 300, 2, 1000][round as usize % 6];
        let txs = (0..size)
            .map(|i| vec![Op::Read((i + round) % 5), Op::Write(i % 7, round)])
            .collect();
        executor = assert_matches_serial_on(&vm(txs), executor).1;
    }
}

#[test]
fn map_keeps_item_order_on_any_worker_count() {
    let items: Vec<u64> = (0..1001).collect();
    for threads in [1, 2, 3, 8] {
        let pool = Pool::new(threads);
        assert_eq!(
            pool.map(&items, |x| x * 2),
            items.iter().map(|x| x * 2).collect::<Vec<_>>()
        );
        assert_eq!(pool.map(&items[..1], |x| x + 1), vec![1]);
        assert!(pool.map(&items[..0], |x| x + 1).is_empty());
    }
}

#[test]
fn woken_helpers_all_take_the_work_handed_over() {
    for threads in [1, 2, 3, 8] {
        let pool = Pool::new(threads);
        for round in 0..3 {
            pool.wake();
            if round == 2 {
                // Woken for work that does not come, they give up waiting.
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            // Every worker waits for all the others: each helper must be free to take part.
            let barrier = std::sync::Barrier::new(threads);
            let ran = pool.run_workers(threads, || {
                barrier.wait();
            });
            assert_eq!(ran.len(), threads, "{threads} threads");
        }
    }
}

#[test]
fn for_each_mut_visits_every_item_once_with_its_index() {
    for threads in [1, 2, 3, 8] {
        let pool = Pool::new(threads);
        for len in [0, 1, 2, 3, 8, 1001] {
            let mut items = vec![0usize; len];
            pool.for_each_mut(&mut items, |index, item| *item += index + 1);
            assert_eq!(items, (1..=len).collect::<Vec<_>>(), "{threads} threads");
        }
    }
}

#[test]
fn run_batches_runs_every_item_once_with_one_state_per_worker() {
    let items: Vec<u64> = (0..1001).collect();
    for threads in [1, 2, 3, 8] {
        let pool = Pool::new(threads);
        for workers in [1, 2, threads] {
            // Each worker's state counts its batches; its result collects the items it ran.
            let ran = pool
                .run_batches(
                    &items,
                    workers,
                    || 0u32,
                    |batches, seen: &mut Vec<u64>, batch| {
                        *batches += 1;
                        seen.extend(batch);
                        std::ops::ControlFlow::Continue(())
                    },
                )
                .expect("no panic");
            assert!(ran.len() <= workers.min(threads));
            let mut all: Vec<u64> = ran.into_iter().flatten().collect();
            all.sort_unstable();
            assert_eq!(all, items, "{threads} threads, {workers} workers");
        }
        let empty: Vec<Vec<u64>> = pool
            .run_batches(
                &items[..0],
                threads,
                || (),
                |_, _: &mut Vec<u64>, _| std::ops::ControlFlow::Continue(()),
            )
            .expect("no panic");
        assert!(empty.iter().all(Vec::is_empty));
    }
}

#[test]
fn run_batches_stops_on_break_and_reports_a_panic() {
    let items: Vec<u64> = (0..10_000).collect();
    let pool = Pool::new(4);
    let ran = pool
        .run_batches(
            &items,
            1,
            || (),
            |_, seen: &mut usize, batch: &[u64]| {
                *seen += batch.len();
                if batch.contains(&0) {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                }
            },
        )
        .expect("no panic");
    // The first batch breaks: the worker stops there.
    assert_eq!(ran, vec![items.len() / 32 + 1]);
    let panicked = pool.run_batches(
        &items,
        4,
        || (),
        |_, _: &mut (), batch: &[u64]| {
            assert!(!batch.contains(&5_000), "item 5000");
            std::ops::ControlFlow::Continue(())
        },
    );
    assert!(panicked.unwrap_err().contains("item 5000"));
}

/// The toy VM, counting the executions it starts.
struct Counting {
    vm: Arc<ToyVm>,
    started: AtomicUsize,
}

impl Vm for Counting {
    type Key = u64;
    type Value = u64;
    type Output = Vec<toy::Event>;
    type Error = ToyError;
    type Worker<'m> = <ToyVm as Vm>::Worker<'m>;

    fn worker<'m>(&'m self, mv: &'m MvMemory<u64, u64>) -> Self::Worker<'m> {
        self.vm.worker(mv)
    }

    fn execute<'m>(
        &'m self,
        worker: &mut Self::Worker<'m>,
        version: Version,
    ) -> ExecOutcome<u64, u64, Self::Output, ToyError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        self.vm.execute(worker, version)
    }
}

#[test]
fn outputs_are_committed_in_block_order_while_the_block_runs() {
    let independent = vm((0..400)
        .map(|i| vec![Op::Read(i), Op::Write(10_000 + i, i)])
        .collect());
    let hot = vm((0..300)
        .map(|i| vec![Op::Read(i % 4), Op::Write(0, i), Op::Read(0)])
        .collect());
    for (block, threads) in [(&independent, 1), (&independent, 4), (&hot, 1), (&hot, 3)] {
        let (serial, _) = block.serial();
        let counting = Counting {
            vm: Arc::clone(block),
            started: AtomicUsize::new(0),
        };
        let mut committed = Vec::new();
        let mut executor = ToyExecutor::new(threads);
        executor
            .execute_committing(
                &counting,
                block.txs.len(),
                threads,
                &mut |tx_idx, output| {
                    committed.push((tx_idx, output, counting.started.load(Ordering::SeqCst)));
                },
            )
            .expect("toy block");
        let order: Vec<usize> = committed.iter().map(|(tx_idx, ..)| *tx_idx).collect();
        assert_eq!(order, (0..block.txs.len()).collect::<Vec<_>>());
        let outputs: Vec<_> = committed
            .iter()
            .map(|(_, output, _)| output.clone())
            .collect();
        assert_eq!(outputs, serial, "{threads} threads");
        if threads == 1 && Arc::ptr_eq(block, &independent) {
            // One worker: each transaction is committed before the next one starts.
            for (tx_idx, _, started) in &committed {
                assert_eq!(
                    *started,
                    tx_idx + 1,
                    "executions started at commit of {tx_idx}"
                );
            }
        }
    }
}
