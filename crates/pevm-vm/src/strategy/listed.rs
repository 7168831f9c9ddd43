//! A block run with its access list (EIP-7928): each transaction reads what the transactions
//! before it left from the list itself (revm's `BalDatabase` over the state before the
//! block), so every transaction runs at once, none waits and none runs twice. The run then
//! checks the list: a read of an account or slot it lacks fails at once, and every change the
//! transactions made must be the list's, index for index.

use std::{
    collections::{BTreeMap, BTreeSet},
    ops::ControlFlow,
    sync::Arc,
};

use alloy_eips::eip7928::AccountChanges;
use alloy_primitives::{keccak256, Address, B256, U256};
use pevm_core::Pool;
use revm::{
    context::result::{EVMError, InvalidTransaction, ResultAndState},
    database_interface::bal::{BalDatabase, EvmDatabaseError},
    state::bal::{Bal, BlockAccessIndex},
    ExecuteEvm,
};

use crate::{
    exec::{outcome::block_evm, serial::InOrder},
    state::serial_db::SerialDb,
    Block, BlockAccessList, BlockOutput, ExecutionError, ProviderError, StateDiff, StateProvider,
};

/// One transaction's revm outcome over the list.
type Outcome =
    Result<ResultAndState, EVMError<EvmDatabaseError<ProviderError>, InvalidTransaction>>;

/// Executes `block`'s transactions on `provider` (the state before them) with `list`, the
/// block's access list, on up to `workers` workers of `pool`. The output is the serial one,
/// its access list included where the block asks for one; a list that is wrong or incomplete
/// for these transactions is an error naming the transaction and the account.
pub(crate) fn execute_listed<P: StateProvider>(
    pool: &Pool,
    workers: usize,
    provider: &P,
    block: &Block,
    list: &BlockAccessList,
) -> Result<BlockOutput, ExecutionError> {
    let bal = Bal::clone_from_alloy(list).map_err(|e| ExecutionError::AccessList {
        index: 0,
        message: format!("has invalid code: {e}"),
    })?;
    let bal = Arc::new(bal);
    let indices: Vec<usize> = (0..block.txs.len()).collect();
    let init = || {
        let db = BalDatabase::new(SerialDb::new(provider)).with_bal_option(Some(bal.clone()));
        block_evm(db, block)
    };
    let ran = pool
        .run_batches(
            &indices,
            workers,
            init,
            |evm, ran: &mut Vec<(usize, Outcome)>, chunk| {
                for &index in chunk {
                    // The list's values as the transactions before this one left them.
                    let bal_state = &mut evm.ctx.journaled_state.database.bal_state;
                    bal_state.bal_index = BlockAccessIndex::new(index as u64 + 1);
                    ran.push((index, evm.transact(block.txs[index].clone())));
                }
                ControlFlow::Continue(())
            },
        )
        .map_err(|message| ExecutionError::Panic { tx: None, message })?;
    let mut outcomes: Vec<(usize, Outcome)> = ran.into_iter().flatten().collect();
    outcomes.sort_unstable_by_key(|(index, _)| *index);
    let mut in_order = InOrder::with_access_list(block, true);
    let mut diff = StateDiff::new();
    for (index, outcome) in outcomes {
        in_order.gas.admit(index, block.txs[index].gas_limit)?;
        in_order.push(&mut diff, index, block.txs[index].tx_type, outcome, false)?;
    }
    let mut output = in_order.finish(diff);
    let emitted = output.access_list.take().unwrap_or_default();
    check_changes(list, &emitted, block.txs.len())?;
    output.access_list = block.access_list.then_some(emitted);
    Ok(output)
}

/// One change an access list records: at an index, of an account, a field.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    Balance,
    Nonce,
    Code,
    Slot(U256),
}

/// A recorded value.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Word(U256),
    Nonce(u64),
    /// The code's hash.
    CodeHash(B256),
}

/// Every change of `list` made by transactions `0..txs` (indices `1..=txs`).
fn tx_changes(list: &[AccountChanges], txs: usize) -> BTreeMap<(u64, Address, Field), Value> {
    let in_txs = |index: u64| (1..=txs as u64).contains(&index);
    let mut changes = BTreeMap::new();
    for account in list {
        let address = account.address;
        let mut put = |index: BlockAccessIndex, field, value| {
            let index = index.get();
            if in_txs(index) {
                changes.insert((index, address, field), value);
            }
        };
        for c in &account.balance_changes {
            put(
                c.block_access_index,
                Field::Balance,
                Value::Word(c.post_balance),
            );
        }
        for c in &account.nonce_changes {
            put(
                c.block_access_index,
                Field::Nonce,
                Value::Nonce(c.new_nonce),
            );
        }
        for c in &account.code_changes {
            put(
                c.block_access_index,
                Field::Code,
                Value::CodeHash(keccak256(&c.new_code)),
            );
        }
        for slot in &account.storage_changes {
            for c in &slot.changes {
                put(
                    c.block_access_index,
                    Field::Slot(slot.slot),
                    Value::Word(c.new_value),
                );
            }
        }
    }
    changes
}

/// Fails where the changes the transactions made (`emitted`) are not the ones `given` lists
/// for them (`txs` transactions), naming the first transaction, account and field that differ.
pub(crate) fn check_changes(
    given: &[AccountChanges],
    emitted: &[AccountChanges],
    txs: usize,
) -> Result<(), ExecutionError> {
    let (given, emitted) = (tx_changes(given, txs), tx_changes(emitted, txs));
    let keys: BTreeSet<_> = given.keys().chain(emitted.keys()).collect();
    for key in keys {
        let (listed, made) = (given.get(key), emitted.get(key));
        if listed != made {
            let (index, address, field) = key;
            return Err(ExecutionError::AccessList {
                index: *index as usize - 1,
                message: format!(
                    "lists {field:?} of {address} as {listed:?}, the transaction made {made:?}"
                ),
            });
        }
    }
    Ok(())
}

impl From<EvmDatabaseError<ProviderError>> for ExecutionError {
    fn from(error: EvmDatabaseError<ProviderError>) -> Self {
        match error {
            EvmDatabaseError::Database(error) => error.into(),
            EvmDatabaseError::Bal(error) => Self::AccessList {
                index: 0,
                message: format!("lacks what the transaction read: {error}"),
            },
        }
    }
}
