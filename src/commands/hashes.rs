//! Hash commands: HSET/HMSET/HSETNX, HGET/HMGET, HDEL, HLEN, HSTRLEN, HEXISTS, HKEYS,
//! HVALS, HGETALL, HINCRBY/HINCRBYFLOAT, HRANDFIELD and HSCAN.
//!
//! Behaviour, reply types and error texts follow Redis 7.0 (`t_hash.c`): the order in
//! which arguments are checked against the key's type, which lookups count as keyspace
//! hits or misses (the read commands), when a small ("listpack") hash becomes a
//! "hashtable" (see [`crate::storage::hash`]), and that a hash whose last field is deleted
//! is deleted too. HINCRBYFLOAT computes in x87 `long double` like Redis (see
//! [`crate::commands::strings::long_double`]).
//!
//! Every command has one key, so every handler runs on the shard owning it.

use crate::commands::keys::{parse_cursor, split};
use crate::commands::strings::long_double;
use crate::commands::{
    arity_error, eq_ic, flags, parse_int, CommandSpec, Ctx, Handler, NOT_FLOAT, NOT_INT, OVERFLOW,
    SYNTAX_ERR, WRONGTYPE,
};
use crate::protocol::parse::Args;
use crate::protocol::reply::{parse_i64, ReplyWriter};
use crate::shard::ShardData;
use crate::storage::hash::{Hash, Limits};
use crate::storage::Value;
use rand::Rng;

/// The hash commands, as Redis 7.0's COMMAND INFO describes them.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "hset",
        -4,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @hash @fast",
        Handler::Keyed {
            run: hset,
            cross: None,
        },
    ),
    CommandSpec::new(
        "hsetnx",
        4,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @hash @fast",
        Handler::Keyed {
            run: hsetnx,
            cross: None,
        },
    ),
    CommandSpec::new(
        "hget",
        3,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@read @hash @fast",
        Handler::Keyed {
            run: hget,
            cross: None,
        },
    ),
    CommandSpec::new(
        "hmget",
        -3,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@read @hash @fast",
        Handler::Keyed {
            run: hmget,
            cross: None,
        },
    ),
    CommandSpec::new(
        "hmset",
        -4,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @hash @fast",
        Handler::Keyed {
            run: hmset,
            cross: None,
        },
    ),
    CommandSpec::new(
        "hdel",
        -3,
        flags::WRITE | flags::FAST,
        (1, 1, 1),
        "@write @hash @fast",
        Handler::Keyed {
            run: hdel,
            cross: None,
        },
    ),
    CommandSpec::new(
        "hlen",
        2,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@read @hash @fast",
        Handler::Keyed {
            run: hlen,
            cross: None,
        },
    ),
    CommandSpec::new(
        "hstrlen",
        3,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@read @hash @fast",
        Handler::Keyed {
            run: hstrlen,
            cross: None,
        },
    ),
    CommandSpec::new(
        "hexists",
        3,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@read @hash @fast",
        Handler::Keyed {
            run: hexists,
            cross: None,
        },
    ),
    CommandSpec::new(
        "hkeys",
        2,
        flags::READONLY,
        (1, 1, 1),
        "@read @hash @slow",
        Handler::Keyed {
            run: hkeys,
            cross: None,
        },
    ),
    CommandSpec::new(
        "hvals",
        2,
        flags::READONLY,
        (1, 1, 1),
        "@read @hash @slow",
        Handler::Keyed {
            run: hvals,
            cross: None,
        },
    ),
    CommandSpec::new(
        "hgetall",
        2,
        flags::READONLY,
        (1, 1, 1),
        "@read @hash @slow",
        Handler::Keyed {
            run: hgetall,
            cross: None,
        },
    ),
    CommandSpec::new(
        "hincrby",
        4,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @hash @fast",
        Handler::Keyed {
            run: hincrby,
            cross: None,
        },
    ),
    CommandSpec::new(
        "hincrbyfloat",
        4,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @hash @fast",
        Handler::Keyed {
            run: hincrbyfloat,
            cross: None,
        },
    ),
    CommandSpec::new(
        "hrandfield",
        -2,
        flags::READONLY,
        (1, 1, 1),
        "@read @hash @slow",
        Handler::Keyed {
            run: hrandfield,
            cross: None,
        },
    ),
    CommandSpec::new(
        "hscan",
        -3,
        flags::READONLY,
        (1, 1, 1),
        "@read @hash @slow",
        Handler::Keyed {
            run: hscan,
            cross: None,
        },
    ),
];

/// HINCRBY on a field whose value is not an integer.
const HASH_NOT_INT: &[u8] = b"ERR hash value is not an integer";
/// HINCRBYFLOAT on a field whose value is not a float.
const HASH_NOT_FLOAT: &[u8] = b"ERR hash value is not a float";

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// The conversion thresholds as this shard's configuration has them
/// (`hash-max-listpack-entries`, `hash-max-listpack-value`; CONFIG SET changes them).
pub fn limits(shard: &ShardData) -> Limits {
    let get = |name: &str, default: usize| shard.config_usize(name, default);
    let d = Limits::default();
    Limits {
        max_entries: get("hash-max-listpack-entries", d.max_entries),
        max_value: get("hash-max-listpack-value", d.max_value),
    }
}

/// What a read lookup of a hash found.
type Found<'a> = crate::commands::keys::Found<'a, Hash>;

/// Looks `key` up for reading like Redis's `lookupKeyRead` (counts a keyspace hit or
/// miss, stamps the access time).
#[inline]
fn read_hash<'s, 'a>(ctx: &'s mut Ctx<'a>, key: &[u8]) -> (Found<'s>, &'s mut ReplyWriter<'a>) {
    crate::commands::keys::read_typed(ctx, key, crate::storage::Entry::as_hash)
}

/// Writes a field and, with `with_value`, its value: as a 2-element array in RESP3 when
/// `nested` (HRANDFIELD ... WITHVALUES), flat otherwise.
#[inline]
fn pair_reply(out: &mut ReplyWriter, f: &[u8], v: &[u8], with_value: bool, nested: bool) {
    if with_value && nested {
        out.array(2);
    }
    out.bulk(f);
    if with_value {
        out.bulk(v);
    }
}

// ---------------------------------------------------------------------------------------
// HSET / HMSET / HSETNX
// ---------------------------------------------------------------------------------------

/// Sets HSET's field/value pairs (`args[2..]`); returns the number of new fields.
fn set_pairs(h: &mut Hash, args: &Args, lim: Limits) -> i64 {
    h.try_conversion((2..args.len()).map(|i| args.get(i)), lim);
    let mut created = 0;
    for i in (2..args.len()).step_by(2) {
        created += h.set(args.get(i), args.get(i + 1), lim) as i64;
    }
    created
}

/// Redis's `hsetCommand` (HSET and HMSET differ only in the reply).
fn hset_generic(ctx: &mut Ctx, args: Args, hmset: bool) {
    // HSET key field value ...: with the name, an even count.
    if !args.len().is_multiple_of(2) {
        return ctx.out.error(&arity_error(args.get(0)));
    }
    let lim = limits(ctx.shard);
    let key = args.get(1);
    let now = ctx.now_ms;
    let (db, out) = split(ctx);
    let created = match db.lookup(key, now) {
        Some(e) => {
            let Some(h) = e.as_hash_mut() else {
                return out.error(WRONGTYPE);
            };
            set_pairs(h, &args, lim)
        }
        None => {
            let mut h = Hash::new();
            let n = set_pairs(&mut h, &args, lim);
            db.set(key, Value::from_hash(h), 0);
            n
        }
    };
    if hmset {
        out.ok();
    } else {
        out.int(created);
    }
    ctx.modified(key, b'h', "hset");
}

/// `HSET key field value [field value ...]`
fn hset(ctx: &mut Ctx, args: Args) {
    hset_generic(ctx, args, false);
}

/// `HMSET key field value [field value ...]` (deprecated; replies `+OK`)
fn hmset(ctx: &mut Ctx, args: Args) {
    hset_generic(ctx, args, true);
}

/// `HSETNX key field value`
fn hsetnx(ctx: &mut Ctx, args: Args) {
    let lim = limits(ctx.shard);
    let (key, field, value) = (args.get(1), args.get(2), args.get(3));
    let now = ctx.now_ms;
    let (db, out) = split(ctx);
    match db.lookup(key, now) {
        Some(e) => {
            let Some(h) = e.as_hash_mut() else {
                return out.error(WRONGTYPE);
            };
            if h.contains(field) {
                return out.int(0);
            }
            h.try_conversion([field, value], lim);
            h.set(field, value, lim);
        }
        None => {
            let mut h = Hash::new();
            h.try_conversion([field, value], lim);
            h.set(field, value, lim);
            db.set(key, Value::from_hash(h), 0);
        }
    }
    out.int(1);
    ctx.modified(key, b'h', "hset");
}

// ---------------------------------------------------------------------------------------
// HGET / HMGET / HLEN / HSTRLEN / HEXISTS
// ---------------------------------------------------------------------------------------

/// `HGET key field`
fn hget(ctx: &mut Ctx, args: Args) {
    match read_hash(ctx, args.get(1)) {
        (Found::Missing, out) => out.null(),
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Is(h), out) => match h.get(args.get(2)) {
            Some(v) => out.bulk(v),
            None => out.null(),
        },
    }
}

/// `HMGET key field [field ...]`
fn hmget(ctx: &mut Ctx, args: Args) {
    let (found, out) = read_hash(ctx, args.get(1));
    let h = match found {
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Missing => None,
        Found::Is(h) => Some(h),
    };
    out.array(args.len() - 2);
    for i in 2..args.len() {
        match h.and_then(|h| h.get(args.get(i))) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    }
}

/// `HLEN key`
fn hlen(ctx: &mut Ctx, args: Args) {
    match read_hash(ctx, args.get(1)) {
        (Found::Missing, out) => out.int(0),
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Is(h), out) => out.int(h.len() as i64),
    }
}

/// `HSTRLEN key field`
fn hstrlen(ctx: &mut Ctx, args: Args) {
    match read_hash(ctx, args.get(1)) {
        (Found::Missing, out) => out.int(0),
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Is(h), out) => out.int(h.get(args.get(2)).map_or(0, |v| v.len() as i64)),
    }
}

/// `HEXISTS key field`
fn hexists(ctx: &mut Ctx, args: Args) {
    match read_hash(ctx, args.get(1)) {
        (Found::Missing, out) => out.int(0),
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Is(h), out) => out.int(h.contains(args.get(2)) as i64),
    }
}

// ---------------------------------------------------------------------------------------
// HDEL
// ---------------------------------------------------------------------------------------

/// `HDEL key field [field ...]`: deletes the key with its last field.
fn hdel(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let now = ctx.now_ms;
    let (db, out) = split(ctx);
    let Some(e) = db.lookup(key, now) else {
        return out.int(0);
    };
    let Some(h) = e.as_hash_mut() else {
        return out.error(WRONGTYPE);
    };
    let mut deleted = 0;
    let mut emptied = false;
    for i in 2..args.len() {
        if h.remove(args.get(i)) {
            deleted += 1;
            if h.is_empty() {
                emptied = true;
                break;
            }
        }
    }
    if emptied {
        db.remove(key, now);
    }
    out.int(deleted);
    if deleted > 0 {
        ctx.modified(key, b'h', "hdel");
    }
    if emptied {
        ctx.modified(key, b'g', "del");
    }
}

// ---------------------------------------------------------------------------------------
// HKEYS / HVALS / HGETALL
// ---------------------------------------------------------------------------------------

/// What Redis's `genericHgetallCommand` lists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Keys,
    Vals,
    Both,
}

/// Redis's `genericHgetallCommand`: HKEYS and HVALS reply with an array, HGETALL with a
/// map (a flat array in RESP2).
fn hgetall_generic(ctx: &mut Ctx, args: Args, part: Part) {
    let (found, out) = read_hash(ctx, args.get(1));
    let h = match found {
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Missing if part == Part::Both => return out.map(0),
        Found::Missing => return out.array(0),
        Found::Is(h) => h,
    };
    match part {
        Part::Both => out.map(h.len()),
        _ => out.array(h.len()),
    }
    for (f, v) in h.iter() {
        if part != Part::Vals {
            out.bulk(f);
        }
        if part != Part::Keys {
            out.bulk(v);
        }
    }
}

/// `HKEYS key`
fn hkeys(ctx: &mut Ctx, args: Args) {
    hgetall_generic(ctx, args, Part::Keys);
}

/// `HVALS key`
fn hvals(ctx: &mut Ctx, args: Args) {
    hgetall_generic(ctx, args, Part::Vals);
}

/// `HGETALL key`
fn hgetall(ctx: &mut Ctx, args: Args) {
    hgetall_generic(ctx, args, Part::Both);
}

// ---------------------------------------------------------------------------------------
// HINCRBY / HINCRBYFLOAT
// ---------------------------------------------------------------------------------------

/// `HINCRBY key field increment`
fn hincrby(ctx: &mut Ctx, args: Args) {
    let Some(incr) = parse_int(args.get(3)) else {
        return ctx.out.error(NOT_INT);
    };
    let lim = limits(ctx.shard);
    let (key, field) = (args.get(1), args.get(2));
    let now = ctx.now_ms;
    let (db, out) = split(ctx);
    let mut buf = itoa::Buffer::new();
    match db.lookup(key, now) {
        Some(e) => {
            let Some(h) = e.as_hash_mut() else {
                return out.error(WRONGTYPE);
            };
            let cur = match h.get(field) {
                None => 0,
                Some(v) => match parse_i64(v) {
                    Some(n) => n,
                    None => return out.error(HASH_NOT_INT),
                },
            };
            let Some(new) = cur.checked_add(incr) else {
                return out.error(OVERFLOW);
            };
            h.set(field, buf.format(new).as_bytes(), lim);
            out.int(new);
        }
        None => {
            let mut h = Hash::new();
            h.set(field, buf.format(incr).as_bytes(), lim);
            db.set(key, Value::from_hash(h), 0);
            out.int(incr);
        }
    }
    ctx.modified(key, b'h', "hincrby");
}

/// `HINCRBYFLOAT key field increment`: computed and printed as Redis does with x87
/// `long double`; the field holds the printed result.
fn hincrbyfloat(ctx: &mut Ctx, args: Args) {
    let Some(incr) = long_double::parse(args.get(3)) else {
        return ctx.out.error(NOT_FLOAT);
    };
    if incr == long_double::Num::Inf {
        return ctx.out.error(b"ERR value is NaN or Infinity");
    }
    let lim = limits(ctx.shard);
    let (key, field) = (args.get(1), args.get(2));
    let now = ctx.now_ms;
    let (db, out) = split(ctx);
    let entry = db.lookup(key, now);
    let cur = match &entry {
        None => long_double::Num::from_i64(0),
        Some(e) => {
            let Some(h) = e.as_hash() else {
                return out.error(WRONGTYPE);
            };
            match h.get(field) {
                None => long_double::Num::from_i64(0),
                Some(v) => match long_double::parse(v) {
                    Some(n) => n,
                    None => return out.error(HASH_NOT_FLOAT),
                },
            }
        }
    };
    let Some(sum) = long_double::add(cur, incr) else {
        return out.error(b"ERR increment would produce NaN or Infinity");
    };
    let text = long_double::format_human(&sum);
    match entry.and_then(|e| e.as_hash_mut()) {
        Some(h) => {
            h.set(field, &text, lim);
        }
        None => {
            let mut h = Hash::new();
            h.set(field, &text, lim);
            db.set(key, Value::from_hash(h), 0);
        }
    }
    out.bulk(&text);
    ctx.modified(key, b'h', "hincrbyfloat");
}

// ---------------------------------------------------------------------------------------
// HRANDFIELD
// ---------------------------------------------------------------------------------------

/// `HRANDFIELD key [count [WITHVALUES]]`
fn hrandfield(ctx: &mut Ctx, args: Args) {
    if args.len() >= 3 {
        let Some(count) = parse_int(args.get(2)) else {
            return ctx.out.error(NOT_INT);
        };
        if count == i64::MIN {
            return ctx.out.error(
                b"ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            );
        }
        if args.len() > 4 || (args.len() == 4 && !eq_ic(args.get(3), "withvalues")) {
            return ctx.out.error(SYNTAX_ERR);
        }
        let with_values = args.len() == 4;
        if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
            return ctx.out.error(b"ERR value is out of range");
        }
        return hrandfield_count(ctx, args.get(1), count, with_values);
    }
    let (h, out) = match read_hash(ctx, args.get(1)) {
        (Found::Missing, out) => return out.null(),
        (Found::WrongType, out) => return out.error(WRONGTYPE),
        (Found::Is(h), out) => (h, out),
    };
    let i = rand::thread_rng().gen_range(0..h.len());
    if let Some((f, _)) = h.pair_at(i) {
        out.bulk(f);
    }
}

/// Redis's `hrandfieldWithCountCommand`: a negative count may repeat fields; a positive
/// one returns distinct fields, the whole hash (in its order) when the count reaches its
/// size. With values, RESP3 nests each pair in an array.
fn hrandfield_count(ctx: &mut Ctx, key: &[u8], count: i64, with_values: bool) {
    let (found, out) = read_hash(ctx, key);
    let h = match found {
        Found::Missing => return out.array(0),
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Is(h) => h,
    };
    let (n, unique) = (count.unsigned_abs() as usize, count >= 0);
    if n == 0 {
        return out.array(0);
    }
    let nested = out.resp3;
    let header = |out: &mut ReplyWriter, len: usize| {
        out.array(if with_values && !nested { len * 2 } else { len });
    };
    let size = h.len();
    let mut rng = rand::thread_rng();
    if !unique || n == 1 {
        header(out, n);
        let pairs: Vec<(&[u8], &[u8])> = h.iter().collect();
        for _ in 0..n {
            let (f, v) = pairs[rng.gen_range(0..size)];
            pair_reply(out, f, v, with_values, nested);
        }
        return;
    }
    header(out, n.min(size));
    if n >= size {
        for (f, v) in h.iter() {
            pair_reply(out, f, v, with_values, nested);
        }
        return;
    }
    // n distinct pairs: a partial Fisher-Yates shuffle.
    let mut pairs: Vec<(&[u8], &[u8])> = h.iter().collect();
    for i in 0..n {
        let j = rng.gen_range(i..size);
        pairs.swap(i, j);
        let (f, v) = pairs[i];
        pair_reply(out, f, v, with_values, nested);
    }
}

// ---------------------------------------------------------------------------------------
// HSCAN
// ---------------------------------------------------------------------------------------

/// `HSCAN key cursor [MATCH pattern] [COUNT count]`
///
/// A listpack hash is returned whole with cursor 0 (as Redis does); a hashtable is
/// walked by [`Hash::scan`].
fn hscan(ctx: &mut Ctx, args: Args) {
    let Some(cursor) = parse_cursor(args.get(2)) else {
        return ctx.out.error(b"ERR invalid cursor");
    };
    let (found, out) = read_hash(ctx, args.get(1));
    let h = match found {
        Found::Missing => {
            out.array(2);
            out.bulk(b"0");
            return out.array(0);
        }
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Is(h) => h,
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
    let mut items: Vec<(&[u8], &[u8])> = Vec::new();
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let next = h.scan(cursor, count, |f, v| {
        // Redis's stringmatchlen never matches an empty field with a non-empty pattern.
        let keep = match pattern {
            None => true,
            Some(p) if f.is_empty() => p.is_empty(),
            Some(p) => crate::config::glob_match(p, f, false),
        };
        if keep {
            items.push((f, v));
        }
    });
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(items.len() * 2);
    for (f, v) in items {
        out.bulk(f);
        out.bulk(v);
    }
}
