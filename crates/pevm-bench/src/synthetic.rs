//! Seeded, deterministic synthetic blocks, runnable with no data present.

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

/// Runtime code that increments storage slot 0: `SLOAD(0) + 1 -> SSTORE(0)`.
const COUNTER: [u8; 10] = [0x60, 0x00, 0x54, 0x60, 0x01, 0x01, 0x60, 0x00, 0x55, 0x00];

/// The built-in block: `txs` transactions from `senders` accounts, mostly ETH transfers
/// (a fifth of them to one hot recipient) and one in ten calls to a shared counter contract.
pub fn small_mixed(txs: usize, senders: u64, seed: u64) -> Workload {
    let mut rng = Rng::new(seed);
    let mut provider = InMemoryProvider::default();
    let balance = U256::from(10u128.pow(24));
    for i in 0..senders {
        provider.insert_account(
            account(i),
            InMemoryAccount {
                balance,
                ..Default::default()
            },
        );
    }
    let counter = account(u64::MAX);
    provider.insert_account(
        counter,
        InMemoryAccount {
            code: Some(Bytecode::new_raw(Bytes::from_static(&COUNTER))),
            ..Default::default()
        },
    );
    let hot = account(senders);
    let mut nonces = vec![0u64; senders as usize];
    let txs = (0..txs)
        .map(|_| {
            let sender = rng.below(senders);
            let nonce = nonces[sender as usize];
            nonces[sender as usize] += 1;
            let (to, gas_limit, value) = match rng.below(10) {
                0 => (counter, 50_000, 0),
                1 | 2 => (hot, 21_000, 1 + rng.below(1000)),
                _ => (account(rng.below(senders)), 21_000, 1 + rng.below(1000)),
            };
            TxEnv {
                caller: account(sender),
                kind: TxKind::Call(to),
                value: U256::from(value),
                gas_limit,
                gas_price: 1_000_000_000,
                nonce,
                ..TxEnv::default()
            }
        })
        .collect();
    let block = Block::new(
        &ChainSpec::from_genesis(Hardfork::Prague, 1),
        BlockEnv {
            beneficiary: account(senders + 1),
            ..BlockEnv::default()
        },
        txs,
    );
    Workload {
        name: "synthetic".into(),
        block,
        provider,
    }
}
