//! The rules of a chain: which hardfork is active at a block, its revm rule set and blob
//! parameters, and where deposits are logged. The schedule is alloy-hardforks'; the block
//! executor of alloy-evm reads it through [`EthereumHardforks`] and [`EthExecutorSpec`].

use std::collections::BTreeMap;

use alloy_eips::{eip6110::MAINNET_DEPOSIT_CONTRACT_ADDRESS, eip7840::BlobParams};
use alloy_evm::eth::spec::EthExecutorSpec;
use alloy_hardforks::{EthereumChainHardforks, EthereumHardforks, ForkCondition};
use alloy_primitives::Address;

pub use alloy_hardforks::EthereumHardfork as Hardfork;

/// A chain's hardfork schedule, chain id, blob schedule and deposit contract.
#[derive(Clone, Debug)]
pub struct ChainSpec {
    /// The chain id (`CHAINID`, EIP-155 and EIP-7702 checks).
    pub chain_id: u64,
    /// When each hardfork activates.
    pub hardforks: EthereumChainHardforks,
    /// Blob parameters by the fork that sets them (Cancun, Prague, Osaka, the BPO forks).
    pub blob_schedule: BTreeMap<Hardfork, BlobParams>,
    /// The EIP-6110 deposit contract whose logs become deposit requests.
    pub deposit_contract: Option<Address>,
}

/// Forks that change execution, in order: the ones a block can be said to run under.
const EXECUTION_FORKS: [Hardfork; 21] = [
    Hardfork::Frontier,
    Hardfork::Homestead,
    Hardfork::Tangerine,
    Hardfork::SpuriousDragon,
    Hardfork::Byzantium,
    Hardfork::Constantinople,
    Hardfork::Petersburg,
    Hardfork::Istanbul,
    Hardfork::Berlin,
    Hardfork::London,
    Hardfork::Paris,
    Hardfork::Shanghai,
    Hardfork::Cancun,
    Hardfork::Prague,
    Hardfork::Osaka,
    Hardfork::Bpo1,
    Hardfork::Bpo2,
    Hardfork::Bpo3,
    Hardfork::Bpo4,
    Hardfork::Bpo5,
    Hardfork::Amsterdam,
];

impl ChainSpec {
    /// Ethereum mainnet: alloy-hardforks' schedule, the blob parameters of each fork, and the
    /// mainnet deposit contract.
    pub fn mainnet() -> Self {
        Self {
            chain_id: 1,
            hardforks: EthereumChainHardforks::mainnet(),
            blob_schedule: default_blob_schedule(),
            deposit_contract: Some(MAINNET_DEPOSIT_CONTRACT_ADDRESS),
        }
    }

    /// A chain where `fork` and every fork before it are active from genesis (as in the
    /// consensus tests' networks), with the default blob schedule and the mainnet deposit
    /// contract.
    pub fn from_genesis(fork: Hardfork, chain_id: u64) -> Self {
        let forks = EXECUTION_FORKS
            .iter()
            .filter(|f| **f <= fork)
            .map(|f| (*f, genesis_condition(*f)));
        Self {
            chain_id,
            hardforks: EthereumChainHardforks::new(forks),
            blob_schedule: default_blob_schedule(),
            deposit_contract: Some(MAINNET_DEPOSIT_CONTRACT_ADDRESS),
        }
    }

    /// This chain with `fork` (and nothing after it) activated by `condition` instead.
    pub fn with_fork(mut self, fork: Hardfork, condition: ForkCondition) -> Self {
        let mut forks: Vec<_> = EXECUTION_FORKS
            .iter()
            .chain([&Hardfork::Dao])
            .filter(|f| **f != fork)
            .map(|f| (*f, self.hardforks.ethereum_fork_activation(*f)))
            .filter(|(_, condition)| *condition != ForkCondition::Never)
            .collect();
        forks.push((fork, condition));
        self.hardforks = EthereumChainHardforks::new(forks);
        self
    }

    /// The latest execution fork active at this block.
    pub fn hardfork_at(&self, number: u64, timestamp: u64) -> Hardfork {
        EXECUTION_FORKS
            .iter()
            .rev()
            .find(|fork| self.is_active(**fork, number, timestamp))
            .copied()
            .unwrap_or(Hardfork::Frontier)
    }

    /// Whether `fork` is active at this block.
    fn is_active(&self, fork: Hardfork, number: u64, timestamp: u64) -> bool {
        match self.hardforks.ethereum_fork_activation(fork) {
            ForkCondition::Timestamp(_) => {
                self.is_ethereum_fork_active_at_timestamp(fork, timestamp)
            }
            _ => self.is_ethereum_fork_active_at_block(fork, number),
        }
    }

    /// The blob parameters at this timestamp: those of the latest active fork that sets them,
    /// `None` before Cancun.
    pub fn blob_params_at(&self, timestamp: u64) -> Option<BlobParams> {
        self.blob_schedule
            .iter()
            .rev()
            .find(|(fork, _)| self.is_ethereum_fork_active_at_timestamp(**fork, timestamp))
            .map(|(_, params)| *params)
    }
}

impl EthereumHardforks for ChainSpec {
    fn ethereum_fork_activation(&self, fork: Hardfork) -> ForkCondition {
        self.hardforks.ethereum_fork_activation(fork)
    }
}

impl EthExecutorSpec for ChainSpec {
    fn deposit_contract_address(&self) -> Option<Address> {
        self.deposit_contract
    }
}

/// How a fork active from genesis is written: by block before the Merge's successors, by
/// timestamp from Shanghai on.
fn genesis_condition(fork: Hardfork) -> ForkCondition {
    if fork >= Hardfork::Shanghai {
        ForkCondition::Timestamp(0)
    } else {
        ForkCondition::Block(0)
    }
}

/// The blob parameters alloy-eips gives each fork; BPO3 to BPO5 have none on mainnet yet and
/// keep BPO2's until a chain's schedule says otherwise.
fn default_blob_schedule() -> BTreeMap<Hardfork, BlobParams> {
    BTreeMap::from([
        (Hardfork::Cancun, BlobParams::cancun()),
        (Hardfork::Prague, BlobParams::prague()),
        (Hardfork::Osaka, BlobParams::osaka()),
        (Hardfork::Bpo1, BlobParams::bpo1()),
        (Hardfork::Bpo2, BlobParams::bpo2()),
    ])
}

#[cfg(test)]
mod tests {
    use alloy_hardforks::mainnet::{
        MAINNET_BPO2_TIMESTAMP, MAINNET_BYZANTIUM_BLOCK, MAINNET_PARIS_BLOCK,
        MAINNET_PRAGUE_TIMESTAMP,
    };

    use alloy_evm::spec_by_timestamp_and_block_number;
    use revm::primitives::hardfork::SpecId;

    use super::*;

    #[test]
    fn mainnet_forks_switch_at_their_activation() {
        let chain = ChainSpec::mainnet();
        assert_eq!(
            chain.hardfork_at(MAINNET_BYZANTIUM_BLOCK - 1, 0),
            Hardfork::SpuriousDragon
        );
        assert_eq!(
            chain.hardfork_at(MAINNET_BYZANTIUM_BLOCK, 0),
            Hardfork::Byzantium
        );
        assert_eq!(
            chain.hardfork_at(MAINNET_PARIS_BLOCK, 1_663_224_179),
            Hardfork::Paris
        );
        let prague = chain.hardfork_at(22_000_000, MAINNET_PRAGUE_TIMESTAMP);
        assert_eq!(prague, Hardfork::Prague);
        assert_eq!(
            spec_by_timestamp_and_block_number(&chain, MAINNET_PRAGUE_TIMESTAMP - 1, 22_000_000),
            SpecId::CANCUN
        );
        let bpo2 = chain.blob_params_at(MAINNET_BPO2_TIMESTAMP).unwrap();
        assert_eq!(bpo2.max_blob_count, 21);
        assert_eq!(
            chain
                .blob_params_at(MAINNET_PRAGUE_TIMESTAMP)
                .unwrap()
                .max_blob_count,
            9
        );
        assert_eq!(chain.blob_params_at(0), None);
    }

    #[test]
    fn a_genesis_chain_runs_its_fork_and_a_transition_switches_at_its_time() {
        let chain = ChainSpec::from_genesis(Hardfork::Cancun, 1)
            .with_fork(Hardfork::Prague, ForkCondition::Timestamp(15_000));
        assert_eq!(chain.hardfork_at(1, 14_999), Hardfork::Cancun);
        assert_eq!(chain.hardfork_at(2, 15_000), Hardfork::Prague);
        assert_eq!(
            spec_by_timestamp_and_block_number(&chain, 15_000, 2),
            SpecId::PRAGUE
        );
        assert_eq!(chain.blob_params_at(14_999), Some(BlobParams::cancun()));
        let homestead = ChainSpec::from_genesis(Hardfork::Homestead, 1);
        assert_eq!(homestead.hardfork_at(5, 0), Hardfork::Homestead);
        assert_eq!(
            spec_by_timestamp_and_block_number(&homestead, 0, 5),
            SpecId::HOMESTEAD
        );
        assert_eq!(homestead.blob_params_at(u64::MAX), None);
    }
}
