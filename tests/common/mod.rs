//! Helpers shared by the integration tests.
//!
//! * [`Server`] spawns the Libellule binary built by cargo for this test run on
//!   a free port and kills it on drop.
//! * [`RedisServer`] spawns the reference `redis-server` the same way.
//! * [`RawConn`] is a minimal blocking RESP client that returns replies as a
//!   [`Reply`] tree together with their exact bytes, so tests can compare
//!   servers byte for byte.
//! * [`redis_conn`] opens a `redis` crate connection.
//!
//! Every test module includes this file with `mod common;`, and not every
//! module uses every helper.
#![allow(dead_code)]

pub mod diff;

use std::collections::HashSet;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a server may take to answer its first PING.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// Default read timeout of a [`RawConn`]: generous, the CI machine is small
/// and busy.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Path of the Libellule binary that cargo built for this test run.
pub fn libellule_bin() -> &'static str {
    env!("CARGO_BIN_EXE_libellule")
}

// ---------------------------------------------------------------------------
// Ports and scratch directories
// ---------------------------------------------------------------------------

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
static SCRATCH_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A TCP port on 127.0.0.1 that was free a moment ago and that this test
/// process has not handed out before.
///
/// There is still a window between this check and the server's bind (another
/// process may take the port); [`Server::start`] retries with a new port when
/// the server fails with "address in use".
pub fn free_port() -> u16 {
    let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let set = guard.get_or_insert_with(HashSet::new);
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        drop(listener);
        if set.insert(port) {
            return port;
        }
    }
}

/// A fresh, empty directory under the system temp dir, removed by
/// [`ScratchDir`]'s drop.
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn new(tag: &str) -> ScratchDir {
        let n = SCRATCH_SEQ.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "libellule-test-{}-{}-{}",
            tag,
            std::process::id(),
            n
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        ScratchDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn path_str(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// Spawning servers
// ---------------------------------------------------------------------------

/// A spawned server process (Libellule or redis-server). Killed on drop.
pub struct ChildServer {
    name: &'static str,
    pub port: u16,
    child: Option<Child>,
    log_path: PathBuf,
    args: Vec<String>,
    /// Scratch directory (working dir and `--dir`); removed on drop.
    dir: ScratchDir,
    /// Don't print the output on drop (already reported).
    quiet: bool,
}

/// The result of waiting for a server to come up.
enum Startup {
    Ready,
    /// The process exited; the String is its captured output.
    Exited(String),
}

impl ChildServer {
    /// Spawns `program args...` in `dir` with stdout and stderr captured to a
    /// log file, and waits until `port` answers PING.
    fn spawn(
        name: &'static str,
        program: &str,
        args: Vec<String>,
        port: u16,
        dir: ScratchDir,
    ) -> Result<ChildServer, String> {
        Self::spawn_env(name, program, args, port, dir, &[])
    }

    /// [`ChildServer::spawn`] with extra environment variables.
    fn spawn_env(
        name: &'static str,
        program: &str,
        args: Vec<String>,
        port: u16,
        dir: ScratchDir,
        envs: &[(&str, &str)],
    ) -> Result<ChildServer, String> {
        let log_path = dir.path().join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).expect("create server log");
        let log2 = log.try_clone().expect("clone log handle");
        let child = Command::new(program)
            .args(&args)
            // Never talk to a service manager the test runner itself may run under.
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .envs(envs.iter().copied())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => panic!("cannot spawn {program}: {e}"),
        };
        let mut server = ChildServer {
            name,
            port,
            child: Some(child),
            log_path,
            args,
            dir,
            quiet: false,
        };
        match server.wait_ready(STARTUP_TIMEOUT) {
            Startup::Ready => Ok(server),
            Startup::Exited(log) => {
                server.quiet = true;
                Err(log)
            }
        }
    }

    fn wait_ready(&mut self, timeout: Duration) -> Startup {
        let deadline = Instant::now() + timeout;
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Startup::Exited(format!(
                        "{} exited during startup with {status}; output:\n{}",
                        self.name,
                        self.log()
                    ));
                }
            }
            if ping_once(&addr) {
                return Startup::Ready;
            }
            if Instant::now() >= deadline {
                let log = self.log();
                self.kill();
                self.quiet = true;
                panic!(
                    "{} on port {} did not answer PING within {:?} (args {:?}); output:\n{}",
                    self.name, self.port, timeout, self.args, log
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Everything the server printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Sends signal `sig` (e.g. `libc::SIGTERM`) to the process, if it runs.
    pub fn signal(&self, sig: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: plain syscall on our own child.
            unsafe { libc::kill(pid as libc::pid_t, sig) };
        }
    }

    /// Waits up to `timeout` for the process to exit; its status, or None if it still
    /// runs (or was already reaped).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                self.quiet = true;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the process has exited (e.g. crashed).
    pub fn has_exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills (SIGKILL) and reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A new raw RESP connection.
    pub fn conn(&self) -> RawConn {
        RawConn::connect(self.port)
    }

    /// A new `redis` crate connection.
    pub fn redis(&self) -> redis::Connection {
        redis_conn(self.port)
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let crashed = self.has_exited();
        self.kill();
        // Print the output of a crashed server, or Libellule's on a failure
        // (redis-server's startup banner is just noise).
        if !self.quiet && (crashed || (std::thread::panicking() && self.name == "libellule")) {
            let log = self.log();
            let tail: String = {
                let start = log.len().saturating_sub(8000);
                let mut s = start;
                while !log.is_char_boundary(s) {
                    s += 1;
                }
                log[s..].to_string()
            };
            if !tail.trim().is_empty() || crashed {
                eprintln!(
                    "---- {} (port {}, args {:?}){} output (tail) ----\n{}\n---- end ----",
                    self.name,
                    self.port,
                    self.args,
                    if crashed { " had exited;" } else { "" },
                    tail
                );
            }
        }
    }
}

/// One connect + PING round trip; true if the answer is `+PONG` (or
/// `-NOAUTH`, which a server started with a password gives to PING).
fn ping_once(addr: &SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    while !buf.ends_with(b"\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    buf == b"+PONG\r\n" || buf.starts_with(b"-NOAUTH")
}

fn looks_like_addr_in_use(log: &str) -> bool {
    let l = log.to_ascii_lowercase();
    l.contains("address already in use") || l.contains("addrinuse") || l.contains("os error 98")
}

/// A running Libellule server. Derefs to [`ChildServer`].
pub struct Server {
    inner: ChildServer,
}

impl Server {
    /// Starts Libellule with `--port <free> --bind 127.0.0.1 --dir <scratch>`
    /// followed by `args`, and waits until it answers PING.
    pub fn start(args: &[&str]) -> Server {
        Server::start_env(args, &[])
    }

    /// [`Server::start`] with extra environment variables for the server process.
    pub fn start_env(args: &[&str], envs: &[(&str, &str)]) -> Server {
        for attempt in 0..4 {
            let port = free_port();
            let dir = ScratchDir::new("libellule");
            let mut full: Vec<String> = vec![
                "--port".into(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--dir".into(),
                dir.path_str(),
            ];
            full.extend(args.iter().map(|s| s.to_string()));
            match ChildServer::spawn_env("libellule", libellule_bin(), full, port, dir, envs) {
                Ok(inner) => return Server { inner },
                Err(log) if looks_like_addr_in_use(&log) && attempt < 3 => continue,
                Err(log) => panic!("libellule failed to start: {log}"),
            }
        }
        unreachable!()
    }

    /// Starts Libellule with exactly `args` (the caller passes `--port port`
    /// itself) and waits until `port` answers PING. The working directory is a
    /// fresh scratch directory.
    pub fn start_exact(port: u16, args: &[&str]) -> Server {
        let dir = ScratchDir::new("libellule");
        let full = args.iter().map(|s| s.to_string()).collect();
        match ChildServer::spawn("libellule", libellule_bin(), full, port, dir) {
            Ok(inner) => Server { inner },
            Err(log) => panic!("libellule failed to start: {log}"),
        }
    }
}

impl std::ops::Deref for Server {
    type Target = ChildServer;
    fn deref(&self) -> &ChildServer {
        &self.inner
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut ChildServer {
        &mut self.inner
    }
}

/// True when running under CI (env `CI` set to anything but "" / "0" / "false").
pub fn in_ci() -> bool {
    match std::env::var("CI") {
        Ok(v) => !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false")),
        Err(_) => false,
    }
}

/// Whether `program` can be found on PATH.
pub fn on_path(program: &str) -> bool {
    let Some(paths) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&paths).any(|dir| {
        let p = dir.join(program);
        p.is_file()
            && std::fs::metadata(&p)
                .map(|m| {
                    use std::os::unix::fs::PermissionsExt;
                    m.permissions().mode() & 0o111 != 0
                })
                .unwrap_or(false)
    })
}

/// Returns false (after printing why) when an external tool is missing and the
/// test should be skipped; panics instead under CI, where `.ci/run` installs
/// every tool the tests need.
pub fn require_tool(program: &str) -> bool {
    if on_path(program) {
        return true;
    }
    if in_ci() {
        panic!("`{program}` is not on PATH, and CI is set: .ci/run should have installed it");
    }
    eprintln!("SKIPPED: `{program}` is not on PATH (install redis-server / redis-tools / netcat-openbsd); skipping this test");
    false
}

/// A running reference `redis-server`. Derefs to [`ChildServer`].
pub struct RedisServer {
    inner: ChildServer,
}

impl RedisServer {
    /// `redis-server --port P --save '' --appendonly no --daemonize no`, or
    /// `None` (with a message) when redis-server is not installed and CI is
    /// unset. Under CI a missing redis-server is a failure.
    pub fn start() -> Option<RedisServer> {
        Self::start_with(&[])
    }

    /// Like [`RedisServer::start`], with extra arguments appended (e.g.
    /// `["--requirepass", "secret"]`).
    pub fn start_with(extra: &[&str]) -> Option<RedisServer> {
        if !require_tool("redis-server") {
            return None;
        }
        for attempt in 0..4 {
            let port = free_port();
            let dir = ScratchDir::new("redis");
            let mut args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                &dir.path_str(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.extend(extra.iter().map(|s| s.to_string()));
            match ChildServer::spawn("redis-server", "redis-server", args, port, dir) {
                Ok(inner) => return Some(RedisServer { inner }),
                Err(log) if looks_like_addr_in_use(&log) && attempt < 3 => continue,
                Err(log) => panic!("redis-server failed to start: {log}"),
            }
        }
        unreachable!()
    }
}

impl std::ops::Deref for RedisServer {
    type Target = ChildServer;
    fn deref(&self) -> &ChildServer {
        &self.inner
    }
}

impl std::ops::DerefMut for RedisServer {
    fn deref_mut(&mut self) -> &mut ChildServer {
        &mut self.inner
    }
}

// ---------------------------------------------------------------------------
// redis crate
// ---------------------------------------------------------------------------

/// A `redis` crate connection to 127.0.0.1:`port` with generous timeouts.
pub fn redis_conn(port: u16) -> redis::Connection {
    redis_conn_url(&format!("redis://127.0.0.1:{port}/"))
}

/// A `redis` crate connection for a full URL (e.g. with a password).
pub fn redis_conn_url(url: &str) -> redis::Connection {
    let client = redis::Client::open(url).expect("redis::Client::open");
    let conn = client
        .get_connection_with_timeout(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    conn.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    conn.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    conn
}

// ---------------------------------------------------------------------------
// RESP replies
// ---------------------------------------------------------------------------

/// A parsed RESP2/RESP3 reply. Textual types keep the exact bytes sent.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reply {
    /// `+...`
    Simple(String),
    /// `-...` (and RESP3 blob errors `!`)
    Error(String),
    /// `:...`
    Int(i64),
    /// `$...`; `None` is the RESP2 null bulk `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*...`; `None` is the RESP2 null array `*-1`.
    Array(Option<Vec<Reply>>),
    /// RESP3 `%`
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `~`
    Set(Vec<Reply>),
    /// RESP3 `,` (the text as sent, e.g. "1.5", "inf")
    Double(String),
    /// RESP3 `#`
    Bool(bool),
    /// RESP3 `_`
    Null,
    /// RESP3 `>`
    Push(Vec<Reply>),
    /// RESP3 `=`: (format, text)
    Verbatim(String, Vec<u8>),
    /// RESP3 `(` (the digits as sent)
    BigNumber(String),
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Simple("OK".into())
    }
    pub fn simple(s: &str) -> Reply {
        Reply::Simple(s.into())
    }
    pub fn err(s: &str) -> Reply {
        Reply::Error(s.into())
    }
    pub fn bulk(b: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(Some(b.as_ref().to_vec()))
    }
    pub fn nil() -> Reply {
        Reply::Bulk(None)
    }
    pub fn array(items: Vec<Reply>) -> Reply {
        Reply::Array(Some(items))
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// The error text, if this is an error.
    pub fn error_text(&self) -> Option<&str> {
        match self {
            Reply::Error(s) => Some(s),
            _ => None,
        }
    }

    /// Integer value (panics otherwise).
    pub fn as_int(&self) -> i64 {
        match self {
            Reply::Int(i) => *i,
            other => panic!("expected an integer reply, got {other:?}"),
        }
    }

    /// Bulk or simple string bytes (panics otherwise).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Reply::Bulk(Some(b)) => b,
            Reply::Simple(s) => s.as_bytes(),
            Reply::Verbatim(_, b) => b,
            other => panic!("expected a string reply, got {other:?}"),
        }
    }

    /// The bytes of a bulk or simple string as text (lossy).
    pub fn as_text(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }

    /// Array/set/push elements (panics otherwise).
    pub fn as_array(&self) -> &[Reply] {
        match self {
            Reply::Array(Some(v)) | Reply::Set(v) | Reply::Push(v) => v,
            other => panic!("expected an array reply, got {other:?}"),
        }
    }

    /// A short name of the reply's type, for type-only comparisons.
    pub fn kind(&self) -> &'static str {
        match self {
            Reply::Simple(_) => "simple",
            Reply::Error(_) => "error",
            Reply::Int(_) => "int",
            Reply::Bulk(Some(_)) => "bulk",
            Reply::Bulk(None) => "nil-bulk",
            Reply::Array(Some(_)) => "array",
            Reply::Array(None) => "nil-array",
            Reply::Map(_) => "map",
            Reply::Set(_) => "set",
            Reply::Double(_) => "double",
            Reply::Bool(_) => "bool",
            Reply::Null => "null",
            Reply::Push(_) => "push",
            Reply::Verbatim(_, _) => "verbatim",
            Reply::BigNumber(_) => "bignumber",
        }
    }
}

/// Writes bytes as a readable, escaped string literal.
pub fn escape_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() + 2);
    s.push('"');
    for &c in b.iter().take(200) {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    if b.len() > 200 {
        s.push_str(&format!("...({} bytes)", b.len()));
    }
    s.push('"');
    s
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Simple(s) => write!(f, "+{s}"),
            Reply::Error(s) => write!(f, "-{s}"),
            Reply::Int(i) => write!(f, ":{i}"),
            Reply::Bulk(Some(b)) => write!(f, "{}", escape_bytes(b)),
            Reply::Bulk(None) => write!(f, "(nil bulk)"),
            Reply::Array(None) => write!(f, "(nil array)"),
            Reply::Array(Some(v)) => f.debug_list().entries(v).finish(),
            Reply::Map(m) => {
                write!(f, "%")?;
                f.debug_map()
                    .entries(m.iter().map(|(k, v)| (k, v)))
                    .finish()
            }
            Reply::Set(v) => {
                write!(f, "~")?;
                f.debug_set().entries(v).finish()
            }
            Reply::Double(d) => write!(f, ",{d}"),
            Reply::Bool(b) => write!(f, "#{}", if *b { 't' } else { 'f' }),
            Reply::Null => write!(f, "(null)"),
            Reply::Push(v) => {
                write!(f, ">")?;
                f.debug_list().entries(v).finish()
            }
            Reply::Verbatim(fmt_, b) => write!(f, "={fmt_}:{}", escape_bytes(b)),
            Reply::BigNumber(n) => write!(f, "({n}"),
        }
    }
}

/// Parsing outcome for a prefix of a byte buffer.
pub enum Parse {
    /// A complete reply and the number of bytes it took.
    Done(Reply, usize),
    /// More bytes are needed.
    Incomplete,
    /// The bytes are not valid RESP.
    Invalid(String),
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    if from >= buf.len() {
        return None;
    }
    buf[from..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| from + p)
}

fn parse_line(buf: &[u8], pos: usize) -> Result<Option<(&[u8], usize)>, String> {
    match find_crlf(buf, pos) {
        Some(end) => Ok(Some((&buf[pos..end], end + 2))),
        None => {
            if buf.len() - pos > 1 << 20 {
                Err("line longer than 1 MiB without CRLF".into())
            } else {
                Ok(None)
            }
        }
    }
}

fn parse_i64(line: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| format!("bad integer {}", escape_bytes(line)))
}

/// Parses one RESP2/RESP3 reply from the start of `buf`.
pub fn parse_reply(buf: &[u8]) -> Parse {
    match parse_at(buf, 0) {
        Ok(Some((r, n))) => Parse::Done(r, n),
        Ok(None) => Parse::Incomplete,
        Err(e) => Parse::Invalid(e),
    }
}

type ParseResult = Result<Option<(Reply, usize)>, String>;

fn parse_at(buf: &[u8], pos: usize) -> ParseResult {
    if pos >= buf.len() {
        return Ok(None);
    }
    let tag = buf[pos];
    let Some((line, next)) = parse_line(buf, pos + 1)? else {
        return Ok(None);
    };
    let text = || String::from_utf8_lossy(line).into_owned();
    match tag {
        b'+' => Ok(Some((Reply::Simple(text()), next))),
        b'-' => Ok(Some((Reply::Error(text()), next))),
        b':' => Ok(Some((Reply::Int(parse_i64(line)?), next))),
        b',' => Ok(Some((Reply::Double(text()), next))),
        b'(' => Ok(Some((Reply::BigNumber(text()), next))),
        b'#' => match line {
            b"t" => Ok(Some((Reply::Bool(true), next))),
            b"f" => Ok(Some((Reply::Bool(false), next))),
            _ => Err(format!("bad boolean {}", escape_bytes(line))),
        },
        b'_' => {
            if line.is_empty() {
                Ok(Some((Reply::Null, next)))
            } else {
                Err(format!("bad null {}", escape_bytes(line)))
            }
        }
        b'$' | b'=' | b'!' => {
            let len = parse_i64(line)?;
            if len < 0 {
                if tag == b'$' && len == -1 {
                    return Ok(Some((Reply::Bulk(None), next)));
                }
                return Err(format!("bad length {len}"));
            }
            let len = len as usize;
            if buf.len() < next + len + 2 {
                return Ok(None);
            }
            if &buf[next + len..next + len + 2] != b"\r\n" {
                return Err("blob not terminated by CRLF".into());
            }
            let data = buf[next..next + len].to_vec();
            let end = next + len + 2;
            let reply = match tag {
                b'$' => Reply::Bulk(Some(data)),
                b'!' => Reply::Error(String::from_utf8_lossy(&data).into_owned()),
                _ => {
                    if data.len() < 4 || data[3] != b':' {
                        return Err("verbatim string without 'fmt:' prefix".into());
                    }
                    Reply::Verbatim(
                        String::from_utf8_lossy(&data[..3]).into_owned(),
                        data[4..].to_vec(),
                    )
                }
            };
            Ok(Some((reply, end)))
        }
        b'*' | b'~' | b'>' | b'%' => {
            let len = parse_i64(line)?;
            if len < 0 {
                if tag == b'*' && len == -1 {
                    return Ok(Some((Reply::Array(None), next)));
                }
                return Err(format!("bad aggregate length {len}"));
            }
            let count = if tag == b'%' { len * 2 } else { len } as usize;
            let mut items = Vec::with_capacity(count.min(4096));
            let mut p = next;
            for _ in 0..count {
                match parse_at(buf, p)? {
                    Some((r, n)) => {
                        items.push(r);
                        p = n;
                    }
                    None => return Ok(None),
                }
            }
            let reply = match tag {
                b'*' => Reply::Array(Some(items)),
                b'~' => Reply::Set(items),
                b'>' => Reply::Push(items),
                _ => {
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    Reply::Map(pairs)
                }
            };
            Ok(Some((reply, p)))
        }
        other => Err(format!(
            "unknown RESP type byte {:?} in {}",
            other as char,
            escape_bytes(&buf[pos..buf.len().min(pos + 64)])
        )),
    }
}

/// Encodes a command as a RESP multibulk.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Splits a command line into arguments, like redis-cli: whitespace separates
/// arguments; "double quotes" support \" \\ \n \r \t \xHH escapes; 'single
/// quotes' are literal. `""` is an empty argument.
pub fn split_args(line: &str) -> Vec<Vec<u8>> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let mut cur = Vec::new();
        let mut quoted = false;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            match b[i] {
                b'"' => {
                    quoted = true;
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        if b[i] == b'\\' && i + 1 < b.len() {
                            i += 1;
                            match b[i] {
                                b'n' => cur.push(b'\n'),
                                b'r' => cur.push(b'\r'),
                                b't' => cur.push(b'\t'),
                                b'0' => cur.push(0),
                                b'x' if i + 2 < b.len() => {
                                    let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                                    cur.push(u8::from_str_radix(h, 16).expect("bad \\x escape"));
                                    i += 2;
                                }
                                c => cur.push(c),
                            }
                        } else {
                            cur.push(b[i]);
                        }
                        i += 1;
                    }
                    assert!(i < b.len(), "unterminated double quote in {line:?}");
                    i += 1;
                }
                b'\'' => {
                    quoted = true;
                    i += 1;
                    while i < b.len() && b[i] != b'\'' {
                        cur.push(b[i]);
                        i += 1;
                    }
                    assert!(i < b.len(), "unterminated single quote in {line:?}");
                    i += 1;
                }
                c => {
                    cur.push(c);
                    i += 1;
                }
            }
        }
        if quoted || !cur.is_empty() {
            out.push(cur);
        }
    }
    out
}

/// Renders arguments back into a readable command line.
pub fn show_command(args: &[Vec<u8>]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.iter()
                    .all(|&c| c.is_ascii_graphic() && c != b'"' && c != b'\'' && c != b'\\')
            {
                String::from_utf8_lossy(a).into_owned()
            } else {
                escape_bytes(a)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------
// Raw connection
// ---------------------------------------------------------------------------

/// Why a read did not produce a reply.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection (EOF or reset).
    Closed,
    /// Nothing complete arrived within the read timeout.
    Timeout,
    /// Bytes that are not RESP.
    Invalid(String),
    Io(io::Error),
}

/// A minimal blocking RESP client over `std::net::TcpStream`.
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    pub port: u16,
}

/// One field of an INFO section, as text (panics when the section lacks it).
pub fn info_field(c: &mut RawConn, section: &str, name: &str) -> String {
    let r = c.cmd_str(&format!("INFO {section}"));
    let text = String::from_utf8_lossy(r.as_bytes()).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("INFO {section} has no {name}: {text}"))
        .trim()
        .to_string()
}

/// One integer field of an INFO section.
pub fn info_u64(c: &mut RawConn, section: &str, name: &str) -> u64 {
    info_field(c, section, name)
        .parse()
        .expect("an integer field")
}

impl RawConn {
    /// Connects to 127.0.0.1:`port` (retrying briefly) with a 30 s read timeout.
    pub fn connect(port: u16) -> RawConn {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("connect to {addr}: {e}"),
            }
        };
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        RawConn {
            stream,
            buf: Vec::new(),
            port,
        }
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.stream.set_read_timeout(Some(t)).unwrap();
    }

    /// Writes one command as a RESP multibulk.
    pub fn send(&mut self, args: &[&[u8]]) {
        let bytes = encode_command(args);
        self.send_raw(&bytes);
    }

    /// Writes bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write to port {}: {e}", self.port));
    }

    /// Like [`RawConn::send_raw`] but reports errors (e.g. after the server
    /// closed the connection).
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one complete reply, with its exact bytes.
    pub fn try_read_reply_raw(&mut self) -> Result<(Reply, Vec<u8>), ReadError> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if !self.buf.is_empty() {
                match parse_reply(&self.buf) {
                    Parse::Done(r, n) => {
                        let raw: Vec<u8> = self.buf.drain(..n).collect();
                        return Ok((r, raw));
                    }
                    Parse::Invalid(e) => return Err(ReadError::Invalid(e)),
                    Parse::Incomplete => {}
                }
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return Err(ReadError::Timeout)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if e.kind() == io::ErrorKind::ConnectionReset
                        || e.kind() == io::ErrorKind::ConnectionAborted
                        || e.kind() == io::ErrorKind::BrokenPipe =>
                {
                    return Err(ReadError::Closed)
                }
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }

    pub fn try_read_reply(&mut self) -> Result<Reply, ReadError> {
        self.try_read_reply_raw().map(|(r, _)| r)
    }

    /// Reads one complete reply, with its exact bytes; panics on error.
    pub fn read_reply_raw(&mut self) -> (Reply, Vec<u8>) {
        match self.try_read_reply_raw() {
            Ok(r) => r,
            Err(e) => panic!(
                "reading a reply from port {} failed: {e:?} (buffered: {})",
                self.port,
                escape_bytes(&self.buf)
            ),
        }
    }

    /// Reads one complete reply; panics on error.
    pub fn read_reply(&mut self) -> Reply {
        self.read_reply_raw().0
    }

    /// Sends a command and reads its reply.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Reply {
        self.send(args);
        self.read_reply()
    }

    /// Sends a command given as one line (see [`split_args`]) and reads its
    /// reply.
    pub fn cmd_str(&mut self, line: &str) -> Reply {
        let args = split_args(line);
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        self.cmd(&refs)
    }

    /// Waits up to `timeout` for the peer to close the connection, discarding
    /// whatever it sends first. Returns the discarded bytes on close, or
    /// `None` if the connection was still open at the deadline.
    pub fn wait_closed(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut extra = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.buf = extra;
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) => return Some(extra),
                Ok(n) => extra.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    self.buf = extra;
                    return None;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Some(extra),
            }
        }
    }

    /// Closes the write half (the server sees EOF).
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Builds a `Vec<&[u8]>` from string-ish arguments: `args!["SET", key, b"v"]`.
#[macro_export]
macro_rules! args {
    ($($a:expr),* $(,)?) => {
        vec![$(AsRef::<[u8]>::as_ref(&$a)),*]
    };
}

// ---------------------------------------------------------------------------
// External processes
// ---------------------------------------------------------------------------

/// What a finished process printed.
pub struct ProcOutput {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ProcOutput {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// stdout and stderr together, for messages.
    pub fn all(&self) -> String {
        format!(
            "status: {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout_str(),
            self.stderr_str()
        )
    }
}

/// Runs `cmd` with `stdin` fed to it, and waits at most `timeout`; a process
/// still running then is killed and the test fails.
pub fn run_with_timeout(mut cmd: Command, stdin: &[u8], timeout: Duration) -> ProcOutput {
    let shown = format!("{cmd:?}");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {shown}: {e}"));
    let mut sin = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = sin.write_all(&input);
        // Dropping closes the pipe: the process sees EOF.
    });
    let mut sout = child.stdout.take().unwrap();
    let mut serr = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = sout.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = serr.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let out = out_t.join().unwrap_or_default();
            let err = err_t.join().unwrap_or_default();
            panic!(
                "{shown} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    ProcOutput {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// Polls `f` every `every` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, every: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}
