//! Every shared mainnet block: serial == header, and parallel == serial at 1, 2, 4 and 8 threads.

use std::num::NonZeroUsize;

use pevm_bench::{
    data,
    fixture::{block_dirs, Fixture},
    replay::first_difference,
};
use pevm_vm::{execute_block, execute_block_serial};

#[test]
fn mainnet_blocks_match_headers_and_serial_at_every_thread_count() {
    let Some(dir) = data::require(data::mainnet_dir()) else {
        return;
    };
    let dirs = block_dirs(&dir).expect("mainnet folder lists blocks");
    assert!(!dirs.is_empty());
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
        for threads in [1, 2, 4, 8] {
            let parallel = execute_block(
                &fixture.provider,
                &fixture.block,
                NonZeroUsize::new(threads).unwrap(),
            );
            assert!(
                parallel == serial,
                "block {number} at {threads} threads: {}",
                first_difference(&serial, &parallel)
            );
        }
    }
}
