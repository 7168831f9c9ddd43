//! Fixture loading, synthetic workloads and the replay/bench machinery behind the
//! `pevm-bench` command.
#![deny(missing_docs)]
// The unit tests do not use the benchmarks' dependencies.
#![cfg_attr(test, allow(unused_crate_dependencies))]

// Dependencies of the package for its binary alone: revm for its native precompile backends
// (c-kzg, blst), jemalloc as the binary's allocator.
use revm as _;
#[cfg(feature = "jemalloc")]
use tikv_jemallocator as _;

pub mod bench;
pub mod blockchain_tests;
pub mod data;
pub mod disk;
pub mod fetch;
pub mod fixture;
pub mod gigagas;
pub mod plot;
pub mod replay;
pub mod synthetic;
pub mod uniswap;
