//! Faults: clients that vanish in the middle of a pipeline, a transaction, a script or a
//! blocking command, and a shard kept busy by a long script. After each, other clients
//! must find no key locked, no waiter left behind (a later push is not swallowed by a
//! dead client) and the data consistent; and `kill -9` at random moments under write
//! load, after which the restart loads exactly one past snapshot. docs/reliability.md
//! lists them.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// A key that lives on shard `shard` of `n`, with `prefix`.
fn key_on(shard: usize, n: usize, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| libellule::shard::key_shard(k.as_bytes(), n) == shard)
        .expect("some key")
}

/// A connection with a short read timeout: a stuck key or lock fails fast.
fn quick(s: &Server) -> RawConn {
    let c = s.conn();
    c.set_read_timeout(Duration::from_secs(5));
    c
}

fn blocked_clients(c: &mut RawConn) -> i64 {
    let info = c.cmd_str("INFO clients");
    String::from_utf8_lossy(info.as_bytes())
        .lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("blocked_clients")
}

#[test]
fn disconnect_mid_pipeline_leaves_no_lock() {
    let s = Server::start(&["--io_threads", "3"]);
    let a0 = key_on(0, 3, "a");
    let a1 = key_on(1, 3, "b");
    let a2 = key_on(2, 3, "c");
    for round in 0..5 {
        let mut gone = s.conn();
        let mut bytes = Vec::new();
        for i in 0..5000 {
            let v = format!("{round}-{i}");
            // Cross-shard commands take key locks on every shard they touch.
            bytes.extend_from_slice(&encode_command(&[
                b"MSET",
                a0.as_bytes(),
                v.as_bytes(),
                a1.as_bytes(),
                v.as_bytes(),
                a2.as_bytes(),
                v.as_bytes(),
            ]));
            bytes.extend_from_slice(&encode_command(&[b"INCR", b"counter"]));
            bytes.extend_from_slice(&encode_command(&[b"RENAME", a0.as_bytes(), a0.as_bytes()]));
        }
        gone.send_raw(&bytes);
        // Gone without reading a single reply.
        drop(gone);
        let mut c = quick(&s);
        assert_eq!(
            c.cmd(&[
                b"MSET",
                a0.as_bytes(),
                b"x",
                a1.as_bytes(),
                b"x",
                a2.as_bytes(),
                b"x"
            ]),
            Reply::ok(),
            "round {round}"
        );
        // The three keys always agree: no MSET was cut in half.
        let r = c.cmd(&[b"MGET", a0.as_bytes(), a1.as_bytes(), a2.as_bytes()]);
        let items = r.as_array();
        assert!(items[0] == items[1] && items[1] == items[2], "{r:?}");
    }
    let mut c = quick(&s);
    let n = c.cmd_str("INCR counter").as_int();
    assert!(n >= 1);
}

#[test]
fn disconnect_mid_transaction_discards_it() {
    let s = Server::start(&["--io_threads", "2"]);
    let k0 = key_on(0, 2, "t");
    let k1 = key_on(1, 2, "t");
    // Queued but never executed.
    let mut gone = s.conn();
    assert_eq!(gone.cmd_str("MULTI"), Reply::ok());
    assert_eq!(
        gone.cmd_str(&format!("WATCH {k0}")),
        Reply::err("ERR WATCH inside MULTI is not allowed")
    );
    assert_eq!(
        gone.cmd_str(&format!("MSET {k0} 1 {k1} 1")),
        Reply::simple("QUEUED")
    );
    drop(gone);
    let mut c = quick(&s);
    assert_eq!(c.cmd_str(&format!("EXISTS {k0} {k1}")), Reply::Int(0));
    // EXEC sent, then gone: the transaction is all or nothing, and nothing stays locked.
    for round in 0..20 {
        let mut gone = s.conn();
        let v = round.to_string();
        let mut bytes = encode_command(&[b"MULTI"]);
        bytes.extend_from_slice(&encode_command(&[b"SET", k0.as_bytes(), v.as_bytes()]));
        bytes.extend_from_slice(&encode_command(&[b"SET", k1.as_bytes(), v.as_bytes()]));
        bytes.extend_from_slice(&encode_command(&[b"EXEC"]));
        gone.send_raw(&bytes);
        drop(gone);
        let r = c.cmd(&[b"MGET", k0.as_bytes(), k1.as_bytes()]);
        let items = r.as_array();
        assert_eq!(items[0], items[1], "round {round}: {r:?}");
    }
    assert_eq!(c.cmd_str("MULTI"), Reply::ok());
    assert_eq!(c.cmd_str(&format!("SET {k0} end")), Reply::simple("QUEUED"));
    assert_eq!(c.cmd_str(&format!("SET {k1} end")), Reply::simple("QUEUED"));
    assert_eq!(
        c.cmd_str("EXEC"),
        Reply::array(vec![Reply::ok(), Reply::ok()])
    );
}

#[test]
fn disconnect_while_blocked_leaves_no_waiter() {
    let s = Server::start(&["--io_threads", "2"]);
    let q0 = key_on(0, 2, "q");
    let q1 = key_on(1, 2, "q");
    let z0 = key_on(0, 2, "z");
    let mut admin = quick(&s);
    let mut gone = Vec::new();
    let blocking = [
        format!("BLPOP {q0} 0"),
        format!("BLPOP {q1} 0"),
        format!("BRPOP {q0} {q1} 0"),
        format!("BLMOVE {q1} {q0} LEFT RIGHT 0"),
        format!("BZPOPMIN {z0} 0"),
        format!("XREAD BLOCK 0 STREAMS s{q0} $"),
    ];
    for cmd in &blocking {
        let mut c = s.conn();
        c.send(
            &split_args(cmd)
                .iter()
                .map(|a| a.as_slice())
                .collect::<Vec<_>>(),
        );
        gone.push(c);
    }
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            blocked_clients(&mut admin) == blocking.len() as i64
        }),
        "blocked_clients {}",
        blocked_clients(&mut admin)
    );
    drop(gone);
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            blocked_clients(&mut admin) == 0
        }),
        "blocked_clients {}",
        blocked_clients(&mut admin)
    );
    // Pushes now reach the data, not a dead client.
    assert_eq!(admin.cmd_str(&format!("LPUSH {q0} a")), Reply::Int(1));
    assert_eq!(admin.cmd_str(&format!("LPUSH {q1} b")), Reply::Int(1));
    assert_eq!(admin.cmd_str(&format!("ZADD {z0} 1 m")), Reply::Int(1));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(admin.cmd_str(&format!("LLEN {q0}")), Reply::Int(1));
    assert_eq!(admin.cmd_str(&format!("LLEN {q1}")), Reply::Int(1));
    assert_eq!(admin.cmd_str(&format!("ZCARD {z0}")), Reply::Int(1));
    // A live waiter still gets served.
    let mut live = s.conn();
    live.send(&[b"BLPOP", b"fresh", b"5"]);
    assert!(wait_until(
        Duration::from_secs(5),
        Duration::from_millis(20),
        || { blocked_clients(&mut admin) == 1 }
    ));
    assert_eq!(admin.cmd_str("LPUSH fresh x"), Reply::Int(1));
    assert_eq!(
        live.read_reply(),
        Reply::array(vec![Reply::bulk("fresh"), Reply::bulk("x")])
    );
}

/// A script that spins for `ms` milliseconds, then writes `done` to KEYS[1].
fn busy_script(ms: u64) -> String {
    format!(
        "local t=redis.call('TIME') local s=t[1]*1000000+t[2] \
         repeat local n=redis.call('TIME') until (n[1]*1000000+n[2])-s > {} \
         redis.call('SET', KEYS[1], 'done') return 1",
        ms * 1000
    )
}

#[test]
fn disconnect_mid_script_runs_it_whole_and_unlocks() {
    let s = Server::start(&["--io_threads", "2"]);
    let k0 = key_on(0, 2, "s");
    let mut gone = s.conn();
    gone.send(&[b"EVAL", busy_script(500).as_bytes(), b"1", k0.as_bytes()]);
    std::thread::sleep(Duration::from_millis(100));
    drop(gone);
    let c = s.conn();
    c.set_read_timeout(Duration::from_secs(10));
    let mut c = c;
    assert!(wait_until(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || { c.cmd(&[b"GET", k0.as_bytes()]) == Reply::bulk("done") }
    ));
    assert_eq!(c.cmd(&[b"SET", k0.as_bytes(), b"after"]), Reply::ok());
    assert_eq!(
        c.cmd(&[
            b"EVAL",
            b"return redis.call('GET', KEYS[1])",
            b"1",
            k0.as_bytes()
        ]),
        Reply::bulk("after")
    );
}

#[test]
fn a_slow_shard_does_not_stop_the_others() {
    let s = Server::start(&["--io_threads", "2"]);
    let k0 = key_on(0, 2, "slow");
    let k1 = key_on(1, 2, "fast");
    // Connections land on a shard chosen by the kernel: open several, so some are homed
    // on shard 1.
    let mut conns: Vec<RawConn> = (0..8).map(|_| quick(&s)).collect();
    for c in conns.iter_mut() {
        assert_eq!(c.cmd_str("PING"), Reply::simple("PONG"));
    }
    let mut slow = s.conn();
    slow.set_read_timeout(Duration::from_secs(20));
    slow.send(&[b"EVAL", busy_script(2000).as_bytes(), b"1", k0.as_bytes()]);
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    for c in conns.iter_mut() {
        c.send(&[b"SET", k1.as_bytes(), b"v"]);
    }
    // Within the script's 2 seconds, connections homed on shard 1 are answered.
    let mut fast = 0;
    for c in conns.iter_mut() {
        c.set_read_timeout(Duration::from_millis(300));
        if let Ok(r) = c.try_read_reply() {
            assert_eq!(r, Reply::ok());
            fast += 1;
        }
    }
    let during = start.elapsed();
    assert!(
        fast >= 1,
        "no connection was served while shard 0 ran a script"
    );
    assert!(during < Duration::from_millis(1900), "took {during:?}");
    assert_eq!(slow.read_reply(), Reply::Int(1));
    // The rest are answered once the script ends.
    for c in conns.iter_mut() {
        c.set_read_timeout(Duration::from_secs(10));
    }
    let mut c = quick(&s);
    assert_eq!(c.cmd(&[b"GET", k0.as_bytes()]), Reply::bulk("done"));
}

/// The state a kill -9 test checks: the generation of the lockstep keys (all equal, and
/// equal to the length and last element of the log list), or `None` for an
/// inconsistent state (described).
fn generation(c: &mut RawConn, keys: &[String]) -> Result<u64, String> {
    let mut args: Vec<&[u8]> = vec![b"MGET"];
    args.extend(keys.iter().map(|k| k.as_bytes()));
    let vals: Vec<Option<u64>> = c
        .cmd(&args)
        .as_array()
        .iter()
        .map(|v| match v {
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).parse().ok(),
            _ => None,
        })
        .collect();
    let len = c.cmd_str("LLEN log").as_int() as u64;
    let last = match c.cmd_str("LINDEX log -1") {
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b).parse::<u64>().ok(),
        _ => None,
    };
    let gen = vals[0].unwrap_or(0);
    let all_same = vals.iter().all(|v| v.unwrap_or(0) == gen);
    if all_same && len == gen && (gen == 0 || last == Some(gen)) {
        Ok(gen)
    } else {
        Err(format!("keys {vals:?}, log length {len}, last {last:?}"))
    }
}

/// Starts Libellule (3 shards) on `dir` and waits for its start-up load to end.
fn start_loaded(dir: &str) -> Server {
    let s = Server::start(&["--io_threads", "3", "--dir", dir]);
    let mut c = s.conn();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = c.cmd_str("INFO persistence");
        if String::from_utf8_lossy(info.as_bytes()).contains("loading:0") {
            return s;
        }
        assert!(Instant::now() < deadline, "loading did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `kill -9` at random moments under write load, then a restart from the last
/// snapshot: the loaded data must be exactly one of the snapshots taken. A writer works
/// in lockstep (MSET of one generation into keys on every shard, RPUSH of it to a log,
/// now and then BGSAVE), so the snapshot a BGSAVE starts holds exactly the generation
/// written before it; a second client floods another database meanwhile. After each
/// kill the restarted server must hold one generation that a BGSAVE of the last run
/// started (or the one it loaded, when no save finished), the 20,000 filler keys, and
/// nothing written after that cut.
#[test]
fn kill_9_under_write_load_restarts_from_a_past_snapshot() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let dir = ScratchDir::new("kill9-load");
    let d = dir.path_str();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill -9 test seed {seed}");
    let mut rng = seed;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let keys: Vec<String> = (0..6)
        .map(|i| key_on(i % 3, 3, &format!("gen{i}:")))
        .collect();
    let filler = 20_000;
    let mut loaded = 0u64;
    let mut advanced = 0;
    let rounds = 6;
    let mut allowed: Vec<u64> = Vec::new();
    for round in 0..=rounds {
        let mut s = start_loaded(&d);
        let mut c = quick(&s);
        if round > 0 {
            // Restarted from the last snapshot of the killed run.
            let gen = generation(&mut c, &keys)
                .unwrap_or_else(|e| panic!("round {round}: not a snapshot's state: {e}"));
            assert!(
                allowed.contains(&gen),
                "round {round}: generation {gen} loaded, snapshots started at {allowed:?}"
            );
            if gen > loaded {
                advanced += 1;
            }
            loaded = gen;
        }
        if round == rounds {
            break;
        }
        if round == 0 {
            let value = "f".repeat(200);
            for chunk in 0..(filler / 1000) {
                let names: Vec<String> = (0..1000).map(|i| format!("fill:{chunk}:{i}")).collect();
                let mut args: Vec<&[u8]> = vec![b"MSET"];
                for n in &names {
                    args.push(n.as_bytes());
                    args.push(value.as_bytes());
                }
                assert_eq!(c.cmd(&args), Reply::ok());
            }
            assert_eq!(c.cmd_str("SAVE"), Reply::ok());
        }
        // The filler, the lockstep keys and the log; nothing else in db 0.
        assert_eq!(
            c.cmd_str("DBSIZE").as_int(),
            filler as i64 + if loaded > 0 { keys.len() as i64 + 1 } else { 0 },
            "round {round}"
        );
        let started: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![loaded]));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (keys, started, stop, port) = (keys.clone(), started.clone(), stop.clone(), s.port);
            std::thread::spawn(move || {
                let mut c = RawConn::connect(port);
                let mut gen = loaded;
                let mut call = |args: &[&[u8]]| -> Option<Reply> {
                    c.try_send_raw(&encode_command(args)).ok()?;
                    c.try_read_reply().ok()
                };
                while !stop.load(Ordering::Relaxed) {
                    gen += 1;
                    let v = gen.to_string();
                    let mut args: Vec<&[u8]> = vec![b"MSET"];
                    for k in &keys {
                        args.push(k.as_bytes());
                        args.push(v.as_bytes());
                    }
                    let Some(Reply::Simple(_)) = call(&args) else {
                        return;
                    };
                    let Some(Reply::Int(_)) = call(&[b"RPUSH", b"log", v.as_bytes()]) else {
                        return;
                    };
                    if gen.is_multiple_of(4) {
                        // Recorded before sending: if the server dies before the reply
                        // arrives, the save may still have started (and finished).
                        started.lock().unwrap().push(gen);
                        match call(&[b"BGSAVE"]) {
                            Some(Reply::Simple(_)) => {}
                            Some(Reply::Error(_)) => {
                                // One is running: this one never started.
                                started.lock().unwrap().pop();
                            }
                            _ => return,
                        }
                    }
                }
            })
        };
        let flood = {
            let (stop, port) = (stop.clone(), s.port);
            std::thread::spawn(move || {
                let mut c = RawConn::connect(port);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut batch = Vec::new();
                    batch.extend_from_slice(&encode_command(&[b"SELECT", b"1"]));
                    for _ in 0..64 {
                        i += 1;
                        let k = format!("noise:{}", i % 5000);
                        batch.extend_from_slice(&encode_command(&[b"SET", k.as_bytes(), b"x"]));
                    }
                    if c.try_send_raw(&batch).is_err() {
                        return;
                    }
                    for _ in 0..65 {
                        if c.try_read_reply().is_err() {
                            return;
                        }
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(150 + next(900)));
        s.signal(libc::SIGKILL);
        s.wait_exit(Duration::from_secs(5)).expect("killed");
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        flood.join().unwrap();
        allowed = started.lock().unwrap().clone();
    }
    eprintln!("kill -9: {advanced} of {rounds} restarts loaded a newer snapshot");
    assert!(advanced > 0, "no BGSAVE completed in any round");
}
