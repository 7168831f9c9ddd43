//! Prints what fuzz inputs decode to and how they execute: the decoded case, each
//! transaction's status and gas, the accounts the block changed, and whether every parallel
//! run matched serial. For reading seeds and minimised crashes:
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example show -- fuzz/seeds/differential/*
//! ```
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]

fn main() {
    for path in std::env::args().skip(1) {
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let case = pevm_fuzz::decode::block_spec(&data);
        println!("== {path} ({} bytes)\n{case:?}", data.len());
        match pevm_fuzz::check_differential(&data) {
            Ok(Ok(output)) => {
                for (index, result) in output.results.iter().enumerate() {
                    println!("  tx {index}: {:?}, gas {}", result.status, result.gas_used);
                }
                let changed: Vec<_> = output.state.keys().collect();
                println!("  {} accounts changed: {changed:?}", changed.len());
                println!("  parallel matches serial");
            }
            Ok(Err(error)) => println!("  rejected (serial and parallel alike): {error}"),
            Err(report) => println!("  MISMATCH\n{report}"),
        }
    }
}
