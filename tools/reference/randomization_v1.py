#!/usr/bin/env python3
"""Reference vectors for trialops randomization, algorithm version 1, from an independent
implementation of the documented algorithm (Python standard library only: HMAC-SHA256 from
hmac/hashlib, ChaCha20 written out here from RFC 8439 and checked against its test vector).

The algorithm, as documented in crates/domain/src/randomization.rs:
1. trial key = HMAC-SHA256(master secret, "trialops/randomization/v1/" || trial id).
2. block k (0-based) of stratum S: seed = HMAC-SHA256(trial key, "block" || 0x00 || S || 0x00 ||
   k as 8 bytes big-endian); the generator is ChaCha20 keyed with the seed, nonce 0, counter
   from 0, read as little-endian 32-bit words.
3. the block's multiplier m = multipliers[uniform(len)]; the block holds arm i ratio_i x m times,
   in protocol arm order, shuffled by Fisher-Yates: for i from len-1 down to 1, swap i with
   uniform(i + 1).
4. uniform(n) draws words and rejects any >= n * floor(2^32 / n), returning word mod n.
The key's fingerprint is the first 8 bytes of HMAC-SHA256(trial key, "fingerprint"), in hex.
A trial's commitment is SHA-256("trialops/allocation-commitment/v1" || 0x00 || trial id || 0x00 ||
parameters || 0x00 || trial key), parameters = "permuted-blocks/v1;arms=A:1,B:1;multipliers=1,2"
(arms with ratios and multipliers in protocol order).

Minimization (crates/domain/src/minimization.rs), parameters "minimization/v1;arms=A:1,B:1;
factors=f:w,...;imbalance=range|variance;p=0.8": for a subject at trial position n (0-based) with
value v_f of each factor f, each candidate arm k is scored sum_f w_f * imbalance(shares), where
the shares are, per arm j, (subjects before n with value v_f allocated to j, plus 1 if j = k)
divided by ratio_j, and the imbalance is max - min (range) or the sample variance (variance).
Written here with exact fractions and the textbook variance, not the integer scaling the Rust
code uses. The lowest-scored arms are preferred. With seed = HMAC-SHA256(trial key,
"minimization" || 0x00 || n as 8 bytes big-endian): when every arm ties, one is drawn in
proportion to the ratios (uniform(sum of ratios) against the cumulative ratios in protocol
order); otherwise uniform(10000) < p * 10000 picks the preferred arms, else the others, and one
of the group is drawn in proportion to its ratio the same way.

Usage:
  randomization_v1.py            print the vectors (JSON)
  randomization_v1.py --check F  exit 1 unless F holds exactly these vectors
  randomization_v1.py --verify-export F KEY COMMITMENT
                                 exit 1 unless every allocation of the export F (of `trialops
                                 allocations`) follows from the revealed trial KEY (hex) and
                                 KEY and F's parameters give COMMITMENT
"""

import hashlib
import hmac
import json
import struct
import sys
from decimal import Decimal
from fractions import Fraction

MASK = 0xFFFFFFFF


def rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & MASK


def quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & MASK
    s[d] = rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & MASK
    s[b] = rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & MASK
    s[d] = rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & MASK
    s[b] = rotl(s[b] ^ s[c], 7)


def chacha20_block(key, counter, nonce):
    """RFC 8439 section 2.3: one 64-byte block of ChaCha20 keystream (32-bit counter, 96-bit
    nonce)."""
    state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    state += list(struct.unpack("<8I", key))
    state += [counter & MASK]
    state += list(struct.unpack("<3I", nonce))
    working = list(state)
    for _ in range(10):
        quarter(working, 0, 4, 8, 12)
        quarter(working, 1, 5, 9, 13)
        quarter(working, 2, 6, 10, 14)
        quarter(working, 3, 7, 11, 15)
        quarter(working, 0, 5, 10, 15)
        quarter(working, 1, 6, 11, 12)
        quarter(working, 2, 7, 8, 13)
        quarter(working, 3, 4, 9, 14)
    return struct.pack("<16I", *[(w + s) & MASK for w, s in zip(working, state)])


def check_chacha20():
    """RFC 8439 section 2.3.2's test vector."""
    key = bytes(range(32))
    nonce = bytes.fromhex("000000090000004a00000000")
    expected = bytes.fromhex(
        "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
        "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"
    )
    if chacha20_block(key, 1, nonce) != expected:
        sys.exit("ChaCha20 does not reproduce RFC 8439's test vector")


class Words:
    """The keystream of ChaCha20 keyed with `key` (nonce 0, counter from 0) as 32-bit words."""

    def __init__(self, key):
        self.key = key
        self.counter = 0
        self.buffer = []

    def next(self):
        if not self.buffer:
            block = chacha20_block(self.key, self.counter, bytes(12))
            self.counter += 1
            self.buffer = list(struct.unpack("<16I", block))
        return self.buffer.pop(0)


def uniform(words, n):
    zone = (1 << 32) // n * n
    while True:
        word = words.next()
        if word < zone:
            return word % n


def mac(key, *parts):
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


def block(trial_key, arms, multipliers, stratum, index):
    seed = mac(trial_key, b"block", b"\x00", stratum.encode(), b"\x00", struct.pack(">Q", index))
    words = Words(seed)
    m = multipliers[uniform(words, len(multipliers))]
    cells = [code for code, ratio in arms for _ in range(ratio * m)]
    for i in range(len(cells) - 1, 0, -1):
        j = uniform(words, i + 1)
        cells[i], cells[j] = cells[j], cells[i]
    return cells


def vector(secret_hex, trial_id, arms, multipliers, stratum, count):
    trial_key = mac(bytes.fromhex(secret_hex), b"trialops/randomization/v1/", trial_id.encode())
    out = []
    index = 0
    while len(out) < count:
        cells = block(trial_key, arms, multipliers, stratum, index)
        for arm in cells:
            if len(out) == count:
                break
            out.append({"arm": arm, "block_index": index, "block_size": len(cells)})
        index += 1
    return {
        "secret_hex": secret_hex,
        "trial_id": trial_id,
        "arms": [{"code": code, "ratio": ratio} for code, ratio in arms],
        "multipliers": multipliers,
        "stratum": stratum,
        "fingerprint": mac(trial_key, b"fingerprint")[:8].hex(),
        "allocations": out,
    }


def parse_minimization(parameters):
    method, arms_part, factors_part, measure_part, p_part = parameters.split(";")
    if method != "minimization/v1":
        sys.exit(f"unknown method {method}")
    arms = [(code, int(ratio)) for code, ratio in
            (a.split(":") for a in arms_part.removeprefix("arms=").split(","))]
    factors = [(f, Fraction(Decimal(w))) for f, w in
               (x.split(":") for x in factors_part.removeprefix("factors=").split(","))]
    return arms, factors, measure_part.removeprefix("imbalance="), Fraction(Decimal(p_part.removeprefix("p=")))


def levels(stratum):
    return dict(part.split("=", 1) for part in stratum.split("|") if part)


def spread(shares, measure):
    if measure == "range":
        return max(shares) - min(shares)
    mean = sum(shares) / len(shares)
    return sum((x - mean) ** 2 for x in shares) / (len(shares) - 1)


def by_ratio(words, arms, group):
    draw = uniform(words, sum(arms[i][1] for i in group))
    for i in group:
        if draw < arms[i][1]:
            return i
        draw -= arms[i][1]
    raise AssertionError("draw beyond the group")


def minimize(trial_key, parameters, earlier, stratum, position):
    """The arm index at `position` for a subject in `stratum`, after `earlier` [(stratum, arm)]."""
    arms, factors, measure, p = parse_minimization(parameters)
    mine = levels(stratum)
    scores = []
    for k in range(len(arms)):
        score = Fraction(0)
        for factor, weight in factors:
            counts = [0] * len(arms)
            for s, arm in earlier:
                if levels(s).get(factor) == mine[factor]:
                    counts[arm] += 1
            counts[k] += 1
            score += weight * spread([Fraction(c, r) for c, (_, r) in zip(counts, arms)], measure)
        scores.append(score)
    preferred = [k for k, s in enumerate(scores) if s == min(scores)]
    words = Words(mac(trial_key, b"minimization", b"\x00", struct.pack(">Q", position)))
    if len(preferred) == len(arms):
        return by_ratio(words, arms, preferred)
    if uniform(words, 10000) < p * 10000:
        return by_ratio(words, arms, preferred)
    return by_ratio(words, arms, [k for k in range(len(arms)) if k not in preferred])


def minimization_vector(secret_hex, trial_id, parameters, factor_values, count):
    """`count` subjects allocated in turn; subject i's value of factor f is the (i-th SHA-256
    byte f) mod the number of values, from SHA-256("subject i")."""
    trial_key = mac(bytes.fromhex(secret_hex), b"trialops/randomization/v1/", trial_id.encode())
    arms = parse_minimization(parameters)[0]
    earlier, out = [], []
    for i in range(count):
        digest = hashlib.sha256(f"subject {i}".encode()).digest()
        stratum = "|".join(f"{f}={values[digest[j] % len(values)]}" for j, (f, values) in enumerate(factor_values))
        arm = minimize(trial_key, parameters, earlier, stratum, i)
        earlier.append((stratum, arm))
        out.append({"stratum": stratum, "arm": arms[arm][0]})
    return {"secret_hex": secret_hex, "trial_id": trial_id, "parameters": parameters, "allocations": out}


def vectors():
    check_chacha20()
    anbl = [("A", 1), ("B", 1)]
    secret = bytes(range(32)).hex()
    return {
        "algorithm": "trialops randomization v1",
        "generated_by": "tools/reference/randomization_v1.py",
        "vectors": [
            vector(secret, "ANBL1221", anbl, [1, 2],
                   "prior_therapy=no_prior_irinotecan_temozolomide|mycn_status=amplified", 64),
            vector(secret, "ANBL1221", anbl, [1, 2],
                   "prior_therapy=prior_irinotecan_temozolomide|mycn_status=unknown", 64),
            vector(hashlib.sha256(b"trialops reference vector 3").hexdigest(), "T-2TO1",
                   [("X", 2), ("Y", 1)], [1, 2, 3], "site=any", 64),
            # The secret file of the CLI test (crates/cli/tests/hospital.rs): its text is the secret.
            vector(b"trialops CLI test secret: thirty-two bytes or more".hex(), "ANBL1221", anbl, [1, 2],
                   "prior_therapy=no_prior_irinotecan_temozolomide|mycn_status=amplified", 64),
        ],
        "minimization_vectors": [
            minimization_vector(
                secret, "ANBL1221",
                "minimization/v1;arms=A:1,B:1;factors=prior_therapy:1,mycn_status:2;imbalance=range;p=0.8",
                [("prior_therapy", ["prior_irinotecan_temozolomide", "no_prior_irinotecan_temozolomide"]),
                 ("mycn_status", ["amplified", "not_amplified", "unknown"])], 120),
            minimization_vector(
                hashlib.sha256(b"trialops reference vector 3").hexdigest(), "T-3ARM",
                "minimization/v1;arms=X:2,Y:1,Z:1;factors=site:1.5,sex:1,age:0.25;imbalance=variance;p=0.7",
                [("site", ["s1", "s2", "s3", "s4"]), ("sex", ["f", "m"]), ("age", ["young", "old"])], 120),
        ],
    }


def verify_export(path, key_hex, commitment):
    with open(path, encoding="utf-8") as f:
        export = json.load(f)
    trial_id, parameters = export["trial_id"], export["allocation_parameters"]
    trial_key = bytes.fromhex(key_hex)
    computed = hashlib.sha256(b"\x00".join([b"trialops/allocation-commitment/v1", trial_id.encode(),
                                            parameters.encode(), trial_key])).hexdigest()
    if computed != commitment.lower():
        sys.exit(f"commitment {computed} from the key and {parameters!r}, not {commitment}")
    if parameters.startswith("minimization/"):
        rows = sorted(export["allocations"], key=lambda a: int(a["position"]))
        arms = parse_minimization(parameters)[0]
        earlier = []
        for expected, a in enumerate(rows):
            if int(a["position"]) != expected:
                sys.exit(f"trial position {expected} is missing or repeated")
            arm = minimize(trial_key, parameters, earlier, a["stratum"], expected)
            if a["arm_code"] != arms[arm][0]:
                sys.exit(f"{a['subject_id']}: arm {a['arm_code']}, minimization gives {arms[arm][0]}")
            earlier.append((a["stratum"], arm))
        print(f"{path}: {len(rows)} allocations follow from the commitment (minimization)")
        return
    method, arms_part, multipliers_part = parameters.split(";")
    if method != "permuted-blocks/v1":
        sys.exit(f"unknown method {method}")
    arms = [(code, int(ratio)) for code, ratio in
            (a.split(":") for a in arms_part.removeprefix("arms=").split(","))]
    multipliers = [int(m) for m in multipliers_part.removeprefix("multipliers=").split(",")]
    strata = {}
    for a in export["allocations"]:
        strata.setdefault(a["stratum"], []).append(a)
    for stratum, rows in strata.items():
        rows.sort(key=lambda a: int(a["position"]))
        sequence, index = [], 0
        while len(sequence) < len(rows):
            sequence.extend(block(trial_key, arms, multipliers, stratum, index))
            index += 1
        for expected, a in enumerate(rows):
            if int(a["position"]) != expected:
                sys.exit(f"stratum {stratum}: position {expected} is missing or repeated")
            if a["arm_code"] != sequence[expected]:
                sys.exit(f"{a['subject_id']}: arm {a['arm_code']}, the sequence gives {sequence[expected]}")
    print(f"{path}: {len(export['allocations'])} allocations in {len(strata)} strata follow from the commitment")


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--verify-export":
        check_chacha20()
        verify_export(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    produced = vectors()
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        with open(sys.argv[2], encoding="utf-8") as f:
            stored = json.load(f)
        if stored != produced:
            sys.exit(f"{sys.argv[2]} differs from the independent implementation's vectors")
        print(f"{sys.argv[2]}: {len(produced['vectors'])} block vectors and "
              f"{len(produced['minimization_vectors'])} minimization vectors match")
    elif len(sys.argv) == 1:
        print(json.dumps(produced, indent=1))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
