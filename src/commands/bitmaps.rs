//! Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and BITFIELD_RO.
//!
//! Bitmaps are plain string values: bit 0 is the most significant bit of byte 0. Writes
//! grow the string in place with zero bytes (the value becomes [`Value::Raw`], reported
//! `raw` as in Redis), reads treat missing bytes as zeros. Behaviour, argument parsing
//! order and error texts follow Redis 7.0's `bitops.c`.
//!
//! BITOP has a cross-shard coordinator: it locks the destination and the sources, copies
//! the sources from their shards, computes on the coordinating shard and stores (or
//! deletes) the destination on its shard before unlocking.

use crate::commands::keys::{cross_setup, lookup_read, split};
use crate::commands::{
    eq_ic, flags, parse_int, AsyncCtx, CommandSpec, Ctx, Handler, ReplyFuture, NOT_INT, SYNTAX_ERR,
    WRONGTYPE,
};
use crate::protocol::parse::{Args, OwnedArgs};
use crate::shard::{now_ms, ShardData};
use crate::storage::{Value, ValueRef};

/// Shorthand for a keyed command without a coordinator.
const fn local(run: crate::commands::KeyedFn) -> Handler {
    Handler::Keyed { run, cross: None }
}

/// The bitmap commands, as Redis 7.0's COMMAND INFO describes them.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "setbit",
        4,
        flags::WRITE | flags::DENYOOM,
        (1, 1, 1),
        "@write @bitmap @slow",
        local(setbit),
    ),
    CommandSpec::new(
        "getbit",
        3,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@read @bitmap @fast",
        local(getbit),
    ),
    CommandSpec::new(
        "bitcount",
        -2,
        flags::READONLY,
        (1, 1, 1),
        "@read @bitmap @slow",
        local(bitcount),
    ),
    CommandSpec::new(
        "bitpos",
        -3,
        flags::READONLY,
        (1, 1, 1),
        "@read @bitmap @slow",
        local(bitpos),
    ),
    CommandSpec::new(
        "bitop",
        -4,
        flags::WRITE | flags::DENYOOM,
        (2, -1, 1),
        "@write @bitmap @slow",
        Handler::Keyed {
            run: bitop,
            cross: Some(bitop_cross),
        },
    ),
    CommandSpec::new(
        "bitfield",
        -2,
        flags::WRITE | flags::DENYOOM,
        (1, 1, 1),
        "@write @bitmap @slow",
        local(bitfield),
    ),
    CommandSpec::new(
        "bitfield_ro",
        -2,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@read @bitmap @fast",
        local(bitfield_ro),
    ),
];

/// Error for a bad bit offset.
const BAD_OFFSET: &[u8] = b"ERR bit offset is not an integer or out of range";
/// Error for a bad SETBIT value.
const BAD_BIT: &[u8] = b"ERR bit is not an integer or out of range";
/// Error for a bad BITFIELD type.
const BAD_TYPE: &[u8] =
    b"ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// Redis's `getBitOffsetFromArgument`: a non-negative offset whose byte fits under
/// `proto-max-bulk-len`; with `bits` > 0 a `#n` offset means `n * bits`.
fn parse_offset(arg: &[u8], bits: u64, max_bulk: u64) -> Result<u64, &'static [u8]> {
    let hash = bits > 0 && arg.first() == Some(&b'#');
    let v = parse_int(if hash { &arg[1..] } else { arg }).ok_or(BAD_OFFSET)?;
    let v = if hash { v.wrapping_mul(bits as i64) } else { v };
    if v < 0 || (v as u64 >> 3) >= max_bulk {
        return Err(BAD_OFFSET);
    }
    Ok(v as u64)
}

/// Looks up `key` for a bit write that touches bit `maxbit`: WRONGTYPE for non-strings,
/// otherwise the raw buffer, created or zero-extended to cover the bit. The flag says
/// whether the key was created or grown.
fn string_for_write<'a>(
    db: &'a mut crate::storage::Db,
    key: &[u8],
    maxbit: u64,
    now: u64,
) -> Result<(&'a mut Vec<u8>, bool), &'static [u8]> {
    let need = (maxbit >> 3) as usize + 1;
    let mut dirty = false;
    match db.lookup(key, now) {
        None => {
            db.set(key, Value::Raw(vec![0; need]), 0);
            dirty = true;
        }
        Some(e) if !e.value().is_string() => return Err(WRONGTYPE),
        Some(_) => {}
    }
    let buf = db
        .boxed_mut(key)
        .and_then(|e| e.value_mut())
        .and_then(Value::make_raw)
        .ok_or(WRONGTYPE)?;
    if buf.len() < need {
        buf.resize(need, 0);
        dirty = true;
    }
    Ok((buf, dirty))
}

// ---------------------------------------------------------------------------------------
// SETBIT / GETBIT
// ---------------------------------------------------------------------------------------

/// `SETBIT key offset value`
fn setbit(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let max = ctx.shard.config.proto_max_bulk_len;
    let off = match parse_offset(args.get(2), 0, max) {
        Ok(o) => o,
        Err(m) => return ctx.out.error(m),
    };
    let on = match parse_int(args.get(3)) {
        Some(v @ (0 | 1)) => v as u8,
        _ => return ctx.out.error(BAD_BIT),
    };
    let now = ctx.now_ms;
    let (db, out) = split(ctx);
    let (buf, dirty) = match string_for_write(db, key, off, now) {
        Ok(x) => x,
        Err(m) => return out.error(m),
    };
    let byte = (off >> 3) as usize;
    let mask = 1u8 << (7 - (off & 7));
    let old = buf[byte] & mask != 0;
    let changed = dirty || old != (on == 1);
    if changed {
        if on == 1 {
            buf[byte] |= mask;
        } else {
            buf[byte] &= !mask;
        }
    }
    out.int(i64::from(old));
    if changed {
        ctx.modified(key, b'$', "setbit");
    }
}

/// `GETBIT key offset`
fn getbit(ctx: &mut Ctx, args: Args) {
    let max = ctx.shard.config.proto_max_bulk_len;
    let off = match parse_offset(args.get(2), 0, max) {
        Ok(o) => o,
        Err(m) => return ctx.out.error(m),
    };
    let Some(e) = lookup_read(ctx.shard, ctx.db, args.get(1), ctx.now_ms) else {
        return ctx.out.int(0);
    };
    let byte = (off >> 3) as usize;
    let bit = e
        .value()
        .with_str(|s| s.get(byte).is_some_and(|b| b & (1 << (7 - (off & 7))) != 0));
    match bit {
        Some(b) => ctx.out.int(i64::from(b)),
        None => ctx.out.error(WRONGTYPE),
    }
}

// ---------------------------------------------------------------------------------------
// BITCOUNT / BITPOS
// ---------------------------------------------------------------------------------------

/// Parses an optional `BYTE|BIT` unit; true for BIT.
fn parse_unit(arg: &[u8]) -> Result<bool, &'static [u8]> {
    if eq_ic(arg, "bit") {
        Ok(true)
    } else if eq_ic(arg, "byte") {
        Ok(false)
    } else {
        Err(SYNTAX_ERR)
    }
}

/// Redis's index normalisation for BITCOUNT/BITPOS: negative indexes from the end,
/// clamped to `[0, total-1]`.
fn normalize(mut start: i64, mut end: i64, total: i64) -> (i64, i64) {
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    (start, end)
}

/// Counts the set bits of `s` between bit positions `from` and `to` inclusive.
pub fn count_bits(s: &[u8], from: u64, to: u64) -> u64 {
    let (fb, lb) = ((from >> 3) as usize, (to >> 3) as usize);
    let mut n: u64 = popcount(&s[fb..=lb]);
    let head = s[fb] & !(0xffu8 >> (from & 7));
    let tail = s[lb] & ((1u16 << (7 - (to & 7))) - 1) as u8;
    n -= (head.count_ones() + tail.count_ones()) as u64;
    n
}

/// Number of set bits in `s`.
pub fn popcount(s: &[u8]) -> u64 {
    let mut chunks = s.chunks_exact(8);
    let mut n = 0u64;
    for c in &mut chunks {
        n += u64::from_ne_bytes(c.try_into().expect("8 bytes")).count_ones() as u64;
    }
    n + chunks
        .remainder()
        .iter()
        .map(|b| b.count_ones() as u64)
        .sum::<u64>()
}

/// `BITCOUNT key [start end [BYTE|BIT]]`
fn bitcount(ctx: &mut Ctx, args: Args) {
    let Some(e) = lookup_read(ctx.shard, ctx.db, args.get(1), ctx.now_ms) else {
        return ctx.out.int(0);
    };
    let out = &mut ctx.out;
    let r = e.value().with_str(|s| -> Result<i64, &'static [u8]> {
        let len = s.len() as i64;
        let (start, end, isbit) = match args.len() {
            2 => (0, len - 1, false),
            4 | 5 => {
                let start = parse_int(args.get(2)).ok_or(NOT_INT)?;
                let end = parse_int(args.get(3)).ok_or(NOT_INT)?;
                if start < 0 && end < 0 && start > end {
                    return Ok(0);
                }
                let isbit = if args.len() == 5 {
                    parse_unit(args.get(4))?
                } else {
                    false
                };
                let total = if isbit { len << 3 } else { len };
                let (s0, e0) = normalize(start, end, total);
                (s0, e0, isbit)
            }
            _ => return Err(SYNTAX_ERR),
        };
        if start > end {
            return Ok(0);
        }
        let (from, to) = if isbit {
            (start as u64, end as u64)
        } else {
            ((start as u64) << 3, ((end as u64) << 3) + 7)
        };
        Ok(count_bits(s, from, to) as i64)
    });
    match r {
        None => out.error(WRONGTYPE),
        Some(Ok(n)) => out.int(n),
        Some(Err(m)) => out.error(m),
    }
}

/// The first bit equal to `bit` in `s` between bit positions `from` and `to`.
pub fn find_bit(s: &[u8], bit: bool, from: u64, to: u64) -> Option<u64> {
    let mut pos = from;
    // Leading bits up to a byte boundary.
    while pos <= to && pos & 7 != 0 {
        if (s[(pos >> 3) as usize] & (0x80 >> (pos & 7)) != 0) == bit {
            return Some(pos);
        }
        pos += 1;
    }
    // Whole 64-bit words (big-endian, so bit order matches the string's).
    let skip_word = if bit { 0u64 } else { u64::MAX };
    while pos + 63 <= to {
        let at = (pos >> 3) as usize;
        let w = u64::from_be_bytes(s[at..at + 8].try_into().expect("8 bytes"));
        if w != skip_word {
            let x = if bit { w } else { !w };
            return Some(pos + x.leading_zeros() as u64);
        }
        pos += 64;
    }
    // Whole bytes.
    let skip = if bit { 0u8 } else { 0xff };
    while pos + 7 <= to {
        let b = s[(pos >> 3) as usize];
        if b != skip {
            let x = if bit { b } else { !b };
            return Some(pos + x.leading_zeros() as u64);
        }
        pos += 8;
    }
    while pos <= to {
        if (s[(pos >> 3) as usize] & (0x80 >> (pos & 7)) != 0) == bit {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

/// `BITPOS key bit [start [end [BYTE|BIT]]]`
fn bitpos(ctx: &mut Ctx, args: Args) {
    let bit = match parse_int(args.get(2)) {
        None => return ctx.out.error(NOT_INT),
        Some(b @ (0 | 1)) => b == 1,
        Some(_) => return ctx.out.error(b"ERR The bit argument must be 1 or 0."),
    };
    let Some(e) = lookup_read(ctx.shard, ctx.db, args.get(1), ctx.now_ms) else {
        return ctx.out.int(if bit { -1 } else { 0 });
    };
    let out = &mut ctx.out;
    let r = e.value().with_str(|s| -> Result<i64, &'static [u8]> {
        let len = s.len() as i64;
        let mut end_given = false;
        let (start, end, isbit) = match args.len() {
            3 => (0, len - 1, false),
            4..=6 => {
                let start = parse_int(args.get(3)).ok_or(NOT_INT)?;
                let isbit = if args.len() == 6 {
                    parse_unit(args.get(5))?
                } else {
                    false
                };
                let end = if args.len() >= 5 {
                    end_given = true;
                    parse_int(args.get(4)).ok_or(NOT_INT)?
                } else if isbit {
                    (len << 3) + 7
                } else {
                    len - 1
                };
                let total = if isbit { len << 3 } else { len };
                let (s0, e0) = normalize(start, end, total);
                (s0, e0, isbit)
            }
            _ => return Err(SYNTAX_ERR),
        };
        if start > end {
            return Ok(-1);
        }
        let (from, to) = if isbit {
            (start as u64, end as u64)
        } else {
            ((start as u64) << 3, ((end as u64) << 3) + 7)
        };
        Ok(match find_bit(s, bit, from, to) {
            Some(p) => p as i64,
            None if bit || end_given => -1,
            // Searching for a clear bit without an end: the bit just past the range's
            // last byte, as if the string were padded with zeros.
            None => (((to >> 3) + 1) << 3) as i64,
        })
    });
    match r {
        None => out.error(WRONGTYPE),
        Some(Ok(n)) => out.int(n),
        Some(Err(m)) => out.error(m),
    }
}

// ---------------------------------------------------------------------------------------
// BITOP
// ---------------------------------------------------------------------------------------

/// A BITOP operation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    And,
    Or,
    Xor,
    Not,
}

/// Parses BITOP's operation and checks NOT's single source.
fn parse_bitop(args: &Args) -> Result<Op, &'static [u8]> {
    let name = args.get(1);
    let op = if eq_ic(name, "and") {
        Op::And
    } else if eq_ic(name, "or") {
        Op::Or
    } else if eq_ic(name, "xor") {
        Op::Xor
    } else if eq_ic(name, "not") {
        Op::Not
    } else {
        return Err(SYNTAX_ERR);
    };
    if op == Op::Not && args.len() != 4 {
        return Err(b"ERR BITOP NOT must be called with a single source key.");
    }
    Ok(op)
}

/// Computes BITOP over the sources (missing keys are empty strings); the result is as
/// long as the longest source.
fn compute_bitop(op: Op, srcs: &[&[u8]]) -> Vec<u8> {
    let maxlen = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut res = vec![0u8; maxlen];
    let Some(first) = srcs.first() else {
        return res;
    };
    res[..first.len()].copy_from_slice(first);
    match op {
        Op::Not => {
            for b in &mut res {
                *b = !*b;
            }
        }
        Op::And => {
            for s in &srcs[1..] {
                for (i, r) in res.iter_mut().enumerate() {
                    *r &= s.get(i).copied().unwrap_or(0);
                }
            }
        }
        Op::Or => {
            for s in &srcs[1..] {
                for (r, b) in res.iter_mut().zip(s.iter()) {
                    *r |= b;
                }
            }
        }
        Op::Xor => {
            for s in &srcs[1..] {
                for (r, b) in res.iter_mut().zip(s.iter()) {
                    *r ^= b;
                }
            }
        }
    }
    res
}

/// Stores a BITOP result on the destination's shard (an empty result deletes it) and
/// returns its length.
fn store_bitop(d: &mut ShardData, db: usize, key: &[u8], res: Vec<u8>, now: u64) -> i64 {
    let n = res.len() as i64;
    if res.is_empty() {
        if d.dbs[db].remove(key, now).is_some() {
            d.modified(db, key, b'g', "del");
        }
    } else {
        d.dbs[db].set(key, Value::Raw(res), 0);
        d.modified(db, key, b'$', "set");
    }
    n
}

/// A source's bytes: `Ok(None)` when missing, `Err` for a non-string.
fn source_bytes(v: Option<ValueRef<'_>>) -> Result<Option<Vec<u8>>, ()> {
    match v {
        None => Ok(None),
        Some(v) => v.with_str(|s| Some(s.to_vec())).ok_or(()),
    }
}

/// `BITOP AND|OR|XOR|NOT destkey srckey [srckey ...]`
fn bitop(ctx: &mut Ctx, args: Args) {
    let op = match parse_bitop(&args) {
        Ok(op) => op,
        Err(m) => return ctx.out.error(m),
    };
    let now = ctx.now_ms;
    let mut owned: Vec<Option<Vec<u8>>> = Vec::with_capacity(args.len() - 3);
    for i in 3..args.len() {
        match source_bytes(lookup_read(ctx.shard, ctx.db, args.get(i), now).map(|e| e.value())) {
            Ok(v) => owned.push(v),
            Err(()) => return ctx.out.error(WRONGTYPE),
        }
    }
    let srcs: Vec<&[u8]> = owned.iter().map(|o| o.as_deref().unwrap_or(&[])).collect();
    let res = compute_bitop(op, &srcs);
    let db = ctx.db;
    let n = store_bitop(ctx.shard, db, args.get(2), res, now);
    ctx.out.int(n);
}

/// Cross-shard BITOP: under the key locks, copies the sources, computes here, stores on
/// the destination's shard.
fn bitop_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let mut buf = Vec::new();
        let op = match parse_bitop(&a) {
            Ok(op) => op,
            Err(m) => {
                ctx.writer(&mut buf).error(m);
                return buf;
            }
        };
        let db = ctx.client.db;
        let all: Vec<&[u8]> = (2..a.len()).map(|i| a.get(i)).collect();
        let groups = ctx.shards.group_keys(db, all.iter().copied());
        let (_, work) = cross_setup(&ctx, db, &all[1..]);
        ctx.lock(&groups).await;
        let per_shard = ctx
            .shards
            .run_on_each(work, move |d, items: Vec<(usize, Vec<u8>)>| {
                let now = now_ms();
                items
                    .into_iter()
                    .map(|(i, k)| {
                        (
                            i,
                            source_bytes(lookup_read(d, db, &k, now).map(|e| e.value())),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .await;
        let mut owned: Vec<Option<Vec<u8>>> = vec![None; all.len() - 1];
        let mut wrong = false;
        for (i, r) in per_shard.into_iter().flatten() {
            match r {
                Ok(v) => owned[i] = v,
                Err(()) => wrong = true,
            }
        }
        let reply = if wrong {
            Err(WRONGTYPE)
        } else {
            let srcs: Vec<&[u8]> = owned.iter().map(|o| o.as_deref().unwrap_or(&[])).collect();
            let res = compute_bitop(op, &srcs);
            let dst = a.get(2).to_vec();
            Ok(ctx
                .shards
                .run_on(ctx.shards.owner(&dst), move |d| {
                    store_bitop(d, db, &dst, res, now_ms())
                })
                .await)
        };
        ctx.unlock(&groups).await;
        let mut out = ctx.writer(&mut buf);
        match reply {
            Ok(n) => out.int(n),
            Err(m) => out.error(m),
        }
        buf
    })
}

// ---------------------------------------------------------------------------------------
// BITFIELD
// ---------------------------------------------------------------------------------------

/// Overflow behaviour of BITFIELD SET/INCRBY.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// A BITFIELD operation kind.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldOp {
    Get,
    Set,
    Incr,
}

/// One parsed BITFIELD operation.
#[derive(Clone, Copy)]
struct Field {
    op: FieldOp,
    offset: u64,
    value: i64,
    overflow: Overflow,
    bits: u32,
    signed: bool,
}

/// Parses `i<n>` / `u<n>`.
fn parse_type(arg: &[u8]) -> Result<(bool, u32), &'static [u8]> {
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(BAD_TYPE),
    };
    let bits = parse_int(&arg[1..]).ok_or(BAD_TYPE)?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(BAD_TYPE);
    }
    Ok((signed, bits as u32))
}

/// Reads `bits` bits at bit `offset` of `p` (missing bytes read as zero), MSB first.
pub fn get_unsigned(p: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for j in 0..bits as u64 {
        let o = offset + j;
        let b = p.get((o >> 3) as usize).copied().unwrap_or(0);
        v = (v << 1) | ((b >> (7 - (o & 7))) & 1) as u64;
    }
    v
}

/// Reads a two's-complement field.
pub fn get_signed(p: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_unsigned(p, offset, bits) as i64;
    if bits < 64 && v & (1i64 << (bits - 1)) != 0 {
        v | (-1i64 << bits)
    } else {
        v
    }
}

/// Writes the low `bits` bits of `value` at bit `offset` (the buffer must be long
/// enough).
pub fn set_field(p: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..bits as u64 {
        let bit = (value >> (bits as u64 - 1 - j)) & 1;
        let o = offset + j;
        let byte = (o >> 3) as usize;
        let m = 1u8 << (7 - (o & 7));
        if bit == 1 {
            p[byte] |= m;
        } else {
            p[byte] &= !m;
        }
    }
}

/// Redis's unsigned overflow check: `Some(value to store)` unless FAIL overflowed (then
/// `None`); the flag says whether it overflowed.
fn unsigned_apply(value: u64, incr: i64, bits: u32, ow: Overflow) -> (bool, u64) {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = (value as i64).wrapping_neg();
    let wrap = || value.wrapping_add(incr as u64) & max;
    if value > max || (incr > 0 && incr > maxincr) {
        match ow {
            Overflow::Wrap => (true, wrap()),
            Overflow::Sat => (true, max),
            Overflow::Fail => (true, 0),
        }
    } else if incr < 0 && incr < minincr {
        match ow {
            Overflow::Wrap => (true, wrap()),
            Overflow::Sat => (true, 0),
            Overflow::Fail => (true, 0),
        }
    } else {
        (false, value.wrapping_add(incr as u64))
    }
}

/// Redis's signed overflow check (with its wrapping arithmetic).
fn signed_apply(value: i64, incr: i64, bits: u32, ow: Overflow) -> (bool, i64) {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        match ow {
            Overflow::Wrap => (true, wrap()),
            Overflow::Sat => (true, max),
            Overflow::Fail => (true, 0),
        }
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        match ow {
            Overflow::Wrap => (true, wrap()),
            Overflow::Sat => (true, min),
            Overflow::Fail => (true, 0),
        }
    } else {
        (false, value.wrapping_add(incr))
    }
}

/// Parses BITFIELD's operations in Redis's order.
fn parse_fields(args: &Args, max_bulk: u64) -> Result<Vec<Field>, &'static [u8]> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < args.len() {
        let rem = args.len() - j - 1;
        let sub = args.get(j);
        let op = if eq_ic(sub, "get") && rem >= 2 {
            FieldOp::Get
        } else if eq_ic(sub, "set") && rem >= 3 {
            FieldOp::Set
        } else if eq_ic(sub, "incrby") && rem >= 3 {
            FieldOp::Incr
        } else if eq_ic(sub, "overflow") && rem >= 1 {
            let t = args.get(j + 1);
            overflow = if eq_ic(t, "wrap") {
                Overflow::Wrap
            } else if eq_ic(t, "sat") {
                Overflow::Sat
            } else if eq_ic(t, "fail") {
                Overflow::Fail
            } else {
                return Err(b"ERR Invalid OVERFLOW type specified");
            };
            j += 2;
            continue;
        } else {
            return Err(SYNTAX_ERR);
        };
        let (signed, bits) = parse_type(args.get(j + 1))?;
        let offset = parse_offset(args.get(j + 2), bits as u64, max_bulk)?;
        let mut value = 0;
        if op != FieldOp::Get {
            value = parse_int(args.get(j + 3)).ok_or(NOT_INT)?;
        }
        ops.push(Field {
            op,
            offset,
            value,
            overflow,
            bits,
            signed,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    Ok(ops)
}

/// Replies to the GET operations of a read-only BITFIELD against `s` (`None` = missing).
fn reply_gets(out: &mut crate::protocol::reply::ReplyWriter, ops: &[Field], s: &[u8]) {
    out.array(ops.len());
    for f in ops {
        if f.signed {
            out.int(get_signed(s, f.offset, f.bits));
        } else {
            out.int(get_unsigned(s, f.offset, f.bits) as i64);
        }
    }
}

/// BITFIELD and BITFIELD_RO.
fn bitfield_generic(ctx: &mut Ctx, args: Args, ro: bool) {
    let max = ctx.shard.config.proto_max_bulk_len;
    let ops = match parse_fields(&args, max) {
        Ok(o) => o,
        Err(m) => return ctx.out.error(m),
    };
    let key = args.get(1);
    let now = ctx.now_ms;
    let readonly = ops.iter().all(|f| f.op == FieldOp::Get);
    if readonly {
        let Some(e) = lookup_read(ctx.shard, ctx.db, key, now) else {
            return reply_gets(&mut ctx.out, &ops, &[]);
        };
        let out = &mut ctx.out;
        if e.value().with_str(|s| reply_gets(out, &ops, s)).is_none() {
            ctx.out.error(WRONGTYPE);
        }
        return;
    }
    if ro {
        return ctx
            .out
            .error(b"ERR BITFIELD_RO only supports the GET subcommand");
    }
    let highest = ops
        .iter()
        .filter(|f| f.op != FieldOp::Get)
        .map(|f| f.offset + f.bits as u64 - 1)
        .max()
        .unwrap_or(0);
    let (db, out) = split(ctx);
    let (buf, dirty) = match string_for_write(db, key, highest, now) {
        Ok(x) => x,
        Err(m) => return out.error(m),
    };
    let mut changes = 0;
    out.array(ops.len());
    for f in &ops {
        match f.op {
            FieldOp::Get => {
                if f.signed {
                    out.int(get_signed(buf, f.offset, f.bits));
                } else {
                    out.int(get_unsigned(buf, f.offset, f.bits) as i64);
                }
            }
            FieldOp::Set | FieldOp::Incr => {
                if f.signed {
                    let old = get_signed(buf, f.offset, f.bits);
                    let (overflowed, new, ret) = if f.op == FieldOp::Incr {
                        let (o, n) = signed_apply(old, f.value, f.bits, f.overflow);
                        (o, n, n)
                    } else {
                        let (o, n) = signed_apply(f.value, 0, f.bits, f.overflow);
                        (o, n, old)
                    };
                    if overflowed && f.overflow == Overflow::Fail {
                        out.null();
                    } else {
                        out.int(ret);
                        set_field(buf, f.offset, f.bits, new as u64);
                        if dirty || old != new {
                            changes += 1;
                        }
                    }
                } else {
                    let old = get_unsigned(buf, f.offset, f.bits);
                    let (overflowed, new, ret) = if f.op == FieldOp::Incr {
                        let (o, n) = unsigned_apply(old, f.value, f.bits, f.overflow);
                        (o, n, n)
                    } else {
                        let (o, n) = unsigned_apply(f.value as u64, 0, f.bits, f.overflow);
                        (o, n, old)
                    };
                    if overflowed && f.overflow == Overflow::Fail {
                        out.null();
                    } else {
                        out.int(ret as i64);
                        set_field(buf, f.offset, f.bits, new);
                        if dirty || old != new {
                            changes += 1;
                        }
                    }
                }
            }
        }
    }
    if changes > 0 {
        ctx.modified(key, b'$', "setbit");
    }
}

/// `BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset incr]
/// [OVERFLOW WRAP|SAT|FAIL] ...`
fn bitfield(ctx: &mut Ctx, args: Args) {
    bitfield_generic(ctx, args, false);
}

/// `BITFIELD_RO key [GET type offset ...]`
fn bitfield_ro(ctx: &mut Ctx, args: Args) {
    bitfield_generic(ctx, args, true);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_bit(s: &[u8], i: u64) -> bool {
        s[(i >> 3) as usize] & (0x80 >> (i & 7)) != 0
    }

    #[test]
    fn find_and_count_match_a_naive_scan() {
        let mut seed = 12345u64;
        for len in [1usize, 2, 7, 8, 9, 17, 40] {
            for round in 0..50 {
                let s: Vec<u8> = (0..len)
                    .map(|i| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        match round % 3 {
                            0 => (seed >> 56) as u8,
                            1 => {
                                if i == len / 2 {
                                    0xfe
                                } else {
                                    0xff
                                }
                            }
                            _ => {
                                if i == len - 1 {
                                    1
                                } else {
                                    0
                                }
                            }
                        }
                    })
                    .collect();
                let bits = len as u64 * 8;
                for from in 0..bits.min(20) {
                    for to in (from..bits).step_by(3) {
                        let ones = (from..=to).filter(|&i| naive_bit(&s, i)).count() as u64;
                        assert_eq!(count_bits(&s, from, to), ones);
                        for bit in [false, true] {
                            let want = (from..=to).find(|&i| naive_bit(&s, i) == bit);
                            assert_eq!(find_bit(&s, bit, from, to), want);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn fields_round_trip() {
        let mut buf = vec![0u8; 16];
        for bits in 1..=64u32 {
            let v: u64 = 0xdead_beef_cafe_f00d
                & if bits == 64 {
                    u64::MAX
                } else {
                    (1 << bits) - 1
                };
            set_field(&mut buf, 5, bits, v);
            assert_eq!(get_unsigned(&buf, 5, bits), v);
        }
        set_field(&mut buf, 3, 8, (-3i64) as u64);
        assert_eq!(get_signed(&buf, 3, 8), -3);
    }
}
