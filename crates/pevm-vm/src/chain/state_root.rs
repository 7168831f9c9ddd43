//! The Merkle-Patricia state root of an [`InMemoryProvider`], as a block header's `stateRoot`.

use std::collections::HashMap;

use alloy_primitives::{keccak256, B256, U256};
use alloy_trie::{HashBuilder, Nibbles, TrieAccount, EMPTY_ROOT_HASH};

use crate::InMemoryProvider;

/// The root of a trie of `(hashed key, RLP value)` leaves.
fn trie_root(mut leaves: Vec<(B256, Vec<u8>)>) -> B256 {
    if leaves.is_empty() {
        return EMPTY_ROOT_HASH;
    }
    leaves.sort_unstable_by_key(|(key, _)| *key);
    let mut builder = HashBuilder::default();
    for (key, value) in &leaves {
        builder.add_leaf(Nibbles::unpack(key), value);
    }
    builder.root()
}

/// The storage root of one account: slots keyed by keccak-256 of their 32-byte index, values
/// RLP-encoded, zero-valued slots left out.
pub fn storage_root(storage: &HashMap<U256, U256>) -> B256 {
    let leaves = storage
        .iter()
        .filter(|(_, value)| !value.is_zero())
        .map(|(slot, value)| {
            (
                keccak256(slot.to_be_bytes::<32>()),
                alloy_rlp::encode(value),
            )
        })
        .collect();
    trie_root(leaves)
}

impl InMemoryProvider {
    /// The state root of every account held: accounts keyed by keccak-256 of their address,
    /// each leaf the RLP list `[nonce, balance, storageRoot, codeHash]`.
    pub fn state_root(&self) -> B256 {
        let leaves = self
            .accounts()
            .map(|(address, basic, storage)| {
                let account = TrieAccount {
                    nonce: basic.nonce,
                    balance: basic.balance,
                    storage_root: storage_root(storage),
                    code_hash: basic.code_hash,
                };
                (keccak256(address), alloy_rlp::encode(account))
            })
            .collect();
        trie_root(leaves)
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{address, b256};

    use revm::bytecode::Bytecode;

    use super::*;
    use crate::InMemoryAccount;

    #[test]
    fn empty_state_has_the_empty_root() {
        assert_eq!(InMemoryProvider::default().state_root(), EMPTY_ROOT_HASH);
        assert_eq!(storage_root(&HashMap::new()), EMPTY_ROOT_HASH);
    }

    #[test]
    fn zero_slots_do_not_change_the_storage_root() {
        let mut storage = HashMap::from([(U256::from(1), U256::from(7))]);
        let root = storage_root(&storage);
        storage.insert(U256::from(2), U256::ZERO);
        assert_eq!(storage_root(&storage), root);
    }

    #[test]
    fn genesis_root_matches_a_filled_test() {
        // The genesis of ethereum/tests' ValidBlocks/bcExample/basefeeExample: the EIP-4788
        // contract with one slot, and a funded account.
        let code = "3373fffffffffffffffffffffffffffffffffffffffe14604d57602036146024575f5ffd5b5f35801560495762001fff810690815414603c575f5ffd5b62001fff01545f5260205ff35b5f5ffd5b62001fff42064281555f359062001fff015500";
        let code = alloy_primitives::hex::decode(code).unwrap();
        let mut provider = InMemoryProvider::default();
        provider.insert_account(
            address!("000f3df6d732807ef1319fb7b8bb8522d0beac02"),
            InMemoryAccount {
                nonce: 1,
                code: Some(Bytecode::new_raw(code.into())),
                storage: HashMap::from([(U256::from(0x3b6), U256::from(0x3b6))]),
                ..InMemoryAccount::default()
            },
        );
        provider.insert_account(
            address!("a94f5374fce5edbc8e2a8697c15331677e6ebf0b"),
            InMemoryAccount {
                balance: U256::from(0x016345785d8a0000u64),
                ..InMemoryAccount::default()
            },
        );
        assert_eq!(
            provider.state_root(),
            b256!("c9f38211bd47d18248e2bd461131b4b454dde6dd63ab70d57e157d2fe058b342")
        );
    }
}
