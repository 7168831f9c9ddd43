//! The chain's rules and a block's shape: the fork schedule, revm environments of a block and
//! its transactions, the steps around the transactions, receipts and the header check, and
//! the state root.

pub(crate) mod block;
pub(crate) mod hooks;
pub(crate) mod receipts;
pub(crate) mod spec;
pub(crate) mod state_root;
