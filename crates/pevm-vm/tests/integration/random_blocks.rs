//! Differential tests: random conflicting blocks executed serially and in parallel (at random
//! thread counts) give identical results, state diffs, per-transaction revm outputs and errors.

use std::num::NonZeroUsize;

use pevm_testkit::{block_spec, mixed_block, world::world, BlockSpec};
use pevm_vm::{
    execute_block_serial, execute_transactions_serial, BlockOutput, ExecutionError, Hardfork, Pevm,
    Strategy, TxStatus,
};
use proptest::{prelude::*, test_runner::TestCaseResult};

/// Runs `spec` serially and on `threads` workers and checks both give the same outcome.
fn assert_same_outcome(
    spec: &BlockSpec,
    threads: usize,
) -> Result<Result<BlockOutput, ExecutionError>, TestCaseError> {
    let provider = world().clone();
    let block = spec.block();
    let serial = execute_block_serial(&provider, &block);
    let threads = NonZeroUsize::new(threads).expect("at least one thread");
    let parallel = Pevm::new(threads)
        .force(Strategy::BlockStm)
        .execute(&provider, &block);
    prop_assert_eq!(&parallel, &serial, "{} threads", threads);
    let serial_states = execute_transactions_serial(&provider, &block);
    let parallel_states = Pevm::new(threads)
        .force(Strategy::BlockStm)
        .execute_transactions(&provider, &block);
    prop_assert_eq!(
        &parallel_states,
        &serial_states,
        "revm outputs, {} threads",
        threads
    );
    // With the access list the serial run builds: the same output, access list included.
    let listing = pevm_vm::Block {
        access_list: true,
        ..block.clone()
    };
    if let Ok(listed_serial) = execute_block_serial(&provider, &listing) {
        let list = listed_serial.access_list.clone().expect("asked for");
        let listed = Pevm::new(threads).execute_with_access_list(&provider, &listing, &list);
        prop_assert_eq!(
            listed.map(|(o, _)| o),
            Ok(listed_serial),
            "with its access list"
        );
    }
    Ok(serial)
}

/// A valid block must execute, identically on any number of threads.
fn check_valid(spec: &BlockSpec, threads: usize) -> TestCaseResult {
    let serial = assert_same_outcome(spec, threads)?;
    prop_assert!(serial.is_ok(), "valid block failed: {:?}", serial.err());
    Ok(())
}

/// The proptest configuration: 48 cases, no regression files written into the source tree.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn cancun_blocks_match_serial(
        spec in block_spec(vec![Hardfork::Cancun], 1, 60, false),
        threads in 1..=16usize,
    ) {
        check_valid(&spec, threads)?;
    }

    #[test]
    fn prague_blocks_match_serial(
        spec in block_spec(vec![Hardfork::Prague], 1, 60, false),
        threads in 1..=16usize,
    ) {
        check_valid(&spec, threads)?;
    }

    /// Before EIP-161 touched empty accounts stay; before Cancun self-destruct always deletes.
    #[test]
    fn early_fork_blocks_match_serial(
        spec in block_spec(
            vec![
                Hardfork::Frontier,
                Hardfork::Homestead,
                Hardfork::SpuriousDragon,
                Hardfork::Byzantium,
                Hardfork::London,
            ],
            1,
            60,
            false,
        ),
        threads in 1..=16usize,
    ) {
        check_valid(&spec, threads)?;
    }

    /// Wrong nonces, unaffordable transactions and exhausted block gas: same error everywhere.
    #[test]
    fn invalid_blocks_fail_the_same_way(
        spec in block_spec(
            vec![Hardfork::Frontier, Hardfork::SpuriousDragon, Hardfork::Cancun, Hardfork::Prague],
            1,
            60,
            true,
        ),
        threads in 1..=16usize,
    ) {
        let serial = assert_same_outcome(&spec, threads)?;
        prop_assert!(serial.is_err(), "a block with a wrong nonce executed");
    }
}

/// Checks that Block-STM on `threads` workers runs `block` (of `hardfork`) to `serial`.
fn assert_block_stm_gives(
    serial: &BlockOutput,
    block: &pevm_vm::Block,
    threads: usize,
    hardfork: Hardfork,
) {
    let parallel = Pevm::new(NonZeroUsize::new(threads).unwrap())
        .force(Strategy::BlockStm)
        .execute(world(), block);
    assert_eq!(
        parallel.as_ref(),
        Ok(serial),
        "{hardfork:?}, {threads} threads"
    );
}

#[test]
fn mixed_blocks_match_serial_at_every_thread_count() {
    let provider = world().clone();
    for hardfork in [
        Hardfork::Frontier,
        Hardfork::SpuriousDragon,
        Hardfork::Cancun,
        Hardfork::Prague,
    ] {
        let block = mixed_block(hardfork, 300).block();
        let serial = execute_block_serial(&provider, &block)
            .unwrap_or_else(|e| panic!("{hardfork:?}: the mixed block is valid: {e}"));
        for threads in [1, 2, 3, 4, 8, 16] {
            assert_block_stm_gives(&serial, &block, threads, hardfork);
            let states = Pevm::new(NonZeroUsize::new(threads).unwrap())
                .force(Strategy::BlockStm)
                .execute_transactions(&provider, &block);
            assert_eq!(
                states,
                execute_transactions_serial(&provider, &block),
                "{hardfork:?}, {threads} threads: revm outputs"
            );
        }
        let count =
            |f: fn(&TxStatus) -> bool| serial.results.iter().filter(|r| f(&r.status)).count();
        let succeeded = count(|s| *s == TxStatus::Success);
        assert!(
            succeeded * 3 >= block.txs.len() * 2,
            "{hardfork:?}: only {succeeded} of {} transactions succeeded",
            block.txs.len()
        );
        assert!(
            count(|s| matches!(s, TxStatus::Halt(_))) > 0,
            "{hardfork:?}: no halts"
        );
        assert!(
            serial.results.iter().any(|r| r.created_address.is_some()),
            "{hardfork:?}: nothing created"
        );
        if hardfork < Hardfork::Cancun {
            assert!(
                serial.state.values().any(|change| change.info.is_none()),
                "{hardfork:?}: no account removed"
            );
        }
    }
}

#[test]
fn large_mixed_blocks_fold_on_every_worker() {
    // Blocks this large fold their state diff on every worker, an account's slots spread over
    // them: creations, self-destructs and storage writes must still fold as serially.
    let provider = world().clone();
    for hardfork in [Hardfork::SpuriousDragon, Hardfork::Cancun] {
        let mut spec = mixed_block(hardfork, 4_500);
        spec.gas_limit = 2_000_000_000;
        let block = spec.block();
        let serial = execute_block_serial(&provider, &block)
            .unwrap_or_else(|e| panic!("{hardfork:?}: the mixed block is valid: {e}"));
        let wiped = serial.state.values().filter(|c| c.storage_cleared).count();
        let slots: usize = serial.state.values().map(|c| c.storage.len()).sum();
        assert!(
            wiped > 0 && slots > 8,
            "{hardfork:?}: {wiped} wiped, {slots} slots"
        );
        for threads in [2, 3, 4] {
            assert_block_stm_gives(&serial, &block, threads, hardfork);
        }
    }
}
