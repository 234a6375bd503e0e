//! MEMORY: USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE, HELP (Redis 7.0 replies; the
//! figures come from jemalloc, see [`crate::shard::memory`] and docs/memory.md).

use super::{arity_error, eq_ic, parse_int, AsyncCtx, CommandSpec, Handler, ReplyFuture};
use crate::protocol::parse::OwnedArgs;
use crate::shard::memory::{self as mem, AllocStats};
use crate::storage::{Entry, Value};

/// The MEMORY command.
pub static COMMANDS: [CommandSpec; 1] = [CommandSpec::new(
    "memory",
    -2,
    0,
    (0, 0, 0),
    "@slow",
    Handler::Async(memory),
)];

const HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
];

/// The size class jemalloc really allocates for a request of `n` bytes (0 for 0).
fn alloc_size(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    // SAFETY: nallocx only computes a size class.
    let real = unsafe { tikv_jemalloc_sys::nallocx(n, 0) };
    if real == 0 {
        n
    } else {
        real
    }
}

/// Bytes one key costs: its share of the table (pointer and index slot), its block
/// (header, key, inline value), what a boxed value owns, and its TTL-list share.
pub fn key_usage(entry: &Entry, table_share: usize, ttl_share: usize) -> usize {
    // The entry's block (header, key, inline value) and what a boxed value owns.
    let block = alloc_size(entry.block_size());
    let value_heap = match entry.boxed_value() {
        Some(Value::Raw(v)) => alloc_size(v.capacity()),
        Some(Value::Str(b)) => alloc_size(b.len()),
        Some(v) => v.heap_size(),
        None => entry.as_hash().map_or(0, |h| h.heap_size()),
    };
    let ttl = if entry.expire_at() != 0 { ttl_share } else { 0 };
    table_share + block + value_heap + ttl
}

fn memory(actx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let sub = a.get(1);
        let mut buf = Vec::new();
        let mut w = actx.writer(&mut buf);
        let fixed = |name: &str, want: usize| -> Option<Vec<u8>> {
            (a.len() != want).then(|| arity_error(format!("memory|{name}").as_bytes()))
        };
        if eq_ic(sub, "help") {
            if let Some(e) = fixed("help", 2) {
                w.error(&e);
                return buf;
            }
            w.array(HELP.len());
            for l in HELP {
                w.simple(l.as_bytes());
            }
        } else if eq_ic(sub, "usage") {
            if a.len() < 3 {
                w.error(&arity_error(b"memory|usage"));
                return buf;
            }
            // SAMPLES is validated as Redis does; the size is always computed over the
            // whole value (Libellule's collections know their sizes), see docs/memory.md.
            let mut i = 3;
            while i < a.len() {
                if eq_ic(a.get(i), "samples") && i + 1 < a.len() {
                    match parse_int(a.get(i + 1)) {
                        None => {
                            w.error(super::NOT_INT);
                            return buf;
                        }
                        Some(n) if n < 0 => {
                            w.error(super::SYNTAX_ERR);
                            return buf;
                        }
                        Some(_) => i += 2,
                    }
                } else {
                    w.error(super::SYNTAX_ERR);
                    return buf;
                }
            }
            let key = a.get(2).to_vec();
            let db = actx.client.db;
            let owner = actx.shards.owner(&key);
            let size = actx
                .shards
                .run_on(owner, move |d| {
                    let now = crate::shard::now_ms();
                    let dbr = &mut d.dbs[db];
                    if !dbr.exists(&key, now) {
                        return None;
                    }
                    let n = dbr.len().max(1);
                    let table_share = dbr.table_bytes() / n;
                    let ttl_share = dbr.expires_table_bytes() / dbr.expires_len().max(1);
                    let e = dbr.get(&key, now)?;
                    Some(key_usage(e, table_share, ttl_share))
                })
                .await;
            match size {
                Some(n) => w.int(n as i64),
                None => w.null(),
            }
        } else if eq_ic(sub, "stats") {
            if let Some(e) = fixed("stats", 2) {
                w.error(&e);
                return buf;
            }
            let report = gather(&actx).await;
            write_stats(&mut w, &report);
        } else if eq_ic(sub, "doctor") {
            if let Some(e) = fixed("doctor", 2) {
                w.error(&e);
                return buf;
            }
            let report = gather(&actx).await;
            w.verbatim(doctor(&report).as_bytes());
        } else if eq_ic(sub, "malloc-stats") {
            if let Some(e) = fixed("malloc-stats", 2) {
                w.error(&e);
                return buf;
            }
            w.verbatim(mem::malloc_stats().as_bytes());
        } else if eq_ic(sub, "purge") {
            if let Some(e) = fixed("purge", 2) {
                w.error(&e);
                return buf;
            }
            if mem::purge() {
                w.ok();
            } else {
                w.error(b"ERR Error purging dirty pages");
            }
        } else {
            let mut m = b"ERR unknown subcommand '".to_vec();
            m.extend(sub.iter().take(128).map(
                |&c| {
                    if c == b'\r' || c == b'\n' {
                        b' '
                    } else {
                        c
                    }
                },
            ));
            m.extend_from_slice(b"'. Try MEMORY HELP.");
            w.error(&m);
        }
        buf
    })
}

/// Per-database figures summed over shards.
#[derive(Clone, Copy, Default)]
struct DbOverhead {
    main: u64,
    expires: u64,
    keys: u64,
}

/// What MEMORY STATS and MEMORY DOCTOR report.
struct Report {
    alloc: AllocStats,
    peak: u64,
    startup: u64,
    rss: u64,
    dbs: Vec<DbOverhead>,
    ghost: u64,
    maxmemory: u64,
    evicted: u64,
}

async fn gather(actx: &AsyncCtx) -> Report {
    let per_shard = actx
        .shards
        .run_on_all(|d| {
            let dbs: Vec<DbOverhead> = d
                .dbs
                .iter()
                .map(|db| DbOverhead {
                    main: db.table_bytes() as u64,
                    expires: db.expires_table_bytes() as u64,
                    keys: db.len() as u64,
                })
                .collect();
            (
                dbs,
                d.ghost_bytes() as u64,
                d.stats.evicted_keys,
                d.config.maxmemory,
            )
        })
        .await;
    let alloc = mem::refresh();
    let mut dbs: Vec<DbOverhead> = Vec::new();
    let mut ghost = 0;
    let mut evicted = 0;
    let mut maxmemory = 0;
    for (shard_dbs, g, e, m) in per_shard {
        if dbs.len() < shard_dbs.len() {
            dbs.resize(shard_dbs.len(), DbOverhead::default());
        }
        for (i, o) in shard_dbs.into_iter().enumerate() {
            dbs[i].main += o.main;
            dbs[i].expires += o.expires;
            dbs[i].keys += o.keys;
        }
        ghost += g;
        evicted += e;
        maxmemory = m;
    }
    Report {
        alloc,
        peak: mem::peak().max(alloc.allocated),
        startup: mem::startup(),
        rss: mem::rss(),
        dbs,
        ghost,
        maxmemory,
        evicted,
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn write_stats(w: &mut crate::protocol::reply::ReplyWriter, r: &Report) {
    let used = r.alloc.allocated;
    let keys: u64 = r.dbs.iter().map(|d| d.keys).sum();
    let nonempty: Vec<(usize, &DbOverhead)> = r
        .dbs
        .iter()
        .enumerate()
        .filter(|(_, d)| d.keys > 0)
        .collect();
    let tables: u64 = r.dbs.iter().map(|d| d.main + d.expires).sum();
    let overhead = r.startup + tables + r.ghost;
    let dataset = used.saturating_sub(overhead);
    let net = used.saturating_sub(r.startup);
    w.map(26 + nonempty.len());
    let int = |w: &mut crate::protocol::reply::ReplyWriter, k: &str, v: u64| {
        w.bulk(k.as_bytes());
        w.int(v as i64);
    };
    let dbl = |w: &mut crate::protocol::reply::ReplyWriter, k: &str, v: f64| {
        w.bulk(k.as_bytes());
        w.double(v);
    };
    int(w, "peak.allocated", r.peak);
    int(w, "total.allocated", used);
    int(w, "startup.allocated", r.startup);
    int(w, "replication.backlog", 0);
    int(w, "clients.slaves", 0);
    int(w, "cluster.links", 0);
    int(w, "aof.buffer", 0);
    for (i, d) in &nonempty {
        w.bulk(format!("db.{i}").as_bytes());
        w.map(3);
        int(w, "overhead.hashtable.main", d.main);
        int(w, "overhead.hashtable.expires", d.expires);
        int(w, "overhead.hashtable.slot-to-keys", 0);
    }
    int(w, "eviction.ghost", r.ghost);
    int(w, "overhead.total", overhead);
    int(w, "keys.count", keys);
    int(w, "keys.bytes-per-key", net.checked_div(keys).unwrap_or(0));
    int(w, "dataset.bytes", dataset);
    dbl(w, "dataset.percentage", ratio(dataset, net) * 100.0);
    dbl(w, "peak.percentage", ratio(used, r.peak) * 100.0);
    int(w, "allocator.allocated", used);
    int(w, "allocator.active", r.alloc.active);
    int(w, "allocator.resident", r.alloc.resident);
    dbl(
        w,
        "allocator-fragmentation.ratio",
        ratio(r.alloc.active, used),
    );
    int(
        w,
        "allocator-fragmentation.bytes",
        r.alloc.active.saturating_sub(used),
    );
    dbl(
        w,
        "allocator-rss.ratio",
        ratio(r.alloc.resident, r.alloc.active),
    );
    int(
        w,
        "allocator-rss.bytes",
        r.alloc.resident.saturating_sub(r.alloc.active),
    );
    dbl(w, "rss-overhead.ratio", ratio(r.rss, r.alloc.resident));
    int(
        w,
        "rss-overhead.bytes",
        r.rss.saturating_sub(r.alloc.resident),
    );
    dbl(w, "fragmentation", ratio(r.rss, used));
    int(w, "fragmentation.bytes", r.rss.saturating_sub(used));
    int(w, "evicted.keys", r.evicted);
}

/// MEMORY DOCTOR: plain findings from the same figures as MEMORY STATS.
fn doctor(r: &Report) -> String {
    let used = r.alloc.allocated;
    if used < 5 * 1024 * 1024 {
        return format!(
            "This instance uses only {} bytes: too little for memory diagnostics to mean \
             anything. Run MEMORY DOCTOR again once it holds data.\n",
            used
        );
    }
    let mut issues: Vec<String> = Vec::new();
    if r.peak > used + used / 2 {
        issues.push(format!(
            " * Peak memory: the peak ({} bytes) is more than 150% of the memory used now \
             ({} bytes). The allocator keeps some of the pages freed since; MEMORY PURGE \
             returns dirty pages to the system.",
            r.peak, used
        ));
    }
    let frag = ratio(r.rss, used);
    if frag > 1.4 && r.rss.saturating_sub(used) > 10 * 1024 * 1024 {
        issues.push(format!(
            " * High fragmentation: the resident set ({} bytes) is {:.2} times the memory \
             allocated ({} bytes). Part of it is Libellule's fixed overhead (I/O rings, \
             buffers); MEMORY PURGE may give back dirty pages.",
            r.rss, frag, used
        ));
    }
    let afrag = ratio(r.alloc.active, used);
    if afrag > 1.1 && r.alloc.active.saturating_sub(used) > 10 * 1024 * 1024 {
        issues.push(format!(
            " * Allocator fragmentation: active pages ({} bytes) are {:.2} times the \
             allocated bytes; many keys deleted or evicted among live ones leave partly \
             used pages behind.",
            r.alloc.active, afrag
        ));
    }
    if r.maxmemory != 0 && used > r.maxmemory + r.maxmemory / 10 {
        issues.push(format!(
            " * Over the limit: {} bytes used, more than 10% above maxmemory ({} bytes).",
            used, r.maxmemory
        ));
    }
    if issues.is_empty() {
        return format!(
            "No memory problem found: {} bytes allocated, {} resident, peak {}, \
             fragmentation {:.2}.\n",
            used, r.rss, r.peak, frag
        );
    }
    let mut s = String::from("Findings:\n\n");
    for i in issues {
        s.push_str(&i);
        s.push_str("\n\n");
    }
    s
}
