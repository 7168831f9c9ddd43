//! Ethereum mainnet hardforks: which one a block runs under, and its revm rules.

use alloy_eips::eip7840::BlobParams;
use revm::primitives::hardfork::SpecId;

/// A mainnet hardfork that changed transaction execution, including the
/// blob-parameter-only forks after Osaka.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hardfork {
    /// Genesis rules.
    Frontier,
    /// Block 1,150,000.
    Homestead,
    /// Tangerine Whistle (EIP-150), block 2,463,000.
    Tangerine,
    /// Spurious Dragon (EIP-155/158), block 2,675,000.
    SpuriousDragon,
    /// Block 4,370,000.
    Byzantium,
    /// Constantinople and Petersburg, block 7,280,000.
    Petersburg,
    /// Block 9,069,000.
    Istanbul,
    /// Block 12,244,000.
    Berlin,
    /// Block 12,965,000.
    London,
    /// The Merge, block 15,537,394.
    Paris,
    /// Timestamp 1,681,338,455.
    Shanghai,
    /// Timestamp 1,710,338,135.
    Cancun,
    /// Timestamp 1,746,612,311.
    Prague,
    /// Timestamp 1,764,798,551.
    Osaka,
    /// First blob-parameter-only fork, timestamp 1,765,290,071.
    Bpo1,
    /// Second blob-parameter-only fork, timestamp 1,767,747,671.
    Bpo2,
}

/// Forks activated by block number, latest first.
const BY_BLOCK: [(u64, Hardfork); 10] = [
    (15_537_394, Hardfork::Paris),
    (12_965_000, Hardfork::London),
    (12_244_000, Hardfork::Berlin),
    (9_069_000, Hardfork::Istanbul),
    (7_280_000, Hardfork::Petersburg),
    (4_370_000, Hardfork::Byzantium),
    (2_675_000, Hardfork::SpuriousDragon),
    (2_463_000, Hardfork::Tangerine),
    (1_150_000, Hardfork::Homestead),
    (0, Hardfork::Frontier),
];

/// Forks activated by timestamp (all after the Merge), latest first.
const BY_TIMESTAMP: [(u64, Hardfork); 6] = [
    (1_767_747_671, Hardfork::Bpo2),
    (1_765_290_071, Hardfork::Bpo1),
    (1_764_798_551, Hardfork::Osaka),
    (1_746_612_311, Hardfork::Prague),
    (1_710_338_135, Hardfork::Cancun),
    (1_681_338_455, Hardfork::Shanghai),
];

impl Hardfork {
    /// The mainnet hardfork of the block with this number and timestamp.
    pub fn mainnet(number: u64, timestamp: u64) -> Self {
        let by_block = BY_BLOCK
            .iter()
            .find(|(from, _)| number >= *from)
            .map_or(Self::Frontier, |(_, fork)| *fork);
        if by_block < Self::Paris {
            return by_block;
        }
        BY_TIMESTAMP
            .iter()
            .find(|(from, _)| timestamp >= *from)
            .map_or(by_block, |(_, fork)| *fork)
    }

    /// The revm rule set of this fork.
    pub const fn spec_id(self) -> SpecId {
        match self {
            Self::Frontier => SpecId::FRONTIER,
            Self::Homestead => SpecId::HOMESTEAD,
            Self::Tangerine => SpecId::TANGERINE,
            Self::SpuriousDragon => SpecId::SPURIOUS_DRAGON,
            Self::Byzantium => SpecId::BYZANTIUM,
            Self::Petersburg => SpecId::PETERSBURG,
            Self::Istanbul => SpecId::ISTANBUL,
            Self::Berlin => SpecId::BERLIN,
            Self::London => SpecId::LONDON,
            Self::Paris => SpecId::MERGE,
            Self::Shanghai => SpecId::SHANGHAI,
            Self::Cancun => SpecId::CANCUN,
            Self::Prague => SpecId::PRAGUE,
            Self::Osaka | Self::Bpo1 | Self::Bpo2 => SpecId::OSAKA,
        }
    }

    /// Blob target, maximum and base-fee update fraction, from Cancun on.
    pub const fn blob_params(self) -> Option<BlobParams> {
        match self {
            Self::Cancun => Some(BlobParams::cancun()),
            Self::Prague => Some(BlobParams::prague()),
            Self::Osaka => Some(BlobParams::osaka()),
            Self::Bpo1 => Some(BlobParams::bpo1()),
            Self::Bpo2 => Some(BlobParams::bpo2()),
            _ => None,
        }
    }

    /// Whether receipts carry a status code (Byzantium on) rather than a state root.
    pub fn has_receipt_status(self) -> bool {
        self >= Self::Byzantium
    }

    /// The fork's usual name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Frontier => "Frontier",
            Self::Homestead => "Homestead",
            Self::Tangerine => "Tangerine",
            Self::SpuriousDragon => "SpuriousDragon",
            Self::Byzantium => "Byzantium",
            Self::Petersburg => "Petersburg",
            Self::Istanbul => "Istanbul",
            Self::Berlin => "Berlin",
            Self::London => "London",
            Self::Paris => "Paris",
            Self::Shanghai => "Shanghai",
            Self::Cancun => "Cancun",
            Self::Prague => "Prague",
            Self::Osaka => "Osaka",
            Self::Bpo1 => "BPO1",
            Self::Bpo2 => "BPO2",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_number_forks_switch_at_their_first_block() {
        for (from, fork) in BY_BLOCK {
            assert_eq!(Hardfork::mainnet(from, 0), fork);
            if from > 0 {
                assert!(Hardfork::mainnet(from - 1, 0) < fork, "{fork:?}");
            }
        }
    }

    #[test]
    fn timestamp_forks_need_the_merge() {
        // A pre-Merge block with a late timestamp stays on its block-number fork.
        assert_eq!(
            Hardfork::mainnet(15_537_393, 1_800_000_000),
            Hardfork::London
        );
        assert_eq!(
            Hardfork::mainnet(15_537_394, 1_663_224_179),
            Hardfork::Paris
        );
        for (from, fork) in BY_TIMESTAMP {
            assert_eq!(Hardfork::mainnet(20_000_000, from), fork);
            assert!(Hardfork::mainnet(20_000_000, from - 1) < fork, "{fork:?}");
        }
    }

    #[test]
    fn blob_parameters_follow_the_schedule() {
        assert_eq!(Hardfork::Shanghai.blob_params(), None);
        let max = |f: Hardfork| f.blob_params().unwrap().max_blob_count;
        assert_eq!(max(Hardfork::Cancun), 6);
        assert_eq!(max(Hardfork::Prague), 9);
        assert_eq!(max(Hardfork::Osaka), 9);
        assert_eq!(max(Hardfork::Bpo1), 15);
        assert_eq!(max(Hardfork::Bpo2), 21);
        assert_eq!(
            Hardfork::Bpo2.blob_params().unwrap().update_fraction,
            11_684_671
        );
        assert_eq!(Hardfork::Bpo2.spec_id(), SpecId::OSAKA);
    }
}
