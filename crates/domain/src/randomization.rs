//! Concealed stratified randomization: permuted blocks with randomly varying block sizes.
//!
//! The whole allocation sequence of a stratum is a pure function of a per-trial secret key,
//! the stratum and the position in the stratum — nothing else. The server never stores the
//! sequence, so nothing the API or the database shows reveals the next assignment; an auditor
//! holding the secret reproduces every assignment with [`Sequence::take`].
//!
//! Algorithm (version 1; never change it for a running trial — write a version 2 instead):
//! 1. trial key = HMAC-SHA256(master secret, "trialops/randomization/v1/" ‖ trial id).
//! 2. For block k (0-based) of stratum S: seed = HMAC-SHA256(trial key, "block" ‖ 0x00 ‖ S ‖
//!    0x00 ‖ k as 8 bytes big-endian); the generator is ChaCha20 keyed with that seed (stream 0),
//!    read as little-endian 32-bit words.
//! 3. The block's multiplier m is `multipliers[uniform(len)]`; the block holds arm i
//!    `ratio_i × m` times, in protocol arm order, and is shuffled by Fisher–Yates: for i from
//!    len−1 down to 1, swap i with uniform(i + 1).
//! 4. uniform(n) draws 32-bit words and rejects any ≥ n·⌊2³²/n⌋, returning word mod n.

use hmac::{Hmac, Mac};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use sha2::Sha256;

use crate::protocol::Protocol;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// A trial's randomization key, derived from the service's master secret. Never printed.
#[derive(Clone)]
pub struct TrialKey([u8; 32]);

impl std::fmt::Debug for TrialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrialKey(<secret>)")
    }
}

impl TrialKey {
    /// Derives the key of `trial_id` from the master secret.
    pub fn derive(master_secret: &[u8], trial_id: &str) -> Self {
        TrialKey(hmac(
            master_secret,
            &[b"trialops/randomization/v1/", trial_id.as_bytes()],
        ))
    }

    /// A short public fingerprint of the key (16 hex digits). Stored with a trial's first
    /// allocation so that a changed secret is detected before it breaks the sequence; it reveals
    /// nothing about the key.
    pub fn fingerprint(&self) -> String {
        let digest = hmac(&self.0, &[b"fingerprint"]);
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The block structure: arms with their ratios, and the block size multipliers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockScheme {
    arms: Vec<(String, u32)>,
    multipliers: Vec<u32>,
}

/// Why a block scheme cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid block scheme: {0}")]
pub struct InvalidScheme(&'static str);

impl BlockScheme {
    /// A scheme from arms `(code, ratio)` and multipliers; all must be positive.
    pub fn new(arms: Vec<(String, u32)>, multipliers: Vec<u32>) -> Result<Self, InvalidScheme> {
        if arms.is_empty() || arms.iter().any(|(_, r)| *r == 0) {
            return Err(InvalidScheme("every arm needs a ratio of at least 1"));
        }
        if multipliers.is_empty() || multipliers.contains(&0) {
            return Err(InvalidScheme("multipliers must be at least 1"));
        }
        Ok(BlockScheme { arms, multipliers })
    }

    /// The scheme a validated protocol defines.
    pub fn from_protocol(protocol: &Protocol) -> Result<Self, InvalidScheme> {
        Self::new(
            protocol
                .arms
                .iter()
                .map(|a| (a.code.clone(), a.allocation_ratio))
                .collect(),
            protocol.randomization.block_multipliers.clone(),
        )
    }

    /// Sum of the allocation ratio.
    pub fn ratio_sum(&self) -> u32 {
        self.arms.iter().map(|(_, r)| r).sum()
    }

    /// The largest block size.
    pub fn largest_block(&self) -> u32 {
        self.ratio_sum() * self.multipliers.iter().copied().max().unwrap_or(1)
    }

    /// The arms and their ratios.
    pub fn arms(&self) -> &[(String, u32)] {
        &self.arms
    }
}

/// One assignment of the sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The arm.
    pub arm_code: String,
    /// Position in the stratum, 0-based.
    pub position: u64,
    /// The block, 0-based.
    pub block_index: u64,
    /// The block's size.
    pub block_size: u32,
}

/// The allocation sequence of one stratum of one trial.
#[derive(Debug, Clone)]
pub struct Sequence<'a> {
    key: &'a TrialKey,
    scheme: &'a BlockScheme,
    stratum: &'a str,
}

impl<'a> Sequence<'a> {
    /// The sequence of `stratum` (a key from [`crate::strata::stratum_key`]).
    pub fn new(key: &'a TrialKey, scheme: &'a BlockScheme, stratum: &'a str) -> Self {
        Sequence { key, scheme, stratum }
    }

    fn block(&self, index: u64) -> Vec<usize> {
        let seed = hmac(
            &self.key.0,
            &[b"block", &[0], self.stratum.as_bytes(), &[0], &index.to_be_bytes()],
        );
        let mut rng = ChaCha20Rng::from_seed(seed);
        let multiplier = self.scheme.multipliers[uniform(&mut rng, self.scheme.multipliers.len() as u32) as usize];
        let mut block: Vec<usize> = self
            .scheme
            .arms
            .iter()
            .enumerate()
            .flat_map(|(arm, (_, ratio))| std::iter::repeat_n(arm, (ratio * multiplier) as usize))
            .collect();
        for i in (1..block.len()).rev() {
            let j = uniform(&mut rng, (i + 1) as u32) as usize;
            block.swap(i, j);
        }
        block
    }

    /// The assignment at `position` (0-based) in the stratum.
    pub fn assignment(&self, position: u64) -> Assignment {
        let mut start = 0u64;
        let mut index = 0u64;
        loop {
            let block = self.block(index);
            let size = block.len() as u64;
            if position < start + size {
                let arm = block[(position - start) as usize];
                return Assignment {
                    arm_code: self.scheme.arms[arm].0.clone(),
                    position,
                    block_index: index,
                    block_size: size as u32,
                };
            }
            start += size;
            index += 1;
        }
    }

    /// The first `count` assignments, for audit reproduction and tests.
    pub fn take(&self, count: u64) -> Vec<Assignment> {
        let mut out = Vec::with_capacity(count as usize);
        let mut index = 0u64;
        while (out.len() as u64) < count {
            let block = self.block(index);
            let size = block.len() as u32;
            for arm in block {
                if out.len() as u64 == count {
                    break;
                }
                out.push(Assignment {
                    arm_code: self.scheme.arms[arm].0.clone(),
                    position: out.len() as u64,
                    block_index: index,
                    block_size: size,
                });
            }
            index += 1;
        }
        out
    }
}

/// A uniform draw from `0..n` by rejection sampling (no modulo bias). `n` ≥ 1.
fn uniform(rng: &mut ChaCha20Rng, n: u32) -> u32 {
    let n = n.max(1);
    let zone = (u64::from(u32::MAX) + 1) / u64::from(n) * u64::from(n);
    loop {
        let word = rng.next_u32();
        if u64::from(word) < zone {
            return word % n;
        }
    }
}
