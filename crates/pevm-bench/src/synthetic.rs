//! Synthetic blocks, runnable with no data present: the built-in set `replay` runs when there
//! is no shared data (independent swaps, deposits to one hot address, a block too small to
//! parallelise), and the accounts and seeded generator the gigagas workloads build on.

use alloy_primitives::{Address, Bytes, TxKind, U256};
use pevm_vm::{
    revm::{
        bytecode::Bytecode,
        context::{BlockEnv, TxEnv},
    },
    Block, ChainSpec, Hardfork, InMemoryAccount, InMemoryProvider,
};

/// A synthetic block and the state it runs on.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The workload's name, shown where a block number would be.
    pub name: String,
    /// The block.
    pub block: Block,
    /// Its pre-state.
    pub provider: InMemoryProvider,
}

/// A small deterministic pseudo-random generator (splitmix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The address of synthetic account number `i` (never a precompile).
pub fn account(i: u64) -> Address {
    let mut bytes = [0u8; 20];
    bytes[0] = 0xa0;
    bytes[12..].copy_from_slice(&i.to_be_bytes());
    Address::from(bytes)
}

/// Swaps one transaction makes in its pool.
const SWAPS: u8 = 200;

/// Runtime code of a constant-product pool (reserves in slots 0 and 1) that makes [`SWAPS`]
/// swaps, the first of the calldata's amount and each next of the previous one's output, with
/// Uniswap v2's formula and 0.3% fee: `out = in * 997 * r_out / (r_in * 1000 + in * 997)`,
/// then `r_in += in`, `r_out -= out`. Assembled here (about 500 gas a swap).
fn pool_code() -> Bytes {
    #[rustfmt::skip]
    let code = [
        0x60, 0x00, 0x35,             // amount = CALLDATALOAD(0)
        0x60, 0x00,                   // i = 0                       [amt, i]
        0x5b,                         // loop (offset 5): JUMPDEST
        0x60, 0x00, 0x54,             // SLOAD(0)                    [amt, i, rin]
        0x60, 0x01, 0x54,             // SLOAD(1)                    [amt, i, rin, rout]
        0x83, 0x61, 0x03, 0xe5, 0x02, // DUP4 997 MUL                [.., a997]
        0x80, 0x83, 0x61, 0x03, 0xe8, 0x02, 0x01, // DUP1 DUP4 1000 MUL ADD  [.., a997, den]
        0x90, 0x82, 0x02, 0x04,       // SWAP1 DUP3 MUL DIV          [amt, i, rin, rout, out]
        0x84, 0x83, 0x01, 0x60, 0x00, 0x55, // SSTORE(0, rin + amt)
        0x80, 0x82, 0x03, 0x60, 0x01, 0x55, // SSTORE(1, rout - out)
        0x91, 0x50, 0x50, 0x91, 0x50, // keep [out, i]
        0x60, 0x01, 0x01,             // i += 1                      [out, i]
        0x80, 0x60, SWAPS, 0x11,      // SWAPS > i
        0x60, 0x05, 0x57,             // JUMPI loop
        0x00,                         // STOP
    ];
    Bytes::copy_from_slice(&code)
}

/// A pool's reserves: balanced.
fn pool_reserves() -> std::collections::HashMap<U256, U256> {
    (0..2)
        .map(|slot| (U256::from(slot), U256::from(10u128.pow(24))))
        .collect()
}

/// `txs` transactions from as many senders, each swapping in a pool of its own.
fn swaps(name: &str, txs: u64) -> Workload {
    let mut provider = funded(txs);
    let code = Bytecode::new_raw(pool_code());
    let pool = |i: u64| account(1 << 40 | i);
    for i in 0..txs {
        provider.insert_account(
            pool(i),
            InMemoryAccount {
                code: Some(code.clone()),
                storage: pool_reserves(),
                ..Default::default()
            },
        );
    }
    let amount = U256::from(10u128.pow(18));
    let txs = (0..txs)
        .map(|i| TxEnv {
            caller: account(i),
            kind: TxKind::Call(pool(i)),
            data: Bytes::copy_from_slice(&(amount + U256::from(i)).to_be_bytes::<32>()),
            gas_limit: 300_000,
            gas_price: 1_000_000_000,
            ..TxEnv::default()
        })
        .collect();
    workload(name, provider, txs)
}

/// `txs` plain transfers from as many senders: to one address (`hot`: an exchange's deposit
/// address, every transaction contending for its balance), or each to an address of its own
/// (a block too small for a second core to pay off).
fn transfers(name: &str, txs: u64, hot: bool) -> Workload {
    let provider = funded(txs);
    let txs = (0..txs)
        .map(|i| TxEnv {
            caller: account(i),
            kind: TxKind::Call(account(if hot { txs } else { txs + i })),
            value: U256::from(1_000 + i),
            gas_limit: 21_000,
            gas_price: 1_000_000_000,
            ..TxEnv::default()
        })
        .collect();
    workload(name, provider, txs)
}

/// A state where accounts `0..senders` hold 1,000 ether each.
fn funded(senders: u64) -> InMemoryProvider {
    let mut provider = InMemoryProvider::default();
    for i in 0..senders {
        provider.insert_account(
            account(i),
            InMemoryAccount {
                balance: U256::from(10u128.pow(21)),
                ..Default::default()
            },
        );
    }
    provider
}

/// Block 1 of a Prague chain with `txs`, over `provider`.
fn workload(name: &str, provider: InMemoryProvider, txs: Vec<TxEnv>) -> Workload {
    let block = Block::new(
        &ChainSpec::from_genesis(Hardfork::Prague, 1),
        BlockEnv {
            number: U256::from(1),
            beneficiary: account(u64::MAX - 1),
            gas_limit: u64::MAX / 2,
            ..BlockEnv::default()
        },
        txs,
    );
    Workload {
        name: name.into(),
        block,
        provider,
    }
}

/// The built-in blocks `replay` runs when no data is present, each showing one thing the
/// engine does: independent swaps (each sender in a pool of its own: parallel wins), deposits
/// to one hot address (contended, yet parallel: the credits are added up lazily), and a block
/// of 100 transfers (too small: the plan runs it serially).
pub fn built_in() -> Vec<Workload> {
    vec![
        swaps("independent-swaps", 1_000),
        transfers("hot-deposits", 2_000, true),
        transfers("small-block", 100, false),
    ]
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use pevm_vm::{execute_block_serial, Pevm, Strategy};

    use super::*;

    #[test]
    fn built_in_blocks_succeed_and_are_planned_as_they_claim() {
        let mut pevm = Pevm::new(NonZeroUsize::new(2).unwrap());
        let expected = [Strategy::BlockStm, Strategy::Transfers, Strategy::Serial];
        for (workload, strategy) in built_in().iter().zip(expected) {
            let serial = execute_block_serial(&workload.provider, &workload.block).unwrap();
            assert!(
                serial.results.iter().all(|r| r.is_success()),
                "{}: a transaction failed",
                workload.name
            );
            let (parallel, stats) = pevm
                .execute_with_stats(&workload.provider, &workload.block)
                .unwrap();
            assert_eq!(parallel, serial, "{}", workload.name);
            assert_eq!(stats.plan.strategy, strategy, "{}", workload.name);
        }
    }

    #[test]
    fn a_pool_swaps_along_the_constant_product_curve() {
        let workload = swaps("swaps", 3);
        let output = execute_block_serial(&workload.provider, &workload.block).unwrap();
        let start = U256::from(10u128.pow(24));
        for result in &output.results {
            // 200 swaps of about 500 gas of warm storage and arithmetic each.
            assert!(result.gas_used > 100_000, "{result:?}");
        }
        for change in output.state.values().filter(|c| !c.storage.is_empty()) {
            let (r0, r1) = (change.storage[&U256::ZERO], change.storage[&U256::from(1)]);
            assert!(r0 > start && r1 < start, "the pool took in and paid out");
            assert!(
                r0 * r1 >= start * start,
                "the fee keeps the product from falling"
            );
        }
        assert_eq!(
            output
                .state
                .values()
                .filter(|c| !c.storage.is_empty())
                .count(),
            3,
            "each sender swaps in a pool of its own"
        );
    }
}
