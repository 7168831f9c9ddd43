//! A block run with its access list (EIP-7928): each transaction reads what the transactions
//! before it left from the list itself (revm's `BalDatabase` over the state before the
//! block), so every transaction runs at once, none waits and none runs twice. The run then
//! checks the list: a read of an account or slot it lacks fails at once, and every change the
//! transactions made must be the list's, index for index.

use std::{ops::ControlFlow, sync::Arc};

use alloy_primitives::{B256, U256};
use pevm_core::Pool;
use revm::{
    context::result::{EVMError, InvalidTransaction, ResultAndState},
    database_interface::bal::{BalDatabase, EvmDatabaseError},
    state::{
        bal::{AccountBal, Bal, BalWrites, BlockAccessIndex},
        EvmState,
    },
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
    let bal = bal_of(list)?;
    let changes = changes_per_index(&bal, block.txs.len());
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
            |evm, ran: &mut Vec<(usize, Result<Outcome, ExecutionError>)>, chunk| {
                for &index in chunk {
                    // The list's values as the transactions before this one left them.
                    let at = BlockAccessIndex::new(index as u64 + 1);
                    evm.ctx.journaled_state.database.bal_state.bal_index = at;
                    let outcome = evm.transact(&block.txs[index]);
                    // The changes it made must be the list's at its index.
                    let checked = match &outcome {
                        Ok(output) => check_tx(&bal, &changes, at, &output.state),
                        Err(_) => Ok(()),
                    };
                    let checked =
                        checked.map_err(|message| ExecutionError::AccessList { index, message });
                    ran.push((index, checked.map(|()| outcome)));
                }
                ControlFlow::Continue(())
            },
        )
        .map_err(|message| ExecutionError::Panic { tx: None, message })?;
    let mut outcomes: Vec<_> = ran.into_iter().flatten().collect();
    outcomes.sort_unstable_by_key(|(index, _)| *index);
    let mut in_order = InOrder::new(block);
    let mut diff = StateDiff::new();
    for (index, checked) in outcomes {
        in_order.gas.admit(index, block.txs[index].gas_limit)?;
        let outcome = checked?;
        in_order.push(&mut diff, index, block.txs[index].tx_type, outcome, false)?;
    }
    Ok(in_order.finish(diff))
}

/// How many changes (of a balance, a nonce, a code or a slot) `list` holds at each index, for
/// the indices of `txs` transactions.
fn changes_per_index(list: &Bal, txs: usize) -> Vec<usize> {
    let mut changes = vec![0; txs + 1];
    let mut count = |index: BlockAccessIndex| {
        if let Some(count) = changes.get_mut(index.get() as usize) {
            *count += 1;
        }
    };
    for account in list.accounts.values() {
        let info = &account.account_info;
        info.nonce.writes.iter().for_each(|(i, _)| count(*i));
        info.balance.writes.iter().for_each(|(i, _)| count(*i));
        info.code.writes.iter().for_each(|(i, _)| count(*i));
        for writes in account.storage.storage.values() {
            writes.writes.iter().for_each(|(i, _)| count(*i));
        }
    }
    changes
}

/// The value `writes` records at exactly `index`.
fn at<T: PartialEq + Clone>(writes: &BalWrites<T>, index: BlockAccessIndex) -> Option<&T> {
    let found = writes.writes.binary_search_by_key(&index, |(i, _)| *i);
    found.ok().map(|i| &writes.writes[i].1)
}

/// Fails where the changes of the transaction at `index` (its revm `state`, read over the
/// list) differ from what `list` records at that index (`changes` of them), naming the first
/// account and field that differ.
fn check_tx(
    list: &Bal,
    changes: &[usize],
    index: BlockAccessIndex,
    state: &EvmState,
) -> Result<(), String> {
    let made = made_at(list, index, state);
    let mut matched = 0;
    for (address, account) in &made.accounts {
        let listed = list.accounts.get(address);
        for (field, value) in changes_at(account, index) {
            let listed = listed.and_then(|listed| value_at(listed, &field, index));
            if listed.as_ref() != Some(&value) {
                return Err(format!(
                    "lists {field:?} of {address} as {listed:?}, the transaction made {:?}",
                    Some(value)
                ));
            }
            matched += 1;
        }
    }
    let listed = changes.get(index.get() as usize).copied().unwrap_or(0);
    if matched == listed {
        return Ok(());
    }
    // The list has a change this transaction did not make: name it.
    let unmade = list.accounts.iter().find_map(|(address, account)| {
        let made = made.accounts.get(address);
        let (field, _) = changes_at(account, index)
            .find(|(field, _)| made.and_then(|m| value_at(m, field, index)).is_none())?;
        Some(format!(
            "lists a change of {field:?} of {address} the transaction did not make"
        ))
    });
    Err(unmade
        .unwrap_or_else(|| format!("lists {listed} changes here, the transaction made {matched}")))
}

/// What revm's builder records for the transaction at `index` from its revm `state`, each
/// account it touched seeded with the last values `list` records before `index` of the fields
/// and slots it touched: the builder drops a write of the value it last recorded (a slot set
/// again after its contract was destroyed and re-created, say), as the one that made the list
/// did.
fn made_at(list: &Bal, index: BlockAccessIndex, state: &EvmState) -> Bal {
    let mut made = Bal::new();
    for (address, account) in state {
        if let Some(listed) = list.accounts.get(address) {
            let info = &listed.account_info;
            let mut seed = AccountBal::default();
            seed.account_info.nonce = last_before(&info.nonce, index);
            seed.account_info.balance = last_before(&info.balance, index);
            seed.account_info.code = last_before(&info.code, index);
            for slot in account.storage.keys() {
                if let Some(writes) = listed.storage.storage.get(slot) {
                    seed.storage
                        .storage
                        .insert(*slot, last_before(writes, index));
                }
            }
            made.accounts.insert(*address, seed);
        }
        made.update_account(index, *address, account);
    }
    made
}

/// The last of `writes` recorded before `index`, alone.
fn last_before<T: PartialEq + Clone>(
    writes: &BalWrites<T>,
    index: BlockAccessIndex,
) -> BalWrites<T> {
    let end = writes.writes.partition_point(|(at, _)| *at < index);
    BalWrites::new(writes.writes[end.saturating_sub(1)..end].to_vec())
}

/// The changes `account` records at exactly `index`, field by field.
fn changes_at(
    account: &AccountBal,
    index: BlockAccessIndex,
) -> impl Iterator<Item = (Field, Value)> + '_ {
    let info = &account.account_info;
    let fields = [
        at(&info.balance, index).map(|v| (Field::Balance, Value::Word(*v))),
        at(&info.nonce, index).map(|v| (Field::Nonce, Value::Nonce(*v))),
        at(&info.code, index).map(|(hash, _)| (Field::Code, Value::CodeHash(*hash))),
    ];
    let slots = account
        .storage
        .storage
        .iter()
        .filter_map(move |(slot, writes)| {
            let value = at(writes, index)?;
            Some((Field::Slot(*slot), Value::Word(*value)))
        });
    fields.into_iter().flatten().chain(slots)
}

/// The value `account` records for `field` at exactly `index`.
fn value_at(account: &AccountBal, field: &Field, index: BlockAccessIndex) -> Option<Value> {
    let info = &account.account_info;
    match field {
        Field::Balance => at(&info.balance, index).map(|v| Value::Word(*v)),
        Field::Nonce => at(&info.nonce, index).map(|v| Value::Nonce(*v)),
        Field::Code => at(&info.code, index).map(|(hash, _)| Value::CodeHash(*hash)),
        Field::Slot(slot) => {
            let writes = account.storage.storage.get(slot)?;
            at(writes, index).map(|v| Value::Word(*v))
        }
    }
}

/// A field an access list records changes of.
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// Fails where the changes of the transactions (their revm `states`, in block order) differ
/// from what `list` records for them, naming the first transaction, account and field.
pub(crate) fn check_states(
    list: &BlockAccessList,
    states: &[ResultAndState],
) -> Result<(), ExecutionError> {
    let bal = bal_of(list)?;
    let changes = changes_per_index(&bal, states.len());
    for (index, output) in states.iter().enumerate() {
        let at = BlockAccessIndex::new(index as u64 + 1);
        check_tx(&bal, &changes, at, &output.state)
            .map_err(|message| ExecutionError::AccessList { index, message })?;
    }
    Ok(())
}

/// revm's form of `list`.
fn bal_of(list: &BlockAccessList) -> Result<Bal, ExecutionError> {
    Bal::clone_from_alloy(list).map_err(|e| ExecutionError::AccessList {
        index: 0,
        message: format!("has invalid code: {e}"),
    })
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
