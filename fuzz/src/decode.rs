//! Arbitrary bytes to a [`BlockSpec`] over the test kit's [`world`]: a short header, then a
//! handful of transactions of a few bytes each. Every byte string decodes to some block; missing bytes
//! read as zero, so truncating an input shortens the block.
//!
//! Layout (each field one byte unless noted):
//!
//! ```text
//! header: fork, flags, wild-code length, wild code (that many bytes, at most 64)
//! tx:     action, sender, flags, then the action's own bytes (see `action`)
//!
//! header flags: bit 0 sender 0 is the beneficiary, bit 1 base fee 7 (else 0),
//!               bits 2-4 all set: block gas limit 1M (else 30M)
//! action:       low nibble picks the action, high nibble its variant
//! sender:       low 3 bits the sender (5 is the poor one, 6 and 7 are 0 and 1 again),
//!               bit 3 an access list (from Berlin on)
//! flags:        bits 0-1 the tip, bit 2 EIP-1559 (from London on), bits 3-7: 31 nonce one
//!               too high, 30 one too low, 29 starved gas, 28 a bare 21,000 gas
//! ```

use alloy_primitives::U256;
use pevm_testkit::{
    world::{self, ETHER},
    Action, BlockSpec, Gas, Nonce, TxSpec,
};
use pevm_vm::Hardfork;

/// Every fork the fuzzer picks from.
const FORKS: [Hardfork; 16] = [
    Hardfork::Frontier,
    Hardfork::Homestead,
    Hardfork::Tangerine,
    Hardfork::SpuriousDragon,
    Hardfork::Byzantium,
    Hardfork::Petersburg,
    Hardfork::Istanbul,
    Hardfork::Berlin,
    Hardfork::London,
    Hardfork::Paris,
    Hardfork::Shanghai,
    Hardfork::Cancun,
    Hardfork::Prague,
    Hardfork::Osaka,
    Hardfork::Bpo1,
    Hardfork::Bpo2,
];

/// The most transactions a block gets.
pub const MAX_TXS: usize = 32;
/// The longest wild contract code and calldata.
const MAX_WILD: usize = 64;
/// The longest init code of a raw creation.
const MAX_INIT: usize = 48;

/// Decodes `data` (any bytes) into a block.
pub fn block_spec(data: &[u8]) -> BlockSpec {
    let mut input = Input(data);
    let fork = input.byte();
    let flags = input.byte();
    let wild_code = input.bytes(MAX_WILD);
    let mut txs = Vec::new();
    while !input.is_empty() && txs.len() < MAX_TXS {
        txs.push(tx_spec(&mut input));
    }
    BlockSpec {
        hardfork: FORKS[fork as usize % FORKS.len()],
        coinbase_is_sender: flags & 1 != 0,
        basefee: if flags & 2 != 0 { 7 } else { 0 },
        gas_limit: if flags >> 2 & 7 == 7 {
            1_000_000
        } else {
            30_000_000
        },
        wild_code,
        txs,
    }
}

/// Reads an input front to back; past its end every byte is zero.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((first, rest)) => {
                self.0 = rest;
                *first
            }
            None => 0,
        }
    }

    /// A length byte (taken modulo `max + 1`), then that many bytes.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = (self.byte() as usize % (max + 1)).min(self.0.len());
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        taken.to_vec()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A value sent with a transaction: 0, 1 wei, 0.001 ether, 1 ether, or 2,000 ether (more
/// than any sender has).
fn value(byte: u8) -> U256 {
    match byte % 5 {
        0 => U256::ZERO,
        1 => U256::from(1),
        2 => U256::from(ETHER / 1_000),
        3 => U256::from(ETHER),
        _ => U256::from(ETHER) * U256::from(2_000),
    }
}

/// A transaction: action, sender and flags bytes, then the action's own bytes.
fn tx_spec(input: &mut Input<'_>) -> TxSpec {
    let kind = input.byte();
    let sender = input.byte();
    let flags = input.byte();
    let sender_index = match sender % 8 {
        index @ 0..=5 => index as usize,
        index => index as usize - 6,
    };
    TxSpec {
        sender: sender_index,
        action: action(kind, input),
        tip: flags & 3,
        dynamic_fee: flags & 4 != 0,
        access_list: sender & 8 != 0,
        nonce: match flags >> 3 {
            31 => Nonce::TooHigh,
            30 => Nonce::TooLow,
            _ => Nonce::Next,
        },
        gas: match flags >> 3 {
            29 => Gas::Starved,
            28 => Gas::Bare,
            _ => Gas::Enough,
        },
    }
}

/// The action byte `kind` (low nibble: the action, high nibble: its variant) and the
/// action's own bytes.
fn action(kind: u8, input: &mut Input<'_>) -> Action {
    let sub = kind >> 4;
    match kind % 16 {
        0..=3 => Action::Transfer {
            to: input.byte(),
            value: value(input.byte()),
            gas: if sub & 1 == 0 { 21_000 } else { 100_000 },
        },
        4..=6 => Action::Counter {
            load: input.byte() % 4,
            store: input.byte() % 4,
            add: input.byte(),
        },
        7 => Action::Revert {
            slot: input.byte() % 4,
        },
        8 if sub & 1 == 0 => Action::Loop,
        8 => Action::Invalid,
        9 if sub & 1 == 0 => Action::Create {
            value: value(input.byte()),
        },
        9 => Action::CreateRaw {
            value: value(input.byte()),
            init: input.bytes(MAX_INIT),
        },
        10 => Action::Factory {
            mode: sub % 4,
            salt: input.byte() % world::SALTS as u8,
            heir: input.byte(),
            value: value(input.byte()),
        },
        11 | 12 => Action::Call {
            target: input.byte(),
            destroy_to: (sub & 1 == 1).then(|| input.byte()),
            value: value(input.byte()),
        },
        13 => Action::Read {
            of: input.byte(),
            hash: sub & 1 == 1,
        },
        14 => Action::ReadCoinbase,
        _ if sub & 1 == 0 => Action::Forward {
            to: input.byte(),
            value: value(input.byte()),
            arg: (sub & 2 == 2).then(|| input.byte()),
        },
        _ => Action::Wild {
            value: value(input.byte()),
            data: input.bytes(MAX_WILD),
        },
    }
}
