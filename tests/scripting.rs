//! Lua scripting against the real binary, with several clients and shards: EVALSHA from
//! every shard, atomic scripts over keys of several shards, SELECT confined to the
//! script, no globals leaking, the busy threshold with -BUSY and SCRIPT KILL, and the
//! `redis` crate's `Script` helper (EVALSHA with EVAL fallback).

mod common;

use common::*;
use std::time::{Duration, Instant};

const KEYS: [&str; 8] = ["ka", "kb", "kc", "kd", "ke", "kf", "kg", "kh"];

#[test]
fn evalsha_works_from_every_shard_after_load_or_eval() {
    let s = Server::start(&["--io_threads", "3"]);
    let mut a = s.conn();
    let sha = a.cmd_str("SCRIPT LOAD \"return ARGV[1]\"");
    let sha = String::from_utf8(sha.as_bytes().to_vec()).unwrap();
    for i in 0..9 {
        let mut c = s.conn();
        assert_eq!(
            c.cmd_str(&format!("EVALSHA {sha} 0 hi{i}")),
            Reply::bulk(format!("hi{i}"))
        );
    }
    // A script first seen through EVAL is known everywhere too.
    a.cmd_str("EVAL \"return 'via eval'\" 0");
    let sha2 = libellule::scripting::engine::sha1_hex(b"return 'via eval'");
    for _ in 0..6 {
        let mut c = s.conn();
        assert_eq!(
            c.cmd_str(&format!("SCRIPT EXISTS {sha2}")),
            Reply::array(vec![Reply::Int(1)])
        );
        assert_eq!(
            c.cmd_str(&format!("EVALSHA {sha2} 0")),
            Reply::bulk("via eval")
        );
        let r = c.cmd_str("EVALSHA ffffffffffffffffffffffffffffffffffffffff 0");
        assert!(r.error_text().unwrap().starts_with("NOSCRIPT"), "{r:?}");
    }
}

#[test]
fn redis_crate_script_helper_falls_back_to_eval() {
    let s = Server::start(&["--io_threads", "2"]);
    let mut con = s.redis();
    let script = redis::Script::new("return redis.call('incrby', KEYS[1], ARGV[1])");
    let v: i64 = script.key("counter").arg(5).invoke(&mut con).unwrap();
    assert_eq!(v, 5);
    let v: i64 = script.key("counter").arg(2).invoke(&mut con).unwrap();
    assert_eq!(v, 7);
}

#[test]
fn scripts_over_keys_of_several_shards_are_atomic() {
    let s = Server::start(&["--io_threads", "3"]);
    let port = s.port;
    let mut init = s.conn();
    for k in KEYS {
        init.cmd_str(&format!("SET {k} 0"));
    }
    let body = "for i, k in ipairs(KEYS) do redis.call('incr', k) end return #KEYS";
    let rounds = 300;
    let writer = std::thread::spawn(move || {
        let mut w = RawConn::connect(port);
        let mut args: Vec<&[u8]> = vec![b"EVAL", body.as_bytes(), b"8"];
        args.extend(KEYS.iter().map(|k| k.as_bytes()));
        for _ in 0..rounds {
            assert_eq!(w.cmd(&args), Reply::Int(8));
        }
    });
    let mut reader = s.conn();
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(KEYS.iter().map(|k| k.as_bytes()));
    while !writer.is_finished() {
        let r = reader.cmd(&mget);
        let values: Vec<&[u8]> = r.as_array().iter().map(|v| v.as_bytes()).collect();
        assert!(
            values.iter().all(|v| *v == values[0]),
            "a reader saw a partial script: {r:?}"
        );
    }
    writer.join().unwrap();
    for v in reader.cmd(&mget).as_array() {
        assert_eq!(v.as_bytes(), rounds.to_string().as_bytes());
    }
    // Keys created and deleted by a cross-shard script land on their shards.
    let r = reader.cmd_str(
        "EVAL \"redis.call('del', KEYS[1]) redis.call('set', KEYS[2], 'new') return 1\" 2 ka fresh",
    );
    assert_eq!(r, Reply::Int(1));
    assert_eq!(reader.cmd_str("EXISTS ka"), Reply::Int(0));
    assert_eq!(reader.cmd_str("GET fresh"), Reply::bulk("new"));
}

#[test]
fn select_inside_a_script_is_the_scripts_own() {
    let s = Server::start(&["--io_threads", "1"]);
    let mut c = s.conn();
    let r = c.cmd_str("EVAL \"redis.call('select', 5) redis.call('set', KEYS[1], 'in5') return redis.call('get', KEYS[1])\" 1 k");
    assert_eq!(r, Reply::bulk("in5"));
    assert_eq!(c.cmd_str("GET k"), Reply::nil());
    c.cmd_str("SELECT 5");
    assert_eq!(c.cmd_str("GET k"), Reply::bulk("in5"));
}

#[test]
fn no_globals_leak_between_scripts() {
    let s = Server::start(&["--io_threads", "1"]);
    let mut c = s.conn();
    let r = c.cmd_str("EVAL \"leak = 1\" 0");
    assert!(r
        .error_text()
        .unwrap()
        .contains("Attempt to modify a readonly table"));
    c.cmd_str("EVAL \"rawset(_G, 'leak2', 42) return 1\" 0");
    let r = c.cmd_str("EVAL \"return rawget(_G, 'leak2')\" 0");
    assert_eq!(
        r,
        Reply::nil(),
        "a global set by one script is seen by another"
    );
    let r = c.cmd_str("EVAL \"string.leak3 = 1\" 0");
    assert!(r.is_error());
    for escape in [
        "os",
        "io",
        "loadstring",
        "dofile",
        "debug",
        "require",
        "package",
        "setfenv",
    ] {
        let r = c.cmd_str(&format!("EVAL \"return {escape}\" 0"));
        assert!(
            r.error_text()
                .is_some_and(|e| e.contains("nonexistent global variable")),
            "{escape} reachable: {r:?}"
        );
    }
}

#[test]
fn busy_script_answers_busy_elsewhere_and_script_kill_stops_it() {
    let s = Server::start(&["--io_threads", "2", "--busy-reply-threshold", "200"]);
    let mut looper = s.conn();
    looper.send(&[b"EVAL", b"local i = 0 while true do i = i + 1 end", b"0"]);
    std::thread::sleep(Duration::from_millis(400));
    // Some of these connections live on the other shard and answer -BUSY at once.
    let mut others: Vec<RawConn> = (0..10).map(|_| s.conn()).collect();
    let mut killer = None;
    for (i, c) in others.iter_mut().enumerate() {
        c.set_read_timeout(Duration::from_millis(300));
        c.send(&[b"GET", b"x"]);
        if let Ok(r) = c.try_read_reply() {
            assert!(r.error_text().unwrap().starts_with("BUSY "), "{r:?}");
            killer = Some(i);
            break;
        }
    }
    let Some(i) = killer else {
        panic!("no connection landed on the free shard");
    };
    let k = &mut others[i];
    k.set_read_timeout(Duration::from_secs(10));
    assert_eq!(k.cmd_str("SCRIPT KILL"), Reply::ok());
    let r = looper.read_reply();
    assert!(
        r.error_text()
            .unwrap()
            .starts_with("ERR Script killed by user with SCRIPT KILL..."),
        "{r:?}"
    );
    assert_eq!(
        k.cmd_str("SCRIPT KILL").error_text().unwrap(),
        "NOTBUSY No scripts in execution right now."
    );
    assert_eq!(looper.cmd_str("PING"), Reply::simple("PONG"));
}

#[test]
fn script_that_wrote_cannot_be_killed() {
    let s = Server::start(&["--io_threads", "2", "--busy-reply-threshold", "100"]);
    let mut looper = s.conn();
    // Loops for about 1.5 s after writing, then ends by itself.
    looper.send(&[
        b"EVAL",
        b"redis.call('set', KEYS[1], 'w') local t = redis.call('time') local stop = t[1] * 1000000 + t[2] + 1500000 while true do local n = redis.call('time') if n[1] * 1000000 + n[2] > stop then break end end return 'done'",
        b"1",
        b"wk",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let mut saw_unkillable = false;
    for _ in 0..10 {
        let mut c = s.conn();
        c.set_read_timeout(Duration::from_millis(200));
        c.send(&[b"SCRIPT", b"KILL"]);
        if let Ok(r) = c.try_read_reply() {
            if r.error_text().is_some_and(|e| e.starts_with("UNKILLABLE")) {
                saw_unkillable = true;
                break;
            }
        }
        if start.elapsed() > Duration::from_millis(1000) {
            break;
        }
    }
    assert!(saw_unkillable);
    looper.set_read_timeout(Duration::from_secs(10));
    assert_eq!(looper.read_reply(), Reply::bulk("done"));
}

/// With one shard, every client lives on the busy script's own shard: the script's
/// time-limit hook answers them (Redis's processEventsWhileBlocked).
#[test]
fn busy_script_on_the_only_shard_still_answers_busy_and_script_kill() {
    let s = Server::start(&["--io_threads", "1", "--busy-reply-threshold", "100"]);
    // Connected and idle before the script starts; one of them inside MULTI.
    let mut idle = s.conn();
    assert_eq!(idle.cmd_str("SET k v"), Reply::ok());
    let mut tx = s.conn();
    assert_eq!(tx.cmd_str("MULTI"), Reply::ok());
    assert_eq!(tx.cmd_str("GET k"), Reply::simple("QUEUED"));
    let mut looper = s.conn();
    looper.send(&[b"EVAL", b"local i = 0 while true do i = i + 1 end", b"0"]);
    std::thread::sleep(Duration::from_millis(300));
    for c in [&mut idle, &mut tx] {
        c.set_read_timeout(Duration::from_secs(5));
    }
    let busy =
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
    // An existing idle connection, and a pipeline of two.
    assert_eq!(idle.cmd_str("GET k").error_text(), Some(busy));
    idle.send_raw(b"PING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    assert_eq!(idle.read_reply().error_text(), Some(busy));
    assert_eq!(idle.read_reply().error_text(), Some(busy));
    // Inside MULTI: the refused command dooms the transaction.
    assert_eq!(tx.cmd_str("SET k w").error_text(), Some(busy));
    // A connection accepted while the script runs.
    let mut fresh = s.conn();
    fresh.set_read_timeout(Duration::from_secs(5));
    assert_eq!(fresh.cmd_str("INCR n").error_text(), Some(busy));
    // HELLO runs in Redis even now; here it waits for the script, in order.
    let mut hello = s.conn();
    hello.set_read_timeout(Duration::from_millis(300));
    hello.send(&[b"HELLO", b"3"]);
    assert!(
        hello.try_read_reply().is_err(),
        "HELLO answered during the script"
    );
    assert_eq!(fresh.cmd_str("SCRIPT KILL"), Reply::ok());
    looper.set_read_timeout(Duration::from_secs(5));
    let r = looper.read_reply();
    assert!(
        r.error_text()
            .unwrap_or("")
            .starts_with("ERR Script killed by user with SCRIPT KILL..."),
        "{r:?}"
    );
    hello.set_read_timeout(Duration::from_secs(5));
    assert_eq!(hello.read_reply().kind(), "map");
    assert_eq!(
        tx.cmd_str("EXEC").error_text(),
        Some("EXECABORT Transaction discarded because of previous errors.")
    );
    assert_eq!(idle.cmd_str("GET k"), Reply::bulk("v"));
    assert_eq!(fresh.cmd_str("INCR n"), Reply::Int(1));
    let stats = idle.cmd_str("INFO errorstats").as_text();
    assert!(stats.contains("errorstat_BUSY:count=5"), "{stats}");
    // QUIT is answered and closes, even while busy.
    looper.send(&[b"EVAL", b"local i = 0 while true do i = i + 1 end", b"0"]);
    std::thread::sleep(Duration::from_millis(300));
    let mut q = s.conn();
    q.set_read_timeout(Duration::from_secs(5));
    assert_eq!(q.cmd_str("QUIT"), Reply::ok());
    assert!(q.wait_closed(Duration::from_secs(5)).is_some());
    // SHUTDOWN NOSAVE ends the process.
    let mut k = s.conn();
    k.set_read_timeout(Duration::from_secs(5));
    k.send(&[b"SHUTDOWN", b"NOSAVE"]);
    let mut s = s;
    assert!(
        s.wait_exit(Duration::from_secs(5)).is_some(),
        "still running"
    );
}

/// While busy, the desk still asks for authentication first (as Redis checks AUTH
/// before the busy state): an unauthenticated SCRIPT KILL gets -NOAUTH.
#[test]
fn busy_desk_requires_authentication() {
    let s = Server::start(&[
        "--io_threads",
        "1",
        "--busy-reply-threshold",
        "100",
        "--requirepass",
        "pw",
    ]);
    let mut admin = s.conn();
    assert_eq!(admin.cmd_str("AUTH pw"), Reply::ok());
    let mut looper = s.conn();
    assert_eq!(looper.cmd_str("AUTH pw"), Reply::ok());
    looper.send(&[b"EVAL", b"local i = 0 while true do i = i + 1 end", b"0"]);
    std::thread::sleep(Duration::from_millis(300));
    let mut stranger = s.conn();
    stranger.set_read_timeout(Duration::from_secs(5));
    assert_eq!(
        stranger.cmd_str("SCRIPT KILL").error_text(),
        Some("NOAUTH Authentication required.")
    );
    looper.set_read_timeout(Duration::from_millis(300));
    assert!(looper.try_read_reply().is_err(), "the script was stopped");
    admin.set_read_timeout(Duration::from_secs(5));
    assert_eq!(admin.cmd_str("SCRIPT KILL"), Reply::ok());
    looper.set_read_timeout(Duration::from_secs(5));
    assert!(looper.read_reply().is_error());
}
