//! Git's delta format, and an encoder for it.
//!
//! A delta turns a *base* object into a *target* object. Its bytes are:
//!
//! - the base's size, then the target's size, each as a little-endian base-128 varint (seven
//!   bits per byte, low bits first, the high bit set on every byte but the last);
//! - a sequence of instructions, each introduced by an opcode byte:
//!   - **copy** (opcode bits `1sssoooo`): copy bytes of the base. Bits 0–3 of the opcode say
//!     which of the four little-endian offset bytes follow (a missing byte is zero), bits 4–6
//!     which of the three size bytes follow; a size of zero means `0x10000`.
//!   - **insert** (opcode `0nnnnnnn`, `n` from 1 to 127): the next `n` bytes of the delta are
//!     target bytes. Opcode 0 is reserved and never written.
//!
//! The encoder indexes the base by a rolling hash of its 16-byte windows that start every
//! few bytes (every 4 bytes for bases up to 32 MiB, every 16 above, as git does for all
//! bases). It then slides the same hash over the target one byte at a time; on a hit it
//! compares the bytes (so hash collisions cost time, never correctness), extends the match
//! forward as far as the bytes agree and backward into the literal bytes not yet written, and
//! keeps the longest of up to 64 candidates (stopping at the first one of 4 KiB or more). A
//! match is written as copies of at most `0x10000` bytes each, literal runs as inserts of at
//! most 127 bytes. [`encode`] gives up as soon as its output reaches a caller's limit, which
//! is how the base search drops a poor candidate cheaply.

use hero_store::codec::put_varint;

/// Length of the hashed windows, and so the shortest match the encoder finds.
const BLOCK: usize = 16;
/// Candidates examined for one target position.
const MAX_CHAIN: usize = 64;
/// A match this long ends the search for a longer one.
const GOOD_ENOUGH: usize = 4096;
/// Longest copy one instruction carries (what git writes too; the format allows `0xffffff`).
const MAX_COPY: usize = 0x10000;
/// Longest insert one instruction carries.
const MAX_INSERT: usize = 127;
/// Bases up to this size are indexed every 4 bytes, larger ones every 16.
const FINE_STRIDE_MAX: usize = 32 << 20;
/// The multiplier of the rolling hash.
const MUL: u32 = 0x0100_0193;
/// `MUL` to the power `BLOCK - 1`, which takes the oldest byte out of the hash.
const MUL_TOP: u32 = pow(MUL, BLOCK - 1);

const fn pow(mut b: u32, mut e: usize) -> u32 {
    let mut r: u32 = 1;
    while e > 0 {
        if e & 1 == 1 {
            r = r.wrapping_mul(b);
        }
        b = b.wrapping_mul(b);
        e >>= 1;
    }
    r
}

fn hash(window: &[u8]) -> u32 {
    window
        .iter()
        .fold(0u32, |h, &b| h.wrapping_mul(MUL).wrapping_add(u32::from(b)))
}

fn roll(h: u32, out: u8, inp: u8) -> u32 {
    h.wrapping_sub(u32::from(out).wrapping_mul(MUL_TOP))
        .wrapping_mul(MUL)
        .wrapping_add(u32::from(inp))
}

/// A hash index of one base object's 16-byte windows. It does not hold the base itself: pass
/// the same bytes to [`encode`].
pub(crate) struct Index {
    base_len: usize,
    stride: usize,
    shift: u32,
    /// Bucket → 1 + the newest window in it (0: empty).
    heads: Vec<u32>,
    /// Window → 1 + the next window in the same bucket (0: end).
    next: Vec<u32>,
}

impl Index {
    /// Indexes `base`. Bases of 4 GiB or more cannot be addressed by a copy and get an empty
    /// index (every delta against them is all inserts, so none is ever chosen).
    pub(crate) fn new(base: &[u8]) -> Index {
        let stride = if base.len() <= FINE_STRIDE_MAX { 4 } else { 16 };
        let windows = if base.len() < BLOCK || u32::try_from(base.len()).is_err() {
            0
        } else {
            (base.len() - BLOCK) / stride + 1
        };
        let bits = (usize::BITS - windows.leading_zeros()).clamp(4, 31);
        let mut heads = vec![0u32; 1 << bits];
        let mut next = vec![0u32; windows];
        let shift = 32 - bits;
        for (w, slot) in next.iter_mut().enumerate() {
            let pos = w * stride;
            let b = bucket(hash(&base[pos..pos + BLOCK]), shift);
            *slot = heads[b];
            // `windows` < 2^32 / 4, so `w + 1` fits.
            heads[b] = u32::try_from(w + 1).unwrap_or(0);
        }
        Index {
            base_len: base.len(),
            stride,
            shift,
            heads,
            next,
        }
    }

    /// Bytes the index takes, roughly.
    pub(crate) fn memory(&self) -> usize {
        (self.heads.len() + self.next.len()) * 4
    }
}

fn bucket(h: u32, shift: u32) -> usize {
    (h.wrapping_mul(0x9E37_79B1) >> shift) as usize
}

/// How many leading bytes `a` and `b` share.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        if x != y {
            return i + ((x ^ y).trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// How many trailing bytes `a` and `b` share.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

fn put_inserts(out: &mut Vec<u8>, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let n = bytes.len().min(MAX_INSERT);
        out.push(n as u8);
        out.extend_from_slice(&bytes[..n]);
        bytes = &bytes[n..];
    }
}

fn put_copies(out: &mut Vec<u8>, mut offset: usize, mut len: usize) {
    while len > 0 {
        let n = len.min(MAX_COPY);
        let at = out.len();
        out.push(0x80);
        let mut op = 0x80u8;
        let off = offset as u64;
        for i in 0..4 {
            let b = (off >> (8 * i)) as u8;
            if b != 0 {
                op |= 1 << i;
                out.push(b);
            }
        }
        // A size of 0x10000 is written as no size bytes at all.
        let size = if n == MAX_COPY { 0 } else { n };
        for i in 0..3 {
            let b = (size >> (8 * i)) as u8;
            if b != 0 {
                op |= 0x10 << i;
                out.push(b);
            }
        }
        out[at] = op;
        offset += n;
        len -= n;
    }
}

/// Whether `target` shares 16-byte runs with `base` at two or more of 64 places spread evenly
/// over it (each place tried at as many consecutive offsets as the index's stride, so that one
/// of them lines up with an indexed window of a longer shared run). A cheap test that lets the
/// base search skip unrelated candidates without encoding a whole delta; targets under 4 KiB
/// are always worth the encoding.
pub(crate) fn shares_runs(index: &Index, base: &[u8], target: &[u8]) -> bool {
    const PROBES: usize = 64;
    const NEED: usize = 2;
    if target.len() < 4096 {
        return true;
    }
    if index.base_len != base.len() || index.next.is_empty() {
        return false;
    }
    let mut hits = 0;
    let span = target.len() - BLOCK - index.stride;
    for p in 0..PROBES {
        let start = span * p / (PROBES - 1);
        'probe: for i in start..start + index.stride {
            let window = &target[i..i + BLOCK];
            let mut k = index.heads[bucket(hash(window), index.shift)];
            let mut steps = 0;
            while k != 0 && steps < MAX_CHAIN {
                let w = (k - 1) as usize;
                k = index.next.get(w).copied().unwrap_or(0);
                steps += 1;
                let pos = w * index.stride;
                if base.get(pos..pos + BLOCK) == Some(window) {
                    hits += 1;
                    if hits >= NEED {
                        return true;
                    }
                    break 'probe;
                }
            }
        }
    }
    false
}

/// A delta turning `base` (indexed by `index`) into `target`, if one shorter than `limit`
/// bytes exists by this encoder's search; `None` otherwise (also when `index` was not made
/// from a base of `base`'s length, or the base is too large to copy from).
pub(crate) fn encode(index: &Index, base: &[u8], target: &[u8], limit: usize) -> Option<Vec<u8>> {
    if index.base_len != base.len() || u32::try_from(base.len()).is_err() {
        return None;
    }
    let mut out = Vec::with_capacity(limit.min(target.len() / 2 + 64));
    put_varint(&mut out, base.len() as u64);
    put_varint(&mut out, target.len() as u64);
    // Target bytes from `pending` on are not written yet.
    let mut pending = 0;
    let mut i = 0;
    let mut h: Option<u32> = None;
    while i + BLOCK <= target.len() {
        let hv = match h {
            Some(v) => v,
            None => hash(&target[i..i + BLOCK]),
        };
        // Longest match: (total length, start in base, bytes taken before `i`).
        let mut best: Option<(usize, usize, usize)> = None;
        let mut k = index.heads[bucket(hv, index.shift)];
        let mut steps = 0;
        while k != 0 && steps < MAX_CHAIN {
            let w = (k - 1) as usize;
            k = index.next.get(w).copied().unwrap_or(0);
            steps += 1;
            let pos = w * index.stride;
            let fwd = common_prefix(&base[pos..], &target[i..]);
            if fwd < BLOCK {
                continue;
            }
            let room = (i - pending).min(pos);
            let back = common_suffix(&base[pos - room..pos], &target[i - room..i]);
            if best.is_none_or(|(len, _, _)| fwd + back > len) {
                best = Some((fwd + back, pos - back, back));
            }
            if fwd >= GOOD_ENOUGH {
                break;
            }
        }
        match best {
            Some((len, from, back)) => {
                let start = i - back;
                put_inserts(&mut out, &target[pending..start]);
                put_copies(&mut out, from, len);
                i = start + len;
                pending = i;
                h = None;
                if out.len() >= limit {
                    return None;
                }
            }
            None => {
                if i + BLOCK < target.len() {
                    h = Some(roll(hv, target[i], target[i + BLOCK]));
                }
                i += 1;
                // Pending literals cost at least their own length.
                if out.len() + (i - pending) >= limit {
                    return None;
                }
            }
        }
    }
    put_inserts(&mut out, &target[pending..]);
    (out.len() < limit).then_some(out)
}

/// Applies `delta` to `base`; `None` if the delta is malformed or does not fit the base.
#[cfg(test)]
pub(crate) fn apply(base: &[u8], delta: &[u8]) -> Option<Vec<u8>> {
    fn varint(d: &[u8], at: &mut usize) -> Option<u64> {
        let mut r = hero_store::codec::ByteReader::new(d.get(*at..)?);
        let n = r.varint().ok()?;
        *at = d.len() - r.remaining();
        Some(n)
    }
    let mut at = 0;
    if varint(delta, &mut at)? != base.len() as u64 {
        return None;
    }
    let size = usize::try_from(varint(delta, &mut at)?).ok()?;
    let mut out = Vec::with_capacity(size);
    while at < delta.len() {
        let op = delta[at];
        at += 1;
        if op & 0x80 != 0 {
            let mut off = 0usize;
            for i in 0..4 {
                if op & (1 << i) != 0 {
                    off |= usize::from(*delta.get(at)?) << (8 * i);
                    at += 1;
                }
            }
            let mut len = 0usize;
            for i in 0..3 {
                if op & (0x10 << i) != 0 {
                    len |= usize::from(*delta.get(at)?) << (8 * i);
                    at += 1;
                }
            }
            if len == 0 {
                len = 0x10000;
            }
            out.extend_from_slice(base.get(off..off.checked_add(len)?)?);
        } else if op != 0 {
            let n = usize::from(op);
            out.extend_from_slice(delta.get(at..at + n)?);
            at += n;
        } else {
            return None;
        }
    }
    (out.len() == size).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers.
    struct Rng(fastrand::Rng);
    impl Rng {
        fn new(seed: u64) -> Self {
            Rng(fastrand::Rng::with_seed(seed))
        }
        fn below(&mut self, n: usize) -> usize {
            self.0.usize(..n.max(1))
        }
        fn bytes(&mut self, n: usize, alphabet: u8) -> Vec<u8> {
            (0..n).map(|_| b'a' + self.0.u8(..alphabet)).collect()
        }
    }

    /// A target made from `base` by random edits: insertions, deletions, replacements and
    /// moved blocks.
    fn edit(rng: &mut Rng, base: &[u8], edits: usize, alphabet: u8) -> Vec<u8> {
        let mut t = base.to_vec();
        for _ in 0..edits {
            let at = rng.below(t.len() + 1);
            match rng.below(4) {
                0 => {
                    let n = rng.below(200);
                    let ins = rng.bytes(n, alphabet);
                    t.splice(at..at, ins);
                }
                1 => {
                    let end = (at + rng.below(300)).min(t.len());
                    t.drain(at..end);
                }
                2 => {
                    let end = (at + rng.below(50)).min(t.len());
                    let rep = rng.bytes(end - at, alphabet);
                    t.splice(at..end, rep);
                }
                _ => {
                    let end = (at + rng.below(500)).min(t.len());
                    let block: Vec<u8> = t.drain(at..end).collect();
                    let to = rng.below(t.len() + 1);
                    t.splice(to..to, block);
                }
            }
        }
        t
    }

    fn round_trip(base: &[u8], target: &[u8]) -> Vec<u8> {
        let index = Index::new(base);
        let delta = encode(&index, base, target, usize::MAX).expect("no limit, always a delta");
        assert_eq!(apply(base, &delta).as_deref(), Some(target));
        delta
    }

    #[test]
    fn random_pairs_apply_back_to_the_target() {
        let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
        for case in 0..400 {
            let len = match case % 4 {
                0 => rng.below(40),
                1 => rng.below(2_000),
                2 => rng.below(40_000),
                _ => 100_000 + rng.below(200_000),
            };
            // Small alphabets make repeats and hash collisions common.
            let alphabet = [2u8, 4, 26][case % 3];
            let base = rng.bytes(len, alphabet);
            let target = if case % 5 == 0 {
                let n = rng.below(5_000);
                rng.bytes(n, alphabet)
            } else {
                let edits = 1 + rng.below(20);
                edit(&mut rng, &base, edits, alphabet)
            };
            round_trip(&base, &target);
        }
    }

    #[test]
    fn similar_objects_give_small_deltas() {
        let mut rng = Rng::new(7);
        let base = rng.bytes(100_000, 26);
        let mut target = base.clone();
        target[50_000] ^= 1;
        target.extend_from_slice(b"appended");
        let delta = round_trip(&base, &target);
        assert!(delta.len() < 40, "{}", delta.len());
        // Identical content: two copy runs and headers only.
        let same = round_trip(&base, &base);
        assert!(same.len() < 20, "{}", same.len());
        // Long copies are split at 0x10000 bytes and still apply.
        let big = rng.bytes(300_000, 26);
        let d = round_trip(&big, &big);
        assert!(d.len() < 40, "{}", d.len());
    }

    #[test]
    fn edge_cases() {
        round_trip(b"", b"");
        round_trip(b"", b"only inserted bytes, more than sixteen of them");
        round_trip(b"some base bytes that go nowhere", b"");
        round_trip(&[0u8; 5_000], &[0u8; 7_000]);
        let long_insert: Vec<u8> = (0..1_000u32).map(|i| (i * 7 + i / 3) as u8).collect();
        round_trip(b"x", &long_insert);
        // The limit is honoured: nothing at or above it comes back.
        let mut rng = Rng::new(3);
        let a = rng.bytes(10_000, 26);
        let b = rng.bytes(10_000, 26);
        let index = Index::new(&a);
        assert!(encode(&index, &a, &b, 5_000).is_none());
        assert!(encode(&index, &a, &a, 10).is_some());
        assert!(encode(&index, &a, &a, 5).is_none());
        // An index made for other bytes is refused, not trusted.
        assert!(encode(&index, &a[1..], &b, usize::MAX).is_none());
    }

    #[test]
    fn probe_tells_related_from_unrelated() {
        let mut rng = Rng::new(11);
        let base = rng.bytes(50_000, 26);
        let index = Index::new(&base);
        let edited = edit(&mut rng, &base, 10, 26);
        assert!(shares_runs(&index, &base, &edited));
        let unrelated = rng.bytes(50_000, 26);
        assert!(!shares_runs(&index, &base, &unrelated));
        // Small targets are always worth a try.
        assert!(shares_runs(&index, &base, &unrelated[..4_000]));
    }

    #[test]
    fn applier_rejects_malformed_deltas() {
        assert!(apply(b"abc", &[3, 1, 0]).is_none()); // reserved opcode
        assert!(apply(b"abc", &[4, 1, 1, b'x']).is_none()); // wrong base size
        assert!(apply(b"abc", &[3, 2, 0x91, 2, 2]).is_none()); // copy past the end
        assert!(apply(b"abc", &[3, 5, 1, b'x']).is_none()); // short result
        assert_eq!(
            apply(b"abc", &[3, 3, 0x90, 3]).as_deref(),
            Some(&b"abc"[..])
        );
    }
}
