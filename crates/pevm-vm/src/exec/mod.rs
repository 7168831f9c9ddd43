//! One transaction through revm and the serial executors: what execution produces, receipts,
//! the block's access list and the header check, the steps around a block's transactions (alloy-evm's), the serial
//! executor the engine is compared with, and alloy-evm's executor as the reference.

pub(crate) mod access_list;
pub(crate) mod hooks;
pub(crate) mod outcome;
pub(crate) mod output;
pub(crate) mod receipts;
pub(crate) mod reference;
pub(crate) mod serial;
