//! Generic keyspace commands: DEL, UNLINK, EXISTS, TOUCH, the EXPIRE and TTL families,
//! PERSIST, TYPE, RENAME/RENAMENX, COPY, MOVE, OBJECT, and the whole-keyspace commands
//! KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSHDB, FLUSHALL and SWAPDB.
//!
//! Behaviour, reply types and error texts follow Redis 7.0 (`db.c`, `expire.c`,
//! `object.c`). Multi-key commands whose keys span shards run a coordinator that locks the
//! keys on every shard involved (in shard order), does the work shard by shard, merges the
//! answers into the reply the single-shard path would give, and unlocks. Whole-keyspace
//! commands run on every shard.
//!
//! The helpers at the top ([`lookup_read`], [`peek_read`], [`split`], [`cross_setup`]) are
//! shared with the other command families.

use crate::commands::{
    arity_error, eq_ic, flags, parse_int, AsyncCtx, CommandSpec, Ctx, Handler, ReplyFuture,
    NOT_INT, SYNTAX_ERR,
};
use crate::protocol::parse::{Args, OwnedArgs};
use crate::protocol::reply::ReplyWriter;
use crate::shard::locks::LockKey;
use crate::shard::{now_ms, ShardData};
use crate::storage::{Db, Detached, Entry};
use rand::Rng;
use std::collections::BTreeMap;

/// The generic keyspace commands, as Redis 7.0's COMMAND INFO describes them.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "del",
        -2,
        flags::WRITE,
        (1, -1, 1),
        "@keyspace @write @slow",
        Handler::Keyed {
            run: del,
            cross: Some(del_cross),
        },
    ),
    CommandSpec::new(
        "unlink",
        -2,
        flags::WRITE | flags::FAST,
        (1, -1, 1),
        "@keyspace @write @fast",
        Handler::Keyed {
            run: del,
            cross: Some(del_cross),
        },
    ),
    CommandSpec::new(
        "exists",
        -2,
        flags::READONLY | flags::FAST,
        (1, -1, 1),
        "@keyspace @read @fast",
        Handler::Keyed {
            run: exists,
            cross: Some(exists_cross),
        },
    ),
    CommandSpec::new(
        "touch",
        -2,
        flags::READONLY | flags::FAST,
        (1, -1, 1),
        "@keyspace @read @fast",
        Handler::Keyed {
            run: touch,
            cross: Some(touch_cross),
        },
    ),
    CommandSpec::new(
        "expire",
        -3,
        flags::WRITE | flags::FAST,
        (1, 1, 1),
        "@keyspace @write @fast",
        Handler::Keyed {
            run: expire,
            cross: None,
        },
    ),
    CommandSpec::new(
        "pexpire",
        -3,
        flags::WRITE | flags::FAST,
        (1, 1, 1),
        "@keyspace @write @fast",
        Handler::Keyed {
            run: pexpire,
            cross: None,
        },
    ),
    CommandSpec::new(
        "expireat",
        -3,
        flags::WRITE | flags::FAST,
        (1, 1, 1),
        "@keyspace @write @fast",
        Handler::Keyed {
            run: expireat,
            cross: None,
        },
    ),
    CommandSpec::new(
        "pexpireat",
        -3,
        flags::WRITE | flags::FAST,
        (1, 1, 1),
        "@keyspace @write @fast",
        Handler::Keyed {
            run: pexpireat,
            cross: None,
        },
    ),
    CommandSpec::new(
        "ttl",
        2,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@keyspace @read @fast",
        Handler::Keyed {
            run: ttl,
            cross: None,
        },
    ),
    CommandSpec::new(
        "pttl",
        2,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@keyspace @read @fast",
        Handler::Keyed {
            run: pttl,
            cross: None,
        },
    ),
    CommandSpec::new(
        "expiretime",
        2,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@keyspace @read @fast",
        Handler::Keyed {
            run: expiretime,
            cross: None,
        },
    ),
    CommandSpec::new(
        "pexpiretime",
        2,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@keyspace @read @fast",
        Handler::Keyed {
            run: pexpiretime,
            cross: None,
        },
    ),
    CommandSpec::new(
        "persist",
        2,
        flags::WRITE | flags::FAST,
        (1, 1, 1),
        "@keyspace @write @fast",
        Handler::Keyed {
            run: persist,
            cross: None,
        },
    ),
    CommandSpec::new(
        "type",
        2,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@keyspace @read @fast",
        Handler::Keyed {
            run: type_cmd,
            cross: None,
        },
    ),
    CommandSpec::new(
        "rename",
        3,
        flags::WRITE,
        (1, 2, 1),
        "@keyspace @write @slow",
        Handler::Keyed {
            run: rename,
            cross: Some(rename_cross),
        },
    ),
    CommandSpec::new(
        "renamenx",
        3,
        flags::WRITE | flags::FAST,
        (1, 2, 1),
        "@keyspace @write @fast",
        Handler::Keyed {
            run: renamenx,
            cross: Some(renamenx_cross),
        },
    ),
    CommandSpec::new(
        "copy",
        -3,
        flags::WRITE | flags::DENYOOM,
        (1, 2, 1),
        "@keyspace @write @slow",
        Handler::Keyed {
            run: copy,
            cross: Some(copy_cross),
        },
    ),
    CommandSpec::new(
        "move",
        3,
        flags::WRITE | flags::FAST,
        (1, 1, 1),
        "@keyspace @write @fast",
        Handler::Keyed {
            run: move_cmd,
            cross: None,
        },
    ),
    CommandSpec::new(
        "object",
        -2,
        flags::READONLY,
        (2, 2, 1),
        "@keyspace @read @slow",
        Handler::Keyed {
            run: object,
            cross: None,
        },
    ),
    CommandSpec::new(
        "keys",
        2,
        flags::READONLY,
        (0, 0, 0),
        "@keyspace @read @slow @dangerous",
        Handler::Async(keys),
    ),
    CommandSpec::new(
        "scan",
        -2,
        flags::READONLY,
        (0, 0, 0),
        "@keyspace @read @slow",
        Handler::Async(scan),
    ),
    CommandSpec::new(
        "randomkey",
        1,
        flags::READONLY,
        (0, 0, 0),
        "@keyspace @read @slow",
        Handler::Async(randomkey),
    ),
    CommandSpec::new(
        "dbsize",
        1,
        flags::READONLY | flags::FAST,
        (0, 0, 0),
        "@keyspace @read @fast",
        Handler::Async(dbsize),
    ),
    CommandSpec::new(
        "flushdb",
        -1,
        flags::WRITE,
        (0, 0, 0),
        "@keyspace @write @slow @dangerous",
        Handler::Async(flushdb),
    ),
    CommandSpec::new(
        "flushall",
        -1,
        flags::WRITE,
        (0, 0, 0),
        "@keyspace @write @slow @dangerous",
        Handler::Async(flushall),
    ),
    CommandSpec::new(
        "swapdb",
        3,
        flags::WRITE | flags::FAST,
        (0, 0, 0),
        "@keyspace @write @fast @dangerous",
        Handler::Async(swapdb),
    ),
];

// ---------------------------------------------------------------------------------------
// Helpers shared with other families
// ---------------------------------------------------------------------------------------

/// What a read lookup of a collection found (see [`read_typed`]).
pub enum Found<'a, T> {
    /// No such key.
    Missing,
    /// The key holds another type.
    WrongType,
    /// The value, of the wanted type.
    Is(&'a T),
}

/// Looks `key` up for reading like Redis's `lookupKeyRead` (keyspace hit or miss, access
/// time) and views its value through `as_type` (`Value::as_hash`, `Value::as_set`...).
/// Returns the outcome with the reply writer, both borrowed from `ctx`.
#[inline]
pub fn read_typed<'s, 'a, T>(
    ctx: &'s mut Ctx<'a>,
    key: &[u8],
    as_type: fn(&Entry) -> Option<&T>,
) -> (Found<'s, T>, &'s mut ReplyWriter<'a>) {
    let now = ctx.now_ms;
    let found = match lookup_read(ctx.shard, ctx.db, key, now) {
        None => Found::Missing,
        Some(e) => match as_type(e) {
            Some(v) => Found::Is(v),
            None => Found::WrongType,
        },
    };
    (found, &mut ctx.out)
}

/// With `keymiss` events on (class `m`): a miss of `key` counts and raises its event
/// here, and true is returned (the caller answers as for a miss).
#[cold]
fn keymiss_wanted(shard: &mut ShardData, db: usize, key: &[u8], now: u64) -> bool {
    use crate::shard::watch::notify;
    if shard.notify_mask & notify::class_bit(b'm') == 0 || shard.dbs[db].peek(key, now).is_some() {
        return false;
    }
    shard.stats.keyspace_misses += 1;
    // A key that just expired raises `expired` first, as in Redis.
    shard.drain_expired();
    shard.key_event(db, key, b'm', "keymiss");
    true
}

/// Looks `key` up for reading like Redis's `lookupKeyRead`: expires it if its TTL passed,
/// stamps its access time, and counts a keyspace hit or miss.
#[inline]
pub fn lookup_read<'s>(
    shard: &'s mut ShardData,
    db: usize,
    key: &[u8],
    now: u64,
) -> Option<&'s mut Entry> {
    if shard.notify_mask != 0 && keymiss_wanted(shard, db, key, now) {
        return None;
    }
    let ShardData { dbs, stats, .. } = shard;
    let found = dbs[db].lookup(key, now);
    if found.is_some() {
        stats.keyspace_hits += 1;
    } else {
        stats.keyspace_misses += 1;
    }
    found
}

/// Like [`lookup_read`] without stamping the access time (Redis's `LOOKUP_NOTOUCH`, used by
/// EXISTS, TTL, TYPE and OBJECT); still counts a hit or miss.
#[inline]
pub fn peek_read<'s>(
    shard: &'s mut ShardData,
    db: usize,
    key: &[u8],
    now: u64,
) -> Option<&'s mut Entry> {
    if shard.notify_mask != 0 && keymiss_wanted(shard, db, key, now) {
        return None;
    }
    let ShardData { dbs, stats, .. } = shard;
    let found = dbs[db].peek(key, now);
    if found.is_some() {
        stats.keyspace_hits += 1;
    } else {
        stats.keyspace_misses += 1;
    }
    found
}

/// Splits a keyed context into the selected database and the reply writer, so a handler
/// can hold an entry while writing the reply.
#[inline]
pub fn split<'c, 'a>(ctx: &'c mut Ctx<'a>) -> (&'c mut Db, &'c mut ReplyWriter<'a>) {
    (&mut ctx.shard.dbs[ctx.db], &mut ctx.out)
}

/// Per-shard work of a multi-key coordinator: for each shard, the (argument index, key)
/// pairs it owns, in argument order.
pub type KeysByShard = Vec<(usize, Vec<(usize, Vec<u8>)>)>;

/// Prepares a multi-key coordinator: the lock groups for `keys` in `db`, and the keys split
/// by owning shard, each tagged with its index in `keys`.
pub fn cross_setup(
    ctx: &AsyncCtx,
    db: usize,
    keys: &[&[u8]],
) -> (BTreeMap<usize, Vec<LockKey>>, KeysByShard) {
    let groups = ctx.shards.group_keys(db, keys.iter().copied());
    let mut by: BTreeMap<usize, Vec<(usize, Vec<u8>)>> = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        by.entry(ctx.shards.owner(k))
            .or_default()
            .push((i, k.to_vec()));
    }
    (groups, by.into_iter().collect())
}

/// Runs `f` on every shard owning some of the command's keys (arguments 1..), under the
/// key locks, and returns the sum of the per-shard counts.
async fn cross_count(
    ctx: &AsyncCtx,
    args: &OwnedArgs,
    f: fn(&mut ShardData, usize, &[u8], u64) -> bool,
) -> i64 {
    let a = args.view();
    let db = ctx.client.db;
    let keys: Vec<&[u8]> = (1..a.len()).map(|i| a.get(i)).collect();
    let (groups, work) = cross_setup(ctx, db, &keys);
    ctx.lock(&groups).await;
    let counts = ctx
        .shards
        .run_on_each(work, move |d, items: Vec<(usize, Vec<u8>)>| {
            let now = now_ms();
            items.iter().filter(|(_, k)| f(d, db, k, now)).count() as i64
        })
        .await;
    ctx.unlock(&groups).await;
    counts.into_iter().sum()
}

/// Replies with an integer in the client's protocol.
fn int_reply(ctx: &AsyncCtx, v: i64) -> Vec<u8> {
    let mut buf = Vec::new();
    ctx.writer(&mut buf).int(v);
    buf
}

/// Replies with an error in the client's protocol.
fn error_reply(ctx: &AsyncCtx, msg: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    ctx.writer(&mut buf).error(msg);
    buf
}

/// Replies `+OK` in the client's protocol.
fn ok_reply(ctx: &AsyncCtx) -> Vec<u8> {
    let mut buf = Vec::new();
    ctx.writer(&mut buf).ok();
    buf
}

/// Parses a DB index like Redis's `getIntFromObjectOrReply`: an integer that fits in C
/// `int`. `Err` holds Redis's error for a non-integer or an out-of-range value.
fn parse_c_int(arg: &[u8]) -> Result<i64, &'static [u8]> {
    let v = parse_int(arg).ok_or(NOT_INT)?;
    if i32::try_from(v).is_err() {
        return Err(b"ERR value is out of range, value must between -2147483648 and 2147483647");
    }
    Ok(v)
}

/// A C string as `%s` prints it: cut at the first NUL, at most `max` bytes, CR and LF
/// turned into spaces (as Redis's error replies sanitize them).
fn c_str(arg: &[u8], max: usize) -> Vec<u8> {
    let end = arg.iter().position(|&c| c == 0).unwrap_or(arg.len());
    arg[..end.min(max)]
        .iter()
        .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
        .collect()
}

/// Number of databases (`--dbnum`).
fn dbnum(shard: &ShardData) -> usize {
    shard.dbs.len()
}

// ---------------------------------------------------------------------------------------
// DEL / UNLINK / EXISTS / TOUCH
// ---------------------------------------------------------------------------------------

/// Deletes one key; true when it existed.
fn del_one(d: &mut ShardData, db: usize, key: &[u8], now: u64) -> bool {
    let gone = d.dbs[db].remove(key, now).is_some();
    if gone {
        d.modified(db, key, b'g', "del");
    }
    gone
}

/// True when the key exists (counts a hit or miss, does not touch).
fn exists_one(d: &mut ShardData, db: usize, key: &[u8], now: u64) -> bool {
    peek_read(d, db, key, now).is_some()
}

/// True when the key exists; stamps its access time (counts a hit or miss).
fn touch_one(d: &mut ShardData, db: usize, key: &[u8], now: u64) -> bool {
    lookup_read(d, db, key, now).is_some()
}

/// Applies `f` to each key argument on this shard and replies with the count.
fn count_keys(ctx: &mut Ctx, args: Args, f: fn(&mut ShardData, usize, &[u8], u64) -> bool) {
    let now = ctx.now_ms;
    let n = (1..args.len())
        .filter(|&i| f(ctx.shard, ctx.db, args.get(i), now))
        .count();
    ctx.out.int(n as i64);
}

/// `DEL key [key ...]` and `UNLINK key [key ...]`
fn del(ctx: &mut Ctx, args: Args) {
    count_keys(ctx, args, del_one);
}

/// Cross-shard DEL / UNLINK: sums the keys deleted on each shard.
fn del_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let n = cross_count(&ctx, &args, del_one).await;
        int_reply(&ctx, n)
    })
}

/// `EXISTS key [key ...]` (a key named twice counts twice)
fn exists(ctx: &mut Ctx, args: Args) {
    count_keys(ctx, args, exists_one);
}

/// Cross-shard EXISTS.
fn exists_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let n = cross_count(&ctx, &args, exists_one).await;
        int_reply(&ctx, n)
    })
}

/// `TOUCH key [key ...]`
fn touch(ctx: &mut Ctx, args: Args) {
    count_keys(ctx, args, touch_one);
}

/// Cross-shard TOUCH.
fn touch_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let n = cross_count(&ctx, &args, touch_one).await;
        int_reply(&ctx, n)
    })
}

// ---------------------------------------------------------------------------------------
// EXPIRE family, TTL family, PERSIST, TYPE
// ---------------------------------------------------------------------------------------

/// EXPIRE option: set only when the key has no TTL.
const EXPIRE_NX: u32 = 1;
/// Set only when the key has a TTL.
const EXPIRE_XX: u32 = 2;
/// Set only when the new TTL is greater.
const EXPIRE_GT: u32 = 4;
/// Set only when the new TTL is smaller.
const EXPIRE_LT: u32 = 8;

/// Redis's `expireGenericCommand`. `basetime` is added to the argument (now for EXPIRE and
/// PEXPIRE, 0 for the absolute forms); `seconds` selects the unit.
fn expire_generic(ctx: &mut Ctx, args: Args, relative: bool, seconds: bool) {
    let mut f = 0u32;
    for j in 3..args.len() {
        let o = args.get(j);
        if eq_ic(o, "nx") {
            f |= EXPIRE_NX;
        } else if eq_ic(o, "xx") {
            f |= EXPIRE_XX;
        } else if eq_ic(o, "gt") {
            f |= EXPIRE_GT;
        } else if eq_ic(o, "lt") {
            f |= EXPIRE_LT;
        } else {
            let mut m = b"ERR Unsupported option ".to_vec();
            m.extend_from_slice(&c_str(o, usize::MAX));
            return ctx.out.error(&m);
        }
    }
    if f & EXPIRE_NX != 0 && f & (EXPIRE_XX | EXPIRE_GT | EXPIRE_LT) != 0 {
        return ctx
            .out
            .error(b"ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if f & EXPIRE_GT != 0 && f & EXPIRE_LT != 0 {
        return ctx
            .out
            .error(b"ERR GT and LT options at the same time are not compatible");
    }
    let Some(mut when) = parse_int(args.get(2)) else {
        return ctx.out.error(NOT_INT);
    };
    let now = ctx.now_ms;
    let invalid = |ctx: &mut Ctx| {
        let mut m = b"ERR invalid expire time in '".to_vec();
        m.extend(args.get(0).iter().map(|c| c.to_ascii_lowercase()));
        m.extend_from_slice(b"' command");
        ctx.out.error(&m);
    };
    if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return invalid(ctx);
        }
        when *= 1000;
    }
    let base = if relative { now as i64 } else { 0 };
    if when > i64::MAX - base {
        return invalid(ctx);
    }
    when += base;
    let key = args.get(1);
    let (db, out) = split(ctx);
    let Some(e) = db.lookup(key, now) else {
        return out.int(0);
    };
    let current: i64 = if e.expire_at() == 0 {
        -1
    } else {
        e.expire_at() as i64
    };
    if f & EXPIRE_NX != 0 && current != -1 {
        return out.int(0);
    }
    if f & EXPIRE_XX != 0 && current == -1 {
        return out.int(0);
    }
    if f & EXPIRE_GT != 0 && (when <= current || current == -1) {
        return out.int(0);
    }
    if f & EXPIRE_LT != 0 && current != -1 && when >= current {
        return out.int(0);
    }
    if when <= now as i64 {
        db.remove(key, now);
        out.int(1);
        ctx.modified(key, b'g', "del");
    } else {
        db.set_expire(key, when as u64, now);
        out.int(1);
        ctx.modified(key, b'g', "expire");
    }
}

/// `EXPIRE key seconds [NX|XX|GT|LT]`
fn expire(ctx: &mut Ctx, args: Args) {
    expire_generic(ctx, args, true, true);
}

/// `PEXPIRE key milliseconds [NX|XX|GT|LT]`
fn pexpire(ctx: &mut Ctx, args: Args) {
    expire_generic(ctx, args, true, false);
}

/// `EXPIREAT key unix-time-seconds [NX|XX|GT|LT]`
fn expireat(ctx: &mut Ctx, args: Args) {
    expire_generic(ctx, args, false, true);
}

/// `PEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT]`
fn pexpireat(ctx: &mut Ctx, args: Args) {
    expire_generic(ctx, args, false, false);
}

/// Redis's `ttlGenericCommand`: -2 for a missing key, -1 without TTL, else the remaining
/// (or absolute) time in milliseconds or rounded seconds.
fn ttl_generic(ctx: &mut Ctx, args: Args, ms: bool, absolute: bool) {
    let now = ctx.now_ms;
    let Some(e) = peek_read(ctx.shard, ctx.db, args.get(1), now) else {
        return ctx.out.int(-2);
    };
    if e.expire_at() == 0 {
        return ctx.out.int(-1);
    }
    let at = e.expire_at() as i64;
    let t = (if absolute { at } else { at - now as i64 }).max(0);
    ctx.out.int(if ms { t } else { (t + 500) / 1000 });
}

/// `TTL key`
fn ttl(ctx: &mut Ctx, args: Args) {
    ttl_generic(ctx, args, false, false);
}

/// `PTTL key`
fn pttl(ctx: &mut Ctx, args: Args) {
    ttl_generic(ctx, args, true, false);
}

/// `EXPIRETIME key`
fn expiretime(ctx: &mut Ctx, args: Args) {
    ttl_generic(ctx, args, false, true);
}

/// `PEXPIRETIME key`
fn pexpiretime(ctx: &mut Ctx, args: Args) {
    ttl_generic(ctx, args, true, true);
}

/// `PERSIST key`
fn persist(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let now = ctx.now_ms;
    let db = ctx.db();
    let removed = db.lookup(key, now).is_some() && db.persist(key, now);
    ctx.out.int(removed as i64);
    if removed {
        ctx.modified(key, b'g', "persist");
    }
}

/// `TYPE key`
fn type_cmd(ctx: &mut Ctx, args: Args) {
    match peek_read(ctx.shard, ctx.db, args.get(1), ctx.now_ms) {
        Some(e) => ctx.out.simple(e.value().value_type().name().as_bytes()),
        None => ctx.out.simple(b"none"),
    }
}

// ---------------------------------------------------------------------------------------
// RENAME / RENAMENX / COPY / MOVE
// ---------------------------------------------------------------------------------------

/// Redis's shared "no such key" error.
const NO_SUCH_KEY: &[u8] = b"ERR no such key";
/// Redis's shared "same object" error.
const SAME_OBJECT: &[u8] = b"ERR source and destination objects are the same";
/// Out-of-range DB index error of MOVE, COPY and SWAPDB.
const DB_RANGE: &[u8] = b"ERR DB index is out of range";

/// Installs a renamed/moved entry under `key`, keeping its last-access stamp (Redis moves
/// the object itself, so OBJECT IDLETIME carries over).
fn install_moved(db: &mut Db, key: &[u8], entry: Detached, now: u64) {
    let access = entry.access;
    db.insert_entry(key, entry);
    if let Some(e) = db.peek(key, now) {
        e.access = access;
    }
}

/// Redis's `renameGenericCommand` on one shard.
fn rename_generic(ctx: &mut Ctx, args: Args, nx: bool) {
    let (src, dst) = (args.get(1), args.get(2));
    let now = ctx.now_ms;
    let (db, out) = split(ctx);
    if db.lookup(src, now).is_none() {
        return out.error(NO_SUCH_KEY);
    }
    if src == dst {
        return if nx { out.int(0) } else { out.ok() };
    }
    if nx && db.lookup(dst, now).is_some() {
        return out.int(0);
    }
    let Some(entry) = db.remove(src, now) else {
        return out.error(NO_SUCH_KEY);
    };
    install_moved(db, dst, entry, now);
    if nx {
        out.int(1)
    } else {
        out.ok()
    }
    ctx.modified(src, b'g', "rename_from");
    ctx.modified(dst, b'g', "rename_to");
    ctx.shard.signal_key_ready(ctx.db, dst);
}

/// `RENAME key newkey`
fn rename(ctx: &mut Ctx, args: Args) {
    rename_generic(ctx, args, false);
}

/// `RENAMENX key newkey`
fn renamenx(ctx: &mut Ctx, args: Args) {
    rename_generic(ctx, args, true);
}

/// Cross-shard RENAME / RENAMENX: under the locks of both keys, takes the entry (value and
/// TTL) off the source shard and installs it on the destination shard.
async fn rename_cross_generic(ctx: AsyncCtx, args: OwnedArgs, nx: bool) -> Vec<u8> {
    let a = args.view();
    let db = ctx.client.db;
    let (src, dst) = (a.get(1).to_vec(), a.get(2).to_vec());
    let (src_shard, dst_shard) = (ctx.shards.owner(&src), ctx.shards.owner(&dst));
    let groups = ctx.shards.group_keys(db, [&src[..], &dst[..]]);
    ctx.lock(&groups).await;
    let reply = 'work: {
        if nx {
            let k = src.clone();
            let found = ctx
                .shards
                .run_on(src_shard, move |d| d.dbs[db].lookup(&k, now_ms()).is_some())
                .await;
            if !found {
                break 'work error_reply(&ctx, NO_SUCH_KEY);
            }
            let k = dst.clone();
            let busy = ctx
                .shards
                .run_on(dst_shard, move |d| d.dbs[db].lookup(&k, now_ms()).is_some())
                .await;
            if busy {
                break 'work int_reply(&ctx, 0);
            }
        }
        let k = src.clone();
        let taken = ctx
            .shards
            .run_on(src_shard, move |d| {
                let taken = d.dbs[db].remove(&k, now_ms());
                if taken.is_some() {
                    d.modified(db, &k, b'g', "rename_from");
                }
                taken
            })
            .await;
        let Some(entry) = taken else {
            break 'work error_reply(&ctx, NO_SUCH_KEY);
        };
        ctx.shards
            .run_on(dst_shard, move |d| {
                install_moved(&mut d.dbs[db], &dst, entry, now_ms());
                d.modified(db, &dst, b'g', "rename_to");
                d.signal_key_ready(db, &dst);
            })
            .await;
        if nx {
            int_reply(&ctx, 1)
        } else {
            ok_reply(&ctx)
        }
    };
    ctx.unlock(&groups).await;
    reply
}

/// Cross-shard RENAME.
fn rename_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(rename_cross_generic(ctx, args, false))
}

/// Cross-shard RENAMENX.
fn renamenx_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(rename_cross_generic(ctx, args, true))
}

/// COPY's options: destination db and REPLACE.
struct CopyOpts {
    dst_db: usize,
    replace: bool,
}

/// Parses `COPY src dst [DB n] [REPLACE]` like Redis's `copyCommand`, including the
/// same-object check. `Err` holds the error message.
fn parse_copy(args: &Args, db: usize, dbnum: usize) -> Result<CopyOpts, &'static [u8]> {
    let mut o = CopyOpts {
        dst_db: db,
        replace: false,
    };
    let mut j = 3;
    while j < args.len() {
        let more = args.len() - j - 1;
        let a = args.get(j);
        if eq_ic(a, "replace") {
            o.replace = true;
        } else if eq_ic(a, "db") && more >= 1 {
            let id = parse_c_int(args.get(j + 1))?;
            if id < 0 || id as usize >= dbnum {
                return Err(DB_RANGE);
            }
            o.dst_db = id as usize;
            j += 1;
        } else {
            return Err(SYNTAX_ERR);
        }
        j += 1;
    }
    if o.dst_db == db && args.get(1) == args.get(2) {
        return Err(SAME_OBJECT);
    }
    Ok(o)
}

/// Writes `entry` as `key` of `db` unless the key exists and `replace` is false.
/// Returns true when written.
fn copy_install(d: &mut ShardData, db: usize, key: &[u8], entry: Detached, replace: bool) -> bool {
    let now = now_ms();
    let target = &mut d.dbs[db];
    if target.lookup(key, now).is_some() && !replace {
        return false;
    }
    target.insert_entry(key, entry);
    d.modified(db, key, b'g', "copy_to");
    d.signal_key_ready(db, key);
    true
}

/// `COPY source destination [DB destination-db] [REPLACE]`
fn copy(ctx: &mut Ctx, args: Args) {
    let o = match parse_copy(&args, ctx.db, dbnum(ctx.shard)) {
        Ok(o) => o,
        Err(m) => return ctx.out.error(m),
    };
    let now = ctx.now_ms;
    let Some(e) = lookup_read(ctx.shard, ctx.db, args.get(1), now) else {
        return ctx.out.int(0);
    };
    let entry = e.to_detached();
    let target = &mut ctx.shard.dbs[o.dst_db];
    let dst = args.get(2);
    if target.lookup(dst, now).is_some() && !o.replace {
        return ctx.out.int(0);
    }
    target.insert_entry(dst, entry);
    ctx.shard.signal_key_ready(o.dst_db, dst);
    ctx.out.int(1);
    ctx.shard.modified(o.dst_db, dst, b'g', "copy_to");
}

/// Cross-shard COPY: clones the entry on the source shard and installs it on the
/// destination shard, under the locks of both keys.
fn copy_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let db = ctx.client.db;
        let n = dbnum(&ctx.shards.data.borrow());
        let o = match parse_copy(&a, db, n) {
            Ok(o) => o,
            Err(m) => return error_reply(&ctx, m),
        };
        let (src, dst) = (a.get(1).to_vec(), a.get(2).to_vec());
        let (src_shard, dst_shard) = (ctx.shards.owner(&src), ctx.shards.owner(&dst));
        let mut groups = ctx.shards.group_keys(db, [&src[..]]);
        for (s, keys) in ctx.shards.group_keys(o.dst_db, [&dst[..]]) {
            groups.entry(s).or_default().extend(keys);
        }
        ctx.lock(&groups).await;
        let cloned = ctx
            .shards
            .run_on(src_shard, move |d| {
                lookup_read(d, db, &src, now_ms()).map(|e| e.to_detached())
            })
            .await;
        let done = match cloned {
            None => false,
            Some(entry) => {
                let (dst_db, replace) = (o.dst_db, o.replace);
                ctx.shards
                    .run_on(dst_shard, move |d| {
                        copy_install(d, dst_db, &dst, entry, replace)
                    })
                    .await
            }
        };
        ctx.unlock(&groups).await;
        int_reply(&ctx, done as i64)
    })
}

/// `MOVE key db` (a key's shard is the same in every database, so this is single-shard).
fn move_cmd(ctx: &mut Ctx, args: Args) {
    let id = match parse_c_int(args.get(2)) {
        Ok(id) => id,
        Err(m) => return ctx.out.error(m),
    };
    if id < 0 || id as usize >= dbnum(ctx.shard) {
        return ctx.out.error(DB_RANGE);
    }
    let dst_db = id as usize;
    if dst_db == ctx.db {
        return ctx.out.error(SAME_OBJECT);
    }
    let key = args.get(1);
    let now = ctx.now_ms;
    if ctx.db().lookup(key, now).is_none() {
        return ctx.out.int(0);
    }
    if ctx.shard.dbs[dst_db].lookup(key, now).is_some() {
        return ctx.out.int(0);
    }
    let Some(entry) = ctx.db().remove(key, now) else {
        return ctx.out.int(0);
    };
    install_moved(&mut ctx.shard.dbs[dst_db], key, entry, now);
    ctx.shard.signal_key_ready(dst_db, key);
    ctx.out.int(1);
    ctx.modified(key, b'g', "move_from");
    ctx.shard.modified(dst_db, key, b'g', "move_to");
}

// ---------------------------------------------------------------------------------------
// OBJECT
// ---------------------------------------------------------------------------------------

/// OBJECT HELP lines (Redis 7.0's text), without the header and the HELP footer.
const OBJECT_HELP: &[&str] = &[
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
];

/// Redis's `OBJ_SHARED_REFCOUNT`, reported for shared integers.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// True when `maxmemory-policy` is an LFU policy.
fn lfu_policy(shard: &ShardData) -> bool {
    shard
        .config
        .maxmemory_policy
        .to_ascii_lowercase()
        .contains("lfu")
}

/// True when Redis would store small integers as shared objects (it does not under a
/// maxmemory limit with an LRU or LFU policy).
fn shares_integers(shard: &ShardData) -> bool {
    let p = shard.config.maxmemory_policy.to_ascii_lowercase();
    shard.config.maxmemory == 0 || !(p.contains("lru") || p.contains("lfu"))
}

/// `OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key`, `OBJECT HELP`
fn object(ctx: &mut Ctx, args: Args) {
    let sub = args.get(1);
    let is_help = eq_ic(sub, "help");
    let known = ["encoding", "freq", "idletime", "refcount"]
        .iter()
        .find(|s| eq_ic(sub, s));
    if !is_help && known.is_none() {
        let mut m = b"ERR unknown subcommand '".to_vec();
        m.extend_from_slice(&c_str(sub, 128));
        m.extend_from_slice(b"'. Try OBJECT HELP.");
        return ctx.out.error(&m);
    }
    let want = if is_help { 2 } else { 3 };
    if args.len() != want {
        let name = format!("object|{}", known.copied().unwrap_or("help"));
        return ctx.out.error(&arity_error(name.as_bytes()));
    }
    if is_help {
        ctx.out.array(OBJECT_HELP.len() + 3);
        ctx.out
            .simple(b"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
        for line in OBJECT_HELP {
            ctx.out.simple(line.as_bytes());
        }
        ctx.out.simple(b"HELP");
        ctx.out.simple(b"    Prints this help.");
        return;
    }
    let sub = known.copied().unwrap_or("");
    let lfu = lfu_policy(ctx.shard);
    let shared = shares_integers(ctx.shard);
    let clock = ctx.shard.lru_clock();
    let Some(e) = peek_read(ctx.shard, ctx.db, args.get(2), ctx.now_ms) else {
        return ctx.out.null();
    };
    match sub {
        "encoding" => ctx.out.bulk(e.encoding().as_bytes()),
        "refcount" => {
            let shared_int =
                matches!(e.value(), crate::storage::ValueRef::Int(v) if (0..10000).contains(&v));
            ctx.out.int(if shared_int && shared {
                SHARED_REFCOUNT
            } else {
                1
            })
        }
        "idletime" => {
            if lfu {
                return ctx.out.error(b"ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
            }
            ctx.out.int(clock.saturating_sub(e.access) as i64)
        }
        _ => {
            if !lfu {
                return ctx.out.error(b"ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
            }
            ctx.out.int(e.freq_at(clock) as i64)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Whole-keyspace commands
// ---------------------------------------------------------------------------------------

/// `KEYS pattern`
fn keys(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let pattern = args.view().get(1).to_vec();
        let db = ctx.client.db;
        let all = pattern == b"*";
        let per_shard = ctx
            .shards
            .run_on_all(move |d| {
                let now = now_ms();
                d.dbs[db]
                    .iter()
                    .filter(|(k, e)| {
                        !e.is_expired(now) && (all || crate::config::glob_match(&pattern, k, false))
                    })
                    .map(|(k, _)| k.to_vec())
                    .collect::<Vec<Vec<u8>>>()
            })
            .await;
        let mut buf = Vec::new();
        let mut out = ctx.writer(&mut buf);
        out.array(per_shard.iter().map(|v| v.len()).sum());
        for k in per_shard.iter().flatten() {
            out.bulk(k);
        }
        buf
    })
}

/// Parses a SCAN cursor like Redis's `parseScanCursorOrReply` (C `strtoul`: an optional
/// sign, decimal digits, nothing else; no leading space; a negative value wraps).
pub fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let end = arg.iter().position(|&c| c == 0).unwrap_or(arg.len());
    let s = &arg[..end];
    match s.first() {
        None => return Some(0),
        Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) => return None,
        _ => {}
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Bits of the SCAN cursor holding the shard index.
const SHARD_BITS: u32 = 10;

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`
///
/// The cursor is `(position << 10) | shard`: each shard's table is walked with
/// [`Db::scan`], shard after shard, until COUNT slots were visited or every shard is done.
fn scan(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let Some(cursor) = parse_cursor(a.get(1)) else {
            return error_reply(&ctx, b"ERR invalid cursor");
        };
        let mut count: i64 = 10;
        let mut pattern: Option<Vec<u8>> = None;
        let mut type_name: Option<Vec<u8>> = None;
        let mut i = 2;
        while i < a.len() {
            let o = a.get(i);
            let more = a.len() - i;
            if eq_ic(o, "count") && more >= 2 {
                match parse_int(a.get(i + 1)) {
                    Some(c) if c < 1 => return error_reply(&ctx, SYNTAX_ERR),
                    Some(c) => count = c,
                    None => return error_reply(&ctx, NOT_INT),
                }
            } else if eq_ic(o, "match") && more >= 2 {
                let p = a.get(i + 1);
                pattern = if p == b"*" { None } else { Some(p.to_vec()) };
            } else if eq_ic(o, "type") && more >= 2 {
                type_name = Some(a.get(i + 1).to_vec());
            } else {
                return error_reply(&ctx, SYNTAX_ERR);
            }
            i += 2;
        }
        let db = ctx.client.db;
        let n = ctx.shards.n;
        let mut shard = (cursor & ((1 << SHARD_BITS) - 1)) as usize;
        let mut pos = cursor >> SHARD_BITS;
        let mut budget = count.min(u32::MAX as i64) as usize;
        let mut found: Vec<Vec<u8>> = Vec::new();
        let mut next_cursor = 0u64;
        let filter = std::sync::Arc::new((pattern, type_name));
        while shard < n {
            let f = filter.clone();
            let want = budget;
            let (keys, next, visited) = ctx
                .shards
                .run_on(shard, move |d| scan_shard(d, db, pos, want, &f.0, &f.1))
                .await;
            found.extend(keys);
            budget = budget.saturating_sub(visited);
            if next == 0 {
                shard += 1;
                pos = 0;
            } else {
                pos = next;
            }
            if budget == 0 {
                if shard < n {
                    next_cursor = (pos << SHARD_BITS) | shard as u64;
                }
                break;
            }
        }
        let mut buf = Vec::new();
        let mut out = ctx.writer(&mut buf);
        out.array(2);
        out.bulk(itoa::Buffer::new().format(next_cursor).as_bytes());
        out.array(found.len());
        for k in &found {
            out.bulk(k);
        }
        buf
    })
}

/// One SCAN step on one shard: returns the matching keys, the next position (0 = this
/// shard is done) and the number of slots visited.
fn scan_shard(
    d: &mut ShardData,
    db: usize,
    pos: u64,
    count: usize,
    pattern: &Option<Vec<u8>>,
    type_name: &Option<Vec<u8>>,
) -> (Vec<Vec<u8>>, u64, usize) {
    let now = now_ms();
    let ShardData { dbs, stats, .. } = d;
    let table = &dbs[db];
    let len = table.len() as u64;
    let start = if pos == 0 || pos > len { len } else { pos };
    let mut keys = Vec::new();
    let next = table.scan(pos, count, now, |k, e| {
        if let Some(p) = pattern {
            if !crate::config::glob_match(p, k, false) {
                return;
            }
        }
        if let Some(t) = type_name {
            // Redis looks the key up to learn its type, which counts as a keyspace hit.
            stats.keyspace_hits += 1;
            if !t.eq_ignore_ascii_case(e.value().value_type().name().as_bytes()) {
                return;
            }
        }
        keys.push(k.to_vec());
    });
    (keys, next, (start - next) as usize)
}

/// `RANDOMKEY`: picks a shard weighted by its key count, then a random key there.
fn randomkey(ctx: AsyncCtx, _args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let db = ctx.client.db;
        let mut buf = Vec::new();
        for _ in 0..(2 * ctx.shards.n + 4) {
            let sizes = ctx.shards.run_on_all(move |d| d.dbs[db].len()).await;
            let total: usize = sizes.iter().sum();
            if total == 0 {
                break;
            }
            let mut r = rand::thread_rng().gen_range(0..total);
            let mut shard = 0;
            for (i, &s) in sizes.iter().enumerate() {
                if r < s {
                    shard = i;
                    break;
                }
                r -= s;
            }
            let key = ctx
                .shards
                .run_on(shard, move |d| d.dbs[db].random_key(now_ms()))
                .await;
            if let Some(k) = key {
                ctx.writer(&mut buf).bulk(&k);
                return buf;
            }
        }
        ctx.writer(&mut buf).null();
        buf
    })
}

/// `DBSIZE`
fn dbsize(ctx: AsyncCtx, _args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let db = ctx.client.db;
        let sizes = ctx.shards.run_on_all(move |d| d.dbs[db].len()).await;
        int_reply(&ctx, sizes.into_iter().sum::<usize>() as i64)
    })
}

/// The whole-shard lock of every shard. FLUSHDB, FLUSHALL and SWAPDB take it (nothing
/// when inside EXEC or a script, which hold their locks already), so each is atomic
/// with respect to cross-shard commands and to a snapshot's cut (which takes the same
/// locks): no shard runs it before another shard's part of an MSET while a second
/// shard runs it after.
fn all_shards(ctx: &AsyncCtx) -> BTreeMap<usize, Vec<LockKey>> {
    (0..ctx.shards.n)
        .map(|s| (s, vec![crate::shard::locks::whole_shard()]))
        .collect()
}

/// Checks FLUSHDB/FLUSHALL's optional ASYNC|SYNC argument.
fn flush_args_ok(a: &Args) -> bool {
    match a.len() {
        1 => true,
        2 => eq_ic(a.get(1), "async") || eq_ic(a.get(1), "sync"),
        _ => false,
    }
}

/// `FLUSHDB [ASYNC|SYNC]`
fn flushdb(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        if !flush_args_ok(&args.view()) {
            return error_reply(&ctx, SYNTAX_ERR);
        }
        let db = ctx.client.db;
        let all = all_shards(&ctx);
        ctx.lock(&all).await;
        ctx.shards
            .run_on_all(move |d| {
                d.touch_flushed(Some(db));
                d.dbs[db].clear()
            })
            .await;
        ctx.unlock(&all).await;
        ok_reply(&ctx)
    })
}

/// `FLUSHALL [ASYNC|SYNC]`
fn flushall(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        if !flush_args_ok(&args.view()) {
            return error_reply(&ctx, SYNTAX_ERR);
        }
        let all = all_shards(&ctx);
        ctx.lock(&all).await;
        ctx.shards
            .run_on_all(|d| {
                d.touch_flushed(None);
                d.dbs.iter_mut().for_each(Db::clear)
            })
            .await;
        ctx.unlock(&all).await;
        ok_reply(&ctx)
    })
}

/// `SWAPDB index1 index2`
fn swapdb(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let Ok(id1) = parse_c_int(a.get(1)) else {
            return error_reply(&ctx, b"ERR invalid first DB index");
        };
        let Ok(id2) = parse_c_int(a.get(2)) else {
            return error_reply(&ctx, b"ERR invalid second DB index");
        };
        let n = dbnum(&ctx.shards.data.borrow()) as i64;
        if id1 < 0 || id1 >= n || id2 < 0 || id2 >= n {
            return error_reply(&ctx, DB_RANGE);
        }
        if id1 != id2 {
            let (x, y) = (id1 as usize, id2 as usize);
            let all = all_shards(&ctx);
            ctx.lock(&all).await;
            ctx.shards
                .run_on_all(move |d| {
                    d.touch_swapped(x, y);
                    d.dbs.swap(x, y);
                    // Clients blocked on keys of either db may now find data.
                    d.blocking.signal_db(Some(x));
                    d.blocking.signal_db(Some(y));
                })
                .await;
            ctx.unlock(&all).await;
        }
        ok_reply(&ctx)
    })
}
