//! Parallel execution is deterministic: repeated runs of one conflicting block, at varying
//! thread counts, all produce the serial output.

use std::{collections::HashSet, num::NonZeroUsize};

use pevm_testkit::{mixed_block, world::world};
use pevm_vm::{execute_block_serial, Hardfork, Pevm, Strategy};

#[test]
fn repeated_parallel_runs_give_the_serial_digest() {
    let provider = world().clone();
    let block = mixed_block(Hardfork::Cancun, 300).block();
    let serial = execute_block_serial(&provider, &block)
        .expect("the mixed block is valid")
        .digest();
    let digests: HashSet<_> = (0..100)
        .map(|run| {
            let threads = NonZeroUsize::new(run % 8 + 1).unwrap();
            Pevm::new(threads)
                .force(Strategy::BlockStm)
                .execute(&provider, &block)
                .unwrap_or_else(|e| panic!("run {run} on {threads} threads failed: {e}"))
                .digest()
        })
        .collect();
    assert_eq!(digests, HashSet::from([serial]));
}
