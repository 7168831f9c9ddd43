//! Lazy value transfers stay exact (many transfers to one recipient, read back in between),
//! and the plan runs chains and small blocks serially and wide blocks in parallel, with the
//! same output either way.

use std::num::NonZeroUsize;

use pevm_testkit::{
    world::{index_of, world, FRESH, RICH_SENDERS},
    Action, BlockSpec, TxSpec,
};
use pevm_vm::{execute_block_serial, Hardfork, Pevm, Strategy};

/// Transfers from every sender to one fresh address and to sender 1, with reads of both
/// balances and transfers out of sender 1 in between.
fn hot_recipient_block(hardfork: Hardfork) -> BlockSpec {
    let hot = index_of(FRESH[0]);
    let sender_1 = index_of(pevm_testkit::world::sender(1));
    let txs = (0..120)
        .map(|i| {
            let action = match i % 10 {
                3 => Action::Read {
                    of: hot,
                    hash: false,
                },
                7 => Action::Read {
                    of: sender_1,
                    hash: false,
                },
                5 | 8 => Action::transfer(sender_1, 1_000 + i as u64),
                _ => Action::transfer(hot, 1 + i as u64),
            };
            TxSpec::new(if i % 10 == 9 { 1 } else { i % RICH_SENDERS }, action)
        })
        .collect();
    BlockSpec::new(hardfork, txs)
}

#[test]
fn lazy_credits_match_serial() {
    let provider = world().clone();
    // From Amsterdam on, a transfer to an empty account costs state gas (EIP-8037), so it is
    // never credited lazily.
    for hardfork in [Hardfork::Homestead, Hardfork::Cancun, Hardfork::Amsterdam] {
        let block = hot_recipient_block(hardfork).block();
        let serial = execute_block_serial(&provider, &block).expect("valid block");
        for threads in [1, 2, 4, 8] {
            let mut pevm = Pevm::new(NonZeroUsize::new(threads).unwrap()).force(Strategy::BlockStm);
            let (output, stats) = pevm
                .execute_with_stats(&provider, &block)
                .expect("valid block");
            assert_eq!(output, serial, "{hardfork:?} at {threads} threads");
            // Under Amsterdam the transfers to the fresh address run out of gas (their limit
            // does not cover its state gas), so it stays empty: only sender 1 takes credits.
            let amsterdam = hardfork >= Hardfork::Amsterdam;
            let credits = if amsterdam { 20 } else { 60 };
            assert!(stats.lazy_credits >= credits, "{stats:?}");
            // Amsterdam's access list comes from each transaction's settled state, not the fold.
            assert_eq!(output.access_list.is_some(), amsterdam);
            // Only the beneficiary is read just to be paid (its fees): a lazily credited
            // account is paid into as its first creditor was shown it, not read again.
            assert!(amsterdam || stats.lazy_accounts == 1, "{stats:?}");
        }
    }
}

#[test]
fn plan_runs_chains_serially_and_wide_blocks_in_parallel() {
    let provider = world().clone();
    let counter = |i: usize| Action::Counter {
        load: (i % 4) as u8,
        store: (i % 4) as u8 + 4,
        add: 1,
    };
    // One sender: every transaction waits for the previous one's nonce.
    let chain = BlockSpec::new(
        Hardfork::Cancun,
        (0..60).map(|i| TxSpec::new(0, counter(i))).collect(),
    )
    .block();
    // Five senders: five independent chains.
    let wide = BlockSpec::new(
        Hardfork::Cancun,
        (0..60)
            .map(|i| TxSpec::new(i % RICH_SENDERS, counter(i)))
            .collect(),
    )
    .block();
    let mut pevm = Pevm::new(NonZeroUsize::new(4).unwrap());
    for (block, workers) in [(&chain, 1), (&wide, 4)] {
        let serial = execute_block_serial(&provider, block).expect("valid block");
        let (output, stats) = pevm.execute_with_stats(&provider, block).expect("valid");
        assert_eq!(output, serial);
        assert_eq!(stats.plan.workers, workers, "{stats:?}");
        assert!(stats.plan.total_gas >= pevm_vm::MIN_PARALLEL_GAS);
    }
}
