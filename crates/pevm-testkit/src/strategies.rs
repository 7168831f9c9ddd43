//! Proptest strategies of [`BlockSpec`]s, weighted towards transactions that conflict:
//! transfers between a few accounts, updates of shared storage slots, balance reads,
//! creations and self-destructs.

use alloy_primitives::U256;
use pevm_vm::Hardfork;
use proptest::{prelude::*, strategy::ValueTree, test_runner::TestRunner};

use crate::{
    spec::{Action, BlockSpec, Gas, Nonce, TxSpec},
    world::{known_addresses, FIRST_DESTRUCTIBLE, RECIPIENTS, RICH_SENDERS, SALTS},
};

/// Values sent with transactions, in wei.
const VALUES: [u64; 4] = [0, 1, 1_000_000_000_000_000, 1_000_000_000_000_000_000];

/// A value sent with a transaction.
fn value() -> impl Strategy<Value = U256> {
    prop::sample::select(&VALUES[..]).prop_map(U256::from)
}

/// An account without code: a sender, an absent or empty account, or the beneficiary.
fn recipient() -> impl Strategy<Value = u8> {
    0..RECIPIENTS
}

/// A self-destructible contract: pre-existing, the factory's, or one of the block's own
/// creations (which come after the known addresses).
fn destructible() -> impl Strategy<Value = u8> {
    let known = known_addresses().len() as u8;
    FIRST_DESTRUCTIBLE..known + 4
}

/// A transaction's action, weighted towards conflicting transfers and storage updates.
fn action() -> impl Strategy<Value = Action> {
    let known = known_addresses().len() as u8;
    prop_oneof![
        6 => (recipient(), value()).prop_map(|(to, value)| Action::Transfer { to, value, gas: 21_000 }),
        6 => (0..4u8, 0..4u8, any::<u8>())
            .prop_map(|(load, store, add)| Action::Counter { load, store, add }),
        1 => (0..4u8).prop_map(|slot| Action::Revert { slot }),
        1 => Just(Action::Loop),
        1 => Just(Action::Invalid),
        1 => value().prop_map(|value| Action::Create { value }),
        2 => (0..4u8, 0..SALTS as u8, recipient(), value())
            .prop_map(|(mode, salt, heir, value)| Action::Factory { mode, salt, heir, value }),
        4 => (destructible(), prop::option::weighted(0.3, recipient()), value()).prop_map(
            |(target, destroy_to, value)| Action::Call { target, destroy_to, value }
        ),
        2 => (0..known, any::<bool>()).prop_map(|(of, hash)| Action::Read { of, hash }),
        1 => Just(Action::ReadCoinbase),
        1 => (0..known, value(), prop::option::of(recipient()))
            .prop_map(|(to, value, arg)| Action::Forward { to, value, arg }),
    ]
}

/// A plain transfer to an address other than the beneficiary; unless `pure`, now and then
/// a transfer to the beneficiary or a call to a contract (which has code).
fn transfer_action(pure: bool) -> impl Strategy<Value = Action> {
    let beneficiary = RECIPIENTS - 1;
    let (others, rare) = if pure { (1, 0) } else { (60, 1) };
    let transfer = |(to, value)| Action::Transfer {
        to,
        value,
        gas: 21_000,
    };
    prop_oneof![
        others => (0..beneficiary, value()).prop_map(transfer),
        rare => (Just(beneficiary), value()).prop_map(transfer),
        rare => (destructible(), value()).prop_map(
            |(target, value)| Action::Call { target, destroy_to: None, value }
        ),
    ]
}

/// A transaction from one of `senders` doing one of `actions`; with `starve`, now and then
/// with too little gas to finish.
fn tx_spec(
    senders: usize,
    actions: impl Strategy<Value = Action>,
    starve: bool,
) -> impl Strategy<Value = TxSpec> {
    let starved = prop::bool::weighted(if starve { 0.05 } else { 0.0 });
    (0..senders, actions, 0..3u8, any::<bool>(), starved).prop_map(
        |(sender, action, tip, dynamic_fee, starved)| TxSpec {
            tip,
            dynamic_fee,
            gas: if starved { Gas::Starved } else { Gas::Enough },
            ..TxSpec::new(sender, action)
        },
    )
}

/// Blocks under one of `hardforks` with `min..=max` transactions. Valid blocks only use rich
/// senders; `faulty` ones always carry a wrong nonce, may use the poor sender and may have a
/// block gas limit too small for all their transactions.
pub fn block_spec(
    hardforks: Vec<Hardfork>,
    min: usize,
    max: usize,
    faulty: bool,
) -> impl Strategy<Value = BlockSpec> {
    block_spec_of(
        hardforks,
        min,
        max,
        faulty,
        tx_spec_of(faulty, action(), true),
    )
}

/// [`block_spec`] of plain transfers to accounts without code, now and then (unless `pure`)
/// one to the beneficiary or a call to a contract; when `pure`, the beneficiary is never a
/// sender either.
pub fn transfer_block_spec(
    hardforks: Vec<Hardfork>,
    min: usize,
    max: usize,
    faulty: bool,
    pure: bool,
) -> impl Strategy<Value = BlockSpec> {
    let txs = tx_spec_of(faulty, transfer_action(pure), false);
    block_spec_of(hardforks, min, max, faulty, txs).prop_map(move |mut spec| {
        spec.coinbase_is_sender &= !pure;
        spec
    })
}

/// [`tx_spec`] from the senders a valid or `faulty` block uses.
fn tx_spec_of(
    faulty: bool,
    actions: impl Strategy<Value = Action>,
    starve: bool,
) -> impl Strategy<Value = TxSpec> {
    let senders = if faulty {
        RICH_SENDERS + 1
    } else {
        RICH_SENDERS
    };
    tx_spec(senders, actions, starve)
}

/// [`block_spec`] with transactions `txs`.
fn block_spec_of(
    hardforks: Vec<Hardfork>,
    min: usize,
    max: usize,
    faulty: bool,
    txs: impl Strategy<Value = TxSpec>,
) -> impl Strategy<Value = BlockSpec> {
    let gas_limits: &'static [u64] = if faulty {
        &[30_000_000, 1_000_000]
    } else {
        &[30_000_000]
    };
    (
        prop::sample::select(hardforks),
        any::<bool>(),
        prop::sample::select(&[0u64, 7][..]),
        prop::sample::select(gas_limits),
        prop::collection::vec(txs, min..=max),
        (any::<usize>(), any::<bool>()),
    )
        .prop_map(
            move |(hardfork, coinbase_is_sender, basefee, gas_limit, mut txs, fault)| {
                let (position, too_low) = fault;
                let len = txs.len().max(1);
                if let Some(tx) = txs.get_mut(position % len).filter(|_| faulty) {
                    tx.nonce = if too_low {
                        Nonce::TooLow
                    } else {
                        Nonce::TooHigh
                    };
                }
                BlockSpec {
                    hardfork,
                    coinbase_is_sender,
                    basefee,
                    gas_limit,
                    wild_code: Vec::new(),
                    txs,
                }
            },
        )
}

/// A reproducible valid block of `size` mixed transactions under `hardfork`.
pub fn mixed_block(hardfork: Hardfork, size: usize) -> BlockSpec {
    let mut runner = TestRunner::deterministic();
    block_spec(vec![hardfork], size, size, false)
        .new_tree(&mut runner)
        .expect("the strategy generates a block")
        .current()
}
