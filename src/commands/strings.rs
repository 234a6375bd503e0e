//! String commands: GET, SET and its variants, MGET/MSET/MSETNX, the INCR family, APPEND,
//! STRLEN, GETRANGE/SETRANGE/SUBSTR and LCS.
//!
//! Behaviour, reply types and error texts follow Redis 7.0 (`t_string.c`): option parsing
//! order, which lookups count as keyspace hits or misses, which writes keep the TTL, and the
//! encodings `OBJECT ENCODING` reports afterwards (`int` for canonical integers stored by
//! SET/MSET/INCR, `embstr`/`raw` by length, `raw` after APPEND and SETRANGE).
//!
//! Every handler here runs on the shard owning all of its keys. MGET, MSET and MSETNX also
//! have a cross-shard coordinator that locks the keys on every shard involved, so the
//! result is the same as on one shard and no reader sees half of an MSET.

use crate::commands::keys::{cross_setup, lookup_read, split};
use crate::commands::{
    arity_error, eq_ic, flags, parse_int, AsyncCtx, CommandSpec, Ctx, Handler, ReplyFuture,
    NOT_FLOAT, NOT_INT, OVERFLOW, SYNTAX_ERR, WRONGTYPE,
};
use crate::protocol::parse::{Args, OwnedArgs};
use crate::protocol::reply::ReplyWriter;
use crate::shard::{now_ms, ShardData};
use crate::storage::{Value, ValueRef};

/// The string commands, as Redis 7.0's COMMAND INFO describes them.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "get",
        2,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@read @string @fast",
        Handler::Keyed {
            run: get,
            cross: None,
        },
    ),
    CommandSpec::new(
        "set",
        -3,
        flags::WRITE | flags::DENYOOM,
        (1, 1, 1),
        "@write @string @slow",
        Handler::Keyed {
            run: set,
            cross: None,
        },
    ),
    CommandSpec::new(
        "setnx",
        3,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @string @fast",
        Handler::Keyed {
            run: setnx,
            cross: None,
        },
    ),
    CommandSpec::new(
        "setex",
        4,
        flags::WRITE | flags::DENYOOM,
        (1, 1, 1),
        "@write @string @slow",
        Handler::Keyed {
            run: setex,
            cross: None,
        },
    ),
    CommandSpec::new(
        "psetex",
        4,
        flags::WRITE | flags::DENYOOM,
        (1, 1, 1),
        "@write @string @slow",
        Handler::Keyed {
            run: psetex,
            cross: None,
        },
    ),
    CommandSpec::new(
        "getset",
        3,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @string @fast",
        Handler::Keyed {
            run: getset,
            cross: None,
        },
    ),
    CommandSpec::new(
        "getdel",
        2,
        flags::WRITE | flags::FAST,
        (1, 1, 1),
        "@write @string @fast",
        Handler::Keyed {
            run: getdel,
            cross: None,
        },
    ),
    CommandSpec::new(
        "getex",
        -2,
        flags::WRITE | flags::FAST,
        (1, 1, 1),
        "@write @string @fast",
        Handler::Keyed {
            run: getex,
            cross: None,
        },
    ),
    CommandSpec::new(
        "mget",
        -2,
        flags::READONLY | flags::FAST,
        (1, -1, 1),
        "@read @string @fast",
        Handler::Keyed {
            run: mget,
            cross: Some(mget_cross),
        },
    ),
    CommandSpec::new(
        "mset",
        -3,
        flags::WRITE | flags::DENYOOM,
        (1, -1, 2),
        "@write @string @slow",
        Handler::Keyed {
            run: mset,
            cross: Some(mset_cross),
        },
    ),
    CommandSpec::new(
        "msetnx",
        -3,
        flags::WRITE | flags::DENYOOM,
        (1, -1, 2),
        "@write @string @slow",
        Handler::Keyed {
            run: msetnx,
            cross: Some(msetnx_cross),
        },
    ),
    CommandSpec::new(
        "incr",
        2,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @string @fast",
        Handler::Keyed {
            run: incr,
            cross: None,
        },
    ),
    CommandSpec::new(
        "decr",
        2,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @string @fast",
        Handler::Keyed {
            run: decr,
            cross: None,
        },
    ),
    CommandSpec::new(
        "incrby",
        3,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @string @fast",
        Handler::Keyed {
            run: incrby,
            cross: None,
        },
    ),
    CommandSpec::new(
        "decrby",
        3,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @string @fast",
        Handler::Keyed {
            run: decrby,
            cross: None,
        },
    ),
    CommandSpec::new(
        "incrbyfloat",
        3,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @string @fast",
        Handler::Keyed {
            run: incrbyfloat,
            cross: None,
        },
    ),
    CommandSpec::new(
        "append",
        3,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @string @fast",
        Handler::Keyed {
            run: append,
            cross: None,
        },
    ),
    CommandSpec::new(
        "strlen",
        2,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@read @string @fast",
        Handler::Keyed {
            run: strlen,
            cross: None,
        },
    ),
    CommandSpec::new(
        "getrange",
        4,
        flags::READONLY,
        (1, 1, 1),
        "@read @string @slow",
        Handler::Keyed {
            run: getrange,
            cross: None,
        },
    ),
    CommandSpec::new(
        "substr",
        4,
        flags::READONLY,
        (1, 1, 1),
        "@read @string @slow",
        Handler::Keyed {
            run: getrange,
            cross: None,
        },
    ),
    CommandSpec::new(
        "setrange",
        4,
        flags::WRITE | flags::DENYOOM,
        (1, 1, 1),
        "@write @string @slow",
        Handler::Keyed {
            run: setrange,
            cross: None,
        },
    ),
    CommandSpec::new(
        "lcs",
        -3,
        flags::READONLY,
        (1, 2, 1),
        "@read @string @slow",
        Handler::Keyed {
            run: lcs,
            cross: Some(lcs_cross),
        },
    ),
];

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// Writes a string value as a bulk reply. Returns false (writing nothing) for non-strings.
#[inline]
fn reply_string(out: &mut ReplyWriter, v: ValueRef<'_>) -> bool {
    match v {
        ValueRef::Int(i) => out.bulk_int(i),
        ValueRef::Str(s) => out.bulk(s),
        ValueRef::Hash(_) | ValueRef::Boxed(_) => return false,
    }
    true
}

/// Redis's `proto-max-bulk-len` as this shard's configuration has it.
#[inline]
fn max_string_len(shard: &ShardData) -> u64 {
    shard.config.proto_max_bulk_len
}

/// Redis's `checkStringLength`: may a string of `size` bytes grow by `append` bytes?
fn check_string_len(shard: &ShardData, size: u64, append: u64) -> Result<(), &'static [u8]> {
    match size.checked_add(append) {
        Some(total) if total <= max_string_len(shard) => Ok(()),
        _ => Err(b"ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
    }
}

/// `ERR invalid expire time in '<cmd>' command`, with the command name in lower case.
fn expire_time_error(out: &mut ReplyWriter, cmd: &[u8]) {
    let mut m = Vec::with_capacity(48 + cmd.len());
    m.extend_from_slice(b"ERR invalid expire time in '");
    m.extend(cmd.iter().map(|c| c.to_ascii_lowercase()));
    m.extend_from_slice(b"' command");
    out.error(&m);
}

/// SET / GETEX option bits (Redis's `OBJ_*` flags).
mod opt {
    /// Set only when the key does not exist.
    pub const NX: u32 = 1 << 0;
    /// Set only when the key exists.
    pub const XX: u32 = 1 << 1;
    /// Reply with the old value.
    pub const GET: u32 = 1 << 2;
    /// Keep the key's TTL.
    pub const KEEPTTL: u32 = 1 << 3;
    /// GETEX: remove the TTL.
    pub const PERSIST: u32 = 1 << 4;
    /// Relative expiry in seconds.
    pub const EX: u32 = 1 << 5;
    /// Relative expiry in milliseconds.
    pub const PX: u32 = 1 << 6;
    /// Absolute expiry in Unix seconds.
    pub const EXAT: u32 = 1 << 7;
    /// Absolute expiry in Unix milliseconds.
    pub const PXAT: u32 = 1 << 8;
    /// Any of the four expire options.
    pub const ANY_EXPIRE: u32 = EX | PX | EXAT | PXAT;
}

/// Which command's options are being parsed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OptCmd {
    Set,
    GetEx,
}

/// Parses SET / GETEX options from `args[from..]` the way Redis's
/// `parseExtendedStringArgumentsOrReply` does. Returns the option bits and the expire
/// argument, or `None` on a syntax error.
fn parse_set_options(args: Args<'_>, from: usize, cmd: OptCmd) -> Option<(u32, Option<&[u8]>)> {
    let mut f = 0u32;
    let mut expire = None;
    let mut j = from;
    let n = args.len();
    while j < n {
        let o = args.get(j);
        let has_next = j + 1 < n;
        if eq_ic(o, "nx") && f & opt::XX == 0 && cmd == OptCmd::Set {
            f |= opt::NX;
        } else if eq_ic(o, "xx") && f & opt::NX == 0 && cmd == OptCmd::Set {
            f |= opt::XX;
        } else if eq_ic(o, "get") && cmd == OptCmd::Set {
            f |= opt::GET;
        } else if eq_ic(o, "keepttl")
            && f & (opt::PERSIST | opt::ANY_EXPIRE) == 0
            && cmd == OptCmd::Set
        {
            f |= opt::KEEPTTL;
        } else if eq_ic(o, "persist")
            && cmd == OptCmd::GetEx
            && f & (opt::KEEPTTL | opt::ANY_EXPIRE) == 0
        {
            f |= opt::PERSIST;
        } else if let Some(bit) = expire_option(o) {
            let conflicts = opt::KEEPTTL | opt::PERSIST | (opt::ANY_EXPIRE & !bit);
            if f & conflicts != 0 || !has_next {
                return None;
            }
            f |= bit;
            expire = Some(args.get(j + 1));
            j += 1;
        } else {
            return None;
        }
        j += 1;
    }
    Some((f, expire))
}

/// The option bit of EX / PX / EXAT / PXAT.
#[inline]
fn expire_option(o: &[u8]) -> Option<u32> {
    if eq_ic(o, "ex") {
        Some(opt::EX)
    } else if eq_ic(o, "px") {
        Some(opt::PX)
    } else if eq_ic(o, "exat") {
        Some(opt::EXAT)
    } else if eq_ic(o, "pxat") {
        Some(opt::PXAT)
    } else {
        None
    }
}

/// Why an expire argument was refused.
enum ExpireErr {
    /// Not an integer.
    NotInt,
    /// Zero, negative or overflowing.
    Invalid,
}

/// Redis's `getExpireMillisecondsOrReply`: converts the EX/PX/EXAT/PXAT argument to an
/// absolute Unix time in milliseconds.
fn expire_ms(arg: &[u8], f: u32, now: u64) -> Result<u64, ExpireErr> {
    let v = parse_int(arg).ok_or(ExpireErr::NotInt)?;
    let seconds = f & (opt::EX | opt::EXAT) != 0;
    if v <= 0 || (seconds && v > i64::MAX / 1000) {
        return Err(ExpireErr::Invalid);
    }
    let mut ms = if seconds { v * 1000 } else { v };
    if f & (opt::EX | opt::PX) != 0 {
        ms = ms.checked_add(now as i64).ok_or(ExpireErr::Invalid)?;
    }
    if ms <= 0 {
        return Err(ExpireErr::Invalid);
    }
    Ok(ms as u64)
}

/// Writes the reply for a refused expire argument.
fn expire_err_reply(out: &mut ReplyWriter, e: ExpireErr, cmd: &[u8]) {
    match e {
        ExpireErr::NotInt => out.error(NOT_INT),
        ExpireErr::Invalid => expire_time_error(out, cmd),
    }
}

/// What SET-like commands answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SetReply {
    /// `+OK`, or a null when NX/XX aborts (SET, SETEX, PSETEX).
    Ok,
    /// `:1`, or `:0` when NX aborts (SETNX).
    Int,
}

/// Redis's `setGenericCommand`.
fn set_generic(
    ctx: &mut Ctx,
    args: Args<'_>,
    f: u32,
    expire: Option<&[u8]>,
    key: &[u8],
    val: &[u8],
    reply: SetReply,
) {
    let now = ctx.now_ms;
    let mut expire_at = 0u64;
    if let Some(arg) = expire {
        match expire_ms(arg, f, now) {
            Ok(ms) => expire_at = ms,
            Err(e) => return expire_err_reply(&mut ctx.out, e, args.get(0)),
        }
    }
    let found;
    if f & opt::GET != 0 {
        match lookup_read(ctx.shard, ctx.db, key, now) {
            None => {
                ctx.out.null();
                found = false;
            }
            Some(e) => {
                if !reply_string(&mut ctx.out, e.value()) {
                    ctx.out.error(WRONGTYPE);
                    return;
                }
                found = true;
            }
        }
    } else if f & (opt::NX | opt::XX) != 0 {
        found = ctx.db().lookup(key, now).is_some();
    } else {
        found = false;
    }
    if (f & opt::NX != 0 && found) || (f & opt::XX != 0 && !found) {
        if f & opt::GET == 0 {
            match reply {
                SetReply::Ok => ctx.out.null(),
                SetReply::Int => ctx.out.int(0),
            }
        }
        return;
    }
    let value = Value::from_bytes(val);
    let db = ctx.db();
    if f & opt::KEEPTTL != 0 {
        db.set_keep_ttl(key, value, now);
    } else {
        db.set(key, value, expire_at);
    }
    ctx.modified(key, b'$', "set");
    if expire_at != 0 {
        ctx.modified(key, b'g', "expire");
    }
    if f & opt::GET == 0 {
        match reply {
            SetReply::Ok => ctx.out.ok(),
            SetReply::Int => ctx.out.int(1),
        }
    }
}

// ---------------------------------------------------------------------------------------
// GET / SET family
// ---------------------------------------------------------------------------------------

/// Redis's `getGenericCommand`: replies with the value or a null. Returns false after a
/// WRONGTYPE error.
#[inline]
fn get_generic(ctx: &mut Ctx, key: &[u8]) -> bool {
    match lookup_read(ctx.shard, ctx.db, key, ctx.now_ms) {
        None => {
            ctx.out.null();
            true
        }
        Some(e) => {
            if reply_string(&mut ctx.out, e.value()) {
                true
            } else {
                ctx.out.error(WRONGTYPE);
                false
            }
        }
    }
}

/// `GET key`
fn get(ctx: &mut Ctx, args: Args) {
    get_generic(ctx, args.get(1));
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`
fn set(ctx: &mut Ctx, args: Args) {
    let (f, expire) = if args.len() == 3 {
        (0, None)
    } else {
        match parse_set_options(args, 3, OptCmd::Set) {
            Some(r) => r,
            None => return ctx.out.error(SYNTAX_ERR),
        }
    };
    set_generic(ctx, args, f, expire, args.get(1), args.get(2), SetReply::Ok);
}

/// `SETNX key value`
fn setnx(ctx: &mut Ctx, args: Args) {
    set_generic(
        ctx,
        args,
        opt::NX,
        None,
        args.get(1),
        args.get(2),
        SetReply::Int,
    );
}

/// `SETEX key seconds value`
fn setex(ctx: &mut Ctx, args: Args) {
    set_generic(
        ctx,
        args,
        opt::EX,
        Some(args.get(2)),
        args.get(1),
        args.get(3),
        SetReply::Ok,
    );
}

/// `PSETEX key milliseconds value`
fn psetex(ctx: &mut Ctx, args: Args) {
    set_generic(
        ctx,
        args,
        opt::PX,
        Some(args.get(2)),
        args.get(1),
        args.get(3),
        SetReply::Ok,
    );
}

/// `GETSET key value`: SET that replies with the old value and drops the TTL.
fn getset(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    if !get_generic(ctx, key) {
        return;
    }
    let value = Value::from_bytes(args.get(2));
    ctx.db().set(key, value, 0);
    ctx.modified(key, b'$', "set");
}

/// `GETDEL key`
fn getdel(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let now = ctx.now_ms;
    match lookup_read(ctx.shard, ctx.db, key, now) {
        None => ctx.out.null(),
        Some(e) => {
            if !reply_string(&mut ctx.out, e.value()) {
                return ctx.out.error(WRONGTYPE);
            }
            ctx.db().remove(key, now);
            ctx.modified(key, b'g', "del");
        }
    }
}

/// `GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]`
fn getex(ctx: &mut Ctx, args: Args) {
    let (f, expire) = match parse_set_options(args, 2, OptCmd::GetEx) {
        Some(r) => r,
        None => return ctx.out.error(SYNTAX_ERR),
    };
    let key = args.get(1);
    let now = ctx.now_ms;
    let Some(e) = lookup_read(ctx.shard, ctx.db, key, now) else {
        return ctx.out.null();
    };
    if !e.value().is_string() {
        return ctx.out.error(WRONGTYPE);
    }
    let mut at = 0;
    if let Some(arg) = expire {
        match expire_ms(arg, f, now) {
            Ok(ms) => at = ms,
            Err(err) => return expire_err_reply(&mut ctx.out, err, args.get(0)),
        }
    }
    reply_string(&mut ctx.out, e.value());
    let db = ctx.db();
    if f & (opt::EXAT | opt::PXAT) != 0 && at <= now {
        db.remove(key, now);
        ctx.modified(key, b'g', "del");
    } else if expire.is_some() {
        db.set_expire(key, at, now);
        ctx.modified(key, b'g', "expire");
    } else if f & opt::PERSIST != 0 && db.persist(key, now) {
        ctx.modified(key, b'g', "persist");
    }
}

// ---------------------------------------------------------------------------------------
// MGET / MSET / MSETNX
// ---------------------------------------------------------------------------------------

/// `MGET key [key ...]`
fn mget(ctx: &mut Ctx, args: Args) {
    let n = args.len() - 1;
    ctx.out.array(n);
    for i in 1..args.len() {
        match lookup_read(ctx.shard, ctx.db, args.get(i), ctx.now_ms) {
            Some(e) => {
                if !reply_string(&mut ctx.out, e.value()) {
                    ctx.out.null();
                }
            }
            None => ctx.out.null(),
        }
    }
}

/// The value of one MGET key, read on its shard (`None` = nil).
fn mget_one(d: &mut ShardData, db: usize, key: &[u8], now: u64) -> Option<Vec<u8>> {
    let e = lookup_read(d, db, key, now)?;
    if !e.value().is_string() {
        return None;
    }
    e.value().with_str(|s| s.to_vec())
}

/// Cross-shard MGET: reads every shard's keys under the key locks, replies in argument
/// order.
fn mget_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let db = ctx.client.db;
        let keys: Vec<&[u8]> = (1..a.len()).map(|i| a.get(i)).collect();
        let (groups, work) = cross_setup(&ctx, db, &keys);
        ctx.lock(&groups).await;
        let results = ctx
            .shards
            .run_on_each(work, move |d, items: Vec<(usize, Vec<u8>)>| {
                let now = now_ms();
                items
                    .into_iter()
                    .map(|(i, k)| (i, mget_one(d, db, &k, now)))
                    .collect::<Vec<_>>()
            })
            .await;
        ctx.unlock(&groups).await;
        let mut vals: Vec<Option<Vec<u8>>> = vec![None; keys.len()];
        for (i, v) in results.into_iter().flatten() {
            vals[i] = v;
        }
        let mut buf = Vec::new();
        let mut out = ctx.writer(&mut buf);
        out.array(vals.len());
        for v in &vals {
            match v {
                Some(s) => out.bulk(s),
                None => out.null(),
            }
        }
        buf
    })
}

/// Checks MSET's pairing; writes the arity error and returns false when a value is
/// missing.
fn mset_arity_ok(out: &mut ReplyWriter, args: &Args) -> bool {
    if args.len().is_multiple_of(2) {
        out.error(&arity_error(args.get(0)));
        return false;
    }
    true
}

/// `MSET key value [key value ...]`
fn mset(ctx: &mut Ctx, args: Args) {
    if !mset_arity_ok(&mut ctx.out, &args) {
        return;
    }
    for i in (1..args.len()).step_by(2) {
        ctx.db()
            .set(args.get(i), Value::from_bytes(args.get(i + 1)), 0);
        ctx.modified(args.get(i), b'$', "set");
    }
    ctx.out.ok();
}

/// `MSETNX key value [key value ...]`
fn msetnx(ctx: &mut Ctx, args: Args) {
    if !mset_arity_ok(&mut ctx.out, &args) {
        return;
    }
    let now = ctx.now_ms;
    let db = ctx.db();
    if (1..args.len())
        .step_by(2)
        .any(|i| db.lookup(args.get(i), now).is_some())
    {
        return ctx.out.int(0);
    }
    for i in (1..args.len()).step_by(2) {
        ctx.db()
            .set(args.get(i), Value::from_bytes(args.get(i + 1)), 0);
        ctx.modified(args.get(i), b'$', "set");
    }
    ctx.out.int(1);
}

/// Key/value pairs of an MSET (argument order kept).
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;
/// MSET pairs grouped by owning shard.
type PairsByShard = Vec<(usize, Pairs)>;

/// Splits MSET's pairs by shard.
fn mset_pairs(ctx: &AsyncCtx, a: &Args) -> PairsByShard {
    let mut by: std::collections::BTreeMap<usize, Pairs> = Default::default();
    for i in (1..a.len()).step_by(2) {
        let k = a.get(i);
        by.entry(ctx.shards.owner(k))
            .or_default()
            .push((k.to_vec(), a.get(i + 1).to_vec()));
    }
    by.into_iter().collect()
}

/// Stores MSET pairs on one shard.
fn mset_apply(d: &mut ShardData, db: usize, pairs: Pairs) {
    for (k, v) in pairs {
        d.dbs[db].set(&k, Value::from_bytes(&v), 0);
        d.modified(db, &k, b'$', "set");
    }
}

/// Cross-shard MSET: sets every shard's pairs under the key locks.
fn mset_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let mut buf = Vec::new();
        if !mset_arity_ok(&mut ctx.writer(&mut buf), &a) {
            return buf;
        }
        let db = ctx.client.db;
        let groups = ctx
            .shards
            .group_keys(db, (1..a.len()).step_by(2).map(|i| a.get(i)));
        let work = mset_pairs(&ctx, &a);
        ctx.lock(&groups).await;
        ctx.shards
            .run_on_each(work, move |d, pairs| mset_apply(d, db, pairs))
            .await;
        ctx.unlock(&groups).await;
        ctx.writer(&mut buf).ok();
        buf
    })
}

/// Cross-shard MSETNX: under the key locks, checks every shard, then sets on every shard
/// only when no key exists.
fn msetnx_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let mut buf = Vec::new();
        if !mset_arity_ok(&mut ctx.writer(&mut buf), &a) {
            return buf;
        }
        let db = ctx.client.db;
        let groups = ctx
            .shards
            .group_keys(db, (1..a.len()).step_by(2).map(|i| a.get(i)));
        let work = mset_pairs(&ctx, &a);
        ctx.lock(&groups).await;
        let probe: Vec<(usize, Vec<Vec<u8>>)> = work
            .iter()
            .map(|(s, pairs)| (*s, pairs.iter().map(|(k, _)| k.clone()).collect()))
            .collect();
        let found = ctx
            .shards
            .run_on_each(probe, move |d, keys: Vec<Vec<u8>>| {
                let now = now_ms();
                let db = &mut d.dbs[db];
                keys.iter().any(|k| db.lookup(k, now).is_some())
            })
            .await;
        let any = found.into_iter().any(|b| b);
        if !any {
            ctx.shards
                .run_on_each(work, move |d, pairs| mset_apply(d, db, pairs))
                .await;
        }
        ctx.unlock(&groups).await;
        ctx.writer(&mut buf).int(if any { 0 } else { 1 });
        buf
    })
}

// ---------------------------------------------------------------------------------------
// INCR family
// ---------------------------------------------------------------------------------------

/// Redis's `incrDecrCommand`: adds `by` to the integer at `key` (0 when missing), keeping
/// the TTL.
fn incr_decr(ctx: &mut Ctx, key: &[u8], by: i64) {
    let now = ctx.now_ms;
    let (db, out) = split(ctx);
    let result = match db.lookup(key, now) {
        Some(e) => {
            if !e.value().is_string() {
                return out.error(WRONGTYPE);
            }
            let cur = match e.value() {
                ValueRef::Int(i) => Some(i),
                v => v.with_str(crate::protocol::reply::parse_i64).flatten(),
            };
            let Some(cur) = cur else {
                return out.error(NOT_INT);
            };
            let Some(new) = cur.checked_add(by) else {
                return out.error(OVERFLOW);
            };
            if !e.set_int_in_place(new) {
                db.replace_value(key, Value::Int(new));
            }
            new
        }
        None => {
            db.set(key, Value::Int(by), 0);
            by
        }
    };
    out.int(result);
    ctx.modified(key, b'$', "incrby");
}

/// `INCR key`
fn incr(ctx: &mut Ctx, args: Args) {
    incr_decr(ctx, args.get(1), 1);
}

/// `DECR key`
fn decr(ctx: &mut Ctx, args: Args) {
    incr_decr(ctx, args.get(1), -1);
}

/// `INCRBY key increment`
fn incrby(ctx: &mut Ctx, args: Args) {
    match parse_int(args.get(2)) {
        Some(by) => incr_decr(ctx, args.get(1), by),
        None => ctx.out.error(NOT_INT),
    }
}

/// `DECRBY key decrement`
fn decrby(ctx: &mut Ctx, args: Args) {
    match parse_int(args.get(2)) {
        Some(i64::MIN) => ctx.out.error(b"ERR decrement would overflow"),
        Some(by) => incr_decr(ctx, args.get(1), -by),
        None => ctx.out.error(NOT_INT),
    }
}

/// `INCRBYFLOAT key increment`: the result is stored as a (non-integer-encoded) string,
/// computed and formatted exactly as Redis does with x87 `long double` (see
/// [`long_double`]), keeping the TTL.
fn incrbyfloat(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let now = ctx.now_ms;
    let (db, out) = split(ctx);
    let entry = db.lookup(key, now);
    let exists = entry.is_some();
    let cur = match &entry {
        Some(e) => {
            if !e.value().is_string() {
                return out.error(WRONGTYPE);
            }
            let v = match e.value() {
                ValueRef::Int(i) => Some(long_double::Num::from_i64(i)),
                v => v.with_str(long_double::parse).flatten(),
            };
            match v {
                Some(v) => v,
                None => return out.error(NOT_FLOAT),
            }
        }
        None => long_double::Num::from_i64(0),
    };
    let Some(by) = long_double::parse(args.get(2)) else {
        return out.error(NOT_FLOAT);
    };
    let Some(sum) = long_double::add(cur, by) else {
        return out.error(b"ERR increment would produce NaN or Infinity");
    };
    let text = long_double::format_human(&sum);
    out.bulk(&text);
    let value = Value::from_str_bytes(&text);
    if exists {
        db.replace_value(key, value);
    } else {
        db.set(key, value, 0);
    }
    ctx.modified(key, b'$', "incrbyfloat");
}

pub mod long_double {
    //! Exact emulation of the x87 80-bit `long double` arithmetic Redis uses for
    //! INCRBYFLOAT (and HINCRBYFLOAT): `strtold` parsing, one addition, and `%.17Lf`
    //! printing with trailing zeros trimmed (`ld2string` in `LD_STR_HUMAN` mode).
    //!
    //! A 64-bit `f64` cannot reproduce Redis's answers (`0.1 + 0.2` is `0.3` in Redis
    //! but `0.30000000000000004` in doubles), so values are kept as a 64-bit mantissa and
    //! a binary exponent, and every conversion is correctly rounded (ties to even) with
    //! a small big-integer helper, as glibc does.

    use std::cmp::Ordering;

    /// Redis's `MAX_LONG_DOUBLE_CHARS`: longer inputs are refused.
    const MAX_CHARS: usize = 5 * 1024;
    /// Largest binary exponent of a normalized value (`mant * 2^exp < 2^16384`).
    const MAX_EXP: i64 = 16384 - 64;
    /// At or below `2^MIN_EXP2`, half the smallest subnormal (`2^-16445`), a value
    /// underflows to zero.
    const MIN_EXP2: i64 = -16446;

    /// A finite or infinite long double.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Num {
        /// `(-1)^neg * mant * 2^exp`; `mant` has its top bit set, or is 0 for zero.
        Finite {
            /// Sign.
            neg: bool,
            /// Mantissa (64 significant bits).
            mant: u64,
            /// Binary exponent.
            exp: i64,
        },
        /// An infinity (accepted by `strtold`; any sum with it is refused).
        Inf,
    }

    impl Num {
        /// The exact value of an integer.
        pub fn from_i64(v: i64) -> Num {
            if v == 0 {
                return Num::Finite {
                    neg: false,
                    mant: 0,
                    exp: 0,
                };
            }
            let m = v.unsigned_abs();
            let lz = m.leading_zeros();
            Num::Finite {
                neg: v < 0,
                mant: m << lz,
                exp: -(lz as i64),
            }
        }
    }

    /// A minimal unsigned big integer: little-endian 32-bit limbs, no high zero limb.
    #[derive(Clone, Debug, Default)]
    struct Big(Vec<u32>);

    impl Big {
        fn from_u128(mut v: u128) -> Big {
            let mut l = Vec::new();
            while v > 0 {
                l.push(v as u32);
                v >>= 32;
            }
            Big(l)
        }

        fn is_zero(&self) -> bool {
            self.0.is_empty()
        }

        fn trim(&mut self) {
            while self.0.last() == Some(&0) {
                self.0.pop();
            }
        }

        fn bits(&self) -> u64 {
            match self.0.last() {
                None => 0,
                Some(&t) => (self.0.len() as u64 - 1) * 32 + (32 - t.leading_zeros()) as u64,
            }
        }

        fn mul_add_small(&mut self, m: u32, a: u32) {
            let mut carry = a as u64;
            for l in &mut self.0 {
                let v = *l as u64 * m as u64 + carry;
                *l = v as u32;
                carry = v >> 32;
            }
            if carry > 0 {
                self.0.push(carry as u32);
            }
            self.trim();
        }

        fn mul_pow10(&mut self, mut k: u64) {
            while k >= 9 {
                self.mul_add_small(1_000_000_000, 0);
                k -= 9;
            }
            if k > 0 {
                self.mul_add_small(10u32.pow(k as u32), 0);
            }
        }

        fn shl(&self, n: u64) -> Big {
            if self.is_zero() {
                return Big::default();
            }
            let bits = (n % 32) as u32;
            let mut out = vec![0u32; (n / 32) as usize];
            if bits == 0 {
                out.extend_from_slice(&self.0);
            } else {
                let mut carry = 0u32;
                for &l in &self.0 {
                    out.push((l << bits) | carry);
                    carry = l >> (32 - bits);
                }
                if carry > 0 {
                    out.push(carry);
                }
            }
            Big(out)
        }

        fn shr(&self, n: u64) -> Big {
            let skip = (n / 32) as usize;
            if skip >= self.0.len() {
                return Big::default();
            }
            let bits = (n % 32) as u32;
            let src = &self.0[skip..];
            let mut out: Vec<u32> = if bits == 0 {
                src.to_vec()
            } else {
                (0..src.len())
                    .map(|i| {
                        let hi = src.get(i + 1).copied().unwrap_or(0);
                        (src[i] >> bits) | (hi << (32 - bits))
                    })
                    .collect()
            };
            while out.last() == Some(&0) {
                out.pop();
            }
            Big(out)
        }

        /// The low 128 bits.
        fn low_u128(&self) -> u128 {
            self.0
                .iter()
                .take(4)
                .enumerate()
                .fold(0u128, |acc, (i, &l)| acc | (l as u128) << (32 * i))
        }

        fn bit(&self, i: u64) -> bool {
            self.0
                .get((i / 32) as usize)
                .is_some_and(|l| l >> (i % 32) & 1 == 1)
        }

        /// True when any of the bits `[0, n)` is set.
        fn low_bits_nonzero(&self, n: u64) -> bool {
            let full = (n / 32) as usize;
            if self.0.iter().take(full).any(|&l| l != 0) {
                return true;
            }
            let rem = (n % 32) as u32;
            rem > 0
                && self
                    .0
                    .get(full)
                    .is_some_and(|&l| l & ((1u32 << rem) - 1) != 0)
        }

        fn cmp_big(&self, o: &Big) -> Ordering {
            self.0
                .len()
                .cmp(&o.0.len())
                .then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
        }

        /// `self -= o`, with `self >= o`.
        fn sub_assign(&mut self, o: &Big) {
            let mut borrow = 0i64;
            for i in 0..self.0.len() {
                let mut v = self.0[i] as i64 - borrow - o.0.get(i).copied().unwrap_or(0) as i64;
                borrow = 0;
                if v < 0 {
                    v += 1 << 32;
                    borrow = 1;
                }
                self.0[i] = v as u32;
            }
            self.trim();
        }

        fn div_rem_small(&mut self, d: u32) -> u32 {
            let mut rem = 0u64;
            for l in self.0.iter_mut().rev() {
                let cur = (rem << 32) | *l as u64;
                *l = (cur / d as u64) as u32;
                rem = cur % d as u64;
            }
            self.trim();
            rem as u32
        }

        fn to_decimal(&self) -> Vec<u8> {
            if self.is_zero() {
                return b"0".to_vec();
            }
            let mut n = self.clone();
            let mut chunks = Vec::new();
            while !n.is_zero() {
                chunks.push(n.div_rem_small(1_000_000_000));
            }
            let mut out = Vec::with_capacity(chunks.len() * 9);
            let mut first = true;
            for c in chunks.iter().rev() {
                if first {
                    out.extend_from_slice(c.to_string().as_bytes());
                    first = false;
                } else {
                    out.extend_from_slice(format!("{c:09}").as_bytes());
                }
            }
            out
        }
    }

    /// Rounds a non-zero `n` (plus a sticky bit for discarded non-zero low bits) to 64
    /// significant bits, ties to even. Returns `(mant, exp)` with `n ~= mant * 2^exp`.
    fn round_big(n: &Big, sticky: bool) -> (u64, i64) {
        let bl = n.bits();
        if bl <= 64 {
            return ((n.low_u128() as u64) << (64 - bl), bl as i64 - 64);
        }
        let sh = bl - 64;
        let mut mant = n.shr(sh).low_u128() as u64;
        let half = n.bit(sh - 1);
        let rest = sticky || n.low_bits_nonzero(sh - 1);
        if half && (rest || mant & 1 == 1) {
            mant = mant.wrapping_add(1);
            if mant == 0 {
                return (1 << 63, sh as i64 + 1);
            }
        }
        (mant, sh as i64)
    }

    /// Builds a finite value, refusing overflow and underflow to zero like `strtold`'s
    /// `ERANGE` cases that Redis rejects.
    fn finite(neg: bool, mant: u64, exp: i64) -> Option<Num> {
        // Below half the smallest subnormal the value rounds to zero (ties to even).
        let underflow = exp + 64 <= MIN_EXP2 || (exp + 63 == MIN_EXP2 && mant == 1 << 63);
        if exp > MAX_EXP || underflow {
            return None;
        }
        Some(Num::Finite { neg, mant, exp })
    }

    /// Parses like Redis's `string2ld` (C `strtold` on the whole string): optional sign,
    /// then a decimal or `0x` hexadecimal float, or `inf`/`infinity`. Refuses empty or
    /// too long input, leading space, trailing garbage, NaN, overflow and underflow.
    pub fn parse(input: &[u8]) -> Option<Num> {
        if input.is_empty() || input.len() >= MAX_CHARS {
            return None;
        }
        // Redis also requires strtold to consume every byte, so a NUL byte is refused.
        let s = input;
        let (neg, body) = match s.first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(Num::Inf);
        }
        if body.len() > 1 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
            return parse_hex(neg, &body[2..]);
        }
        parse_dec(neg, body)
    }

    /// Parses an exponent's digits (after the optional sign), saturating.
    fn parse_exp(s: &[u8]) -> Option<i64> {
        let (eneg, digits) = match s.first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v = digits.iter().fold(0i64, |acc, &d| {
            (acc * 10 + (d - b'0') as i64).min(1_000_000_000)
        });
        Some(if eneg { -v } else { v })
    }

    fn zero(neg: bool) -> Option<Num> {
        Some(Num::Finite {
            neg,
            mant: 0,
            exp: 0,
        })
    }

    fn parse_dec(neg: bool, s: &[u8]) -> Option<Num> {
        let mut i = 0;
        let mut big = Big::default();
        let mut ndigits = 0usize;
        let mut sig = 0i64; // significant digits accumulated into `big`
        let mut frac = 0i64; // digits after the point accumulated into `big`
        let mut seen_point = false;
        let mut chunk = 0u32;
        let mut chunk_len = 0u32;
        while i < s.len() {
            let c = s[i];
            if c.is_ascii_digit() {
                ndigits += 1;
                if sig > 0 || c != b'0' {
                    chunk = chunk * 10 + (c - b'0') as u32;
                    chunk_len += 1;
                    if chunk_len == 9 {
                        big.mul_add_small(1_000_000_000, chunk);
                        chunk = 0;
                        chunk_len = 0;
                    }
                    sig += 1;
                    if seen_point {
                        frac += 1;
                    }
                } else if seen_point {
                    // A leading zero after the point only scales the value.
                    frac += 1;
                }
            } else if c == b'.' && !seen_point {
                seen_point = true;
            } else {
                break;
            }
            i += 1;
        }
        if chunk_len > 0 {
            big.mul_add_small(10u32.pow(chunk_len), chunk);
        }
        if ndigits == 0 {
            return None;
        }
        let mut e10 = 0i64;
        if i < s.len() {
            if s[i] | 0x20 != b'e' {
                return None;
            }
            e10 = parse_exp(&s[i + 1..])?;
        }
        if big.is_zero() {
            return zero(neg);
        }
        let e10 = e10 - frac;
        // Magnitude is between 10^(sig+e10-1) and 10^(sig+e10).
        let mag = sig + e10;
        if mag > 4934 {
            return None;
        }
        if mag < -4952 {
            return None;
        }
        if e10 >= 0 {
            big.mul_pow10(e10 as u64);
            let (mant, exp) = round_big(&big, false);
            return finite(neg, mant, exp);
        }
        let mut den = Big::from_u128(1);
        den.mul_pow10((-e10) as u64);
        // Scale so that the quotient has at least 66 bits.
        let s_bits = (66 + den.bits() as i64 - big.bits() as i64 + 1).max(0) as u64;
        let mut num = big.shl(s_bits);
        let mut q: u128 = 0;
        let top = num.bits().saturating_sub(den.bits());
        for b in (0..=top).rev() {
            let d = den.shl(b);
            if num.cmp_big(&d) != Ordering::Less {
                num.sub_assign(&d);
                q |= 1u128 << b;
            }
        }
        let (mant, exp) = round_big(&Big::from_u128(q), !num.is_zero());
        finite(neg, mant, exp - s_bits as i64)
    }

    fn parse_hex(neg: bool, s: &[u8]) -> Option<Num> {
        let mut i = 0;
        let mut big = Big::default();
        let mut ndigits = 0;
        let mut frac = 0i64;
        let mut seen_point = false;
        while i < s.len() {
            let c = s[i];
            if let Some(d) = (c as char).to_digit(16) {
                ndigits += 1;
                big.mul_add_small(16, d);
                if seen_point {
                    frac += 1;
                }
            } else if c == b'.' && !seen_point {
                seen_point = true;
            } else {
                break;
            }
            i += 1;
        }
        if ndigits == 0 {
            return None;
        }
        let mut e2 = 0i64;
        if i < s.len() {
            if s[i] | 0x20 != b'p' {
                return None;
            }
            e2 = parse_exp(&s[i + 1..])?;
        }
        if big.is_zero() {
            return zero(neg);
        }
        let (mant, exp) = round_big(&big, false);
        finite(neg, mant, exp + e2 - 4 * frac)
    }

    /// `a + b` rounded to a long double, or `None` when the sum is infinite or NaN.
    pub fn add(a: Num, b: Num) -> Option<Num> {
        let (
            Num::Finite {
                neg: an,
                mant: am,
                exp: ae,
            },
            Num::Finite {
                neg: bn,
                mant: bm,
                exp: be,
            },
        ) = (a, b)
        else {
            return None;
        };
        if bm == 0 {
            return Some(if am == 0 {
                Num::Finite {
                    neg: an && bn,
                    mant: 0,
                    exp: 0,
                }
            } else {
                a
            });
        }
        if am == 0 {
            return Some(b);
        }
        // Order by magnitude: (xn, xm, xe) is the larger.
        let a_larger = ae > be || (ae == be && am >= bm);
        let ((xn, xm, xe), (yn, ym, ye)) = if a_larger {
            ((an, am, ae), (bn, bm, be))
        } else {
            ((bn, bm, be), (an, am, ae))
        };
        let big_x = (xm as u128) << 62;
        let d = (xe - ye) as u64;
        let full_y = (ym as u128) << 62;
        let (small_y, sticky) = if d >= 126 {
            (0u128, true)
        } else {
            let v = full_y >> d;
            (v, (v << d) != full_y)
        };
        let sum = if xn == yn {
            big_x + small_y
        } else if sticky {
            big_x - small_y - 1
        } else {
            big_x - small_y
        };
        if sum == 0 && !sticky {
            return Some(Num::Finite {
                neg: false,
                mant: 0,
                exp: 0,
            });
        }
        let bl = 128 - sum.leading_zeros() as i64;
        let base = xe - 62;
        if bl <= 64 {
            // Only reachable by cancellation, which loses no bits (sticky is false).
            let mant = (sum as u64) << (64 - bl);
            return finite_sum(xn, mant, base - (64 - bl));
        }
        let sh = (bl - 64) as u32;
        let mut mant = (sum >> sh) as u64;
        let half = (sum >> (sh - 1)) & 1 == 1;
        let rest = sticky || sum & ((1u128 << (sh - 1)) - 1) != 0;
        let mut exp = base + sh as i64;
        if half && (rest || mant & 1 == 1) {
            mant = mant.wrapping_add(1);
            if mant == 0 {
                mant = 1 << 63;
                exp += 1;
            }
        }
        finite_sum(xn, mant, exp)
    }

    /// A sum's result: `None` when it overflowed to infinity.
    fn finite_sum(neg: bool, mant: u64, exp: i64) -> Option<Num> {
        if exp > MAX_EXP {
            return None;
        }
        Some(Num::Finite { neg, mant, exp })
    }

    /// Formats like `snprintf("%.17Lf")` followed by Redis's trimming of trailing zeros
    /// (and of the point), with `-0` printed as `0`.
    pub fn format_human(v: &Num) -> Vec<u8> {
        let Num::Finite { neg, mant, exp } = *v else {
            return b"inf".to_vec();
        };
        let mut n = Big::from_u128(mant as u128);
        n.mul_pow10(17);
        let q = if exp >= 0 {
            n.shl(exp as u64)
        } else {
            let sh = (-exp) as u64;
            let mut q = n.shr(sh);
            let half = n.bit(sh - 1);
            let rest = n.low_bits_nonzero(sh - 1);
            if half && (rest || q.bit(0)) {
                q.mul_add_small(1, 1);
            }
            q
        };
        let mut digits = q.to_decimal();
        if digits.len() < 18 {
            let mut padded = vec![b'0'; 18 - digits.len()];
            padded.extend_from_slice(&digits);
            digits = padded;
        }
        let point = digits.len() - 17;
        let mut out = Vec::with_capacity(digits.len() + 2);
        if neg {
            out.push(b'-');
        }
        out.extend_from_slice(&digits[..point]);
        out.push(b'.');
        out.extend_from_slice(&digits[point..]);
        while out.last() == Some(&b'0') {
            out.pop();
        }
        if out.last() == Some(&b'.') {
            out.pop();
        }
        if out == b"-0" {
            out = b"0".to_vec();
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// APPEND / STRLEN / GETRANGE / SETRANGE
// ---------------------------------------------------------------------------------------

/// `APPEND key value`
fn append(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let tail = args.get(2);
    let now = ctx.now_ms;
    let max = max_string_len(ctx.shard);
    let (db, out) = split(ctx);
    match db.lookup_boxed(key, now) {
        None => {
            db.set(key, Value::from_bytes(tail), 0);
            out.int(tail.len() as i64);
        }
        Some(e) => {
            let Some(cur) = e.value().str_len() else {
                return out.error(WRONGTYPE);
            };
            if (cur as u64).saturating_add(tail.len() as u64) > max {
                return out.error(b"ERR string exceeds maximum allowed size (proto-max-bulk-len)");
            }
            let Some(buf) = e.value_mut().and_then(Value::make_raw) else {
                return out.error(WRONGTYPE);
            };
            buf.extend_from_slice(tail);
            out.int(buf.len() as i64);
        }
    }
    ctx.modified(key, b'$', "append");
}

/// `STRLEN key`
fn strlen(ctx: &mut Ctx, args: Args) {
    match lookup_read(ctx.shard, ctx.db, args.get(1), ctx.now_ms) {
        None => ctx.out.int(0),
        Some(e) => match e.value().str_len() {
            Some(n) => ctx.out.int(n as i64),
            None => ctx.out.error(WRONGTYPE),
        },
    }
}

/// The byte range `[start, end]` GETRANGE returns for a string of `len` bytes, or `None`
/// for an empty reply (Redis's index arithmetic).
fn range_of(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len_i = len as i128;
    let (mut s, mut e) = (start as i128, end as i128);
    if s < 0 && e < 0 && s > e {
        return None;
    }
    if s < 0 {
        s += len_i;
    }
    if e < 0 {
        e += len_i;
    }
    s = s.max(0);
    e = e.max(0);
    if e >= len_i {
        e = len_i - 1;
    }
    if s > e || len == 0 {
        return None;
    }
    Some((s as usize, e as usize))
}

/// `GETRANGE key start end` (and its old name `SUBSTR`).
fn getrange(ctx: &mut Ctx, args: Args) {
    let (Some(start), Some(end)) = (parse_int(args.get(2)), parse_int(args.get(3))) else {
        return ctx.out.error(NOT_INT);
    };
    let Some(e) = lookup_read(ctx.shard, ctx.db, args.get(1), ctx.now_ms) else {
        return ctx.out.bulk(b"");
    };
    let out = &mut ctx.out;
    let done = e.value().with_str(|s| match range_of(start, end, s.len()) {
        Some((a, b)) => out.bulk(&s[a..=b]),
        None => out.bulk(b""),
    });
    if done.is_none() {
        ctx.out.error(WRONGTYPE);
    }
}

/// `SETRANGE key offset value`
fn setrange(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let patch = args.get(3);
    let Some(offset) = parse_int(args.get(2)) else {
        return ctx.out.error(NOT_INT);
    };
    if offset < 0 {
        return ctx.out.error(b"ERR offset is out of range");
    }
    let offset = offset as u64;
    let now = ctx.now_ms;
    let too_big = check_string_len(ctx.shard, offset, patch.len() as u64);
    let (db, out) = split(ctx);
    let total = offset as usize + patch.len();
    match db.lookup_boxed(key, now) {
        None => {
            if patch.is_empty() {
                return out.int(0);
            }
            if let Err(m) = too_big {
                return out.error(m);
            }
            let mut v = Vec::with_capacity(total);
            v.resize(offset as usize, 0);
            v.extend_from_slice(patch);
            db.set(key, Value::Raw(v), 0);
            out.int(total as i64);
            ctx.modified(key, b'$', "setrange");
        }
        Some(e) => {
            let Some(olen) = e.value().str_len() else {
                return out.error(WRONGTYPE);
            };
            if patch.is_empty() {
                return out.int(olen as i64);
            }
            if let Err(m) = too_big {
                return out.error(m);
            }
            let Some(buf) = e.value_mut().and_then(Value::make_raw) else {
                return out.error(WRONGTYPE);
            };
            if buf.len() < total {
                buf.resize(total, 0);
            }
            buf[offset as usize..total].copy_from_slice(patch);
            out.int(buf.len() as i64);
            ctx.modified(key, b'$', "setrange");
        }
    }
}

// ---------------------------------------------------------------------------------------
// LCS
// ---------------------------------------------------------------------------------------

/// One matching range of `LCS ... IDX`: (a_start, a_end, b_start, b_end, len).
type LcsMatch = (u32, u32, u32, u32, u32);

/// One LCS input as read on its shard: `Ok(None)` for a missing key, `Err(())` for a
/// non-string value.
type LcsInput = Result<Option<Vec<u8>>, ()>;

/// Reads one LCS input (a read lookup: counts a keyspace hit or miss).
fn lcs_fetch(d: &mut ShardData, db: usize, key: &[u8], now: u64) -> LcsInput {
    match lookup_read(d, db, key, now) {
        None => Ok(None),
        Some(e) => e.value().with_str(|s| Some(s.to_vec())).ok_or(()),
    }
}

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`
fn lcs(ctx: &mut Ctx, args: Args) {
    let now = ctx.now_ms;
    let a = lcs_fetch(ctx.shard, ctx.db, args.get(1), now);
    let b = lcs_fetch(ctx.shard, ctx.db, args.get(2), now);
    let max = max_string_len(ctx.shard);
    lcs_reply(&mut ctx.out, a, b, args, max);
}

/// Cross-shard LCS: reads both strings under the key locks, then computes on the
/// coordinating shard.
fn lcs_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let db = ctx.client.db;
        let (k1, k2) = (a.get(1).to_vec(), a.get(2).to_vec());
        let (s1, s2) = (ctx.shards.owner(&k1), ctx.shards.owner(&k2));
        let groups = ctx.shards.group_keys(db, [&k1[..], &k2[..]]);
        ctx.lock(&groups).await;
        let x = ctx
            .shards
            .run_on(s1, move |d| lcs_fetch(d, db, &k1, now_ms()))
            .await;
        let y = ctx
            .shards
            .run_on(s2, move |d| lcs_fetch(d, db, &k2, now_ms()))
            .await;
        ctx.unlock(&groups).await;
        let max = max_string_len(&ctx.shards.data.borrow());
        let mut buf = Vec::new();
        lcs_reply(&mut ctx.writer(&mut buf), x, y, a, max);
        buf
    })
}

/// Redis's `lcsCommand` once both inputs are read: option parsing, the dynamic-programming
/// table, and the reply (the string, its length, or the matching ranges with `IDX`).
fn lcs_reply(out: &mut ReplyWriter, a: LcsInput, b: LcsInput, args: Args, max: u64) {
    let (Ok(a), Ok(b)) = (a, b) else {
        return out.error(b"ERR The specified keys must contain string values");
    };
    let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());

    let (mut getlen, mut getidx, mut withmatchlen) = (false, false, false);
    let mut minmatchlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let o = args.get(j);
        let more = args.len() - 1 - j;
        if eq_ic(o, "idx") {
            getidx = true;
        } else if eq_ic(o, "len") {
            getlen = true;
        } else if eq_ic(o, "withmatchlen") {
            withmatchlen = true;
        } else if eq_ic(o, "minmatchlen") && more > 0 {
            match parse_int(args.get(j + 1)) {
                Some(v) => minmatchlen = v.max(0),
                None => return out.error(NOT_INT),
            }
            j += 1;
        } else {
            return out.error(SYNTAX_ERR);
        }
        j += 1;
    }
    if getidx && getlen {
        return out.error(b"ERR If you want both the length and indexes, please just use IDX.");
    }
    if a.len() as u64 >= u32::MAX as u64 - 1 || b.len() as u64 >= u32::MAX as u64 - 1 {
        return out.error(b"ERR String too long for LCS");
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells.saturating_mul(4) > max {
        return out.error(
            b"ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        );
    }
    // table[i * (blen + 1) + j] = LCS length of a[..i] and b[..j].
    let w = blen + 1;
    let mut table: Vec<u32> = Vec::new();
    if table.try_reserve_exact(cells as usize).is_err() {
        return out.error(b"ERR Insufficient memory, failed allocating transient memory for LCS");
    }
    table.resize(cells as usize, 0);
    for i in 1..=alen {
        for jj in 1..=blen {
            table[i * w + jj] = if a[i - 1] == b[jj - 1] {
                table[(i - 1) * w + jj - 1] + 1
            } else {
                table[(i - 1) * w + jj].max(table[i * w + jj - 1])
            };
        }
    }
    let total = table[alen * w + blen];
    let compute = getidx || !getlen;
    let mut result = vec![0u8; if compute { total as usize } else { 0 }];
    let mut matches: Vec<LcsMatch> = Vec::new();
    let mut idx = total as usize;
    let (mut i, mut jj) = (alen, blen);
    // `a_start == alen` means "no range being tracked".
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0usize, 0usize, 0usize);
    while compute && i > 0 && jj > 0 {
        let mut emit = false;
        if a[i - 1] == b[jj - 1] {
            result[idx - 1] = a[i - 1];
            if a_start == alen {
                a_start = i - 1;
                a_end = i - 1;
                b_start = jj - 1;
                b_end = jj - 1;
            } else if a_start == i && b_start == jj {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            jj -= 1;
        } else {
            if table[(i - 1) * w + jj] > table[i * w + jj - 1] {
                i -= 1;
            } else {
                jj -= 1;
            }
            if a_start != alen {
                emit = true;
            }
        }
        let match_len = a_end.wrapping_sub(a_start).wrapping_add(1) as u32;
        if emit {
            if getidx && (minmatchlen == 0 || match_len as i64 >= minmatchlen) {
                matches.push((
                    a_start as u32,
                    a_end as u32,
                    b_start as u32,
                    b_end as u32,
                    match_len,
                ));
            }
            a_start = alen;
        }
    }
    if getidx {
        out.map(2);
        out.bulk(b"matches");
        out.array(matches.len());
        for &(as_, ae, bs, be, ml) in &matches {
            out.array(if withmatchlen { 3 } else { 2 });
            out.array(2);
            out.int(as_ as i64);
            out.int(ae as i64);
            out.array(2);
            out.int(bs as i64);
            out.int(be as i64);
            if withmatchlen {
                out.int(ml as i64);
            }
        }
        out.bulk(b"len");
        out.int(total as i64);
    } else if getlen {
        out.int(total as i64);
    } else {
        out.bulk(&result);
    }
}
