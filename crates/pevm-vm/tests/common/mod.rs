//! Block builders shared by the integration tests: a small world of hot accounts and
//! hand-assembled contracts, and blocks whose transactions conflict on purpose (transfers,
//! shared storage, reverts, halts, creations, self-destructs, balance reads, bad nonces).

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::collections::HashMap;

use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use pevm_vm::{
    revm::{
        bytecode::Bytecode,
        context::{BlockEnv, TxEnv},
        database::{CacheDB, EmptyDB},
        database_interface::DBErrorMarker,
        state::AccountInfo,
        DatabaseRef,
    },
    Block, ChainSpec, Hardfork, InMemoryAccount, InMemoryProvider, StateProvider,
};
use proptest::{prelude::*, strategy::ValueTree, test_runner::TestRunner};

/// EVM opcodes used by the test contracts.
mod op {
    pub(super) const STOP: u8 = 0x00;
    pub(super) const ADD: u8 = 0x01;
    pub(super) const EQ: u8 = 0x14;
    pub(super) const BALANCE: u8 = 0x31;
    pub(super) const CALLER: u8 = 0x33;
    pub(super) const CALLVALUE: u8 = 0x34;
    pub(super) const CALLDATALOAD: u8 = 0x35;
    pub(super) const CALLDATASIZE: u8 = 0x36;
    pub(super) const CODECOPY: u8 = 0x39;
    pub(super) const COINBASE: u8 = 0x41;
    pub(super) const MSTORE: u8 = 0x52;
    pub(super) const SLOAD: u8 = 0x54;
    pub(super) const SSTORE: u8 = 0x55;
    pub(super) const JUMP: u8 = 0x56;
    pub(super) const JUMPI: u8 = 0x57;
    pub(super) const JUMPDEST: u8 = 0x5b;
    pub(super) const PUSH1: u8 = 0x60;
    pub(super) const PUSH2: u8 = 0x61;
    pub(super) const DUP1: u8 = 0x80;
    pub(super) const DUP6: u8 = 0x85;
    pub(super) const SWAP1: u8 = 0x90;
    pub(super) const LOG1: u8 = 0xa1;
    pub(super) const CREATE: u8 = 0xf0;
    pub(super) const CALL: u8 = 0xf1;
    pub(super) const RETURN: u8 = 0xf3;
    pub(super) const CREATE2: u8 = 0xf5;
    pub(super) const REVERT: u8 = 0xfd;
    pub(super) const INVALID: u8 = 0xfe;
    pub(super) const SELFDESTRUCT: u8 = 0xff;
}

/// A tiny EVM assembler: opcodes and pushes, with labels resolved by [`Asm::build`].
#[derive(Default)]
struct Asm {
    code: Vec<u8>,
    labels: HashMap<&'static str, usize>,
    fixups: Vec<(usize, &'static str)>,
}

impl Asm {
    /// Appends opcodes.
    fn ops(mut self, ops: &[u8]) -> Self {
        self.code.extend_from_slice(ops);
        self
    }

    /// Pushes `value` with the shortest `PUSHn` (at least `PUSH1`).
    fn push(mut self, value: u64) -> Self {
        let bytes = value.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
        self.code.push(op::PUSH1 + (7 - skip) as u8);
        self.code.extend_from_slice(&bytes[skip..]);
        self
    }

    /// Pushes the position of `label` (`PUSH2`).
    fn push_label(mut self, label: &'static str) -> Self {
        self.code.push(op::PUSH2);
        self.fixups.push((self.code.len(), label));
        self.code.extend([0, 0]);
        self
    }

    /// Names the current position (for data appended after the code).
    fn mark(mut self, label: &'static str) -> Self {
        self.labels.insert(label, self.code.len());
        self
    }

    /// A jump target named `label`.
    fn jumpdest(self, label: &'static str) -> Self {
        self.mark(label).ops(&[op::JUMPDEST])
    }

    /// The bytecode, with every label pushed.
    fn build(mut self) -> Vec<u8> {
        for (at, label) in &self.fixups {
            let position = u16::try_from(self.labels[label]).expect("code fits PUSH2");
            self.code[*at..*at + 2].copy_from_slice(&position.to_be_bytes());
        }
        self.code
    }
}

/// Counter: `slot[b] = slot[a] + v` for calldata words `a, b, v`, logging the sum under topic `b`.
fn counter_code() -> Vec<u8> {
    use op::*;
    Asm::default()
        .push(0x40)
        .ops(&[CALLDATALOAD])
        .push(0)
        .ops(&[CALLDATALOAD, SLOAD, ADD, DUP1])
        .push(0)
        .ops(&[MSTORE])
        .push(0x20)
        .ops(&[CALLDATALOAD, DUP1])
        .push(32)
        .push(0)
        .ops(&[LOG1, SSTORE, STOP])
        .build()
}

/// Writes `1` to the slot in calldata word 0, then reverts (an invalid opcode before Byzantium).
fn reverter_code() -> Vec<u8> {
    use op::*;
    Asm::default()
        .push(1)
        .push(0)
        .ops(&[CALLDATALOAD, SSTORE])
        .push(0)
        .push(0)
        .ops(&[REVERT])
        .build()
}

/// Writes slot 0, then loops until out of gas.
fn looper_code() -> Vec<u8> {
    use op::*;
    Asm::default()
        .push(1)
        .push(0)
        .ops(&[SSTORE])
        .jumpdest("loop")
        .push_label("loop")
        .ops(&[JUMP])
        .build()
}

/// Writes slot 1, then hits the designated invalid opcode.
fn invalid_code() -> Vec<u8> {
    use op::*;
    Asm::default()
        .push(1)
        .push(1)
        .ops(&[SSTORE, INVALID])
        .build()
}

/// Without calldata, increments slot 0 (accepting any value); with calldata, self-destructs
/// to the address in calldata word 0.
fn destructible_code() -> Vec<u8> {
    use op::*;
    Asm::default()
        .ops(&[CALLDATASIZE])
        .push_label("destroy")
        .ops(&[JUMPI])
        .push(0)
        .ops(&[SLOAD])
        .push(1)
        .ops(&[ADD])
        .push(0)
        .ops(&[SSTORE, STOP])
        .jumpdest("destroy")
        .push(0)
        .ops(&[CALLDATALOAD, SELFDESTRUCT])
        .build()
}

/// Init code of created contracts: stores 42 in slot 0 and the creator in slot 1, and deploys
/// [`destructible_code`].
pub(crate) fn child_init_code() -> Vec<u8> {
    use op::*;
    let runtime = destructible_code();
    let len = runtime.len() as u64;
    let mut code = Asm::default()
        .ops(&[CALLER])
        .push(1)
        .ops(&[SSTORE])
        .push(42)
        .push(0)
        .ops(&[SSTORE])
        .push(len)
        .push_label("runtime")
        .push(0)
        .ops(&[CODECOPY])
        .push(len)
        .push(0)
        .ops(&[RETURN])
        .mark("runtime")
        .build();
    code.extend(runtime);
    code
}

/// Salt of the factory's `CREATE2`: fixed, so a second one collides with a live first.
const SALT: u64 = 0x5a17;

/// Factory: copies [`child_init_code`] and, by calldata word 0, mode 0 `CREATE`s it (address in
/// slot 0), mode 1 `CREATE2`s it (address in slot 1), mode 2 `CREATE2`s it and calls the child
/// to self-destruct (to calldata word 1) in the same transaction. Forwards the call value.
fn factory_code() -> Vec<u8> {
    use op::*;
    let init = child_init_code();
    let len = init.len() as u64;
    let mut code = Asm::default()
        .push(len)
        .push_label("init")
        .push(0)
        .ops(&[CODECOPY])
        .push(0)
        .ops(&[CALLDATALOAD])
        .push_label("create2")
        .ops(&[JUMPI])
        .push(len)
        .push(0)
        .ops(&[CALLVALUE, CREATE])
        .push(0)
        .ops(&[SSTORE, STOP])
        .jumpdest("create2")
        .push(SALT)
        .push(len)
        .push(0)
        .ops(&[CALLVALUE, CREATE2, DUP1])
        .push(1)
        .ops(&[SSTORE])
        .push(0)
        .ops(&[CALLDATALOAD])
        .push(2)
        .ops(&[EQ])
        .push_label("destroy")
        .ops(&[JUMPI, STOP])
        .jumpdest("destroy")
        .push(0x20)
        .ops(&[CALLDATALOAD])
        .push(0)
        .ops(&[MSTORE])
        .push(0)
        .push(0)
        .push(32)
        .push(0)
        .push(0)
        .ops(&[DUP6])
        .push(60_000)
        .ops(&[CALL, STOP])
        .mark("init")
        .build();
    code.extend(init);
    code
}

/// Stores the balance of the address in calldata word 0 under that address as slot.
fn balance_reader_code() -> Vec<u8> {
    use op::*;
    Asm::default()
        .push(0)
        .ops(&[CALLDATALOAD, DUP1, BALANCE, SWAP1, SSTORE, STOP])
        .build()
}

/// Stores the block beneficiary's balance in slot 0.
fn coinbase_reader_code() -> Vec<u8> {
    use op::*;
    Asm::default()
        .ops(&[COINBASE, BALANCE])
        .push(0)
        .ops(&[SSTORE, STOP])
        .build()
}

/// An address `tag 00.. index`.
const fn address(tag: u8, index: u8) -> Address {
    let mut bytes = [0; 20];
    bytes[0] = tag;
    bytes[19] = index;
    Address::new(bytes)
}

/// Number of well-funded senders; sender [`POOR_SENDER`] comes after them.
pub(crate) const SENDERS: usize = 5;
/// The index of a sender that can pay for little more than one transfer.
pub(crate) const POOR_SENDER: usize = SENDERS;
/// The block beneficiary unless a sender is (not in the state before the block).
pub(crate) const BENEFICIARY: Address = address(0xbe, 0);
/// The storage read-modify-write contract.
pub(crate) const COUNTER: Address = address(0xc0, 1);
/// The contract that writes and reverts.
pub(crate) const REVERTER: Address = address(0xc0, 2);
/// The contract that runs out of gas.
pub(crate) const LOOPER: Address = address(0xc0, 3);
/// The contract that hits an invalid opcode.
pub(crate) const INVALID_OP: Address = address(0xc0, 4);
/// The `CREATE`/`CREATE2` factory.
pub(crate) const FACTORY: Address = address(0xc0, 5);
/// Pre-existing self-destructible contracts, with storage and balance.
pub(crate) const DESTRUCTIBLES: [Address; 2] = [address(0xc0, 6), address(0xc0, 7)];
/// The contract storing `BALANCE(calldata address)`.
pub(crate) const BALANCE_READER: Address = address(0xc0, 8);
/// The contract storing `BALANCE(COINBASE)`.
pub(crate) const COINBASE_READER: Address = address(0xc0, 9);
/// Accounts that exist but are empty (removed when touched from Spurious Dragon on).
pub(crate) const EMPTY: [Address; 2] = [address(0x21, 0), address(0x21, 1)];
/// Accounts absent from the state before the block.
pub(crate) const FRESH: [Address; 2] = [address(0x20, 0), address(0x20, 1)];
/// Values sent with transactions, in wei.
const VALUES: [u64; 4] = [0, 1, 1_000_000_000_000_000, 1_000_000_000_000_000_000];
/// The chain id of every block and transaction.
pub(crate) const CHAIN_ID: u64 = 1;

/// Sender `index` (`POOR_SENDER` is the poor one).
pub(crate) const fn sender(index: usize) -> Address {
    address(0x10, index as u8)
}

/// Addresses transfers go to: senders, empty and absent accounts, the default beneficiary.
pub(crate) fn recipients() -> Vec<Address> {
    let mut out: Vec<_> = (0..=SENDERS).map(sender).collect();
    out.extend(FRESH);
    out.extend(EMPTY);
    out.push(BENEFICIARY);
    out
}

/// Addresses whose balance [`Action::ReadBalance`] reads: the recipients and the contracts.
pub(crate) fn observed() -> Vec<Address> {
    let mut out = recipients();
    out.extend(fixed_targets());
    out.extend([COUNTER, FACTORY]);
    out
}

/// Self-destructible contracts [`Action::Call`] targets before the block's own creations:
/// the pre-existing ones and the factory's first `CREATE`s and its `CREATE2`.
fn fixed_targets() -> Vec<Address> {
    let mut out = DESTRUCTIBLES.to_vec();
    out.extend([FACTORY.create(1), FACTORY.create(2)]);
    out.push(FACTORY.create2_from_code(U256::from(SALT).to_be_bytes::<32>(), child_init_code()));
    out
}

/// The state every test block runs on.
pub(crate) fn world() -> InMemoryProvider {
    let mut provider = InMemoryProvider::default();
    let rich = U256::from(10).pow(U256::from(21));
    for index in 0..SENDERS {
        provider.insert_account(sender(index), funded(rich));
    }
    // Enough for a transfer or two at the highest gas price.
    provider.insert_account(sender(POOR_SENDER), funded(U256::from(500_000)));
    for address in EMPTY {
        provider.insert_account(address, InMemoryAccount::default());
    }
    let contracts = [
        (COUNTER, counter_code()),
        (REVERTER, reverter_code()),
        (LOOPER, looper_code()),
        (INVALID_OP, invalid_code()),
        (FACTORY, factory_code()),
        (BALANCE_READER, balance_reader_code()),
        (COINBASE_READER, coinbase_reader_code()),
    ];
    for (address, code) in contracts {
        provider.insert_account(
            address,
            contract(code, U256::ZERO, &[(0, 1), (1, 2), (2, 3)]),
        );
    }
    for address in DESTRUCTIBLES {
        let balance = U256::from(VALUES[3]);
        provider.insert_account(
            address,
            contract(destructible_code(), balance, &[(0, 5), (1, 7)]),
        );
    }
    provider
}

/// An account without code holding `balance`.
fn funded(balance: U256) -> InMemoryAccount {
    InMemoryAccount {
        balance,
        ..InMemoryAccount::default()
    }
}

/// A contract account (nonce 1) with `code`, `balance` and `storage`.
fn contract(code: Vec<u8>, balance: U256, storage: &[(u64, u64)]) -> InMemoryAccount {
    InMemoryAccount {
        balance,
        nonce: 1,
        code: Some(Bytecode::new_raw(code.into())),
        storage: storage
            .iter()
            .map(|(slot, value)| (U256::from(*slot), U256::from(*value)))
            .collect(),
    }
}

/// What a transaction does. Indexes into address lists wrap around.
#[derive(Clone, Debug)]
pub(crate) enum Action {
    /// Sends `value` to a [`recipients`] entry.
    Transfer { to: usize, value: u64 },
    /// `COUNTER`: `slot[store] = slot[load] + add`; `starved` leaves too little gas for it.
    Counter {
        load: u8,
        store: u8,
        add: u8,
        starved: bool,
    },
    /// `REVERTER` on `slot`.
    Revert { slot: u8 },
    /// `LOOPER`: out of gas.
    Loop,
    /// `INVALID_OP`: invalid opcode.
    Invalid,
    /// A creation transaction deploying a child with `value`.
    Create { value: u64 },
    /// The factory in `mode` (0 `CREATE`, 1 `CREATE2`, 2 `CREATE2` and self-destruct to
    /// [`recipients`] entry `heir`), forwarding `value`.
    Factory { mode: u8, heir: usize, value: u64 },
    /// Calls a self-destructible contract (pre-existing or created) with `value`: increments its
    /// slot 0, or with `destroy_to` self-destructs to that [`recipients`] entry.
    Call {
        target: usize,
        destroy_to: Option<usize>,
        value: u64,
    },
    /// `BALANCE_READER` on an address of [`observed`].
    ReadBalance { of: usize },
    /// `COINBASE_READER`.
    ReadCoinbase,
}

/// One transaction of a [`BlockSpec`].
#[derive(Clone, Debug)]
pub(crate) struct TxSpec {
    /// Index of the sender ([`sender`]).
    pub sender: usize,
    /// What the transaction does.
    pub action: Action,
    /// Priority fee over the base fee, in wei.
    pub tip: u8,
    /// EIP-1559 transaction (from London on) rather than legacy.
    pub dynamic_fee: bool,
}

impl TxSpec {
    /// A legacy transaction paying the base fee.
    pub(crate) fn new(sender: usize, action: Action) -> Self {
        Self {
            sender,
            action,
            tip: 0,
            dynamic_fee: false,
        }
    }
}

/// A wrong nonce injected into a block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NonceFault {
    /// The transaction that gets it (wrapping around).
    pub position: usize,
    /// One below the expected nonce (when possible) rather than one above.
    pub too_low: bool,
}

/// A block to build over [`world`].
#[derive(Clone, Debug)]
pub(crate) struct BlockSpec {
    /// The rules.
    pub hardfork: Hardfork,
    /// Sender 0 is the beneficiary, rather than [`BENEFICIARY`].
    pub coinbase_is_sender: bool,
    /// Base fee (London on).
    pub basefee: u64,
    /// Block gas limit.
    pub gas_limit: u64,
    /// The transactions; valid nonces count up per sender.
    pub txs: Vec<TxSpec>,
    /// A transaction with a wrong nonce.
    pub nonce_fault: Option<NonceFault>,
}

impl BlockSpec {
    /// A valid block of `txs` under `hardfork`, base fee 0, gas limit 30M.
    pub(crate) fn new(hardfork: Hardfork, txs: Vec<TxSpec>) -> Self {
        Self {
            hardfork,
            coinbase_is_sender: false,
            basefee: 0,
            gas_limit: 30_000_000,
            txs,
            nonce_fault: None,
        }
    }

    /// The block.
    pub(crate) fn block(&self) -> Block {
        let london = self.hardfork >= Hardfork::London;
        let basefee = if london { self.basefee } else { 0 };
        let env = BlockEnv {
            number: U256::from(1_000),
            beneficiary: if self.coinbase_is_sender {
                sender(0)
            } else {
                BENEFICIARY
            },
            timestamp: U256::from(1_750_000_000),
            gas_limit: self.gas_limit,
            basefee,
            difficulty: U256::from(1),
            prevrandao: Some(B256::repeat_byte(7)),
            ..BlockEnv::default()
        };
        let recipients = recipients();
        let observed = observed();
        let mut targets = fixed_targets();
        let mut nonces = [0; SENDERS + 1];
        let fault = self.nonce_fault.map(|f| f.position % self.txs.len().max(1));
        let mut txs = Vec::with_capacity(self.txs.len());
        for (index, spec) in self.txs.iter().enumerate() {
            let caller = sender(spec.sender);
            let expected = nonces[spec.sender];
            let nonce = match (fault == Some(index), self.nonce_fault) {
                (true, Some(f)) if f.too_low && expected > 0 => expected - 1,
                (true, _) => expected + 1,
                (false, _) => {
                    nonces[spec.sender] += 1;
                    expected
                }
            };
            let call = |to: Address| TxKind::Call(to);
            let (kind, data, gas_limit, value) = match spec.action {
                Action::Transfer { to, value } => (
                    call(recipients[to % recipients.len()]),
                    vec![],
                    21_000,
                    value,
                ),
                Action::Counter {
                    load,
                    store,
                    add,
                    starved,
                } => {
                    let data = words(&[U256::from(load), U256::from(store), U256::from(add)]);
                    let gas = if starved {
                        intrinsic_gas(&data) + 1_000
                    } else {
                        100_000
                    };
                    (call(COUNTER), data, gas, 0)
                }
                Action::Revert { slot } => (call(REVERTER), words(&[U256::from(slot)]), 100_000, 0),
                Action::Loop => (call(LOOPER), vec![], 150_000, 0),
                Action::Invalid => (call(INVALID_OP), vec![], 100_000, 0),
                Action::Create { value } => {
                    targets.push(caller.create(nonce));
                    (TxKind::Create, child_init_code(), 300_000, value)
                }
                Action::Factory { mode, heir, value } => {
                    let heir = recipients[heir % recipients.len()];
                    let data = words(&[U256::from(mode), address_word(heir)]);
                    (call(FACTORY), data, 400_000, value)
                }
                Action::Call {
                    target,
                    destroy_to,
                    value,
                } => {
                    let data = destroy_to
                        .map(|to| words(&[address_word(recipients[to % recipients.len()])]))
                        .unwrap_or_default();
                    (call(targets[target % targets.len()]), data, 150_000, value)
                }
                Action::ReadBalance { of } => {
                    let of = observed[of % observed.len()];
                    (call(BALANCE_READER), words(&[address_word(of)]), 100_000, 0)
                }
                Action::ReadCoinbase => (call(COINBASE_READER), vec![], 100_000, 0),
            };
            let dynamic = london && spec.dynamic_fee;
            let price = u128::from(basefee) + u128::from(spec.tip);
            txs.push(TxEnv {
                tx_type: if dynamic { 2 } else { 0 },
                caller,
                gas_limit,
                // A dynamic-fee transaction offers more than it pays.
                gas_price: price + u128::from(dynamic),
                gas_priority_fee: dynamic.then_some(u128::from(spec.tip)),
                kind,
                value: U256::from(value),
                data: Bytes::from(data),
                nonce,
                chain_id: Some(CHAIN_ID),
                ..TxEnv::default()
            });
        }
        Block::new(&ChainSpec::from_genesis(self.hardfork, CHAIN_ID), env, txs)
    }
}

/// ABI-style calldata: 32-byte big-endian words.
fn words(words: &[U256]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes::<32>()).collect()
}

/// `address` as a calldata word.
fn address_word(address: Address) -> U256 {
    U256::from_be_bytes(address.into_word().0)
}

/// Intrinsic gas of a call with `data` at pre-Istanbul calldata prices (an upper bound).
fn intrinsic_gas(data: &[u8]) -> u64 {
    21_000
        + data
            .iter()
            .map(|b| if *b == 0 { 4 } else { 68 })
            .sum::<u64>()
}

/// A value sent with a transaction.
fn value() -> impl Strategy<Value = u64> {
    prop::sample::select(&VALUES[..])
}

/// A transaction's action, weighted towards conflicting transfers and storage updates.
fn action() -> impl Strategy<Value = Action> {
    let recipient = 0..recipients().len();
    prop_oneof![
        6 => (recipient.clone(), value()).prop_map(|(to, value)| Action::Transfer { to, value }),
        6 => (0..4u8, 0..4u8, any::<u8>(), prop::bool::weighted(0.1)).prop_map(
            |(load, store, add, starved)| Action::Counter { load, store, add, starved }
        ),
        1 => (0..4u8).prop_map(|slot| Action::Revert { slot }),
        1 => Just(Action::Loop),
        1 => Just(Action::Invalid),
        1 => value().prop_map(|value| Action::Create { value }),
        2 => (0..3u8, recipient.clone(), value())
            .prop_map(|(mode, heir, value)| Action::Factory { mode, heir, value }),
        4 => (0..10usize, prop::option::weighted(0.3, recipient), value()).prop_map(
            |(target, destroy_to, value)| Action::Call { target, destroy_to, value }
        ),
        2 => (0..observed().len()).prop_map(|of| Action::ReadBalance { of }),
        1 => Just(Action::ReadCoinbase),
    ]
}

/// A plain transfer to an address other than [`BENEFICIARY`]; unless `pure`, now and then
/// a transfer to the beneficiary or a call to a contract (which has code).
fn transfer_action(pure: bool) -> impl Strategy<Value = Action> {
    let beneficiary = recipients().len() - 1;
    let (others, rare) = if pure { (1, 0) } else { (60, 1) };
    prop_oneof![
        others => (0..beneficiary, value()).prop_map(|(to, value)| Action::Transfer { to, value }),
        rare => value().prop_map(move |value| Action::Transfer { to: beneficiary, value }),
        rare => (0..10usize, value()).prop_map(
            |(target, value)| Action::Call { target, destroy_to: None, value }
        ),
    ]
}

/// A transaction from one of `senders` doing one of `actions`.
fn tx_spec(
    senders: usize,
    actions: impl Strategy<Value = Action>,
) -> impl Strategy<Value = TxSpec> {
    (0..senders, actions, 0..3u8, any::<bool>()).prop_map(|(sender, action, tip, dynamic_fee)| {
        TxSpec {
            sender,
            action,
            tip,
            dynamic_fee,
        }
    })
}

/// Blocks under one of `hardforks` with `min..=max` transactions. Valid blocks only use funded
/// senders; `faulty` ones always carry a wrong nonce, may use the poor sender and may have a
/// block gas limit too small for all their transactions.
pub(crate) fn block_spec(
    hardforks: Vec<Hardfork>,
    min: usize,
    max: usize,
    faulty: bool,
) -> impl Strategy<Value = BlockSpec> {
    block_spec_of(hardforks, min, max, faulty, action())
}

/// [`block_spec`] of plain transfers (see [`transfer_action`]); when `pure`, the
/// beneficiary is never a sender either.
pub(crate) fn transfer_block_spec(
    hardforks: Vec<Hardfork>,
    min: usize,
    max: usize,
    faulty: bool,
    pure: bool,
) -> impl Strategy<Value = BlockSpec> {
    block_spec_of(hardforks, min, max, faulty, transfer_action(pure)).prop_map(move |mut spec| {
        spec.coinbase_is_sender &= !pure;
        spec
    })
}

/// [`block_spec`] with transactions doing `actions`.
fn block_spec_of(
    hardforks: Vec<Hardfork>,
    min: usize,
    max: usize,
    faulty: bool,
    actions: impl Strategy<Value = Action>,
) -> impl Strategy<Value = BlockSpec> {
    let senders = if faulty { SENDERS + 1 } else { SENDERS };
    let gas_limits: &'static [u64] = if faulty {
        &[30_000_000, 1_000_000]
    } else {
        &[30_000_000]
    };
    let nonce_fault = (any::<usize>(), any::<bool>())
        .prop_map(|(position, too_low)| Some(NonceFault { position, too_low }));
    (
        prop::sample::select(hardforks),
        any::<bool>(),
        prop::sample::select(&[0u64, 7][..]),
        prop::sample::select(gas_limits),
        prop::collection::vec(tx_spec(senders, actions), min..=max),
        if faulty {
            nonce_fault.boxed()
        } else {
            Just(None).boxed()
        },
    )
        .prop_map(
            |(hardfork, coinbase_is_sender, basefee, gas_limit, txs, nonce_fault)| BlockSpec {
                hardfork,
                coinbase_is_sender,
                basefee,
                gas_limit,
                txs,
                nonce_fault,
            },
        )
}

/// A reproducible valid block of `size` mixed transactions under `hardfork`.
pub(crate) fn mixed_block(hardfork: Hardfork, size: usize) -> BlockSpec {
    let mut runner = TestRunner::deterministic();
    block_spec(vec![hardfork], size, size, false)
        .new_tree(&mut runner)
        .expect("the strategy generates a block")
        .current()
}

/// `provider`'s accounts, code and storage in a `CacheDB`.
pub(crate) fn cache_db(provider: &InMemoryProvider) -> CacheDB<EmptyDB> {
    let mut db = CacheDB::new(EmptyDB::new());
    for (address, basic, storage) in provider.accounts() {
        let code = provider.code_by_hash(basic.code_hash).unwrap();
        let info = AccountInfo::new(basic.balance, basic.nonce, basic.code_hash, code);
        db.insert_account_info(*address, info);
        for (slot, value) in storage {
            db.insert_account_storage(*address, *slot, *value).unwrap();
        }
    }
    db
}

/// A client's database whose reads of one account fail.
#[derive(Debug)]
pub(crate) struct Down(pub CacheDB<EmptyDB>, pub Address);

/// Its error.
#[derive(Debug)]
pub(crate) struct Unreachable;

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the database is unreachable")
    }
}

impl std::error::Error for Unreachable {}

impl DBErrorMarker for Unreachable {}

impl DatabaseRef for Down {
    type Error = Unreachable;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Unreachable> {
        if address == self.1 {
            return Err(Unreachable);
        }
        Ok(self.0.basic_ref(address).unwrap_or_else(|e| match e {}))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Unreachable> {
        Ok(self
            .0
            .code_by_hash_ref(code_hash)
            .unwrap_or_else(|e| match e {}))
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, Unreachable> {
        Ok(self
            .0
            .storage_ref(address, index)
            .unwrap_or_else(|e| match e {}))
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Unreachable> {
        Ok(self.0.block_hash_ref(number).unwrap_or_else(|e| match e {}))
    }
}
