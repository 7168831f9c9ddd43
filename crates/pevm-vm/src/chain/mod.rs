//! The chain's rules and a block's shape: the fork schedule, revm environments of a block and
//! its transactions, the facts lazy payments follow, and the state root.

pub(crate) mod block;
pub(crate) mod spec;
pub(crate) mod state_root;
