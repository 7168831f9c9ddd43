//! The groups of a transfer block: transactions linked by a shared account, found with a
//! union-find over the accounts, largest group first.

use std::ops::Range;

use alloy_primitives::{Address, TxKind};
use pevm_core::{Pool, TxIdx};
use revm::{
    context::TxEnv,
    precompile::{PrecompileSpecId, Precompiles},
};

use crate::{
    lazy::lazy_value,
    strategy::{numbered::Numbered, plan::plain_call},
    Block,
};

/// Transactions read at once by one worker while a block is analysed.
const EXTRACT_CHUNK: usize = 1024;

/// The leading zero bytes of every precompile's address (so far).
const LOW_PREFIX: usize = 18;

/// A block of plain transfers, cut into groups of transactions that share no account.
#[derive(Debug)]
pub(crate) struct TransferBlock {
    /// Transaction indices, group after group, each group in block order.
    pub(super) order: Vec<TxIdx>,
    /// Each group's range in `order`, largest groups first.
    pub(super) groups: Vec<Range<usize>>,
    /// Per transaction: whether it credits its recipient as a delta.
    pub(super) credits: Vec<bool>,
}

impl TransferBlock {
    /// The groups of `txs` when every one is a plain transfer: a call without calldata that
    /// no other can observe beyond a shared account; `None` when one is not (a creation, a
    /// call with calldata, an EIP-7702 authorisation, a call to a precompile, or the
    /// beneficiary as sender or recipient).
    pub(crate) fn new(
        txs: &[TxEnv],
        block: &Block,
        pool: &Pool,
        links: &mut Links,
    ) -> Option<Self> {
        let transfers = plain_transfers(txs, block, pool)?;
        let (roots, credits) = link(&transfers, &mut links.accounts);
        let (order, groups) = order_by_group(&roots);
        Some(Self {
            order,
            groups,
            credits,
        })
    }

    /// The number of transactions in the largest group: the block's critical path.
    pub(crate) fn largest_group(&self) -> usize {
        self.groups.first().map_or(0, Range::len)
    }
}

/// Per transaction of `txs`: its sender, its recipient, and whether its value can be a
/// credit; `None` when one is not a plain transfer. The first transactions are read here
/// (most blocks fail on them), the rest on the workers of `pool`.
fn plain_transfers(
    txs: &[TxEnv],
    block: &Block,
    pool: &Pool,
) -> Option<Vec<(Address, Address, bool)>> {
    let beneficiary = block.env.beneficiary;
    let precompiles = Precompiles::new(PrecompileSpecId::from_spec_id(block.cfg.spec));
    // Precompiles sit at low addresses: a cheap test rules out nearly every recipient before
    // the set is looked up.
    let low = |address: &Address| address[..LOW_PREFIX] == [0; LOW_PREFIX];
    let all_low = precompiles.addresses().all(low);
    let precompile = |to: &Address| (!all_low || low(to)) && precompiles.contains(to);
    let transfer = |tx: &TxEnv| {
        let to = plain_call(tx, beneficiary).filter(|to| !precompile(to))?;
        Some((tx.caller, to, lazy_value(tx.value)))
    };
    let head = txs.len().min(EXTRACT_CHUNK);
    let mut transfers: Vec<(Address, Address, bool)> =
        txs[..head].iter().map(transfer).collect::<Option<_>>()?;
    let chunks: Vec<&[TxEnv]> = txs[head..].chunks(EXTRACT_CHUNK).collect();
    for chunk in pool.map(&chunks, |chunk| {
        chunk.iter().map(transfer).collect::<Option<Vec<_>>>()
    }) {
        transfers.extend(chunk?);
    }
    Some(transfers)
}

/// The accounts [`link`] numbers, kept from one block to the next: a fresh `AddressMap` took
/// 6 to 10 ms to number the 95,000 accounts of a block of 47,619 transfers, on one thread
/// while the others wait (see [`Numbered`]).
#[derive(Debug, Default)]
pub(crate) struct Links {
    accounts: Numbered<20, Account>,
}

/// What [`link`] knows of an account of a transfer block (a node of the union-find).
#[derive(Clone, Copy, Debug)]
struct Account {
    /// Whether each transaction paying it links it with its sender: it sends, or some
    /// transaction cannot credit it as a delta.
    linked: bool,
    /// The sender of the first transaction paying it.
    first_payer: u32,
    /// Whether another sender pays it too: an account that is not linked is then credited.
    shared: bool,
}

/// Links the accounts of `transfers`: per transaction, the root of its sender's set, and
/// whether it credits its recipient as a delta. Each transaction links its sender with its
/// recipient when that sends too, or when some transaction cannot credit it as a delta. A
/// recipient that only receives is credited as a delta when several senders pay it (so that
/// it does not link them); when one sender alone pays it, those transactions are in one group
/// already, and the group writes it like any account (nothing is left owed to it after the
/// block).
fn link(
    transfers: &[(Address, Address, bool)],
    accounts: &mut Numbered<20, Account>,
) -> (Vec<u32>, Vec<bool>) {
    accounts.clear(transfers.len() * 2);
    // A new account (first paid by `payer`).
    let new = |payer: u32| {
        move || Account {
            linked: false,
            first_payer: payer,
            shared: false,
        }
    };
    let senders: Vec<u32> = transfers
        .iter()
        .map(|(caller, _, _)| {
            let (node, account) = accounts.entry(caller.0, new(0));
            account.linked = true;
            node
        })
        .collect();
    let recipients: Vec<u32> = transfers
        .iter()
        .zip(&senders)
        .map(|((_, to, lazy), &sender)| {
            let (node, account) = accounts.entry(to.0, new(sender));
            account.linked |= !lazy;
            account.shared |= account.first_payer != sender;
            node
        })
        .collect();
    let mut links = UnionFind::new(accounts.len());
    let credits = senders
        .iter()
        .zip(&recipients)
        .map(|(&sender, &to)| {
            let account = *accounts.get(to as usize).expect("numbered above");
            if account.linked {
                links.union(sender, to);
            }
            !account.linked && account.shared
        })
        .collect();
    let roots = senders.iter().map(|&sender| links.find(sender)).collect();
    (roots, credits)
}

/// The transactions in group order, and each group's range in it, largest groups first: a
/// group is the transactions whose `roots` are equal, numbered by its first transaction.
fn order_by_group(roots: &[u32]) -> (Vec<TxIdx>, Vec<Range<usize>>) {
    let nodes = roots.iter().max().map_or(0, |&root| root as usize + 1);
    let mut group_of_root = vec![u32::MAX; nodes];
    let mut sizes: Vec<usize> = Vec::new();
    let tx_group: Vec<u32> = roots
        .iter()
        .map(|&root| {
            let root = root as usize;
            if group_of_root[root] == u32::MAX {
                group_of_root[root] = sizes.len() as u32;
                sizes.push(0);
            }
            let group = group_of_root[root];
            sizes[group as usize] += 1;
            group
        })
        .collect();
    let mut by_size: Vec<u32> = (0..sizes.len() as u32).collect();
    by_size.sort_by_key(|&g| std::cmp::Reverse(sizes[g as usize]));
    let mut start = vec![0; sizes.len()];
    let mut groups = Vec::with_capacity(sizes.len());
    let mut end = 0;
    for &g in &by_size {
        start[g as usize] = end;
        groups.push(end..end + sizes[g as usize]);
        end += sizes[g as usize];
    }
    let mut order = vec![0; roots.len()];
    for (index, &group) in tx_group.iter().enumerate() {
        let slot = &mut start[group as usize];
        order[*slot] = index;
        *slot += 1;
    }
    (order, groups)
}

/// The recipient of a plain call.
pub(super) fn recipient(tx: &TxEnv) -> Address {
    match tx.kind {
        TxKind::Call(to) => to,
        TxKind::Create => Address::ZERO,
    }
}

/// Union-find over the accounts of a block.
pub(super) struct UnionFind(Vec<u32>);

impl UnionFind {
    fn new(size: usize) -> Self {
        Self((0..size as u32).collect())
    }

    fn find(&mut self, mut node: u32) -> u32 {
        while self.0[node as usize] != node {
            let parent = self.0[node as usize];
            self.0[node as usize] = self.0[parent as usize];
            node = parent;
        }
        node
    }

    fn union(&mut self, a: u32, b: u32) {
        let (a, b) = (self.find(a), self.find(b));
        self.0[a.max(b) as usize] = a.min(b);
    }
}
