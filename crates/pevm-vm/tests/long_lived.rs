//! One long-lived [`Pevm`] runs block after block: outputs stay identical to serial, memory
//! does not grow, and extreme worker counts and fully conflicting blocks still complete.
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]

use std::num::NonZeroUsize;

use pevm_testkit::{
    mixed_block,
    world::{world, RICH_SENDERS},
    Action, BlockSpec, TxSpec,
};
use pevm_vm::{execute_block_serial, Block, Hardfork, InMemoryProvider, Pevm, Strategy};

/// Hardforks the blocks cycle through.
const FORKS: [Hardfork; 4] = [
    Hardfork::Homestead,
    Hardfork::Byzantium,
    Hardfork::London,
    Hardfork::Cancun,
];

/// Resident memory of this process in bytes (Linux), `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Runs `block` on `pevm` and asserts the output equals the serial one.
fn assert_serial(pevm: &mut Pevm, provider: &InMemoryProvider, block: &Block, what: &str) {
    let serial = execute_block_serial(provider, block);
    let parallel = pevm.execute(provider, block);
    assert!(parallel == serial, "{what}: parallel differs from serial");
}

#[test]
fn thousand_consecutive_blocks_match_serial_without_growing_memory() {
    let provider = world().clone();
    let blocks: Vec<Block> = (0..20)
        .map(|i| mixed_block(FORKS[i % FORKS.len()], 5 + i * 7).block())
        .collect();
    let mut pevm = Pevm::new(NonZeroUsize::new(3).unwrap()).force(Strategy::BlockStm);
    let mut after_warm_up = None;
    for round in 0..1000 {
        let block = &blocks[round % blocks.len()];
        assert_serial(&mut pevm, &provider, block, &format!("block {round}"));
        if round == 199 {
            after_warm_up = resident_bytes();
        }
    }
    if let (Some(before), Some(after)) = (after_warm_up, resident_bytes()) {
        let growth = after.saturating_sub(before);
        assert!(
            growth < 8 << 20,
            "resident memory grew by {growth} bytes over 800 blocks"
        );
    }
}

#[test]
fn sixty_four_workers_on_any_machine_match_serial() {
    let provider = world().clone();
    let mut pevm = Pevm::new(NonZeroUsize::new(64).unwrap()).force(Strategy::BlockStm);
    for (i, hardfork) in FORKS.into_iter().enumerate() {
        let block = mixed_block(hardfork, 100 + i).block();
        assert_serial(&mut pevm, &provider, &block, &format!("{hardfork:?}"));
    }
}

#[test]
fn ten_thousand_conflicting_transactions_complete() {
    // Every transaction increments the same counter slot.
    let txs = (0..10_000)
        .map(|i| {
            let action = Action::Counter {
                load: 0,
                store: 0,
                add: 1,
            };
            TxSpec::new(i % RICH_SENDERS, action)
        })
        .collect();
    let mut spec = BlockSpec::new(Hardfork::Cancun, txs);
    spec.gas_limit = u64::MAX / 2;
    let block = spec.block();
    let provider = world().clone();
    for forced in [Some(Strategy::BlockStm), None] {
        let pevm = Pevm::new(NonZeroUsize::new(2).unwrap());
        let mut pevm = match forced {
            Some(strategy) => pevm.force(strategy),
            None => pevm,
        };
        assert_serial(&mut pevm, &provider, &block, &format!("forced {forced:?}"));
    }
}
