//! The state changes a block makes outside its transactions, as a client applies them: the
//! EIP-4788 beacon-root and EIP-2935 block-hash system calls before the transactions, and
//! the withdrawals (EIP-4895) and proof-of-work block and uncle rewards after them.
//!
//! [`execute_block_with_hooks`] wraps either executor: the transactions run on the state after
//! the pre-block system calls, and the returned [`BlockOutput`]'s diff holds every change.

use std::collections::{btree_map::Entry, BTreeMap};

use alloy_eips::{eip2935::HISTORY_STORAGE_ADDRESS, eip4788::BEACON_ROOTS_ADDRESS};
use alloy_primitives::{Address, Bytes, B256, U256};
use revm::{
    bytecode::Bytecode,
    handler::SystemCallEvm,
    primitives::{StorageKey, StorageValue, KECCAK_EMPTY},
    state::AccountInfo,
    Context, Database, MainBuilder, MainContext,
};

pub use alloy_eips::eip4895::Withdrawal;

use crate::{
    result::{account_writes, apply_writes},
    serial::account_info,
    AccountChange, AccountState, Block, BlockOutput, ExecutionError, Hardfork, OverlayProvider,
    ProviderError, StateDiff, StateProvider,
};

/// An uncle (ommer) header's fields that its reward depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ommer {
    /// The uncle's miner.
    pub beneficiary: Address,
    /// The uncle's block number.
    pub number: u64,
}

/// What the steps around a block's transactions need beyond [`Block`]: header fields,
/// withdrawals and uncles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockHooks {
    /// The parent block's hash (stored by EIP-2935 from Prague on).
    pub parent_hash: B256,
    /// The header's `parentBeaconBlockRoot` (stored by EIP-4788 from Cancun on).
    pub parent_beacon_block_root: Option<B256>,
    /// The block's withdrawals (Shanghai on), amounts in gwei.
    pub withdrawals: Vec<Withdrawal>,
    /// The block's uncles (rewarded before the Merge).
    pub ommers: Vec<Ommer>,
}

impl BlockHooks {
    /// The hooks of a block with this header, no withdrawals and no uncles.
    pub fn from_header(header: &alloy_consensus::Header) -> Self {
        Self {
            parent_hash: header.parent_hash,
            parent_beacon_block_root: header.parent_beacon_block_root,
            withdrawals: Vec::new(),
            ommers: Vec::new(),
        }
    }
}

/// The proof-of-work block reward of `hardfork`: 5 ether before Byzantium, 3 in Byzantium,
/// 2 from Constantinople to the Merge, none after.
pub fn block_reward(hardfork: Hardfork) -> Option<U256> {
    const ETHER: u128 = 1_000_000_000_000_000_000;
    let ether = if hardfork >= Hardfork::Paris {
        return None;
    } else if hardfork >= Hardfork::Petersburg {
        2
    } else if hardfork == Hardfork::Byzantium {
        3
    } else {
        5
    };
    Some(U256::from(ether * ETHER))
}

/// Executes `block` with `execute` (serial or parallel) between the pre- and post-block steps.
///
/// The transactions run on the state after [`pre_block_changes`]; the output's diff holds the
/// system calls' writes, the transactions' and then [`post_block_changes`]'.
pub fn execute_block_with_hooks<P, F>(
    provider: &P,
    block: &Block,
    hooks: &BlockHooks,
    execute: F,
) -> Result<BlockOutput, ExecutionError>
where
    P: StateProvider,
    F: FnOnce(&OverlayProvider<'_, P>, &Block) -> Result<BlockOutput, ExecutionError>,
{
    let mut state = pre_block_changes(provider, block, hooks)?;
    let output = execute(&OverlayProvider::new(provider, &state), block)?;
    merge_diff(&mut state, output.state);
    let post = post_block_changes(&OverlayProvider::new(provider, &state), block, hooks)?;
    merge_diff(&mut state, post);
    Ok(BlockOutput {
        results: output.results,
        state,
    })
}

/// The writes of the system calls that run before the transactions: from Cancun on the
/// parent beacon block root goes to the EIP-4788 contract, from Prague on the parent hash to
/// the EIP-2935 history contract. A contract without code is skipped, as the EIPs require.
///
/// A failed call is reported as [`ExecutionError::Evm`] at index 0.
pub fn pre_block_changes<P: StateProvider>(
    provider: &P,
    block: &Block,
    hooks: &BlockHooks,
) -> Result<StateDiff, ExecutionError> {
    let mut calls = Vec::new();
    if block.hardfork >= Hardfork::Prague && block.env.number > U256::ZERO {
        calls.push((HISTORY_STORAGE_ADDRESS, hooks.parent_hash));
    }
    if block.hardfork >= Hardfork::Cancun {
        if let Some(root) = hooks.parent_beacon_block_root {
            calls.push((BEACON_ROOTS_ADDRESS, root));
        }
    }
    let mut diff = StateDiff::new();
    for (contract, input) in calls {
        let changes = system_call(
            &OverlayProvider::new(provider, &diff),
            block,
            contract,
            input,
        )?;
        merge_diff(&mut diff, changes);
    }
    Ok(diff)
}

/// The balance increments after the transactions, read on `provider` (the state after
/// them): withdrawals from Shanghai on (gwei to wei; zero amounts change nothing), and before
/// the Merge the block reward to the beneficiary plus 1/32 of it per uncle, and
/// `(8 + uncle - block) / 8` of it to each uncle's miner.
pub fn post_block_changes<P: StateProvider>(
    provider: &P,
    block: &Block,
    hooks: &BlockHooks,
) -> Result<StateDiff, ExecutionError> {
    let mut increments: BTreeMap<Address, U256> = BTreeMap::new();
    let mut add = |address: Address, amount: U256| {
        if !amount.is_zero() {
            let balance = increments.entry(address).or_default();
            *balance = balance.saturating_add(amount);
        }
    };
    if let Some(reward) = block_reward(block.hardfork) {
        let number = block.env.number.saturating_to::<u64>();
        let per_uncle = reward / U256::from(32);
        add(
            block.env.beneficiary,
            reward + per_uncle * U256::from(hooks.ommers.len()),
        );
        for ommer in &hooks.ommers {
            let eighths = (8 + ommer.number).saturating_sub(number);
            add(
                ommer.beneficiary,
                reward * U256::from(eighths) / U256::from(8),
            );
        }
    }
    if block.hardfork >= Hardfork::Shanghai {
        for withdrawal in &hooks.withdrawals {
            add(withdrawal.address, withdrawal.amount_wei());
        }
    }
    let mut diff = StateDiff::new();
    for (address, amount) in increments {
        let before = provider.basic(address)?;
        let info = AccountState {
            balance: before
                .map_or(U256::ZERO, |a| a.balance)
                .saturating_add(amount),
            nonce: before.map_or(0, |a| a.nonce),
            code_hash: before.map_or(KECCAK_EMPTY, |a| a.code_hash),
            code: None,
        };
        diff.insert(
            address,
            AccountChange {
                info: Some(info),
                ..AccountChange::default()
            },
        );
    }
    Ok(diff)
}

/// Folds `later`, a diff taken on the state after `base`, into `base`.
pub fn merge_diff(base: &mut StateDiff, later: StateDiff) {
    for (address, change) in later {
        let earlier = match base.entry(address) {
            Entry::Vacant(entry) => {
                entry.insert(change);
                continue;
            }
            Entry::Occupied(entry) => entry.into_mut(),
        };
        if change.storage_cleared {
            earlier.storage_cleared = true;
            earlier.storage = change.storage;
        } else {
            earlier.storage.extend(change.storage);
        }
        let earlier_code = earlier.info.take().and_then(|info| {
            let hash = info.code_hash;
            info.code.map(|code| (hash, code))
        });
        earlier.info = change.info.map(|mut info| {
            if info.code.is_none() {
                // Code the earlier diff deployed is still this account's code.
                info.code = earlier_code
                    .filter(|(hash, _)| *hash == info.code_hash)
                    .map(|(_, code)| code);
            }
            info
        });
    }
}

/// The storage writes of one system call to `contract` with `input`, or nothing when the
/// contract has no code.
fn system_call<P: StateProvider>(
    provider: &P,
    block: &Block,
    contract: Address,
    input: B256,
) -> Result<StateDiff, ExecutionError> {
    let has_code = provider
        .basic(contract)?
        .is_some_and(|account| account.code_hash != KECCAK_EMPTY);
    if !has_code {
        return Ok(StateDiff::new());
    }
    let mut evm = Context::mainnet()
        .with_db(ProviderDb(provider))
        .with_block(block.env.clone())
        .with_cfg(block.cfg())
        .build_mainnet();
    let mut outcome = evm
        .system_call(contract, Bytes::copy_from_slice(input.as_slice()))
        .map_err(|error| ExecutionError::Evm {
            index: 0,
            message: format!("system call to {contract}: {error}"),
        })?;
    // Only the contract's own writes count: the system caller is not a real account.
    outcome.state.retain(|address, _| *address == contract);
    let mut diff = StateDiff::new();
    apply_writes(&mut diff, &account_writes(outcome.state));
    Ok(diff)
}

/// revm's database over a [`StateProvider`], read-only.
struct ProviderDb<'a, P>(&'a P);

impl<P: StateProvider> Database for ProviderDb<'_, P> {
    type Error = ProviderError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        self.0
            .basic(address)?
            .map(|a| account_info(self.0, a.balance, a.nonce, a.code_hash, None))
            .transpose()
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        self.0.code_by_hash(code_hash)
    }

    fn storage(
        &mut self,
        address: Address,
        index: StorageKey,
    ) -> Result<StorageValue, Self::Error> {
        self.0.storage(address, index)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, Self::Error> {
        self.0.block_hash(number)
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{address, hex, uint};
    use revm::context::BlockEnv;

    use super::*;
    use crate::{InMemoryAccount, InMemoryProvider};

    const ETHER: U256 = uint!(1_000_000_000_000_000_000_U256);

    fn block(hardfork: Hardfork, number: u64, timestamp: u64) -> Block {
        Block {
            hardfork,
            chain_id: 1,
            env: BlockEnv {
                number: U256::from(number),
                timestamp: U256::from(timestamp),
                beneficiary: address!("00000000000000000000000000000000000000c0"),
                ..BlockEnv::default()
            },
            txs: Vec::new(),
        }
    }

    fn balance(diff: &StateDiff, address: Address) -> U256 {
        diff[&address].info.as_ref().unwrap().balance
    }

    #[test]
    fn block_reward_follows_the_forks() {
        assert_eq!(
            block_reward(Hardfork::Frontier),
            Some(ETHER * U256::from(5))
        );
        assert_eq!(
            block_reward(Hardfork::SpuriousDragon),
            Some(ETHER * U256::from(5))
        );
        assert_eq!(
            block_reward(Hardfork::Byzantium),
            Some(ETHER * U256::from(3))
        );
        assert_eq!(
            block_reward(Hardfork::Petersburg),
            Some(ETHER * U256::from(2))
        );
        assert_eq!(block_reward(Hardfork::London), Some(ETHER * U256::from(2)));
        assert_eq!(block_reward(Hardfork::Paris), None);
    }

    #[test]
    fn miner_and_uncles_are_rewarded_before_the_merge() {
        let uncle_miner = address!("00000000000000000000000000000000000000c1");
        let mut provider = InMemoryProvider::default();
        provider.insert_account(
            uncle_miner,
            InMemoryAccount {
                balance: U256::from(1),
                nonce: 4,
                ..InMemoryAccount::default()
            },
        );
        let hooks = BlockHooks {
            ommers: vec![Ommer {
                beneficiary: uncle_miner,
                number: 9,
            }],
            ..BlockHooks::default()
        };
        let block = block(Hardfork::Byzantium, 10, 0);
        let diff = post_block_changes(&provider, &block, &hooks).unwrap();
        let reward = ETHER * U256::from(3);
        assert_eq!(
            balance(&diff, block.env.beneficiary),
            reward + reward / U256::from(32)
        );
        // One generation back: 7/8 of the reward, on top of what the miner had.
        let uncle = diff[&uncle_miner].info.as_ref().unwrap();
        assert_eq!(
            uncle.balance,
            U256::from(1) + reward * U256::from(7) / U256::from(8)
        );
        assert_eq!(uncle.nonce, 4);
        // After the Merge nothing is paid.
        let merged = super::tests::block(Hardfork::Paris, 10, 0);
        assert!(post_block_changes(&provider, &merged, &hooks)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn withdrawals_credit_gwei_from_shanghai() {
        let to = address!("00000000000000000000000000000000000000d1");
        let withdrawal = |amount| Withdrawal {
            index: 0,
            validator_index: 0,
            address: to,
            amount,
        };
        let hooks = BlockHooks {
            withdrawals: vec![withdrawal(2), withdrawal(3), withdrawal(0)],
            ..BlockHooks::default()
        };
        let provider = InMemoryProvider::default();
        let diff = post_block_changes(&provider, &block(Hardfork::Shanghai, 1, 0), &hooks).unwrap();
        assert_eq!(balance(&diff, to), U256::from(5_000_000_000u64));
        let paris = post_block_changes(&provider, &block(Hardfork::Paris, 1, 0), &hooks).unwrap();
        assert!(paris.is_empty());
        // Zero amounts alone change nothing.
        let zero = BlockHooks {
            withdrawals: vec![withdrawal(0)],
            ..BlockHooks::default()
        };
        let diff = post_block_changes(&provider, &block(Hardfork::Shanghai, 1, 0), &zero).unwrap();
        assert!(diff.is_empty());
    }

    #[test]
    fn beacon_root_is_stored_before_the_transactions() {
        // The EIP-4788 contract as deployed on mainnet.
        let code = hex!("3373fffffffffffffffffffffffffffffffffffffffe14604d57602036146024575f5ffd5b5f35801560495762001fff810690815414603c575f5ffd5b62001fff01545f5260205ff35b5f5ffd5b62001fff42064281555f359062001fff015500");
        let mut provider = InMemoryProvider::default();
        let root = B256::repeat_byte(0xab);
        let hooks = BlockHooks {
            parent_beacon_block_root: Some(root),
            ..BlockHooks::default()
        };
        let cancun = block(Hardfork::Cancun, 1, 12_345);
        // Without the contract the call is skipped.
        assert!(pre_block_changes(&provider, &cancun, &hooks)
            .unwrap()
            .is_empty());
        provider.insert_account(
            BEACON_ROOTS_ADDRESS,
            InMemoryAccount {
                nonce: 1,
                code: Some(Bytecode::new_raw(code.into())),
                ..InMemoryAccount::default()
            },
        );
        let diff = pre_block_changes(&provider, &cancun, &hooks).unwrap();
        assert_eq!(diff.len(), 1, "only the contract changes: {diff:?}");
        let storage = &diff[&BEACON_ROOTS_ADDRESS].storage;
        let slot = U256::from(12_345 % 8191);
        assert_eq!(storage[&slot], U256::from(12_345));
        assert_eq!(
            storage[&(slot + U256::from(8191))],
            U256::from_be_bytes(root.0)
        );
        // Before Cancun there is no call.
        let shanghai = block(Hardfork::Shanghai, 1, 12_345);
        assert!(pre_block_changes(&provider, &shanghai, &hooks)
            .unwrap()
            .is_empty());

        // The transactions see the stored root, and the output holds the write.
        let output = execute_block_with_hooks(&provider, &cancun, &hooks, |state, _| {
            assert_eq!(
                state.storage(BEACON_ROOTS_ADDRESS, slot).unwrap(),
                U256::from(12_345)
            );
            Ok(BlockOutput::default())
        })
        .unwrap();
        assert_eq!(output.state, diff);
    }

    #[test]
    fn merging_keeps_deployed_code_and_honours_wipes() {
        let account = address!("00000000000000000000000000000000000000e1");
        let code = Bytecode::new_raw(vec![0x60, 0x00].into());
        let state = |balance: u64, code: Option<Bytecode>| AccountState {
            balance: U256::from(balance),
            nonce: 1,
            code_hash: code.as_ref().map_or(KECCAK_EMPTY, Bytecode::hash_slow),
            code,
        };
        let mut base = StateDiff::from([(
            account,
            AccountChange {
                info: Some(state(1, Some(code.clone()))),
                storage_cleared: false,
                storage: BTreeMap::from([(U256::from(1), U256::from(1))]),
            },
        )]);
        let mut later_info = state(2, Some(code.clone()));
        later_info.code = None;
        merge_diff(
            &mut base,
            StateDiff::from([(
                account,
                AccountChange {
                    info: Some(later_info),
                    storage_cleared: false,
                    storage: BTreeMap::from([(U256::from(2), U256::from(2))]),
                },
            )]),
        );
        let merged = &base[&account];
        assert_eq!(merged.info, Some(state(2, Some(code))));
        assert_eq!(merged.storage.len(), 2);
        merge_diff(
            &mut base,
            StateDiff::from([(
                account,
                AccountChange {
                    info: None,
                    storage_cleared: true,
                    storage: BTreeMap::new(),
                },
            )]),
        );
        let merged = &base[&account];
        assert!(merged.info.is_none() && merged.storage_cleared && merged.storage.is_empty());
    }
}
