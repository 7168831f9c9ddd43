//! Writes fixture-loader seeds built from the shared mainnet blocks into a folder, for
//! `cargo fuzz run fixture_loader` (the shared data is never copied into the repository):
//! `cargo run --manifest-path fuzz/Cargo.toml --example fixture_seeds -- corpus/fixture_loader`.
// A test, bench, example or binary crate sees every dependency of its package.
#![allow(unused_crate_dependencies)]

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "corpus/fixture_loader".into()),
    );
    let mainnet = pevm_bench::data::mainnet_dir();
    let seeds = pevm_fuzz::fixture_seeds(&mainnet);
    if seeds.is_empty() {
        eprintln!(
            "no small block folders under {} (set PEVM_DATA)",
            mainnet.display()
        );
        std::process::exit(1);
    }
    std::fs::create_dir_all(&out).expect("output folder can be created");
    for (name, data) in &seeds {
        std::fs::write(out.join(name), data).expect("seed can be written");
    }
    println!("{} seeds written to {}", seeds.len(), out.display());
}
