//! The binary's command line (flags, flag files) and the stock Redis tools
//! against it: redis-cli (plain and `--pipe`), nc with inline commands,
//! redis-benchmark.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

fn libellule(args: &[&str]) -> ProcOutput {
    let mut cmd = Command::new(libellule_bin());
    cmd.args(args);
    let dir = ScratchDir::new("cli");
    cmd.current_dir(dir.path());
    run_with_timeout(cmd, b"", Duration::from_secs(20))
}

// ---------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------

#[test]
fn version_flag_prints_a_version_and_exits_0() {
    let out = libellule(&["--version"]);
    assert!(out.status.success(), "--version failed:\n{}", out.all());
    let text = format!("{}{}", out.stdout_str(), out.stderr_str());
    let has_version = text
        .as_bytes()
        .windows(3)
        .any(|w| w[0].is_ascii_digit() && w[1] == b'.' && w[2].is_ascii_digit());
    assert!(
        has_version,
        "--version printed no version number:\n{}",
        out.all()
    );
}

#[test]
fn unknown_flag_exits_nonzero_naming_the_flag() {
    let port = free_port().to_string();
    let out = libellule(&["--port", &port, "--no-such-flag-xyz", "1"]);
    assert!(
        !out.status.success(),
        "an unknown flag was accepted:\n{}",
        out.all()
    );
    let text = format!("{}{}", out.stdout_str(), out.stderr_str());
    assert!(
        text.contains("no-such-flag-xyz") || text.contains("no_such_flag_xyz"),
        "the error does not name the flag:\n{}",
        out.all()
    );
}

#[test]
fn bad_flag_value_exits_nonzero() {
    let out = libellule(&["--port", "not-a-number"]);
    assert!(
        !out.status.success(),
        "--port not-a-number was accepted:\n{}",
        out.all()
    );
}

fn set_get_roundtrip(server: &ChildServer) {
    let mut c = server.conn();
    assert_eq!(c.cmd(&[b"SET", b"k", b"v"]), Reply::ok());
    assert_eq!(c.cmd(&[b"GET", b"k"]), Reply::bulk("v"));
}

#[test]
fn empty_save_and_cache_mode_start() {
    let server = Server::start(&["--save", "", "--cache_mode", "true"]);
    set_get_roundtrip(&server);
}

#[test]
fn full_seed_command_line_starts_and_serves() {
    let dir = ScratchDir::new("seed");
    let port = free_port();
    let port_s = port.to_string();
    let dir_s = dir.path_str();
    let server = Server::start_exact(
        port,
        &[
            "--port",
            &port_s,
            "--bind",
            "127.0.0.1",
            "--maxmemory",
            "2GB",
            "--cache_mode",
            "true",
            "--hz",
            "10",
            "--tcp-backlog",
            "512",
            "--io_threads",
            "4",
            "--dbfilename",
            "dump.rdb",
            "--dir",
            &dir_s,
            "--save",
            "",
            "--prometheus_port",
            "0",
            "--log_level",
            "info",
            "--requirepass",
            "",
        ],
    );
    set_get_roundtrip(&server);
    let mut c = server.conn();
    let mut pairs: Vec<Vec<u8>> = vec![b"MSET".to_vec()];
    for i in 0..64 {
        pairs.push(format!("seed:{i}").into_bytes());
        pairs.push(format!("{i}").into_bytes());
    }
    let refs: Vec<&[u8]> = pairs.iter().map(|p| p.as_slice()).collect();
    assert_eq!(c.cmd(&refs), Reply::ok());
    assert_eq!(c.cmd(&[b"DBSIZE"]), Reply::Int(65));
}

#[test]
fn equals_and_dash_flag_spellings() {
    let server = Server::start(&[
        "--io-threads=2",
        "--hz=10",
        "--cache-mode=true",
        "--dbnum=16",
    ]);
    set_get_roundtrip(&server);
    drop(server);
    let server = Server::start(&["--io_threads=3", "--tcp_backlog=128", "--log-level=warn"]);
    set_get_roundtrip(&server);
}

#[test]
fn dbnum_limits_select() {
    let server = Server::start(&["--dbnum", "4"]);
    let mut c = server.conn();
    assert_eq!(c.cmd(&[b"SELECT", b"3"]), Reply::ok());
    assert_eq!(
        c.cmd(&[b"SELECT", b"4"]),
        Reply::err("ERR DB index is out of range")
    );
}

#[test]
fn flagfile_is_read() {
    let dir = ScratchDir::new("flagfile");
    let port = free_port();
    let flagfile = dir.path().join("libellule.flags");
    std::fs::write(
        &flagfile,
        format!(
            "--port={port}\n--bind=127.0.0.1\n--dir={}\n--io_threads=2\n--requirepass=fromfile\n",
            dir.path_str()
        ),
    )
    .unwrap();
    let ff = flagfile.to_string_lossy().into_owned();
    let server = Server::start_exact(port, &["--flagfile", &ff]);
    let mut c = server.conn();
    assert!(c
        .cmd(&[b"GET", b"a"])
        .error_text()
        .unwrap_or("")
        .starts_with("NOAUTH"));
    assert_eq!(c.cmd(&[b"AUTH", b"fromfile"]), Reply::ok());
    assert_eq!(c.cmd(&[b"SET", b"a", b"1"]), Reply::ok());
}

/// The flag file shipped for systemd parses (with port and dir overridden
/// on the command line after it, so the test needs no /var/lib).
#[test]
fn shipped_systemd_flagfile_parses() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/libellule.flags");
    let text = std::fs::read_to_string(shipped).expect("systemd/libellule.flags");
    let dir = ScratchDir::new("shipped");
    let port = free_port();
    let rewritten: String = text
        .lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with("--port") {
                format!("--port={port}")
            } else if t.starts_with("--dir") {
                format!("--dir={}", dir.path_str())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let flagfile = dir.path().join("test.flags");
    std::fs::write(&flagfile, rewritten).unwrap();
    let ff = flagfile.to_string_lossy().into_owned();
    let server = Server::start_exact(port, &["--flagfile", &ff]);
    set_get_roundtrip(&server);
}

// ---------------------------------------------------------------------------
// redis-cli, nc, redis-benchmark
// ---------------------------------------------------------------------------

fn redis_cli(port: u16, args: &[&str], stdin: &[u8]) -> ProcOutput {
    let mut cmd = Command::new("redis-cli");
    cmd.arg("-h")
        .arg("127.0.0.1")
        .arg("-p")
        .arg(port.to_string());
    cmd.args(args);
    run_with_timeout(cmd, stdin, Duration::from_secs(120))
}

#[test]
fn redis_cli_commands() {
    if !require_tool("redis-cli") {
        return;
    }
    let server = Server::start(&["--io_threads", "2"]);
    let out = redis_cli(server.port, &["set", "a", "b"], b"");
    assert!(out.status.success(), "{}", out.all());
    assert_eq!(out.stdout_str().trim(), "OK");
    let out = redis_cli(server.port, &["get", "a"], b"");
    assert_eq!(out.stdout_str().trim(), "b");
    let out = redis_cli(server.port, &["incrby", "n", "41"], b"");
    assert_eq!(out.stdout_str().trim(), "41");
    let out = redis_cli(server.port, &["get", "nosuch"], b"");
    assert_eq!(out.stdout_str().trim(), "");
    let out = redis_cli(server.port, &["mget", "a", "nosuch", "n"], b"");
    assert_eq!(out.stdout_str(), "b\n\n41\n");
    let out = redis_cli(server.port, &["--no-raw", "mget", "a", "nosuch"], b"");
    assert_eq!(out.stdout_str(), "1) \"b\"\n2) (nil)\n");
    let out = redis_cli(server.port, &["-3", "--no-raw", "get", "nosuch"], b"");
    assert!(out.status.success(), "{}", out.all());
    assert_eq!(out.stdout_str().trim(), "(nil)");
    // Commands on stdin, one per line.
    let out = redis_cli(server.port, &[], b"SET x 1\nINCR x\nGET x\nDBSIZE\n");
    assert_eq!(out.stdout_str(), "OK\n2\n2\n3\n");
    // An error reply is printed as such.
    let out = redis_cli(server.port, &["incr", "a"], b"");
    assert!(
        out.stdout_str()
            .contains("ERR value is not an integer or out of range"),
        "{}",
        out.all()
    );
}

#[test]
fn redis_cli_pipe_mode() {
    if !require_tool("redis-cli") {
        return;
    }
    let server = Server::start(&["--io_threads", "3"]);
    let n = 20_000;
    let mut proto = Vec::new();
    for i in 0..n {
        let k = format!("pipe:{i}");
        let v = format!("value {i} \r\n binary \x00");
        proto.extend_from_slice(&encode_command(&[b"SET", k.as_bytes(), v.as_bytes()]));
    }
    let out = redis_cli(server.port, &["--pipe"], &proto);
    assert!(out.status.success(), "{}", out.all());
    assert!(
        out.stdout_str()
            .contains(&format!("errors: 0, replies: {n}")),
        "{}",
        out.all()
    );
    let mut c = server.conn();
    assert_eq!(c.cmd(&[b"DBSIZE"]), Reply::Int(n));
    assert_eq!(
        c.cmd(&[b"GET", b"pipe:12345"]),
        Reply::bulk("value 12345 \r\n binary \x00")
    );
}

#[test]
fn nc_inline_commands() {
    if !require_tool("nc") {
        return;
    }
    let server = Server::start(&[]);
    let mut cmd = Command::new("nc");
    // -N: shut the socket down after EOF on stdin; -w: give up when idle.
    cmd.args(["-N", "-w", "10", "127.0.0.1", &server.port.to_string()]);
    let out = run_with_timeout(
        cmd,
        b"PING\r\nSET a \"b c\"\r\nGET a\r\nDEL a\r\n",
        Duration::from_secs(30),
    );
    assert_eq!(
        out.stdout_str(),
        "+PONG\r\n+OK\r\n$3\r\nb c\r\n:1\r\n",
        "{}",
        out.all()
    );
}

#[test]
fn redis_benchmark_smoke() {
    if !require_tool("redis-benchmark") {
        return;
    }
    let server = Server::start(&["--io_threads", "2"]);
    let mut cmd = Command::new("redis-benchmark");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &server.port.to_string(),
        "-c",
        "10",
        "-n",
        "5000",
        "-r",
        "1000",
        "-P",
        "8",
        "-t",
        "set,get,incr,mset",
        "--csv",
    ]);
    let out = run_with_timeout(cmd, b"", Duration::from_secs(180));
    assert!(out.status.success(), "{}", out.all());
    let csv = out.stdout_str();
    for test in ["\"SET\"", "\"GET\"", "\"INCR\"", "\"MSET (10 keys)\""] {
        assert!(csv.contains(test), "no {test} row:\n{}", out.all());
    }
    let mut c = server.conn();
    assert!(c.cmd(&[b"DBSIZE"]).as_int() > 0);
}

#[test]
fn a_second_server_on_a_busy_port_fails_to_start() {
    let first = Server::start(&["--io_threads", "2"]);
    let port = first.port.to_string();
    let out = libellule(&["--port", &port, "--bind", "127.0.0.1", "--io_threads", "2"]);
    assert!(
        !out.status.success(),
        "a second server started on a busy port"
    );
    assert!(
        out.stderr_str().contains("Address already in use"),
        "stderr: {}",
        out.stderr_str()
    );
    // The first one still serves every connection.
    for _ in 0..8 {
        assert_eq!(first.conn().cmd_str("PING"), Reply::simple("PONG"));
    }
}
