//! Concealed stratified randomization: permuted blocks with randomly varying block sizes, the
//! allocation method a protocol selects ([`Method`]; minimization is in [`crate::minimization`]),
//! the commitment a trial publishes to it, and the check of every allocation against it.
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

use crate::minimization::{FactorCounts, Minimization};
use crate::protocol::{AllocationMethodKind, Protocol};

type HmacSha256 = Hmac<Sha256>;

pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
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

    pub(crate) fn secret(&self) -> &[u8] {
        &self.0
    }

    /// The key as 64 hex digits: what an administrator reveals once the trial's accrual is
    /// closed, so that anyone can check every allocation against the commitment.
    pub fn reveal(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A revealed key, from its 64 hex digits.
    pub fn from_revealed(hex: &str) -> Option<TrialKey> {
        let hex = hex.trim();
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(TrialKey(key))
    }
}

/// A trial's allocation method with its parameters, as its protocol selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// Stratified permuted blocks: each stratum's sequence is fixed by the key alone.
    PermutedBlocks(BlockScheme),
    /// Pocock–Simon minimization: each allocation follows from the key and every earlier one.
    Minimization(Minimization),
}

impl Method {
    /// The method a validated protocol selects.
    pub fn from_protocol(protocol: &Protocol) -> Result<Self, InvalidScheme> {
        match protocol.randomization.method {
            AllocationMethodKind::PermutedBlocks => BlockScheme::from_protocol(protocol).map(Method::PermutedBlocks),
            AllocationMethodKind::Minimization => match Minimization::from_protocol(protocol) {
                Some(scheme) => scheme.map(Method::Minimization),
                None => Err(InvalidScheme("minimization needs [randomization.minimization]")),
            },
        }
    }

    /// The method and its parameters as committed ([`BlockScheme::parameters`],
    /// [`Minimization::parameters`]).
    pub fn parameters(&self) -> String {
        match self {
            Method::PermutedBlocks(scheme) => scheme.parameters(),
            Method::Minimization(scheme) => scheme.parameters(),
        }
    }

    /// The arms and their ratios.
    pub fn arms(&self) -> &[(String, u32)] {
        match self {
            Method::PermutedBlocks(scheme) => scheme.arms(),
            Method::Minimization(scheme) => scheme.arms(),
        }
    }
}

/// The commitment a trial publishes before its first enrollment: SHA-256 (hex) of
/// `"trialops/allocation-commitment/v1" 0x00 trial id 0x00 parameters 0x00 key`, where
/// `parameters` is [`Method::parameters`]. It binds the method, its parameters and the key: once
/// published, no other key or method yields it, and it reveals nothing about the key.
pub fn commitment(trial_id: &str, method: &Method, key: &TrialKey) -> String {
    use sha2::Digest;
    let mut digest = Sha256::new();
    for part in [
        b"trialops/allocation-commitment/v1".as_slice(),
        &[0],
        trial_id.as_bytes(),
        &[0],
        method.parameters().as_bytes(),
        &[0],
        &key.0,
    ] {
        digest.update(part);
    }
    digest.finalize().iter().map(|b| format!("{b:02x}")).collect()
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
pub struct InvalidScheme(pub(crate) &'static str);

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

    /// The method and its parameters as committed: `permuted-blocks/v1;arms=A:1,B:1;multipliers=1,2`
    /// (arms in protocol order with their ratios, block size multipliers in protocol order).
    pub fn parameters(&self) -> String {
        let arms: Vec<String> = self
            .arms
            .iter()
            .map(|(code, ratio)| format!("{code}:{ratio}"))
            .collect();
        let multipliers: Vec<String> = self.multipliers.iter().map(u32::to_string).collect();
        format!(
            "permuted-blocks/v1;arms={};multipliers={}",
            arms.join(","),
            multipliers.join(",")
        )
    }
}

/// One allocation as a trial recorded it, for [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedAllocation {
    /// The subject allocated.
    pub subject_id: String,
    /// The stratum key.
    pub stratum: String,
    /// Position in the stratum, 0-based.
    pub position: u64,
    /// The arm recorded.
    pub arm_code: String,
}

/// Why a trial's allocations do not follow from its committed sequence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotProven {
    /// The revealed key (or the parameters) do not produce the published commitment.
    #[error("the revealed key and the protocol's parameters give commitment {computed}, not the published {published}")]
    Commitment {
        /// Computed from the revealed key and the parameters.
        computed: String,
        /// As published.
        published: String,
    },
    /// A stratum's positions skip one (an allocation withheld) or repeat one.
    #[error("stratum {stratum}: position {position} {problem}")]
    Positions {
        /// The stratum.
        stratum: String,
        /// The first position that is wrong.
        position: u64,
        /// "is missing" or "is used twice".
        problem: &'static str,
    },
    /// An allocation's arm is not the sequence's.
    #[error(
        "{subject_id} (stratum {stratum}, position {position}) is on arm {recorded}; \
         the committed sequence gives {expected}"
    )]
    Arm {
        /// The subject.
        subject_id: String,
        /// The stratum.
        stratum: String,
        /// The position.
        position: u64,
        /// The arm recorded.
        recorded: String,
        /// The arm the sequence gives.
        expected: String,
    },
}

/// Checks that every allocation follows from the committed sequence: the revealed key and the
/// method give the published commitment, positions run 0, 1, 2, … with none skipped or repeated
/// (nobody was allocated outside the record) — per stratum for permuted blocks, over the trial
/// for minimization — and each arm is the one the method gives at its position (for
/// minimization, given every allocation before it). Returns the number of strata seen.
pub fn verify(
    trial_id: &str,
    method: &Method,
    key: &TrialKey,
    published: &str,
    allocations: &[RecordedAllocation],
) -> Result<usize, NotProven> {
    let computed = commitment(trial_id, method, key);
    if !computed.eq_ignore_ascii_case(published.trim()) {
        return Err(NotProven::Commitment {
            computed,
            published: published.trim().to_owned(),
        });
    }
    let mut strata: std::collections::BTreeMap<&str, Vec<&RecordedAllocation>> = std::collections::BTreeMap::new();
    for a in allocations {
        strata.entry(a.stratum.as_str()).or_default().push(a);
    }
    match method {
        Method::PermutedBlocks(scheme) => {
            for (stratum, mut rows) in strata.clone() {
                rows.sort_by_key(|a| a.position);
                check_positions(&rows, stratum)?;
                let sequence = Sequence::new(key, scheme, stratum).take(rows.len() as u64);
                for (a, assignment) in rows.iter().zip(&sequence) {
                    check_arm(a, &assignment.arm_code)?;
                }
            }
        }
        Method::Minimization(scheme) => {
            let mut rows: Vec<&RecordedAllocation> = allocations.iter().collect();
            rows.sort_by_key(|a| a.position);
            check_positions(&rows, "(the whole trial)")?;
            let mut counts = FactorCounts::default();
            let arms = scheme.arms();
            for a in rows {
                let expected = scheme.allocate(key, a.position, &counts, &a.stratum);
                check_arm(a, &arms[expected].0)?;
                counts.add(&a.stratum, expected, arms.len(), 1);
            }
        }
    }
    Ok(strata.len())
}

/// Positions 0, 1, 2, … of `rows` (sorted by position), in `sequence` (a stratum, or the trial).
fn check_positions(rows: &[&RecordedAllocation], sequence: &str) -> Result<(), NotProven> {
    for (expected, a) in rows.iter().enumerate() {
        let expected = expected as u64;
        if a.position != expected {
            let twice = a.position < expected;
            return Err(NotProven::Positions {
                stratum: sequence.to_owned(),
                position: if twice { a.position } else { expected },
                problem: if twice { "is used twice" } else { "is missing" },
            });
        }
    }
    Ok(())
}

fn check_arm(a: &RecordedAllocation, expected: &str) -> Result<(), NotProven> {
    if a.arm_code == expected {
        return Ok(());
    }
    Err(NotProven::Arm {
        subject_id: a.subject_id.clone(),
        stratum: a.stratum.clone(),
        position: a.position,
        recorded: a.arm_code.clone(),
        expected: expected.to_owned(),
    })
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

/// Where a block of a stratum's sequence begins: block `index` (0-based) at position `start`.
/// Valid only for the sequence that gave it (see [`Sequence::assignment_from`]); the default is
/// the first block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockCursor {
    index: u64,
    start: u64,
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

    /// The assignment at `position` (0-based) in the stratum: a walk over every block before it.
    pub fn assignment(&self, position: u64) -> Assignment {
        self.assignment_from(position, &mut BlockCursor::default())
    }

    /// The assignment at `position`, walking from `cursor` (a block this sequence gave) when the
    /// position is at or after it, else from the first block; `cursor` is left at the position's
    /// block. Blocks vary in size, so where a block starts depends on every block before it:
    /// assignments at growing positions from one cursor each cost a block or two, where
    /// [`Sequence::assignment`] costs a block per block before the position.
    pub fn assignment_from(&self, position: u64, cursor: &mut BlockCursor) -> Assignment {
        if position < cursor.start {
            *cursor = BlockCursor::default();
        }
        loop {
            let block = self.block(cursor.index);
            let size = block.len() as u64;
            if position < cursor.start + size {
                let arm = block[(position - cursor.start) as usize];
                return Assignment {
                    arm_code: self.scheme.arms[arm].0.clone(),
                    position,
                    block_index: cursor.index,
                    block_size: size as u32,
                };
            }
            cursor.start += size;
            cursor.index += 1;
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
pub(crate) fn uniform(rng: &mut ChaCha20Rng, n: u32) -> u32 {
    let n = n.max(1);
    let zone = (u64::from(u32::MAX) + 1) / u64::from(n) * u64::from(n);
    loop {
        let word = rng.next_u32();
        if u64::from(word) < zone {
            return word % n;
        }
    }
}
