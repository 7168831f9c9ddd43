//! libFuzzer target: the fixture loader returns an error, never panics, on any
//! block.json / pre_state.json / block_hashes.json bytes (see
//! `pevm_fuzz::check_fixture_loader`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pevm_fuzz::check_fixture_loader(data);
});
