//! Blocks described by what each transaction does, over [`world`], and the pevm blocks they
//! build into.

use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use pevm_vm::{
    revm::context::{
        transaction::{AccessList, AccessListItem},
        BlockEnv, TxEnv,
    },
    Block, ChainSpec, Hardfork, InMemoryProvider,
};

use crate::world::{self, RICH_SENDERS};

/// The chain id of every block and transaction.
pub const CHAIN_ID: u64 = 1;

/// The block number (`BLOCKHASH` works for the 256 blocks before it).
pub const NUMBER: u64 = 1_000;

/// What a transaction does. `u8` address fields index the addresses known at that point of
/// the block ([`world::known_addresses`] plus earlier creation transactions' contracts),
/// wrapping around. Values are in wei.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // each variant's doc describes its fields
pub enum Action {
    /// Sends value to an address, with `gas` (21,000, or enough to run its code).
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
    /// A creation transaction running the given init code.
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
    /// Calls `WILD` with the given calldata.
    Wild { data: Vec<u8>, value: U256 },
}

impl Action {
    /// A transfer of `value` wei with 21,000 gas to known address `to`.
    pub fn transfer(to: u8, value: u64) -> Self {
        Self::Transfer {
            to,
            value: U256::from(value),
            gas: 21_000,
        }
    }

    /// The recipient (`None`: a creation), calldata, gas limit and value of the transaction,
    /// with `known` the addresses known at its point of the block.
    fn call(&self, known: &[Address]) -> (Option<Address>, Vec<u8>, u64, U256) {
        let at = |index: u8| known[index as usize % known.len()];
        let word = |address: Address| address.into_word().to_vec();
        match self {
            Self::Transfer { to, value, gas } => (Some(at(*to)), vec![], *gas, *value),
            Self::Counter { load, store, add } => {
                let data = words(&[*load as u64, *store as u64, *add as u64]);
                (Some(world::COUNTER), data, 100_000, U256::ZERO)
            }
            Self::Revert { slot } => {
                let data = words(&[*slot as u64]);
                (Some(world::REVERTER), data, 100_000, U256::ZERO)
            }
            Self::Loop => (Some(world::LOOPER), vec![], 150_000, U256::ZERO),
            Self::Invalid => (Some(world::INVALID_OP), vec![], 100_000, U256::ZERO),
            Self::Create { value } => (None, world::child_init_code(), 300_000, *value),
            Self::CreateRaw { init, value } => (None, init.clone(), 200_000, *value),
            Self::Factory {
                mode,
                salt,
                heir,
                value,
            } => {
                let mut data = words(&[*mode as u64, *salt as u64]);
                data.extend(word(at(*heir)));
                (Some(world::FACTORY), data, 400_000, *value)
            }
            Self::Call {
                target,
                destroy_to,
                value,
            } => {
                let data = destroy_to.map(|to| word(at(to))).unwrap_or_default();
                (Some(at(*target)), data, 150_000, *value)
            }
            Self::Read { of, hash } => {
                let mut data = word(at(*of));
                data.extend(words(&[*hash as u64]));
                (Some(world::READER), data, 100_000, U256::ZERO)
            }
            Self::ReadCoinbase => (Some(world::COINBASE_READER), vec![], 100_000, U256::ZERO),
            Self::Forward { to, value, arg } => {
                let mut data = word(at(*to));
                data.extend(value.to_be_bytes::<32>());
                data.extend(arg.map(|arg| word(at(arg))).unwrap_or_default());
                (Some(world::FORWARDER), data, 400_000, U256::ZERO)
            }
            Self::Wild { data, value } => (Some(world::WILD), data.clone(), 300_000, *value),
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

/// One transaction of a [`BlockSpec`].
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

impl TxSpec {
    /// A legacy transaction from sender `sender` paying the base fee, with the right nonce
    /// and enough gas.
    pub fn new(sender: usize, action: Action) -> Self {
        Self {
            sender,
            action,
            tip: 0,
            dynamic_fee: false,
            access_list: false,
            nonce: Nonce::Next,
            gas: Gas::Enough,
        }
    }

    /// The access list, when the spec asks for one and `berlin` allows it.
    fn access_list(&self, berlin: bool, to: Option<Address>, beneficiary: Address) -> AccessList {
        if !(berlin && self.access_list) {
            return AccessList::default();
        }
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
    }

    /// The gas limit, with `action_gas` what the action needs.
    fn gas_limit(&self, action_gas: u64, data: &[u8], create: bool, list: &AccessList) -> u64 {
        let list_gas = list
            .0
            .iter()
            .map(|item| 2_400 + 1_900 * item.storage_keys.len() as u64)
            .sum::<u64>();
        match self.gas {
            Gas::Enough => action_gas + list_gas,
            Gas::Starved => intrinsic_gas(data, create) + list_gas + 2_000,
            Gas::Bare => 21_000,
        }
    }
}

/// A block over [`world`]: its parameters, the wild contract's code and the transactions.
/// Valid nonces count up per sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSpec {
    /// The rules.
    pub hardfork: Hardfork,
    /// Sender 0 is the beneficiary, rather than [`world::BENEFICIARY`].
    pub coinbase_is_sender: bool,
    /// Base fee from London on, in wei.
    pub basefee: u64,
    /// Block gas limit.
    pub gas_limit: u64,
    /// Code of [`world::WILD`] (absent when empty).
    pub wild_code: Vec<u8>,
    /// The transactions.
    pub txs: Vec<TxSpec>,
}

impl BlockSpec {
    /// A block of `txs` under `hardfork`, base fee 0, gas limit 30M.
    pub fn new(hardfork: Hardfork, txs: Vec<TxSpec>) -> Self {
        Self {
            hardfork,
            coinbase_is_sender: false,
            basefee: 0,
            gas_limit: 30_000_000,
            wild_code: Vec::new(),
            txs,
        }
    }

    /// The state before the block, with the hashes of the 256 blocks before it.
    pub fn provider(&self) -> InMemoryProvider {
        let mut provider = world::world_with_wild(&self.wild_code);
        for number in NUMBER.saturating_sub(256)..NUMBER {
            provider.insert_block_hash(number, B256::left_padding_from(&number.to_be_bytes()));
        }
        provider
    }

    /// The block.
    pub fn block(&self) -> Block {
        let env = self.env();
        let mut known = world::known_addresses();
        let mut nonces = [0u64; RICH_SENDERS + 1];
        let txs = self
            .txs
            .iter()
            .map(|spec| {
                let expected = nonces[spec.sender];
                let nonce = match spec.nonce {
                    Nonce::Next => {
                        nonces[spec.sender] += 1;
                        expected
                    }
                    Nonce::TooLow if expected > 0 => expected - 1,
                    Nonce::TooHigh | Nonce::TooLow => expected + 1,
                };
                self.tx(spec, nonce, &env, &mut known)
            })
            .collect();
        Block::new(&ChainSpec::from_genesis(self.hardfork, CHAIN_ID), env, txs)
    }

    /// The block environment.
    fn env(&self) -> BlockEnv {
        BlockEnv {
            number: U256::from(NUMBER),
            beneficiary: if self.coinbase_is_sender {
                world::sender(0)
            } else {
                world::BENEFICIARY
            },
            timestamp: U256::from(1_750_000_000),
            gas_limit: self.gas_limit,
            basefee: if self.hardfork >= Hardfork::London {
                self.basefee
            } else {
                0
            },
            difficulty: U256::from(1),
            prevrandao: Some(B256::repeat_byte(7)),
            ..BlockEnv::default()
        }
    }

    /// Transaction `spec` with `nonce`; a creation adds its contract to `known`.
    fn tx(&self, spec: &TxSpec, nonce: u64, env: &BlockEnv, known: &mut Vec<Address>) -> TxEnv {
        let caller = world::sender(spec.sender);
        let (to, data, action_gas, value) = spec.action.call(known);
        if to.is_none() {
            known.push(caller.create(nonce));
        }
        let dynamic = self.hardfork >= Hardfork::London && spec.dynamic_fee;
        let access_list = spec.access_list(self.hardfork >= Hardfork::Berlin, to, env.beneficiary);
        let tx_type = match (dynamic, access_list.0.is_empty()) {
            (true, _) => 2,
            (false, false) => 1,
            (false, true) => 0,
        };
        let gas_limit = spec.gas_limit(action_gas, &data, to.is_none(), &access_list);
        let price = u128::from(env.basefee) + u128::from(spec.tip);
        TxEnv {
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
        }
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
