//! How a block runs: the cost-aware plan, the dependencies known before execution, the
//! transfer strategy, the run with a given access list, what a run did, and the critical-path analysis.

pub(crate) mod analysis;
pub(crate) mod hints;
pub(crate) mod listed;
pub(crate) mod numbered;
pub(crate) mod plan;
pub(crate) mod stats;
pub(crate) mod transfers;
