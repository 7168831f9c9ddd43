//! One transaction through revm and the serial executors: what execution produces, the
//! serial executor the engine is compared with, and alloy-evm's executor as the reference.

pub(crate) mod outcome;
pub(crate) mod output;
pub(crate) mod reference;
pub(crate) mod serial;
