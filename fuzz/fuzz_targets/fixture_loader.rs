//! libFuzzer target: the fixture loader returns an error, never panics, on any
//! block.json / pre_state.json / block_hashes.json bytes (see
//! `pevm_fuzz::check_fixture_loader`).
#![no_main]
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pevm_fuzz::check_fixture_loader(data);
});
