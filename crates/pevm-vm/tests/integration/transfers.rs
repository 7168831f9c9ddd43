//! Blocks of plain transfers on the transfer strategy (groups of transactions sharing no
//! account, without Block-STM) give serial's output and serial's error, at any worker count;
//! a transfer that meets code sends the block to Block-STM.

use std::num::NonZeroUsize;

use alloy_primitives::U256;
use pevm_testkit::{
    transfer_block_spec,
    world::{index_of, sender, world, DESTRUCTIBLES, EMPTY, FRESH, RICH_SENDERS},
    Action, BlockSpec, TxSpec,
};
use pevm_vm::{execute_block_serial, BlockStats, Hardfork, Pevm, Strategy};
use proptest::{prelude::*, test_runner::TestCaseResult};

/// Runs `spec` serially and with `pevm`, checks both give the same outcome, and returns the
/// stats of a successful parallel run.
fn same_as_serial(pevm: &mut Pevm, spec: &BlockSpec) -> Result<Option<BlockStats>, TestCaseError> {
    let provider = world().clone();
    let block = spec.block();
    let serial = execute_block_serial(&provider, &block);
    let parallel = pevm.execute_with_stats(&provider, &block);
    let stats = parallel.as_ref().ok().map(|(_, stats)| *stats);
    prop_assert_eq!(parallel.map(|(output, _)| output), serial);
    Ok(stats)
}

/// On the transfer strategy with `threads` workers.
fn transfers(threads: usize) -> Pevm {
    Pevm::new(NonZeroUsize::new(threads).unwrap()).force(Strategy::Transfers)
}

/// Transfers to a hot fresh address, chains between senders, zero-value transfers to empty
/// accounts, and self-transfers.
fn transfer_mix(hardfork: Hardfork, size: usize) -> BlockSpec {
    let hot = index_of(FRESH[0]);
    let txs = (0..size)
        .map(|i| {
            let action = match i % 7 {
                1 => Action::transfer(index_of(sender((i + 1) % RICH_SENDERS)), 1_000),
                3 => Action::transfer(index_of(EMPTY[i % 2]), 0),
                5 => Action::transfer(index_of(sender(i % RICH_SENDERS)), 7),
                _ => Action::transfer(hot, 1 + i as u64),
            };
            let mut tx = TxSpec::new(i % RICH_SENDERS, action);
            tx.tip = (i % 3) as u8;
            tx.dynamic_fee = i % 2 == 0;
            tx
        })
        .collect();
    BlockSpec::new(hardfork, txs)
}

#[test]
fn transfer_blocks_run_on_the_transfer_strategy() -> TestCaseResult {
    for hardfork in [
        Hardfork::Homestead,
        Hardfork::SpuriousDragon,
        Hardfork::Cancun,
    ] {
        for basefee in [0, 7] {
            let mut spec = transfer_mix(hardfork, 140);
            spec.basefee = basefee;
            for threads in [1, 2, 4, 8] {
                let stats = same_as_serial(&mut transfers(threads), &spec)?.expect("valid");
                assert_eq!(stats.plan.strategy, Strategy::Transfers, "{hardfork:?}");
                assert_eq!(stats.engine.executions, 140);
                assert!(stats.lazy_credits >= 60, "{stats:?}");
            }
        }
    }
    Ok(())
}

#[test]
fn a_recipient_one_sender_pays_is_written_by_its_group() -> TestCaseResult {
    // Sender 0 alone pays FRESH[0], in every fourth transaction: its group writes the account.
    // Every sender pays FRESH[1]: those transfers are credited as deltas.
    let txs: Vec<TxSpec> = (0..80)
        .map(|i| match i % 4 {
            0 => TxSpec::new(0, Action::transfer(index_of(FRESH[0]), 1 + i as u64)),
            _ => TxSpec::new(i % RICH_SENDERS, Action::transfer(index_of(FRESH[1]), 3)),
        })
        .collect();
    for hardfork in forks() {
        let spec = BlockSpec::new(hardfork, txs.clone());
        for threads in [1, 2, 4] {
            let stats = same_as_serial(&mut transfers(threads), &spec)?.expect("valid");
            assert_eq!(stats.plan.strategy, Strategy::Transfers, "{hardfork:?}");
            assert_eq!(stats.lazy_credits, 60, "{hardfork:?}: {stats:?}");
        }
    }
    Ok(())
}

#[test]
fn plan_picks_the_transfer_strategy_for_wide_transfer_blocks() -> TestCaseResult {
    // 400 transfers of five senders to one address: five chains, enough work for two workers.
    let hot = index_of(FRESH[1]);
    let txs = (0..400)
        .map(|i| TxSpec::new(i % RICH_SENDERS, Action::transfer(hot, 1)))
        .collect();
    let spec = BlockSpec::new(Hardfork::Cancun, txs);
    let stats = same_as_serial(&mut Pevm::new(NonZeroUsize::new(2).unwrap()), &spec)?;
    let stats = stats.expect("valid");
    assert_eq!(stats.plan.strategy, Strategy::Transfers, "{stats:?}");
    assert_eq!(stats.plan.workers, 2);
    Ok(())
}

#[test]
fn a_transfer_to_code_sends_the_block_to_block_stm() -> TestCaseResult {
    let mut spec = transfer_mix(Hardfork::Cancun, 60);
    spec.txs[41].action = Action::Call {
        target: index_of(DESTRUCTIBLES[0]),
        destroy_to: None,
        value: U256::from(5),
    };
    for threads in [1, 2, 4] {
        let stats = same_as_serial(&mut transfers(threads), &spec)?.expect("valid");
        assert_eq!(stats.plan.strategy, Strategy::BlockStm);
    }
    Ok(())
}

#[test]
fn large_blocks_are_analysed_on_the_workers() -> TestCaseResult {
    // Beyond the first 1,024 transactions the analysis reads on the workers: a call to code
    // deep in the block is still seen before execution.
    let mut spec = transfer_mix(Hardfork::Cancun, 3_000);
    spec.gas_limit = 100_000_000;
    let stats = same_as_serial(&mut transfers(2), &spec)?.expect("valid");
    assert_eq!(stats.plan.strategy, Strategy::Transfers);
    spec.txs[2_500].action = Action::Counter {
        load: 0,
        store: 1,
        add: 1,
    };
    let stats = same_as_serial(&mut transfers(2), &spec)?.expect("valid");
    assert_eq!(stats.plan.strategy, Strategy::BlockStm);
    Ok(())
}

#[test]
fn beneficiary_as_sender_sends_the_block_to_block_stm() -> TestCaseResult {
    let mut spec = transfer_mix(Hardfork::Cancun, 60);
    spec.coinbase_is_sender = true;
    let stats = same_as_serial(&mut transfers(2), &spec)?.expect("valid");
    assert_eq!(stats.plan.strategy, Strategy::BlockStm);
    Ok(())
}

/// The proptest configuration: 64 cases, no regression files written into the source tree.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Every hardfork rule set the transfers meet: before and after EIP-161, EIP-1559, Cancun.
fn forks() -> Vec<Hardfork> {
    vec![
        Hardfork::Frontier,
        Hardfork::Homestead,
        Hardfork::SpuriousDragon,
        Hardfork::London,
        Hardfork::Cancun,
        Hardfork::Prague,
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_transfer_blocks_match_serial(
        spec in transfer_block_spec(forks(), 1, 80, false, true),
        threads in 1..=8usize,
    ) {
        let stats = same_as_serial(&mut transfers(threads), &spec)?.expect("valid");
        prop_assert_eq!(stats.plan.strategy, Strategy::Transfers);
    }

    /// One executor over several blocks: what it keeps from one (the accounts it numbered)
    /// shows in no other.
    #[test]
    fn consecutive_transfer_blocks_on_one_executor_match_serial(
        specs in proptest::collection::vec(transfer_block_spec(forks(), 1, 80, false, true), 2..4),
        threads in 1..=4usize,
    ) {
        let mut pevm = transfers(threads);
        for spec in &specs {
            let stats = same_as_serial(&mut pevm, spec)?.expect("valid");
            prop_assert_eq!(stats.plan.strategy, Strategy::Transfers);
        }
    }

    /// With now and then a transfer to the beneficiary, a call to code, or the beneficiary
    /// sending: those blocks go to Block-STM, before or during the run.
    #[test]
    fn random_blocks_of_mostly_transfers_match_serial(
        spec in transfer_block_spec(forks(), 1, 80, false, false),
        threads in 1..=8usize,
    ) {
        same_as_serial(&mut transfers(threads), &spec)?;
    }

    #[test]
    fn invalid_transfer_blocks_fail_as_serially(
        spec in transfer_block_spec(forks(), 1, 80, true, true),
        threads in 1..=8usize,
    ) {
        same_as_serial(&mut transfers(threads), &spec)?;
    }
}
