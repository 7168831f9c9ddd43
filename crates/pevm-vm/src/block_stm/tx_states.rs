//! Per-transaction revm outputs of a parallel run, as serial revm returns them. The fees and
//! credits a transaction paid without reading the account (see [`crate::lazy`]) are missing
//! from, or stale in, the state its execution returned; they are settled here, in block
//! order, on the accounts as the transactions before left them.

use alloy_primitives::{
    map::{AddressMap, AddressSet},
    Address, U256,
};
use revm::{
    context::result::ResultAndState,
    primitives::hardfork::SpecId,
    state::{Account, AccountInfo, EvmState, TransactionId},
};

use crate::{
    block_stm::vm::TxOutput, exec::outcome::BlockGas, state::provider::account_info, Block,
    ExecutionError, StateProvider,
};

/// Each transaction's revm result and state, from the outputs of a Block-STM run that kept
/// them, with its lazy payments settled; the error is the one of the lowest transaction, as
/// serially.
pub(crate) fn settle_tx_states<P: StateProvider>(
    provider: &P,
    block: &Block,
    outputs: Vec<Result<TxOutput, ExecutionError>>,
) -> Result<Vec<ResultAndState>, ExecutionError> {
    let beneficiary = block.env.beneficiary;
    let eip161 = block.cfg.spec.is_enabled_in(SpecId::SPURIOUS_DRAGON);
    // The accounts paid lazily, and each one's latest value after a transaction touched it.
    let mut paid: AddressSet = outputs
        .iter()
        .filter_map(|output| output.as_ref().ok()?.effects.lazy_credit)
        .map(|(to, _)| to)
        .collect();
    paid.insert(beneficiary);
    let mut latest = AddressMap::<Option<AccountInfo>>::default();
    let mut states = Vec::with_capacity(outputs.len());
    let mut gas = BlockGas::new(block);
    for (index, output) in outputs.into_iter().enumerate() {
        gas.admit(index, block.txs[index].gas_limit)?;
        let TxOutput {
            mut result,
            effects,
            evm,
        } = output?;
        gas.add(&mut result);
        let Some(mut evm) = evm else {
            return Err(ExecutionError::Evm {
                index,
                message: "the engine kept no revm output".to_string(),
            });
        };
        let payments = effects
            .lazy_credit
            .into_iter()
            .chain(effects.lazy_fee.map(|fee| (beneficiary, fee)));
        for (to, value) in payments {
            let before = match latest.get(&to) {
                Some(info) => info.clone(),
                None => provider
                    .basic(to)
                    .and_then(|basic| {
                        basic
                            .map(|a| account_info(provider, a.balance, a.nonce, a.code_hash, None))
                            .transpose()
                    })
                    .map_err(|error| ExecutionError::Provider { index, error })?,
            };
            settle_payment(&mut evm.state, to, value, before, eip161);
        }
        for (address, account) in evm.state.iter().filter(|(a, _)| paid.contains(*a)) {
            if account.is_touched() {
                latest.insert(*address, after_commit(account, eip161));
            }
        }
        states.push(evm);
    }
    Ok(states)
}

/// Puts into `state` the account at `address` (`before`, as the transactions before left it)
/// with `value` added, marked as revm's fee payment or transfer marks it: touched and, before
/// EIP-161, an empty account kept (or materialised when it did not exist) as revm's journal
/// leaves it.
fn settle_payment(
    state: &mut EvmState,
    address: Address,
    value: U256,
    before: Option<AccountInfo>,
    eip161: bool,
) {
    let mut account = match before {
        Some(info) => Account::from(info),
        None => Account::new_not_existing(TransactionId::ZERO),
    };
    account.info.balance = account.info.balance.saturating_add(value);
    account.mark_touch();
    if !eip161 && account.is_empty() {
        if account.is_loaded_as_not_existing() {
            account.mark_created();
        } else {
            account.unmark_touch();
        }
    }
    state.insert(address, account);
}

/// A touched account as committing its transaction leaves it: `None` when destroyed or, under
/// EIP-161, removed for being empty.
fn after_commit(account: &Account, eip161: bool) -> Option<AccountInfo> {
    let removed = account.is_selfdestructed() || (eip161 && account.is_empty());
    (!removed).then(|| account.info.clone())
}
