//! HyperLogLog sketches in Redis's exact byte representation.
//!
//! A HyperLogLog is an ordinary string value. Its layout is the one Redis 7.0 writes, so a
//! sketch copied byte for byte between Redis and Libellule counts the same on both sides:
//!
//! * a 16-byte header: the magic `HYLL`, the encoding byte (0 dense, 1 sparse), three
//!   unused bytes, and the cached cardinality as 8 little-endian bytes whose most
//!   significant bit flags the cache as stale;
//! * dense: 16384 registers of 6 bits packed least-significant-bit first (12288 bytes);
//! * sparse: a run-length code of `ZERO` (`00xxxxxx`, 1..64 empty registers), `XZERO`
//!   (`01xxxxxx yyyyyyyy`, 1..16384 empty registers) and `VAL` (`1vvvvvxx`, 1..4
//!   registers holding 1..32) opcodes, promoted to dense when a register needs a value
//!   above 32 or the string would grow past `hll-sparse-max-bytes`.
//!
//! Elements are hashed with MurmurHash64A (seed `0xadc83b19`): the low 14 bits pick the
//! register, the run of zeros above them (plus one) is the candidate register value. The
//! cardinality estimator is Ertl's "improved" estimator that Redis 7.0 uses.

/// Header size in bytes.
pub const HDR: usize = 16;
/// log2 of the register count.
pub const P: u32 = 14;
/// Hash bits left after the register index.
pub const Q: usize = 64 - P as usize;
/// Number of registers.
pub const REGISTERS: usize = 1 << P;
/// Bits per dense register.
pub const BITS: usize = 6;
/// Largest register value.
pub const REGISTER_MAX: u8 = (1 << BITS) - 1;
/// Total length of a dense sketch.
pub const DENSE_SIZE: usize = HDR + (REGISTERS * BITS).div_ceil(8);
/// Encoding byte of the dense representation.
pub const DENSE: u8 = 0;
/// Encoding byte of the sparse representation.
pub const SPARSE: u8 = 1;
/// Largest value a sparse `VAL` opcode holds.
const VAL_MAX_VALUE: u8 = 32;
/// Longest run a sparse `VAL` opcode covers.
const VAL_MAX_LEN: usize = 4;
/// Longest run a sparse `ZERO` opcode covers.
const ZERO_MAX_LEN: usize = 64;
/// Longest run a sparse `XZERO` opcode covers.
const XZERO_MAX_LEN: usize = 16384;
/// 0.5 / ln(2), the estimator's asymptotic constant.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
/// The hash seed Redis uses.
const SEED: u64 = 0xadc8_3b19;

/// A sparse sketch whose opcodes do not cover exactly 16384 registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corrupt;

/// MurmurHash2, 64-bit variant "64A", reading 8-byte blocks little-endian (as Redis does
/// on every architecture).
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate() {
            h ^= (*b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element falls into and the value it proposes for it (1..=51).
#[inline]
pub fn pattern(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// Reads dense register `i` from the register area `regs`.
#[inline]
pub fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = regs[byte] as u32;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u32;
    (((b0 >> fb) | (b1 << (8 - fb))) & REGISTER_MAX as u32) as u8
}

/// Writes dense register `i` of the register area `regs`.
#[inline]
pub fn dense_set(regs: &mut [u8], i: usize, val: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let v = val as u32;
    let max = REGISTER_MAX as u32;
    regs[byte] = ((regs[byte] as u32 & !(max << fb)) | (v << fb)) as u8;
    if byte + 1 < regs.len() {
        let hi = 8 - fb;
        regs[byte + 1] = ((regs[byte + 1] as u32 & !(max >> hi)) | (v >> hi)) as u8;
    }
}

/// Raises dense register `i` to `count`; true when it changed.
#[inline]
pub fn dense_raise(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_set(regs, i, count);
        true
    } else {
        false
    }
}

/// An empty sketch as PFADD creates it: sparse, all registers in `XZERO` opcodes, the
/// cached cardinality 0 and valid.
pub fn new_sparse() -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR + 2 + 16);
    v.extend_from_slice(b"HYLL");
    v.push(SPARSE);
    v.extend_from_slice(&[0; 11]);
    let mut left = REGISTERS;
    while left > 0 {
        let n = left.min(XZERO_MAX_LEN);
        push_xzero(&mut v, n);
        left -= n;
    }
    v
}

/// Appends an `XZERO` opcode covering `len` registers.
fn push_xzero(v: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    v.push((l >> 8) as u8 | 0x40);
    v.push((l & 0xff) as u8);
}

/// Redis's `isHLLObjectOrReply` test on a string's bytes: the magic, a known encoding,
/// and the exact length for dense.
pub fn is_valid(s: &[u8]) -> bool {
    s.len() >= HDR
        && &s[..4] == b"HYLL"
        && s[4] <= SPARSE
        && (s[4] != DENSE || s.len() == DENSE_SIZE)
}

/// The cached cardinality, when the cache is valid.
pub fn cached(s: &[u8]) -> Option<u64> {
    if s[15] & 0x80 != 0 {
        return None;
    }
    Some(u64::from_le_bytes(s[8..16].try_into().expect("8 bytes")))
}

/// Stores `card` as the cached cardinality (valid).
pub fn set_cached(s: &mut [u8], card: u64) {
    s[8..16].copy_from_slice(&card.to_le_bytes());
}

/// Marks the cached cardinality stale.
pub fn invalidate(s: &mut [u8]) {
    s[15] |= 0x80;
}

/// One decoded sparse opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `ZERO` or `XZERO`: a run of empty registers (`xzero` = the two-byte form).
    Zero {
        /// Registers covered.
        len: usize,
        /// True for the two-byte `XZERO` form.
        xzero: bool,
    },
    /// `VAL`: `len` registers holding `val`.
    Val {
        /// The register value (1..=32).
        val: u8,
        /// Registers covered (1..=4).
        len: usize,
    },
}

/// Decodes the opcode at `s[p]`; returns it and its size in bytes. A truncated `XZERO`
/// reads its missing second byte as 0 (as Redis reads the string's terminator).
#[inline]
pub fn decode(s: &[u8], p: usize) -> (Op, usize) {
    decode_with(s, p, 0)
}

/// [`decode`] where the byte just past the end of `s` reads as `past` (see
/// [`sparse_set`] on that byte).
#[inline]
fn decode_with(s: &[u8], p: usize, past: u8) -> (Op, usize) {
    let b = s[p];
    if b & 0xc0 == 0 {
        (
            Op::Zero {
                len: (b & 0x3f) as usize + 1,
                xzero: false,
            },
            1,
        )
    } else if b & 0xc0 == 0x40 {
        let lo = s.get(p + 1).copied().unwrap_or(past) as usize;
        (
            Op::Zero {
                len: ((((b & 0x3f) as usize) << 8) | lo) + 1,
                xzero: true,
            },
            2,
        )
    } else {
        (
            Op::Val {
                val: ((b >> 2) & 0x1f) + 1,
                len: (b & 3) as usize + 1,
            },
            1,
        )
    }
}

/// The `VAL` opcode byte.
#[inline]
fn val_byte(val: u8, len: usize) -> u8 {
    0x80 | ((val - 1) << 2) | (len as u8 - 1)
}

/// Converts a sparse sketch to dense in place (header kept, encoding byte changed).
/// A dense sketch is left alone. Opcodes must cover exactly 16384 registers: a `VAL`
/// running past the end is an error even when the registers before it add up (as in
/// Redis releases carrying the CVE-2025-32023 fix, such as the reference 7.0.15).
pub fn to_dense(v: &mut Vec<u8>) -> Result<(), Corrupt> {
    to_dense_with(v, 0)
}

/// [`to_dense`] with the byte past the end reading as `past`.
fn to_dense_with(v: &mut Vec<u8>, past: u8) -> Result<(), Corrupt> {
    if v[4] == DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR].copy_from_slice(&v[..HDR]);
    dense[4] = DENSE;
    let regs = &mut dense[HDR..];
    let mut idx = 0usize;
    let mut p = HDR;
    while p < v.len() {
        let (op, n) = decode_with(v, p, past);
        match op {
            Op::Zero { len, .. } => idx += len,
            Op::Val { val, len } => {
                if idx + len > REGISTERS {
                    return Err(Corrupt);
                }
                for r in idx..idx + len {
                    dense_set(regs, r, val);
                }
                idx += len;
            }
        }
        p += n;
    }
    if idx != REGISTERS {
        return Err(Corrupt);
    }
    *v = dense;
    Ok(())
}

/// Raises register `index` of a sparse sketch to `count`, rewriting the opcode that
/// covers it, merging equal neighbours, and promoting to dense when needed (a value above
/// 32, or a string that would grow past `max_bytes`). True when a register changed.
/// An in-place update marks the cached cardinality stale at once (as Redis does, so a
/// later error in the same PFADD leaves it stale); a promotion keeps the header as is.
///
/// `past` is the byte just past the string's end. Redis keeps a terminator there, but a
/// rewrite of a corrupt sketch that ends in a truncated `XZERO` leaves the new
/// sequence's last byte in that position, and later updates in the same command read it
/// as the `XZERO`'s second byte; callers thread one `past` (starting at 0) through the
/// updates of one command.
pub fn sparse_set(
    v: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: u64,
    past: &mut u8,
) -> Result<bool, Corrupt> {
    if count > VAL_MAX_VALUE {
        return promote(v, index, count, *past);
    }
    let mut p = HDR;
    let mut first = 0usize;
    let mut prev: Option<usize> = None;
    let mut span = 0usize;
    let mut found = None;
    while p < v.len() {
        let (op, n) = decode_with(v, p, *past);
        span = match op {
            Op::Zero { len, .. } | Op::Val { len, .. } => len,
        };
        if index < first + span {
            found = Some((op, n));
            break;
        }
        prev = Some(p);
        p += n;
        first += span;
    }
    let Some((op, oplen)) = found else {
        return Err(Corrupt);
    };
    if span == 0 {
        return Err(Corrupt);
    }
    let last = first + span - 1;
    let mut seq: [u8; 5] = [0; 5];
    let mut n = 0usize;
    let put_zero = |seq: &mut [u8; 5], n: &mut usize, len: usize| {
        if len > ZERO_MAX_LEN {
            let l = len - 1;
            seq[*n] = (l >> 8) as u8 | 0x40;
            seq[*n + 1] = (l & 0xff) as u8;
            *n += 2;
        } else {
            seq[*n] = (len - 1) as u8;
            *n += 1;
        }
    };
    match op {
        Op::Val { val, len } => {
            if val >= count {
                return Ok(false);
            }
            if len == 1 {
                v[p] = val_byte(count, 1);
                if merge_neighbours(v, prev.unwrap_or(HDR)) {
                    *past = 0;
                }
                invalidate(v);
                return Ok(true);
            }
            if index != first {
                seq[n] = val_byte(val, index - first);
                n += 1;
            }
            seq[n] = val_byte(count, 1);
            n += 1;
            if index != last {
                seq[n] = val_byte(val, last - index);
                n += 1;
            }
        }
        Op::Zero { len, xzero } => {
            if !xzero && len == 1 {
                v[p] = val_byte(count, 1);
                if merge_neighbours(v, prev.unwrap_or(HDR)) {
                    *past = 0;
                }
                invalidate(v);
                return Ok(true);
            }
            if index != first {
                put_zero(&mut seq, &mut n, index - first);
            }
            seq[n] = val_byte(count, 1);
            n += 1;
            if index != last {
                put_zero(&mut seq, &mut n, last - index);
            }
        }
    }
    if n > oplen && (v.len() + n - oplen) as u64 > max_bytes {
        return promote(v, index, count, *past);
    }
    let old_len = v.len();
    let end = (p + oplen).min(old_len);
    v.splice(p..end, seq[..n].iter().copied());
    // A corrupt sketch may end in the middle of an `XZERO`: Redis then sizes the string
    // as if both bytes had been there, dropping the new sequence's last byte.
    let new_len = old_len + n - oplen;
    *past = if p + n > new_len { seq[new_len - p] } else { 0 };
    v.truncate(new_len);
    if merge_neighbours(v, prev.unwrap_or(HDR)) {
        *past = 0;
    }
    invalidate(v);
    Ok(true)
}

/// Converts to dense and raises the register there (the promotion path of
/// [`sparse_set`]).
fn promote(v: &mut Vec<u8>, index: usize, count: u8, past: u8) -> Result<bool, Corrupt> {
    to_dense_with(v, past)?;
    dense_raise(&mut v[HDR..], index, count);
    Ok(true)
}

/// After an update, joins adjacent `VAL` opcodes of equal value whose runs fit in one
/// opcode, looking at up to five opcodes from `from` (as Redis does). True when
/// something was merged.
fn merge_neighbours(v: &mut Vec<u8>, from: usize) -> bool {
    let mut merged = false;
    let mut p = from;
    let mut budget = 5;
    while p < v.len() && budget > 0 {
        budget -= 1;
        let b = v[p];
        if b & 0xc0 == 0x40 {
            p += 2;
            continue;
        }
        if b & 0xc0 == 0 {
            p += 1;
            continue;
        }
        if p + 1 < v.len() && v[p + 1] & 0x80 != 0 {
            let (Op::Val { val: v1, len: l1 }, _) = decode(v, p) else {
                unreachable!()
            };
            let (Op::Val { val: v2, len: l2 }, _) = decode(v, p + 1) else {
                unreachable!()
            };
            if v1 == v2 && l1 + l2 <= VAL_MAX_LEN {
                v[p + 1] = val_byte(v1, l1 + l2);
                v.remove(p);
                merged = true;
                continue;
            }
        }
        p += 1;
    }
    merged
}

/// Adds an element to a sketch (sparse or dense). True when a register changed.
/// `past` is as for [`sparse_set`].
pub fn add(v: &mut Vec<u8>, ele: &[u8], max_bytes: u64, past: &mut u8) -> Result<bool, Corrupt> {
    let (index, count) = pattern(ele);
    set_register(v, index, count, max_bytes, past)
}

/// Raises register `index` to `count` in either encoding.
pub fn set_register(
    v: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: u64,
    past: &mut u8,
) -> Result<bool, Corrupt> {
    match v[4] {
        DENSE => Ok(dense_raise(&mut v[HDR..], index, count)),
        SPARSE => sparse_set(v, index, count, max_bytes, past),
        _ => Err(Corrupt),
    }
}

/// Merges a valid sketch into `max` (one byte per register, keeping the maximum).
pub fn merge_into(max: &mut [u8], s: &[u8]) -> Result<(), Corrupt> {
    if s[4] == DENSE {
        let regs = &s[HDR..];
        for (i, m) in max.iter_mut().enumerate().take(REGISTERS) {
            let r = dense_get(regs, i);
            if r > *m {
                *m = r;
            }
        }
        return Ok(());
    }
    let mut i = 0usize;
    let mut p = HDR;
    while p < s.len() {
        let (op, n) = decode(s, p);
        match op {
            Op::Zero { len, .. } => i += len,
            Op::Val { val, len } => {
                if i + len > REGISTERS {
                    return Err(Corrupt);
                }
                for m in &mut max[i..i + len] {
                    if val > *m {
                        *m = val;
                    }
                }
                i += len;
            }
        }
        p += n;
    }
    if i != REGISTERS {
        return Err(Corrupt);
    }
    Ok(())
}

/// The register histogram of a sketch; `Err` for a sparse sketch that does not cover
/// exactly 16384 registers.
pub fn histogram(s: &[u8]) -> Result<[u32; 64], Corrupt> {
    let mut h = [0u32; 64];
    if s[4] == DENSE {
        let regs = &s[HDR..];
        for i in 0..REGISTERS {
            h[dense_get(regs, i) as usize] += 1;
        }
        return Ok(h);
    }
    let mut idx = 0usize;
    let mut p = HDR;
    while p < s.len() {
        let (op, n) = decode(s, p);
        match op {
            Op::Zero { len, .. } => {
                idx += len;
                h[0] += len as u32;
            }
            Op::Val { val, len } => {
                idx += len;
                h[val as usize] += len as u32;
            }
        }
        p += n;
    }
    if idx != REGISTERS {
        return Err(Corrupt);
    }
    Ok(h)
}

/// The histogram of a one-byte-per-register array (the union PFCOUNT builds).
pub fn histogram_raw(regs: &[u8]) -> [u32; 64] {
    let mut h = [0u32; 64];
    for r in regs {
        h[(*r & 63) as usize] += 1;
    }
    h
}

/// Ertl's sigma function.
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if before == z {
            return z;
        }
    }
}

/// Ertl's tau function.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if before == z {
            return z / 3.0;
        }
    }
}

/// The cardinality estimate from a register histogram (Redis 7.0's `hllCount`).
pub fn estimate(h: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - h[Q + 1] as f64) / m);
    for j in (1..=Q).rev() {
        z += h[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(h[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// The estimate of one sketch (ignoring its cache).
pub fn count(s: &[u8]) -> Result<u64, Corrupt> {
    Ok(estimate(&histogram(s)?))
}

/// `PFDEBUG DECODE`'s text for a sparse sketch.
pub fn decode_text(s: &[u8]) -> String {
    let mut out = String::new();
    let mut p = HDR;
    while p < s.len() {
        let (op, n) = decode(s, p);
        match op {
            Op::Zero { len, xzero: false } => out.push_str(&format!("z:{len} ")),
            Op::Zero { len, xzero: true } => out.push_str(&format!("Z:{len} ")),
            Op::Val { val, len } => out.push_str(&format!("v:{val},{len} ")),
        }
        p += n;
    }
    out.trim_matches(' ').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_registers_round_trip() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR];
        for i in 0..REGISTERS {
            dense_set(&mut regs, i, (i % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&regs, i), (i % 64) as u8);
        }
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut s = new_sparse();
        let mut d = new_sparse();
        to_dense(&mut d).unwrap();
        for i in 0..3000u32 {
            let e = i.to_string();
            assert_eq!(
                add(&mut s, e.as_bytes(), 1 << 20, &mut 0),
                add(&mut d, e.as_bytes(), 1 << 20, &mut 0)
            );
        }
        assert_eq!(s[4], SPARSE);
        assert_eq!(count(&s), count(&d));
        let c = count(&s).unwrap();
        assert!((2900..3100).contains(&c), "{c}");
        let mut s2 = s.clone();
        to_dense(&mut s2).unwrap();
        assert_eq!(s2[HDR..], d[HDR..]);
    }

    #[test]
    fn empty_counts_zero() {
        assert_eq!(count(&new_sparse()), Ok(0));
        assert_eq!(new_sparse().len(), HDR + 2);
    }
}
