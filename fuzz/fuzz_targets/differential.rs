//! libFuzzer target: a block decoded from the input executes identically serially and on
//! 1, 2, 4 and 8 threads (see `pevm_fuzz::check_differential`).
#![no_main]
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(report) = pevm_fuzz::check_differential(data) {
        panic!("{report}");
    }
});
