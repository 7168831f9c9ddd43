//! The `fetch` subcommand's arguments and its run: a progress bar over a range, a line per
//! block, and a summary.

use std::{
    num::NonZeroUsize, ops::RangeInclusive, path::PathBuf, process::ExitCode, time::Duration,
};

use indicatif::{ProgressBar, ProgressStyle};

use super::{
    fetch_range,
    rpc::{ClientConfig, RpcClient},
    FetchError, Outcome,
};

/// `pevm-bench fetch`: download blocks from a JSON-RPC node into fixture folders.
#[derive(Clone, Debug, clap::Args)]
pub struct FetchArgs {
    /// The node's JSON-RPC endpoint (http:// or https://).
    #[arg(long)]
    pub rpc: String,
    /// A block number, or an inclusive range `N..M` (`N..=M` also works).
    #[arg(long, value_parser = super::parse_range)]
    pub block: RangeInclusive<u64>,
    /// The folder block folders are written to, as `DIR/<N>/`; complete ones are skipped.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Blocks fetched at the same time.
    #[arg(long, default_value_t = NonZeroUsize::new(4).expect("4 > 0"))]
    pub jobs: NonZeroUsize,
    /// Seconds one request may take before it fails (and is retried).
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Retries of a request after a connection error, a timeout or HTTP 429/5xx, with
    /// exponential backoff from half a second.
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
}

impl FetchArgs {
    /// Fetches the blocks, printing a line per block; fails when any block failed.
    pub fn run(&self) -> ExitCode {
        let config = ClientConfig {
            timeout: Duration::from_secs(self.timeout),
            retries: self.retries,
            ..ClientConfig::default()
        };
        let client = RpcClient::new(&self.rpc, config);
        let count = (self.block.end() - self.block.start()).saturating_add(1);
        let bar = if count > 1 {
            let style = ProgressStyle::with_template(
                "{bar:40} {pos}/{len} blocks  {elapsed_precise}  eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::new(count).with_style(style)
        } else {
            ProgressBar::hidden()
        };
        let report = |number: u64, outcome: &Result<Outcome, FetchError>| {
            bar.suspend(|| match outcome {
                Ok(outcome) => println!("{number}: {outcome}"),
                Err(error) => eprintln!("error: {error}"),
            });
            bar.inc(1);
        };
        let results = fetch_range(&client, self.block.clone(), &self.out, self.jobs, &report);
        bar.finish_and_clear();
        let failed = results.iter().filter(|(_, r)| r.is_err()).count();
        let skipped = results
            .iter()
            .filter(|(_, r)| matches!(r, Ok(Outcome::Skipped)))
            .count();
        let written = results.len() - failed - skipped;
        println!("{written} written, {skipped} skipped, {failed} failed");
        if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}
