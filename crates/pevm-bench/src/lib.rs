//! Fixture loading, synthetic workloads and the replay/bench machinery behind the
//! `pevm-bench` command.
#![deny(missing_docs)]

pub mod bench;
pub mod data;
pub mod fixture;
pub mod gigagas;
pub mod replay;
pub mod synthetic;
