//! DUMP and RESTORE: a value serialized in Redis 7.0's RDB format (version 10) with its
//! version and CRC64 footer, and back (see [`crate::storage::rdb`]).
//!
//! Payloads are byte-compatible with Redis 7.0 in both directions: what redis-server
//! DUMPs restores here, and what DUMP gives here restores in redis-server. RESTORE leaves
//! the encoding Redis's loader would leave under this server's `*-max-listpack-*` and
//! `set-max-intset-entries` settings. Errors and their order follow Redis's
//! `restoreCommand`.

use crate::commands::keys::lookup_read;
use crate::commands::{eq_ic, flags, parse_int, CommandSpec, Ctx, Handler, SYNTAX_ERR};
use crate::protocol::parse::Args;
use crate::shard::ShardData;
use crate::storage::rdb::{self, LoadLimits};
use crate::storage::{Detached, Value};

/// DUMP and RESTORE, as Redis 7.0's COMMAND INFO describes them.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "dump",
        2,
        flags::READONLY,
        (1, 1, 1),
        "@keyspace @read @slow",
        Handler::Keyed {
            run: dump,
            cross: None,
        },
    ),
    CommandSpec::new(
        "restore",
        -4,
        flags::WRITE | flags::DENYOOM,
        (1, 1, 1),
        "@keyspace @write @slow @dangerous",
        Handler::Keyed {
            run: restore,
            cross: None,
        },
    ),
];

/// `ERR DUMP payload version or checksum are wrong`
const BAD_PAYLOAD: &[u8] = b"ERR DUMP payload version or checksum are wrong";
/// `ERR Bad data format`
const BAD_FORMAT: &[u8] = b"ERR Bad data format";
/// `BUSYKEY Target key name already exists.`
const BUSYKEY: &[u8] = b"BUSYKEY Target key name already exists.";

/// The conversion thresholds RESTORE (and snapshot loading) apply on this shard.
pub fn load_limits(shard: &ShardData) -> LoadLimits {
    LoadLimits {
        hash: crate::commands::hashes::limits(shard),
        zset: crate::commands::zsets::limits(shard),
        max_intset: crate::commands::sets::max_intset(shard),
        list_fill: crate::commands::lists::fill(shard),
    }
}

/// True when `rdbcompression` is on (the default).
pub fn compression(shard: &ShardData) -> bool {
    let v = match shard.config.extra.get("rdbcompression") {
        Some(v) => Some(v.clone()),
        None => shard.config.get_one("rdbcompression"),
    };
    !v.is_some_and(|v| v.eq_ignore_ascii_case("no"))
}

/// True when `maxmemory-policy` is an LFU policy.
fn lfu_policy(shard: &ShardData) -> bool {
    shard
        .config
        .maxmemory_policy
        .to_ascii_lowercase()
        .contains("lfu")
}

/// `DUMP key`
fn dump(ctx: &mut Ctx, args: Args) {
    let compress = compression(ctx.shard);
    let now = ctx.now_ms;
    let Some(e) = lookup_read(ctx.shard, ctx.db, args.get(1), now) else {
        return ctx.out.null();
    };
    let payload = rdb::dump_payload(e.value(), compress);
    ctx.out.bulk(&payload);
}

/// `RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]`
fn restore(ctx: &mut Ctx, args: Args) {
    let (mut replace, mut absttl) = (false, false);
    let mut idle: i64 = -1;
    let mut freq: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        let a = args.get(j);
        let more = args.len() - j - 1;
        if eq_ic(a, "replace") {
            replace = true;
        } else if eq_ic(a, "absttl") {
            absttl = true;
        } else if eq_ic(a, "idletime") && more >= 1 && freq == -1 {
            let Some(v) = parse_int(args.get(j + 1)) else {
                return ctx.out.error(crate::commands::NOT_INT);
            };
            if v < 0 {
                return ctx.out.error(b"ERR Invalid IDLETIME value, must be >= 0");
            }
            idle = v;
            j += 1;
        } else if eq_ic(a, "freq") && more >= 1 && idle == -1 {
            let Some(v) = parse_int(args.get(j + 1)) else {
                return ctx.out.error(crate::commands::NOT_INT);
            };
            if !(0..=255).contains(&v) {
                return ctx
                    .out
                    .error(b"ERR Invalid FREQ value, must be >= 0 and <= 255");
            }
            freq = v;
            j += 1;
        } else {
            return ctx.out.error(SYNTAX_ERR);
        }
        j += 1;
    }
    let key = args.get(1);
    let now = ctx.now_ms;
    if !replace && ctx.db().lookup(key, now).is_some() {
        return ctx.out.error(BUSYKEY);
    }
    let Some(ttl) = parse_int(args.get(2)) else {
        return ctx.out.error(crate::commands::NOT_INT);
    };
    if ttl < 0 {
        return ctx.out.error(b"ERR Invalid TTL value, must be >= 0");
    }
    let Some(body) = rdb::verify_payload(args.get(3), false) else {
        return ctx.out.error(BAD_PAYLOAD);
    };
    let lim = load_limits(ctx.shard);
    let value: Value = match rdb::load_payload(body, &lim) {
        Ok(v) => v,
        Err(_) => return ctx.out.error(BAD_FORMAT),
    };
    let deleted = replace && ctx.db().remove(key, now).is_some();
    let expire_at = if ttl == 0 {
        0
    } else if absttl {
        ttl as u64
    } else {
        (ttl as u64).saturating_add(now)
    };
    if expire_at != 0 && expire_at <= now {
        if deleted {
            ctx.modified(key, b'g', "del");
        }
        return ctx.out.ok();
    }
    let lfu = lfu_policy(ctx.shard);
    let clock = ctx.shard.lru_clock();
    let mut access = clock;
    let mut f = crate::storage::db::LFU_INIT_VAL;
    if lfu {
        if freq >= 0 {
            f = freq as u8;
        }
    } else if idle >= 0 {
        access = clock.saturating_sub(idle.min(u32::MAX as i64) as u32);
    }
    ctx.db().insert_entry(
        key,
        Detached {
            value,
            expire_at,
            access,
            freq: f,
        },
    );
    ctx.shard.signal_key_ready(ctx.db, key);
    ctx.out.ok();
    ctx.modified(key, b'g', "restore");
}
