//! Lazy payments: a plain ETH transfer credits its recipient as a delta instead of a
//! read-modify-write of the recipient's balance, and a transaction that never touches the
//! beneficiary owes it the fee, so that many transfers to one address, and every fee, do not
//! make transactions depend on each other. A transaction that really reads such an account
//! (a transfer from it, `BALANCE`, a call with value) adds up what is owed to it since the
//! account's last full write, and so depends on exactly those.
//!
//! `handler` owes the fees, `credits` decides which transfers credit lazily, and `settle` is
//! the one place that pays what is owed, whichever executor ran the block.

mod credits;
mod handler;
mod settle;

pub(crate) use credits::{can_credit, lazy_value, take_credit, Credit, LazyCredits};
pub(crate) use handler::LazyBeneficiary;
pub(crate) use settle::{account_paid, keep_lowest, pay, settle_in_evm_state, LazyCounts, Owing};
