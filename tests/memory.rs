//! Memory against the real binary: INFO memory/stats fields, store mode's -OOM replies
//! (plain writes, MULTI, EXEC, scripts) with reads and deletes still served, cache mode
//! under a write flood (used memory within 10% of the limit, keys evicted, server alive),
//! CONFIG SET maxmemory shrinking, MEMORY USAGE/STATS/DOCTOR/PURGE/HELP, the
//! maxmemory-policy values, and keys of a running transaction never evicted.

mod common;

use common::*;
use std::time::{Duration, Instant};

const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Sends `n` pipelined `SET prefix:i <value>` and reads the replies; returns the
/// error replies seen.
fn flood(c: &mut RawConn, prefix: &str, from: usize, n: usize, value: &[u8]) -> Vec<String> {
    let mut errors = Vec::new();
    let batch = 200;
    let mut i = from;
    while i < from + n {
        let end = (i + batch).min(from + n);
        let mut out = Vec::new();
        for k in i..end {
            let key = format!("{prefix}:{k}");
            out.extend_from_slice(
                format!(
                    "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n",
                    key.len(),
                    value.len()
                )
                .as_bytes(),
            );
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        c.send_raw(&out);
        for _ in i..end {
            if let Some(e) = c.read_reply().error_text() {
                errors.push(e.to_string());
            }
        }
        i = end;
    }
    errors
}

#[test]
fn info_reports_jemalloc_figures_and_stats() {
    let s = Server::start(&["--io_threads", "2"]);
    let mut c = s.conn();
    let used0 = info_u64(&mut c, "memory", "used_memory");
    let rss = info_u64(&mut c, "memory", "used_memory_rss");
    assert!(used0 > 0 && rss > 0);
    assert!(info_u64(&mut c, "memory", "used_memory_peak") >= used0);
    assert_eq!(info_field(&mut c, "memory", "maxmemory"), "0");
    assert_eq!(
        info_field(&mut c, "memory", "maxmemory_policy"),
        "noeviction"
    );
    let frag: f64 = info_field(&mut c, "memory", "mem_fragmentation_ratio")
        .parse()
        .unwrap();
    assert!(frag > 0.0);
    // 16 MB of values: used_memory (jemalloc's allocated bytes) grows by at least that.
    let value = vec![b'v'; 16 * 1024];
    assert!(flood(&mut c, "big", 0, 1024, &value).is_empty());
    let used1 = info_u64(&mut c, "memory", "used_memory");
    assert!(
        used1 >= used0 + 16 * 1024 * 1024,
        "used_memory {used0} -> {used1}"
    );
    assert!(
        used1 < used0 + 24 * 1024 * 1024,
        "used_memory {used0} -> {used1}"
    );
    assert_eq!(c.cmd_str("FLUSHALL"), Reply::ok());
    let used2 = info_u64(&mut c, "memory", "used_memory");
    assert!(used2 < used0 + 4 * 1024 * 1024, "after FLUSHALL: {used2}");
    assert!(info_u64(&mut c, "memory", "used_memory_peak") >= used1);
    // Hits, misses, expiries.
    let hits = info_u64(&mut c, "stats", "keyspace_hits");
    let misses = info_u64(&mut c, "stats", "keyspace_misses");
    c.cmd_str("SET k v");
    c.cmd_str("GET k");
    c.cmd_str("GET nokey");
    assert_eq!(info_u64(&mut c, "stats", "keyspace_hits"), hits + 1);
    assert_eq!(info_u64(&mut c, "stats", "keyspace_misses"), misses + 1);
    c.cmd_str("SET t v PX 1");
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(c.cmd_str("GET t"), Reply::nil());
    assert!(info_u64(&mut c, "stats", "expired_keys") >= 1);
    assert_eq!(info_u64(&mut c, "stats", "evicted_keys"), 0);
}

#[test]
fn store_mode_refuses_growing_commands_over_maxmemory() {
    let s = Server::start(&["--io_threads", "2", "--maxmemory", "40mb"]);
    let mut c = s.conn();
    // Fill with 1 MB values until refused.
    let value = vec![b'x'; 1 << 20];
    let mut refused = None;
    for i in 0..200 {
        let r = c.cmd(&[b"SET", format!("big:{i}").as_bytes(), &value]);
        if let Some(e) = r.error_text() {
            refused = Some((i, e.to_string()));
            break;
        }
    }
    let (stored, err) = refused.expect("writes are refused before 200 MB");
    assert_eq!(err, OOM);
    assert!(stored > 5, "only {stored} values stored");
    let used = info_u64(&mut c, "memory", "used_memory");
    assert!(used <= (40 << 20) + (2 << 20), "used_memory {used}");
    // Well over the limit from here on (lowering maxmemory below the usage is allowed;
    // store mode then refuses growing commands until memory is freed).
    assert_eq!(c.cmd_str("CONFIG SET maxmemory 24mb"), Reply::ok());
    // Reads, deletes and non-growing commands still work; growing ones do not.
    assert_eq!(c.cmd_str("GET big:0").as_bytes().len(), 1 << 20);
    assert_eq!(c.cmd_str("STRLEN big:1"), Reply::Int(1 << 20));
    assert_eq!(c.cmd_str("RPUSH list a").error_text(), Some(OOM));
    assert_eq!(c.cmd_str("INCR counter").error_text(), Some(OOM));
    assert_eq!(c.cmd_str("PING"), Reply::simple("PONG"));
    // MULTI: every queued command is refused, and EXEC is discarded.
    assert_eq!(c.cmd_str("MULTI"), Reply::ok());
    assert_eq!(c.cmd_str("GET big:0").error_text(), Some(OOM));
    let exec = c.cmd_str("EXEC");
    assert_eq!(
        exec.error_text(),
        Some("EXECABORT Transaction discarded because of previous errors.")
    );
    // A script that writes is refused at its first growing call.
    let r = c.cmd_str("EVAL \"return redis.call('set',KEYS[1],'x')\" 1 k");
    assert!(r.error_text().is_some_and(|e| e.contains(OOM)), "{r:?}");
    // A read-only script runs.
    assert_eq!(
        c.cmd_str("EVAL \"return redis.call('strlen',KEYS[1])\" 1 big:2"),
        Reply::Int(1 << 20)
    );
    // Deleting frees memory: writes are accepted again.
    let keys: Vec<String> = (0..stored).map(|i| format!("big:{i}")).collect();
    for k in &keys {
        assert_eq!(c.cmd_str(&format!("DEL {k}")), Reply::Int(1));
    }
    assert_eq!(c.cmd_str("SET small v"), Reply::ok());
    assert_eq!(c.cmd_str("RPUSH list a"), Reply::Int(1));
    assert_eq!(info_u64(&mut c, "stats", "evicted_keys"), 0);
}

#[test]
fn cache_mode_holds_the_limit_under_a_write_flood() {
    let limit: u64 = 32 << 20;
    let s = Server::start(&[
        "--io_threads",
        "2",
        "--maxmemory",
        "32mb",
        "--cache_mode",
        "true",
    ]);
    let mut c = s.conn();
    let mut peak = 0;
    let value = vec![b'v'; 1000];
    // About 120 MB of writes, four times the limit, pipelined.
    for round in 0..6 {
        let errors = flood(&mut c, "k", round * 20_000, 20_000, &value);
        assert!(
            errors.is_empty(),
            "cache mode refused writes: {:?}",
            &errors[..1]
        );
        peak = peak.max(info_u64(&mut c, "memory", "used_memory"));
    }
    // Big values in the middle of the flood (2 MB: an eighth of a shard's budget). The
    // shards' shares are apportioned by key counts, so the shard storing them is
    // charged less than it holds; it also evicts while the process would pass the
    // limit (docs/memory.md).
    let big = vec![b'b'; 2 << 20];
    for i in 0..8 {
        let r = c.cmd(&[b"SET", format!("big:{i}").as_bytes(), &big]);
        assert_eq!(r, Reply::ok());
        peak = peak.max(info_u64(&mut c, "memory", "used_memory"));
    }
    // And values of a quarter of a shard's budget.
    let bigger = vec![b'B'; 4 << 20];
    for i in 0..4 {
        let r = c.cmd(&[b"SET", format!("bigger:{i}").as_bytes(), &bigger]);
        assert_eq!(r, Reply::ok());
        peak = peak.max(info_u64(&mut c, "memory", "used_memory"));
    }
    eprintln!(
        "used_memory peaked at {peak} ({:.1}% of the limit)",
        peak as f64 * 100.0 / limit as f64
    );
    // The memory issue's goal: within 10% above the limit. (Before writes also looked at
    // the process figure, runs peaked at up to 20% over, the shard holding the big
    // values being charged by its key count; they now peak at the limit.)
    assert!(
        peak <= limit + limit / 10,
        "used_memory peaked at {peak}, limit {limit}"
    );
    let evicted = info_u64(&mut c, "stats", "evicted_keys");
    assert!(evicted > 50_000, "evicted_keys {evicted}");
    assert_eq!(c.cmd_str("PING"), Reply::simple("PONG"));
    // The last value written is there.
    assert_eq!(c.cmd_str("STRLEN bigger:3"), Reply::Int(4 << 20));
}

#[test]
fn config_set_maxmemory_shrinks_at_once() {
    let s = Server::start(&[
        "--io_threads",
        "2",
        "--maxmemory",
        "96mb",
        "--cache_mode",
        "true",
    ]);
    let mut c = s.conn();
    let value = vec![b'v'; 1000];
    assert!(flood(&mut c, "k", 0, 40_000, &value).is_empty());
    let before = info_u64(&mut c, "memory", "used_memory");
    assert!(before > 40 << 20, "used_memory {before}");
    assert_eq!(info_u64(&mut c, "stats", "evicted_keys"), 0);
    assert_eq!(c.cmd_str("CONFIG SET maxmemory 24mb"), Reply::ok());
    assert_eq!(
        c.cmd_str("CONFIG GET maxmemory"),
        Reply::array(vec![Reply::bulk("maxmemory"), Reply::bulk("25165824")])
    );
    let limit: u64 = 24 << 20;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let used = info_u64(&mut c, "memory", "used_memory");
        if used <= limit + limit / 10 {
            break;
        }
        assert!(Instant::now() < deadline, "still {used} bytes after 3 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(info_u64(&mut c, "stats", "evicted_keys") > 10_000);
    let dbsize = c.cmd_str("DBSIZE").as_int();
    assert!(dbsize < 30_000 && dbsize > 1000, "dbsize {dbsize}");
}

#[test]
fn memory_command() {
    let s = Server::start(&["--io_threads", "2"]);
    let mut c = s.conn();
    assert_eq!(c.cmd_str("SET small v"), Reply::ok());
    let value = vec![b'x'; 10_000];
    assert_eq!(c.cmd(&[b"SET", b"large", &value]), Reply::ok());
    let small = c.cmd_str("MEMORY USAGE small").as_int();
    let large = c.cmd_str("MEMORY USAGE large").as_int();
    assert!(small > 0 && small < 1000, "small {small}");
    assert!((10_000..20_000).contains(&large), "large {large}");
    assert_eq!(c.cmd_str("MEMORY USAGE large SAMPLES 0").as_int(), large);
    assert_eq!(c.cmd_str("MEMORY USAGE nokey"), Reply::nil());
    for i in 0..100 {
        c.cmd_str(&format!("RPUSH list {i:0100}"));
    }
    let list = c.cmd_str("MEMORY USAGE list").as_int();
    assert!(list > 10_000, "list {list}");
    assert_eq!(
        c.cmd_str("MEMORY USAGE small SAMPLES -1").error_text(),
        Some("ERR syntax error")
    );
    assert_eq!(
        c.cmd_str("MEMORY USAGE small SAMPLES x").error_text(),
        Some("ERR value is not an integer or out of range")
    );
    assert_eq!(
        c.cmd_str("MEMORY USAGE small bogus").error_text(),
        Some("ERR syntax error")
    );
    assert_eq!(
        c.cmd_str("MEMORY USAGE").error_text(),
        Some("ERR wrong number of arguments for 'memory|usage' command")
    );
    assert_eq!(
        c.cmd_str("MEMORY nope").error_text(),
        Some("ERR unknown subcommand 'nope'. Try MEMORY HELP.")
    );
    // STATS: Redis's field names, integers and doubles where Redis has them.
    let stats = c.cmd_str("MEMORY STATS");
    let items = stats.as_array();
    let field = |name: &str| -> &Reply {
        let i = items
            .iter()
            .position(|r| matches!(r, Reply::Bulk(Some(b)) if b == name.as_bytes()))
            .unwrap_or_else(|| panic!("MEMORY STATS has no {name}"));
        &items[i + 1]
    };
    assert_eq!(
        std::str::from_utf8(items[0].as_bytes()).unwrap(),
        "peak.allocated"
    );
    assert_eq!(field("keys.count"), &Reply::Int(3));
    let total = field("total.allocated").as_int();
    assert!(total >= field("startup.allocated").as_int());
    assert!(field("peak.allocated").as_int() >= total);
    assert!(field("dataset.bytes").as_int() > 10_000);
    let frag: f64 = std::str::from_utf8(field("fragmentation").as_bytes())
        .unwrap()
        .parse()
        .unwrap();
    assert!(frag > 0.0);
    let db0 = field("db.0").as_array();
    assert_eq!(db0[0], Reply::bulk("overhead.hashtable.main"));
    assert!(!c.cmd_str("MEMORY DOCTOR").as_bytes().is_empty());
    assert!(c.cmd_str("MEMORY MALLOC-STATS").as_bytes().len() > 100);
    assert_eq!(c.cmd_str("MEMORY PURGE"), Reply::ok());
    assert_eq!(c.cmd_str("MEMORY HELP").as_array().len(), 14);
}

#[test]
fn maxmemory_policy_values() {
    let s = Server::start(&["--io_threads", "2"]);
    let mut c = s.conn();
    let get = |c: &mut RawConn, p: &str| -> String {
        let r = c.cmd_str(&format!("CONFIG GET {p}"));
        String::from_utf8_lossy(r.as_array()[1].as_bytes()).into_owned()
    };
    assert_eq!(get(&mut c, "maxmemory-policy"), "noeviction");
    assert_eq!(get(&mut c, "cache_mode"), "no");
    for p in [
        "allkeys-lfu",
        "volatile-ttl",
        "allkeys-random",
        "volatile-lru",
    ] {
        assert_eq!(
            c.cmd_str(&format!("CONFIG SET maxmemory-policy {p}")),
            Reply::ok()
        );
        assert_eq!(get(&mut c, "maxmemory-policy"), p);
        assert_eq!(get(&mut c, "cache_mode"), "yes");
    }
    assert_eq!(
        c.cmd_str("CONFIG SET maxmemory-policy noeviction"),
        Reply::ok()
    );
    assert_eq!(get(&mut c, "cache_mode"), "no");
    assert!(c.cmd_str("CONFIG SET maxmemory-policy lru").is_error());
    assert_eq!(c.cmd_str("CONFIG SET cache_mode yes"), Reply::ok());
    assert_eq!(get(&mut c, "maxmemory-policy"), "allkeys-lru");
    assert_eq!(c.cmd_str("CONFIG SET cache_mode no"), Reply::ok());
    assert_eq!(get(&mut c, "maxmemory-policy"), "noeviction");
    let s2 = Server::start(&["--io_threads", "2", "--cache_mode", "true"]);
    assert_eq!(get(&mut s2.conn(), "maxmemory-policy"), "allkeys-lru");

    // volatile-*: only keys with a TTL go; with none left, writes are refused.
    let s3 = Server::start(&[
        "--io_threads",
        "2",
        "--maxmemory",
        "40mb",
        "--maxmemory-policy",
        "volatile-lru",
    ]);
    let mut c = s3.conn();
    let value = vec![b'v'; 1000];
    for i in 0..5000 {
        let r = c.cmd(&[
            b"SET",
            format!("ttl:{i}").as_bytes(),
            &value,
            b"EX",
            b"1000",
        ]);
        assert_eq!(r, Reply::ok());
    }
    let mut refused = false;
    for i in 0..100_000 {
        let r = c.cmd(&[b"SET", format!("p:{i}").as_bytes(), &value]);
        if r.error_text() == Some(OOM) {
            refused = true;
            break;
        }
    }
    assert!(
        refused,
        "volatile-lru without volatile keys left refuses writes"
    );
    assert!(info_u64(&mut c, "stats", "evicted_keys") >= 4000);
    assert_eq!(c.cmd_str("EXISTS p:0"), Reply::Int(1));
}

#[test]
fn keys_of_a_running_transaction_are_not_evicted() {
    for threads in ["1", "2"] {
        let s = Server::start(&[
            "--io_threads",
            threads,
            "--maxmemory",
            "32mb",
            "--cache_mode",
            "true",
        ]);
        let mut c = s.conn();
        let value = vec![b'v'; 1000];
        assert!(flood(&mut c, "fill", 0, 30_000, &value).is_empty());
        let big = vec![b'b'; 1 << 20];
        assert_eq!(c.cmd_str("MULTI"), Reply::ok());
        assert_eq!(c.cmd_str("SET keep:a first"), Reply::simple("QUEUED"));
        // 24 MB more inside the transaction: the shard must evict, but not keep:a.
        for i in 0..24 {
            let r = c.cmd(&[b"SET", format!("tx:{i}").as_bytes(), &big]);
            assert_eq!(r, Reply::simple("QUEUED"));
        }
        assert_eq!(c.cmd_str("GET keep:a"), Reply::simple("QUEUED"));
        let r = c.cmd_str("EXEC");
        let replies = r.as_array();
        assert_eq!(replies.len(), 26);
        assert_eq!(replies[25], Reply::bulk("first"), "threads {threads}");
        assert!(info_u64(&mut c, "stats", "evicted_keys") > 0);
    }
}
