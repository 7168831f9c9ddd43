//! Fixture loading, synthetic workloads and the replay/bench machinery behind the
//! `pevm-bench` command.
#![deny(missing_docs)]

pub mod bench;
pub mod blockchain_tests;
pub mod data;
pub mod fetch;
pub mod fixture;
pub mod gigagas;
pub mod plot;
pub mod replay;
pub mod synthetic;
pub mod uniswap;
