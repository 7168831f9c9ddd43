//! The fixed state every fuzzed block runs on: a few senders, empty and absent accounts, and
//! hand-assembled contracts that share storage slots, revert, loop, create, self-destruct,
//! forward calls and read balances.

use std::{collections::HashMap, sync::OnceLock};

use alloy_primitives::{Address, U256};
use pevm_vm::{revm::bytecode::Bytecode, InMemoryAccount, InMemoryProvider};

/// The opcodes the contracts use.
#[allow(missing_docs)]
pub mod op {
    pub const STOP: u8 = 0x00;
    pub const ADD: u8 = 0x01;
    pub const SUB: u8 = 0x03;
    pub const ISZERO: u8 = 0x15;
    pub const AND: u8 = 0x16;
    pub const BALANCE: u8 = 0x31;
    pub const CALLER: u8 = 0x33;
    pub const CALLVALUE: u8 = 0x34;
    pub const CALLDATALOAD: u8 = 0x35;
    pub const CALLDATASIZE: u8 = 0x36;
    pub const CALLDATACOPY: u8 = 0x37;
    pub const CODECOPY: u8 = 0x39;
    pub const EXTCODESIZE: u8 = 0x3b;
    pub const EXTCODEHASH: u8 = 0x3f;
    pub const COINBASE: u8 = 0x41;
    pub const POP: u8 = 0x50;
    pub const MSTORE: u8 = 0x52;
    pub const SLOAD: u8 = 0x54;
    pub const SSTORE: u8 = 0x55;
    pub const JUMP: u8 = 0x56;
    pub const JUMPI: u8 = 0x57;
    pub const JUMPDEST: u8 = 0x5b;
    pub const PUSH1: u8 = 0x60;
    pub const PUSH2: u8 = 0x61;
    pub const DUP1: u8 = 0x80;
    pub const DUP2: u8 = 0x81;
    pub const DUP3: u8 = 0x82;
    pub const DUP6: u8 = 0x85;
    pub const LOG1: u8 = 0xa1;
    pub const CREATE: u8 = 0xf0;
    pub const CALL: u8 = 0xf1;
    pub const RETURN: u8 = 0xf3;
    pub const CREATE2: u8 = 0xf5;
    pub const REVERT: u8 = 0xfd;
    pub const INVALID: u8 = 0xfe;
    pub const SELFDESTRUCT: u8 = 0xff;
}

/// One piece of a program for [`assemble`].
#[derive(Clone, Copy)]
enum Item {
    /// Raw opcodes.
    Ops(&'static [u8]),
    /// The shortest `PUSHn` of a number.
    Push(u64),
    /// `PUSH2` of a label's offset.
    PushLabel(&'static str),
    /// A label for the current offset (no byte emitted; put a `JUMPDEST` after it to jump
    /// there).
    Label(&'static str),
}

use Item::{Label, Ops, Push, PushLabel};

/// Assembles `items` into bytecode, resolving labels in a second pass.
fn assemble(items: &[Item]) -> Vec<u8> {
    let mut code = Vec::new();
    let mut labels = HashMap::new();
    let mut fixups = Vec::new();
    for item in items {
        match *item {
            Ops(ops) => code.extend_from_slice(ops),
            Push(value) => {
                let bytes = value.to_be_bytes();
                let zeros = bytes.iter().take_while(|b| **b == 0).count().min(7);
                code.push(op::PUSH1 + (7 - zeros) as u8);
                code.extend_from_slice(&bytes[zeros..]);
            }
            PushLabel(label) => {
                code.push(op::PUSH2);
                fixups.push((code.len(), label));
                code.extend([0, 0]);
            }
            Label(label) => {
                labels.insert(label, code.len());
            }
        }
    }
    for (at, label) in fixups {
        let offset = u16::try_from(labels[label]).expect("contracts are small");
        code[at..at + 2].copy_from_slice(&offset.to_be_bytes());
    }
    code
}

/// `slot[word1] = slot[word0] + word2`, logging the sum with topic `word1`.
pub fn counter_code() -> Vec<u8> {
    use op::*;
    assemble(&[
        Push(0x40),
        Ops(&[CALLDATALOAD]),
        Push(0),
        Ops(&[CALLDATALOAD, SLOAD, ADD, DUP1]),
        Push(0),
        Ops(&[MSTORE]),
        Push(0x20),
        Ops(&[CALLDATALOAD, DUP1]),
        Push(32),
        Push(0),
        Ops(&[LOG1, SSTORE, STOP]),
    ])
}

/// Writes 1 to slot `word0`, then reverts (an invalid opcode before Byzantium).
pub fn reverter_code() -> Vec<u8> {
    use op::*;
    assemble(&[
        Push(1),
        Push(0),
        Ops(&[CALLDATALOAD, SSTORE]),
        Push(0),
        Push(0),
        Ops(&[REVERT]),
    ])
}

/// Writes slot 0, then loops until out of gas.
pub fn looper_code() -> Vec<u8> {
    use op::*;
    assemble(&[
        Push(1),
        Push(0),
        Ops(&[SSTORE]),
        Label("loop"),
        Ops(&[JUMPDEST]),
        PushLabel("loop"),
        Ops(&[JUMP]),
    ])
}

/// Writes slot 1, then hits the designated invalid opcode.
pub fn invalid_code() -> Vec<u8> {
    use op::*;
    assemble(&[Push(1), Push(1), Ops(&[SSTORE, INVALID])])
}

/// Without calldata: increments slot 0 (and accepts any value). With calldata: self-destructs,
/// sending its balance to the address in `word0`.
pub fn destructible_code() -> Vec<u8> {
    use op::*;
    assemble(&[
        Ops(&[CALLDATASIZE]),
        PushLabel("destroy"),
        Ops(&[JUMPI]),
        Push(0),
        Ops(&[SLOAD]),
        Push(1),
        Ops(&[ADD]),
        Push(0),
        Ops(&[SSTORE, STOP]),
        Label("destroy"),
        Ops(&[JUMPDEST]),
        Push(0),
        Ops(&[CALLDATALOAD, SELFDESTRUCT]),
    ])
}

/// Init code of the contracts the block creates: stores 42 in slot 0 and the creator in
/// slot 1, and deploys [`destructible_code`].
pub fn child_init_code() -> Vec<u8> {
    use op::*;
    let runtime = destructible_code();
    let len = runtime.len() as u64;
    let mut code = assemble(&[
        Ops(&[CALLER]),
        Push(1),
        Ops(&[SSTORE]),
        Push(42),
        Push(0),
        Ops(&[SSTORE]),
        Push(len),
        PushLabel("runtime"),
        Push(0),
        Ops(&[CODECOPY]),
        Push(len),
        Push(0),
        Ops(&[RETURN]),
        Label("runtime"),
    ]);
    code.extend(runtime);
    code
}

/// The factory. `word0` is a mode: bit 0 picks `CREATE2` (salt `word1`) over `CREATE`, bit 1
/// then calls the new child to self-destruct to `word2` in the same transaction. The child's
/// address goes to slot `mode`; the call value is passed on to the child.
pub fn factory_code() -> Vec<u8> {
    use op::*;
    let init = child_init_code();
    let len = init.len() as u64;
    let mut code = assemble(&[
        // memory[0..len] = init code
        Push(len),
        PushLabel("init"),
        Push(0),
        Ops(&[CODECOPY]),
        Push(0),
        Ops(&[CALLDATALOAD]),
        Push(1),
        Ops(&[AND]),
        PushLabel("create2"),
        Ops(&[JUMPI]),
        Push(len),
        Push(0),
        Ops(&[CALLVALUE, CREATE]),
        PushLabel("created"),
        Ops(&[JUMP]),
        Label("create2"),
        Ops(&[JUMPDEST]),
        Push(0x20),
        Ops(&[CALLDATALOAD]),
        Push(len),
        Push(0),
        Ops(&[CALLVALUE, CREATE2]),
        // stack: [child]
        Label("created"),
        Ops(&[JUMPDEST, DUP1]),
        Push(0),
        Ops(&[CALLDATALOAD, SSTORE]),
        Push(0),
        Ops(&[CALLDATALOAD]),
        Push(2),
        Ops(&[AND, ISZERO]),
        PushLabel("end"),
        Ops(&[JUMPI]),
        // memory[0..32] = heir; CALL(60000, child, 0, 0, 32, 0, 0)
        Push(0x40),
        Ops(&[CALLDATALOAD]),
        Push(0),
        Ops(&[MSTORE]),
        Push(0),
        Push(0),
        Push(32),
        Push(0),
        Push(0),
        Ops(&[DUP6]),
        Push(60_000),
        Ops(&[CALL, POP]),
        Label("end"),
        Ops(&[JUMPDEST, STOP]),
        Label("init"),
    ]);
    code.extend(init);
    code
}

/// For the address `a` in `word0`: `slot[a] = BALANCE(a)`, `slot[a + 1] = EXTCODESIZE(a)`,
/// and when `word1` is not zero `slot[a + 2] = EXTCODEHASH(a)` (an invalid opcode before
/// Constantinople).
pub fn reader_code() -> Vec<u8> {
    use op::*;
    assemble(&[
        Push(0),
        Ops(&[CALLDATALOAD, DUP1, BALANCE, DUP2, SSTORE]),
        // stack: [a]
        Ops(&[DUP1, EXTCODESIZE, DUP2]),
        Push(1),
        Ops(&[ADD, SSTORE]),
        Push(0x20),
        Ops(&[CALLDATALOAD, ISZERO]),
        PushLabel("end"),
        Ops(&[JUMPI]),
        Ops(&[DUP1, EXTCODEHASH, DUP2]),
        Push(2),
        Ops(&[ADD, SSTORE]),
        Label("end"),
        Ops(&[JUMPDEST, STOP]),
    ])
}

/// Stores the block beneficiary's balance in slot 0.
pub fn coinbase_reader_code() -> Vec<u8> {
    use op::*;
    assemble(&[Ops(&[COINBASE, BALANCE]), Push(0), Ops(&[SSTORE, STOP])])
}

/// Calls `word0` with value `word1`, 200,000 gas and the calldata after the first two words,
/// and stores the call's success flag in slot 0.
pub fn forwarder_code() -> Vec<u8> {
    use op::*;
    assemble(&[
        // size = CALLDATASIZE - 64; memory[0..size] = calldata[64..]
        Push(64),
        Ops(&[CALLDATASIZE, SUB, DUP1]),
        Push(64),
        Push(0),
        Ops(&[CALLDATACOPY]),
        // CALL(200000, word0, word1, 0, size, 0, 0)
        Push(0),
        Push(0),
        Ops(&[DUP3]),
        Push(0),
        Push(0x20),
        Ops(&[CALLDATALOAD]),
        Push(0),
        Ops(&[CALLDATALOAD]),
        Push(200_000),
        Ops(&[CALL]),
        Push(0),
        Ops(&[SSTORE, POP, STOP]),
    ])
}

/// An address `tag 00.. index`.
const fn address(tag: u8, index: u8) -> Address {
    let mut bytes = [0; 20];
    bytes[0] = tag;
    bytes[19] = index;
    Address::new(bytes)
}

/// Number of well-funded senders; the poor sender has index `RICH_SENDERS`.
pub const RICH_SENDERS: usize = 5;
/// Sender `index` (`RICH_SENDERS` is the poor one).
pub const fn sender(index: usize) -> Address {
    address(0x10, index as u8)
}
/// The default block beneficiary (absent from the state before the block).
pub const BENEFICIARY: Address = address(0xbe, 0);
/// Accounts that exist but are empty (removed when touched from Spurious Dragon on).
pub const EMPTY: [Address; 2] = [address(0x21, 0), address(0x21, 1)];
/// Accounts absent from the state before the block.
pub const FRESH: [Address; 2] = [address(0x20, 0), address(0x20, 1)];
/// [`counter_code`].
pub const COUNTER: Address = address(0xc0, 1);
/// [`reverter_code`].
pub const REVERTER: Address = address(0xc0, 2);
/// [`looper_code`].
pub const LOOPER: Address = address(0xc0, 3);
/// [`invalid_code`].
pub const INVALID_OP: Address = address(0xc0, 4);
/// [`factory_code`].
pub const FACTORY: Address = address(0xc0, 5);
/// Pre-existing [`destructible_code`] contracts, with storage and balance.
pub const DESTRUCTIBLES: [Address; 2] = [address(0xc0, 6), address(0xc0, 7)];
/// [`reader_code`].
pub const READER: Address = address(0xc0, 8);
/// [`coinbase_reader_code`].
pub const COINBASE_READER: Address = address(0xc0, 9);
/// [`forwarder_code`], with a balance to pass on.
pub const FORWARDER: Address = address(0xc0, 0x0a);
/// A contract whose code comes from the fuzzer's input.
pub const WILD: Address = address(0xc0, 0x0b);
/// `CREATE2` salts the factory is given: few, so that creations collide.
pub const SALTS: u64 = 2;
/// One ether in wei.
pub const ETHER: u64 = 1_000_000_000_000_000_000;

/// The state before the block, without [`WILD`] (built once).
fn base_world() -> &'static InMemoryProvider {
    static WORLD: OnceLock<InMemoryProvider> = OnceLock::new();
    WORLD.get_or_init(|| {
        let mut provider = InMemoryProvider::default();
        let rich = U256::from(ETHER) * U256::from(1_000);
        for index in 0..RICH_SENDERS {
            provider.insert_account(sender(index), account(rich));
        }
        // Enough for a transfer or two.
        provider.insert_account(sender(RICH_SENDERS), account(U500K));
        for address in EMPTY {
            provider.insert_account(address, InMemoryAccount::default());
        }
        let contracts = [
            (COUNTER, counter_code()),
            (REVERTER, reverter_code()),
            (LOOPER, looper_code()),
            (INVALID_OP, invalid_code()),
            (FACTORY, factory_code()),
            (READER, reader_code()),
            (COINBASE_READER, coinbase_reader_code()),
        ];
        for (address, code) in contracts {
            provider.insert_account(address, contract(code, U256::ZERO));
        }
        for address in DESTRUCTIBLES {
            provider.insert_account(address, contract(destructible_code(), U256::from(ETHER)));
        }
        let forwarder_balance = U256::from(ETHER) * U256::from(10);
        provider.insert_account(FORWARDER, contract(forwarder_code(), forwarder_balance));
        provider
    })
}

const U500K: U256 = U256::from_limbs([500_000, 0, 0, 0]);

/// The state before the block: the fixed accounts, and [`WILD`] with `wild_code` (when not
/// empty).
pub fn world(wild_code: &[u8]) -> InMemoryProvider {
    let mut provider = base_world().clone();
    if !wild_code.is_empty() {
        provider.insert_account(WILD, contract(wild_code.to_vec(), U256::from(ETHER)));
    }
    provider
}

/// An account without code holding `balance`.
fn account(balance: U256) -> InMemoryAccount {
    InMemoryAccount {
        balance,
        ..InMemoryAccount::default()
    }
}

/// A contract (nonce 1) with `code`, `balance` and slots 0, 1, 2 set to 1, 2, 3.
fn contract(code: Vec<u8>, balance: U256) -> InMemoryAccount {
    InMemoryAccount {
        balance,
        nonce: 1,
        code: Some(Bytecode::new_raw(code.into())),
        storage: (0..3u64)
            .map(|slot| (U256::from(slot), U256::from(slot + 1)))
            .collect(),
    }
}

/// Every address a transaction may name (as recipient, heir, balance-read target or call
/// target) before the block's own creations: senders, empty and absent accounts, the default
/// beneficiary, every contract, and the factory's first children.
pub fn known_addresses() -> Vec<Address> {
    let mut out: Vec<Address> = (0..=RICH_SENDERS).map(sender).collect();
    out.extend(FRESH);
    out.extend(EMPTY);
    out.push(BENEFICIARY);
    out.extend([
        COUNTER,
        REVERTER,
        LOOPER,
        INVALID_OP,
        FACTORY,
        READER,
        COINBASE_READER,
        FORWARDER,
        WILD,
    ]);
    out.extend(DESTRUCTIBLES);
    // The factory has nonce 1: its CREATEs deploy at nonces 1, 2, 3.
    out.extend((1..=3).map(|nonce| FACTORY.create(nonce)));
    let init = child_init_code();
    out.extend((0..SALTS).map(|salt| {
        FACTORY.create2_from_code(U256::from(salt).to_be_bytes::<32>(), init.as_slice())
    }));
    out
}
