//! Every shared mainnet block: serial == header, and parallel == serial at 1, 2, 4 and 8 threads
//! (one long-lived engine per thread count runs every block, on the parallel path).

use std::num::NonZeroUsize;

use pevm_bench::{
    data,
    fixture::{block_dirs, Fixture},
    replay::first_difference,
};
use pevm_vm::{execute_block_serial, Pevm};

#[test]
fn mainnet_blocks_match_headers_and_serial_at_every_thread_count() {
    let Some(dir) = data::require(data::mainnet_dir()) else {
        return;
    };
    let dirs = block_dirs(&dir).expect("mainnet folder lists blocks");
    assert!(!dirs.is_empty());
    let mut engines: Vec<_> = [1, 2, 4, 8]
        .map(|t| (t, Pevm::new(NonZeroUsize::new(t).unwrap()).adaptive(false)))
        .into();
    for dir in dirs {
        let fixture = Fixture::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        let number = fixture.number();
        let serial = execute_block_serial(&fixture.provider, &fixture.block);
        let output = serial
            .as_ref()
            .unwrap_or_else(|e| panic!("block {number}: {e}"));
        if let Err(mismatch) =
            output.check_header(fixture.block.hardfork, &fixture.rpc_block.header)
        {
            panic!("block {number}: {mismatch}");
        }
        for (threads, engine) in &mut engines {
            let parallel = engine.execute(&fixture.provider, &fixture.block);
            assert!(
                parallel == serial,
                "block {number} at {threads} threads: {}",
                first_difference(&serial, &parallel)
            );
        }
    }
}
