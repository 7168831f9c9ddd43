//! The engine's integration tests, one module per concern, in one test binary: each binary
//! would otherwise compile and link revm's EVM for itself. `long_lived.rs` stays a binary of
//! its own: it measures its process's resident memory, which other tests would disturb.
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]

mod access_lists;
mod block_executor;
mod database_ref;
mod determinism;
mod faults;
mod lazy_and_plan;
mod random_blocks;
mod transfers;
