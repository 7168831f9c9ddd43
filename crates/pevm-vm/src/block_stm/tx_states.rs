//! Per-transaction revm outputs of a parallel run, as serial revm returns them. The fees and
//! credits a transaction paid without reading the account (see [`crate::lazy`]) are missing
//! from, or stale in, the state its execution returned; they are settled here, in block
//! order, on the accounts as the transactions before left them (with
//! [`crate::lazy`]'s rule for a payment into revm's state).

use alloy_primitives::map::{AddressMap, AddressSet};
use revm::{
    context::result::ResultAndState,
    state::{Account, AccountInfo},
};

use crate::{
    block_stm::vm::TxOutput, chain::block::BlockFacts, exec::outcome::BlockGas,
    lazy::settle_in_evm_state, state::provider::account_info, Block, ExecutionError, StateProvider,
};

/// Each transaction's revm result and state, from the outputs of a Block-STM run that kept
/// them, with its lazy payments settled; the error is the one of the lowest transaction, as
/// serially.
pub(crate) fn settle_tx_states<P: StateProvider>(
    provider: &P,
    block: &Block,
    outputs: Vec<Result<TxOutput, ExecutionError>>,
) -> Result<Vec<ResultAndState>, ExecutionError> {
    let BlockFacts {
        beneficiary,
        eip161,
        ..
    } = BlockFacts::new(block);
    // The accounts paid lazily, and each one's latest value after a transaction touched it.
    let mut paid: AddressSet = outputs
        .iter()
        .filter_map(|output| Some(output.as_ref().ok()?.effects.lazy_credit.as_ref()?.to))
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
        let Some(mut evm) = evm.map(|evm| *evm) else {
            return Err(ExecutionError::Evm {
                index,
                message: "the engine kept no revm output".to_string(),
            });
        };
        let payments = effects
            .lazy_credit
            .map(|credit| (credit.to, credit.value))
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
            settle_in_evm_state(&mut evm.state, to, value, before, eip161);
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

/// A touched account as committing its transaction leaves it: `None` when destroyed or, under
/// EIP-161, removed for being empty.
fn after_commit(account: &Account, eip161: bool) -> Option<AccountInfo> {
    let removed = account.is_selfdestructed() || (eip161 && account.is_empty());
    (!removed).then(|| account.info.clone())
}
