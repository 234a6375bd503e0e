//! Active expiry at scale against the real binary: a few hundred thousand keys that all
//! expire at the same instant are reclaimed by the active cycle alone (no client touches
//! them) within a few `--hz` periods, counted in `expired_keys`, published as `expired`
//! keyspace events, and the memory they held is given back.

mod common;

use common::*;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// Sends `SET key:i v PXAT at` for i in 0..n, pipelined, and checks the replies.
fn load(c: &mut RawConn, n: usize, at: u64) {
    let at = at.to_string();
    let batch = 1000;
    let mut i = 0;
    while i < n {
        let end = (i + batch).min(n);
        let mut out = Vec::new();
        for k in i..end {
            let key = format!("key:{k:012}");
            out.extend_from_slice(
                format!(
                    "*5\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$16\r\nvvvvvvvvvvvvvvvv\r\n$4\r\nPXAT\r\n${}\r\n{at}\r\n",
                    key.len(),
                    at.len()
                )
                .as_bytes(),
            );
        }
        c.send_raw(&out);
        for _ in i..end {
            assert_eq!(c.read_reply(), Reply::ok());
        }
        i = end;
    }
}

/// Loads `n` keys expiring at one instant into a server with `shards` shards at hz 10,
/// and returns how long after that instant the last key was reclaimed by the active
/// cycle.
/// With `events`, `expired` keyspace events are on and each key must be announced once.
fn mass_expiry(shards: &str, n: usize, events: bool) -> Duration {
    let s = Server::start(&["--io_threads", shards, "--hz", "10"]);
    let mut c = s.conn();
    let mut sub = s.conn();
    if events {
        // The sweep deletes through the same path as the sampling: every key is
        // announced once.
        assert_eq!(
            c.cmd_str("CONFIG SET notify-keyspace-events Ex"),
            Reply::ok()
        );
        sub.send(&[b"SUBSCRIBE", b"__keyevent@0__:expired"]);
        sub.read_reply();
    }
    // Read the events as they come (400k of them would pass the pubsub output limit
    // if left unread).
    let events = std::thread::spawn(move || {
        if !events {
            return n;
        }
        sub.set_read_timeout(Duration::from_secs(30));
        let mut seen = std::collections::HashSet::new();
        for _ in 0..n {
            let r = sub.read_reply();
            let Reply::Array(Some(items)) = r else {
                panic!("not a message: {r:?}")
            };
            seen.insert(items[2].as_bytes().to_vec());
        }
        seen.len()
    });
    let used0 = info_u64(&mut c, "memory", "used_memory");
    // The keys must all be loaded before their instant: on a slow machine, start again
    // with twice the lead.
    let mut lead = 2000;
    let at = loop {
        let at = now_ms() + lead;
        load(&mut c, n, at);
        if now_ms() + 100 < at {
            break at;
        }
        assert!(lead < 60_000, "could not load {n} keys in a minute");
        lead *= 2;
        assert_eq!(c.cmd_str("FLUSHALL"), Reply::ok());
        assert_eq!(c.cmd_str("CONFIG RESETSTAT"), Reply::ok());
    };
    assert_eq!(c.cmd_str("DBSIZE"), Reply::Int(n as i64));
    let used1 = info_u64(&mut c, "memory", "used_memory");
    // Wait for the instant, then poll DBSIZE (which counts expired keys not reclaimed
    // yet, like Redis's) until it reaches 0.
    std::thread::sleep(Duration::from_millis(at.saturating_sub(now_ms())));
    let t0 = Instant::now();
    loop {
        if c.cmd_str("DBSIZE") == Reply::Int(0) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "keys left 30 s after their expiry: {:?}",
            c.cmd_str("DBSIZE")
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = t0.elapsed();
    assert_eq!(info_u64(&mut c, "stats", "expired_keys"), n as u64);
    // Every key announced once.
    assert_eq!(events.join().expect("subscriber"), n);
    // The memory comes back (blocks freed, tables shrunk by the cron) to near its start.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut used2;
    loop {
        used2 = info_u64(&mut c, "memory", "used_memory");
        if used2 < used0 + (used1 - used0) / 10 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        used2 < used0 + (used1 - used0) / 10,
        "used_memory {used0} -> {used1} -> {used2}"
    );
    eprintln!(
        "{n} keys on {shards} shard(s) reclaimed {} ms after their expiry; used_memory {used0} -> {used1} -> {used2}",
        took.as_millis()
    );
    took
}

#[test]
fn a_mass_expiry_is_reclaimed_within_a_few_periods() {
    // 400k keys at hz 10 (periods of 100 ms), one shard. The cycle starts at the first
    // tick after the instant (up to one period), then sweeps the list of keys with a
    // TTL in 1 ms slices that yield to the connections: 140 to 160 ms in all on an idle
    // 2-core machine. Random sampling in slices of 1 ms every 2 ms (the cycle before
    // this test) took 1.0 to 1.35 s on the same machine: the bound of 6 periods fails
    // with it (by 2x at least, more on a loaded machine) and leaves the sweep a margin
    // of about 4x.
    let took = mass_expiry("1", 400_000, false);
    assert!(
        took < Duration::from_millis(600),
        "400k keys took {} ms to reclaim",
        took.as_millis()
    );
}

#[test]
fn a_mass_expiry_over_two_shards_announces_every_key() {
    // Two shards (each reclaims its half) with `expired` events published and read:
    // about 200 ms on an idle 2-core machine, 600 ms with the sampling cycle before.
    // A looser bound (this test runs alongside the other one): a guard against a
    // regression, the one-shard test is the sharp one.
    let took = mass_expiry("2", 400_000, true);
    assert!(
        took < Duration::from_millis(1500),
        "400k keys over 2 shards took {} ms to reclaim",
        took.as_millis()
    );
}
