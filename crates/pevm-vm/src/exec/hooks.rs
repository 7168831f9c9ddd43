//! The state changes a block makes outside its transactions, applied by alloy-evm's
//! `EthBlockExecutor` as a client applies them: before the transactions the EIP-2935
//! block-hash and EIP-4788 beacon-root system calls; after them the EIP-6110 deposits (from the
//! receipts), the EIP-7002 and EIP-7251 request system calls, the withdrawals (EIP-4895), the
//! proof-of-work block and uncle rewards, and the DAO-fork transfer.
//!
//! [`execute_block_with_hooks`] wraps either executor: the transactions run on the state after
//! the pre-block system calls, and the returned [`BlockOutput`]'s diff holds every change.

use std::{borrow::Cow, collections::btree_map::Entry};

use alloy_consensus::Header;

use alloy_eips::{
    eip4895::Withdrawal, eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
    eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
};
use alloy_evm::{
    block::BlockExecutor,
    eth::{receipt_builder::AlloyReceiptBuilder, EthBlockExecutor},
    Evm, EvmEnv, EvmFactory,
};
use alloy_hardforks::EthereumHardforks;
use alloy_primitives::Address;
use revm::{primitives::KECCAK_EMPTY, Database};

pub use alloy_evm::eth::EthBlockExecutionCtx as BlockContext;

use crate::{
    exec::{
        access_list::{join, AccessListBuilder},
        receipts::receipt,
    },
    state::serial_db::SerialDb,
    Block, BlockOutput, ChainSpec, ExecutionError, OverlayProvider, StateDiff, StateProvider,
};

/// Executes `block` on `chain` with `execute` (serial or parallel) between the steps
/// alloy-evm's block executor takes before and after the transactions.
///
/// The transactions run on the state after the pre-block system calls; the output's diff holds
/// the system calls' writes, the transactions' and the post-block changes', and its requests
/// are the block's EIP-7685 requests (empty before Prague).
pub fn execute_block_with_hooks<P, F>(
    provider: &P,
    chain: &ChainSpec,
    block: &Block,
    ctx: BlockContext<'_>,
    execute: F,
) -> Result<BlockOutput, ExecutionError>
where
    P: StateProvider,
    F: FnOnce(&OverlayProvider<'_, P>, &Block) -> Result<BlockOutput, ExecutionError>,
{
    // The steps' parts of the access list: the pre-block ones at index 0, the post-block ones
    // after the last transaction.
    let recorder = |index: u64| {
        block
            .access_list
            .then(|| (index, AccessListBuilder::default()))
    };
    let mut db = SerialDb::new(provider);
    db.access_list = recorder(0);
    let evm = alloy_evm::EthEvmFactory::default()
        .create_evm(db, EvmEnv::new(block.cfg.clone(), block.env.clone()));
    let mut executor = EthBlockExecutor::new(evm, ctx, chain, AlloyReceiptBuilder::default());
    executor
        .apply_pre_execution_changes()
        .map_err(|e| block_step_error("pre-block system call", e))?;
    let pre_block = executor.evm.db_mut().access_list.take();
    let output = execute(
        &OverlayProvider::new(provider, &executor.evm.db().diff),
        block,
    )?;
    // The deposits (EIP-6110) are read from the receipts; the block's gas is the results'.
    executor.receipts = output.results.iter().map(receipt).collect();
    merge_diff(&mut executor.evm.db_mut().diff, output.state);
    executor.evm.db_mut().access_list = recorder(output.results.len() as u64 + 1);
    check_request_contracts(chain, block, executor.evm.db_mut())?;
    let (evm, result) = executor
        .finish()
        .map_err(|e| block_step_error("post-block changes", e))?;
    let (mut db, _) = evm.finish();
    let post_block = db.access_list.take();
    let finish = |step: Option<(u64, AccessListBuilder)>| step.map(|(_, list)| list.finish());
    let access_list = block.access_list.then(|| {
        let parts = [finish(pre_block), output.access_list, finish(post_block)];
        join(parts.into_iter().flatten())
    });
    Ok(BlockOutput {
        results: output.results,
        state: db.diff,
        requests: result.requests,
        access_list,
    })
}

/// What the steps around the transactions of the block with `header` need: its parent hash and
/// beacon root, its uncles' headers (rewarded before the Merge) and its withdrawals.
pub fn block_context<'a>(
    header: &Header,
    ommers: &'a [Header],
    withdrawals: Option<&'a [Withdrawal]>,
) -> BlockContext<'a> {
    BlockContext {
        parent_hash: header.parent_hash,
        parent_beacon_block_root: header.parent_beacon_block_root,
        ommers,
        withdrawals: withdrawals.map(Cow::Borrowed),
        extra_data: header.extra_data.clone(),
        tx_count_hint: None,
        slot_number: header.slot_number,
    }
}

/// The contracts whose post-block system calls must find code (EIP-7002, EIP-7251).
pub const REQUEST_CONTRACTS: [Address; 2] = [
    WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
    CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
];

/// From Prague on, a block whose withdrawal-request or consolidation contract has no code
/// when its system call is due is invalid (EIP-7002 and EIP-7251, as execution-specs apply
/// them). alloy-evm 0.39 calls an empty contract without complaint, so this check is ours;
/// the reference executor makes it too.
pub(crate) fn check_request_contracts<DB: Database>(
    chain: &ChainSpec,
    block: &Block,
    db: &mut DB,
) -> Result<(), ExecutionError> {
    if !chain.is_prague_active_at_timestamp(block.env.timestamp.saturating_to()) {
        return Ok(());
    }
    for contract in REQUEST_CONTRACTS {
        let account = db
            .basic(contract)
            .map_err(|e| block_step_error("post-block changes", e))?;
        if account.is_none_or(|a| a.code_hash == KECCAK_EMPTY) {
            return Err(block_step_error(
                "post-block changes",
                format!("system contract {contract} has no code"),
            ));
        }
    }
    Ok(())
}

/// A failed step of alloy-evm's block executor, with what failed in it.
fn block_step_error(step: &str, error: impl std::fmt::Display) -> ExecutionError {
    ExecutionError::Block {
        message: format!("{step}: {error}"),
    }
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

#[cfg(test)]
mod tests {
    use std::{borrow::Cow, collections::BTreeMap};

    use alloy_consensus::Header;
    use alloy_eips::{eip4788::BEACON_ROOTS_ADDRESS, eip4895::Withdrawal};
    use alloy_evm::eth::dao_fork::{DAO_HARDFORK_ACCOUNTS, DAO_HARDFORK_BENEFICIARY};
    use alloy_hardforks::ForkCondition;
    use alloy_primitives::{address, hex, uint, Address, Bytes, B256, U256};
    use revm::{bytecode::Bytecode, context::BlockEnv, primitives::KECCAK_EMPTY};

    use super::*;
    use crate::{AccountChange, AccountState, Hardfork, InMemoryAccount, InMemoryProvider};

    const ETHER: U256 = uint!(1_000_000_000_000_000_000_U256);
    const MINER: Address = address!("00000000000000000000000000000000000000c0");

    fn block(chain: &ChainSpec, number: u64, timestamp: u64) -> Block {
        let env = BlockEnv {
            number: U256::from(number),
            timestamp: U256::from(timestamp),
            beneficiary: MINER,
            gas_limit: 30_000_000,
            ..BlockEnv::default()
        };
        Block::new(chain, env, Vec::new())
    }

    fn ctx<'a>(ommers: &'a [Header], withdrawals: Option<&'a [Withdrawal]>) -> BlockContext<'a> {
        BlockContext {
            parent_hash: B256::repeat_byte(1),
            parent_beacon_block_root: Some(B256::ZERO),
            ommers,
            withdrawals: withdrawals.map(Cow::Borrowed),
            extra_data: Bytes::new(),
            tx_count_hint: None,
            slot_number: None,
        }
    }

    /// The block's changes around no transactions.
    fn hooks_only(
        provider: &InMemoryProvider,
        chain: &ChainSpec,
        block: &Block,
        ctx: BlockContext<'_>,
    ) -> BlockOutput {
        execute_block_with_hooks(provider, chain, block, ctx, |_, _| {
            Ok(BlockOutput::default())
        })
        .unwrap()
    }

    fn balance(diff: &StateDiff, address: Address) -> U256 {
        diff[&address].info.as_ref().unwrap().balance
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
        let ommers = [Header {
            beneficiary: uncle_miner,
            number: 9,
            ..Header::default()
        }];
        let byzantium = ChainSpec::from_genesis(Hardfork::Byzantium, 1);
        let output = hooks_only(
            &provider,
            &byzantium,
            &block(&byzantium, 10, 0),
            ctx(&ommers, None),
        );
        let reward = ETHER * U256::from(3);
        assert_eq!(
            balance(&output.state, MINER),
            reward + reward / U256::from(32)
        );
        // One generation back: 7/8 of the reward, on top of what the miner had.
        let uncle = output.state[&uncle_miner].info.as_ref().unwrap();
        assert_eq!(
            uncle.balance,
            U256::from(1) + reward * U256::from(7) / U256::from(8)
        );
        assert_eq!(uncle.nonce, 4);
        // Constantinople lowered the reward to 2 ether; after the Merge nothing is paid.
        let petersburg = ChainSpec::from_genesis(Hardfork::Petersburg, 1);
        let output = hooks_only(
            &provider,
            &petersburg,
            &block(&petersburg, 10, 0),
            ctx(&[], None),
        );
        assert_eq!(balance(&output.state, MINER), ETHER * U256::from(2));
        let paris = ChainSpec::from_genesis(Hardfork::Paris, 1);
        let output = hooks_only(&provider, &paris, &block(&paris, 10, 0), ctx(&ommers, None));
        assert!(output.state.is_empty());
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
        let withdrawals = [withdrawal(2), withdrawal(3), withdrawal(0)];
        let provider = InMemoryProvider::default();
        let shanghai = ChainSpec::from_genesis(Hardfork::Shanghai, 1);
        let output = hooks_only(
            &provider,
            &shanghai,
            &block(&shanghai, 1, 0),
            ctx(&[], Some(&withdrawals)),
        );
        assert_eq!(balance(&output.state, to), U256::from(5_000_000_000u64));
        assert!(output.requests.is_empty());
        // Zero amounts alone leave the account absent.
        let zero = [withdrawal(0)];
        let output = hooks_only(
            &provider,
            &shanghai,
            &block(&shanghai, 1, 0),
            ctx(&[], Some(&zero)),
        );
        assert!(output.state.get(&to).is_none_or(|c| c.info.is_none()));
    }

    #[test]
    fn the_dao_fork_block_moves_the_dao_balances() {
        let mut provider = InMemoryProvider::default();
        // The DAO's child contracts: code, and a balance to drain.
        for (i, address) in DAO_HARDFORK_ACCOUNTS.iter().take(2).enumerate() {
            provider.insert_account(
                *address,
                InMemoryAccount {
                    balance: U256::from(10 + i),
                    code: Some(Bytecode::new_raw(Bytes::from_static(&[0x00]))),
                    ..InMemoryAccount::default()
                },
            );
        }
        let chain = ChainSpec::from_genesis(Hardfork::Homestead, 1)
            .with_fork(Hardfork::Dao, ForkCondition::Block(5));
        let output = hooks_only(&provider, &chain, &block(&chain, 5, 0), ctx(&[], None));
        assert_eq!(
            balance(&output.state, DAO_HARDFORK_BENEFICIARY),
            U256::from(21)
        );
        assert_eq!(balance(&output.state, DAO_HARDFORK_ACCOUNTS[0]), U256::ZERO);
        // Only at the fork block itself.
        let output = hooks_only(&provider, &chain, &block(&chain, 6, 0), ctx(&[], None));
        assert!(!output.state.contains_key(&DAO_HARDFORK_BENEFICIARY));
    }

    #[test]
    fn beacon_root_is_stored_before_the_transactions() {
        // The EIP-4788 contract as deployed on mainnet.
        let code = hex!("3373fffffffffffffffffffffffffffffffffffffffe14604d57602036146024575f5ffd5b5f35801560495762001fff810690815414603c575f5ffd5b62001fff01545f5260205ff35b5f5ffd5b62001fff42064281555f359062001fff015500");
        let mut provider = InMemoryProvider::default();
        provider.insert_account(
            BEACON_ROOTS_ADDRESS,
            InMemoryAccount {
                nonce: 1,
                code: Some(Bytecode::new_raw(code.into())),
                ..InMemoryAccount::default()
            },
        );
        let root = B256::repeat_byte(0xab);
        let cancun = ChainSpec::from_genesis(Hardfork::Cancun, 1);
        let cancun_block = block(&cancun, 1, 12_345);
        let slot = U256::from(12_345 % 8191);
        let context = BlockContext {
            parent_beacon_block_root: Some(root),
            ..ctx(&[], Some(&[]))
        };
        // The transactions see the stored root, and the output holds the write.
        let output = execute_block_with_hooks(
            &provider,
            &cancun,
            &cancun_block,
            context.clone(),
            |state, _| {
                assert_eq!(
                    state.storage(BEACON_ROOTS_ADDRESS, slot).unwrap(),
                    U256::from(12_345)
                );
                Ok(BlockOutput::default())
            },
        )
        .unwrap();
        let storage = &output.state[&BEACON_ROOTS_ADDRESS].storage;
        assert_eq!(storage[&slot], U256::from(12_345));
        assert_eq!(
            storage[&(slot + U256::from(8191))],
            U256::from_be_bytes(root.0)
        );
        // Before Cancun there is no call.
        let shanghai = ChainSpec::from_genesis(Hardfork::Shanghai, 1);
        let output = hooks_only(&provider, &shanghai, &block(&shanghai, 1, 12_345), context);
        assert!(output.state.is_empty());
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
