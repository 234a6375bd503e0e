//! Stream commands: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XREAD, XREADGROUP,
//! XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XINFO and XSETID.
//!
//! Behaviour, reply shapes and error texts follow Redis 7.0 (`t_stream.c`), including the
//! order in which arguments are validated against the key. Storage is
//! [`crate::storage::stream`]. XREAD and XREADGROUP may block, so they run as tasks on the
//! client's home shard: they lock their keys, read every key on its owner shard, and when
//! nothing is there and BLOCK was given they wait through [`crate::shard::blocking`]
//! (XADD signals the key ready, as list pushes do). Streams are not deleted when emptied.

use crate::commands::keys::lookup_read;
use crate::commands::{
    arity_error, eq_ic, flags, parse_int, AsyncCtx, CommandSpec, Ctx, Handler, ReplyFuture,
    NOT_INT, SYNTAX_ERR, WRONGTYPE,
};
use crate::protocol::parse::{Args, OwnedArgs};
use crate::protocol::reply::ReplyWriter;
use crate::shard::blocking::{block_on, BlockOp, Outcome};
use crate::shard::{now_ms, ShardData};
use crate::storage::stream::{EntryRef, Group, NodeLimits, Stream, StreamId, Trim};
use crate::storage::Value;
use std::sync::Arc;

const fn keyed(run: crate::commands::KeyedFn) -> Handler {
    Handler::Keyed { run, cross: None }
}

/// The stream commands, as Redis 7.0's COMMAND INFO describes them.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "xadd",
        -5,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @stream @fast",
        keyed(xadd),
    ),
    CommandSpec::new(
        "xlen",
        2,
        flags::READONLY | flags::FAST,
        (1, 1, 1),
        "@read @stream @fast",
        keyed(xlen),
    ),
    CommandSpec::new(
        "xrange",
        -4,
        flags::READONLY,
        (1, 1, 1),
        "@read @stream @slow",
        keyed(xrange),
    ),
    CommandSpec::new(
        "xrevrange",
        -4,
        flags::READONLY,
        (1, 1, 1),
        "@read @stream @slow",
        keyed(xrevrange),
    ),
    CommandSpec::new(
        "xdel",
        -3,
        flags::WRITE | flags::FAST,
        (1, 1, 1),
        "@write @stream @fast",
        keyed(xdel),
    ),
    CommandSpec::new(
        "xtrim",
        -4,
        flags::WRITE,
        (1, 1, 1),
        "@write @stream @slow",
        keyed(xtrim),
    ),
    CommandSpec::new(
        "xread",
        -4,
        flags::READONLY | flags::BLOCKING | flags::MOVABLEKEYS,
        (0, 0, 0),
        "@read @stream @slow @blocking",
        Handler::Async(xread),
    ),
    CommandSpec::new(
        "xreadgroup",
        -7,
        flags::WRITE | flags::BLOCKING | flags::MOVABLEKEYS,
        (0, 0, 0),
        "@write @stream @slow @blocking",
        Handler::Async(xreadgroup),
    ),
    CommandSpec::new(
        "xgroup",
        -2,
        flags::WRITE,
        (2, 2, 1),
        "@write @stream @slow",
        keyed(xgroup),
    ),
    CommandSpec::new(
        "xack",
        -4,
        flags::WRITE | flags::FAST,
        (1, 1, 1),
        "@write @stream @fast",
        keyed(xack),
    ),
    CommandSpec::new(
        "xpending",
        -3,
        flags::READONLY,
        (1, 1, 1),
        "@read @stream @slow",
        keyed(xpending),
    ),
    CommandSpec::new(
        "xclaim",
        -6,
        flags::WRITE | flags::FAST,
        (1, 1, 1),
        "@write @stream @fast",
        keyed(xclaim),
    ),
    CommandSpec::new(
        "xautoclaim",
        -6,
        flags::WRITE | flags::FAST,
        (1, 1, 1),
        "@write @stream @fast",
        keyed(xautoclaim),
    ),
    CommandSpec::new(
        "xinfo",
        -2,
        flags::READONLY,
        (2, 2, 1),
        "@read @stream @slow",
        keyed(xinfo),
    ),
    CommandSpec::new(
        "xsetid",
        -3,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @stream @fast",
        keyed(xsetid),
    ),
];

/// Redis's error for a malformed ID.
pub const INVALID_ID: &[u8] = b"ERR Invalid stream ID specified as stream command argument";

// ---------------------------------------------------------------------------------------
// Parsing helpers
// ---------------------------------------------------------------------------------------

/// Parses an unsigned decimal like Redis's `string2ull` (no sign, no spaces).
fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Parses `ms-seq`, `ms` (seq = `missing_seq`), `-`/`+` (refused when `strict`), and
/// with `allow_star` `ms-*`. Returns the ID and whether the sequence was given.
fn parse_id_full(
    s: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_star: bool,
) -> Option<(StreamId, bool)> {
    if s.len() > 127 {
        return None;
    }
    if s == b"-" {
        return (!strict).then_some((StreamId::MIN, true));
    }
    if s == b"+" {
        return (!strict).then_some((StreamId::MAX, true));
    }
    match s.iter().position(|&c| c == b'-') {
        Some(p) => {
            let ms = parse_u64(&s[..p])?;
            let rest = &s[p + 1..];
            if allow_star && rest == b"*" {
                return Some((StreamId::new(ms, 0), false));
            }
            Some((StreamId::new(ms, parse_u64(rest)?), true))
        }
        None => Some((StreamId::new(parse_u64(s)?, missing_seq), true)),
    }
}

/// A strict ID (no `-`/`+`), missing sequence 0.
fn parse_strict(s: &[u8]) -> Option<StreamId> {
    parse_id_full(s, 0, true, false).map(|x| x.0)
}

/// An interval bound: `(id` exclusive, or `-`/`+`/`id`. Errors are written to `out`.
fn parse_interval(
    out: &mut ReplyWriter,
    s: &[u8],
    missing_seq: u64,
    start: bool,
) -> Option<StreamId> {
    let (id, ex) = if s.len() > 1 && s[0] == b'(' {
        (parse_id_full(&s[1..], missing_seq, true, false), true)
    } else {
        (parse_id_full(s, missing_seq, false, false), false)
    };
    let Some((id, _)) = id else {
        out.error(INVALID_ID);
        return None;
    };
    if !ex {
        return Some(id);
    }
    let r = if start { id.incr() } else { id.decr() };
    if r.is_none() {
        out.error(if start {
            b"ERR invalid start ID for the interval"
        } else {
            b"ERR invalid end ID for the interval"
        });
    }
    r
}

/// `ERR unknown subcommand or wrong number of arguments for '<sub>'. Try <CMD> HELP.`
fn subcommand_syntax(out: &mut ReplyWriter, cmd: &str, sub: &[u8]) {
    let mut m = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
    m.extend_from_slice(&sub[..sub.len().min(128)]);
    m.extend_from_slice(b"'. Try ");
    m.extend_from_slice(cmd.as_bytes());
    m.extend_from_slice(b" HELP.");
    out.error(&m);
}

/// `-NOGROUP ...` error text with `%s` pieces.
fn nogroup(parts: &[&[u8]]) -> Vec<u8> {
    let mut m = b"-NOGROUP ".to_vec();
    for p in parts {
        m.extend_from_slice(p);
    }
    m
}

/// The shard's stream node limits (`stream-node-max-entries`, `stream-node-max-bytes`).
fn node_limits(shard: &ShardData) -> NodeLimits {
    let get = |name: &str, default: usize| {
        let v = match shard.config.extra.get(name) {
            Some(v) => Some(v.clone()),
            None => shard.config.get_one(name),
        };
        v.and_then(|v| v.parse::<u64>().ok())
            .map_or(default, |v| usize::try_from(v).unwrap_or(usize::MAX))
    };
    let d = NodeLimits::default();
    NodeLimits {
        max_entries: get("stream-node-max-entries", d.max_entries),
        max_bytes: get("stream-node-max-bytes", d.max_bytes),
    }
}

/// Looks a stream up. `Err(())` after writing WRONGTYPE; `Ok(None)` when missing.
/// `read` counts a keyspace hit or miss.
fn find<'s>(
    shard: &'s mut ShardData,
    db: usize,
    key: &[u8],
    now: u64,
    read: bool,
) -> Result<Option<&'s mut Stream>, ()> {
    let e = if read {
        lookup_read(shard, db, key, now)
    } else {
        shard.dbs[db].lookup(key, now)
    };
    match e {
        None => Ok(None),
        Some(e) => e.as_stream_mut().map(Some).ok_or(()),
    }
}

/// Writes an entry as `[id, [field, value, ...]]`.
fn write_entry(out: &mut ReplyWriter, e: &EntryRef) {
    out.array(2);
    out.bulk(&e.id.format());
    out.array(e.len() * 2);
    for s in e.items() {
        out.bulk(s);
    }
}

/// A keyspace notification without the WATCH signal: Redis's `notifyKeyspaceEvent`
/// alone, for the stream writes that do not call `signalModifiedKey` (XGROUP's
/// subcommands on an existing stream, XSETID, XADD's trimming after its own signal).
fn notify(ctx: &mut Ctx, key: &[u8], event: &'static str) {
    let db = ctx.db;
    ctx.shard.key_event(db, key, b't', event);
}

/// Writes an ID as a bulk string.
fn write_id(out: &mut ReplyWriter, id: StreamId) {
    out.bulk(&id.format());
}

// ---------------------------------------------------------------------------------------
// XADD / XTRIM
// ---------------------------------------------------------------------------------------

/// Parsed trimming options of XADD/XTRIM.
struct TrimArgs {
    how: Option<Trim>,
    approx: bool,
    limit: u64,
    nomkstream: bool,
    /// XADD: the ID argument's position and parsed form (`None` = `*`).
    id_pos: usize,
    id: Option<(StreamId, bool)>,
}

/// Parses XADD (`xadd`) or XTRIM options; errors are written to `out`.
fn parse_trim_args(
    out: &mut ReplyWriter,
    args: &Args,
    xadd: bool,
    limits: NodeLimits,
) -> Option<TrimArgs> {
    let mut t = TrimArgs {
        how: None,
        approx: false,
        limit: 0,
        nomkstream: false,
        id_pos: args.len(),
        id: None,
    };
    let mut limit_given = false;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = args.get(i);
        if xadd && opt == b"*" {
            t.id_pos = i;
            break;
        } else if (eq_ic(opt, "maxlen") || eq_ic(opt, "minid")) && more > 0 {
            if t.how.is_some() {
                out.error(b"ERR syntax error, MAXLEN and MINID options at the same time are not compatible");
                return None;
            }
            t.approx = false;
            let next = args.get(i + 1);
            if more >= 2 && next == b"~" {
                t.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let v = args.get(i + 1);
            if eq_ic(opt, "maxlen") {
                let Some(n) = parse_int(v) else {
                    out.error(NOT_INT);
                    return None;
                };
                if n < 0 {
                    out.error(b"ERR The MAXLEN argument must be >= 0.");
                    return None;
                }
                t.how = Some(Trim::MaxLen(n as u64));
            } else {
                let Some(id) = parse_strict(v) else {
                    out.error(INVALID_ID);
                    return None;
                };
                t.how = Some(Trim::MinId(id));
            }
            i += 2;
            continue;
        } else if eq_ic(opt, "limit") && more > 0 {
            let Some(n) = parse_int(args.get(i + 1)) else {
                out.error(NOT_INT);
                return None;
            };
            if n < 0 {
                out.error(b"ERR The LIMIT argument must be >= 0.");
                return None;
            }
            t.limit = n as u64;
            limit_given = true;
            i += 2;
            continue;
        } else if xadd && eq_ic(opt, "nomkstream") {
            t.nomkstream = true;
        } else if xadd {
            match parse_id_full(opt, 0, true, true) {
                Some(id) => t.id = Some(id),
                None => {
                    out.error(INVALID_ID);
                    return None;
                }
            }
            t.id_pos = i;
            break;
        } else {
            out.error(SYNTAX_ERR);
            return None;
        }
        i += 1;
    }
    if t.limit != 0 && t.how.is_none() {
        out.error(b"ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
        return None;
    }
    if !xadd && t.how.is_none() {
        out.error(b"ERR syntax error, XTRIM must be called with a trimming strategy");
        return None;
    }
    if limit_given {
        if !t.approx {
            out.error(b"ERR syntax error, LIMIT cannot be used without the special ~ option");
            return None;
        }
    } else if t.approx {
        let l = (100u64).saturating_mul(limits.max_entries as u64);
        t.limit = if l == 0 { 10000 } else { l.min(1_000_000) };
    } else {
        t.limit = 0;
    }
    Some(t)
}

/// `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value ...`
fn xadd(ctx: &mut Ctx, args: Args) {
    let limits = node_limits(ctx.shard);
    let Some(t) = parse_trim_args(&mut ctx.out, &args, true, limits) else {
        return;
    };
    let fpos = t.id_pos + 1;
    if fpos > args.len() || args.len() - fpos < 2 || (args.len() - fpos) % 2 == 1 {
        return ctx.out.error(&arity_error(b"xadd"));
    }
    if let Some((id, true)) = t.id {
        if id.is_zero() {
            return ctx
                .out
                .error(b"ERR The ID specified in XADD must be greater than 0-0");
        }
    }
    let key = args.get(1);
    let (now, db) = (ctx.now_ms, ctx.db);
    let exists = match find(ctx.shard, db, key, now, false) {
        Err(()) => return ctx.out.error(WRONGTYPE),
        Ok(s) => s.is_some(),
    };
    if !exists {
        if t.nomkstream {
            return ctx.out.null();
        }
        ctx.db().set(key, Value::from_stream(Stream::new()), 0);
    }
    let fields: Vec<&[u8]> = (fpos..args.len()).map(|i| args.get(i)).collect();
    let s = ctx.shard.dbs[db]
        .lookup(key, now)
        .and_then(|e| e.as_stream_mut())
        .expect("a stream");
    if s.last_id == StreamId::MAX {
        return ctx
            .out
            .error(b"ERR The stream has exhausted the last possible ID, unable to add more items");
    }
    let id =
        match s.append(&fields, t.id, now, limits) {
            Ok(id) => id,
            Err(_) => return ctx.out.error(
                b"ERR The ID specified in XADD is equal or smaller than the target stream top item",
            ),
        };
    let trimmed = t.how.is_some_and(|how| s.trim(how, t.approx, t.limit) > 0);
    write_id(&mut ctx.out, id);
    ctx.modified(key, b't', "xadd");
    if trimmed {
        notify(ctx, key, "xtrim");
    }
    ctx.shard.signal_key_ready(db, key);
}

/// `XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]`
fn xtrim(ctx: &mut Ctx, args: Args) {
    let limits = node_limits(ctx.shard);
    let Some(t) = parse_trim_args(&mut ctx.out, &args, false, limits) else {
        return;
    };
    let key = args.get(1);
    let (now, db) = (ctx.now_ms, ctx.db);
    let n = match find(ctx.shard, db, key, now, false) {
        Err(()) => return ctx.out.error(WRONGTYPE),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(s)) => s.trim(t.how.expect("a strategy"), t.approx, t.limit),
    };
    if n > 0 {
        ctx.modified(key, b't', "xtrim");
    }
    ctx.out.int(n as i64);
}

// ---------------------------------------------------------------------------------------
// XLEN / XRANGE / XREVRANGE / XDEL
// ---------------------------------------------------------------------------------------

/// `XLEN key`
fn xlen(ctx: &mut Ctx, args: Args) {
    let (now, db) = (ctx.now_ms, ctx.db);
    match find(ctx.shard, db, args.get(1), now, true) {
        Err(()) => ctx.out.error(WRONGTYPE),
        Ok(None) => ctx.out.int(0),
        Ok(Some(s)) => {
            let n = s.length as i64;
            ctx.out.int(n)
        }
    }
}

fn range_generic(ctx: &mut Ctx, args: Args, rev: bool) {
    let (sa, ea) = if rev {
        (args.get(3), args.get(2))
    } else {
        (args.get(2), args.get(3))
    };
    let Some(start) = parse_interval(&mut ctx.out, sa, 0, true) else {
        return;
    };
    let Some(end) = parse_interval(&mut ctx.out, ea, u64::MAX, false) else {
        return;
    };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if eq_ic(args.get(j), "count") && j + 1 < args.len() {
            let Some(c) = parse_int(args.get(j + 1)) else {
                return ctx.out.error(NOT_INT);
            };
            count = c.max(0);
            j += 2;
        } else {
            return ctx.out.error(SYNTAX_ERR);
        }
    }
    let (now, db) = (ctx.now_ms, ctx.db);
    let s = match find(ctx.shard, db, args.get(1), now, true) {
        Err(()) => return ctx.out.error(WRONGTYPE),
        Ok(None) => return ctx.out.array(0),
        Ok(Some(s)) => &*s,
    };
    if count == 0 {
        return ctx.out.null_array();
    }
    let mut es = Vec::new();
    s.range(start, end, rev, count.max(0) as usize, |e| es.push(e));
    ctx.out.array(es.len());
    for e in &es {
        write_entry(&mut ctx.out, e);
    }
}

/// `XRANGE key start end [COUNT count]`
fn xrange(ctx: &mut Ctx, args: Args) {
    range_generic(ctx, args, false)
}

/// `XREVRANGE key end start [COUNT count]`
fn xrevrange(ctx: &mut Ctx, args: Args) {
    range_generic(ctx, args, true)
}

/// `XDEL key id [id ...]`
fn xdel(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let (now, db) = (ctx.now_ms, ctx.db);
    let n = {
        let s = match find(ctx.shard, db, key, now, false) {
            Err(()) => return ctx.out.error(WRONGTYPE),
            Ok(None) => return ctx.out.int(0),
            Ok(Some(s)) => s,
        };
        let mut ids = Vec::with_capacity(args.len() - 2);
        for i in 2..args.len() {
            match parse_strict(args.get(i)) {
                Some(id) => ids.push(id),
                None => return ctx.out.error(INVALID_ID),
            }
        }
        s.delete_ids(&ids)
    };
    if n > 0 {
        ctx.modified(key, b't', "xdel");
    }
    ctx.out.int(n as i64);
}

// ---------------------------------------------------------------------------------------
// XREAD / XREADGROUP
// ---------------------------------------------------------------------------------------

/// The ID argument of one stream in XREAD/XREADGROUP.
#[derive(Clone, Copy, Debug)]
enum ReadFrom {
    /// Entries after this ID.
    After(StreamId),
    /// `>`: entries never delivered to the group.
    New,
}

/// A parsed XREAD/XREADGROUP request.
#[derive(Clone, Debug)]
struct ReadReq {
    group: Option<(Vec<u8>, Vec<u8>)>,
    noack: bool,
    count: usize,
    resp3: bool,
}

/// What checking one key found.
enum Check {
    WrongType,
    NoGroup,
    /// Exists (or not): the stream's last ID if any.
    Ok(Option<StreamId>),
}

fn check_key(d: &mut ShardData, db: usize, key: &[u8], group: Option<&[u8]>) -> Check {
    match find(d, db, key, now_ms(), true) {
        Err(()) => Check::WrongType,
        Ok(None) if group.is_some() => Check::NoGroup,
        Ok(None) => Check::Ok(None),
        Ok(Some(s)) => match group {
            Some(g) if !s.groups.contains_key(g) => Check::NoGroup,
            _ => Check::Ok(Some(s.last_id)),
        },
    }
}

/// Serves one key: `Some(encoded entries array)` when there is something to deliver,
/// `Err` with an error text when the group vanished.
fn serve_key(
    d: &mut ShardData,
    db: usize,
    key: &[u8],
    from: ReadFrom,
    req: &ReadReq,
    blocked: bool,
) -> Result<Option<Vec<u8>>, Vec<u8>> {
    let now = now_ms();
    let mut created = false;
    let r = match d.dbs[db].lookup(key, now).and_then(|e| e.as_stream_mut()) {
        None => Ok(None),
        Some(s) => serve_stream(s, from, req, blocked, now, &mut created),
    };
    if created {
        // Redis creates the consumer with a notification (no WATCH signal).
        d.key_event(db, key, b't', "xgroup-createconsumer");
    }
    r
}

/// [`serve_key`] on the stream itself; `created` tells whether a consumer was created.
fn serve_stream(
    s: &mut Stream,
    from: ReadFrom,
    req: &ReadReq,
    blocked: bool,
    now: u64,
    created: &mut bool,
) -> Result<Option<Vec<u8>>, Vec<u8>> {
    let mut buf = Vec::new();
    let mut out = ReplyWriter::new(&mut buf, req.resp3);
    let Some((gname, cname)) = &req.group else {
        let ReadFrom::After(gt) = from else {
            return Ok(None);
        };
        let ready = if blocked {
            s.last_id > gt && s.length > 0
        } else {
            s.length > 0 && s.last_valid_id() > gt
        };
        if !ready {
            return Ok(None);
        }
        let Some(start) = gt.incr() else {
            return Ok(None);
        };
        let mut es = Vec::new();
        s.range(start, StreamId::MAX, false, req.count, |e| es.push(e));
        if es.is_empty() {
            return Ok(None);
        }
        out.array(es.len());
        for e in &es {
            write_entry(&mut out, e);
        }
        return Ok(Some(buf));
    };
    let Some(g) = s.groups.get(&gname[..]) else {
        return Err(
            b"-NOGROUP the consumer group this client was blocked on no longer exists".to_vec(),
        );
    };
    match from {
        ReadFrom::After(gt) => {
            // History: the consumer's own pending entries after `gt`.
            let g = s.groups.get_mut(&gname[..]).expect("checked");
            *created |= !g.consumers.contains_key(&cname[..]);
            let c = g.touch_consumer(cname, now);
            let start = gt.incr().unwrap_or(StreamId::MAX);
            let ids: Vec<StreamId> = c
                .pel
                .range(start..)
                .take(if req.count == 0 {
                    usize::MAX
                } else {
                    req.count
                })
                .copied()
                .collect();
            out.array(ids.len());
            for id in ids {
                match s.get(id) {
                    Some(e) => {
                        write_entry(&mut out, &e);
                        let g = s.groups.get_mut(&gname[..]).expect("checked");
                        if let Some(n) = g.pel.get_mut(&id) {
                            n.delivery_time = now;
                            n.delivery_count += 1;
                        }
                    }
                    None => {
                        out.array(2);
                        write_id(&mut out, id);
                        out.null_array();
                    }
                }
            }
            Ok(Some(buf))
        }
        ReadFrom::New => {
            let last = g.last_id;
            let ready = if blocked {
                s.last_id > last
            } else {
                s.length > 0 && s.last_valid_id() > last
            };
            if !ready {
                return Ok(None);
            }
            let start = last.incr().unwrap_or(StreamId::MAX);
            let mut ids = Vec::new();
            s.range(start, StreamId::MAX, false, req.count, |e| ids.push(e.id));
            {
                let g = s.groups.get_mut(&gname[..]).expect("checked");
                *created |= !g.consumers.contains_key(&cname[..]);
                if blocked {
                    if !g.consumers.contains_key(&cname[..]) {
                        g.create_consumer(cname, now);
                    }
                } else {
                    g.touch_consumer(cname, now);
                }
            }
            out.array(ids.len());
            for &id in &ids {
                s.advance_group(gname, id);
                let e = s.get(id).expect("live");
                write_entry(&mut out, &e);
                if !req.noack {
                    let g = s.groups.get_mut(&gname[..]).expect("checked");
                    let n = g.assign(id, cname, now);
                    n.delivery_time = now;
                    n.delivery_count = 1;
                }
            }
            Ok(Some(buf))
        }
    }
}

/// The blocking side of XREAD/XREADGROUP.
struct StreamRead {
    req: ReadReq,
    from: Vec<(Vec<u8>, ReadFrom)>,
}

impl StreamRead {
    fn start_for(&self, key: &[u8]) -> ReadFrom {
        self.from
            .iter()
            .find(|(k, _)| k == key)
            .map_or(ReadFrom::New, |x| x.1)
    }
}

impl BlockOp for StreamRead {
    type Out = Result<Vec<u8>, Vec<u8>>;

    fn ready(&self, d: &mut ShardData, db: usize, key: &[u8]) -> bool {
        let now = now_ms();
        let Some(s) = d.dbs[db].peek(key, now).and_then(|e| e.as_stream()) else {
            return false;
        };
        match (&self.req.group, self.start_for(key)) {
            (None, ReadFrom::After(gt)) => s.last_id > gt && s.length > 0,
            (Some((g, _)), _) => match s.groups.get(&g[..]) {
                None => true,
                Some(g) => s.last_id > g.last_id && s.length > 0,
            },
            _ => false,
        }
    }

    fn take(&self, d: &mut ShardData, db: usize, key: &[u8], first: bool) -> Option<Self::Out> {
        let from = self.start_for(key);
        if first {
            // The command's own pass already found nothing; only a write since then
            // (IDs are resolved, so `$` is a concrete ID) can give something now.
            return serve_key(d, db, key, from, &self.req, false).transpose();
        }
        if !self.ready(d, db, key) {
            return None;
        }
        serve_key(d, db, key, from, &self.req, true).transpose()
    }

    fn restore(&self, _d: &mut ShardData, _db: usize, _key: &[u8], _out: Self::Out) {
        // Reads take nothing; a group delivery stays pending, as in Redis when the
        // reader goes away after being served.
    }
}

/// Parses a BLOCK timeout in milliseconds like Redis's `getTimeoutFromObjectOrReply`.
fn parse_block_ms(arg: &[u8]) -> Result<u64, &'static [u8]> {
    let v = parse_int(arg).ok_or(&b"ERR timeout is not an integer or out of range"[..])?;
    if v < 0 {
        return Err(b"ERR timeout is negative");
    }
    let now = now_ms() as i64;
    if v > 0 && v > i64::MAX - now {
        return Err(b"ERR timeout is out of range");
    }
    Ok(v as u64)
}

fn reply(resp3: bool, f: impl FnOnce(&mut ReplyWriter)) -> Vec<u8> {
    let mut buf = Vec::new();
    f(&mut ReplyWriter::new(&mut buf, resp3));
    buf
}

/// Wraps per-key entry arrays as XREAD's reply (array of pairs, or a RESP3 map).
fn wrap_read(resp3: bool, got: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    reply(resp3, |o| {
        if resp3 {
            o.map(got.len());
        } else {
            o.array(got.len());
        }
        for (k, entries) in got {
            if !resp3 {
                o.array(2);
            }
            o.bulk(k);
            o.raw(entries);
        }
    })
}

fn xread_generic(ctx: AsyncCtx, args: OwnedArgs, is_group: bool) -> ReplyFuture {
    Box::pin(async move {
        let resp3 = ctx.client.resp3;
        let err = |m: &[u8]| reply(resp3, |o| o.error(m));
        let a = args.view();
        let name = if is_group { "XREADGROUP" } else { "XREAD" };
        let mut timeout: Option<u64> = None;
        let mut count = 0usize;
        let mut streams_at = 0;
        let mut group: Option<(Vec<u8>, Vec<u8>)> = None;
        let mut noack = false;
        let mut i = 1;
        while i < a.len() {
            let more = a.len() - i - 1;
            let o = a.get(i);
            if eq_ic(o, "block") && more > 0 {
                i += 1;
                match parse_block_ms(a.get(i)) {
                    Ok(t) => timeout = Some(t),
                    Err(m) => return err(m),
                }
            } else if eq_ic(o, "count") && more > 0 {
                i += 1;
                match parse_int(a.get(i)) {
                    Some(c) => count = c.max(0) as usize,
                    None => return err(NOT_INT),
                }
            } else if eq_ic(o, "streams") && more > 0 {
                streams_at = i + 1;
                if !(a.len() - streams_at).is_multiple_of(2) {
                    return err(b"ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.");
                }
                break;
            } else if eq_ic(o, "group") && more >= 2 {
                if !is_group {
                    return err(
                        b"ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                    );
                }
                group = Some((a.get(i + 1).to_vec(), a.get(i + 2).to_vec()));
                i += 2;
            } else if eq_ic(o, "noack") {
                if !is_group {
                    return err(
                        b"ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                    );
                }
                noack = true;
            } else {
                return err(SYNTAX_ERR);
            }
            i += 1;
        }
        let _ = name;
        if streams_at == 0 {
            return err(SYNTAX_ERR);
        }
        if is_group && group.is_none() {
            return err(b"ERR Missing GROUP option for XREADGROUP");
        }
        let n = (a.len() - streams_at) / 2;
        let keys: Vec<Vec<u8>> = (0..n).map(|j| a.get(streams_at + j).to_vec()).collect();
        let id_args: Vec<Vec<u8>> = (0..n).map(|j| a.get(streams_at + n + j).to_vec()).collect();
        let db = ctx.client.db;
        let groups = ctx.shards.group_keys(db, keys.iter().map(|k| &k[..]));
        ctx.lock(&groups).await;
        // Check every key (type, group), then resolve the IDs in key order.
        let gname = group.as_ref().map(|g| g.0.clone());
        let mut froms: Vec<(Vec<u8>, ReadFrom)> = Vec::with_capacity(n);
        for (j, key) in keys.iter().enumerate() {
            let (k2, g2) = (key.clone(), gname.clone());
            let chk = ctx
                .shards
                .run_on(ctx.shards.owner(key), move |d| {
                    check_key(d, db, &k2, g2.as_deref())
                })
                .await;
            let fail = |m: Vec<u8>| m;
            let last = match chk {
                Check::WrongType => {
                    ctx.unlock(&groups).await;
                    return err(WRONGTYPE);
                }
                Check::NoGroup => {
                    ctx.unlock(&groups).await;
                    let (g, _) = group.as_ref().expect("group");
                    return err(&fail(nogroup(&[
                        b"No such key '",
                        key,
                        b"' or consumer group '",
                        g,
                        b"' in XREADGROUP with GROUP option",
                    ])));
                }
                Check::Ok(last) => last,
            };
            let arg = &id_args[j];
            let from = if arg == b"$" {
                if is_group {
                    ctx.unlock(&groups).await;
                    return err(b"ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.");
                }
                ReadFrom::After(last.unwrap_or(StreamId::MIN))
            } else if arg == b">" {
                if !is_group {
                    ctx.unlock(&groups).await;
                    return err(b"ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.");
                }
                ReadFrom::New
            } else {
                match parse_strict(arg) {
                    Some(id) => ReadFrom::After(id),
                    None => {
                        ctx.unlock(&groups).await;
                        return err(INVALID_ID);
                    }
                }
            };
            froms.push((key.clone(), from));
        }
        let req = ReadReq {
            group,
            noack,
            count,
            resp3,
        };
        let mut got: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (key, from) in &froms {
            let (k2, f2, r2) = (key.clone(), *from, req.clone());
            let r = ctx
                .shards
                .run_on(ctx.shards.owner(key), move |d| {
                    serve_key(d, db, &k2, f2, &r2, false)
                })
                .await;
            if let Ok(Some(entries)) = r {
                got.push((key.clone(), entries));
            }
        }
        ctx.unlock(&groups).await;
        if !got.is_empty() {
            return wrap_read(resp3, &got);
        }
        let Some(timeout) = timeout else {
            return reply(resp3, |o| o.null_array());
        };
        if ctx.client.in_exec {
            return reply(resp3, |o| o.null_array());
        }
        let blocked_count = if count == 0 { 1000 } else { count };
        let op = Arc::new(StreamRead {
            req: ReadReq {
                count: blocked_count,
                ..req
            },
            from: froms,
        });
        match block_on(&ctx.shards, &ctx.client, db, keys, timeout, op).await {
            Outcome::Got(key, Ok(entries)) => wrap_read(resp3, &[(key, entries)]),
            Outcome::Got(_, Err(m)) => err(&m),
            Outcome::Timeout => reply(resp3, |o| o.null_array()),
            Outcome::Gone => Vec::new(),
        }
    })
}

/// `XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]`
fn xread(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    xread_generic(ctx, args, false)
}

/// `XREADGROUP GROUP group consumer [COUNT count] [BLOCK ms] [NOACK] STREAMS key ... id ...`
fn xreadgroup(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    xread_generic(ctx, args, true)
}

// ---------------------------------------------------------------------------------------
// XGROUP / XSETID
// ---------------------------------------------------------------------------------------

const XGROUP_HELP: &[&str] = &[
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
];

const XINFO_HELP: &[&str] = &[
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
];

fn write_help(out: &mut ReplyWriter, cmd: &str, lines: &[&str]) {
    out.array(lines.len() + 3);
    out.simple(
        format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:").as_bytes(),
    );
    for l in lines {
        out.simple(l.as_bytes());
    }
    out.simple(b"HELP");
    out.simple(b"    Prints this help.");
}

/// Checks a container command's subcommand and its arity (Redis 7.0 registers them as
/// subcommands). Returns the lower-case subcommand name when valid.
fn subcommand(
    out: &mut ReplyWriter,
    args: &Args,
    cmd: &str,
    table: &[(&'static str, i32)],
) -> Option<&'static str> {
    let sub = args.get(1);
    let Some(&(name, arity)) = table.iter().find(|(n, _)| eq_ic(sub, n)) else {
        let mut m = b"ERR unknown subcommand '".to_vec();
        m.extend_from_slice(&sub[..sub.len().min(128)]);
        m.extend_from_slice(format!("'. Try {cmd} HELP.").as_bytes());
        out.error(&m);
        return None;
    };
    let argc = args.len() as i32;
    let ok = if arity >= 0 {
        argc == arity
    } else {
        argc >= -arity
    };
    if !ok {
        let full = format!("{}|{}", cmd.to_ascii_lowercase(), name);
        out.error(&arity_error(full.as_bytes()));
        return None;
    }
    Some(name)
}

/// `XGROUP CREATE|SETID|DESTROY|CREATECONSUMER|DELCONSUMER|HELP ...`
fn xgroup(ctx: &mut Ctx, args: Args) {
    let Some(sub) = subcommand(
        &mut ctx.out,
        &args,
        "XGROUP",
        &[
            ("create", -5),
            ("setid", -5),
            ("destroy", 4),
            ("createconsumer", 5),
            ("delconsumer", 5),
            ("help", 2),
        ],
    ) else {
        return;
    };
    if sub == "help" {
        return write_help(&mut ctx.out, "XGROUP", XGROUP_HELP);
    }
    let mut mkstream = false;
    let mut entries_read: Option<u64> = None;
    let mut i = 5;
    while i < args.len() {
        let a = args.get(i);
        if sub == "create" && eq_ic(a, "mkstream") {
            mkstream = true;
            i += 1;
        } else if (sub == "create" || sub == "setid")
            && eq_ic(a, "entriesread")
            && i + 1 < args.len()
        {
            let Some(v) = parse_int(args.get(i + 1)) else {
                return ctx.out.error(NOT_INT);
            };
            if v < -1 {
                return ctx
                    .out
                    .error(b"ERR value for ENTRIESREAD must be positive or -1");
            }
            entries_read = (v >= 0).then_some(v as u64);
            i += 2;
        } else {
            return subcommand_syntax(&mut ctx.out, "XGROUP", args.get(1));
        }
    }
    let key = args.get(2);
    let gname = args.get(3);
    let (now, db) = (ctx.now_ms, ctx.db);
    let exists = match find(ctx.shard, db, key, now, false) {
        Err(()) => return ctx.out.error(WRONGTYPE),
        Ok(s) => s.map(|s| s.groups.contains_key(gname)),
    };
    if !mkstream {
        match exists {
            None => return ctx.out.error(b"ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."),
            Some(false) if matches!(sub, "setid" | "createconsumer" | "delconsumer") => {
                return ctx.out.error(&nogroup(&[
                    b"No such consumer group '",
                    gname,
                    b"' for key name '",
                    key,
                    b"'",
                ]));
            }
            _ => {}
        }
    }
    fn stream<'c>(ctx: &'c mut Ctx, key: &[u8], now: u64) -> &'c mut Stream {
        ctx.shard.dbs[ctx.db]
            .lookup(key, now)
            .and_then(|e| e.as_stream_mut())
            .expect("a stream")
    }
    match sub {
        "create" => {
            if args.len() > 8 {
                return subcommand_syntax(&mut ctx.out, "XGROUP", args.get(1));
            }
            let ida = args.get(4);
            let id = if ida == b"$" {
                None
            } else {
                match parse_strict(ida) {
                    Some(id) => Some(id),
                    None => return ctx.out.error(INVALID_ID),
                }
            };
            if exists.is_none() {
                ctx.db().set(key, Value::from_stream(Stream::new()), 0);
            }
            let s = stream(ctx, key, now);
            let id = id.unwrap_or(s.last_id);
            if s.groups.contains_key(gname) {
                return ctx
                    .out
                    .error(b"-BUSYGROUP Consumer Group name already exists");
            }
            s.groups.insert(
                gname.into(),
                Group {
                    last_id: id,
                    entries_read,
                    ..Group::default()
                },
            );
            ctx.out.ok();
            if exists.is_none() {
                // The stream was created: WATCH sees it, as in Redis.
                ctx.modified(key, b't', "xgroup-create");
            } else {
                notify(ctx, key, "xgroup-create");
            }
        }
        "setid" => {
            if args.len() != 5 && args.len() != 7 {
                return subcommand_syntax(&mut ctx.out, "XGROUP", args.get(1));
            }
            let ida = args.get(4);
            let s = stream(ctx, key, now);
            let id = if ida == b"$" {
                s.last_id
            } else {
                match parse_id_full(ida, 0, false, false) {
                    Some((id, _)) => id,
                    None => return ctx.out.error(INVALID_ID),
                }
            };
            let g = s.groups.get_mut(gname).expect("checked");
            g.last_id = id;
            g.entries_read = entries_read;
            ctx.out.ok();
            notify(ctx, key, "xgroup-setid");
        }
        "destroy" => {
            let s = stream(ctx, key, now);
            if s.groups.remove(gname).is_some() {
                ctx.out.int(1);
                notify(ctx, key, "xgroup-destroy");
                ctx.shard.signal_key_ready(db, key);
            } else {
                ctx.out.int(0);
            }
        }
        "createconsumer" => {
            let cname = args.get(4);
            let s = stream(ctx, key, now);
            let g = s.groups.get_mut(gname).expect("checked");
            let created = g.create_consumer(cname, now);
            ctx.out.int(created as i64);
            if created {
                notify(ctx, key, "xgroup-createconsumer");
            }
        }
        _ => {
            let cname = args.get(4);
            let s = stream(ctx, key, now);
            let g = s.groups.get_mut(gname).expect("checked");
            let pending = match g.consumers.remove(cname) {
                Some(c) => {
                    for id in &c.pel {
                        g.pel.remove(id);
                    }
                    Some(c.pel.len())
                }
                None => None,
            };
            ctx.out.int(pending.unwrap_or(0) as i64);
            if pending.is_some() {
                notify(ctx, key, "xgroup-delconsumer");
            }
        }
    }
}

/// `XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]`
fn xsetid(ctx: &mut Ctx, args: Args) {
    let Some(id) = parse_strict(args.get(2)) else {
        return ctx.out.error(INVALID_ID);
    };
    let mut added: Option<u64> = None;
    let mut maxdel = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let o = args.get(i);
        if eq_ic(o, "entriesadded") && more > 0 {
            let Some(v) = parse_int(args.get(i + 1)) else {
                return ctx.out.error(NOT_INT);
            };
            if v < 0 {
                return ctx.out.error(b"ERR entries_added must be positive");
            }
            added = Some(v as u64);
        } else if eq_ic(o, "maxdeletedid") && more > 0 {
            let Some(m) = parse_strict(args.get(i + 1)) else {
                return ctx.out.error(INVALID_ID);
            };
            if id < m {
                return ctx.out.error(b"ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
            }
            maxdel = m;
        } else {
            return ctx.out.error(SYNTAX_ERR);
        }
        i += 2;
    }
    let key = args.get(1);
    let (now, db) = (ctx.now_ms, ctx.db);
    let s = match find(ctx.shard, db, key, now, false) {
        Err(()) => return ctx.out.error(WRONGTYPE),
        Ok(None) => return ctx.out.error(b"ERR no such key"),
        Ok(Some(s)) => s,
    };
    if s.length > 0 && id < s.last_valid_id() {
        return ctx
            .out
            .error(b"ERR The ID specified in XSETID is smaller than the target stream top item");
    }
    if let Some(a) = added {
        if s.length > a {
            return ctx.out.error(
                b"ERR The entries_added specified in XSETID is smaller than the target stream length",
            );
        }
    }
    s.last_id = id;
    if let Some(a) = added {
        s.entries_added = a;
    }
    if !maxdel.is_zero() {
        s.max_deleted_id = maxdel;
    }
    ctx.out.ok();
    notify(ctx, key, "xsetid");
}

// ---------------------------------------------------------------------------------------
// XACK / XPENDING / XCLAIM / XAUTOCLAIM
// ---------------------------------------------------------------------------------------

/// `XACK key group id [id ...]`
fn xack(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let (now, db) = (ctx.now_ms, ctx.db);
    let s = match find(ctx.shard, db, key, now, true) {
        Err(()) => return ctx.out.error(WRONGTYPE),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(s)) => s,
    };
    let Some(g) = s.groups.get_mut(args.get(2)) else {
        return ctx.out.int(0);
    };
    let mut ids = Vec::with_capacity(args.len() - 3);
    for i in 3..args.len() {
        match parse_strict(args.get(i)) {
            Some(id) => ids.push(id),
            None => return ctx.out.error(INVALID_ID),
        }
    }
    let n = ids.into_iter().filter(|&id| g.ack(id)).count();
    ctx.out.int(n as i64);
}

/// `XPENDING key group [[IDLE min-idle-time] start end count [consumer]]`
fn xpending(ctx: &mut Ctx, args: Args) {
    let argc = args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return ctx.out.error(SYNTAX_ERR);
    }
    let mut range = None;
    let mut minidle: i64 = 0;
    let mut consumer: Option<&[u8]> = None;
    if argc >= 6 {
        let mut at = 3;
        if eq_ic(args.get(3), "idle") {
            let Some(v) = parse_int(args.get(4)) else {
                return ctx.out.error(NOT_INT);
            };
            minidle = v;
            if argc < 8 {
                return ctx.out.error(SYNTAX_ERR);
            }
            at += 2;
        }
        let Some(count) = parse_int(args.get(at + 2)) else {
            return ctx.out.error(NOT_INT);
        };
        let Some(start) = parse_interval(&mut ctx.out, args.get(at), 0, true) else {
            return;
        };
        let Some(end) = parse_interval(&mut ctx.out, args.get(at + 1), u64::MAX, false) else {
            return;
        };
        if at + 3 < argc {
            consumer = Some(args.get(at + 3));
        }
        range = Some((start, end, count.max(0) as usize));
    }
    let key = args.get(1);
    let gname = args.get(2);
    let (now, db) = (ctx.now_ms, ctx.db);
    let s = match find(ctx.shard, db, key, now, true) {
        Err(()) => return ctx.out.error(WRONGTYPE),
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| s.groups.get(gname)) else {
        return ctx.out.error(&nogroup(&[
            b"No such key '",
            key,
            b"' or consumer group '",
            gname,
            b"'",
        ]));
    };
    let out = &mut ctx.out;
    let Some((start, end, count)) = range else {
        out.array(4);
        out.int(g.pel.len() as i64);
        if g.pel.is_empty() {
            out.null();
            out.null();
            out.null_array();
            return;
        }
        write_id(out, *g.pel.keys().next().expect("non-empty"));
        write_id(out, *g.pel.keys().next_back().expect("non-empty"));
        let with: Vec<_> = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pel.is_empty())
            .collect();
        out.array(with.len());
        for (name, c) in with {
            out.array(2);
            out.bulk(name);
            out.bulk_int(c.pel.len() as i64);
        }
        return;
    };
    let ids: Vec<StreamId> = match consumer {
        Some(c) => match g.consumers.get(c) {
            None => return out.array(0),
            Some(c) => {
                if start > end {
                    Vec::new()
                } else {
                    c.pel.range(start..=end).copied().collect()
                }
            }
        },
        None => {
            if start > end {
                Vec::new()
            } else {
                g.pel.range(start..=end).map(|(k, _)| *k).collect()
            }
        }
    };
    let mut rows = Vec::new();
    for id in ids {
        if rows.len() >= count {
            break;
        }
        let n = &g.pel[&id];
        let idle = now as i64 - n.delivery_time as i64;
        if minidle != 0 && idle < minidle {
            continue;
        }
        rows.push((id, n, idle.max(0)));
    }
    out.array(rows.len());
    for (id, n, idle) in rows {
        out.array(4);
        write_id(out, id);
        out.bulk(&n.consumer);
        out.int(idle);
        out.int(n.delivery_count as i64);
    }
}

/// `XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME ms]
/// [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID id]`
fn xclaim(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let gname = args.get(2);
    let cname = args.get(3);
    let (now, db) = (ctx.now_ms, ctx.db);
    let has_group = match find(ctx.shard, db, key, now, true) {
        Err(()) => return ctx.out.error(WRONGTYPE),
        Ok(s) => s.is_some_and(|s| s.groups.contains_key(gname)),
    };
    if !has_group {
        return ctx.out.error(&nogroup(&[
            b"No such key '",
            key,
            b"' or consumer group '",
            gname,
            b"'",
        ]));
    }
    let Some(minidle) = parse_int(args.get(4)) else {
        return ctx
            .out
            .error(b"ERR Invalid min-idle-time argument for XCLAIM");
    };
    let minidle = minidle.max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match parse_strict(args.get(j)) {
            Some(id) => ids.push(id),
            None => break,
        }
        j += 1;
    }
    let nowi = now as i64;
    let (mut force, mut justid) = (false, false);
    let mut retry: Option<i64> = None;
    let mut dtime: Option<i64> = None;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let o = args.get(j);
        if eq_ic(o, "force") {
            force = true;
        } else if eq_ic(o, "justid") {
            justid = true;
        } else if eq_ic(o, "idle") && more > 0 {
            j += 1;
            let Some(v) = parse_int(args.get(j)) else {
                return ctx
                    .out
                    .error(b"ERR Invalid IDLE option argument for XCLAIM");
            };
            dtime = Some(nowi.wrapping_sub(v));
        } else if eq_ic(o, "time") && more > 0 {
            j += 1;
            let Some(v) = parse_int(args.get(j)) else {
                return ctx
                    .out
                    .error(b"ERR Invalid TIME option argument for XCLAIM");
            };
            dtime = Some(v);
        } else if eq_ic(o, "retrycount") && more > 0 {
            j += 1;
            let Some(v) = parse_int(args.get(j)) else {
                return ctx
                    .out
                    .error(b"ERR Invalid RETRYCOUNT option argument for XCLAIM");
            };
            retry = Some(v);
        } else if eq_ic(o, "lastid") && more > 0 {
            j += 1;
            let Some(v) = parse_strict(args.get(j)) else {
                return ctx.out.error(INVALID_ID);
            };
            last_id = v;
        } else {
            let mut m = b"ERR Unrecognized XCLAIM option '".to_vec();
            m.extend_from_slice(o);
            m.push(b'\'');
            return ctx.out.error(&m);
        }
        j += 1;
    }
    let s = find(ctx.shard, db, key, now, false)
        .ok()
        .flatten()
        .expect("checked");
    {
        let g = s.groups.get_mut(gname).expect("checked");
        if last_id > g.last_id {
            g.last_id = last_id;
        }
    }
    let dtime = match dtime {
        Some(t) if t < 0 || t > nowi => nowi,
        Some(t) => t,
        None => nowi,
    } as u64;
    let mut claimed: Vec<StreamId> = Vec::new();
    let mut created = false;
    for id in ids {
        let exists = s.contains(id);
        let g = s.groups.get_mut(gname).expect("checked");
        if !exists {
            g.ack(id);
            continue;
        }
        let fresh = force && !g.pel.contains_key(&id);
        let Some(n) = g.pel.get(&id) else {
            if !fresh {
                continue;
            }
            created |= !g.consumers.contains_key(cname);
            g.touch_consumer(cname, now);
            let n = g.assign(id, cname, now);
            n.delivery_time = dtime;
            n.delivery_count = match retry {
                Some(r) if r >= 0 => r as u64,
                _ => 1,
            };
            claimed.push(id);
            continue;
        };
        if minidle != 0 && (nowi - n.delivery_time as i64) < minidle {
            continue;
        }
        created |= !g.consumers.contains_key(cname);
        g.touch_consumer(cname, now);
        let n = g.assign(id, cname, now);
        n.delivery_time = dtime;
        match retry {
            Some(r) if r >= 0 => n.delivery_count = r as u64,
            _ if !justid => n.delivery_count += 1,
            _ => {}
        }
        claimed.push(id);
    }
    let out = &mut ctx.out;
    out.array(claimed.len());
    for id in claimed {
        if justid {
            write_id(out, id);
        } else {
            write_entry(out, &s.get(id).expect("exists"));
        }
    }
    if created {
        ctx.shard.key_event(db, key, b't', "xgroup-createconsumer");
    }
}

/// `XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]`
fn xautoclaim(ctx: &mut Ctx, args: Args) {
    let Some(minidle) = parse_int(args.get(4)) else {
        return ctx
            .out
            .error(b"ERR Invalid min-idle-time argument for XAUTOCLAIM");
    };
    let minidle = minidle.max(0);
    let Some(start) = parse_interval(&mut ctx.out, args.get(5), 0, true) else {
        return;
    };
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let o = args.get(j);
        if eq_ic(o, "count") && more > 0 {
            let max = i64::MAX / 16;
            match parse_int(args.get(j + 1)) {
                Some(v) if (1..=max).contains(&v) => count = v,
                _ => return ctx.out.error(b"ERR COUNT must be > 0"),
            }
            j += 1;
        } else if eq_ic(o, "justid") {
            justid = true;
        } else {
            return ctx.out.error(SYNTAX_ERR);
        }
        j += 1;
    }
    let key = args.get(1);
    let gname = args.get(2);
    let cname = args.get(3);
    let (now, db) = (ctx.now_ms, ctx.db);
    let s = match find(ctx.shard, db, key, now, true) {
        Err(()) => return ctx.out.error(WRONGTYPE),
        Ok(s) => s,
    };
    let Some(s) = s.filter(|s| s.groups.contains_key(gname)) else {
        return ctx.out.error(&nogroup(&[
            b"No such key '",
            key,
            b"' or consumer group '",
            gname,
            b"'",
        ]));
    };
    let nowi = now as i64;
    let mut attempts = count.saturating_mul(10);
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut cursor = start;
    let mut created = false;
    let mut next: Option<StreamId> = None;
    loop {
        let g = s.groups.get(gname).expect("checked");
        let Some((&id, n)) = g.pel.range(cursor..).next() else {
            next = None;
            break;
        };
        if attempts == 0 || count == 0 {
            next = Some(id);
            break;
        }
        attempts -= 1;
        let dt = n.delivery_time as i64;
        cursor = match id.incr() {
            Some(c) => c,
            None => {
                // Last possible ID: handle it and stop.
                StreamId::MAX
            }
        };
        let exists = s.contains(id);
        let g = s.groups.get_mut(gname).expect("checked");
        if !exists {
            g.ack(id);
            deleted.push(id);
            count -= 1;
        } else if minidle == 0 || nowi - dt >= minidle {
            created |= !g.consumers.contains_key(cname);
            g.touch_consumer(cname, now);
            let n = g.assign(id, cname, now);
            n.delivery_time = now;
            if !justid {
                n.delivery_count += 1;
            }
            claimed.push(id);
            count -= 1;
        }
        if id == StreamId::MAX {
            break;
        }
    }
    let out = &mut ctx.out;
    out.array(3);
    write_id(out, next.unwrap_or(StreamId::MIN));
    out.array(claimed.len());
    for id in &claimed {
        if justid {
            write_id(out, *id);
        } else {
            write_entry(out, &s.get(*id).expect("exists"));
        }
    }
    out.array(deleted.len());
    for id in &deleted {
        write_id(out, *id);
    }
    if created {
        ctx.shard.key_event(db, key, b't', "xgroup-createconsumer");
    }
}

// ---------------------------------------------------------------------------------------
// XINFO
// ---------------------------------------------------------------------------------------

/// Redis's `radix-tree-nodes` for a stream of `keys` nodes: an estimate (Redis's
/// figure depends on its radix tree's internal shape).
fn rax_nodes(keys: usize) -> i64 {
    if keys == 0 {
        1
    } else {
        (keys as i64) * 2
    }
}

/// `XINFO STREAM key [FULL [COUNT n]]`, `XINFO GROUPS key`, `XINFO CONSUMERS key group`,
/// `XINFO HELP`
fn xinfo(ctx: &mut Ctx, args: Args) {
    let Some(sub) = subcommand(
        &mut ctx.out,
        &args,
        "XINFO",
        &[("stream", -3), ("groups", 3), ("consumers", 4), ("help", 2)],
    ) else {
        return;
    };
    if sub == "help" {
        return write_help(&mut ctx.out, "XINFO", XINFO_HELP);
    }
    let key = args.get(2);
    let (now, db) = (ctx.now_ms, ctx.db);
    let s = match find(ctx.shard, db, key, now, true) {
        Err(()) => return ctx.out.error(WRONGTYPE),
        Ok(None) => return ctx.out.error(b"ERR no such key"),
        Ok(Some(s)) => &*s,
    };
    let out = &mut ctx.out;
    match sub {
        "consumers" => {
            let Some(g) = s.groups.get(args.get(3)) else {
                return out.error(&nogroup(&[
                    b"No such consumer group '",
                    args.get(3),
                    b"' for key name '",
                    key,
                    b"'",
                ]));
            };
            out.array(g.consumers.len());
            for (name, c) in &g.consumers {
                out.map(3);
                out.bulk(b"name");
                out.bulk(name);
                out.bulk(b"pending");
                out.int(c.pel.len() as i64);
                out.bulk(b"idle");
                out.int((now as i64 - c.seen_time as i64).max(0));
            }
        }
        "groups" => {
            out.array(s.groups.len());
            for (name, g) in &s.groups {
                out.map(6);
                out.bulk(b"name");
                out.bulk(name);
                out.bulk(b"consumers");
                out.int(g.consumers.len() as i64);
                out.bulk(b"pending");
                out.int(g.pel.len() as i64);
                out.bulk(b"last-delivered-id");
                write_id(out, g.last_id);
                out.bulk(b"entries-read");
                write_opt(out, g.entries_read);
                out.bulk(b"lag");
                write_opt(out, s.group_lag(g));
            }
        }
        _ => {
            let optc = args.len() - 3;
            let mut full = false;
            let mut count: i64 = 10;
            if optc > 0 {
                if (optc != 1 && optc != 3) || !eq_ic(args.get(3), "full") {
                    return subcommand_syntax(out, "XINFO", args.get(1));
                }
                full = true;
                if optc == 3 {
                    if !eq_ic(args.get(4), "count") {
                        return subcommand_syntax(out, "XINFO", args.get(1));
                    }
                    let Some(c) = parse_int(args.get(5)) else {
                        return out.error(NOT_INT);
                    };
                    count = if c < 0 { 10 } else { c };
                }
            }
            out.map(if full { 9 } else { 10 });
            out.bulk(b"length");
            out.int(s.length as i64);
            out.bulk(b"radix-tree-keys");
            out.int(s.node_count() as i64);
            out.bulk(b"radix-tree-nodes");
            out.int(rax_nodes(s.node_count()));
            out.bulk(b"last-generated-id");
            write_id(out, s.last_id);
            out.bulk(b"max-deleted-entry-id");
            write_id(out, s.max_deleted_id);
            out.bulk(b"entries-added");
            out.int(s.entries_added as i64);
            out.bulk(b"recorded-first-entry-id");
            write_id(out, s.first_id);
            if !full {
                out.bulk(b"groups");
                out.int(s.groups.len() as i64);
                for (name, rev) in [(&b"first-entry"[..], false), (b"last-entry", true)] {
                    out.bulk(name);
                    let mut e = None;
                    s.range(StreamId::MIN, StreamId::MAX, rev, 1, |x| e = Some(x));
                    match e {
                        Some(e) => write_entry(out, &e),
                        None => out.null(),
                    }
                }
                return;
            }
            let count = count as usize;
            let take = |n: usize| if count == 0 { n } else { n.min(count) };
            out.bulk(b"entries");
            let mut es = Vec::new();
            s.range(StreamId::MIN, StreamId::MAX, false, count, |e| es.push(e));
            out.array(es.len());
            for e in &es {
                write_entry(out, e);
            }
            out.bulk(b"groups");
            out.array(s.groups.len());
            for (name, g) in &s.groups {
                out.map(7);
                out.bulk(b"name");
                out.bulk(name);
                out.bulk(b"last-delivered-id");
                write_id(out, g.last_id);
                out.bulk(b"entries-read");
                write_opt(out, g.entries_read);
                out.bulk(b"lag");
                write_opt(out, s.group_lag(g));
                out.bulk(b"pel-count");
                out.int(g.pel.len() as i64);
                out.bulk(b"pending");
                out.array(take(g.pel.len()));
                for (id, n) in g.pel.iter().take(take(g.pel.len())) {
                    out.array(4);
                    write_id(out, *id);
                    out.bulk(&n.consumer);
                    out.int(n.delivery_time as i64);
                    out.int(n.delivery_count as i64);
                }
                out.bulk(b"consumers");
                out.array(g.consumers.len());
                for (cname, c) in &g.consumers {
                    out.map(4);
                    out.bulk(b"name");
                    out.bulk(cname);
                    out.bulk(b"seen-time");
                    out.int(c.seen_time as i64);
                    out.bulk(b"pel-count");
                    out.int(c.pel.len() as i64);
                    out.bulk(b"pending");
                    out.array(take(c.pel.len()));
                    for id in c.pel.iter().take(take(c.pel.len())) {
                        let n = &g.pel[id];
                        out.array(3);
                        write_id(out, *id);
                        out.int(n.delivery_time as i64);
                        out.int(n.delivery_count as i64);
                    }
                }
            }
        }
    }
}

fn write_opt(out: &mut ReplyWriter, v: Option<u64>) {
    match v {
        Some(v) => out.int(v as i64),
        None => out.null(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_like_redis() {
        assert_eq!(
            parse_id_full(b"1-2", 0, true, false),
            Some((StreamId::new(1, 2), true))
        );
        assert_eq!(
            parse_id_full(b"5", 9, true, false),
            Some((StreamId::new(5, 9), true))
        );
        assert_eq!(
            parse_id_full(b"5-*", 0, true, true),
            Some((StreamId::new(5, 0), false))
        );
        assert_eq!(parse_id_full(b"5-*", 0, true, false), None);
        assert_eq!(parse_id_full(b"-", 0, true, false), None);
        assert_eq!(
            parse_id_full(b"+", 0, false, false),
            Some((StreamId::MAX, true))
        );
        assert_eq!(parse_id_full(b"-1", 0, false, false), None);
        assert_eq!(parse_id_full(b"1-x", 0, false, false), None);
        assert_eq!(parse_id_full(b"", 0, false, false), None);
    }
}
