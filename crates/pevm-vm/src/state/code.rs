//! Code a worker holds on its own. A revm `Bytecode` is one `Arc`, counted up and down on
//! every clone: revm clones an account's code each time a transaction loads the account, and
//! again into the account's original. When every worker clones the same `Bytecode` (revm's
//! one empty code for all accounts without code, a token every transaction calls), they all
//! write one cache line, and the cores take turns on it. Each worker clones its own copy
//! instead; the copy shares the code's bytes and costs one copy of its jump table.

use alloy_primitives::{map::B256Map, Bytes, B256};
use revm::{
    bytecode::{Bytecode, JumpTable},
    primitives::KECCAK_EMPTY,
};

use crate::{ProviderError, StateProvider};

/// The code of an account without code, this thread's own copy of revm's
/// `Bytecode::default()`.
pub(crate) fn empty_code() -> Bytecode {
    thread_local! {
        // `Bytecode::new_legacy` of no bytes hands out the shared default itself.
        // SAFETY: a single STOP with no jump destinations is the padded form revm's analysis
        // gives empty code, and what revm builds its own default from.
        static EMPTY: Bytecode = unsafe {
            Bytecode::new_analyzed(Bytes::from_static(&[0x00]), 0, JumpTable::default())
        };
    }
    EMPTY.with(Bytecode::clone)
}

/// `code` under an `Arc` of its own, sharing its bytes.
fn own_copy(code: &Bytecode) -> Bytecode {
    match code.legacy_jump_table() {
        // SAFETY: the padded bytes and jump table of code revm analysed, as they are.
        Some(jumps) => unsafe {
            Bytecode::new_analyzed(code.bytecode().clone(), code.len(), jumps.clone())
        },
        // An EIP-7702 delegation: 23 bytes, built anew.
        None => Bytecode::new_raw_checked(code.original_bytes()).unwrap_or_else(|_| code.clone()),
    }
}

/// The codes one worker has loaded in a block, its own copies by hash.
#[derive(Debug, Default)]
pub(crate) struct WorkerCodes {
    codes: B256Map<Bytecode>,
}

impl WorkerCodes {
    /// The code under `code_hash`: this worker's copy of `written` (the code a transaction of
    /// the block deployed), else of the provider's.
    pub(crate) fn get<P: StateProvider>(
        &mut self,
        provider: &P,
        code_hash: B256,
        written: Option<Bytecode>,
    ) -> Result<Bytecode, ProviderError> {
        if code_hash == KECCAK_EMPTY {
            return Ok(empty_code());
        }
        if let Some(code) = self.codes.get(&code_hash) {
            return Ok(code.clone());
        }
        let shared = match written {
            Some(code) => code,
            None => provider.code_by_hash(code_hash)?,
        };
        let own = own_copy(&shared);
        self.codes.insert(code_hash, own.clone());
        Ok(own)
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Address;

    use super::*;

    #[test]
    fn each_threads_empty_code_is_revms_default() {
        let check = |code: Bytecode| {
            let default = Bytecode::default();
            assert_eq!(code, default);
            assert_eq!(code.kind(), default.kind());
            assert_eq!(code.bytecode(), default.bytecode());
            assert_eq!(code.len(), 0);
            assert_eq!(code.hash_slow(), KECCAK_EMPTY);
            assert_eq!(code.legacy_jump_table().map(JumpTable::len), Some(0));
            assert!(!code.is_default(), "not the shared default");
        };
        check(empty_code());
        std::thread::spawn(move || check(empty_code()))
            .join()
            .unwrap();
    }

    #[test]
    fn a_copy_is_the_same_code() {
        // PUSH1 4, JUMP, INVALID, JUMPDEST, PUSH1 0x61 (a 0x5b in an immediate), STOP.
        let legacy = Bytecode::new_raw(Bytes::from_static(&[
            0x60, 0x04, 0x56, 0xfe, 0x5b, 0x60, 0x5b, 0x00,
        ]));
        let delegation = Bytecode::new_eip7702(Address::repeat_byte(7));
        for code in [legacy, delegation] {
            let copy = own_copy(&code);
            assert_eq!(copy, code);
            assert_eq!(copy.kind(), code.kind());
            assert_eq!(copy.bytecode(), code.bytecode());
            assert_eq!(copy.len(), code.len());
            assert_eq!(copy.hash_slow(), code.hash_slow());
            assert_eq!(
                copy.legacy_jump_table().map(JumpTable::as_slice),
                code.legacy_jump_table().map(JumpTable::as_slice)
            );
        }
    }
}
