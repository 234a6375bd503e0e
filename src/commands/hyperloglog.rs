//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG and PFSELFTEST.
//!
//! A HyperLogLog is a string value in Redis's exact byte layout (see
//! [`crate::storage::hyperloglog`]), so GET, SET, APPEND and friends see the same bytes as
//! on Redis, and a sketch copied between the two counts the same. Behaviour, errors and
//! the cached-cardinality handling follow Redis 7.0's `hyperloglog.c`.
//!
//! PFCOUNT with several keys and PFMERGE have cross-shard coordinators: they lock every
//! key, copy the sources from their shards, merge the registers on the coordinating shard
//! and (PFMERGE) write the destination on its shard before unlocking.

use crate::commands::keys::{cross_setup, lookup_read, split};
use crate::commands::{
    flags, AsyncCtx, CommandSpec, ConnCtx, Ctx, Handler, ReplyFuture, WRONGTYPE,
};
use crate::protocol::parse::{Args, OwnedArgs};
use crate::shard::{now_ms, ShardData};
use crate::storage::hyperloglog as hll;
use crate::storage::{Db, Value, ValueRef};

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

/// The HyperLogLog commands, as Redis 7.0's COMMAND INFO describes them.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "pfadd",
        -2,
        flags::WRITE | flags::DENYOOM | flags::FAST,
        (1, 1, 1),
        "@write @hyperloglog @fast",
        local(pfadd),
    ),
    CommandSpec::new(
        "pfcount",
        -2,
        flags::READONLY,
        (1, -1, 1),
        "@read @hyperloglog @slow",
        both(pfcount, pfcount_cross),
    ),
    CommandSpec::new(
        "pfmerge",
        -2,
        flags::WRITE | flags::DENYOOM,
        (1, -1, 1),
        "@write @hyperloglog @slow",
        both(pfmerge, pfmerge_cross),
    ),
    CommandSpec::new(
        "pfdebug",
        3,
        flags::WRITE | flags::DENYOOM | flags::ADMIN,
        (2, 2, 1),
        "@write @hyperloglog @admin @slow @dangerous",
        local(pfdebug),
    ),
    CommandSpec::new(
        "pfselftest",
        1,
        flags::ADMIN,
        (0, 0, 0),
        "@hyperloglog @admin @slow @dangerous",
        Handler::Conn(pfselftest),
    ),
];

/// Error for a string that is not a HyperLogLog.
pub const NOT_HLL: &[u8] = b"WRONGTYPE Key is not a valid HyperLogLog string value.";
/// Error for a sparse HyperLogLog whose opcodes are inconsistent.
pub const INVALIDOBJ: &[u8] = b"INVALIDOBJ Corrupted HLL object detected";

/// `hll-sparse-max-bytes` as this shard's configuration has it (CONFIG SET changes it).
pub fn sparse_max_bytes(shard: &ShardData) -> u64 {
    let name = "hll-sparse-max-bytes";
    let parsed = match shard.config.extra.get(name) {
        Some(v) => v.parse::<u64>().ok(),
        None => shard
            .config
            .get_one(name)
            .and_then(|v| v.parse::<u64>().ok()),
    };
    parsed.unwrap_or(3000)
}

/// Redis's `isHLLObjectOrReply`: WRONGTYPE for non-strings, the HyperLogLog error for a
/// string that is not a sketch (integer-encoded strings never are).
pub fn check_hll(v: ValueRef<'_>) -> Result<(), &'static [u8]> {
    if !v.is_string() {
        return Err(WRONGTYPE);
    }
    if matches!(v, ValueRef::Int(_)) {
        return Err(NOT_HLL);
    }
    match v.with_str(hll::is_valid) {
        Some(true) => Ok(()),
        _ => Err(NOT_HLL),
    }
}

/// Merges one source value into `max`; returns whether it is dense.
fn merge_value(max: &mut [u8], v: ValueRef<'_>) -> Result<bool, &'static [u8]> {
    check_hll(v)?;
    v.with_str(|s| {
        hll::merge_into(max, s).map_err(|_| INVALIDOBJ)?;
        Ok(s[4] == hll::DENSE)
    })
    .unwrap_or(Err(WRONGTYPE))
}

/// The registers of a union, one byte each, and whether any input was dense.
struct Union {
    /// Register maxima.
    max: Vec<u8>,
    /// True when some source was dense.
    dense: bool,
}

impl Union {
    /// An empty union.
    fn new() -> Union {
        Union {
            max: vec![0; hll::REGISTERS],
            dense: false,
        }
    }

    /// Adds one (possibly missing) source.
    fn add(&mut self, v: Option<ValueRef<'_>>) -> Result<(), &'static [u8]> {
        if let Some(v) = v {
            self.dense |= merge_value(&mut self.max, v)?;
        }
        Ok(())
    }

    /// The cardinality estimate of the union.
    fn count(&self) -> u64 {
        hll::estimate(&hll::histogram_raw(&self.max))
    }
}

// ---------------------------------------------------------------------------------------
// PFADD
// ---------------------------------------------------------------------------------------

/// `PFADD key [element ...]`
fn pfadd(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let now = ctx.now_ms;
    let max_bytes = sparse_max_bytes(ctx.shard);
    let (db, out) = split(ctx);
    let mut updated = 0usize;
    match db.lookup(key, now) {
        None => {
            db.set(key, Value::Raw(hll::new_sparse()), 0);
            updated += 1;
        }
        Some(e) => {
            if let Err(m) = check_hll(e.value()) {
                return out.error(m);
            }
        }
    }
    let buf = db
        .boxed_mut(key)
        .and_then(|e| e.value_mut())
        .and_then(Value::make_raw)
        .expect("string present");
    let mut past = 0u8;
    for i in 2..args.len() {
        match hll::add(buf, args.get(i), max_bytes, &mut past) {
            Ok(true) => updated += 1,
            Ok(false) => {}
            Err(_) => return out.error(INVALIDOBJ),
        }
    }
    if updated > 0 {
        hll::invalidate(buf);
    }
    out.int(i64::from(updated > 0));
    if updated > 0 {
        ctx.modified(key, b'$', "pfadd");
    }
}

// ---------------------------------------------------------------------------------------
// PFCOUNT
// ---------------------------------------------------------------------------------------

/// `PFCOUNT key [key ...]`
fn pfcount(ctx: &mut Ctx, args: Args) {
    let now = ctx.now_ms;
    if args.len() > 2 {
        let mut u = Union::new();
        for i in 1..args.len() {
            let found = lookup_read(ctx.shard, ctx.db, args.get(i), now);
            if let Err(m) = u.add(found.map(|e| e.value())) {
                return ctx.out.error(m);
            }
        }
        return ctx.out.int(u.count() as i64);
    }
    let key = args.get(1);
    let Some(e) = lookup_read(ctx.shard, ctx.db, key, now) else {
        return ctx.out.int(0);
    };
    if let Err(m) = check_hll(e.value()) {
        return ctx.out.error(m);
    }
    let buf = ctx.shard.dbs[ctx.db]
        .boxed_mut(key)
        .and_then(|e| e.value_mut())
        .and_then(Value::make_raw)
        .expect("string");
    if let Some(c) = hll::cached(buf) {
        return ctx.out.int(c as i64);
    }
    match hll::count(buf) {
        Err(_) => ctx.out.error(INVALIDOBJ),
        Ok(c) => {
            hll::set_cached(buf, c);
            ctx.out.int(c as i64);
            // Redis signals the key as modified (WATCH) without a keyspace event.
            let db = ctx.db;
            if !ctx.shard.watches.is_empty() {
                ctx.shard.watches.touch(db, key);
            }
        }
    }
}

/// Reads copies of `keys` on their shards under locks (the caller holds them); `None`
/// for missing keys, in argument order.
async fn read_values(ctx: &AsyncCtx, db: usize, keys: &[&[u8]]) -> Vec<Option<Value>> {
    let (_, work) = cross_setup(ctx, db, keys);
    let per_shard = ctx
        .shards
        .run_on_each(work, move |d, items: Vec<(usize, Vec<u8>)>| {
            let now = now_ms();
            items
                .into_iter()
                .map(|(i, k)| (i, lookup_read(d, db, &k, now).map(|e| e.value().to_value())))
                .collect::<Vec<_>>()
        })
        .await;
    let mut vals: Vec<Option<Value>> = vec![None; keys.len()];
    for (i, v) in per_shard.into_iter().flatten() {
        vals[i] = v;
    }
    vals
}

/// Cross-shard PFCOUNT (several keys): the union's estimate.
fn pfcount_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let db = ctx.client.db;
        let keys: Vec<&[u8]> = (1..a.len()).map(|i| a.get(i)).collect();
        let groups = ctx.shards.group_keys(db, keys.iter().copied());
        ctx.lock(&groups).await;
        let vals = read_values(&ctx, db, &keys).await;
        ctx.unlock(&groups).await;
        let mut u = Union::new();
        let mut buf = Vec::new();
        let mut out = ctx.writer(&mut buf);
        for v in &vals {
            if let Err(m) = u.add(v.as_ref().map(ValueRef::from)) {
                out.error(m);
                return buf;
            }
        }
        out.int(u.count() as i64);
        buf
    })
}

// ---------------------------------------------------------------------------------------
// PFMERGE
// ---------------------------------------------------------------------------------------

/// Writes a union into the destination `key` (created empty and sparse when missing):
/// promoted to dense when a source was dense, every non-zero register raised, the cache
/// invalidated, and the `pfadd` event raised.
fn store_union(
    d: &mut ShardData,
    db: usize,
    key: &[u8],
    u: &Union,
    now: u64,
) -> Result<(), &'static [u8]> {
    let max_bytes = sparse_max_bytes(d);
    let dbm: &mut Db = &mut d.dbs[db];
    if dbm.lookup(key, now).is_none() {
        dbm.set(key, Value::Raw(hll::new_sparse()), 0);
    }
    let buf = dbm
        .boxed_mut(key)
        .and_then(|e| e.value_mut())
        .and_then(Value::make_raw)
        .ok_or(WRONGTYPE)?;
    if u.dense {
        hll::to_dense(buf).map_err(|_| INVALIDOBJ)?;
    }
    let mut past = 0u8;
    for (j, &m) in u.max.iter().enumerate() {
        if m != 0 {
            let _ = hll::set_register(buf, j, m, max_bytes, &mut past);
        }
    }
    hll::invalidate(buf);
    d.modified(db, key, b'$', "pfadd");
    Ok(())
}

/// `PFMERGE destkey [sourcekey ...]`
fn pfmerge(ctx: &mut Ctx, args: Args) {
    let now = ctx.now_ms;
    let mut u = Union::new();
    for i in 1..args.len() {
        let found = lookup_read(ctx.shard, ctx.db, args.get(i), now);
        if let Err(m) = u.add(found.map(|e| e.value())) {
            return ctx.out.error(m);
        }
    }
    let db = ctx.db;
    match store_union(ctx.shard, db, args.get(1), &u, now) {
        Ok(()) => ctx.out.ok(),
        Err(m) => ctx.out.error(m),
    }
}

/// Cross-shard PFMERGE: reads every source (the destination included, as Redis does),
/// merges here, writes the destination on its shard, all under the key locks.
fn pfmerge_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let db = ctx.client.db;
        let keys: Vec<&[u8]> = (1..a.len()).map(|i| a.get(i)).collect();
        let groups = ctx.shards.group_keys(db, keys.iter().copied());
        ctx.lock(&groups).await;
        let vals = read_values(&ctx, db, &keys).await;
        let mut u = Union::new();
        let mut err = None;
        for v in &vals {
            if let Err(m) = u.add(v.as_ref().map(ValueRef::from)) {
                err = Some(m);
                break;
            }
        }
        if err.is_none() {
            let dst = a.get(1).to_vec();
            err = ctx
                .shards
                .run_on(ctx.shards.owner(&dst), move |d| {
                    store_union(d, db, &dst, &u, now_ms()).err()
                })
                .await;
        }
        ctx.unlock(&groups).await;
        let mut buf = Vec::new();
        let mut out = ctx.writer(&mut buf);
        match err {
            Some(m) => out.error(m),
            None => out.ok(),
        }
        buf
    })
}

// ---------------------------------------------------------------------------------------
// PFDEBUG / PFSELFTEST
// ---------------------------------------------------------------------------------------

/// `PFDEBUG GETREG|DECODE|ENCODING|TODENSE key`
fn pfdebug(ctx: &mut Ctx, args: Args) {
    let sub = args.get(1);
    let key = args.get(2);
    let now = ctx.now_ms;
    let (db, out) = split(ctx);
    let Some(e) = db.lookup(key, now) else {
        return out.error(b"ERR The specified key does not exist");
    };
    if let Err(m) = check_hll(e.value()) {
        return out.error(m);
    }
    let buf = db
        .boxed_mut(key)
        .and_then(|e| e.value_mut())
        .and_then(Value::make_raw)
        .expect("string");
    let arity_err = |out: &mut crate::protocol::reply::ReplyWriter| {
        let mut m = b"ERR Wrong number of arguments for the '".to_vec();
        m.extend_from_slice(sub);
        m.extend_from_slice(b"' subcommand");
        out.error(&m);
    };
    if sub.eq_ignore_ascii_case(b"getreg") {
        if args.len() != 3 {
            return arity_err(out);
        }
        if buf[4] == hll::SPARSE && hll::to_dense(buf).is_err() {
            return out.error(INVALIDOBJ);
        }
        out.array(hll::REGISTERS);
        for i in 0..hll::REGISTERS {
            out.int(hll::dense_get(&buf[hll::HDR..], i) as i64);
        }
    } else if sub.eq_ignore_ascii_case(b"decode") {
        if args.len() != 3 {
            return arity_err(out);
        }
        if buf[4] != hll::SPARSE {
            return out.error(b"ERR HLL encoding is not sparse");
        }
        out.bulk(hll::decode_text(buf).as_bytes());
    } else if sub.eq_ignore_ascii_case(b"encoding") {
        if args.len() != 3 {
            return arity_err(out);
        }
        out.simple(if buf[4] == hll::DENSE {
            b"dense"
        } else {
            b"sparse"
        });
    } else if sub.eq_ignore_ascii_case(b"todense") {
        if args.len() != 3 {
            return arity_err(out);
        }
        let mut conv = false;
        if buf[4] == hll::SPARSE {
            if hll::to_dense(buf).is_err() {
                return out.error(INVALIDOBJ);
            }
            conv = true;
        }
        out.int(i64::from(conv));
    } else {
        let mut m = b"ERR Unknown PFDEBUG subcommand '".to_vec();
        m.extend_from_slice(sub);
        m.push(b'\'');
        out.error(&m);
    }
}

/// Runs the register and estimator self-test; `Err` holds Redis-style failure text.
pub fn selftest(sparse_max: u64) -> Result<(), String> {
    // Register packing: random values written and read back, including the last one.
    let mut regs = vec![0u8; hll::DENSE_SIZE - hll::HDR];
    let mut shadow = vec![0u8; hll::REGISTERS];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..1000 {
        for (i, s) in shadow.iter_mut().enumerate() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let r = (seed & hll::REGISTER_MAX as u64) as u8;
            *s = r;
            hll::dense_set(&mut regs, i, r);
        }
        for (i, s) in shadow.iter().enumerate() {
            let got = hll::dense_get(&regs, i);
            if got != *s {
                return Err(format!(
                    "TESTFAILED Register error at index {i}: expected {s}, got {got}"
                ));
            }
        }
    }
    // Sparse and dense sketches fed the same elements agree, within the error bound.
    let mut dense = hll::new_sparse();
    hll::to_dense(&mut dense).map_err(|_| "TESTFAILED dense conversion".to_string())?;
    let mut sparse = hll::new_sparse();
    let relerr = 1.04 / (hll::REGISTERS as f64).sqrt();
    let mut checkpoint = 1u64;
    for j in 1..=100_000u64 {
        let ele = (j ^ 0x5555_5555).to_le_bytes();
        hll::add(&mut dense, &ele, sparse_max, &mut 0).map_err(|_| "TESTFAILED add".to_string())?;
        hll::add(&mut sparse, &ele, sparse_max, &mut 0)
            .map_err(|_| "TESTFAILED add".to_string())?;
        if j == checkpoint {
            let a = hll::count(&dense).map_err(|_| "TESTFAILED count".to_string())?;
            let b = hll::count(&sparse).map_err(|_| "TESTFAILED count".to_string())?;
            if a != b {
                return Err(format!(
                    "TESTFAILED dense/sparse disagree: {a} vs {b} after {j} elements"
                ));
            }
            let maxerr = if j == 10 { relerr * 6.0 } else { relerr * 5.0 }.max(1.0 / j as f64);
            let err = (a as f64 - j as f64).abs() / j as f64;
            if err > maxerr && j >= 10 {
                return Err(format!("TESTFAILED Too big error. card:{j} abserr:{err}"));
            }
            checkpoint *= 10;
        }
    }
    Ok(())
}

/// `PFSELFTEST`
fn pfselftest(ctx: &mut ConnCtx, _args: Args) {
    let max = sparse_max_bytes(ctx.shard);
    match selftest(max) {
        Ok(()) => ctx.out.ok(),
        Err(m) => ctx.out.error(m.as_bytes()),
    }
}
