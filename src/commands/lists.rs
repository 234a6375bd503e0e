//! List commands: LPUSH/RPUSH/LPUSHX/RPUSHX, LPOP/RPOP, LLEN, LRANGE, LINDEX, LSET,
//! LINSERT, LREM, LTRIM, LPOS, LMOVE/RPOPLPUSH, LMPOP, and the blocking BLPOP, BRPOP,
//! BLMOVE, BRPOPLPUSH and BLMPOP.
//!
//! Behaviour, reply types and error texts follow Redis 7.0 (`t_list.c`): which arguments
//! are parsed before the key is looked up, the nil forms (a nil bulk for LPOP without a
//! count, a nil array with one), keyspace hits and misses on the read commands, keyspace
//! events, and that a list whose last element goes is deleted. Storage is a compact
//! quicklist ([`crate::storage::list`]); node size follows `list-max-listpack-size`.
//!
//! LMOVE and RPOPLPUSH with keys on two shards run as coordinators under both keys'
//! locks. LMPOP names its keys through `numkeys` (Redis reports no fixed key positions
//! for it), so it runs as a task that locks its keys wherever they live. The blocking
//! commands are tasks too, built on [`crate::shard::blocking`]: they try like the
//! non-blocking command, then wait on the keys' owner shards, served in FIFO order after
//! the command that pushed.

use crate::commands::keys::split;
use crate::commands::{
    eq_ic, flags, parse_int, AsyncCtx, CommandSpec, Ctx, Handler, ReplyFuture, NOT_INT, SYNTAX_ERR,
    WRONGTYPE,
};
use crate::protocol::parse::{Args, OwnedArgs};
use crate::protocol::reply::ReplyWriter;
use crate::shard::blocking::{block_on, BlockOp, Outcome};
use crate::shard::{now_ms, ShardData};
use crate::storage::list::{End, List};
use crate::storage::Value;
use std::sync::Arc;

/// Shorthand for a keyed handler without a coordinator.
const fn keyed(run: crate::commands::KeyedFn) -> Handler {
    Handler::Keyed { run, cross: None }
}

/// The list commands, as Redis 7.0's COMMAND INFO describes them.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "lpush",
        -3,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @list @fast",
        keyed(lpush),
    ),
    CommandSpec::new(
        "rpush",
        -3,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @list @fast",
        keyed(rpush),
    ),
    CommandSpec::new(
        "lpushx",
        -3,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @list @fast",
        keyed(lpushx),
    ),
    CommandSpec::new(
        "rpushx",
        -3,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @list @fast",
        keyed(rpushx),
    ),
    CommandSpec::new(
        "lpop",
        -2,
        flags::WRITE | flags::FAST,
        (1, 1, 1),
        "@write @list @fast",
        keyed(lpop),
    ),
    CommandSpec::new(
        "rpop",
        -2,
        flags::WRITE | flags::FAST,
        (1, 1, 1),
        "@write @list @fast",
        keyed(rpop),
    ),
    CommandSpec::new(
        "llen",
        2,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@read @list @fast",
        keyed(llen),
    ),
    CommandSpec::new(
        "lrange",
        4,
        flags::READONLY,
        (1, 1, 1),
        "@read @list @slow",
        keyed(lrange),
    ),
    CommandSpec::new(
        "lindex",
        3,
        flags::READONLY,
        (1, 1, 1),
        "@read @list @slow",
        keyed(lindex),
    ),
    CommandSpec::new(
        "lset",
        4,
        flags::WRITE | flags::DENYOOM,
        (1, 1, 1),
        "@write @list @slow",
        keyed(lset),
    ),
    CommandSpec::new(
        "linsert",
        5,
        flags::WRITE | flags::DENYOOM,
        (1, 1, 1),
        "@write @list @slow",
        keyed(linsert),
    ),
    CommandSpec::new(
        "lrem",
        4,
        flags::WRITE,
        (1, 1, 1),
        "@write @list @slow",
        keyed(lrem),
    ),
    CommandSpec::new(
        "ltrim",
        4,
        flags::WRITE,
        (1, 1, 1),
        "@write @list @slow",
        keyed(ltrim),
    ),
    CommandSpec::new(
        "lpos",
        -3,
        flags::READONLY,
        (1, 1, 1),
        "@read @list @slow",
        keyed(lpos),
    ),
    CommandSpec::new(
        "lmove",
        5,
        flags::WRITE | flags::DENYOOM,
        (1, 2, 1),
        "@write @list @slow",
        Handler::Keyed {
            run: lmove,
            cross: Some(lmove_cross),
        },
    ),
    CommandSpec::new(
        "rpoplpush",
        3,
        flags::WRITE | flags::DENYOOM,
        (1, 2, 1),
        "@write @list @slow",
        Handler::Keyed {
            run: rpoplpush,
            cross: Some(rpoplpush_cross),
        },
    ),
    CommandSpec::new(
        "lmpop",
        -4,
        flags::WRITE | flags::MOVABLEKEYS,
        (0, 0, 0),
        "@write @list @slow",
        Handler::Async(lmpop),
    ),
    CommandSpec::new(
        "blpop",
        -3,
        flags::WRITE | flags::NOSCRIPT | flags::BLOCKING,
        (1, -2, 1),
        "@write @list @slow @blocking",
        Handler::Async(blpop),
    ),
    CommandSpec::new(
        "brpop",
        -3,
        flags::WRITE | flags::NOSCRIPT | flags::BLOCKING,
        (1, -2, 1),
        "@write @list @slow @blocking",
        Handler::Async(brpop),
    ),
    CommandSpec::new(
        "blmove",
        6,
        flags::WRITE | flags::DENYOOM | flags::NOSCRIPT | flags::BLOCKING,
        (1, 2, 1),
        "@write @list @slow @blocking",
        Handler::Async(blmove),
    ),
    CommandSpec::new(
        "brpoplpush",
        4,
        flags::WRITE | flags::DENYOOM | flags::NOSCRIPT | flags::BLOCKING,
        (1, 2, 1),
        "@write @list @slow @blocking",
        Handler::Async(brpoplpush),
    ),
    CommandSpec::new(
        "blmpop",
        -5,
        flags::WRITE | flags::BLOCKING | flags::MOVABLEKEYS,
        (0, 0, 0),
        "@write @list @slow @blocking",
        Handler::Async(blmpop),
    ),
];

/// LPOP/RPOP's count error (Redis's `getPositiveLongFromObjectOrReply` default text).
const MUST_BE_POSITIVE: &[u8] = b"ERR value is out of range, must be positive";
/// LSET on a missing key.
const NO_SUCH_KEY: &[u8] = b"ERR no such key";
/// LSET past the ends.
const OUT_OF_RANGE: &[u8] = b"ERR index out of range";

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// The node fill (`list-max-listpack-size`) as this shard's configuration has it.
pub fn fill(shard: &ShardData) -> i64 {
    let v = match shard.config.extra.get("list-max-listpack-size") {
        Some(v) => v.parse::<i64>().ok(),
        None => shard
            .config
            .get_one("list-max-listpack-size")
            .and_then(|v| v.parse::<i64>().ok()),
    };
    v.unwrap_or(-2)
}

/// Parses `LEFT`/`RIGHT` (Redis's `getListPositionFromObjectOrReply`).
fn parse_end(arg: &[u8]) -> Option<End> {
    if eq_ic(arg, "left") {
        Some(End::Left)
    } else if eq_ic(arg, "right") {
        Some(End::Right)
    } else {
        None
    }
}

/// Redis's event name for a push at `end`.
fn push_event(end: End) -> &'static str {
    match end {
        End::Left => "lpush",
        End::Right => "rpush",
    }
}

/// Redis's event name for a pop at `end`.
fn pop_event(end: End) -> &'static str {
    match end {
        End::Left => "lpop",
        End::Right => "rpop",
    }
}

/// Parses an integer like `getLongFromObjectOrReply` with a custom message (used for
/// both a non-integer and an out-of-range value), in `min..=max`.
fn parse_range(arg: &[u8], min: i64, max: i64, msg: &'static [u8]) -> Result<i64, &'static [u8]> {
    match parse_int(arg) {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(msg),
    }
}

/// Parses a blocking timeout in seconds like Redis's `getTimeoutFromObjectOrReply`
/// (`long double` seconds, rounded up to milliseconds). `Ok(0)` waits forever.
pub fn parse_timeout(arg: &[u8]) -> Result<u64, &'static [u8]> {
    use crate::commands::strings::long_double::{parse, Num};
    const NOT_FLOAT: &[u8] = b"ERR timeout is not a float or out of range";
    const NEGATIVE: &[u8] = b"ERR timeout is negative";
    let Some(n) = parse(arg) else {
        return Err(NOT_FLOAT);
    };
    let ms = match n {
        // `(long long)` of an infinity is LLONG_MIN on x86-64: "negative".
        Num::Inf => return Err(NEGATIVE),
        Num::Finite { neg, mant, exp } => {
            if mant == 0 {
                return Ok(0);
            }
            let secs = mant as f64 * 2f64.powi(exp.clamp(-2000, 2000) as i32);
            let ms = (secs * 1000.0).ceil();
            if neg {
                // ceil(-x) is -0 for 0 < x < 1: no error, wait forever.
                if (secs * 1000.0).floor() >= 1.0 {
                    return Err(NEGATIVE);
                }
                return Ok(0);
            }
            if ms >= 9_223_372_036_854_775_808.0 {
                // Past LLONG_MAX the C conversion yields LLONG_MIN.
                return Err(NEGATIVE);
            }
            ms as u64
        }
    };
    Ok(ms)
}

/// Pushes `elems` at `end` of the list `key`, creating it unless `only_existing`.
/// Returns the new length, `Ok(None)` when the key is missing and `only_existing`, or
/// `Err` when it holds another type. Raises the push event and marks the key ready.
fn push_elems<'e>(
    d: &mut ShardData,
    db: usize,
    key: &[u8],
    end: End,
    elems: impl IntoIterator<Item = &'e [u8]>,
    only_existing: bool,
    now: u64,
) -> Result<Option<usize>, ()> {
    let fill = fill(d);
    let table = &mut d.dbs[db];
    let len = match table.lookup(key, now) {
        Some(e) => {
            let Some(l) = e.as_list_mut() else {
                return Err(());
            };
            for x in elems {
                l.push(end, x, fill);
            }
            l.len()
        }
        None => {
            if only_existing {
                return Ok(None);
            }
            let mut l = List::new();
            for x in elems {
                l.push(end, x, fill);
            }
            let n = l.len();
            table.set(key, Value::from_list(l), 0);
            n
        }
    };
    d.modified(db, key, b'l', push_event(end));
    d.signal_key_ready(db, key);
    Ok(Some(len))
}

/// After elements were removed from `key`: raises `event`, and deletes the key (with a
/// `del` event) when the list is now empty.
fn after_removal(d: &mut ShardData, db: usize, key: &[u8], event: &'static str, now: u64) {
    d.modified(db, key, b'l', event);
    let empty = d.dbs[db]
        .peek(key, now)
        .and_then(|e| e.as_list())
        .is_some_and(|l| l.is_empty());
    if empty {
        d.dbs[db].remove(key, now);
        d.modified(db, key, b'g', "del");
    }
}

/// Pops up to `count` elements from `end` of `key` (the list exists and is not empty),
/// with the events. Elements come in pop order.
fn pop_elems(
    d: &mut ShardData,
    db: usize,
    key: &[u8],
    end: End,
    count: usize,
    now: u64,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Some(l) = d.dbs[db].lookup(key, now).and_then(|e| e.as_list_mut()) {
        let n = count.min(l.len());
        out.reserve(n);
        for _ in 0..n {
            match l.pop(end) {
                Some(v) => out.push(v),
                None => break,
            }
        }
    }
    after_removal(d, db, key, pop_event(end), now);
    out
}

/// What a write lookup of a list found.
enum Probe {
    Missing,
    WrongType,
    /// A list with this many elements.
    List(usize),
}

/// Looks `key` up for writing (no keyspace hit/miss, as Redis's `lookupKeyWrite`).
fn probe(d: &mut ShardData, db: usize, key: &[u8], now: u64) -> Probe {
    match d.dbs[db].lookup(key, now) {
        None => Probe::Missing,
        Some(e) => match e.as_list() {
            Some(l) => Probe::List(l.len()),
            None => Probe::WrongType,
        },
    }
}

/// Writes `[key, [elements]]` (LMPOP/BLMPOP).
fn key_elems_reply(out: &mut ReplyWriter, key: &[u8], elems: &[Vec<u8>]) {
    out.array(2);
    out.bulk(key);
    out.array(elems.len());
    for e in elems {
        out.bulk(e);
    }
}

/// Encodes one reply for an async command.
fn reply_with(resp3: bool, f: impl FnOnce(&mut ReplyWriter)) -> Vec<u8> {
    let mut buf = Vec::new();
    f(&mut ReplyWriter::new(&mut buf, resp3));
    buf
}

// ---------------------------------------------------------------------------------------
// LPUSH / RPUSH / LPUSHX / RPUSHX
// ---------------------------------------------------------------------------------------

/// Redis's `pushGenericCommand`.
fn push_generic(ctx: &mut Ctx, args: Args, end: End, xx: bool) {
    let now = ctx.now_ms;
    let elems = (2..args.len()).map(|i| args.get(i));
    match push_elems(ctx.shard, ctx.db, args.get(1), end, elems, xx, now) {
        Err(()) => ctx.out.error(WRONGTYPE),
        Ok(None) => ctx.out.int(0),
        Ok(Some(n)) => ctx.out.int(n as i64),
    }
}

/// `LPUSH key element [element ...]`
fn lpush(ctx: &mut Ctx, args: Args) {
    push_generic(ctx, args, End::Left, false);
}

/// `RPUSH key element [element ...]`
fn rpush(ctx: &mut Ctx, args: Args) {
    push_generic(ctx, args, End::Right, false);
}

/// `LPUSHX key element [element ...]`
fn lpushx(ctx: &mut Ctx, args: Args) {
    push_generic(ctx, args, End::Left, true);
}

/// `RPUSHX key element [element ...]`
fn rpushx(ctx: &mut Ctx, args: Args) {
    push_generic(ctx, args, End::Right, true);
}

// ---------------------------------------------------------------------------------------
// LPOP / RPOP
// ---------------------------------------------------------------------------------------

/// Redis's `popGenericCommand`.
fn pop_generic(ctx: &mut Ctx, args: Args, end: End) {
    if args.len() > 3 {
        return ctx.out.error(&crate::commands::arity_error(args.get(0)));
    }
    let has_count = args.len() == 3;
    let mut count = 0usize;
    if has_count {
        match parse_range(args.get(2), 0, i64::MAX, MUST_BE_POSITIVE) {
            Ok(c) => count = c as usize,
            Err(m) => return ctx.out.error(m),
        }
    }
    let (db, key, now) = (ctx.db, args.get(1), ctx.now_ms);
    match probe(ctx.shard, db, key, now) {
        Probe::Missing => {
            if has_count {
                ctx.out.null_array()
            } else {
                ctx.out.null()
            }
        }
        Probe::WrongType => ctx.out.error(WRONGTYPE),
        Probe::List(_) if has_count && count == 0 => ctx.out.array(0),
        Probe::List(_) => {
            let elems = pop_elems(ctx.shard, db, key, end, count.max(1), now);
            if has_count {
                ctx.out.array(elems.len());
                for e in &elems {
                    ctx.out.bulk(e);
                }
            } else {
                ctx.out.bulk(&elems[0]);
            }
        }
    }
}

/// `LPOP key [count]`
fn lpop(ctx: &mut Ctx, args: Args) {
    pop_generic(ctx, args, End::Left);
}

/// `RPOP key [count]`
fn rpop(ctx: &mut Ctx, args: Args) {
    pop_generic(ctx, args, End::Right);
}

// ---------------------------------------------------------------------------------------
// LLEN / LRANGE / LINDEX / LPOS
// ---------------------------------------------------------------------------------------

/// What a read lookup of a list found.
type Found<'a> = crate::commands::keys::Found<'a, List>;

/// Looks `key` up for reading like Redis's `lookupKeyRead` (counts a keyspace hit or
/// miss, stamps the access time).
#[inline]
fn read_list<'s, 'a>(ctx: &'s mut Ctx<'a>, key: &[u8]) -> (Found<'s>, &'s mut ReplyWriter<'a>) {
    crate::commands::keys::read_typed(ctx, key, crate::storage::Entry::as_list)
}

/// `LLEN key`
fn llen(ctx: &mut Ctx, args: Args) {
    match read_list(ctx, args.get(1)) {
        (Found::Missing, out) => out.int(0),
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Is(l), out) => out.int(l.len() as i64),
    }
}

/// Resolves Redis's inclusive `start`/`end` range against `len`: `None` when empty.
fn range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let mut s = if start < 0 { llen + start } else { start };
    let mut e = if end < 0 { llen + end } else { end };
    if s < 0 {
        s = 0;
    }
    if s > e || s >= llen {
        return None;
    }
    if e >= llen {
        e = llen - 1;
    }
    Some((s as usize, e as usize))
}

/// `LRANGE key start stop`
fn lrange(ctx: &mut Ctx, args: Args) {
    let (Some(start), Some(end)) = (parse_int(args.get(2)), parse_int(args.get(3))) else {
        return ctx.out.error(NOT_INT);
    };
    match read_list(ctx, args.get(1)) {
        (Found::Missing, out) => out.array(0),
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Is(l), out) => match range(start, end, l.len()) {
            None => out.array(0),
            Some((s, e)) => {
                out.array(e - s + 1);
                for x in l.iter_from(s).take(e - s + 1) {
                    out.bulk(x);
                }
            }
        },
    }
}

/// `LINDEX key index`
fn lindex(ctx: &mut Ctx, args: Args) {
    let (found, out) = read_list(ctx, args.get(1));
    let l = match found {
        Found::Missing => return out.null(),
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Is(l) => l,
    };
    let Some(index) = parse_int(args.get(2)) else {
        return out.error(NOT_INT);
    };
    match l.resolve(index).and_then(|i| l.get(i)) {
        Some(v) => out.bulk(v),
        None => out.null(),
    }
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`
fn lpos(ctx: &mut Ctx, args: Args) {
    let mut rank: i64 = 1;
    let mut count: i64 = -1;
    let mut maxlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = args.get(j);
        let more = args.len() - 1 - j;
        if eq_ic(opt, "rank") && more > 0 {
            j += 1;
            match parse_int(args.get(j)) {
                None => return ctx.out.error(NOT_INT),
                Some(0) => return ctx.out.error(b"ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"),
                Some(r) => rank = r,
            }
        } else if eq_ic(opt, "count") && more > 0 {
            j += 1;
            match parse_range(args.get(j), 0, i64::MAX, b"ERR COUNT can't be negative") {
                Ok(c) => count = c,
                Err(m) => return ctx.out.error(m),
            }
        } else if eq_ic(opt, "maxlen") && more > 0 {
            j += 1;
            match parse_range(args.get(j), 0, i64::MAX, b"ERR MAXLEN can't be negative") {
                Ok(c) => maxlen = c,
                Err(m) => return ctx.out.error(m),
            }
        } else {
            return ctx.out.error(SYNTAX_ERR);
        }
        j += 1;
    }
    // LONG_MIN has no positive counterpart: Redis's negation leaves it negative, so every
    // match qualifies, searching from the tail.
    let from_tail = rank < 0;
    let rank = if rank == i64::MIN {
        1
    } else {
        rank.unsigned_abs()
    };
    let elem = args.get(2).to_vec();
    let (found, out) = read_list(ctx, args.get(1));
    let l = match found {
        Found::Missing => {
            return if count != -1 {
                out.array(0)
            } else {
                out.null()
            };
        }
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Is(l) => l,
    };
    let len = l.len();
    let limit = if maxlen == 0 {
        len
    } else {
        (maxlen as usize).min(len)
    };
    let mut matches: u64 = 0;
    let mut hits: Vec<i64> = Vec::new();
    let mut single: Option<i64> = None;
    let mut visit = |index: usize, e: &[u8]| -> bool {
        if e == &elem[..] {
            matches += 1;
            let pos = if from_tail { len - 1 - index } else { index } as i64;
            if matches >= rank {
                if count != -1 {
                    hits.push(pos);
                    if count != 0 && matches - rank + 1 >= count as u64 {
                        return false;
                    }
                } else {
                    single = Some(pos);
                    return false;
                }
            }
        }
        true
    };
    if from_tail {
        if len > 0 {
            for (i, e) in l.iter_rev_from(len - 1).take(limit).enumerate() {
                if !visit(i, e) {
                    break;
                }
            }
        }
    } else {
        for (i, e) in l.iter().take(limit).enumerate() {
            if !visit(i, e) {
                break;
            }
        }
    }
    if count != -1 {
        out.array(hits.len());
        for h in hits {
            out.int(h);
        }
    } else {
        match single {
            Some(p) => out.int(p),
            None => out.null(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// LSET / LINSERT / LREM / LTRIM
// ---------------------------------------------------------------------------------------

/// `LSET key index element`
fn lset(ctx: &mut Ctx, args: Args) {
    let fill = fill(ctx.shard);
    let (key, now) = (args.get(1), ctx.now_ms);
    let (db, out) = split(ctx);
    let Some(e) = db.lookup(key, now) else {
        return out.error(NO_SUCH_KEY);
    };
    let Some(l) = e.as_list_mut() else {
        return out.error(WRONGTYPE);
    };
    let Some(index) = parse_int(args.get(2)) else {
        return out.error(NOT_INT);
    };
    let Some(i) = l.resolve(index) else {
        return out.error(OUT_OF_RANGE);
    };
    l.set(i, args.get(3), fill);
    out.ok();
    ctx.modified(key, b'l', "lset");
}

/// `LINSERT key BEFORE|AFTER pivot element`
fn linsert(ctx: &mut Ctx, args: Args) {
    let after = if eq_ic(args.get(2), "after") {
        true
    } else if eq_ic(args.get(2), "before") {
        false
    } else {
        return ctx.out.error(SYNTAX_ERR);
    };
    let fill = fill(ctx.shard);
    let (key, now) = (args.get(1), ctx.now_ms);
    let (db, out) = split(ctx);
    let Some(e) = db.lookup(key, now) else {
        return out.int(0);
    };
    let Some(l) = e.as_list_mut() else {
        return out.error(WRONGTYPE);
    };
    let Some(pos) = l.position(args.get(3)) else {
        return out.int(-1);
    };
    l.insert(pos + after as usize, args.get(4), fill);
    out.int(l.len() as i64);
    ctx.modified(key, b'l', "linsert");
}

/// `LREM key count element`
fn lrem(ctx: &mut Ctx, args: Args) {
    let Some(count) = parse_int(args.get(2)) else {
        return ctx.out.error(NOT_INT);
    };
    let (key, now, dbi) = (args.get(1), ctx.now_ms, ctx.db);
    let (db, out) = split(ctx);
    let Some(e) = db.lookup(key, now) else {
        return out.int(0);
    };
    let Some(l) = e.as_list_mut() else {
        return out.error(WRONGTYPE);
    };
    let max = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    let removed = l.remove_matching(args.get(3), max, count < 0);
    let empty = l.is_empty();
    out.int(removed as i64);
    if removed > 0 {
        ctx.modified(key, b'l', "lrem");
    }
    if empty {
        ctx.shard.dbs[dbi].remove(key, now);
        ctx.modified(key, b'g', "del");
    }
}

/// `LTRIM key start stop`
fn ltrim(ctx: &mut Ctx, args: Args) {
    let (Some(start), Some(end)) = (parse_int(args.get(2)), parse_int(args.get(3))) else {
        return ctx.out.error(NOT_INT);
    };
    let (key, now, dbi) = (args.get(1), ctx.now_ms, ctx.db);
    let (db, out) = split(ctx);
    let Some(e) = db.lookup(key, now) else {
        return out.ok();
    };
    let Some(l) = e.as_list_mut() else {
        return out.error(WRONGTYPE);
    };
    let len = l.len();
    let (front, back) = match range(start, end, len) {
        None => (len, 0),
        Some((s, e)) => (s, len - 1 - e),
    };
    l.trim_front(front);
    l.trim_back(back);
    out.ok();
    after_removal(ctx.shard, dbi, key, "ltrim", now);
}

// ---------------------------------------------------------------------------------------
// LMOVE / RPOPLPUSH
// ---------------------------------------------------------------------------------------

/// LMOVE on one shard (Redis's `lmoveGenericCommand`): `Ok(None)` when the source is
/// missing, `Err` for WRONGTYPE (the source's type is checked first, then the
/// destination's, before anything moves).
fn lmove_local(
    d: &mut ShardData,
    db: usize,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
    now: u64,
) -> Result<Option<Vec<u8>>, ()> {
    match probe(d, db, src, now) {
        Probe::Missing | Probe::List(0) => return Ok(None),
        Probe::WrongType => return Err(()),
        Probe::List(_) => {}
    }
    if let Probe::WrongType = probe(d, db, dst, now) {
        return Err(());
    }
    let value = d.dbs[db]
        .lookup(src, now)
        .and_then(|e| e.as_list_mut())
        .and_then(|l| l.pop(from))
        .expect("non-empty list");
    // The push goes first (so LMOVE of a one-element list onto itself keeps it).
    if push_elems(d, db, dst, to, [&value[..]], false, now).is_err() {
        unreachable!("destination type checked");
    }
    after_removal(d, db, src, pop_event(from), now);
    Ok(Some(value))
}

/// Writes LMOVE's reply.
fn lmove_reply(out: &mut ReplyWriter, r: Result<Option<Vec<u8>>, ()>) {
    match r {
        Err(()) => out.error(WRONGTYPE),
        Ok(None) => out.null(),
        Ok(Some(v)) => out.bulk(&v),
    }
}

/// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT`
fn lmove(ctx: &mut Ctx, args: Args) {
    let (Some(from), Some(to)) = (parse_end(args.get(3)), parse_end(args.get(4))) else {
        return ctx.out.error(SYNTAX_ERR);
    };
    let r = lmove_local(
        ctx.shard,
        ctx.db,
        args.get(1),
        args.get(2),
        from,
        to,
        ctx.now_ms,
    );
    lmove_reply(&mut ctx.out, r);
}

/// `RPOPLPUSH source destination`
fn rpoplpush(ctx: &mut Ctx, args: Args) {
    let r = lmove_local(
        ctx.shard,
        ctx.db,
        args.get(1),
        args.get(2),
        End::Right,
        End::Left,
        ctx.now_ms,
    );
    lmove_reply(&mut ctx.out, r);
}

/// LMOVE with source and destination on two shards, under both keys' locks: checks the
/// source, then the destination's type, pops, pushes. Nobody sees the state between.
async fn lmove_cross_generic(
    ctx: &AsyncCtx,
    src: Vec<u8>,
    dst: Vec<u8>,
    from: End,
    to: End,
) -> Vec<u8> {
    let db = ctx.client.db;
    let resp3 = ctx.client.resp3;
    let groups = ctx.shards.group_keys(db, [&src[..], &dst[..]]);
    ctx.lock(&groups).await;
    let r = lmove_two_shards(ctx, db, src, dst, from, to).await;
    ctx.unlock(&groups).await;
    reply_with(resp3, |out| lmove_reply(out, r))
}

/// The body of a cross-shard LMOVE (the caller holds the locks).
async fn lmove_two_shards(
    ctx: &AsyncCtx,
    db: usize,
    src: Vec<u8>,
    dst: Vec<u8>,
    from: End,
    to: End,
) -> Result<Option<Vec<u8>>, ()> {
    let (ss, ds) = (ctx.shards.owner(&src), ctx.shards.owner(&dst));
    let k = src.clone();
    match ctx
        .shards
        .run_on(ss, move |d| probe(d, db, &k, now_ms()))
        .await
    {
        Probe::Missing | Probe::List(0) => return Ok(None),
        Probe::WrongType => return Err(()),
        Probe::List(_) => {}
    }
    let k = dst.clone();
    if let Probe::WrongType = ctx
        .shards
        .run_on(ds, move |d| probe(d, db, &k, now_ms()))
        .await
    {
        return Err(());
    }
    let k = src.clone();
    let value = ctx
        .shards
        .run_on(ss, move |d| {
            let now = now_ms();
            let v = pop_elems(d, db, &k, from, 1, now);
            v.into_iter().next()
        })
        .await;
    let Some(value) = value else {
        return Ok(None);
    };
    let v2 = value.clone();
    ctx.shards
        .run_on(ds, move |d| {
            let _ = push_elems(d, db, &dst, to, [&v2[..]], false, now_ms());
        })
        .await;
    Ok(Some(value))
}

/// Cross-shard LMOVE.
fn lmove_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let (Some(from), Some(to)) = (parse_end(a.get(3)), parse_end(a.get(4))) else {
            return reply_with(ctx.client.resp3, |o| o.error(SYNTAX_ERR));
        };
        lmove_cross_generic(&ctx, a.get(1).to_vec(), a.get(2).to_vec(), from, to).await
    })
}

/// Cross-shard RPOPLPUSH.
fn rpoplpush_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        lmove_cross_generic(
            &ctx,
            a.get(1).to_vec(),
            a.get(2).to_vec(),
            End::Right,
            End::Left,
        )
        .await
    })
}

// ---------------------------------------------------------------------------------------
// LMPOP
// ---------------------------------------------------------------------------------------

/// Parsed `numkeys key [key ...] LEFT|RIGHT [COUNT count]` (from `numkeys_idx`).
struct MpopArgs {
    keys: Vec<Vec<u8>>,
    end: End,
    count: usize,
}

/// Redis's `lmpopGenericCommand` parsing.
fn parse_mpop(a: &Args, numkeys_idx: usize) -> Result<MpopArgs, &'static [u8]> {
    let numkeys = parse_range(
        a.get(numkeys_idx),
        1,
        i64::MAX,
        b"ERR numkeys should be greater than 0",
    )?;
    let where_idx = (numkeys_idx as u64)
        .saturating_add(numkeys as u64)
        .saturating_add(1);
    if where_idx >= a.len() as u64 {
        return Err(SYNTAX_ERR);
    }
    let where_idx = where_idx as usize;
    let end = parse_end(a.get(where_idx)).ok_or(SYNTAX_ERR)?;
    let mut count: i64 = -1;
    let mut j = where_idx + 1;
    while j < a.len() {
        let more = a.len() - 1 - j;
        if count == -1 && eq_ic(a.get(j), "count") && more > 0 {
            j += 1;
            count = parse_range(a.get(j), 1, i64::MAX, b"ERR count should be greater than 0")?;
        } else {
            return Err(SYNTAX_ERR);
        }
        j += 1;
    }
    Ok(MpopArgs {
        keys: (numkeys_idx + 1..where_idx)
            .map(|i| a.get(i).to_vec())
            .collect(),
        end,
        count: if count == -1 { 1 } else { count as usize },
    })
}

/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`: the first non-empty list
/// gives up to `count` elements (keys in order, locked wherever they live).
fn lmpop(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let resp3 = ctx.client.resp3;
        let p = match parse_mpop(&args.view(), 1) {
            Ok(p) => p,
            Err(m) => return reply_with(resp3, |o| o.error(m)),
        };
        let db = ctx.client.db;
        let groups = ctx.shards.group_keys(db, p.keys.iter().map(|k| &k[..]));
        ctx.lock(&groups).await;
        let op = Arc::new(ListPop {
            end: p.end,
            count: Some(p.count),
            move_to: None,
        });
        let mut reply = reply_with(resp3, |o| o.null_array());
        for key in &p.keys {
            let (op2, k) = (op.clone(), key.clone());
            let got = ctx
                .shards
                .run_on(ctx.shards.owner(key), move |d| op2.take(d, db, &k, true))
                .await;
            if let Some(out) = got {
                reply = popped_reply(resp3, key, out, &op);
                break;
            }
        }
        ctx.unlock(&groups).await;
        reply
    })
}

// ---------------------------------------------------------------------------------------
// Blocking commands
// ---------------------------------------------------------------------------------------

/// What a blocking list operation took.
pub enum Taken {
    /// The key holds another type (the command's own attempt only).
    WrongType,
    /// Elements popped from `end` (in pop order).
    Popped(End, Vec<Vec<u8>>),
    /// BLMOVE done on one shard: the element moved (already pushed on the destination).
    Moved(Vec<u8>),
    /// BLMOVE whose destination is on another shard: popped, still to push.
    ToPush(Vec<u8>),
}

/// A blocking list pop: BLPOP/BRPOP (`count` None), BLMPOP (`count` Some), BLMOVE and
/// BRPOPLPUSH (`move_to` Some: destination key, end, and whether it is on this shard's
/// owner of the source).
pub struct ListPop {
    end: End,
    count: Option<usize>,
    move_to: Option<MoveTo>,
}

/// BLMOVE's destination.
struct MoveTo {
    key: Vec<u8>,
    end: End,
    /// The destination's owner shard.
    shard: usize,
}

impl BlockOp for ListPop {
    type Out = Taken;

    fn ready(&self, d: &mut ShardData, db: usize, key: &[u8]) -> bool {
        matches!(probe(d, db, key, now_ms()), Probe::List(n) if n > 0)
    }

    fn take(&self, d: &mut ShardData, db: usize, key: &[u8], first: bool) -> Option<Taken> {
        let now = now_ms();
        match probe(d, db, key, now) {
            Probe::Missing | Probe::List(0) => return None,
            Probe::WrongType if first => return Some(Taken::WrongType),
            Probe::WrongType => return None,
            Probe::List(_) => {}
        }
        match &self.move_to {
            Some(m) if m.shard == d.id => {
                match lmove_local(d, db, key, &m.key, self.end, m.end, now) {
                    Err(()) => Some(Taken::WrongType),
                    Ok(None) => None,
                    Ok(Some(v)) => Some(Taken::Moved(v)),
                }
            }
            Some(_) => {
                let v = pop_elems(d, db, key, self.end, 1, now);
                v.into_iter().next().map(Taken::ToPush)
            }
            None => {
                let v = pop_elems(d, db, key, self.end, self.count.unwrap_or(1), now);
                Some(Taken::Popped(self.end, v))
            }
        }
    }

    fn restore(&self, d: &mut ShardData, db: usize, key: &[u8], out: Taken) {
        let now = now_ms();
        match out {
            Taken::Popped(end, elems) => {
                let _ = push_elems(
                    d,
                    db,
                    key,
                    end,
                    elems.iter().rev().map(|e| &e[..]),
                    false,
                    now,
                );
            }
            Taken::ToPush(v) => {
                let _ = push_elems(d, db, key, self.end, [&v[..]], false, now);
            }
            // Moved: the element is on the destination list; nothing is lost.
            Taken::Moved(_) | Taken::WrongType => {}
        }
    }
}

/// The reply for what a pop took (BLPOP/BRPOP: `[key, element]`; BLMPOP/LMPOP:
/// `[key, [elements]]`; BLMOVE: the element).
fn popped_reply(resp3: bool, key: &[u8], out: Taken, op: &ListPop) -> Vec<u8> {
    reply_with(resp3, |o| match out {
        Taken::WrongType => o.error(WRONGTYPE),
        Taken::Popped(_, elems) => {
            if op.count.is_some() {
                key_elems_reply(o, key, &elems);
            } else {
                o.array(2);
                o.bulk(key);
                o.bulk(&elems[0]);
            }
        }
        Taken::Moved(v) | Taken::ToPush(v) => o.bulk(&v),
    })
}

/// Runs a blocking pop and encodes its reply; `nil_array` picks the timeout reply form.
async fn run_blocking(ctx: AsyncCtx, keys: Vec<Vec<u8>>, timeout_ms: u64, op: ListPop) -> Vec<u8> {
    let resp3 = ctx.client.resp3;
    let db = ctx.client.db;
    let is_move = op.move_to.is_some();
    let op = Arc::new(op);
    let outcome = block_on(&ctx.shards, &ctx.client, db, keys, timeout_ms, op.clone()).await;
    match outcome {
        Outcome::Got(key, Taken::ToPush(v)) => finish_cross_move(&ctx, db, key, v, &op).await,
        Outcome::Got(key, out) => popped_reply(resp3, &key, out, &op),
        // Not allowed to block (EXEC): BLMOVE answers a nil bulk, the others (and every
        // real timeout) a nil array, as Redis 7.0 does.
        Outcome::Timeout if is_move && ctx.client.in_exec => reply_with(resp3, |o| o.null()),
        Outcome::Timeout => reply_with(resp3, |o| o.null_array()),
        // The connection is gone: nobody reads a reply.
        Outcome::Gone => Vec::new(),
    }
}

/// BLMOVE across shards, second half: pushes the popped element on the destination
/// (under its lock). A destination of another type gets the element back on the source
/// and a WRONGTYPE reply.
async fn finish_cross_move(
    ctx: &AsyncCtx,
    db: usize,
    src: Vec<u8>,
    value: Vec<u8>,
    op: &Arc<ListPop>,
) -> Vec<u8> {
    let resp3 = ctx.client.resp3;
    let m = op.move_to.as_ref().expect("a move");
    let groups = ctx.shards.group_keys(db, [&m.key[..]]);
    ctx.lock(&groups).await;
    let (dst, to, v2) = (m.key.clone(), m.end, value.clone());
    let pushed = ctx
        .shards
        .run_on(m.shard, move |d| {
            push_elems(d, db, &dst, to, [&v2[..]], false, now_ms()).is_ok()
        })
        .await;
    ctx.unlock(&groups).await;
    if pushed {
        return reply_with(resp3, |o| o.bulk(&value));
    }
    let op2 = op.clone();
    ctx.shards
        .run_on(ctx.shards.owner(&src), move |d| {
            op2.restore(d, db, &src, Taken::ToPush(value))
        })
        .await;
    reply_with(resp3, |o| o.error(WRONGTYPE))
}

/// BLPOP / BRPOP.
fn bpop_generic(ctx: AsyncCtx, args: OwnedArgs, end: End) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let timeout = match parse_timeout(a.get(a.len() - 1)) {
            Ok(t) => t,
            Err(m) => return reply_with(ctx.client.resp3, |o| o.error(m)),
        };
        let keys: Vec<Vec<u8>> = (1..a.len() - 1).map(|i| a.get(i).to_vec()).collect();
        let op = ListPop {
            end,
            count: None,
            move_to: None,
        };
        run_blocking(ctx, keys, timeout, op).await
    })
}

/// `BLPOP key [key ...] timeout`
fn blpop(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    bpop_generic(ctx, args, End::Left)
}

/// `BRPOP key [key ...] timeout`
fn brpop(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    bpop_generic(ctx, args, End::Right)
}

/// BLMOVE / BRPOPLPUSH.
fn blmove_generic(
    ctx: AsyncCtx,
    src: Vec<u8>,
    dst: Vec<u8>,
    from: End,
    to: End,
    timeout: u64,
) -> ReplyFuture {
    Box::pin(async move {
        let shard = ctx.shards.owner(&dst);
        let op = ListPop {
            end: from,
            count: None,
            move_to: Some(MoveTo {
                key: dst,
                end: to,
                shard,
            }),
        };
        run_blocking(ctx, vec![src], timeout, op).await
    })
}

/// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout`
fn blmove(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    let a = args.view();
    let err = |ctx: &AsyncCtx, m: &'static [u8]| -> ReplyFuture {
        let r = reply_with(ctx.client.resp3, |o| o.error(m));
        Box::pin(async move { r })
    };
    let (Some(from), Some(to)) = (parse_end(a.get(3)), parse_end(a.get(4))) else {
        return err(&ctx, SYNTAX_ERR);
    };
    let timeout = match parse_timeout(a.get(5)) {
        Ok(t) => t,
        Err(m) => return err(&ctx, m),
    };
    let (src, dst) = (a.get(1).to_vec(), a.get(2).to_vec());
    blmove_generic(ctx, src, dst, from, to, timeout)
}

/// `BRPOPLPUSH source destination timeout`
fn brpoplpush(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    let a = args.view();
    let timeout = match parse_timeout(a.get(3)) {
        Ok(t) => t,
        Err(m) => {
            let r = reply_with(ctx.client.resp3, |o| o.error(m));
            return Box::pin(async move { r });
        }
    };
    let (src, dst) = (a.get(1).to_vec(), a.get(2).to_vec());
    blmove_generic(ctx, src, dst, End::Right, End::Left, timeout)
}

/// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`
fn blmpop(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let resp3 = ctx.client.resp3;
        let a = args.view();
        let p = match parse_mpop(&a, 2) {
            Ok(p) => p,
            Err(m) => return reply_with(resp3, |o| o.error(m)),
        };
        let timeout = match parse_timeout(a.get(1)) {
            Ok(t) => t,
            Err(m) => return reply_with(resp3, |o| o.error(m)),
        };
        let op = ListPop {
            end: p.end,
            count: Some(p.count),
            move_to: None,
        };
        run_blocking(ctx, p.keys, timeout, op).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_like_redis() {
        assert_eq!(parse_timeout(b"0"), Ok(0));
        assert_eq!(parse_timeout(b"1"), Ok(1000));
        assert_eq!(parse_timeout(b"0.0001"), Ok(1));
        assert_eq!(parse_timeout(b"1.5"), Ok(1500));
        assert_eq!(parse_timeout(b"-0"), Ok(0));
        assert_eq!(parse_timeout(b"-0.0001"), Ok(0));
        assert_eq!(parse_timeout(b"9.2e15"), Ok(9_200_000_000_000_000_000));
        assert!(parse_timeout(b"9.3e15").is_err());
        assert!(parse_timeout(b"inf").is_err());
        assert!(parse_timeout(b"-1").is_err());
        assert!(parse_timeout(b"abc").is_err());
        assert!(parse_timeout(b" 1").is_err());
    }

    #[test]
    fn ranges_clamp_like_redis() {
        assert_eq!(range(0, -1, 3), Some((0, 2)));
        assert_eq!(range(-100, 100, 3), Some((0, 2)));
        assert_eq!(range(2, 1, 3), None);
        assert_eq!(range(3, 5, 3), None);
        assert_eq!(range(0, -4, 3), None);
    }
}
