//! Sorted set commands: ZADD/ZINCRBY, ZREM, ZCARD, ZCOUNT, ZLEXCOUNT, ZSCORE, ZMSCORE,
//! ZRANK/ZREVRANK, the ZRANGE family (ZRANGE, ZRANGESTORE, ZREVRANGE, ZRANGEBYSCORE,
//! ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX), ZREMRANGEBYRANK/SCORE/LEX,
//! ZPOPMIN/ZPOPMAX, ZMPOP, ZRANDMEMBER, the set operations (ZUNION, ZINTER, ZDIFF,
//! ZINTERCARD, ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE) and ZSCAN.
//!
//! Behaviour, reply types and error texts follow Redis 7.0 (`t_zset.c`): the order in
//! which arguments, types and options are checked, keyspace events, the RESP3 forms
//! (doubles, nested member/score pairs), the encoding a set ends in (see
//! [`crate::storage::zset`]), and that a set whose last element goes is deleted.
//!
//! The multi-key commands (set operations, ZRANGESTORE, ZMPOP) share their logic between
//! the single-shard handler and a `cross` coordinator: inputs are read with
//! [`read_input`] on the shards owning them, combined on the coordinator, and a *STORE
//! result is written by [`store_result`] on the destination's shard, all under the key
//! locks, so the *STORE forms are atomic.
//!
//! The blocking BZPOPMIN/BZPOPMAX/BZMPOP are not registered here.

use crate::commands::keys::{cross_setup, lookup_read, parse_cursor};
use crate::commands::{
    eq_ic, flags, parse_int, AsyncCtx, CommandSpec, Ctx, Handler, ReplyFuture, NOT_FLOAT, NOT_INT,
    SYNTAX_ERR, WRONGTYPE,
};
use crate::protocol::parse::{Args, OwnedArgs};
use crate::protocol::reply::{format_double_g17, parse_double, ReplyWriter};
use crate::shard::{now_ms, ShardData};
use crate::storage::zset::{d2string, Limits, ZSet};
use crate::storage::Value;
use rand::Rng;
use std::collections::HashMap;

/// A keyed command spec with no coordinator.
const fn keyed(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    acl: &'static str,
    run: crate::commands::KeyedFn,
) -> CommandSpec {
    CommandSpec::new(
        name,
        arity,
        flags,
        keys,
        acl,
        Handler::Keyed { run, cross: None },
    )
}

/// A keyed command spec with a cross-shard coordinator.
const fn multi(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    acl: &'static str,
    run: crate::commands::KeyedFn,
    cross: crate::commands::AsyncFn,
) -> CommandSpec {
    CommandSpec::new(
        name,
        arity,
        flags,
        keys,
        acl,
        Handler::Keyed {
            run,
            cross: Some(cross),
        },
    )
}

const W: u32 = flags::WRITE;
const R: u32 = flags::READONLY;
const D: u32 = flags::DENYOOM;
const F: u32 = flags::FAST;
const RF: &str = "@read @sortedset @fast";
const RS: &str = "@read @sortedset @slow";
const WF: &str = "@write @sortedset @fast";
const WS: &str = "@write @sortedset @slow";

/// The sorted set commands, as Redis 7.0's COMMAND INFO describes them.
pub static COMMANDS: &[CommandSpec] = &[
    keyed("zadd", -4, W | D | F, (1, 1, 1), WF, zadd),
    keyed("zincrby", 4, W | D | F, (1, 1, 1), WF, zincrby),
    keyed("zrem", -3, W | F, (1, 1, 1), WF, zrem),
    keyed("zcard", 2, R | F, (1, 1, 1), RF, zcard),
    keyed("zcount", 4, R | F, (1, 1, 1), RF, zcount),
    keyed("zlexcount", 4, R | F, (1, 1, 1), RF, zlexcount),
    keyed("zscore", 3, R | F, (1, 1, 1), RF, zscore),
    keyed("zmscore", -3, R | F, (1, 1, 1), RF, zmscore),
    keyed("zrank", 3, R | F, (1, 1, 1), RF, zrank),
    keyed("zrevrank", 3, R | F, (1, 1, 1), RF, zrevrank),
    keyed("zrange", -4, R, (1, 1, 1), RS, zrange),
    multi(
        "zrangestore",
        -5,
        W | D,
        (1, 2, 1),
        WS,
        zrangestore,
        zrangestore_cross,
    ),
    keyed("zrevrange", -4, R, (1, 1, 1), RS, zrevrange),
    keyed("zrangebyscore", -4, R, (1, 1, 1), RS, zrangebyscore),
    keyed("zrevrangebyscore", -4, R, (1, 1, 1), RS, zrevrangebyscore),
    keyed("zrangebylex", -4, R, (1, 1, 1), RS, zrangebylex),
    keyed("zrevrangebylex", -4, R, (1, 1, 1), RS, zrevrangebylex),
    keyed("zremrangebyrank", 4, W, (1, 1, 1), WS, zremrangebyrank),
    keyed("zremrangebyscore", 4, W, (1, 1, 1), WS, zremrangebyscore),
    keyed("zremrangebylex", 4, W, (1, 1, 1), WS, zremrangebylex),
    keyed("zpopmin", -2, W | F, (1, 1, 1), WF, zpopmin),
    keyed("zpopmax", -2, W | F, (1, 1, 1), WF, zpopmax),
    multi("zmpop", -4, W, (0, 0, 0), WS, zmpop, zmpop_cross).with_numkeys(1),
    keyed("zrandmember", -2, R, (1, 1, 1), RS, zrandmember),
    multi("zunion", -3, R, (0, 0, 0), RS, zunion, zunion_cross).with_numkeys(1),
    multi("zinter", -3, R, (0, 0, 0), RS, zinter, zinter_cross).with_numkeys(1),
    multi("zdiff", -3, R, (0, 0, 0), RS, zdiff, zdiff_cross).with_numkeys(1),
    multi(
        "zintercard",
        -3,
        R,
        (0, 0, 0),
        RS,
        zintercard,
        zintercard_cross,
    )
    .with_numkeys(1),
    multi(
        "zunionstore",
        -4,
        W | D,
        (1, 1, 1),
        WS,
        zunionstore,
        zunionstore_cross,
    )
    .with_numkeys(2),
    multi(
        "zinterstore",
        -4,
        W | D,
        (1, 1, 1),
        WS,
        zinterstore,
        zinterstore_cross,
    )
    .with_numkeys(2),
    multi(
        "zdiffstore",
        -4,
        W | D,
        (1, 1, 1),
        WS,
        zdiffstore,
        zdiffstore_cross,
    )
    .with_numkeys(2),
    keyed("zscan", -3, R, (1, 1, 1), RS, zscan),
    CommandSpec::new(
        "bzpopmin",
        -3,
        W | flags::NOSCRIPT | F | flags::BLOCKING,
        (1, -2, 1),
        "@write @sortedset @fast @blocking",
        Handler::Async(bzpopmin),
    ),
    CommandSpec::new(
        "bzpopmax",
        -3,
        W | flags::NOSCRIPT | F | flags::BLOCKING,
        (1, -2, 1),
        "@write @sortedset @fast @blocking",
        Handler::Async(bzpopmax),
    ),
    CommandSpec::new(
        "bzmpop",
        -5,
        W | flags::BLOCKING | flags::MOVABLEKEYS,
        (0, 0, 0),
        "@write @sortedset @slow @blocking",
        Handler::Async(bzmpop),
    )
    .with_numkeys(2),
];

/// ZADD/ZINCRBY producing NaN.
const NAN_ERR: &[u8] = b"ERR resulting score is not a number (NaN)";
/// A score range bound that is not a float.
const RANGE_NOT_FLOAT: &[u8] = b"ERR min or max is not a float";
/// A lex range bound that is not `-`, `+`, `(x` or `[x`.
const LEX_ERR: &[u8] = b"ERR min or max not valid string range item";
/// getPositiveLongFromObjectOrReply's default message.
const NOT_POSITIVE: &[u8] = b"ERR value is out of range, must be positive";

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// The conversion thresholds as this shard's configuration has them
/// (`zset-max-listpack-entries`, `zset-max-listpack-value`; CONFIG SET changes them).
pub fn limits(shard: &ShardData) -> Limits {
    let get = |name: &str, default: usize| shard.config_usize(name, default);
    let d = Limits::default();
    Limits {
        max_entries: get("zset-max-listpack-entries", d.max_entries),
        max_value: get("zset-max-listpack-value", d.max_value),
    }
}

/// What a read lookup of a zset found.
type Found<'a> = crate::commands::keys::Found<'a, ZSet>;

/// Looks `key` up for reading like Redis's `lookupKeyRead` (counts a keyspace hit or
/// miss, stamps the access time).
#[inline]
fn read_zset<'s, 'a>(ctx: &'s mut Ctx<'a>, key: &[u8]) -> (Found<'s>, &'s mut ReplyWriter<'a>) {
    crate::commands::keys::read_typed(ctx, key, crate::storage::Entry::as_zset)
}

/// Writes a member and, with `with_score`, its score: as a 2-element array in RESP3,
/// flat in RESP2 (Redis 7's ZRANGE ... WITHSCORES and friends).
#[inline]
fn pair_reply(out: &mut ReplyWriter, m: &[u8], s: f64, with_score: bool) {
    if with_score && out.resp3 {
        out.array(2);
    }
    out.bulk(m);
    if with_score {
        out.double(s);
    }
}

/// Array header for `n` members, with scores or not.
#[inline]
fn pairs_header(out: &mut ReplyWriter, n: usize, with_score: bool) {
    out.array(if with_score && !out.resp3 { n * 2 } else { n });
}

/// Writes `items` as a ZRANGE-style reply.
fn pairs_reply<'a>(
    out: &mut ReplyWriter,
    items: impl ExactSizeIterator<Item = (&'a [u8], f64)>,
    with_score: bool,
) {
    pairs_header(out, items.len(), with_score);
    for (m, s) in items {
        pair_reply(out, m, s, with_score);
    }
}

/// Parses a number as C `strtod` does for Redis's range bounds: leading white space is
/// skipped, the whole (NUL-terminated) rest must be a decimal float or `inf`/`infinity`;
/// an empty string is 0; overflow gives ±inf; NaN is refused. (Hexadecimal floats are
/// not accepted.)
pub fn strtod_full(s: &[u8]) -> Option<f64> {
    let s = match s.iter().position(|&c| c == 0) {
        Some(p) => &s[..p],
        None => s,
    };
    if s.is_empty() {
        return Some(0.0);
    }
    let t = {
        let ws = s
            .iter()
            .take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
            .count();
        &s[ws..]
    };
    let (neg, body) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
        let v = parse_hex_float(&body[2..])?;
        return Some(if neg { -v } else { v });
    }
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    // [digits][.digits] with at least one digit, then an optional complete exponent.
    let mut i = 0;
    let int_digits = body.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if body.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = body[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if matches!(body.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(body.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp_digits = body[j.min(body.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if exp_digits > 0 {
            i = j + exp_digits;
        }
    }
    if i != body.len() {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?;
    let v: f64 = text.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// The part of a C99 hexadecimal float after `0x`: hex digits with an optional point,
/// then an optional binary exponent `p[+-]digits`. `None` when malformed.
fn parse_hex_float(s: &[u8]) -> Option<f64> {
    let mut mant: u128 = 0;
    let mut exp: i64 = 0;
    let mut digits = 0;
    let mut i = 0;
    let mut seen_point = false;
    while i < s.len() {
        let c = s[i];
        if c == b'.' && !seen_point {
            seen_point = true;
        } else if let Some(d) = (c as char).to_digit(16) {
            digits += 1;
            if mant >> 120 == 0 {
                mant = mant * 16 + d as u128;
                if seen_point {
                    exp -= 4;
                }
            } else if !seen_point {
                exp += 4;
            }
        } else {
            break;
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if i < s.len() && (s[i] | 0x20) == b'p' {
        let rest = &s[i + 1..];
        let (sign, sign_len) = match rest.first() {
            Some(b'-') => (-1i64, 1),
            Some(b'+') => (1, 1),
            _ => (1, 0),
        };
        let rest = &rest[sign_len..];
        let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if n > 0 {
            let mut e: i64 = 0;
            for &c in &rest[..n] {
                e = (e * 10 + (c - b'0') as i64).min(1 << 20);
            }
            exp += sign * e;
            i += 1 + sign_len + n;
        }
    }
    if i != s.len() {
        return None;
    }
    // One rounding (u128 -> f64), then an exact scaling by a power of two (except
    // where the result is subnormal).
    let mut v = mant as f64;
    let mut e = exp.clamp(-2200, 2200) as i32;
    while e > 0 {
        let step = e.min(1000);
        v *= 2f64.powi(step);
        e -= step;
    }
    while e < 0 {
        let step = (-e).min(1000);
        v /= 2f64.powi(step);
        e += step;
    }
    Some(v)
}

/// Parses a score, increment or weight like Redis's `getDoubleFromObject` (`strtod`
/// on the whole string: no leading space, no overflow to infinity, no underflow to 0,
/// no NaN), including C99 hexadecimal floats.
pub fn parse_score(s: &[u8]) -> Option<f64> {
    if let Some(v) = parse_double(s) {
        return Some(v);
    }
    let body = s.strip_prefix(b"+").or(s.strip_prefix(b"-")).unwrap_or(s);
    if body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' && !s.contains(&0) {
        let v = parse_hex_float(&body[2..])?;
        let zero_mantissa = body[2..]
            .iter()
            .take_while(|c| **c != b'p' && **c != b'P')
            .all(|c| matches!(c, b'0' | b'.'));
        if v.is_infinite() || (v == 0.0 && !zero_mantissa) {
            return None;
        }
        return Some(if s[0] == b'-' { -v } else { v });
    }
    None
}

/// A score range (`zrangespec`).
#[derive(Clone, Copy, Debug)]
pub struct ScoreRange {
    min: f64,
    minex: bool,
    max: f64,
    maxex: bool,
}

impl ScoreRange {
    /// Redis's `zslParseRange`: `(` makes a bound exclusive.
    pub fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        let item = |s: &[u8]| -> Option<(f64, bool)> {
            match s.split_first() {
                Some((b'(', rest)) => Some((strtod_full(rest)?, true)),
                _ => Some((strtod_full(s)?, false)),
            }
        };
        let (min, minex) = item(min)?;
        let (max, maxex) = item(max)?;
        Some(ScoreRange {
            min,
            minex,
            max,
            maxex,
        })
    }

    /// The ascending ranks `lo..hi` of the elements in range.
    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        let (min, max) = (self.min, self.max);
        let lo = if self.minex {
            z.count_prefix(|s, _| s <= min)
        } else {
            z.count_prefix(|s, _| s < min)
        };
        let hi = if self.maxex {
            z.count_prefix(|s, _| s < max)
        } else {
            z.count_prefix(|s, _| s <= max)
        };
        (lo, hi.max(lo))
    }
}

/// One bound of a lex range.
#[derive(Clone, Debug)]
enum LexBound {
    /// `-`
    Min,
    /// `+`
    Max,
    /// `[x` (inclusive) or `(x` (exclusive).
    Value(Vec<u8>, bool),
}

/// A lex range (`zlexrangespec`).
#[derive(Clone, Debug)]
pub struct LexRange {
    min: LexBound,
    max: LexBound,
}

impl LexRange {
    /// Redis's `zslParseLexRange`.
    pub fn parse(min: &[u8], max: &[u8]) -> Option<LexRange> {
        let item = |s: &[u8]| -> Option<LexBound> {
            match s.split_first()? {
                (b'+', []) => Some(LexBound::Max),
                (b'-', []) => Some(LexBound::Min),
                (b'(', rest) => Some(LexBound::Value(rest.to_vec(), true)),
                (b'[', rest) => Some(LexBound::Value(rest.to_vec(), false)),
                _ => None,
            }
        };
        Some(LexRange {
            min: item(min)?,
            max: item(max)?,
        })
    }

    /// The ascending ranks `lo..hi` of the elements in range (members are assumed to be
    /// in lex order, i.e. all scores equal, as Redis assumes).
    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        let lo = match &self.min {
            LexBound::Min => 0,
            LexBound::Max => z.len(),
            LexBound::Value(v, true) => z.count_prefix(|_, m| m <= &v[..]),
            LexBound::Value(v, false) => z.count_prefix(|_, m| m < &v[..]),
        };
        let hi = match &self.max {
            LexBound::Min => 0,
            LexBound::Max => z.len(),
            LexBound::Value(v, true) => z.count_prefix(|_, m| m < &v[..]),
            LexBound::Value(v, false) => z.count_prefix(|_, m| m <= &v[..]),
        };
        (lo, hi.max(lo))
    }
}

/// Deletes `key` when its set became empty (with the `del` event).
fn delete_if_empty(ctx: &mut Ctx, key: &[u8]) -> bool {
    let now = ctx.now_ms;
    let empty = ctx
        .db()
        .lookup(key, now)
        .and_then(|e| e.as_zset())
        .is_some_and(|z| z.is_empty());
    if empty {
        ctx.db().remove(key, now);
    }
    empty
}

// ---------------------------------------------------------------------------------------
// ZADD / ZINCRBY
// ---------------------------------------------------------------------------------------

/// Redis's `zaddGenericCommand`, for ZADD and ZINCRBY (`incr` preset).
fn zadd_generic(ctx: &mut Ctx, args: Args, mut incr: bool) {
    let (mut nx, mut xx, mut gt, mut lt, mut ch) = (false, false, false, false, false);
    let mut idx = 2;
    while idx < args.len() {
        let o = args.get(idx);
        if eq_ic(o, "nx") {
            nx = true;
        } else if eq_ic(o, "xx") {
            xx = true;
        } else if eq_ic(o, "ch") {
            ch = true;
        } else if eq_ic(o, "incr") {
            incr = true;
        } else if eq_ic(o, "gt") {
            gt = true;
        } else if eq_ic(o, "lt") {
            lt = true;
        } else {
            break;
        }
        idx += 1;
    }
    let elements = args.len() - idx;
    if elements % 2 == 1 || elements == 0 {
        return ctx.out.error(SYNTAX_ERR);
    }
    let elements = elements / 2;
    if nx && xx {
        return ctx
            .out
            .error(b"ERR XX and NX options at the same time are not compatible");
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return ctx
            .out
            .error(b"ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if incr && elements > 1 {
        return ctx
            .out
            .error(b"ERR INCR option supports a single increment-element pair");
    }
    let mut scores = Vec::with_capacity(elements);
    for j in 0..elements {
        match parse_score(args.get(idx + j * 2)) {
            Some(s) => scores.push(s),
            None => return ctx.out.error(NOT_FLOAT),
        }
    }
    let lim = limits(ctx.shard);
    let key = args.get(1);
    let now = ctx.now_ms;
    let db = &mut ctx.shard.dbs[ctx.db];
    match db.lookup(key, now) {
        Some(e) if e.as_zset().is_none() => return ctx.out.error(WRONGTYPE),
        Some(_) => {}
        None if xx => {
            return if incr { ctx.out.null() } else { ctx.out.int(0) };
        }
        None => db.set(key, Value::from_zset(ZSet::new()), 0),
    }
    let Some(z) = db.lookup(key, now).and_then(|e| e.as_zset_mut()) else {
        return ctx.out.error(WRONGTYPE);
    };
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut last = 0.0;
    let mut nan = false;
    for (j, &score) in scores.iter().enumerate() {
        let member = args.get(idx + 1 + j * 2);
        match z.score(member) {
            Some(cur) => {
                if nx {
                    continue;
                }
                let mut s = score;
                if incr {
                    s += cur;
                    if s.is_nan() {
                        nan = true;
                        break;
                    }
                }
                if (lt && s >= cur) || (gt && s <= cur) {
                    continue;
                }
                #[allow(clippy::float_cmp)]
                if s != cur {
                    z.set_score(member, s);
                    updated += 1;
                }
                processed += 1;
                last = s;
            }
            None if xx => {}
            None => {
                z.insert(member, score, lim);
                added += 1;
                processed += 1;
                last = score;
            }
        }
    }
    delete_if_empty(ctx, key);
    if added > 0 || updated > 0 {
        ctx.modified(key, b'z', if incr { "zincr" } else { "zadd" });
    }
    if nan {
        ctx.out.error(NAN_ERR);
    } else if incr {
        if processed > 0 {
            ctx.out.double(last);
        } else {
            ctx.out.null();
        }
    } else {
        ctx.out.int(if ch { added + updated } else { added });
    }
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`
fn zadd(ctx: &mut Ctx, args: Args) {
    zadd_generic(ctx, args, false);
}

/// `ZINCRBY key increment member`
fn zincrby(ctx: &mut Ctx, args: Args) {
    zadd_generic(ctx, args, true);
}

// ---------------------------------------------------------------------------------------
// ZREM / ZCARD / ZSCORE / ZMSCORE / ZRANK / ZCOUNT / ZLEXCOUNT
// ---------------------------------------------------------------------------------------

/// `ZREM key member [member ...]`
fn zrem(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let now = ctx.now_ms;
    let Some(e) = ctx.db().lookup(key, now) else {
        return ctx.out.int(0);
    };
    let Some(z) = e.as_zset_mut() else {
        return ctx.out.error(WRONGTYPE);
    };
    let mut deleted = 0;
    for i in 2..args.len() {
        if z.remove(args.get(i)).is_some() {
            deleted += 1;
        }
        if z.is_empty() {
            break;
        }
    }
    if deleted > 0 {
        let removed = delete_if_empty(ctx, key);
        ctx.modified(key, b'z', "zrem");
        if removed {
            ctx.modified(key, b'g', "del");
        }
    }
    ctx.out.int(deleted);
}

/// `ZCARD key`
fn zcard(ctx: &mut Ctx, args: Args) {
    match read_zset(ctx, args.get(1)) {
        (Found::Missing, out) => out.int(0),
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Is(z), out) => out.int(z.len() as i64),
    }
}

/// `ZSCORE key member`
fn zscore(ctx: &mut Ctx, args: Args) {
    match read_zset(ctx, args.get(1)) {
        (Found::Missing, out) => out.null(),
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Is(z), out) => match z.score(args.get(2)) {
            Some(s) => out.double(s),
            None => out.null(),
        },
    }
}

/// `ZMSCORE key member [member ...]`
fn zmscore(ctx: &mut Ctx, args: Args) {
    let (found, out) = read_zset(ctx, args.get(1));
    let z = match found {
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Missing => None,
        Found::Is(z) => Some(z),
    };
    out.array(args.len() - 2);
    for i in 2..args.len() {
        match z.and_then(|z| z.score(args.get(i))) {
            Some(s) => out.double(s),
            None => out.null(),
        }
    }
}

/// Redis's `zrankGenericCommand`.
fn zrank_generic(ctx: &mut Ctx, args: Args, rev: bool) {
    match read_zset(ctx, args.get(1)) {
        (Found::Missing, out) => out.null(),
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Is(z), out) => match z.rank(args.get(2)) {
            Some(r) if rev => out.int((z.len() - 1 - r) as i64),
            Some(r) => out.int(r as i64),
            None => out.null(),
        },
    }
}

/// `ZRANK key member`
fn zrank(ctx: &mut Ctx, args: Args) {
    zrank_generic(ctx, args, false);
}

/// `ZREVRANK key member`
fn zrevrank(ctx: &mut Ctx, args: Args) {
    zrank_generic(ctx, args, true);
}

/// `ZCOUNT key min max`
fn zcount(ctx: &mut Ctx, args: Args) {
    let Some(range) = ScoreRange::parse(args.get(2), args.get(3)) else {
        return ctx.out.error(RANGE_NOT_FLOAT);
    };
    match read_zset(ctx, args.get(1)) {
        (Found::Missing, out) => out.int(0),
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Is(z), out) => {
            let (lo, hi) = range.ranks(z);
            out.int((hi - lo) as i64)
        }
    }
}

/// `ZLEXCOUNT key min max`
fn zlexcount(ctx: &mut Ctx, args: Args) {
    let Some(range) = LexRange::parse(args.get(2), args.get(3)) else {
        return ctx.out.error(LEX_ERR);
    };
    match read_zset(ctx, args.get(1)) {
        (Found::Missing, out) => out.int(0),
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Is(z), out) => {
            let (lo, hi) = range.ranks(z);
            out.int((hi - lo) as i64)
        }
    }
}

// ---------------------------------------------------------------------------------------
// The ZRANGE family
// ---------------------------------------------------------------------------------------

/// What a ZRANGE-style command selects.
#[derive(Clone, Debug)]
pub enum RangeKind {
    /// By rank: start, stop (may be negative).
    Rank(i64, i64),
    /// By score.
    Score(ScoreRange),
    /// By member (lex).
    Lex(LexRange),
}

/// A parsed ZRANGE-style request.
#[derive(Clone, Debug)]
pub struct RangeSpec {
    /// The selection.
    pub kind: RangeKind,
    /// Descending order.
    pub rev: bool,
    /// WITHSCORES.
    pub withscores: bool,
    /// LIMIT offset.
    pub offset: i64,
    /// LIMIT count (-1 = none; any negative = no limit).
    pub limit: i64,
}

/// The range type a command fixes (ZRANGE and ZRANGESTORE take it from the options).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fixed {
    Auto,
    Rank,
    Score,
    Lex,
}

/// Redis's `zrangeGenericCommand` argument parsing (`src` is the source key's index).
fn parse_range(
    args: &Args,
    src: usize,
    store: bool,
    fixed: Fixed,
    rev: Option<bool>,
) -> Result<RangeSpec, &'static [u8]> {
    let mut kind = fixed;
    let mut rev = rev;
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = src + 3;
    while j < args.len() {
        let a = args.get(j);
        let left = args.len() - j - 1;
        if !store && eq_ic(a, "withscores") {
            withscores = true;
        } else if eq_ic(a, "limit") && left >= 2 {
            offset = parse_int(args.get(j + 1)).ok_or(NOT_INT)?;
            limit = parse_int(args.get(j + 2)).ok_or(NOT_INT)?;
            j += 2;
        } else if rev.is_none() && eq_ic(a, "rev") {
            rev = Some(true);
        } else if kind == Fixed::Auto && eq_ic(a, "bylex") {
            kind = Fixed::Lex;
        } else if kind == Fixed::Auto && eq_ic(a, "byscore") {
            kind = Fixed::Score;
        } else {
            return Err(SYNTAX_ERR);
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if kind == Fixed::Auto {
        kind = Fixed::Rank;
    }
    if limit != -1 && kind == Fixed::Rank {
        return Err(
            b"ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    if withscores && kind == Fixed::Lex {
        return Err(b"ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    let (mut lo, mut hi) = (args.get(src + 1), args.get(src + 2));
    if rev && kind != Fixed::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let kind = match kind {
        Fixed::Score => RangeKind::Score(ScoreRange::parse(lo, hi).ok_or(RANGE_NOT_FLOAT)?),
        Fixed::Lex => RangeKind::Lex(LexRange::parse(lo, hi).ok_or(LEX_ERR)?),
        _ => RangeKind::Rank(parse_int(lo).ok_or(NOT_INT)?, parse_int(hi).ok_or(NOT_INT)?),
    };
    Ok(RangeSpec {
        kind,
        rev,
        withscores,
        offset,
        limit,
    })
}

/// Redis's rank sanitizing (ZRANGE, ZREMRANGEBYRANK): the ranks `start..=end` of a set
/// of `len` elements, or `None` when empty.
fn rank_window(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let mut start = if start < 0 { llen + start } else { start };
    let mut end = if end < 0 { llen + end } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return None;
    }
    if end >= llen {
        end = llen - 1;
    }
    Some((start as usize, end as usize))
}

/// The elements a range request selects, in reply order.
fn select<'z>(z: &'z ZSet, spec: &RangeSpec) -> Vec<(&'z [u8], f64)> {
    let len = z.len();
    let (lo, hi) = match &spec.kind {
        RangeKind::Rank(start, end) => {
            let Some((a, b)) = rank_window(*start, *end, len) else {
                return Vec::new();
            };
            let n = b - a + 1;
            return if spec.rev {
                z.iter_from(len - 1 - a, true).take(n).collect()
            } else {
                z.iter_from(a, false).take(n).collect()
            };
        }
        RangeKind::Score(r) => r.ranks(z),
        RangeKind::Lex(r) => r.ranks(z),
    };
    if spec.offset < 0 || (spec.offset > 0 && spec.offset as u64 >= len as u64) {
        return Vec::new();
    }
    let offset = spec.offset as usize;
    let avail = (hi - lo).saturating_sub(offset);
    let n = if spec.limit < 0 {
        avail
    } else {
        avail.min(spec.limit as usize)
    };
    if n == 0 {
        return Vec::new();
    }
    if spec.rev {
        z.iter_from(hi - 1 - offset, true).take(n).collect()
    } else {
        z.iter_from(lo + offset, false).take(n).collect()
    }
}

/// ZRANGE-family replies for a client.
fn range_reply(ctx: &mut Ctx, args: Args, fixed: Fixed, rev: Option<bool>) {
    let spec = match parse_range(&args, 1, false, fixed, rev) {
        Ok(s) => s,
        Err(e) => return ctx.out.error(e),
    };
    match read_zset(ctx, args.get(1)) {
        (Found::Missing, out) => out.array(0),
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Is(z), out) => {
            let items = select(z, &spec);
            pairs_reply(out, items.into_iter(), spec.withscores);
        }
    }
}

/// `ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`
fn zrange(ctx: &mut Ctx, args: Args) {
    range_reply(ctx, args, Fixed::Auto, None);
}

/// `ZREVRANGE key start stop [WITHSCORES]`
fn zrevrange(ctx: &mut Ctx, args: Args) {
    range_reply(ctx, args, Fixed::Rank, Some(true));
}

/// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]`
fn zrangebyscore(ctx: &mut Ctx, args: Args) {
    range_reply(ctx, args, Fixed::Score, Some(false));
}

/// `ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]`
fn zrevrangebyscore(ctx: &mut Ctx, args: Args) {
    range_reply(ctx, args, Fixed::Score, Some(true));
}

/// `ZRANGEBYLEX key min max [LIMIT offset count]`
fn zrangebylex(ctx: &mut Ctx, args: Args) {
    range_reply(ctx, args, Fixed::Lex, Some(false));
}

/// `ZREVRANGEBYLEX key max min [LIMIT offset count]`
fn zrevrangebylex(ctx: &mut Ctx, args: Args) {
    range_reply(ctx, args, Fixed::Lex, Some(true));
}

/// Owned (member, score) pairs, as they travel between shards.
pub type Pairs = Vec<(Vec<u8>, f64)>;

/// Reads the range `spec` of `key` on the shard owning it (ZRANGESTORE's source):
/// `Err` on a wrong type; a missing key is an empty range.
fn read_range(d: &mut ShardData, db: usize, key: &[u8], spec: &RangeSpec) -> Result<Pairs, ()> {
    match lookup_read(d, db, key, now_ms()) {
        None => Ok(Vec::new()),
        Some(e) => match e.as_zset() {
            Some(z) => Ok(select(z, spec)
                .into_iter()
                .map(|(m, s)| (m.to_vec(), s))
                .collect()),
            None => Err(()),
        },
    }
}

/// Writes a *STORE result as `key` on the shard owning it: the new set (in the encoding
/// its size calls for) with the `event`, or, for an empty result, deletes the key (with
/// `del` when it existed). Returns the stored size.
///
/// `incremental` is ZRANGESTORE's way of building: `Some(by_rank)` when the elements are
/// added one by one in reply order to a set that starts as a listpack (unless a rank
/// range is known to be too long), so the elements added before the conversion went
/// through the listpack, which turns `-0` into `0`. The set operations build a skiplist
/// and convert it whole (`None`).
pub fn store_result(
    d: &mut ShardData,
    db: usize,
    key: &[u8],
    mut pairs: Pairs,
    event: &'static str,
    incremental: Option<bool>,
) -> i64 {
    let now = now_ms();
    if pairs.is_empty() {
        if d.dbs[db].remove(key, now).is_some() {
            d.modified(db, key, b'g', "del");
        }
        return 0;
    }
    let lim = limits(d);
    if let Some(by_rank) = incremental {
        if !(by_rank && pairs.len() > lim.max_entries) {
            for (i, (m, s)) in pairs.iter_mut().enumerate() {
                if i + 1 > lim.max_entries || m.len() > lim.max_value {
                    break;
                }
                if *s == 0.0 {
                    *s = 0.0;
                }
            }
        }
    }
    let z = ZSet::from_pairs(pairs, lim);
    let n = z.len() as i64;
    d.dbs[db].set(key, Value::from_zset(z), 0);
    d.modified(db, key, b'z', event);
    n
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]`
fn zrangestore(ctx: &mut Ctx, args: Args) {
    let spec = match parse_range(&args, 2, true, Fixed::Auto, None) {
        Ok(s) => s,
        Err(e) => return ctx.out.error(e),
    };
    let db = ctx.db;
    let Ok(pairs) = read_range(ctx.shard, db, args.get(2), &spec) else {
        return ctx.out.error(WRONGTYPE);
    };
    let by_rank = matches!(spec.kind, RangeKind::Rank(..));
    let n = store_result(
        ctx.shard,
        db,
        args.get(1),
        pairs,
        "zrangestore",
        Some(by_rank),
    );
    ctx.out.int(n);
}

/// Replies with bytes built by `f` in the client's protocol.
fn reply_with(ctx: &AsyncCtx, f: impl FnOnce(&mut ReplyWriter)) -> Vec<u8> {
    let mut buf = Vec::new();
    f(&mut ctx.writer(&mut buf));
    buf
}

/// Cross-shard ZRANGESTORE: reads the range on the source's shard and stores it on the
/// destination's, under both keys' locks.
fn zrangestore_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let spec = match parse_range(&a, 2, true, Fixed::Auto, None) {
            Ok(s) => s,
            Err(e) => return reply_with(&ctx, |o| o.error(e)),
        };
        let db = ctx.client.db;
        let (dst, src) = (a.get(1).to_vec(), a.get(2).to_vec());
        let groups = ctx.shards.group_keys(db, [&dst[..], &src[..]]);
        ctx.lock(&groups).await;
        let k = src.clone();
        let by_rank = matches!(spec.kind, RangeKind::Rank(..));
        let read = ctx
            .shards
            .run_on(ctx.shards.owner(&src), move |d| {
                read_range(d, db, &k, &spec)
            })
            .await;
        let reply = match read {
            Err(()) => reply_with(&ctx, |o| o.error(WRONGTYPE)),
            Ok(pairs) => {
                let n = ctx
                    .shards
                    .run_on(ctx.shards.owner(&dst), move |d| {
                        store_result(d, db, &dst, pairs, "zrangestore", Some(by_rank))
                    })
                    .await;
                reply_with(&ctx, |o| o.int(n))
            }
        };
        ctx.unlock(&groups).await;
        reply
    })
}

// ---------------------------------------------------------------------------------------
// ZREMRANGEBYRANK / ZREMRANGEBYSCORE / ZREMRANGEBYLEX
// ---------------------------------------------------------------------------------------

/// Redis's `zremrangeGenericCommand`.
fn zremrange_generic(ctx: &mut Ctx, args: Args, fixed: Fixed) {
    let (kind, event) = match fixed {
        Fixed::Score => match ScoreRange::parse(args.get(2), args.get(3)) {
            Some(r) => (RangeKind::Score(r), "zremrangebyscore"),
            None => return ctx.out.error(RANGE_NOT_FLOAT),
        },
        Fixed::Lex => match LexRange::parse(args.get(2), args.get(3)) {
            Some(r) => (RangeKind::Lex(r), "zremrangebylex"),
            None => return ctx.out.error(LEX_ERR),
        },
        _ => match (parse_int(args.get(2)), parse_int(args.get(3))) {
            (Some(a), Some(b)) => (RangeKind::Rank(a, b), "zremrangebyrank"),
            _ => return ctx.out.error(NOT_INT),
        },
    };
    let key = args.get(1);
    let now = ctx.now_ms;
    let Some(e) = ctx.db().lookup(key, now) else {
        return ctx.out.int(0);
    };
    let Some(z) = e.as_zset_mut() else {
        return ctx.out.error(WRONGTYPE);
    };
    let (lo, hi) = match &kind {
        RangeKind::Rank(a, b) => match rank_window(*a, *b, z.len()) {
            Some((a, b)) => (a, b + 1),
            None => return ctx.out.int(0),
        },
        RangeKind::Score(r) => r.ranks(z),
        RangeKind::Lex(r) => r.ranks(z),
    };
    let deleted = z.remove_ranks(lo, hi);
    if deleted > 0 {
        let removed = delete_if_empty(ctx, key);
        ctx.modified(key, b'z', event);
        if removed {
            ctx.modified(key, b'g', "del");
        }
    }
    ctx.out.int(deleted as i64);
}

/// `ZREMRANGEBYRANK key start stop`
fn zremrangebyrank(ctx: &mut Ctx, args: Args) {
    zremrange_generic(ctx, args, Fixed::Rank);
}

/// `ZREMRANGEBYSCORE key min max`
fn zremrangebyscore(ctx: &mut Ctx, args: Args) {
    zremrange_generic(ctx, args, Fixed::Score);
}

/// `ZREMRANGEBYLEX key min max`
fn zremrangebylex(ctx: &mut Ctx, args: Args) {
    zremrange_generic(ctx, args, Fixed::Lex);
}

// ---------------------------------------------------------------------------------------
// ZPOPMIN / ZPOPMAX / ZMPOP
// ---------------------------------------------------------------------------------------

/// How [`pop_on`] pops and replies.
#[derive(Clone, Copy)]
struct Pop {
    /// From the max end.
    max: bool,
    /// At most this many.
    count: usize,
    /// Each pair as a 2-element array.
    nested: bool,
    /// ZMPOP's `[key, [...]]` form.
    emit_key: bool,
}

/// Pops up to `count` elements from the min (or max) end of `key` on the shard owning
/// it, with the keyspace events, and writes the reply: for ZMPOP (`emit_key`)
/// `[key, [[member, score], ...]]`, for ZPOP* a flat or (`nested`) paired array.
/// Returns `None` when the key does not exist (nothing written).
fn pop_on(d: &mut ShardData, db: usize, key: &[u8], how: Pop, out: &mut ReplyWriter) -> Option<()> {
    let Pop {
        max,
        count,
        nested,
        emit_key,
    } = how;
    let now = now_ms();
    let e = d.dbs[db].lookup(key, now)?;
    let Some(z) = e.as_zset_mut() else {
        out.error(WRONGTYPE);
        return Some(());
    };
    if count == 0 {
        out.array(0);
        return Some(());
    }
    let n = count.min(z.len());
    if emit_key {
        out.array(2);
        out.bulk(key);
        out.array(n);
    } else if nested {
        out.array(n);
    } else {
        out.array(n * 2);
    }
    for _ in 0..n {
        let r = if max { z.len() - 1 } else { 0 };
        let Some((m, s)) = z.at_rank(r).map(|(m, s)| (m.to_vec(), s)) else {
            break;
        };
        z.remove(&m);
        if nested {
            out.array(2);
        }
        out.bulk(&m);
        out.double(s);
    }
    let empty = z.is_empty();
    d.modified(db, key, b'z', if max { "zpopmax" } else { "zpopmin" });
    if empty {
        d.dbs[db].remove(key, now);
        d.modified(db, key, b'g', "del");
    }
    Some(())
}

/// Redis's `zpopMinMaxCommand`.
fn zpop_generic(ctx: &mut Ctx, args: Args, max: bool) {
    if args.len() > 3 {
        return ctx.out.error(SYNTAX_ERR);
    }
    let mut count: Option<usize> = None;
    if args.len() == 3 {
        match parse_int(args.get(2)) {
            Some(c) if c >= 0 => count = Some(c as usize),
            _ => return ctx.out.error(NOT_POSITIVE),
        }
    }
    let nested = ctx.out.resp3 && count.is_some();
    let db = ctx.db;
    let found = pop_on(
        ctx.shard,
        db,
        args.get(1),
        Pop {
            max,
            count: count.unwrap_or(1),
            nested,
            emit_key: false,
        },
        &mut ctx.out,
    );
    if found.is_none() {
        ctx.out.array(0);
    }
}

/// `ZPOPMIN key [count]`
fn zpopmin(ctx: &mut Ctx, args: Args) {
    zpop_generic(ctx, args, false);
}

/// `ZPOPMAX key [count]`
fn zpopmax(ctx: &mut Ctx, args: Args) {
    zpop_generic(ctx, args, true);
}

/// A parsed ZMPOP: the keys' positions, the end to pop from and the count.
struct MpopArgs {
    keys: std::ops::Range<usize>,
    max: bool,
    count: usize,
}

/// Redis's `zmpopGenericCommand` argument parsing.
fn parse_mpop(args: &Args) -> Result<MpopArgs, &'static [u8]> {
    const NUMKEYS: &[u8] = b"ERR numkeys should be greater than 0";
    let n = parse_int(args.get(1)).ok_or(NUMKEYS)?;
    if n < 1 {
        return Err(NUMKEYS);
    }
    let where_idx = (n as u64).saturating_add(2);
    if where_idx >= args.len() as u64 {
        return Err(SYNTAX_ERR);
    }
    let where_idx = where_idx as usize;
    let w = args.get(where_idx);
    let max = if eq_ic(w, "min") {
        false
    } else if eq_ic(w, "max") {
        true
    } else {
        return Err(SYNTAX_ERR);
    };
    let mut count: Option<usize> = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && eq_ic(args.get(j), "count") && j + 1 < args.len() {
            j += 1;
            match parse_int(args.get(j)) {
                Some(c) if c >= 1 => count = Some(c as usize),
                _ => return Err(b"ERR count should be greater than 0"),
            }
        } else {
            return Err(SYNTAX_ERR);
        }
        j += 1;
    }
    Ok(MpopArgs {
        keys: 2..where_idx,
        max,
        count: count.unwrap_or(1),
    })
}

/// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]`
fn zmpop(ctx: &mut Ctx, args: Args) {
    let p = match parse_mpop(&args) {
        Ok(p) => p,
        Err(e) => return ctx.out.error(e),
    };
    let db = ctx.db;
    for i in p.keys {
        if pop_on(
            ctx.shard,
            db,
            args.get(i),
            Pop {
                max: p.max,
                count: p.count,
                nested: true,
                emit_key: true,
            },
            &mut ctx.out,
        )
        .is_some()
        {
            return;
        }
    }
    ctx.out.null_array();
}

/// Cross-shard ZMPOP: under every key's lock, tries the keys in order on their shards
/// and pops from the first that exists.
fn zmpop_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let p = match parse_mpop(&a) {
            Ok(p) => p,
            Err(e) => return reply_with(&ctx, |o| o.error(e)),
        };
        let db = ctx.client.db;
        let resp3 = ctx.client.resp3;
        let keys: Vec<Vec<u8>> = p.keys.map(|i| a.get(i).to_vec()).collect();
        let groups = ctx.shards.group_keys(db, keys.iter().map(|k| &k[..]));
        ctx.lock(&groups).await;
        let mut reply = None;
        for k in keys {
            let (max, count) = (p.max, p.count);
            let owner = ctx.shards.owner(&k);
            let got = ctx
                .shards
                .run_on(owner, move |d| {
                    let mut buf = Vec::new();
                    let mut out = ReplyWriter::new(&mut buf, resp3);
                    let how = Pop {
                        max,
                        count,
                        nested: true,
                        emit_key: true,
                    };
                    pop_on(d, db, &k, how, &mut out).map(|_| buf)
                })
                .await;
            if got.is_some() {
                reply = got;
                break;
            }
        }
        ctx.unlock(&groups).await;
        reply.unwrap_or_else(|| reply_with(&ctx, |o| o.null_array()))
    })
}

// ---------------------------------------------------------------------------------------
// ZRANDMEMBER
// ---------------------------------------------------------------------------------------

/// `ZRANDMEMBER key [count [WITHSCORES]]`
fn zrandmember(ctx: &mut Ctx, args: Args) {
    if args.len() >= 3 {
        let Some(count) = parse_int(args.get(2)) else {
            return ctx.out.error(NOT_INT);
        };
        if count == i64::MIN {
            return ctx.out.error(
                b"ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            );
        }
        if args.len() > 4 || (args.len() == 4 && !eq_ic(args.get(3), "withscores")) {
            return ctx.out.error(SYNTAX_ERR);
        }
        let withscores = args.len() == 4;
        if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
            return ctx.out.error(b"ERR value is out of range");
        }
        return zrandmember_count(ctx, args.get(1), count, withscores);
    }
    let (z, out) = match read_zset(ctx, args.get(1)) {
        (Found::Missing, out) => return out.null(),
        (Found::WrongType, out) => return out.error(WRONGTYPE),
        (Found::Is(z), out) => (z, out),
    };
    let r = rand::thread_rng().gen_range(0..z.len());
    if let Some((m, _)) = z.at_rank(r) {
        out.bulk(m);
    }
}

/// Redis's `zrandmemberWithCountCommand`: a negative count may repeat members; a
/// positive one returns distinct members, the whole set (in order) when the count
/// reaches its size.
fn zrandmember_count(ctx: &mut Ctx, key: &[u8], count: i64, withscores: bool) {
    let (found, out) = read_zset(ctx, key);
    let z = match found {
        Found::Missing => return out.array(0),
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Is(z) => z,
    };
    let (n, unique) = (count.unsigned_abs() as usize, count >= 0);
    if n == 0 {
        return out.array(0);
    }
    let size = z.len();
    let mut rng = rand::thread_rng();
    if !unique || n == 1 {
        pairs_header(out, n, withscores);
        let all: Vec<(&[u8], f64)> = z.iter().collect();
        for _ in 0..n {
            let (m, s) = all[rng.gen_range(0..size)];
            pair_reply(out, m, s, withscores);
        }
        return;
    }
    if n >= size {
        return pairs_reply(out, z.iter().collect::<Vec<_>>().into_iter(), withscores);
    }
    pairs_header(out, n, withscores);
    let mut all: Vec<(&[u8], f64)> = z.iter().collect();
    for i in 0..n {
        let j = rng.gen_range(i..size);
        all.swap(i, j);
        let (m, s) = all[i];
        pair_reply(out, m, s, withscores);
    }
}

// ---------------------------------------------------------------------------------------
// ZUNION / ZINTER / ZDIFF / ZINTERCARD / ZUNIONSTORE / ZINTERSTORE / ZDIFFSTORE
// ---------------------------------------------------------------------------------------

/// The set operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Union,
    Inter,
    Diff,
}

/// One of the seven set-operation commands.
#[derive(Clone, Copy, Debug)]
struct SetCmd {
    op: Op,
    /// The *STORE forms (destination at 1, numkeys at 2).
    store: bool,
    /// ZINTERCARD.
    card: bool,
    /// The name in error messages.
    name: &'static str,
    /// The *STORE keyspace event.
    event: &'static str,
}

const ZUNION: SetCmd = SetCmd {
    op: Op::Union,
    store: false,
    card: false,
    name: "zunion",
    event: "",
};
const ZINTER: SetCmd = SetCmd {
    op: Op::Inter,
    store: false,
    card: false,
    name: "zinter",
    event: "",
};
const ZDIFF: SetCmd = SetCmd {
    op: Op::Diff,
    store: false,
    card: false,
    name: "zdiff",
    event: "",
};
const ZINTERCARD: SetCmd = SetCmd {
    op: Op::Inter,
    store: false,
    card: true,
    name: "zintercard",
    event: "",
};
const ZUNIONSTORE: SetCmd = SetCmd {
    op: Op::Union,
    store: true,
    card: false,
    name: "zunionstore",
    event: "zunionstore",
};
const ZINTERSTORE: SetCmd = SetCmd {
    op: Op::Inter,
    store: true,
    card: false,
    name: "zinterstore",
    event: "zinterstore",
};
const ZDIFFSTORE: SetCmd = SetCmd {
    op: Op::Diff,
    store: true,
    card: false,
    name: "zdiffstore",
    event: "zdiffstore",
};

/// One input of a set operation, read on the shard owning it.
pub enum Input {
    /// No such key (an empty input).
    Missing,
    /// A value of a type the operations do not accept.
    WrongType,
    /// The members with their scores (a plain set's members have score 1).
    Pairs(Pairs),
}

/// Reads `key` as a set-operation input, like Redis's `lookupKeyRead` (hit/miss).
pub fn read_input(d: &mut ShardData, db: usize, key: &[u8]) -> Input {
    match lookup_read(d, db, key, now_ms()) {
        None => Input::Missing,
        Some(e) => match e.value_mut() {
            Some(Value::ZSet(z)) => Input::Pairs(z.iter().map(|(m, s)| (m.to_vec(), s)).collect()),
            // Redis accepts plain sets: every member with score 1.
            Some(Value::Set(set)) => Input::Pairs(
                set.iter()
                    .map(|m| (m.with_bytes(|b| b.to_vec()), 1.0))
                    .collect(),
            ),
            _ => Input::WrongType,
        },
    }
}

/// How scores combine.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Agg {
    Sum,
    Min,
    Max,
}

/// The options after the keys.
struct SetOpts {
    weights: Vec<f64>,
    agg: Agg,
    withscores: bool,
    limit: usize,
}

/// The numkeys argument and the keys' positions (`Err`: the error text).
fn parse_setop_head(args: &Args, cmd: SetCmd) -> Result<std::ops::Range<usize>, Vec<u8>> {
    let idx = if cmd.store { 2 } else { 1 };
    let n = parse_int(args.get(idx)).ok_or_else(|| NOT_INT.to_vec())?;
    if n < 1 {
        return Err(format!(
            "ERR at least 1 input key is needed for '{}' command",
            cmd.name
        )
        .into_bytes());
    }
    if n as u64 > (args.len() - idx - 1) as u64 {
        return Err(SYNTAX_ERR.to_vec());
    }
    Ok(idx + 1..idx + 1 + n as usize)
}

/// Redis's option parsing after the keys (WEIGHTS, AGGREGATE, WITHSCORES, LIMIT).
fn parse_setop_opts(
    args: &Args,
    cmd: SetCmd,
    keys: std::ops::Range<usize>,
) -> Result<SetOpts, &'static [u8]> {
    let n = keys.len();
    let mut o = SetOpts {
        weights: vec![1.0; n],
        agg: Agg::Sum,
        withscores: false,
        limit: 0,
    };
    let mut j = keys.end;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = args.get(j);
        let scored = cmd.op != Op::Diff && !cmd.card;
        if scored && remaining > n && eq_ic(a, "weights") {
            j += 1;
            for w in o.weights.iter_mut() {
                *w = parse_score(args.get(j)).ok_or(&b"ERR weight value is not a float"[..])?;
                j += 1;
            }
        } else if scored && remaining >= 2 && eq_ic(a, "aggregate") {
            let v = args.get(j + 1);
            o.agg = if eq_ic(v, "sum") {
                Agg::Sum
            } else if eq_ic(v, "min") {
                Agg::Min
            } else if eq_ic(v, "max") {
                Agg::Max
            } else {
                return Err(SYNTAX_ERR);
            };
            j += 2;
        } else if !cmd.store && !cmd.card && eq_ic(a, "withscores") {
            o.withscores = true;
            j += 1;
        } else if cmd.card && remaining >= 2 && eq_ic(a, "limit") {
            match parse_int(args.get(j + 1)) {
                Some(l) if l >= 0 => o.limit = l as usize,
                _ => return Err(b"ERR LIMIT can't be negative"),
            }
            j += 2;
        } else {
            return Err(SYNTAX_ERR);
        }
    }
    Ok(o)
}

/// Redis's `zunionInterAggregate`.
#[inline]
fn aggregate(target: &mut f64, val: f64, agg: Agg) {
    match agg {
        Agg::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Agg::Min => {
            if val < *target {
                *target = val;
            }
        }
        Agg::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

/// What a set operation produced.
enum Outcome {
    /// ZINTERCARD's count.
    Card(usize),
    /// The resulting elements (unsorted).
    Pairs(Pairs),
}

/// Redis's `zunionInterDiffGenericCommand` computation over the inputs (missing keys
/// are empty), in argument order.
fn compute(cmd: SetCmd, inputs: Vec<Pairs>, o: &SetOpts) -> Outcome {
    let mut srcs: Vec<(Pairs, f64)> = inputs.into_iter().zip(o.weights.iter().copied()).collect();
    if cmd.op != Op::Diff {
        // Smallest first, stable like glibc's merge-sort qsort.
        srcs.sort_by_key(|s| s.0.len());
    }
    match cmd.op {
        Op::Inter => {
            let mut out = Vec::new();
            let mut card = 0usize;
            if srcs[0].0.is_empty() {
                return if cmd.card {
                    Outcome::Card(0)
                } else {
                    Outcome::Pairs(out)
                };
            }
            let maps: Vec<HashMap<&[u8], f64>> = srcs[1..]
                .iter()
                .map(|s| s.0.iter().map(|(m, sc)| (&m[..], *sc)).collect())
                .collect();
            'members: for (m, s) in &srcs[0].0 {
                let mut score = srcs[0].1 * s;
                if score.is_nan() {
                    score = 0.0;
                }
                for (map, (_, w)) in maps.iter().zip(&srcs[1..]) {
                    match map.get(&m[..]) {
                        Some(v) => aggregate(&mut score, v * w, o.agg),
                        None => continue 'members,
                    }
                }
                if cmd.card {
                    card += 1;
                    if o.limit > 0 && card >= o.limit {
                        break;
                    }
                } else {
                    out.push((m.clone(), score));
                }
            }
            if cmd.card {
                Outcome::Card(card)
            } else {
                Outcome::Pairs(out)
            }
        }
        Op::Union => {
            let mut acc: HashMap<&[u8], f64> = HashMap::new();
            for (pairs, w) in &srcs {
                for (m, s) in pairs {
                    let mut score = w * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.get_mut(&m[..]) {
                        Some(t) => aggregate(t, score, o.agg),
                        None => {
                            acc.insert(&m[..], score);
                        }
                    }
                }
            }
            Outcome::Pairs(acc.into_iter().map(|(m, s)| (m.to_vec(), s)).collect())
        }
        Op::Diff => {
            let others: Vec<std::collections::HashSet<&[u8]>> = srcs[1..]
                .iter()
                .map(|s| s.0.iter().map(|(m, _)| &m[..]).collect())
                .collect();
            let (first, _) = &srcs[0];
            Outcome::Pairs(
                first
                    .iter()
                    .filter(|(m, _)| !others.iter().any(|o| o.contains(&m[..])))
                    .cloned()
                    .collect(),
            )
        }
    }
}

/// Checks the inputs' types, parses the options and computes; `Err` is the error text.
fn finish_setop(
    args: &Args,
    cmd: SetCmd,
    keys: std::ops::Range<usize>,
    inputs: Vec<Input>,
) -> Result<(Outcome, bool), Vec<u8>> {
    let mut data = Vec::with_capacity(inputs.len());
    for i in inputs {
        match i {
            Input::WrongType => return Err(WRONGTYPE.to_vec()),
            Input::Missing => data.push(Vec::new()),
            Input::Pairs(p) => data.push(p),
        }
    }
    let o = parse_setop_opts(args, cmd, keys).map_err(|e| e.to_vec())?;
    Ok((compute(cmd, data, &o), o.withscores))
}

/// Writes a non-store set operation's reply.
fn setop_reply(out: &mut ReplyWriter, outcome: Outcome, withscores: bool) {
    match outcome {
        Outcome::Card(n) => out.int(n as i64),
        Outcome::Pairs(mut p) => {
            p.sort_by(|a, b| crate::storage::zset::cmp_elem(a.1, &a.0, b.1, &b.0));
            pairs_reply(out, p.iter().map(|(m, s)| (&m[..], *s)), withscores);
        }
    }
}

/// A set operation whose keys all live on this shard.
fn setop_local(ctx: &mut Ctx, args: Args, cmd: SetCmd) {
    let keys = match parse_setop_head(&args, cmd) {
        Ok(k) => k,
        Err(e) => return ctx.out.error(&e),
    };
    let db = ctx.db;
    let mut inputs = Vec::with_capacity(keys.len());
    for i in keys.clone() {
        let input = read_input(ctx.shard, db, args.get(i));
        let wrong = matches!(input, Input::WrongType);
        inputs.push(input);
        if wrong {
            break;
        }
    }
    match finish_setop(&args, cmd, keys, inputs) {
        Err(e) => ctx.out.error(&e),
        Ok((Outcome::Pairs(p), _)) if cmd.store => {
            let n = store_result(ctx.shard, db, args.get(1), p, cmd.event, None);
            ctx.out.int(n);
        }
        Ok((outcome, ws)) => setop_reply(&mut ctx.out, outcome, ws),
    }
}

/// A set operation whose keys span shards: reads every input on its shard under the
/// locks of all keys (and the destination), combines here, and for the *STORE forms
/// writes the result on the destination's shard before releasing the locks.
async fn setop_cross(ctx: AsyncCtx, args: OwnedArgs, cmd: SetCmd) -> Vec<u8> {
    let a = args.view();
    let keys = match parse_setop_head(&a, cmd) {
        Ok(k) => k,
        Err(e) => return reply_with(&ctx, |o| o.error(&e)),
    };
    let db = ctx.client.db;
    let srcs: Vec<&[u8]> = keys.clone().map(|i| a.get(i)).collect();
    let mut all = srcs.clone();
    if cmd.store {
        all.push(a.get(1));
    }
    let groups = ctx.shards.group_keys(db, all.iter().copied());
    let (_, work) = cross_setup(&ctx, db, &srcs);
    ctx.lock(&groups).await;
    let parts = ctx
        .shards
        .run_on_each(work, move |d, items: Vec<(usize, Vec<u8>)>| {
            items
                .into_iter()
                .map(|(i, k)| (i, read_input(d, db, &k)))
                .collect::<Vec<_>>()
        })
        .await;
    let mut inputs: Vec<Option<Input>> = (0..srcs.len()).map(|_| None).collect();
    for (i, input) in parts.into_iter().flatten() {
        inputs[i] = Some(input);
    }
    let inputs: Vec<Input> = inputs
        .into_iter()
        .map(|i| i.unwrap_or(Input::Missing))
        .collect();
    let reply = match finish_setop(&a, cmd, keys, inputs) {
        Err(e) => reply_with(&ctx, |o| o.error(&e)),
        Ok((Outcome::Pairs(p), _)) if cmd.store => {
            let dst = a.get(1).to_vec();
            let n = ctx
                .shards
                .run_on(ctx.shards.owner(&dst), move |d| {
                    store_result(d, db, &dst, p, cmd.event, None)
                })
                .await;
            reply_with(&ctx, |o| o.int(n))
        }
        Ok((outcome, ws)) => reply_with(&ctx, |o| setop_reply(o, outcome, ws)),
    };
    ctx.unlock(&groups).await;
    reply
}

/// `ZUNION numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
fn zunion(ctx: &mut Ctx, args: Args) {
    setop_local(ctx, args, ZUNION);
}

/// `ZINTER numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
fn zinter(ctx: &mut Ctx, args: Args) {
    setop_local(ctx, args, ZINTER);
}

/// `ZDIFF numkeys key [key ...] [WITHSCORES]`
fn zdiff(ctx: &mut Ctx, args: Args) {
    setop_local(ctx, args, ZDIFF);
}

/// `ZINTERCARD numkeys key [key ...] [LIMIT limit]`
fn zintercard(ctx: &mut Ctx, args: Args) {
    setop_local(ctx, args, ZINTERCARD);
}

/// `ZUNIONSTORE dst numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]`
fn zunionstore(ctx: &mut Ctx, args: Args) {
    setop_local(ctx, args, ZUNIONSTORE);
}

/// `ZINTERSTORE dst numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]`
fn zinterstore(ctx: &mut Ctx, args: Args) {
    setop_local(ctx, args, ZINTERSTORE);
}

/// `ZDIFFSTORE dst numkeys key [key ...]`
fn zdiffstore(ctx: &mut Ctx, args: Args) {
    setop_local(ctx, args, ZDIFFSTORE);
}

/// Cross-shard ZUNION.
fn zunion_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(setop_cross(ctx, args, ZUNION))
}

/// Cross-shard ZINTER.
fn zinter_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(setop_cross(ctx, args, ZINTER))
}

/// Cross-shard ZDIFF.
fn zdiff_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(setop_cross(ctx, args, ZDIFF))
}

/// Cross-shard ZINTERCARD.
fn zintercard_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(setop_cross(ctx, args, ZINTERCARD))
}

/// Cross-shard ZUNIONSTORE.
fn zunionstore_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(setop_cross(ctx, args, ZUNIONSTORE))
}

/// Cross-shard ZINTERSTORE.
fn zinterstore_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(setop_cross(ctx, args, ZINTERSTORE))
}

/// Cross-shard ZDIFFSTORE.
fn zdiffstore_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(setop_cross(ctx, args, ZDIFFSTORE))
}

// ---------------------------------------------------------------------------------------
// ZSCAN
// ---------------------------------------------------------------------------------------

/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`
///
/// A listpack set is returned whole with cursor 0 and its scores as the listpack stores
/// them (Redis's `d2string`); a skiplist is walked by [`ZSet::scan`], scores in `%.17g`.
fn zscan(ctx: &mut Ctx, args: Args) {
    let Some(cursor) = parse_cursor(args.get(2)) else {
        return ctx.out.error(b"ERR invalid cursor");
    };
    let (found, out) = read_zset(ctx, args.get(1));
    let z = match found {
        Found::Missing => {
            out.array(2);
            out.bulk(b"0");
            return out.array(0);
        }
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Is(z) => z,
    };
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < args.len() {
        let o = args.get(i);
        let more = args.len() - i;
        if eq_ic(o, "count") && more >= 2 {
            match parse_int(args.get(i + 1)) {
                Some(c) if c < 1 => return out.error(SYNTAX_ERR),
                Some(c) => count = c,
                None => return out.error(NOT_INT),
            }
        } else if eq_ic(o, "match") && more >= 2 {
            let p = args.get(i + 1);
            pattern = if p == b"*" { None } else { Some(p) };
        } else {
            return out.error(SYNTAX_ERR);
        }
        i += 2;
    }
    let mut items: Vec<(&[u8], f64)> = Vec::new();
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let packed = matches!(z, ZSet::Packed(_));
    let next = z.scan(cursor, count, |m, s| {
        let keep = match pattern {
            None => true,
            Some(p) if m.is_empty() => p.is_empty(),
            Some(p) => crate::config::glob_match(p, m, false),
        };
        if keep {
            items.push((m, s));
        }
    });
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(items.len() * 2);
    let mut buf = Vec::with_capacity(32);
    for (m, s) in items {
        out.bulk(m);
        buf.clear();
        if packed {
            d2string(s, &mut buf);
        } else {
            format_double_g17(s, &mut buf);
        }
        out.bulk(&buf);
    }
}

// ---------------------------------------------------------------------------------------
// BZPOPMIN / BZPOPMAX / BZMPOP (on the blocking framework of `shard::blocking`)
// ---------------------------------------------------------------------------------------

/// What a blocking sorted-set pop takes from a key.
pub struct ZsetPop {
    max: bool,
    count: usize,
}

/// What [`ZsetPop`] took.
pub enum ZTaken {
    /// The key holds another type (the command's own first attempt only).
    WrongType,
    /// Members and scores, in pop order.
    Popped(Vec<(Vec<u8>, f64)>),
}

impl crate::shard::blocking::BlockOp for ZsetPop {
    type Out = ZTaken;

    fn ready(&self, d: &mut ShardData, db: usize, key: &[u8]) -> bool {
        d.dbs[db]
            .peek(key, now_ms())
            .and_then(|e| e.as_zset())
            .is_some_and(|z| !z.is_empty())
    }

    fn take(&self, d: &mut ShardData, db: usize, key: &[u8], first: bool) -> Option<ZTaken> {
        let now = now_ms();
        let e = d.dbs[db].lookup(key, now)?;
        let Some(z) = e.as_zset_mut() else {
            return first.then_some(ZTaken::WrongType);
        };
        let mut out = Vec::new();
        for _ in 0..self.count.min(z.len()) {
            let r = if self.max { z.len() - 1 } else { 0 };
            let Some((m, sc)) = z.at_rank(r).map(|(m, sc)| (m.to_vec(), sc)) else {
                break;
            };
            z.remove(&m);
            out.push((m, sc));
        }
        if out.is_empty() {
            return None;
        }
        let empty = z.is_empty();
        d.modified(db, key, b'z', if self.max { "zpopmax" } else { "zpopmin" });
        if empty {
            d.dbs[db].remove(key, now);
            d.modified(db, key, b'g', "del");
        }
        Some(ZTaken::Popped(out))
    }

    fn restore(&self, d: &mut ShardData, db: usize, key: &[u8], out: ZTaken) {
        let ZTaken::Popped(items) = out else { return };
        let lim = limits(d);
        let now = now_ms();
        match d.dbs[db].lookup(key, now) {
            Some(e) => {
                if let Some(z) = e.as_zset_mut() {
                    for (m, sc) in &items {
                        z.insert(m, *sc, lim);
                    }
                }
            }
            None => {
                let z = ZSet::from_pairs(items, lim);
                d.dbs[db].set(key, Value::from_zset(z), 0);
            }
        }
    }
}

/// Runs a blocking sorted-set pop; `mpop` picks BZMPOP's reply form.
async fn run_bzpop(
    ctx: AsyncCtx,
    keys: Vec<Vec<u8>>,
    timeout_ms: u64,
    op: ZsetPop,
    mpop: bool,
) -> Vec<u8> {
    use crate::shard::blocking::{block_on, Outcome};
    let resp3 = ctx.client.resp3;
    let db = ctx.client.db;
    let outcome = block_on(
        &ctx.shards,
        &ctx.client,
        db,
        keys,
        timeout_ms,
        std::sync::Arc::new(op),
    )
    .await;
    let mut buf = Vec::new();
    let mut o = ReplyWriter::new(&mut buf, resp3);
    match outcome {
        Outcome::Got(_, ZTaken::WrongType) => o.error(WRONGTYPE),
        Outcome::Got(key, ZTaken::Popped(items)) => {
            if mpop {
                o.array(2);
                o.bulk(&key);
                o.array(items.len());
                for (m, sc) in &items {
                    o.array(2);
                    o.bulk(m);
                    o.double(*sc);
                }
            } else {
                let (m, sc) = &items[0];
                o.array(3);
                o.bulk(&key);
                o.bulk(m);
                o.double(*sc);
            }
        }
        Outcome::Timeout => o.null_array(),
        Outcome::Gone => return Vec::new(),
    }
    buf
}

fn bzpop_generic(ctx: AsyncCtx, args: OwnedArgs, max: bool) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let timeout = match crate::commands::lists::parse_timeout(a.get(a.len() - 1)) {
            Ok(t) => t,
            Err(m) => {
                let mut buf = Vec::new();
                ctx.writer(&mut buf).error(m);
                return buf;
            }
        };
        let keys: Vec<Vec<u8>> = (1..a.len() - 1).map(|i| a.get(i).to_vec()).collect();
        run_bzpop(ctx, keys, timeout, ZsetPop { max, count: 1 }, false).await
    })
}

/// `BZPOPMIN key [key ...] timeout`
fn bzpopmin(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    bzpop_generic(ctx, args, false)
}

/// `BZPOPMAX key [key ...] timeout`
fn bzpopmax(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    bzpop_generic(ctx, args, true)
}

/// `BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]`
fn bzmpop(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let mut buf = Vec::new();
        // ZMPOP's parser, on the arguments after the timeout; Redis checks them
        // (numkeys, MIN|MAX, COUNT) before the timeout.
        let rest: Vec<&[u8]> = std::iter::once(&b"zmpop"[..])
            .chain((2..a.len()).map(|i| a.get(i)))
            .collect();
        let owned = OwnedArgs::from_slices(&rest);
        let view = owned.view();
        let p = match parse_mpop(&view) {
            Ok(p) => p,
            Err(e) => {
                ctx.writer(&mut buf).error(e);
                return buf;
            }
        };
        let timeout = match crate::commands::lists::parse_timeout(a.get(1)) {
            Ok(t) => t,
            Err(m) => {
                ctx.writer(&mut buf).error(m);
                return buf;
            }
        };
        let keys: Vec<Vec<u8>> = p.keys.map(|i| view.get(i).to_vec()).collect();
        let op = ZsetPop {
            max: p.max,
            count: p.count,
        };
        run_bzpop(ctx, keys, timeout, op, true).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::shard::watch::notify;

    /// Runs one command on `d` (database 0) and returns its reply.
    fn run(d: &mut ShardData, line: &[&str]) -> Vec<u8> {
        let parts: Vec<&[u8]> = line.iter().map(|s| s.as_bytes()).collect();
        let owned = OwnedArgs::from_slices(&parts);
        let spec = crate::commands::Registry::new()
            .lookup(parts[0])
            .expect("registered");
        let Handler::Keyed { run, .. } = spec.handler else {
            panic!("keyed")
        };
        let mut buf = Vec::new();
        let mut ctx = Ctx {
            shard: d,
            db: 0,
            now_ms: now_ms(),
            out: ReplyWriter::new(&mut buf, false),
        };
        run(&mut ctx, owned.view());
        buf
    }

    /// The (event, key) pairs queued since the last call.
    fn events(d: &mut ShardData) -> Vec<(String, String)> {
        d.events
            .drain(..)
            .map(|e| {
                (
                    e.event.to_string(),
                    String::from_utf8_lossy(&e.key).into_owned(),
                )
            })
            .collect()
    }

    fn ev(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(e, k)| (e.to_string(), k.to_string()))
            .collect()
    }

    #[test]
    fn keyspace_events_follow_redis() {
        let mut d = ShardData::new(0, 1, Config::default());
        d.notify_mask = notify::parse(b"KEA").unwrap();
        run(&mut d, &["zadd", "z", "1", "a", "2", "b", "3", "c"]);
        assert_eq!(events(&mut d), ev(&[("zadd", "z")]));
        // No change, no event.
        run(&mut d, &["zadd", "z", "1", "a"]);
        run(&mut d, &["zadd", "z", "nx", "5", "a"]);
        run(&mut d, &["zrem", "z", "nosuch"]);
        run(&mut d, &["zremrangebyscore", "z", "100", "200"]);
        assert_eq!(events(&mut d), ev(&[]));
        run(&mut d, &["zincrby", "z", "1", "a"]);
        run(&mut d, &["zadd", "z", "incr", "1", "a"]);
        assert_eq!(events(&mut d), ev(&[("zincr", "z"), ("zincr", "z")]));
        run(&mut d, &["zrem", "z", "a"]);
        run(&mut d, &["zremrangebyrank", "z", "0", "0"]);
        assert_eq!(
            events(&mut d),
            ev(&[("zrem", "z"), ("zremrangebyrank", "z")])
        );
        run(&mut d, &["zadd", "z", "1", "a", "2", "b"]);
        run(&mut d, &["zremrangebyscore", "z", "1", "1"]);
        run(&mut d, &["zadd", "l", "0", "x", "0", "y"]);
        run(&mut d, &["zremrangebylex", "l", "-", "+"]);
        assert_eq!(
            events(&mut d),
            ev(&[
                ("zadd", "z"),
                ("zremrangebyscore", "z"),
                ("zadd", "l"),
                ("zremrangebylex", "l"),
                ("del", "l"),
            ])
        );
        run(&mut d, &["zadd", "p", "1", "a", "2", "b"]);
        run(&mut d, &["zpopmin", "p"]);
        run(&mut d, &["zpopmax", "p", "5"]);
        assert_eq!(
            events(&mut d),
            ev(&[
                ("zadd", "p"),
                ("zpopmin", "p"),
                ("zpopmax", "p"),
                ("del", "p")
            ])
        );
        run(&mut d, &["zadd", "q", "1", "a"]);
        run(&mut d, &["zmpop", "1", "q", "MAX"]);
        assert_eq!(
            events(&mut d),
            ev(&[("zadd", "q"), ("zpopmax", "q"), ("del", "q")])
        );
        // *STORE: the store event, or del when the result is empty and the key existed.
        run(&mut d, &["zunionstore", "u", "1", "z"]);
        run(&mut d, &["zinterstore", "u", "2", "z", "nosuch"]);
        run(&mut d, &["zinterstore", "u", "2", "z", "nosuch"]);
        run(&mut d, &["zdiffstore", "u", "1", "z"]);
        run(&mut d, &["zrangestore", "r", "z", "0", "-1"]);
        run(&mut d, &["zrangestore", "r", "nosuch", "0", "-1"]);
        assert_eq!(
            events(&mut d),
            ev(&[
                ("zunionstore", "u"),
                ("del", "u"),
                ("zdiffstore", "u"),
                ("zrangestore", "r"),
                ("del", "r"),
            ])
        );
        // Reads and errors queue nothing.
        run(&mut d, &["zrange", "z", "0", "-1"]);
        run(&mut d, &["zadd", "z", "nan", "a"]);
        assert_eq!(events(&mut d), ev(&[]));
    }

    #[test]
    fn nan_increment_is_refused_and_key_untouched() {
        let mut d = ShardData::new(0, 1, Config::default());
        run(&mut d, &["zadd", "z", "inf", "a"]);
        let r = run(&mut d, &["zincrby", "z", "-inf", "a"]);
        assert_eq!(r, b"-ERR resulting score is not a number (NaN)\r\n");
        assert_eq!(run(&mut d, &["zscore", "z", "a"]), b"$3\r\ninf\r\n");
    }

    #[test]
    fn strtod_like_bounds() {
        assert_eq!(strtod_full(b""), Some(0.0));
        assert_eq!(strtod_full(b"  1.5"), Some(1.5));
        assert_eq!(strtod_full(b"1.5 "), None);
        assert_eq!(strtod_full(b"1e400"), Some(f64::INFINITY));
        assert_eq!(strtod_full(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(strtod_full(b"0x10"), Some(16.0));
        assert_eq!(strtod_full(b"nan"), None);
        assert_eq!(strtod_full(b"1e"), None);
        assert_eq!(parse_score(b"0x1p-2"), Some(0.25));
        assert_eq!(parse_score(b"0x1p2000"), None);
        assert_eq!(parse_score(b" 0x1"), None);
    }
}
