//! Arbitrary bytes to a block over [`world`]: a short header, then a handful of
//! transactions of a few bytes each. Every byte string decodes to some block; missing bytes
//! read as zero, so truncating an input shortens the block.
//!
//! Layout (each field one byte unless noted):
//!
//! ```text
//! header: fork, flags, wild-code length, wild code (that many bytes, at most 64)
//! tx:     action, sender, flags, then the action's own bytes (see `Action::decode`)
//!
//! header flags: bit 0 sender 0 is the beneficiary, bit 1 base fee 7 (else 0),
//!               bits 2-4 all set: block gas limit 1M (else 30M)
//! action:       low nibble picks the action, high nibble its variant
//! sender:       low 3 bits the sender (5 is the poor one, 6 and 7 are 0 and 1 again),
//!               bit 3 an access list (from Berlin on)
//! flags:        bits 0-1 the tip, bit 2 EIP-1559 (from London on), bits 3-7: 31 nonce one
//!               too high, 30 one too low, 29 starved gas, 28 a bare 21,000 gas
//! ```

use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use pevm_vm::{
    revm::context::{transaction::AccessList, transaction::AccessListItem, BlockEnv, TxEnv},
    Block, ChainSpec, Hardfork,
};

use crate::world::{self, ETHER, RICH_SENDERS};

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
/// The block number (`BLOCKHASH` works for the 256 blocks before it).
const NUMBER: u64 = 1_000;
/// The chain id of the block and every transaction.
const CHAIN_ID: u64 = 1;

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

/// What a transaction does. `u8` address fields index the list of addresses known at that
/// point of the block ([`world::known_addresses`] plus earlier creation transactions'
/// contracts), wrapping around. Values are in wei.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // each variant's doc describes its fields
pub enum Action {
    /// Sends value to an address, with 21,000 gas or 100,000 (enough to run its code).
    Transfer { to: u8, value: U256, gas: u64 },
    /// `COUNTER`: `slot[store] = slot[load] + add`.
    Counter { load: u8, store: u8, add: u8 },
    /// `REVERTER` writes `slot` and reverts.
    Revert { slot: u8 },
    /// `LOOPER`: out of gas.
    Loop,
    /// `INVALID_OP`: invalid opcode.
    Invalid,
    /// A creation transaction deploying the self-destructible child.
    Create { value: U256 },
    /// A creation transaction running fuzzer-chosen init code.
    CreateRaw { init: Vec<u8>, value: U256 },
    /// `FACTORY` in `mode` (bit 0: `CREATE2` with `salt`, bit 1: then destroy the child,
    /// sending its balance to `heir`).
    Factory {
        mode: u8,
        salt: u8,
        heir: u8,
        value: U256,
    },
    /// Calls an address with empty calldata (a self-destructible contract increments its
    /// slot 0), or with `destroy_to`'s address as calldata (it self-destructs to it).
    Call {
        target: u8,
        destroy_to: Option<u8>,
        value: U256,
    },
    /// `READER` on an address: its balance, code size and (with `hash`) code hash.
    Read { of: u8, hash: bool },
    /// `COINBASE_READER`: the beneficiary's balance mid-block.
    ReadCoinbase,
    /// `FORWARDER` calls `to` with `value` of its own balance, and an address as calldata
    /// when `arg` is set.
    Forward {
        to: u8,
        value: U256,
        arg: Option<u8>,
    },
    /// Calls `WILD` with fuzzer-chosen calldata.
    Wild { data: Vec<u8>, value: U256 },
}

impl Action {
    fn decode(kind: u8, input: &mut Input<'_>) -> Self {
        let sub = kind >> 4;
        match kind % 16 {
            0..=3 => Self::Transfer {
                to: input.byte(),
                value: value(input.byte()),
                gas: if sub & 1 == 0 { 21_000 } else { 100_000 },
            },
            4..=6 => Self::Counter {
                load: input.byte() % 4,
                store: input.byte() % 4,
                add: input.byte(),
            },
            7 => Self::Revert {
                slot: input.byte() % 4,
            },
            8 if sub & 1 == 0 => Self::Loop,
            8 => Self::Invalid,
            9 if sub & 1 == 0 => Self::Create {
                value: value(input.byte()),
            },
            9 => Self::CreateRaw {
                value: value(input.byte()),
                init: input.bytes(MAX_INIT),
            },
            10 => Self::Factory {
                mode: sub % 4,
                salt: input.byte() % world::SALTS as u8,
                heir: input.byte(),
                value: value(input.byte()),
            },
            11 | 12 => Self::Call {
                target: input.byte(),
                destroy_to: (sub & 1 == 1).then(|| input.byte()),
                value: value(input.byte()),
            },
            13 => Self::Read {
                of: input.byte(),
                hash: sub & 1 == 1,
            },
            14 => Self::ReadCoinbase,
            _ if sub & 1 == 0 => Self::Forward {
                to: input.byte(),
                value: value(input.byte()),
                arg: (sub & 2 == 2).then(|| input.byte()),
            },
            _ => Self::Wild {
                value: value(input.byte()),
                data: input.bytes(MAX_WILD),
            },
        }
    }
}

/// A transaction's nonce relative to the sender's next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nonce {
    /// The right nonce.
    Next,
    /// One too high.
    TooHigh,
    /// One too low (one too high for a sender's first transaction).
    TooLow,
}

/// One transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxSpec {
    /// Sender index ([`world::sender`]); `RICH_SENDERS` is the poor one.
    pub sender: usize,
    /// What it does.
    pub action: Action,
    /// Priority fee over the base fee, in wei.
    pub tip: u8,
    /// EIP-1559 transaction (from London on) rather than legacy.
    pub dynamic_fee: bool,
    /// An access list (from Berlin on) warming the call target's slots 0 and 1 and the
    /// beneficiary.
    pub access_list: bool,
    /// Right or wrong nonce.
    pub nonce: Nonce,
    /// The gas limit, when not the action's own.
    pub gas: Gas,
}

/// A transaction's gas limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gas {
    /// Enough for the action (and the access list).
    Enough,
    /// The intrinsic gas (at pre-Istanbul calldata prices) plus 2,000: valid, but too little
    /// for most actions to complete.
    Starved,
    /// 21,000: below the intrinsic gas of a creation, calldata or an access list, which makes
    /// the transaction (and so the block) invalid.
    Bare,
}

impl TxSpec {
    fn decode(input: &mut Input<'_>) -> Self {
        let kind = input.byte();
        let sender = input.byte();
        let flags = input.byte();
        let sender_index = match sender % 8 {
            index @ 0..=5 => index as usize,
            index => index as usize - 6,
        };
        Self {
            sender: sender_index,
            action: Action::decode(kind, input),
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
}

/// A decoded fuzz input: the block's parameters, the wild contract's code and the
/// transactions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// The rules.
    pub hardfork: Hardfork,
    /// Sender 0 is the beneficiary, rather than [`world::BENEFICIARY`].
    pub coinbase_is_sender: bool,
    /// Base fee from London on: 0 or 7 wei.
    pub basefee: u64,
    /// Block gas limit: 30M, or 1M (too little for some blocks).
    pub gas_limit: u64,
    /// Code of [`world::WILD`] (absent when empty).
    pub wild_code: Vec<u8>,
    /// The transactions.
    pub txs: Vec<TxSpec>,
}

impl Case {
    /// Decodes `data` (any bytes).
    pub fn decode(data: &[u8]) -> Self {
        let mut input = Input(data);
        let fork = input.byte();
        let flags = input.byte();
        let wild_code = input.bytes(MAX_WILD);
        let mut txs = Vec::new();
        while !input.is_empty() && txs.len() < MAX_TXS {
            txs.push(TxSpec::decode(&mut input));
        }
        Self {
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

    /// The state before the block.
    pub fn provider(&self) -> pevm_vm::InMemoryProvider {
        let mut provider = world::world(&self.wild_code);
        for number in NUMBER.saturating_sub(256)..NUMBER {
            provider.insert_block_hash(number, B256::left_padding_from(&number.to_be_bytes()));
        }
        provider
    }

    /// The block.
    pub fn block(&self) -> Block {
        let london = self.hardfork >= Hardfork::London;
        let berlin = self.hardfork >= Hardfork::Berlin;
        let basefee = if london { self.basefee } else { 0 };
        let beneficiary = if self.coinbase_is_sender {
            world::sender(0)
        } else {
            world::BENEFICIARY
        };
        let env = BlockEnv {
            number: U256::from(NUMBER),
            beneficiary,
            timestamp: U256::from(1_750_000_000),
            gas_limit: self.gas_limit,
            basefee,
            difficulty: U256::from(1),
            prevrandao: Some(B256::repeat_byte(7)),
            ..BlockEnv::default()
        };
        let mut known = world::known_addresses();
        let mut nonces = [0u64; RICH_SENDERS + 1];
        let mut txs = Vec::with_capacity(self.txs.len());
        for spec in &self.txs {
            let caller = world::sender(spec.sender);
            let expected = nonces[spec.sender];
            let nonce = match spec.nonce {
                Nonce::Next => {
                    nonces[spec.sender] += 1;
                    expected
                }
                Nonce::TooLow if expected > 0 => expected - 1,
                Nonce::TooHigh | Nonce::TooLow => expected + 1,
            };
            let at = |index: u8| known[index as usize % known.len()];
            let word = |address: Address| address.into_word().to_vec();
            let (to, data, gas_limit, value) = match &spec.action {
                Action::Transfer { to, value, gas } => (Some(at(*to)), vec![], *gas, *value),
                Action::Counter { load, store, add } => {
                    let data = words(&[*load as u64, *store as u64, *add as u64]);
                    (Some(world::COUNTER), data, 100_000, U256::ZERO)
                }
                Action::Revert { slot } => {
                    let data = words(&[*slot as u64]);
                    (Some(world::REVERTER), data, 100_000, U256::ZERO)
                }
                Action::Loop => (Some(world::LOOPER), vec![], 150_000, U256::ZERO),
                Action::Invalid => (Some(world::INVALID_OP), vec![], 100_000, U256::ZERO),
                Action::Create { value } => (None, world::child_init_code(), 300_000, *value),
                Action::CreateRaw { init, value } => (None, init.clone(), 200_000, *value),
                Action::Factory {
                    mode,
                    salt,
                    heir,
                    value,
                } => {
                    let mut data = words(&[*mode as u64, *salt as u64]);
                    data.extend(word(at(*heir)));
                    (Some(world::FACTORY), data, 400_000, *value)
                }
                Action::Call {
                    target,
                    destroy_to,
                    value,
                } => {
                    let data = destroy_to.map(|to| word(at(to))).unwrap_or_default();
                    (Some(at(*target)), data, 150_000, *value)
                }
                Action::Read { of, hash } => {
                    let mut data = word(at(*of));
                    data.extend(words(&[*hash as u64]));
                    (Some(world::READER), data, 100_000, U256::ZERO)
                }
                Action::ReadCoinbase => (Some(world::COINBASE_READER), vec![], 100_000, U256::ZERO),
                Action::Forward { to, value, arg } => {
                    let mut data = word(at(*to));
                    data.extend(value.to_be_bytes::<32>());
                    if let Some(arg) = arg {
                        data.extend(word(at(*arg)));
                    }
                    (Some(world::FORWARDER), data, 400_000, U256::ZERO)
                }
                Action::Wild { data, value } => (Some(world::WILD), data.clone(), 300_000, *value),
            };
            if to.is_none() {
                known.push(caller.create(nonce));
            }
            let dynamic = london && spec.dynamic_fee;
            let access_list = if berlin && spec.access_list {
                let slots = [B256::ZERO, B256::with_last_byte(1)];
                AccessList(vec![
                    AccessListItem {
                        address: to.unwrap_or(world::COUNTER),
                        storage_keys: slots.to_vec(),
                    },
                    AccessListItem {
                        address: beneficiary,
                        storage_keys: vec![],
                    },
                ])
            } else {
                AccessList::default()
            };
            let tx_type = match (dynamic, access_list.0.is_empty()) {
                (true, _) => 2,
                (false, false) => 1,
                (false, true) => 0,
            };
            let access_list_gas = access_list
                .0
                .iter()
                .map(|item| 2_400 + 1_900 * item.storage_keys.len() as u64)
                .sum::<u64>();
            let gas_limit = match spec.gas {
                Gas::Enough => gas_limit + access_list_gas,
                Gas::Starved => intrinsic_gas(&data, to.is_none()) + access_list_gas + 2_000,
                Gas::Bare => 21_000,
            };
            let price = u128::from(basefee) + u128::from(spec.tip);
            txs.push(TxEnv {
                tx_type,
                caller,
                gas_limit,
                // A dynamic-fee transaction offers more than it pays.
                gas_price: price + u128::from(dynamic),
                gas_priority_fee: dynamic.then_some(u128::from(spec.tip)),
                kind: to.map_or(TxKind::Create, TxKind::Call),
                value,
                data: Bytes::from(data),
                nonce,
                chain_id: Some(CHAIN_ID),
                access_list,
                ..TxEnv::default()
            });
        }
        Block::new(&ChainSpec::from_genesis(self.hardfork, CHAIN_ID), env, txs)
    }
}

/// Intrinsic gas of a transaction with `data` at pre-Istanbul calldata prices (an upper bound
/// for later forks; the init-code word cost of Shanghai is below the difference).
fn intrinsic_gas(data: &[u8], create: bool) -> u64 {
    let calldata: u64 = data.iter().map(|b| if *b == 0 { 4 } else { 68 }).sum();
    21_000 + calldata + if create { 32_000 } else { 0 }
}

/// ABI-style calldata: 32-byte big-endian words.
fn words(words: &[u64]) -> Vec<u8> {
    words
        .iter()
        .flat_map(|w| U256::from(*w).to_be_bytes::<32>())
        .collect()
}
