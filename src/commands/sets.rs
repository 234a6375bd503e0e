//! Set commands: SADD, SREM, SCARD, SISMEMBER, SMISMEMBER, SMEMBERS, SRANDMEMBER, SPOP,
//! SMOVE, SINTER, SINTERCARD, SUNION, SDIFF, SINTERSTORE, SUNIONSTORE, SDIFFSTORE, SSCAN.
//!
//! Behaviour, reply types and error texts follow Redis 7.0 (`t_set.c`): the order in which
//! arguments are checked against the keys' types, which lookups count as keyspace hits or
//! misses, when an "intset" becomes a "hashtable" (see [`crate::storage::set`]), how the
//! result of a set operation is built (it starts as an intset, like Redis's, so SUNION of
//! intsets replies in ascending order and SINTERSTORE of integers stores an intset), that
//! a set whose last member goes is deleted, and that a `*STORE` with an empty result
//! deletes its destination.
//!
//! The multi-key commands run on one shard when all their keys live there; otherwise a
//! coordinator (`*_cross`) locks every key on every shard involved (in shard order), reads
//! the source sets (copies of them) shard by shard, computes the result, writes the
//! destination on its shard and unlocks, so no client sees a partial result.

use crate::commands::keys::{cross_setup, lookup_read, parse_cursor, split};
use crate::commands::{
    eq_ic, flags, parse_int, AsyncCtx, CommandSpec, Ctx, Handler, ReplyFuture, NOT_INT, SYNTAX_ERR,
    WRONGTYPE,
};
use crate::protocol::parse::{Args, OwnedArgs};
use crate::protocol::reply::ReplyWriter;
use crate::shard::{now_ms, ShardData};
use crate::storage::set::{Member, Set};
use crate::storage::Value;
use rand::Rng;

/// Shorthand for a keyed command without a coordinator.
const fn local(run: crate::commands::KeyedFn) -> Handler {
    Handler::Keyed { run, cross: None }
}

/// Shorthand for a keyed command with a cross-shard coordinator.
const fn both(run: crate::commands::KeyedFn, cross: crate::commands::AsyncFn) -> Handler {
    Handler::Keyed {
        run,
        cross: Some(cross),
    }
}

/// The set commands, as Redis 7.0's COMMAND INFO describes them. SINTERCARD's keys follow
/// its `numkeys` argument; its key range here is every argument from the first key on
/// (the LIMIT words included), which only makes routing more conservative.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "sadd",
        -3,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @set @fast",
        local(sadd),
    ),
    CommandSpec::new(
        "srem",
        -3,
        flags::WRITE | flags::FAST,
        (1, 1, 1),
        "@write @set @fast",
        local(srem),
    ),
    CommandSpec::new(
        "smove",
        4,
        flags::WRITE | flags::FAST,
        (1, 2, 1),
        "@write @set @fast",
        both(smove, smove_cross),
    ),
    CommandSpec::new(
        "sismember",
        3,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@read @set @fast",
        local(sismember),
    ),
    CommandSpec::new(
        "smismember",
        -3,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@read @set @fast",
        local(smismember),
    ),
    CommandSpec::new(
        "scard",
        2,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@read @set @fast",
        local(scard),
    ),
    CommandSpec::new(
        "spop",
        -2,
        flags::WRITE | flags::FAST,
        (1, 1, 1),
        "@write @set @fast",
        local(spop),
    ),
    CommandSpec::new(
        "srandmember",
        -2,
        flags::READONLY,
        (1, 1, 1),
        "@read @set @slow",
        local(srandmember),
    ),
    CommandSpec::new(
        "sinter",
        -2,
        flags::READONLY,
        (1, -1, 1),
        "@read @set @slow",
        both(sinter, sinter_cross),
    ),
    CommandSpec::new(
        "sintercard",
        -3,
        flags::READONLY,
        (2, -1, 1),
        "@read @set @slow",
        both(sintercard, sintercard_cross),
    ),
    CommandSpec::new(
        "sinterstore",
        -3,
        flags::WRITE | flags::DENYOOM,
        (1, -1, 1),
        "@write @set @slow",
        both(sinterstore, sinterstore_cross),
    ),
    CommandSpec::new(
        "sunion",
        -2,
        flags::READONLY,
        (1, -1, 1),
        "@read @set @slow",
        both(sunion, sunion_cross),
    ),
    CommandSpec::new(
        "sunionstore",
        -3,
        flags::WRITE | flags::DENYOOM,
        (1, -1, 1),
        "@write @set @slow",
        both(sunionstore, sunionstore_cross),
    ),
    CommandSpec::new(
        "sdiff",
        -2,
        flags::READONLY,
        (1, -1, 1),
        "@read @set @slow",
        both(sdiff, sdiff_cross),
    ),
    CommandSpec::new(
        "sdiffstore",
        -3,
        flags::WRITE | flags::DENYOOM,
        (1, -1, 1),
        "@write @set @slow",
        both(sdiffstore, sdiffstore_cross),
    ),
    CommandSpec::new(
        "smembers",
        2,
        flags::READONLY,
        (1, 1, 1),
        "@read @set @slow",
        local(smembers),
    ),
    CommandSpec::new(
        "sscan",
        -3,
        flags::READONLY,
        (1, 1, 1),
        "@read @set @slow",
        local(sscan),
    ),
];

/// SPOP's count error (Redis's `getPositiveLongFromObjectOrReply` without a message).
const NOT_POSITIVE: &[u8] = b"ERR value is out of range, must be positive";

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// `set-max-intset-entries` as this shard's configuration has it (CONFIG SET changes it).
pub fn max_intset(shard: &ShardData) -> usize {
    shard.config_usize("set-max-intset-entries", 512)
}

/// What a read lookup of a set found.
type Found<'a> = crate::commands::keys::Found<'a, Set>;

/// Looks `key` up for reading like Redis's `lookupKeyRead` (counts a keyspace hit or
/// miss, stamps the access time).
#[inline]
fn read_set<'s, 'a>(ctx: &'s mut Ctx<'a>, key: &[u8]) -> (Found<'s>, &'s mut ReplyWriter<'a>) {
    crate::commands::keys::read_typed(ctx, key, crate::storage::Entry::as_set)
}

/// Writes the empty-scan reply (`0` and no elements).
fn empty_scan(out: &mut ReplyWriter) {
    out.array(2);
    out.bulk(b"0");
    out.array(0);
}

// ---------------------------------------------------------------------------------------
// SADD / SREM
// ---------------------------------------------------------------------------------------

/// `SADD key member [member ...]`
fn sadd(ctx: &mut Ctx, args: Args) {
    let max = max_intset(ctx.shard);
    let key = args.get(1);
    let now = ctx.now_ms;
    let (db, out) = split(ctx);
    let added = match db.lookup(key, now) {
        Some(e) => {
            let Some(s) = e.as_set_mut() else {
                return out.error(WRONGTYPE);
            };
            (2..args.len()).filter(|&i| s.add(args.get(i), max)).count()
        }
        None => {
            let mut s = Set::new_for(args.get(2));
            let n = (2..args.len()).filter(|&i| s.add(args.get(i), max)).count();
            db.set(key, Value::from_set(s), 0);
            n
        }
    };
    out.int(added as i64);
    if added > 0 {
        ctx.modified(key, b's', "sadd");
    }
}

/// `SREM key member [member ...]`: deletes the key with its last member.
fn srem(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let now = ctx.now_ms;
    let (db, out) = split(ctx);
    let Some(e) = db.lookup(key, now) else {
        return out.int(0);
    };
    let Some(s) = e.as_set_mut() else {
        return out.error(WRONGTYPE);
    };
    let mut deleted = 0;
    let mut emptied = false;
    for i in 2..args.len() {
        if s.remove(args.get(i)) {
            deleted += 1;
            if s.is_empty() {
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
        ctx.modified(key, b's', "srem");
        if emptied {
            ctx.modified(key, b'g', "del");
        }
    }
}

// ---------------------------------------------------------------------------------------
// SISMEMBER / SMISMEMBER / SCARD
// ---------------------------------------------------------------------------------------

/// `SISMEMBER key member`
fn sismember(ctx: &mut Ctx, args: Args) {
    match read_set(ctx, args.get(1)) {
        (Found::Missing, out) => out.int(0),
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Is(s), out) => out.int(s.contains(args.get(2)) as i64),
    }
}

/// `SMISMEMBER key member [member ...]`: a missing key is an empty set.
fn smismember(ctx: &mut Ctx, args: Args) {
    let (found, out) = read_set(ctx, args.get(1));
    let s = match found {
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Missing => None,
        Found::Is(s) => Some(s),
    };
    out.array(args.len() - 2);
    for i in 2..args.len() {
        out.int(s.is_some_and(|s| s.contains(args.get(i))) as i64);
    }
}

/// `SCARD key`
fn scard(ctx: &mut Ctx, args: Args) {
    match read_set(ctx, args.get(1)) {
        (Found::Missing, out) => out.int(0),
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Is(s), out) => out.int(s.len() as i64),
    }
}

// ---------------------------------------------------------------------------------------
// SPOP / SRANDMEMBER
// ---------------------------------------------------------------------------------------

/// Redis's `SPOP_MOVE_STRATEGY_MUL`: past this ratio SPOP keeps the few remaining members
/// in a new set instead of popping one by one.
const SPOP_MOVE_STRATEGY_MUL: usize = 5;

/// `SPOP key [count]`
fn spop(ctx: &mut Ctx, args: Args) {
    if args.len() == 3 {
        return spop_count(ctx, args);
    }
    if args.len() > 3 {
        return ctx.out.error(SYNTAX_ERR);
    }
    let key = args.get(1);
    let now = ctx.now_ms;
    let (db, out) = split(ctx);
    let Some(e) = db.lookup(key, now) else {
        return out.null();
    };
    let Some(s) = e.as_set_mut() else {
        return out.error(WRONGTYPE);
    };
    let popped = s.pop_random(&mut rand::thread_rng());
    popped.as_member().reply(out);
    let emptied = s.is_empty();
    if emptied {
        db.remove(key, now);
    }
    ctx.modified(key, b's', "spop");
    if emptied {
        ctx.modified(key, b'g', "del");
    }
}

/// Redis's `spopWithCountCommand`.
fn spop_count(ctx: &mut Ctx, args: Args) {
    let count = match parse_int(args.get(2)) {
        Some(c) if c >= 0 => c as u64,
        _ => return ctx.out.error(NOT_POSITIVE),
    };
    let max = max_intset(ctx.shard);
    let key = args.get(1);
    let now = ctx.now_ms;
    let (db, out) = split(ctx);
    let Some(e) = db.lookup(key, now) else {
        return out.set(0);
    };
    let Some(s) = e.as_set_mut() else {
        return out.error(WRONGTYPE);
    };
    if count == 0 {
        return out.set(0);
    }
    let size = s.len();
    if count >= size as u64 {
        // The whole set, as SUNION of it would reply, and the key goes.
        let all = union_diff(&[key], &[Some(&*s)], Op::Union, max);
        reply_set(out, &all);
        db.remove(key, now);
        ctx.modified(key, b's', "spop");
        ctx.modified(key, b'g', "del");
        return;
    }
    let count = count as usize;
    let remaining = size - count;
    let mut rng = rand::thread_rng();
    out.set(count);
    if remaining * SPOP_MOVE_STRATEGY_MUL > count {
        for _ in 0..count {
            s.pop_random(&mut rng).as_member().reply(out);
        }
    } else {
        // Move the members that stay into a new set; reply with what is left behind.
        let mut kept: Option<Set> = None;
        for _ in 0..remaining {
            let p = s.pop_random(&mut rng);
            let m = p.as_member();
            let k = kept.get_or_insert_with(|| m.with_bytes(Set::new_for));
            k.add_member(m, max);
        }
        for m in s.iter() {
            m.reply(out);
        }
        if let Some(k) = kept {
            *s = k;
        }
    }
    ctx.modified(key, b's', "spop");
}

/// Redis's `SRANDMEMBER_SUB_STRATEGY_MUL`.
const SRANDMEMBER_SUB_STRATEGY_MUL: usize = 3;

/// `SRANDMEMBER key [count]`
fn srandmember(ctx: &mut Ctx, args: Args) {
    if args.len() == 3 {
        return srandmember_count(ctx, args);
    }
    if args.len() > 3 {
        return ctx.out.error(SYNTAX_ERR);
    }
    match read_set(ctx, args.get(1)) {
        (Found::Missing, out) => out.null(),
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Is(s), out) => s.random(&mut rand::thread_rng()).reply(out),
    }
}

/// Redis's `srandmemberWithCountCommand`: a negative count may repeat members; a positive
/// one returns distinct members, the whole set (in its order) when the count reaches its
/// size. Always an array, even in RESP3.
fn srandmember_count(ctx: &mut Ctx, args: Args) {
    let Some(count) = parse_int(args.get(2)) else {
        return ctx.out.error(NOT_INT);
    };
    if count == i64::MIN {
        return ctx.out.error(
            b"ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        );
    }
    let (found, out) = read_set(ctx, args.get(1));
    let s = match found {
        Found::Missing => return out.array(0),
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Is(s) => s,
    };
    let (n, unique) = (count.unsigned_abs() as usize, count >= 0);
    if n == 0 {
        return out.array(0);
    }
    let mut rng = rand::thread_rng();
    if !unique || n == 1 {
        out.array(n);
        for _ in 0..n {
            s.random(&mut rng).reply(out);
        }
        return;
    }
    let size = s.len();
    if n >= size {
        out.array(size);
        s.iter().for_each(|m| m.reply(out));
        return;
    }
    // n distinct members, in random order.
    out.array(n);
    if n * SRANDMEMBER_SUB_STRATEGY_MUL > size {
        let mut all: Vec<Member> = s.iter().collect();
        for i in 0..n {
            let j = rng.gen_range(i..size);
            all.swap(i, j);
            all[i].reply(out);
        }
    } else {
        let mut picked: hashbrown::HashSet<usize> = hashbrown::HashSet::with_capacity(n);
        let all: Vec<Member> = if matches!(s, Set::Ints(_)) {
            Vec::new()
        } else {
            s.iter().collect()
        };
        while picked.len() < n {
            let i = rng.gen_range(0..size);
            if picked.insert(i) {
                match s {
                    Set::Ints(is) => out.bulk_int(is.get(i)),
                    Set::Table(_) => all[i].reply(out),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Set algebra (shared by the single-shard and cross-shard paths)
// ---------------------------------------------------------------------------------------

/// Calls `f` with each member of the intersection of `sets` (`None` = missing key = empty)
/// until it returns false, as Redis's `sinterGenericCommand` walks them: the members of
/// the smallest set, in its order, that every other set holds. A key named twice is the
/// same set.
fn inter<'a>(keys: &[&[u8]], sets: &[Option<&'a Set>], mut f: impl FnMut(Member<'a>) -> bool) {
    if sets.iter().any(Option::is_none) {
        return;
    }
    let mut order: Vec<usize> = (0..sets.len()).collect();
    order.sort_by_key(|&i| sets[i].map_or(0, Set::len));
    let first = order[0];
    let Some(smallest) = sets[first] else {
        return;
    };
    'members: for m in smallest.iter() {
        for &j in &order[1..] {
            if keys[j] == keys[first] {
                continue;
            }
            if let Some(s) = sets[j] {
                if !s.contains_member(m) {
                    continue 'members;
                }
            }
        }
        if !f(m) {
            return;
        }
    }
}

/// SUNION or SDIFF.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Diff,
}

/// Redis's `sunionDiffGenericCommand`: the union or difference of `sets` as a new set,
/// built like Redis builds it (starting as an intset; for a difference, the cheaper of
/// Redis's two algorithms, which can leave a different encoding).
fn union_diff(keys: &[&[u8]], sets: &[Option<&Set>], op: Op, max: usize) -> Set {
    let mut dst = Set::new_ints();
    if op == Op::Union {
        for s in sets.iter().flatten() {
            for m in s.iter() {
                dst.add_member(m, max);
            }
        }
        return dst;
    }
    let Some(first) = sets[0] else {
        return dst;
    };
    let same = (1..sets.len()).any(|j| sets[j].is_some() && keys[j] == keys[0]);
    if same {
        return dst;
    }
    let (mut one, mut two) = (0usize, 0usize);
    for s in sets.iter().flatten() {
        one += first.len();
        two += s.len();
    }
    if one / 2 <= two {
        'members: for m in first.iter() {
            for s in sets[1..].iter().flatten() {
                if s.contains_member(m) {
                    continue 'members;
                }
            }
            dst.add_member(m, max);
        }
    } else {
        for m in first.iter() {
            dst.add_member(m, max);
        }
        for s in sets[1..].iter().flatten() {
            for m in s.iter() {
                dst.remove_member(m);
            }
            if dst.is_empty() {
                break;
            }
        }
    }
    dst
}

/// Replies with a whole set (a RESP3 set, an array in RESP2).
fn reply_set(out: &mut ReplyWriter, s: &Set) {
    out.set(s.len());
    s.iter().for_each(|m| m.reply(out));
}

/// What a multi-key command computes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// SINTER / SMEMBERS / SINTERSTORE.
    Inter,
    /// SINTERCARD with a limit (0 = none).
    Card(usize),
    /// SUNION / SUNIONSTORE.
    Union,
    /// SDIFF / SDIFFSTORE.
    Diff,
}

impl Kind {
    /// The keyspace event of the `*STORE` form.
    fn store_event(self) -> &'static str {
        match self {
            Kind::Union => "sunionstore",
            Kind::Diff => "sdiffstore",
            _ => "sinterstore",
        }
    }
}

/// The outcome of a multi-key command, before it is written.
enum Outcome {
    /// A reply to send as is.
    Reply(Vec<u8>),
    /// A set to store at the destination (empty = delete the destination).
    Store(Set),
}

/// Computes `kind` over `sets`: the reply (`resp3` selects its protocol) or, with
/// `store`, the set to store.
fn compute(
    kind: Kind,
    keys: &[&[u8]],
    sets: &[Option<&Set>],
    store: bool,
    max: usize,
    resp3: bool,
) -> Outcome {
    let mut buf = Vec::new();
    let mut out = ReplyWriter::new(&mut buf, resp3);
    match kind {
        Kind::Inter if store => {
            let mut dst = Set::new_ints();
            inter(keys, sets, |m| {
                dst.add_member(m, max);
                true
            });
            return Outcome::Store(dst);
        }
        Kind::Inter => {
            let mut found = Vec::new();
            inter(keys, sets, |m| {
                found.push(m);
                true
            });
            out.set(found.len());
            found.iter().for_each(|m| m.reply(&mut out));
        }
        Kind::Card(limit) => {
            let mut n = 0usize;
            inter(keys, sets, |_| {
                n += 1;
                limit == 0 || n < limit
            });
            out.int(n as i64);
        }
        Kind::Union | Kind::Diff => {
            let op = if kind == Kind::Union {
                Op::Union
            } else {
                Op::Diff
            };
            let dst = union_diff(keys, sets, op, max);
            if store {
                return Outcome::Store(dst);
            }
            reply_set(&mut out, &dst);
        }
    }
    Outcome::Reply(buf)
}

/// Writes a `*STORE` result: sets `dst` (replacing any value and its TTL) and returns its
/// size, or deletes `dst` for an empty result. Raises the keyspace events.
fn store_result(
    d: &mut ShardData,
    db: usize,
    dst: &[u8],
    result: Set,
    event: &'static str,
    now: u64,
) -> i64 {
    if result.is_empty() {
        if d.dbs[db].remove(dst, now).is_some() {
            d.modified(db, dst, b'g', "del");
        }
        return 0;
    }
    let n = result.len() as i64;
    d.dbs[db].set(dst, Value::from_set(result), 0);
    d.modified(db, dst, b's', event);
    n
}

/// Looks every source key up for reading, like Redis's loop of `lookupKeyRead` and
/// `checkType`; false when one holds another type.
fn check_sources(d: &mut ShardData, db: usize, keys: &[&[u8]], now: u64) -> bool {
    for k in keys {
        if let Some(e) = lookup_read(d, db, k, now) {
            if e.as_set().is_none() {
                return false;
            }
        }
    }
    true
}

/// Runs `kind` over `src` on this shard; `dst` for the `*STORE` forms.
fn setop_local(ctx: &mut Ctx, kind: Kind, dst: Option<&[u8]>, src: &[&[u8]]) {
    let now = ctx.now_ms;
    if !check_sources(ctx.shard, ctx.db, src, now) {
        return ctx.out.error(WRONGTYPE);
    }
    let max = max_intset(ctx.shard);
    let resp3 = ctx.out.resp3;
    let db = &ctx.shard.dbs[ctx.db];
    let sets: Vec<Option<&Set>> = src
        .iter()
        .map(|k| db.get(k, now).and_then(|e| e.as_set()))
        .collect();
    match compute(kind, src, &sets, dst.is_some(), max, resp3) {
        Outcome::Reply(bytes) => ctx.out.raw(&bytes),
        Outcome::Store(result) => {
            let dst = dst.unwrap_or_default();
            let n = store_result(ctx.shard, ctx.db, dst, result, kind.store_event(), now);
            ctx.out.int(n);
        }
    }
}

/// The source keys `args[from..]`.
fn keys_from<'a>(args: &'a Args, from: usize) -> Vec<&'a [u8]> {
    (from..args.len()).map(|i| args.get(i)).collect()
}

/// `SMEMBERS key` (Redis 7.0 runs SINTER with one key)
fn smembers(ctx: &mut Ctx, args: Args) {
    setop_local(ctx, Kind::Inter, None, &[args.get(1)]);
}

/// `SINTER key [key ...]`
fn sinter(ctx: &mut Ctx, args: Args) {
    setop_local(ctx, Kind::Inter, None, &keys_from(&args, 1));
}

/// `SINTERSTORE destination key [key ...]`
fn sinterstore(ctx: &mut Ctx, args: Args) {
    setop_local(ctx, Kind::Inter, Some(args.get(1)), &keys_from(&args, 2));
}

/// `SUNION key [key ...]`
fn sunion(ctx: &mut Ctx, args: Args) {
    setop_local(ctx, Kind::Union, None, &keys_from(&args, 1));
}

/// `SUNIONSTORE destination key [key ...]`
fn sunionstore(ctx: &mut Ctx, args: Args) {
    setop_local(ctx, Kind::Union, Some(args.get(1)), &keys_from(&args, 2));
}

/// `SDIFF key [key ...]`
fn sdiff(ctx: &mut Ctx, args: Args) {
    setop_local(ctx, Kind::Diff, None, &keys_from(&args, 1));
}

/// `SDIFFSTORE destination key [key ...]`
fn sdiffstore(ctx: &mut Ctx, args: Args) {
    setop_local(ctx, Kind::Diff, Some(args.get(1)), &keys_from(&args, 2));
}

/// Parses `SINTERCARD numkeys key [key ...] [LIMIT limit]` like Redis's
/// `sinterCardCommand`: (number of keys, limit, 0 = none), or the error.
fn parse_sintercard(args: &Args) -> Result<(usize, usize), &'static [u8]> {
    let numkeys = match parse_int(args.get(1)) {
        Some(n) if n >= 1 => n as u64,
        _ => return Err(b"ERR numkeys should be greater than 0"),
    };
    if numkeys > (args.len() - 2) as u64 {
        return Err(b"ERR Number of keys can't be greater than number of args");
    }
    let numkeys = numkeys as usize;
    let mut limit = 0usize;
    let mut j = 2 + numkeys;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if eq_ic(args.get(j), "limit") && more > 0 {
            j += 1;
            match parse_int(args.get(j)) {
                Some(l) if l >= 0 => limit = usize::try_from(l).unwrap_or(usize::MAX),
                _ => return Err(b"ERR LIMIT can't be negative"),
            }
        } else {
            return Err(SYNTAX_ERR);
        }
        j += 1;
    }
    Ok((numkeys, limit))
}

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`
fn sintercard(ctx: &mut Ctx, args: Args) {
    let (numkeys, limit) = match parse_sintercard(&args) {
        Ok(p) => p,
        Err(m) => return ctx.out.error(m),
    };
    let keys: Vec<&[u8]> = (2..2 + numkeys).map(|i| args.get(i)).collect();
    setop_local(ctx, Kind::Card(limit), None, &keys);
}

// ---------------------------------------------------------------------------------------
// Cross-shard set algebra
// ---------------------------------------------------------------------------------------

/// A source set as read on its shard: `Err` for another type, `None` for a missing key.
type Read = Result<Option<Set>, ()>;

/// Runs `kind` over `src` (and stores into `dst`) with the keys on several shards: locks
/// every key, copies the sources from their shards, computes here, writes the destination
/// on its shard, unlocks.
async fn setop_cross(
    ctx: &AsyncCtx,
    kind: Kind,
    dst: Option<Vec<u8>>,
    src: Vec<Vec<u8>>,
) -> Vec<u8> {
    let db = ctx.client.db;
    let src_refs: Vec<&[u8]> = src.iter().map(|k| &k[..]).collect();
    let (mut groups, work) = cross_setup(ctx, db, &src_refs);
    if let Some(d) = &dst {
        for (s, keys) in ctx.shards.group_keys(db, [&d[..]]) {
            let list = groups.entry(s).or_default();
            for k in keys {
                if !list.contains(&k) {
                    list.push(k);
                }
            }
        }
    }
    ctx.lock(&groups).await;
    let per_shard = ctx
        .shards
        .run_on_each(work, move |d, items: Vec<(usize, Vec<u8>)>| {
            let now = now_ms();
            items
                .into_iter()
                .map(|(i, k)| {
                    let r: Read = match lookup_read(d, db, &k, now) {
                        None => Ok(None),
                        Some(e) => match e.as_set() {
                            Some(s) => Ok(Some(s.clone())),
                            None => Err(()),
                        },
                    };
                    (i, r)
                })
                .collect::<Vec<_>>()
        })
        .await;
    let mut owned: Vec<Option<Set>> = (0..src.len()).map(|_| None).collect();
    let mut wrong = false;
    for (i, r) in per_shard.into_iter().flatten() {
        match r {
            Ok(s) => owned[i] = s,
            Err(()) => wrong = true,
        }
    }
    let mut buf = Vec::new();
    if wrong {
        ctx.writer(&mut buf).error(WRONGTYPE);
    } else {
        let max = max_intset(&ctx.shards.data.borrow());
        let sets: Vec<Option<&Set>> = owned.iter().map(Option::as_ref).collect();
        match compute(kind, &src_refs, &sets, dst.is_some(), max, ctx.client.resp3) {
            Outcome::Reply(bytes) => buf = bytes,
            Outcome::Store(result) => {
                let dst = dst.unwrap_or_default();
                let event = kind.store_event();
                let n = ctx
                    .shards
                    .run_on(ctx.shards.owner(&dst), move |d| {
                        store_result(d, db, &dst, result, event, now_ms())
                    })
                    .await;
                ctx.writer(&mut buf).int(n);
            }
        }
    }
    ctx.unlock(&groups).await;
    buf
}

/// The arguments from `from` on, owned.
fn owned_keys(args: &OwnedArgs, from: usize) -> Vec<Vec<u8>> {
    let a = args.view();
    (from..a.len()).map(|i| a.get(i).to_vec()).collect()
}

/// Cross-shard SINTER.
fn sinter_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move { setop_cross(&ctx, Kind::Inter, None, owned_keys(&args, 1)).await })
}

/// Cross-shard SINTERSTORE.
fn sinterstore_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let dst = args.view().get(1).to_vec();
        setop_cross(&ctx, Kind::Inter, Some(dst), owned_keys(&args, 2)).await
    })
}

/// Cross-shard SUNION.
fn sunion_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move { setop_cross(&ctx, Kind::Union, None, owned_keys(&args, 1)).await })
}

/// Cross-shard SUNIONSTORE.
fn sunionstore_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let dst = args.view().get(1).to_vec();
        setop_cross(&ctx, Kind::Union, Some(dst), owned_keys(&args, 2)).await
    })
}

/// Cross-shard SDIFF.
fn sdiff_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move { setop_cross(&ctx, Kind::Diff, None, owned_keys(&args, 1)).await })
}

/// Cross-shard SDIFFSTORE.
fn sdiffstore_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let dst = args.view().get(1).to_vec();
        setop_cross(&ctx, Kind::Diff, Some(dst), owned_keys(&args, 2)).await
    })
}

/// Cross-shard SINTERCARD.
fn sintercard_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let (numkeys, limit) = match parse_sintercard(&a) {
            Ok(p) => p,
            Err(m) => {
                let mut buf = Vec::new();
                ctx.writer(&mut buf).error(m);
                return buf;
            }
        };
        let keys: Vec<Vec<u8>> = (2..2 + numkeys).map(|i| a.get(i).to_vec()).collect();
        setop_cross(&ctx, Kind::Card(limit), None, keys).await
    })
}

// ---------------------------------------------------------------------------------------
// SMOVE
// ---------------------------------------------------------------------------------------

/// `SMOVE source destination member`
fn smove(ctx: &mut Ctx, args: Args) {
    let (src, dst, m) = (args.get(1), args.get(2), args.get(3));
    let now = ctx.now_ms;
    let max = max_intset(ctx.shard);
    let (db, out) = split(ctx);
    // Redis looks both keys up (for writing) before checking either type.
    let dst_state = db.lookup(dst, now).map(|e| e.as_set().is_some());
    let Some(e) = db.lookup(src, now) else {
        return out.int(0);
    };
    let Some(s) = e.as_set_mut() else {
        return out.error(WRONGTYPE);
    };
    if dst_state == Some(false) {
        return out.error(WRONGTYPE);
    }
    if src == dst {
        return out.int(s.contains(m) as i64);
    }
    if !s.remove(m) {
        return out.int(0);
    }
    let emptied = s.is_empty();
    if emptied {
        db.remove(src, now);
    }
    let added = match db.lookup(dst, now).and_then(|e| e.as_set_mut()) {
        Some(d) => d.add(m, max),
        None => {
            let mut d = Set::new_for(m);
            d.add(m, max);
            db.set(dst, Value::from_set(d), 0);
            true
        }
    };
    out.int(1);
    ctx.modified(src, b's', "srem");
    if emptied {
        ctx.modified(src, b'g', "del");
    }
    if added {
        ctx.modified(dst, b's', "sadd");
    }
}

/// What SMOVE found at its destination.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DstState {
    Missing,
    Set,
    WrongType,
}

/// Cross-shard SMOVE: under the locks of both keys, checks the destination's type, takes
/// the member out of the source on its shard, adds it to the destination on its shard.
fn smove_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let db = ctx.client.db;
        let (src, dst, m) = (a.get(1).to_vec(), a.get(2).to_vec(), a.get(3).to_vec());
        let (src_shard, dst_shard) = (ctx.shards.owner(&src), ctx.shards.owner(&dst));
        let groups = ctx.shards.group_keys(db, [&src[..], &dst[..]]);
        ctx.lock(&groups).await;
        let k = dst.clone();
        let dst_state = ctx
            .shards
            .run_on(dst_shard, move |d| match d.dbs[db].lookup(&k, now_ms()) {
                None => DstState::Missing,
                Some(e) if e.as_set().is_some() => DstState::Set,
                Some(_) => DstState::WrongType,
            })
            .await;
        let (k, member) = (src.clone(), m.clone());
        // Some(true): moved out of the source; Some(false): not a member; None: WRONGTYPE.
        let taken = ctx
            .shards
            .run_on(src_shard, move |d| {
                let now = now_ms();
                let Some(e) = d.dbs[db].lookup(&k, now) else {
                    return Some(false);
                };
                let s = e.as_set_mut()?;
                if dst_state == DstState::WrongType {
                    return None;
                }
                if !s.remove(&member) {
                    return Some(false);
                }
                let emptied = s.is_empty();
                if emptied {
                    d.dbs[db].remove(&k, now);
                }
                d.modified(db, &k, b's', "srem");
                if emptied {
                    d.modified(db, &k, b'g', "del");
                }
                Some(true)
            })
            .await;
        let mut buf = Vec::new();
        match taken {
            None => ctx.writer(&mut buf).error(WRONGTYPE),
            Some(false) => ctx.writer(&mut buf).int(0),
            Some(true) => {
                ctx.shards
                    .run_on(dst_shard, move |d| {
                        let max = max_intset(d);
                        let now = now_ms();
                        let added = match d.dbs[db].lookup(&dst, now).and_then(|e| e.as_set_mut()) {
                            Some(s) => s.add(&m, max),
                            None => {
                                let mut s = Set::new_for(&m);
                                s.add(&m, max);
                                d.dbs[db].set(&dst, Value::from_set(s), 0);
                                true
                            }
                        };
                        if added {
                            d.modified(db, &dst, b's', "sadd");
                        }
                    })
                    .await;
                ctx.writer(&mut buf).int(1);
            }
        }
        ctx.unlock(&groups).await;
        buf
    })
}

// ---------------------------------------------------------------------------------------
// SSCAN
// ---------------------------------------------------------------------------------------

/// `SSCAN key cursor [MATCH pattern] [COUNT count]`
///
/// An intset is returned whole with cursor 0 (as Redis does); a hashtable is walked by
/// [`Set::scan`], whose cursor stays valid while the set grows or shrinks.
fn sscan(ctx: &mut Ctx, args: Args) {
    let Some(cursor) = parse_cursor(args.get(2)) else {
        return ctx.out.error(b"ERR invalid cursor");
    };
    let (found, out) = read_set(ctx, args.get(1));
    let s = match found {
        Found::Missing => return empty_scan(out),
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Is(s) => s,
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
    let mut items: Vec<Member> = Vec::new();
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let next = s.scan(cursor, count, |m| {
        // Redis's stringmatchlen never matches an empty member with a non-empty pattern.
        let keep = match pattern {
            None => true,
            Some(p) => m.with_bytes(|b| {
                if b.is_empty() {
                    p.is_empty()
                } else {
                    crate::config::glob_match(p, b, false)
                }
            }),
        };
        if keep {
            items.push(m);
        }
    });
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(items.len());
    items.iter().for_each(|m| m.reply(out));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::parse::OwnedArgs;
    use crate::shard::watch::notify;

    /// A one-shard data set with every keyspace event enabled.
    fn shard() -> ShardData {
        let mut d = ShardData::new(0, 1, crate::config::Config::default());
        d.notify_mask = notify::parse(b"KEA").unwrap();
        d
    }

    /// Runs `line` (space-separated words) through the set command table on `d` and
    /// returns the RESP2 reply and the events it raised, as `class:event:key`.
    fn run(d: &mut ShardData, line: &str) -> (String, Vec<String>) {
        let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let owned = OwnedArgs::from_slices(&words);
        let name = line.split(' ').next().unwrap().to_ascii_lowercase();
        let spec = COMMANDS
            .iter()
            .find(|c| c.name == name)
            .expect("a set command");
        let Handler::Keyed { run, .. } = spec.handler else {
            panic!("keyed")
        };
        d.events.clear();
        let mut buf = Vec::new();
        let mut ctx = Ctx {
            shard: d,
            db: 0,
            now_ms: now_ms(),
            out: ReplyWriter::new(&mut buf, false),
        };
        run(&mut ctx, owned.view());
        let events = d
            .events
            .iter()
            .map(|e| {
                format!(
                    "{}:{}:{}",
                    e.class as char,
                    e.event,
                    String::from_utf8_lossy(&e.key)
                )
            })
            .collect();
        (String::from_utf8_lossy(&buf).into_owned(), events)
    }

    fn events(d: &mut ShardData, line: &str) -> Vec<String> {
        run(d, line).1
    }

    #[test]
    fn keyspace_events_follow_redis() {
        let mut d = shard();
        assert_eq!(events(&mut d, "SADD s 1 2 3"), ["s:sadd:s"]);
        assert!(events(&mut d, "SADD s 1").is_empty());
        assert!(events(&mut d, "SREM s 9").is_empty());
        assert_eq!(events(&mut d, "SREM s 1"), ["s:srem:s"]);
        assert_eq!(events(&mut d, "SREM s 2 3"), ["s:srem:s", "g:del:s"]);
        events(&mut d, "SADD a 1 2");
        assert_eq!(events(&mut d, "SMOVE a b 1"), ["s:srem:a", "s:sadd:b"]);
        assert_eq!(
            events(&mut d, "SMOVE a b 2"),
            ["s:srem:a", "g:del:a", "s:sadd:b"]
        );
        events(&mut d, "SADD c 1");
        assert_eq!(events(&mut d, "SMOVE c b 1"), ["s:srem:c", "g:del:c"]);
        assert!(events(&mut d, "SMOVE b b 1").is_empty());
        assert_eq!(events(&mut d, "SPOP b"), ["s:spop:b"]);
        assert_eq!(events(&mut d, "SPOP b"), ["s:spop:b", "g:del:b"]);
        events(&mut d, "SADD p 1 2 3 4");
        assert!(events(&mut d, "SPOP p 0").is_empty());
        assert_eq!(events(&mut d, "SPOP p 1"), ["s:spop:p"]);
        assert_eq!(events(&mut d, "SPOP p 10"), ["s:spop:p", "g:del:p"]);
        events(&mut d, "SADD x 1 2");
        events(&mut d, "SADD y 2 3");
        assert_eq!(events(&mut d, "SINTERSTORE d x y"), ["s:sinterstore:d"]);
        assert_eq!(events(&mut d, "SUNIONSTORE d x y"), ["s:sunionstore:d"]);
        assert_eq!(events(&mut d, "SDIFFSTORE d x y"), ["s:sdiffstore:d"]);
        assert_eq!(events(&mut d, "SINTERSTORE d x nosuch"), ["g:del:d"]);
        assert!(events(&mut d, "SINTERSTORE d x nosuch").is_empty());
        assert!(events(&mut d, "SINTER x y").is_empty());
    }

    #[test]
    fn replies_are_resp2_shaped() {
        let mut d = shard();
        assert_eq!(run(&mut d, "SADD s 2 1").0, ":2\r\n");
        assert_eq!(run(&mut d, "SMEMBERS s").0, "*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
        assert_eq!(run(&mut d, "SPOP nosuch").0, "$-1\r\n");
        assert_eq!(run(&mut d, "SINTERCARD 1 s LIMIT 1").0, ":1\r\n");
    }
}
