//! Block-STM over revm: the multi-version database an incarnation reads through, the VM that
//! runs incarnations, the fold of the outputs into a block output, and per-transaction revm
//! outputs with their lazy payments settled.

pub(crate) mod fold;
pub(crate) mod mv_db;
pub(crate) mod tx_states;
pub(crate) mod vm;
