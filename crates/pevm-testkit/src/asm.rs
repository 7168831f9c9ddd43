//! A tiny EVM assembler: opcodes and pushes, with labels resolved by [`Asm::build`].

use std::collections::HashMap;

/// The opcodes the test contracts use.
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

/// Bytecode under construction.
#[derive(Default)]
pub struct Asm {
    code: Vec<u8>,
    labels: HashMap<&'static str, usize>,
    fixups: Vec<(usize, &'static str)>,
}

impl Asm {
    /// Appends opcodes.
    pub fn ops(mut self, ops: &[u8]) -> Self {
        self.code.extend_from_slice(ops);
        self
    }

    /// Pushes `value` with the shortest `PUSHn` (at least `PUSH1`).
    pub fn push(mut self, value: u64) -> Self {
        let bytes = value.to_be_bytes();
        let zeros = bytes.iter().take_while(|b| **b == 0).count().min(7);
        self.code.push(op::PUSH1 + (7 - zeros) as u8);
        self.code.extend_from_slice(&bytes[zeros..]);
        self
    }

    /// Pushes the offset of `label` (`PUSH2`).
    pub fn push_label(mut self, label: &'static str) -> Self {
        self.code.push(op::PUSH2);
        self.fixups.push((self.code.len(), label));
        self.code.extend([0, 0]);
        self
    }

    /// Names the current offset (for data appended after the code).
    pub fn mark(mut self, label: &'static str) -> Self {
        self.labels.insert(label, self.code.len());
        self
    }

    /// A jump target named `label`.
    pub fn jumpdest(self, label: &'static str) -> Self {
        self.mark(label).ops(&[op::JUMPDEST])
    }

    /// The bytecode, with every label pushed.
    pub fn build(mut self) -> Vec<u8> {
        for (at, label) in &self.fixups {
            let offset = u16::try_from(self.labels[label]).expect("test contracts are small");
            self.code[*at..*at + 2].copy_from_slice(&offset.to_be_bytes());
        }
        self.code
    }
}
