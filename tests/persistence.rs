//! Snapshots: SAVE/BGSAVE files round-trip every type through a restart (1 and 3
//! shards), interoperate both ways with redis-server 7.0 (streams with groups and PELs
//! included), hold exactly the values of the cut while a writer changes keys, never
//! split a cross-shard command across the cut, survive kill -9 during BGSAVE, refuse
//! corrupt and truncated files naming the offset, report failed saves (a real full
//! tmpfs where mounting is allowed, else an injected write error) and keep the old
//! file; SHUTDOWN/SIGTERM save; the `--save` schedule fires.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One key as compared: (db, key, type, contents, has a TTL).
type KeyDump = (usize, Vec<u8>, String, Vec<Reply>, bool);

/// Fills db 0, 5 and 15 with every type and encoding (no streams: their RDB codec is
/// separate work).
fn populate(c: &mut RawConn) {
    let big: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    let mut lines: Vec<String> = vec![
        "SET int 12345".into(),
        "SET neg -7".into(),
        "SET bigint 123456789012345".into(),
        "SET small hello".into(),
        format!("SET long {}", "abc".repeat(100)),
        "SET ttl v PX 500000".into(),
        "RPUSH list a b c 1 2 3".into(),
        "HSET hash f1 v1 f2 2".into(),
        "SADD iset 1 2 3 -5".into(),
        "SADD sset a b c".into(),
        "ZADD zs 1 a 2.5 b -3 c".into(),
        "SELECT 5".into(),
        "SET in5 five".into(),
        "HSET h5 a 1".into(),
        "SELECT 15".into(),
        "SET in15 fifteen PX 400000".into(),
        "SELECT 0".into(),
    ];
    lines.push(format!("RPUSH biglist {}", big.join(" ")));
    lines.push(format!("SADD bigset {}", big.join(" ")));
    let pairs: Vec<String> = big.iter().map(|m| format!("{m} v{m}")).collect();
    lines.push(format!("HSET bighash {}", pairs.join(" ")));
    let zp: Vec<String> = big
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{} {m}", i as f64 / 3.0))
        .collect();
    lines.push(format!("ZADD bigzset {}", zp.join(" ")));
    for l in &lines {
        let r = c.cmd_str(l);
        assert!(!r.is_error(), "{l}: {r:?}");
    }
    // A binary key and value.
    let r = c.cmd(&[b"SET", b"bin\x00\xff", b"\x00\x01\xfe\xff"]);
    assert!(!r.is_error());
}

/// Every key of every non-empty db in a comparable form: (db, key, type, contents, has ttl).
fn dataset(c: &mut RawConn) -> Vec<KeyDump> {
    let mut out = Vec::new();
    for db in 0..16usize {
        c.cmd_str(&format!("SELECT {db}"));
        let mut keys: Vec<Vec<u8>> = c
            .cmd(&[b"KEYS", b"*"])
            .as_array()
            .iter()
            .map(|k| k.as_bytes().to_vec())
            .collect();
        keys.sort();
        for k in keys {
            let t = match c.cmd(&[b"TYPE", &k]) {
                Reply::Simple(s) => s,
                other => panic!("TYPE: {other:?}"),
            };
            let v = match t.as_str() {
                "string" => vec![c.cmd(&[b"GET", &k])],
                "list" => c.cmd(&[b"LRANGE", &k, b"0", b"-1"]).as_array().to_vec(),
                "set" => {
                    let mut v = c.cmd(&[b"SMEMBERS", &k]).as_array().to_vec();
                    v.sort();
                    v
                }
                "zset" => c
                    .cmd(&[b"ZRANGE", &k, b"0", b"-1", b"WITHSCORES"])
                    .as_array()
                    .to_vec(),
                "hash" => {
                    let flat = c.cmd(&[b"HGETALL", &k]).as_array().to_vec();
                    let mut p: Vec<Reply> =
                        flat.chunks(2).map(|p| Reply::array(p.to_vec())).collect();
                    p.sort();
                    p
                }
                other => panic!("type {other}"),
            };
            let ttl = c.cmd(&[b"PTTL", &k]).as_int() > 0;
            out.push((db, k, t, v, ttl));
        }
    }
    c.cmd_str("SELECT 0");
    out
}

fn info_field(c: &mut RawConn, field: &str) -> String {
    let r = c.cmd(&[b"INFO", b"persistence"]);
    let text = String::from_utf8_lossy(r.as_bytes()).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
}

fn wait_bgsave(c: &mut RawConn) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while info_field(c, "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "BGSAVE did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_on(dir: &Path, threads: &str, extra: &[&str]) -> Server {
    let d = dir.to_string_lossy().into_owned();
    let mut args = vec!["--io_threads", threads, "--dir", d.as_str()];
    args.extend_from_slice(extra);
    let s = Server::start(&args);
    // Wait for the load to end.
    let mut c = s.conn();
    let deadline = Instant::now() + Duration::from_secs(30);
    while info_field(&mut c, "loading") != "0" {
        assert!(Instant::now() < deadline, "loading did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
    s
}

#[test]
fn round_trip_every_type_through_save_and_restart() {
    for (save_threads, load_threads) in [("1", "3"), ("3", "1")] {
        let dir = ScratchDir::new("rt");
        let mut s = start_on(dir.path(), save_threads, &[]);
        let mut c = s.conn();
        populate(&mut c);
        // A key that expires before the restart is dropped on load.
        c.cmd_str("SET soon x PX 150");
        let before = dataset(&mut c);
        assert_eq!(c.cmd_str("SAVE"), Reply::ok());
        assert!(c.cmd_str("LASTSAVE").as_int() > 1_700_000_000);
        assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
        assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
        s.kill();
        std::thread::sleep(Duration::from_millis(200));
        let s2 = start_on(dir.path(), load_threads, &[]);
        let mut c2 = s2.conn();
        let after = dataset(&mut c2);
        let before: Vec<_> = before.into_iter().filter(|k| k.1 != b"soon").collect();
        assert_eq!(before, after, "{save_threads} -> {load_threads} shards");
        assert_eq!(c2.cmd_str("EXISTS soon").as_int(), 0);
        assert!(c2.cmd_str("PTTL ttl").as_int() > 400_000);
        assert_eq!(
            c2.cmd_str("OBJECT ENCODING iset"),
            Reply::bulk("intset"),
            "encodings survive"
        );
        assert_eq!(
            c2.cmd_str("OBJECT ENCODING bigset"),
            Reply::bulk("hashtable")
        );
    }
}

#[test]
fn libellule_loads_what_redis_server_saves() {
    let Some(r) = RedisServer::start() else {
        return;
    };
    let mut rc = r.conn();
    populate(&mut rc);
    // Redis's own encodings: listpack/intset/quicklist, LZF-compressed strings.
    rc.cmd_str(&format!("SET lzf {}", "x".repeat(5000)));
    let expected = dataset(&mut rc);
    assert_eq!(rc.cmd_str("SAVE"), Reply::ok());
    let dir = ScratchDir::new("from-redis");
    std::fs::copy(r.dir().join("dump.rdb"), dir.path().join("dump.rdb")).unwrap();
    let s = start_on(dir.path(), "2", &[]);
    let mut c = s.conn();
    assert_eq!(dataset(&mut c), expected);
    assert_eq!(c.cmd_str("OBJECT ENCODING list"), Reply::bulk("quicklist"));
}

#[test]
fn redis_server_loads_what_libellule_saves() {
    if !require_tool("redis-server") {
        return;
    }
    let s = Server::start(&["--io_threads", "3"]);
    let mut c = s.conn();
    populate(&mut c);
    c.cmd_str(&format!("SET lzf {}", "x".repeat(5000)));
    let expected = dataset(&mut c);
    assert_eq!(c.cmd_str("SAVE"), Reply::ok());
    let dir = ScratchDir::new("to-redis");
    std::fs::copy(s.dir().join("dump.rdb"), dir.path().join("dump.rdb")).unwrap();
    let d = dir.path_str();
    let r = RedisServer::start_with(&["--dir", &d]).expect("redis-server");
    let mut rc = r.conn();
    assert_eq!(dataset(&mut rc), expected);
    let log = r.log();
    assert!(!log.contains("Short read"), "{log}");
}

#[test]
fn bgsave_holds_exactly_the_values_of_the_cut() {
    let dir = ScratchDir::new("cut");
    let mut s = start_on(dir.path(), "2", &[]);
    let mut c = s.conn();
    let n = 30_000;
    let mut args: Vec<Vec<u8>> = vec![b"MSET".to_vec()];
    for i in 0..n {
        args.push(format!("key:{i}").into_bytes());
        args.push(b"before".to_vec());
    }
    let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    assert_eq!(c.cmd(&refs), Reply::ok());
    c.cmd_str("RPUSH l0 a b c");
    assert_eq!(
        c.cmd_str("BGSAVE"),
        Reply::simple("Background saving started")
    );
    // Right after the reply: overwrite, delete, add, flush a db and swap dbs while the
    // walkers run.
    let mut w = s.conn();
    for i in (0..n).step_by(3) {
        w.send(&[b"SET", format!("key:{i}").as_bytes(), b"after"]);
    }
    for i in (1..n).step_by(7) {
        w.send(&[b"DEL", format!("key:{i}").as_bytes()]);
    }
    for i in 0..2000 {
        w.send(&[b"SET", format!("new:{i}").as_bytes(), b"x"]);
    }
    w.send(&[b"RPUSH", b"l0", b"d"]);
    for _ in 0..(n / 3 + (n - 1) / 7 + 2000 + 1) {
        let r = w.read_reply();
        assert!(!r.is_error(), "{r:?}");
    }
    wait_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    s.kill();
    let s2 = start_on(dir.path(), "3", &[]);
    let mut c2 = s2.conn();
    assert_eq!(c2.cmd_str("DBSIZE").as_int(), n as i64 + 1);
    assert_eq!(c2.cmd_str("EXISTS new:0 new:1999").as_int(), 0);
    for i in (0..n).step_by(97) {
        assert_eq!(
            c2.cmd(&[b"GET", format!("key:{i}").as_bytes()]),
            Reply::bulk("before"),
            "key:{i}"
        );
    }
    assert_eq!(c2.cmd_str("LLEN l0").as_int(), 3);
}

#[test]
fn flush_and_swapdb_during_bgsave_keep_the_cut() {
    let dir = ScratchDir::new("flush");
    let mut s = start_on(dir.path(), "2", &[]);
    let mut c = s.conn();
    let mut args: Vec<Vec<u8>> = vec![b"MSET".to_vec()];
    for i in 0..20_000 {
        args.push(format!("k{i}").into_bytes());
        args.push(b"v".to_vec());
    }
    let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    c.cmd(&refs);
    c.cmd_str("SELECT 1");
    c.cmd_str("SET one 1");
    c.cmd_str("SELECT 0");
    assert_eq!(
        c.cmd_str("BGSAVE"),
        Reply::simple("Background saving started")
    );
    assert_eq!(c.cmd_str("SWAPDB 0 1"), Reply::ok());
    assert_eq!(c.cmd_str("FLUSHALL"), Reply::ok());
    c.cmd_str("SET later x");
    wait_bgsave(&mut c);
    s.kill();
    let s2 = start_on(dir.path(), "1", &[]);
    let mut c2 = s2.conn();
    assert_eq!(c2.cmd_str("DBSIZE").as_int(), 20_000);
    assert_eq!(c2.cmd_str("GET k19999"), Reply::bulk("v"));
    c2.cmd_str("SELECT 1");
    assert_eq!(c2.cmd_str("DBSIZE").as_int(), 1);
    assert_eq!(c2.cmd_str("GET one"), Reply::bulk("1"));
}

#[test]
fn kill_9_during_bgsave_leaves_the_previous_snapshot() {
    let dir = ScratchDir::new("kill9");
    let mut s = start_on(dir.path(), "2", &[]);
    let mut c = s.conn();
    c.cmd_str("SET old 1");
    assert_eq!(c.cmd_str("SAVE"), Reply::ok());
    let old = std::fs::read(dir.path().join("dump.rdb")).unwrap();
    let value = "y".repeat(1000);
    for chunk in 0..20 {
        let mut args: Vec<Vec<u8>> = vec![b"MSET".to_vec()];
        for i in 0..5000 {
            args.push(format!("k{chunk}:{i}").into_bytes());
            args.push(value.clone().into_bytes());
        }
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        c.cmd(&refs);
    }
    c.cmd_str("CONFIG SET rdbcompression no");
    assert_eq!(
        c.cmd_str("BGSAVE"),
        Reply::simple("Background saving started")
    );
    s.signal(libc::SIGKILL);
    s.wait_exit(Duration::from_secs(5));
    assert_eq!(std::fs::read(dir.path().join("dump.rdb")).unwrap(), old);
    let s2 = start_on(dir.path(), "2", &[]);
    let mut c2 = s2.conn();
    assert_eq!(c2.cmd_str("DBSIZE").as_int(), 1);
}

/// Runs the server on `dir` expecting it to refuse to start; returns its output.
fn refuses_to_start(dir: &Path) -> String {
    let port = free_port().to_string();
    let d = dir.to_string_lossy().into_owned();
    let out = Command::new(libellule_bin())
        .args(["--port", &port, "--bind", "127.0.0.1", "--dir", &d])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut child = out;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(!st.success(), "exit status {st}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not stop on a bad file");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn corrupt_and_truncated_files_stop_the_start_naming_the_offset() {
    let dir = ScratchDir::new("corrupt");
    let mut s = start_on(dir.path(), "1", &[]);
    let mut c = s.conn();
    populate(&mut c);
    assert_eq!(c.cmd_str("SAVE"), Reply::ok());
    s.kill();
    let good = std::fs::read(dir.path().join("dump.rdb")).unwrap();
    let path = dir.path().join("dump.rdb");
    // Truncated in the middle, and just before the checksum.
    for cut in [good.len() / 2, good.len() - 3] {
        std::fs::write(&path, &good[..cut]).unwrap();
        let log = refuses_to_start(dir.path());
        assert!(log.contains(&path.to_string_lossy().to_string()), "{log}");
        assert!(log.contains("at offset"), "{log}");
        // Never overwritten.
        assert_eq!(std::fs::read(&path).unwrap(), &good[..cut]);
    }
    // A flipped byte in a value: the checksum (or the decoder) catches it.
    let mut bad = good.clone();
    let at = good.len() - 40;
    bad[at] ^= 0x5a;
    std::fs::write(&path, &bad).unwrap();
    let log = refuses_to_start(dir.path());
    assert!(log.contains("at offset"), "{log}");
    // A wrong signature.
    let mut bad = good.clone();
    bad[0] = b'X';
    std::fs::write(&path, &bad).unwrap();
    let log = refuses_to_start(dir.path());
    assert!(log.contains("at offset 0"), "{log}");
}

/// A tmpfs mounted for a test; unmounted (lazily) on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` on `dir`; `None` where mounting is refused (not root,
    /// or a container without CAP_SYS_ADMIN).
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn failed_save_is_reported_and_keeps_the_old_file() {
    let dir = ScratchDir::new("full");
    let d = dir.path_str();
    // A real full disk where a 2 MiB tmpfs can be mounted (root outside a restricted
    // container); otherwise writes beyond 64 KiB fail as a full disk would.
    let tmpfs = Tmpfs::mount(dir.path(), "2m");
    let s = if tmpfs.is_some() {
        eprintln!("full disk: a real 2 MiB tmpfs on {d}");
        Server::start(&["--dir", &d, "--io_threads", "2"])
    } else {
        eprintln!("full disk: mount refused, injected write error (LIBELLULE_FAIL_WRITE_AFTER)");
        Server::start_env(
            &["--dir", &d, "--io_threads", "2"],
            &[("LIBELLULE_FAIL_WRITE_AFTER", "65536")],
        )
    };
    let mut c = s.conn();
    c.cmd_str("SET a 1");
    assert_eq!(c.cmd_str("SAVE"), Reply::ok());
    let old = std::fs::read(dir.path().join("dump.rdb")).unwrap();
    // 3 MB: more than the tmpfs holds.
    c.cmd_str(&format!("SET big {}", "q".repeat(3_000_000)));
    c.cmd_str("CONFIG SET rdbcompression no");
    assert_eq!(c.cmd_str("SAVE"), Reply::err("ERR"));
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "err");
    assert_eq!(
        c.cmd_str("BGSAVE"),
        Reply::simple("Background saving started")
    );
    wait_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "err");
    assert_eq!(info_field(&mut c, "rdb_saves_failed"), "2");
    assert_eq!(std::fs::read(dir.path().join("dump.rdb")).unwrap(), old);
    let temps = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("temp-")
        })
        .count();
    assert_eq!(temps, 0, "temporary files are removed");
    assert!(s.log().contains("No space left on device"), "{}", s.log());
    // SHUTDOWN refuses to exit when its save fails.
    assert_eq!(
        c.cmd_str("SHUTDOWN SAVE"),
        Reply::err("ERR Errors trying to SHUTDOWN. Check logs.")
    );
    assert_eq!(c.cmd_str("PING"), Reply::simple("PONG"));
    // The server keeps serving, and saves again once the data fits.
    assert_eq!(c.cmd_str("SET after 1"), Reply::ok());
    assert_eq!(c.cmd_str("STRLEN big").as_int(), 3_000_000);
    assert_eq!(c.cmd_str("DEL big").as_int(), 1);
    assert_eq!(c.cmd_str("SAVE"), Reply::ok());
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    drop(s);
    drop(tmpfs);
}

#[test]
fn commands_shutdown_sigterm_and_schedule() {
    // Errors as Redis words them.
    let s = Server::start(&[]);
    let mut c = s.conn();
    assert_eq!(c.cmd_str("BGSAVE x"), Reply::err("ERR syntax error"));
    assert_eq!(
        c.cmd_str("SHUTDOWN SAVE NOSAVE"),
        Reply::err("ERR syntax error")
    );
    assert_eq!(
        c.cmd_str("SHUTDOWN ABORT NOW"),
        Reply::err("ERR syntax error")
    );
    assert_eq!(
        c.cmd_str("SHUTDOWN ABORT"),
        Reply::err("ERR No shutdown in progress.")
    );
    assert_eq!(
        c.cmd_str("LASTSAVE x"),
        Reply::err("ERR wrong number of arguments for 'lastsave' command")
    );
    c.cmd_str("MULTI");
    assert_eq!(
        c.cmd_str("SAVE"),
        Reply::err("ERR Command not allowed inside a transaction")
    );
    c.cmd_str("DISCARD");
    // BGSAVE SCHEDULE while a save runs.
    assert_eq!(
        c.cmd_str("CONFIG SET dbfilename x.rdb"),
        Reply::err("ERR CONFIG SET failed (possibly related to argument 'dbfilename') - can't set protected config")
    );
    assert_eq!(
        c.cmd_str("CONFIG SET snapshot_cron bad"),
        Reply::err("ERR CONFIG SET failed (possibly related to argument 'snapshot_cron') - a cron expression has 5 fields: minute hour day month weekday")
    );
    assert_eq!(c.cmd_str("CONFIG SET save \"\""), Reply::ok());

    // CONFIG SET dir/dbfilename (protected configs enabled) decide where SAVE writes.
    let dir = ScratchDir::new("cfg");
    let s = Server::start(&["--enable-protected-configs", "yes"]);
    let mut c = s.conn();
    c.cmd_str("SET k v");
    assert_eq!(
        c.cmd(&[b"CONFIG", b"SET", b"dir", dir.path_str().as_bytes()]),
        Reply::ok()
    );
    assert_eq!(c.cmd_str("CONFIG SET dbfilename other.rdb"), Reply::ok());
    assert_eq!(c.cmd_str("SAVE"), Reply::ok());
    assert!(dir.path().join("other.rdb").exists());

    // SHUTDOWN with save points configured saves; NOSAVE does not.
    let dir = ScratchDir::new("shutdown");
    let mut s = start_on(dir.path(), "2", &["--save", "3600 1"]);
    let mut c = s.conn();
    c.cmd_str("SET k v");
    c.send(&[b"SHUTDOWN"]);
    assert!(s.wait_exit(Duration::from_secs(10)).unwrap().success());
    assert!(dir.path().join("dump.rdb").exists());
    let mut s = start_on(dir.path(), "2", &["--save", "3600 1"]);
    let mut c = s.conn();
    assert_eq!(c.cmd_str("GET k"), Reply::bulk("v"));
    c.cmd_str("SET k2 v");
    c.send(&[b"SHUTDOWN", b"NOSAVE"]);
    assert!(s.wait_exit(Duration::from_secs(10)).unwrap().success());

    // SIGTERM saves when save points are configured.
    let mut s = start_on(dir.path(), "2", &["--save", "3600 1"]);
    let mut c = s.conn();
    assert_eq!(c.cmd_str("EXISTS k2").as_int(), 0);
    c.cmd_str("SET k3 v");
    s.signal(libc::SIGTERM);
    assert!(s.wait_exit(Duration::from_secs(10)).unwrap().success());
    let s = start_on(dir.path(), "1", &[]);
    let mut c = s.conn();
    assert_eq!(c.cmd_str("GET k3"), Reply::bulk("v"));

    // `--save "1 1"`: one change and a second later, a background save.
    let dir = ScratchDir::new("sched");
    let s = start_on(dir.path(), "2", &["--save", "1 1"]);
    let mut c = s.conn();
    c.cmd_str("SET a 1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut c, "rdb_changes_since_last_save") != "0" {
        assert!(Instant::now() < deadline, "the save point did not fire");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(dir.path().join("dump.rdb").exists());
    assert_eq!(info_field(&mut c, "rdb_saves_configured"), "1");
}

#[test]
fn data_commands_answer_loading_until_the_load_ends() {
    let dir = ScratchDir::new("loading");
    let mut s = start_on(dir.path(), "2", &[]);
    let mut c = s.conn();
    for chunk in 0..40 {
        let mut args: Vec<Vec<u8>> = vec![b"MSET".to_vec()];
        for i in 0..10_000 {
            args.push(format!("k{chunk}:{i}").into_bytes());
            args.push(b"v".to_vec());
        }
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        c.cmd(&refs);
    }
    assert_eq!(c.cmd_str("SAVE"), Reply::ok());
    s.kill();
    let s = Server::start(&["--dir", &dir.path_str(), "--io_threads", "2"]);
    let mut c = s.conn();
    let first = c.cmd_str("GET k0:0");
    let mut saw_loading = false;
    if first.is_error() {
        assert_eq!(
            first,
            Reply::err("LOADING Libellule is loading the dataset in memory")
        );
        saw_loading = true;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while info_field(&mut c, "loading") != "0" {
        saw_loading = true;
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("observed the loading state: {saw_loading}");
    assert_eq!(c.cmd_str("DBSIZE").as_int(), 400_000);
    assert_eq!(c.cmd_str("GET k39:9999"), Reply::bulk("v"));
}

/// Streams of every shape: entries with fields changing between entries (so the
/// listpack master entry and per-entry fields both appear), tombstones (XDEL), a
/// trimmed stream, an explicit max deleted ID (XSETID), consumer groups with
/// consumers, pending entries (PEL, delivery counts), a consumer with none, a group at
/// `$` with no consumer, an empty stream that keeps its group, many entries (several
/// listpack nodes), in db 0 and db 3.
fn populate_streams(c: &mut RawConn) {
    let mut lines: Vec<String> = vec![
        "XADD s1 1-1 a 1 b 2".into(),
        "XADD s1 1-2 a 3 b 4".into(),
        "XADD s1 2-0 c x".into(),
        "XADD s1 3-0 a 5 b 6".into(),
        "XADD s1 4-0 a 7 b 8".into(),
        "XDEL s1 1-2".into(),
        "XGROUP CREATE s1 g1 0".into(),
        "XGROUP CREATE s1 g2 $".into(),
        "XREADGROUP GROUP g1 alice COUNT 2 STREAMS s1 >".into(),
        "XREADGROUP GROUP g1 bob COUNT 1 STREAMS s1 >".into(),
        "XACK s1 g1 1-1".into(),
        "XCLAIM s1 g1 carol 0 2-0".into(),
        "XGROUP CREATECONSUMER s1 g2 idle".into(),
        "XADD empty 5-5 f v".into(),
        "XGROUP CREATE empty grp 0".into(),
        "XREADGROUP GROUP grp c1 STREAMS empty >".into(),
        "XDEL empty 5-5".into(),
        "XSETID empty 9-9 ENTRIESADDED 7 MAXDELETEDID 6-0".into(),
        "SELECT 3".into(),
        "XADD in3 * k v".into(),
        "SELECT 0".into(),
    ];
    for i in 0..700 {
        lines.push(format!(
            "XADD big {}-{} field{} {} common x",
            100 + i / 3,
            i % 3,
            i % 5,
            i
        ));
    }
    lines.push("XTRIM big MAXLEN 650".into());
    lines.push("XGROUP CREATE big gb 0 ENTRIESREAD 3".into());
    lines.push("XREADGROUP GROUP gb reader COUNT 120 STREAMS big >".into());
    for l in &lines {
        let r = c.cmd_str(l);
        assert!(!r.is_error(), "{l}: {r:?}");
    }
}

/// Everything a client can read of the streams: XRANGE, and XINFO STREAM FULL without
/// the radix tree's shape (`radix-tree-keys`/`-nodes` describe Redis's rax, which the
/// loading server rebuilds its own way).
fn stream_view(c: &mut RawConn) -> Vec<(String, Reply, Reply)> {
    let mut out = Vec::new();
    for (db, key) in [(0, "s1"), (0, "empty"), (0, "big"), (3, "in3")] {
        c.cmd_str(&format!("SELECT {db}"));
        let range = c.cmd_str(&format!("XRANGE {key} - +"));
        let full = match c.cmd_str(&format!("XINFO STREAM {key} FULL COUNT 0")) {
            Reply::Array(Some(items)) => {
                let kept: Vec<Reply> = items
                    .chunks(2)
                    .filter(|p| !String::from_utf8_lossy(p[0].as_bytes()).starts_with("radix-tree"))
                    .flat_map(|p| p.to_vec())
                    .collect();
                Reply::array(kept)
            }
            other => panic!("XINFO STREAM {key} FULL: {other:?}"),
        };
        out.push((key.to_string(), range, full));
    }
    c.cmd_str("SELECT 0");
    out
}

#[test]
fn streams_through_a_snapshot_file_both_ways_with_redis_server() {
    if !require_tool("redis-server") {
        return;
    }
    // redis-server SAVE -> Libellule loads.
    let r = RedisServer::start().expect("redis-server");
    let mut rc = r.conn();
    populate_streams(&mut rc);
    let expected = stream_view(&mut rc);
    assert_eq!(rc.cmd_str("SAVE"), Reply::ok());
    let dir = ScratchDir::new("streams-from-redis");
    std::fs::copy(r.dir().join("dump.rdb"), dir.path().join("dump.rdb")).unwrap();
    let s = start_on(dir.path(), "2", &[]);
    let mut c = s.conn();
    assert_eq!(
        stream_view(&mut c),
        expected,
        "Libellule loading redis-server's file"
    );
    // Libellule SAVE (after more changes) -> redis-server loads.
    for l in [
        "XADD s1 5-0 a 9 b 10",
        "XREADGROUP GROUP g2 idle STREAMS s1 >",
        "XACK s1 g1 3-0",
    ] {
        let r = c.cmd_str(l);
        assert!(!r.is_error(), "{l}: {r:?}");
    }
    let expected = stream_view(&mut c);
    assert_eq!(c.cmd_str("SAVE"), Reply::ok());
    let dir2 = ScratchDir::new("streams-to-redis");
    std::fs::copy(dir.path().join("dump.rdb"), dir2.path().join("dump.rdb")).unwrap();
    let d2 = dir2.path_str();
    let r2 = RedisServer::start_with(&["--dir", &d2]).expect("redis-server");
    let mut rc2 = r2.conn();
    assert_eq!(
        stream_view(&mut rc2),
        expected,
        "redis-server loading Libellule's file"
    );
    assert!(!r2.log().contains("Short read"), "{}", r2.log());
}

/// The keys of a snapshot file (db, key, value), read with the server's own parser.
fn snapshot_keys(path: &Path) -> Vec<(u64, Vec<u8>, libellule::storage::Value)> {
    use libellule::persistence::file::{parse_header, parse_item, Item};
    use libellule::storage::rdb::{LoadLimits, Reader};
    let bytes = std::fs::read(path).unwrap();
    let mut r = Reader::new(&bytes);
    parse_header(&mut r).unwrap();
    let lim = LoadLimits::default();
    let (mut db, mut out) = (0, Vec::new());
    loop {
        match parse_item(&mut r, &lim).unwrap() {
            Item::SelectDb(i) => db = i,
            Item::Key { key, value, .. } => out.push((db, key, value)),
            Item::Eof => return out,
            _ => {}
        }
    }
}

/// Writers run cross-shard MSETs (each writes one generation into every key of its
/// group, keys on all three shards) and cross-shard MULTI/EXEC blocks, pipelined,
/// while BGSAVEs run back to back: in every snapshot, every group has all its keys
/// at one generation (the cut never falls between the shards of one command).
#[test]
fn a_snapshot_never_splits_a_cross_shard_command() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = ScratchDir::new("cut-atomic");
    let s = start_on(dir.path(), "3", &[]);
    let key_on = |shard: usize, prefix: &str| -> String {
        (0..)
            .map(|i| format!("{prefix}{i}"))
            .find(|k| libellule::shard::key_shard(k.as_bytes(), 3) == shard)
            .unwrap()
    };
    // Groups 0..3 use MSET, group 3 MULTI/EXEC; two keys per shard each.
    let groups: Vec<Vec<String>> = (0..4)
        .map(|g| {
            (0..6)
                .map(|j| key_on(j % 3, &format!("g{g}:{}:", j / 3)))
                .collect()
        })
        .collect();
    // BGSAVE inside a transaction: EXEC already holds every shard's whole-shard lock
    // (it contains a keyless command), so the cut must not wait for them (a deadlock).
    let mut t = s.conn();
    t.set_read_timeout(Duration::from_secs(10));
    assert_eq!(t.cmd_str("MULTI"), Reply::ok());
    assert_eq!(t.cmd_str("SET in-exec 1"), Reply::simple("QUEUED"));
    assert_eq!(t.cmd_str("BGSAVE"), Reply::simple("QUEUED"));
    assert_eq!(t.cmd_str("SET after-cut 1"), Reply::simple("QUEUED"));
    assert_eq!(
        t.cmd_str("EXEC"),
        Reply::array(vec![
            Reply::ok(),
            Reply::simple("Background saving started"),
            Reply::ok()
        ])
    );
    wait_bgsave(&mut t);
    let names: Vec<Vec<u8>> = snapshot_keys(&dir.path().join("dump.rdb"))
        .into_iter()
        .map(|k| k.1)
        .collect();
    assert_eq!(names, vec![b"in-exec".to_vec()]);
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for (g, keys) in groups.iter().enumerate() {
        let (keys, stop, port) = (keys.clone(), stop.clone(), s.port);
        writers.push(std::thread::spawn(move || {
            let mut c = RawConn::connect(port);
            let mut gen = 0u64;
            let depth = 16;
            let mut in_flight = 0;
            while !stop.load(Ordering::Relaxed) {
                gen += 1;
                let v = format!("{gen}");
                if g < 3 {
                    let mut args: Vec<&[u8]> = vec![b"MSET"];
                    for k in &keys {
                        args.push(k.as_bytes());
                        args.push(v.as_bytes());
                    }
                    c.send(&args);
                    in_flight += 1;
                } else {
                    c.send(&[b"MULTI"]);
                    for k in &keys {
                        c.send(&[b"SET", k.as_bytes(), v.as_bytes()]);
                    }
                    c.send(&[b"EXEC"]);
                    in_flight += keys.len() + 2;
                }
                while in_flight > depth {
                    let r = c.read_reply();
                    assert!(!r.is_error(), "{r:?}");
                    in_flight -= 1;
                }
            }
            while in_flight > 0 {
                c.read_reply();
                in_flight -= 1;
            }
            gen
        }));
    }
    let mut c = s.conn();
    let snaps = 25;
    for i in 0..snaps {
        assert_eq!(
            c.cmd_str("BGSAVE"),
            Reply::simple("Background saving started")
        );
        wait_bgsave(&mut c);
        assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
        std::fs::copy(
            dir.path().join("dump.rdb"),
            dir.path().join(format!("snap-{i}.rdb")),
        )
        .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let gens: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(
        gens.iter().all(|&g| g > 50),
        "writers made too little progress: {gens:?}"
    );
    let mut split = Vec::new();
    let mut seen = 0;
    for i in 0..snaps {
        let keys = snapshot_keys(&dir.path().join(format!("snap-{i}.rdb")));
        for (g, group) in groups.iter().enumerate() {
            let vals: Vec<_> = group
                .iter()
                .map(|k| {
                    keys.iter()
                        .find(|(_, kk, _)| kk == k.as_bytes())
                        .map(|x| &x.2)
                })
                .collect();
            if vals.iter().all(|v| v.is_none()) {
                continue;
            }
            seen += 1;
            if vals.iter().any(|v| *v != vals[0]) {
                split.push(format!("snapshot {i}, group {g}: {vals:?}"));
            }
        }
    }
    assert!(
        split.is_empty(),
        "commands split by the cut:\n{}",
        split.join("\n")
    );
    assert!(
        seen >= snaps * 3,
        "too few groups in the snapshots ({seen})"
    );
}
