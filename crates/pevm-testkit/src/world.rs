//! The state every test block runs on: a few senders, empty and absent accounts, and
//! hand-assembled contracts that share storage slots, revert, loop, create, self-destruct,
//! forward calls and read balances.

use std::sync::OnceLock;

use alloy_primitives::{Address, U256};
use pevm_vm::{revm::bytecode::Bytecode, InMemoryAccount, InMemoryProvider};

use crate::asm::{op::*, Asm};

/// `slot[word1] = slot[word0] + word2`, logging the sum with topic `word1`.
pub fn counter_code() -> Vec<u8> {
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

/// Writes 1 to slot `word0`, then reverts (an invalid opcode before Byzantium).
pub fn reverter_code() -> Vec<u8> {
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
pub fn looper_code() -> Vec<u8> {
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
pub fn invalid_code() -> Vec<u8> {
    Asm::default()
        .push(1)
        .push(1)
        .ops(&[SSTORE, INVALID])
        .build()
}

/// Without calldata: increments slot 0 (and accepts any value). With calldata: self-destructs,
/// sending its balance to the address in `word0`.
pub fn destructible_code() -> Vec<u8> {
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

/// Init code of the contracts the block creates: stores 42 in slot 0 and the creator in
/// slot 1, and deploys [`destructible_code`].
pub fn child_init_code() -> Vec<u8> {
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

/// The factory. `word0` is a mode: bit 0 picks `CREATE2` (salt `word1`) over `CREATE`, bit 1
/// then calls the new child to self-destruct to `word2` in the same transaction. The child's
/// address goes to slot `mode`; the call value is passed on to the child.
pub fn factory_code() -> Vec<u8> {
    let init = child_init_code();
    let len = init.len() as u64;
    let mut code = Asm::default()
        // memory[0..len] = init code
        .push(len)
        .push_label("init")
        .push(0)
        .ops(&[CODECOPY])
        .push(0)
        .ops(&[CALLDATALOAD])
        .push(1)
        .ops(&[AND])
        .push_label("create2")
        .ops(&[JUMPI])
        .push(len)
        .push(0)
        .ops(&[CALLVALUE, CREATE])
        .push_label("created")
        .ops(&[JUMP])
        .jumpdest("create2")
        .push(0x20)
        .ops(&[CALLDATALOAD])
        .push(len)
        .push(0)
        .ops(&[CALLVALUE, CREATE2])
        // stack: [child]
        .jumpdest("created")
        .ops(&[DUP1])
        .push(0)
        .ops(&[CALLDATALOAD, SSTORE])
        .push(0)
        .ops(&[CALLDATALOAD])
        .push(2)
        .ops(&[AND, ISZERO])
        .push_label("end")
        .ops(&[JUMPI])
        // memory[0..32] = heir; CALL(60000, child, 0, 0, 32, 0, 0)
        .push(0x40)
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
        .ops(&[CALL, POP])
        .jumpdest("end")
        .ops(&[STOP])
        .mark("init")
        .build();
    code.extend(init);
    code
}

/// For the address `a` in `word0`: `slot[a] = BALANCE(a)`, `slot[a + 1] = EXTCODESIZE(a)`,
/// and when `word1` is not zero `slot[a + 2] = EXTCODEHASH(a)` (an invalid opcode before
/// Constantinople).
pub fn reader_code() -> Vec<u8> {
    Asm::default()
        .push(0)
        .ops(&[CALLDATALOAD, DUP1, BALANCE, DUP2, SSTORE])
        // stack: [a]
        .ops(&[DUP1, EXTCODESIZE, DUP2])
        .push(1)
        .ops(&[ADD, SSTORE])
        .push(0x20)
        .ops(&[CALLDATALOAD, ISZERO])
        .push_label("end")
        .ops(&[JUMPI])
        .ops(&[DUP1, EXTCODEHASH, DUP2])
        .push(2)
        .ops(&[ADD, SSTORE])
        .jumpdest("end")
        .ops(&[STOP])
        .build()
}

/// Stores the block beneficiary's balance in slot 0.
pub fn coinbase_reader_code() -> Vec<u8> {
    Asm::default()
        .ops(&[COINBASE, BALANCE])
        .push(0)
        .ops(&[SSTORE, STOP])
        .build()
}

/// Calls `word0` with value `word1`, 200,000 gas and the calldata after the first two words,
/// and stores the call's success flag in slot 0.
pub fn forwarder_code() -> Vec<u8> {
    Asm::default()
        // size = CALLDATASIZE - 64; memory[0..size] = calldata[64..]
        .push(64)
        .ops(&[CALLDATASIZE, SUB, DUP1])
        .push(64)
        .push(0)
        .ops(&[CALLDATACOPY])
        // CALL(200000, word0, word1, 0, size, 0, 0)
        .push(0)
        .push(0)
        .ops(&[DUP3])
        .push(0)
        .push(0x20)
        .ops(&[CALLDATALOAD])
        .push(0)
        .ops(&[CALLDATALOAD])
        .push(200_000)
        .ops(&[CALL])
        .push(0)
        .ops(&[SSTORE, POP, STOP])
        .build()
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
/// A contract whose code a block spec chooses (the fuzzer's input).
pub const WILD: Address = address(0xc0, 0x0b);
/// `CREATE2` salts the factory is given: few, so that creations collide.
pub const SALTS: u64 = 2;
/// One ether in wei.
pub const ETHER: u64 = 1_000_000_000_000_000_000;

/// The state before a block, without [`WILD`] (built once).
pub fn world() -> &'static InMemoryProvider {
    static WORLD: OnceLock<InMemoryProvider> = OnceLock::new();
    WORLD.get_or_init(|| {
        let mut provider = InMemoryProvider::default();
        let rich = U256::from(ETHER) * U256::from(1_000);
        for index in 0..RICH_SENDERS {
            provider.insert_account(sender(index), account(rich));
        }
        // Enough for a transfer or two at the highest gas price.
        provider.insert_account(sender(RICH_SENDERS), account(U256::from(500_000)));
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

/// [`world`] and [`WILD`] with `code` (absent when `code` is empty).
pub fn world_with_wild(code: &[u8]) -> InMemoryProvider {
    let mut provider = world().clone();
    if !code.is_empty() {
        provider.insert_account(WILD, contract(code.to_vec(), U256::from(ETHER)));
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
/// target) before the block's own creations, in this order: the senders, absent and empty
/// accounts and the default beneficiary (the [`RECIPIENTS`]), every contract, then the
/// self-destructible ones (from [`FIRST_DESTRUCTIBLE`]: the pre-existing ones and the
/// factory's first children). The block's creation transactions append theirs.
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

/// How many of [`known_addresses`] come first and hold no code: senders, absent and empty
/// accounts, and the default beneficiary (the last of them).
pub const RECIPIENTS: u8 = RICH_SENDERS as u8 + 1 + 2 + 2 + 1;

/// The index in [`known_addresses`] of the first self-destructible contract.
pub const FIRST_DESTRUCTIBLE: u8 = RECIPIENTS + 9;

/// The index of `address` in [`known_addresses`].
pub fn index_of(address: Address) -> u8 {
    let index = known_addresses().iter().position(|a| *a == address);
    let index = index.unwrap_or_else(|| panic!("{address} is not a known address"));
    u8::try_from(index).expect("few known addresses")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_constants_match_the_known_addresses() {
        let known = known_addresses();
        assert_eq!(known[RECIPIENTS as usize - 1], BENEFICIARY);
        let without_code = |address: &Address| {
            world().accounts().all(|(a, basic, _)| {
                a != address || basic.code_hash == pevm_vm::revm::primitives::KECCAK_EMPTY
            })
        };
        assert!(known[..RECIPIENTS as usize].iter().all(without_code));
        assert_eq!(known[FIRST_DESTRUCTIBLE as usize], DESTRUCTIBLES[0]);
        assert_eq!(index_of(FORWARDER), RECIPIENTS + 7);
    }

    #[test]
    fn labels_resolve_to_jump_destinations() {
        let code = looper_code();
        // PUSH1 1 PUSH1 0 SSTORE JUMPDEST PUSH2 0x0005 JUMP
        assert_eq!(code, [0x60, 1, 0x60, 0, SSTORE, JUMPDEST, 0x61, 0, 5, JUMP]);
    }
}
