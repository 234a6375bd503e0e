//! Server configuration: command-line flags, flag files, and the `CONFIG GET` /
//! `CONFIG SET` parameter table.
//!
//! # Flag conventions
//!
//! * Every flag has a canonical long name spelled with underscores
//!   (`--tcp_backlog`) and is equally accepted with dashes (`--tcp-backlog`).
//! * A value may be given as `--flag value` or `--flag=value`. Empty values
//!   are allowed where they make sense (`--save ""`, `--requirepass ""`).
//! * Booleans accept `true/false/yes/no/1/0` (case-insensitive); a bare boolean
//!   flag (`--cache_mode`) means `true`.
//! * When a flag is given more than once, the last occurrence wins.
//! * `--flagfile FILE` (Dragonfly/gflags convention) reads one flag per line
//!   (`--port=6379` or `--port 6379`); blank lines and lines starting with `#`
//!   are ignored, a value wrapped in matching single or double quotes is
//!   unquoted, and files may nest up to 8 levels deep. The file's flags are
//!   inserted where `--flagfile` appears, so flags given later on the command
//!   line override the file and flags given earlier are overridden by it.
//! * Any Redis tuning parameter from the `CONFIG` table that has no dedicated
//!   flag (e.g. `--appendonly yes`, `--hash-max-listpack-entries 64`) is also
//!   accepted, validated exactly like `CONFIG SET`, immutable ones included.
//! * `--loglevel` takes both Libellule words (`error warn info debug trace`)
//!   and Redis words (`warning`→warn, `notice`→info, `verbose`→debug).
//! * `-h`/`--help` prints help and `-v`/`--version` prints the version; both are
//!   reported as [`ConfigError::Exit`]. Anything invalid is reported as
//!   [`ConfigError::Invalid`] with a message naming the flag.
//!
//! # Sizes
//!
//! Memory sizes (`--maxmemory`, `--proto_max_bulk_len`, ...) follow Redis's
//! `memtoll`: a plain number is bytes; units are case-insensitive, with
//! `k`=10^3, `kb`=2^10, `m`=10^6, `mb`=2^20, `g`=10^9, `gb`=2^30 (and by extension
//! `t`=10^12, `tb`=2^40), plus the IEC forms `KiB MiB GiB TiB` (powers of 1024).
//! Unlike Redis a decimal number is accepted with a unit (`1.5GiB`, `1.5gb`);
//! the result is truncated to whole bytes. Negative sizes are rejected.
//!
//! # `CONFIG GET` / `CONFIG SET`
//!
//! Parameters use Redis 7.0 names, value formats, bounds and error texts.
//! Redis's own aliases (`hash-max-ziplist-entries`, `slave-read-only`, ...) are
//! reported as separate names like Redis does. Libellule/Dragonfly parameters
//! keep their underscore names (`cache_mode`, `io_threads`, `prometheus_port`,
//! `snapshot_cron`). Lookups are case-insensitive and accept either dashes or
//! underscores. Parameters Libellule cannot change at run time (`port`,
//! `bind`, `databases`, `io_threads`, `tcp-backlog`, ...) are immutable, and,
//! as in Redis, `dir` and `dbfilename` are protected unless the server was
//! started with `--enable-protected-configs yes` (or `local`). `hz` is clamped
//! to 1..=500 like Redis. `loglevel` is reported with Redis words (`error` and
//! `warn` → `warning`, `info` → `notice`, `debug` and `trace` → `debug`), so a
//! `CONFIG SET loglevel verbose` reads back as `debug`.

use std::collections::BTreeMap;
use std::fmt;

use clap::builder::ValueRange;
use clap::error::ErrorKind;
use clap::{Arg, ArgAction, ColorChoice, CommandFactory, FromArgMatches, Parser};

/// The values Redis accepts for `maxmemory-policy`, in Redis's own order.
pub const MAXMEMORY_POLICIES: [&str; 8] = [
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

/// Default for `client-output-buffer-limit` (Redis 7.0).
const DEFAULT_COBL: &str = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";

/// How deep `--flagfile` may nest.
const MAX_FLAGFILE_DEPTH: usize = 8;

const LL_MAX: i64 = i64::MAX;
const INT_MAX: i64 = i32::MAX as i64;
const INT_MIN: i64 = i32::MIN as i64;

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// The effective server configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// TCP port to listen on (`--port`, default 6379).
    pub port: u16,
    /// Addresses to bind (`--bind`, default `127.0.0.1`; space-separated list).
    pub bind: Vec<String>,
    /// Password for the default user; empty means no password.
    pub requirepass: String,
    /// Memory limit in bytes; 0 means unlimited.
    pub maxmemory: u64,
    /// Dragonfly-style cache mode (evict instead of failing writes when full).
    pub cache_mode: bool,
    /// Frequency of background tasks, 1..=500 (default 10).
    pub hz: u32,
    /// Listen backlog (default 511).
    pub tcp_backlog: u32,
    /// Number of shards/threads; 0 means one per CPU the process may run on.
    pub io_threads: usize,
    /// Number of logical databases (default 16).
    pub dbnum: usize,
    /// Maximum number of simultaneous clients (default 10000).
    pub maxclients: usize,
    /// Snapshot file name (default `dump.rdb`).
    pub dbfilename: String,
    /// Working directory for snapshots (default `.`).
    pub dir: String,
    /// Snapshot schedule as `(seconds, changes)` pairs; empty means never.
    pub save: Vec<(u64, u64)>,
    /// The `save` schedule exactly as it was given (trimmed).
    pub save_raw: String,
    /// Dragonfly-style cron schedule for snapshots (five fields, UTC; empty = none).
    pub snapshot_cron: String,
    /// Port of the Prometheus exporter; 0 means disabled.
    pub prometheus_port: u16,
    /// Log level: one of `error`, `warn`, `info`, `debug`, `trace`.
    pub log_level: String,
    /// Redis protected mode (refuse non-loopback clients when no password).
    pub protected_mode: bool,
    /// Eviction policy, one of [`MAXMEMORY_POLICIES`].
    pub maxmemory_policy: String,
    /// Largest accepted bulk string in bytes (default 512mb).
    pub proto_max_bulk_len: u64,
    /// Largest accepted query buffer per client in bytes (default 1gb).
    pub client_query_buffer_limit: u64,
    /// Idle client timeout in seconds; 0 disables it.
    pub timeout: u64,
    /// TCP keepalive interval in seconds; 0 disables it (default 300).
    pub tcp_keepalive: u64,
    /// Other Redis tuning parameters accepted by `CONFIG SET` and reported by
    /// `CONFIG GET`, keyed by their canonical Redis 7.0 name (for example
    /// `hash-max-listpack-entries` → `"512"`, `appendonly` → `"no"`), with
    /// values in Redis's canonical format. Redis aliases (`*-ziplist-*`,
    /// `slave-*`, `lua-time-limit`) are not stored separately; use
    /// [`Config::get_one`] to resolve any name.
    pub extra: BTreeMap<String, String>,
}

/// Why [`Config::from_args`] did not return a configuration.
#[derive(Debug)]
pub enum ConfigError {
    /// `--help` or `--version`: print the text to stdout and exit 0.
    Exit(String),
    /// A bad flag or value: print the message to stderr and exit 1. The
    /// message names the offending flag.
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Exit(s) | ConfigError::Invalid(s) => f.write_str(s.trim_end()),
        }
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------
// Sizes and glob matching
// ---------------------------------------------------------------------------

/// Parses a size like Redis's `memtoll` (`100`, `1k`=1000, `1kb`=1024, `2mb`,
/// `3g`=3*10^9, `1gb`=2^30, units case-insensitive) plus `KiB MiB GiB TiB` and
/// decimals with a unit (`1.5GiB`, truncated to whole bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let err = || {
        format!(
            "invalid size '{s}': expected a number of bytes, optionally with a unit \
             (k, kb, m, mb, g, gb, t, tb, KiB, MiB, GiB, TiB)"
        )
    };
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(num_end);
    let (int_part, frac_part) = match num.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (num, None),
    };
    if int_part.is_empty() || frac_part.is_some_and(|f| f.is_empty() || f.contains('.')) {
        return Err(err());
    }
    let mul: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1_000,
        "kb" | "kib" => 1 << 10,
        "m" => 1_000_000,
        "mb" | "mib" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" | "gib" => 1 << 30,
        "t" => 1_000_000_000_000,
        "tb" | "tib" => 1 << 40,
        _ => return Err(err()),
    };
    if frac_part.is_some() && mul == 1 {
        return Err(format!(
            "invalid size '{s}': a fraction of a byte needs a unit"
        ));
    }
    let too_big = || format!("invalid size '{s}': too large");
    let int_part = int_part.trim_start_matches('0');
    if int_part.len() > 20 {
        return Err(too_big());
    }
    let int: u128 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().map_err(|_| err())?
    };
    let mut total = int * mul;
    if let Some(frac) = frac_part {
        // 18 digits keep the arithmetic inside u128 and are far below a byte.
        let frac = &frac[..frac.len().min(18)];
        let digits: u128 = frac.parse().map_err(|_| err())?;
        total += digits * mul / 10u128.pow(frac.len() as u32);
    }
    u64::try_from(total).map_err(|_| too_big())
}

/// Redis glob matching (`stringmatchlen` semantics): `*` any run of bytes, `?`
/// any single byte, `[abc]` / `[a-z]` / `[^x]` classes (an unterminated class
/// runs to the end of the pattern), and `\` escaping the next byte. With
/// `nocase`, ASCII letters compare case-insensitively. Used by `CONFIG GET`,
/// `KEYS` and `SCAN MATCH`.
///
/// The matcher is iterative and only backtracks to the most recent `*`, so it
/// runs in O(pattern × text) time and constant space for any pattern. One
/// deliberate difference from Redis: a pattern made only of `*` also matches
/// the empty string (Redis's `KEYS *` / `SCAN` special-case that anyway).
pub fn glob_match(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Where to resume after a mismatch: (pattern index after the last `*`,
    // text index that `*` currently extends to).
    let mut resume: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() {
            if pattern[p] == b'*' {
                while p < pattern.len() && pattern[p] == b'*' {
                    p += 1;
                }
                if p == pattern.len() {
                    return true;
                }
                resume = Some((p, t));
                continue;
            }
            if t < text.len() {
                if let Some(next) = match_token(pattern, p, text[t], nocase) {
                    p = next;
                    t += 1;
                    continue;
                }
            }
        } else if t == text.len() {
            return true;
        }
        match resume {
            Some((rp, rt)) if rt < text.len() => {
                resume = Some((rp, rt + 1));
                p = rp;
                t = rt + 1;
            }
            _ => return false,
        }
    }
}

fn eq_byte(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// Matches the single-byte token at `pattern[p]` (not `*`) against `c`;
/// returns the index of the next token on success.
fn match_token(pattern: &[u8], p: usize, c: u8, nocase: bool) -> Option<usize> {
    let len = pattern.len();
    match pattern[p] {
        b'?' => Some(p + 1),
        b'[' => {
            let mut i = p + 1;
            let negate = i < len && pattern[i] == b'^';
            if negate {
                i += 1;
            }
            let mut matched = false;
            while i < len {
                let pc = pattern[i];
                if pc == b'\\' && i + 1 < len {
                    matched |= pattern[i + 1] == c;
                    i += 2;
                } else if pc == b']' {
                    i += 1;
                    break;
                } else if i + 2 < len && pattern[i + 1] == b'-' {
                    let (mut lo, mut hi) = (pc, pattern[i + 2]);
                    if lo > hi {
                        std::mem::swap(&mut lo, &mut hi);
                    }
                    let mut ch = c;
                    if nocase {
                        lo = lo.to_ascii_lowercase();
                        hi = hi.to_ascii_lowercase();
                        ch = ch.to_ascii_lowercase();
                    }
                    matched |= lo <= ch && ch <= hi;
                    i += 3;
                } else {
                    matched |= eq_byte(pc, c, nocase);
                    i += 1;
                }
            }
            (matched != negate).then_some(i)
        }
        b'\\' if p + 1 < len => eq_byte(pattern[p + 1], c, nocase).then_some(p + 2),
        pc => eq_byte(pc, c, nocase).then_some(p + 1),
    }
}

// ---------------------------------------------------------------------------
// Parameter table
// ---------------------------------------------------------------------------

/// A `Config` field that a `CONFIG` parameter maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Port,
    Bind,
    Requirepass,
    Maxmemory,
    CacheMode,
    Hz,
    TcpBacklog,
    IoThreads,
    Databases,
    Maxclients,
    Dbfilename,
    Dir,
    Save,
    SnapshotCron,
    PrometheusPort,
    Loglevel,
    ProtectedMode,
    MaxmemoryPolicy,
    ProtoMaxBulkLen,
    ClientQueryBufferLimit,
    Timeout,
    TcpKeepalive,
}

/// How a parameter's value is validated and normalised.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// `yes`/`no`.
    Bool,
    /// A strict integer within the inclusive bounds.
    Int(i64, i64),
    /// A memory value within the inclusive bounds.
    Mem(u64, u64),
    /// One word of the list (case-insensitive).
    Enum(&'static [&'static str]),
    /// One or more space-separated words of the list.
    Flags(&'static [&'static str]),
    /// Any string.
    Str,
    Save,
    Notify,
    Cobl,
    Percentiles,
    OomValues,
    MemOrPercent,
    Loglevel,
    Dir,
    Dbfilename,
}

const IMMUTABLE: u8 = 1;
const PROTECTED: u8 = 2;

#[derive(Clone, Copy, Debug)]
struct Param {
    /// Canonical name.
    name: &'static str,
    /// Redis aliases, reported by `CONFIG GET` as separate names.
    aliases: &'static [&'static str],
    /// Libellule spellings that are accepted but never reported.
    hidden: &'static [&'static str],
    /// Default value of an `extra` parameter (unused for fields).
    default: &'static str,
    kind: Kind,
    flags: u8,
    field: Option<Field>,
}

const fn ex(name: &'static str, default: &'static str, kind: Kind) -> Param {
    Param {
        name,
        aliases: &[],
        hidden: &[],
        default,
        kind,
        flags: 0,
        field: None,
    }
}

const fn fld(name: &'static str, field: Field, kind: Kind) -> Param {
    Param {
        name,
        aliases: &[],
        hidden: &[],
        default: "",
        kind,
        flags: 0,
        field: Some(field),
    }
}

impl Param {
    const fn alias(self, aliases: &'static [&'static str]) -> Param {
        Param { aliases, ..self }
    }
    const fn hidden(self, hidden: &'static [&'static str]) -> Param {
        Param { hidden, ..self }
    }
    const fn imm(self) -> Param {
        Param {
            flags: self.flags | IMMUTABLE,
            ..self
        }
    }
    const fn prot(self) -> Param {
        Param {
            flags: self.flags | PROTECTED,
            ..self
        }
    }
    fn names(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }
}

const YES_NO_LOCAL: &[&str] = &["no", "yes", "local"];
const SHUTDOWN_FLAGS: &[&str] = &["default", "save", "nosave", "now", "force"];

/// Every parameter known to `CONFIG GET`/`CONFIG SET`, sorted by name.
#[rustfmt::skip]
static PARAMS: &[Param] = &[
    ex("acl-pubsub-default", "resetchannels", Kind::Enum(&["allchannels", "resetchannels"])),
    ex("aclfile", "", Kind::Str).imm(),
    ex("acllog-max-len", "128", Kind::Int(0, LL_MAX)),
    ex("active-defrag-cycle-max", "25", Kind::Int(1, 99)),
    ex("active-defrag-cycle-min", "1", Kind::Int(1, 99)),
    ex("active-defrag-ignore-bytes", "104857600", Kind::Mem(1, LL_MAX as u64)),
    ex("active-defrag-max-scan-fields", "1000", Kind::Int(1, LL_MAX)),
    ex("active-defrag-threshold-lower", "10", Kind::Int(0, 1000)),
    ex("active-defrag-threshold-upper", "100", Kind::Int(0, 1000)),
    ex("active-expire-effort", "1", Kind::Int(1, 10)),
    ex("activedefrag", "no", Kind::Bool),
    ex("activerehashing", "yes", Kind::Bool),
    ex("always-show-logo", "no", Kind::Bool).imm(),
    ex("aof-disable-auto-gc", "no", Kind::Bool),
    ex("aof-load-truncated", "yes", Kind::Bool),
    ex("aof-rewrite-incremental-fsync", "yes", Kind::Bool),
    ex("aof-timestamp-enabled", "no", Kind::Bool),
    ex("aof-use-rdb-preamble", "yes", Kind::Bool),
    ex("appenddirname", "appendonlydir", Kind::Str).imm(),
    ex("appendfilename", "appendonly.aof", Kind::Str).imm(),
    ex("appendfsync", "everysec", Kind::Enum(&["everysec", "always", "no"])),
    ex("appendonly", "no", Kind::Bool),
    ex("auto-aof-rewrite-min-size", "67108864", Kind::Mem(0, LL_MAX as u64)),
    ex("auto-aof-rewrite-percentage", "100", Kind::Int(0, INT_MAX)),
    fld("bind", Field::Bind, Kind::Str).imm(),
    ex("bind-source-addr", "", Kind::Str),
    ex("busy-reply-threshold", "5000", Kind::Int(0, LL_MAX)).alias(&["lua-time-limit"]),
    fld("cache_mode", Field::CacheMode, Kind::Bool),
    ex("client-output-buffer-limit", DEFAULT_COBL, Kind::Cobl),
    fld("client-query-buffer-limit", Field::ClientQueryBufferLimit, Kind::Mem(1 << 20, LL_MAX as u64)),
    ex("cluster-enabled", "no", Kind::Bool).imm(),
    ex("crash-log-enabled", "yes", Kind::Bool),
    ex("crash-memcheck-enabled", "yes", Kind::Bool),
    ex("daemonize", "no", Kind::Bool).imm(),
    fld("databases", Field::Databases, Kind::Int(1, 1024)).imm().hidden(&["dbnum"]),
    fld("dbfilename", Field::Dbfilename, Kind::Dbfilename).prot(),
    fld("dir", Field::Dir, Kind::Dir).prot(),
    ex("disable-thp", "yes", Kind::Bool).imm(),
    ex("dynamic-hz", "yes", Kind::Bool),
    ex("enable-debug-command", "no", Kind::Enum(YES_NO_LOCAL)).imm(),
    ex("enable-module-command", "no", Kind::Enum(YES_NO_LOCAL)).imm(),
    ex("enable-protected-configs", "no", Kind::Enum(YES_NO_LOCAL)).imm(),
    ex("hash-max-listpack-entries", "512", Kind::Int(0, LL_MAX)).alias(&["hash-max-ziplist-entries"]),
    ex("hash-max-listpack-value", "64", Kind::Mem(0, LL_MAX as u64)).alias(&["hash-max-ziplist-value"]),
    ex("hll-sparse-max-bytes", "3000", Kind::Mem(0, LL_MAX as u64)),
    fld("hz", Field::Hz, Kind::Int(0, INT_MAX)),
    ex("ignore-warnings", "", Kind::Str),
    fld("io_threads", Field::IoThreads, Kind::Int(0, 1024)).imm().hidden(&["proactor_threads"]),
    ex("jemalloc-bg-thread", "yes", Kind::Bool),
    ex("latency-monitor-threshold", "0", Kind::Int(0, LL_MAX)),
    ex("latency-tracking", "yes", Kind::Bool),
    ex("latency-tracking-info-percentiles", "50 99 99.9", Kind::Percentiles),
    ex("lazyfree-lazy-eviction", "no", Kind::Bool),
    ex("lazyfree-lazy-expire", "no", Kind::Bool),
    ex("lazyfree-lazy-server-del", "no", Kind::Bool),
    ex("lazyfree-lazy-user-del", "no", Kind::Bool),
    ex("lazyfree-lazy-user-flush", "no", Kind::Bool),
    ex("lfu-decay-time", "1", Kind::Int(0, INT_MAX)),
    ex("lfu-log-factor", "10", Kind::Int(0, INT_MAX)),
    ex("list-compress-depth", "0", Kind::Int(0, INT_MAX)),
    ex("list-max-listpack-size", "-2", Kind::Int(INT_MIN, INT_MAX)).alias(&["list-max-ziplist-size"]),
    ex("logfile", "", Kind::Str).imm(),
    fld("loglevel", Field::Loglevel, Kind::Loglevel).hidden(&["log_level"]),
    ex("masterauth", "", Kind::Str),
    ex("masteruser", "", Kind::Str),
    fld("maxclients", Field::Maxclients, Kind::Int(1, u32::MAX as i64)),
    fld("maxmemory", Field::Maxmemory, Kind::Mem(0, u64::MAX)),
    ex("maxmemory-clients", "0", Kind::MemOrPercent),
    ex("maxmemory-eviction-tenacity", "10", Kind::Int(0, 100)),
    fld("maxmemory-policy", Field::MaxmemoryPolicy, Kind::Enum(&MAXMEMORY_POLICIES)),
    ex("maxmemory-samples", "5", Kind::Int(1, INT_MAX)),
    ex("min-replicas-max-lag", "10", Kind::Int(0, INT_MAX)).alias(&["min-slaves-max-lag"]),
    ex("min-replicas-to-write", "0", Kind::Int(0, INT_MAX)).alias(&["min-slaves-to-write"]),
    ex("no-appendfsync-on-rewrite", "no", Kind::Bool),
    ex("notify-keyspace-events", "", Kind::Notify),
    ex("oom-score-adj", "no", Kind::Enum(&["no", "yes", "relative", "absolute"])),
    ex("oom-score-adj-values", "0 200 800", Kind::OomValues),
    ex("pidfile", "", Kind::Str).imm(),
    fld("port", Field::Port, Kind::Int(0, 65535)).imm(),
    ex("proc-title-template", "{title} {listen-addr} {server-mode}", Kind::Str),
    fld("prometheus_port", Field::PrometheusPort, Kind::Int(0, 65535),).imm(),
    ex("propagation-error-behavior", "ignore", Kind::Enum(&["ignore", "panic", "panic-on-replicas"])),
    fld("protected-mode", Field::ProtectedMode, Kind::Bool),
    fld("proto-max-bulk-len", Field::ProtoMaxBulkLen, Kind::Mem(1 << 20, LL_MAX as u64)),
    ex("rdb-del-sync-files", "no", Kind::Bool),
    ex("rdb-save-incremental-fsync", "yes", Kind::Bool),
    ex("rdbchecksum", "yes", Kind::Bool).imm(),
    ex("rdbcompression", "yes", Kind::Bool),
    ex("repl-backlog-size", "1048576", Kind::Mem(1, LL_MAX as u64)),
    ex("repl-backlog-ttl", "3600", Kind::Int(0, LL_MAX)),
    ex("repl-disable-tcp-nodelay", "no", Kind::Bool),
    ex("repl-diskless-load", "disabled", Kind::Enum(&["disabled", "on-empty-db", "swapdb"])),
    ex("repl-diskless-sync", "yes", Kind::Bool),
    ex("repl-diskless-sync-delay", "5", Kind::Int(0, INT_MAX)),
    ex("repl-diskless-sync-max-replicas", "0", Kind::Int(0, INT_MAX)),
    ex("repl-ping-replica-period", "10", Kind::Int(1, INT_MAX)).alias(&["repl-ping-slave-period"]),
    ex("repl-timeout", "60", Kind::Int(1, INT_MAX)),
    ex("replica-announce-ip", "", Kind::Str).alias(&["slave-announce-ip"]),
    ex("replica-announce-port", "0", Kind::Int(0, 65535)).alias(&["slave-announce-port"]),
    ex("replica-announced", "yes", Kind::Bool),
    ex("replica-ignore-disk-write-errors", "no", Kind::Bool),
    ex("replica-ignore-maxmemory", "yes", Kind::Bool).alias(&["slave-ignore-maxmemory"]),
    ex("replica-lazy-flush", "no", Kind::Bool).alias(&["slave-lazy-flush"]),
    ex("replica-priority", "100", Kind::Int(0, INT_MAX)).alias(&["slave-priority"]),
    ex("replica-read-only", "yes", Kind::Bool).alias(&["slave-read-only"]),
    ex("replica-serve-stale-data", "yes", Kind::Bool).alias(&["slave-serve-stale-data"]),
    ex("replicaof", "", Kind::Str).imm().alias(&["slaveof"]),
    fld("requirepass", Field::Requirepass, Kind::Str),
    ex("sanitize-dump-payload", "no", Kind::Enum(&["no", "yes", "clients"])),
    fld("save", Field::Save, Kind::Save),
    ex("set-max-intset-entries", "512", Kind::Int(0, LL_MAX)),
    ex("set-proc-title", "yes", Kind::Bool).imm(),
    ex("shutdown-on-sigint", "default", Kind::Flags(SHUTDOWN_FLAGS)),
    ex("shutdown-on-sigterm", "default", Kind::Flags(SHUTDOWN_FLAGS)),
    ex("shutdown-timeout", "10", Kind::Int(0, INT_MAX)),
    ex("slowlog-log-slower-than", "10000", Kind::Int(-1, LL_MAX)),
    ex("slowlog-max-len", "128", Kind::Int(0, LL_MAX)),
    fld("snapshot_cron", Field::SnapshotCron, Kind::Str),
    ex("stop-writes-on-bgsave-error", "yes", Kind::Bool),
    ex("stream-node-max-bytes", "4096", Kind::Mem(0, LL_MAX as u64)),
    ex("stream-node-max-entries", "100", Kind::Int(0, LL_MAX)),
    ex("supervised", "no", Kind::Enum(&["upstart", "systemd", "auto", "no"]),).imm(),
    fld("tcp-backlog", Field::TcpBacklog, Kind::Int(0, INT_MAX)).imm(),
    fld("tcp-keepalive", Field::TcpKeepalive, Kind::Int(0, INT_MAX)),
    fld("timeout", Field::Timeout, Kind::Int(0, INT_MAX)),
    ex("tracking-table-max-keys", "1000000", Kind::Int(0, LL_MAX)),
    ex("zset-max-listpack-entries", "128", Kind::Int(0, LL_MAX)).alias(&["zset-max-ziplist-entries"]),
    ex("zset-max-listpack-value", "64", Kind::Mem(0, LL_MAX as u64)).alias(&["zset-max-ziplist-value"]),
];

/// Finds a parameter by any accepted spelling: case-insensitive, canonical
/// name, Redis alias or hidden Libellule alias, with dashes or underscores.
fn find_param(name: &str) -> Option<&'static Param> {
    let lower = name.to_ascii_lowercase();
    let exact = |n: &str| {
        PARAMS
            .iter()
            .find(|p| p.name == n || p.aliases.contains(&n) || p.hidden.contains(&n))
    };
    exact(&lower)
        .or_else(|| exact(&lower.replace('_', "-")))
        .or_else(|| exact(&lower.replace('-', "_")))
}

/// `name` with dashes and underscores swapped.
fn swap_separators(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '-' => '_',
            '_' => '-',
            c => c,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Value parsing helpers
// ---------------------------------------------------------------------------

/// Redis `string2ll`: optional `-`, no `+`, no leading zeros, no spaces.
fn redis_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let first = *digits.as_bytes().first()?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) || (first == b'0' && s != "0") {
        return None;
    }
    s.parse().ok()
}

/// Boolean words accepted on the command line.
fn parse_bool_word(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Parses a `save` schedule: pairs of `<seconds> <changes>` with seconds >= 1
/// and changes >= 0 (Redis rules); an empty string means never.
fn parse_save(s: &str) -> Result<Vec<(u64, u64)>, String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if !parts.len().is_multiple_of(2) {
        return Err("Invalid save parameters".into());
    }
    parts
        .chunks(2)
        .map(|pair| {
            let secs = pair[0].parse::<u64>().ok().filter(|&v| v >= 1);
            let changes = pair[1].parse::<u64>().ok();
            secs.zip(changes)
                .ok_or_else(|| "Invalid save parameters".to_string())
        })
        .collect()
}

fn format_save(save: &[(u64, u64)]) -> String {
    save.iter()
        .map(|(s, c)| format!("{s} {c}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Keyspace event classes, in Redis's output order; the first ten make up `A`.
const NOTIFY_CLASSES: &[u8] = b"g$lshzxetdnKEm";
const NOTIFY_ALL_BITS: u16 = (1 << 10) - 1;

/// How CONFIG GET shows a stored `notify-keyspace-events` value: Redis 7.0 leaves the
/// `n` class out of the text when `A` is set (while still raising `new` events), so the
/// stored form keeps it and only the display drops it.
fn notify_display(stored: &str) -> String {
    if stored.starts_with('A') {
        stored.replace('n', "")
    } else {
        stored.to_string()
    }
}

/// Canonical stored form of a `notify-keyspace-events` value (every class it enables).
fn parse_notify(s: &str) -> Result<String, String> {
    let mut bits: u16 = 0;
    for b in s.bytes() {
        if b == b'A' {
            bits |= NOTIFY_ALL_BITS;
        } else if let Some(i) = NOTIFY_CLASSES.iter().position(|&c| c == b) {
            bits |= 1 << i;
        } else {
            return Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into());
        }
    }
    let mut out = String::new();
    for (i, &c) in NOTIFY_CLASSES.iter().enumerate() {
        if i == 0 && bits & NOTIFY_ALL_BITS == NOTIFY_ALL_BITS {
            out.push('A');
        }
        let in_all = i < 10 && bits & NOTIFY_ALL_BITS == NOTIFY_ALL_BITS;
        if bits & (1 << i) != 0 && !in_all {
            out.push(c as char);
        }
    }
    Ok(out)
}

/// Parses `client-output-buffer-limit` groups and merges them into `current`.
fn parse_cobl(current: &str, s: &str) -> Result<String, String> {
    const CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];
    let mut next: Vec<[u64; 3]> = current
        .split_whitespace()
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| {
            let n = |i: usize| c.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
            [n(1), n(2), n(3)]
        })
        .collect();
    next.resize(3, [0, 0, 0]);
    let args: Vec<&str> = s.split_whitespace().collect();
    if !args.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    for group in args.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
        let hard = parse_size(group[1]).map_err(|_| bad())?;
        let soft = parse_size(group[2]).map_err(|_| bad())?;
        let secs = redis_int(group[3]).filter(|&v| v >= 0).ok_or_else(bad)?;
        next[class] = [hard, soft, secs as u64];
    }
    Ok(CLASSES
        .iter()
        .zip(&next)
        .map(|(c, l)| format!("{c} {} {} {}", l[0], l[1], l[2]))
        .collect::<Vec<_>>()
        .join(" "))
}

fn parse_percentiles(s: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for word in s.split_whitespace() {
        let v: f64 = word
            .parse()
            .map_err(|_| "Invalid latency-tracking-info-percentiles parameters".to_string())?;
        if !(0.0..=100.0).contains(&v) {
            return Err(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                    .into(),
            );
        }
        out.push(format!("{v}"));
    }
    Ok(out.join(" "))
}

fn parse_oom_values(s: &str) -> Result<String, String> {
    let words: Vec<&str> = s.split_whitespace().collect();
    if words.len() != 3 {
        return Err("wrong number of arguments".into());
    }
    let mut out = Vec::new();
    for w in words {
        let v = redis_int(w)
            .filter(|v| (-2000..=2000).contains(v))
            .ok_or("Invalid oom-score-adj-values, elements must be between -2000 and 2000.")?;
        out.push(v.to_string());
    }
    Ok(out.join(" "))
}

/// Libellule log level for a Redis or Libellule word.
fn parse_log_level(s: &str) -> Option<&'static str> {
    Some(match s.to_ascii_lowercase().as_str() {
        "error" => "error",
        "warn" | "warning" => "warn",
        "info" | "notice" => "info",
        "debug" | "verbose" => "debug",
        "trace" => "trace",
        _ => return None,
    })
}

/// The Redis word reported by `CONFIG GET loglevel`.
fn redis_log_level(level: &str) -> &'static str {
    match level {
        "error" | "warn" => "warning",
        "info" => "notice",
        _ => "debug",
    }
}

fn range_error(min: impl fmt::Display, max: impl fmt::Display) -> String {
    format!("argument must be between {min} and {max} inclusive")
}

/// Validates `value` for `kind` and returns it in canonical form. `cli`
/// enables the command-line leniencies (true/false/1/0 booleans).
fn normalize(kind: Kind, value: &str, current: &str, cli: bool) -> Result<String, String> {
    match kind {
        Kind::Bool => {
            let b = match value.to_ascii_lowercase().as_str() {
                "yes" => Some(true),
                "no" => Some(false),
                _ if cli => parse_bool_word(value),
                _ => None,
            };
            b.map(|b| yes_no(b).to_string())
                .ok_or_else(|| "argument must be 'yes' or 'no'".into())
        }
        Kind::Int(min, max) => {
            let v = redis_int(value).ok_or("argument couldn't be parsed into an integer")?;
            if v < min || v > max {
                return Err(range_error(min, max));
            }
            Ok(v.to_string())
        }
        Kind::Mem(min, max) => {
            let v = if value.is_empty() {
                0
            } else {
                parse_size(value).map_err(|_| "argument must be a memory value")?
            };
            if v < min || v > max {
                return Err(range_error(min, max));
            }
            Ok(v.to_string())
        }
        Kind::MemOrPercent => {
            if let Some(pct) = value.strip_suffix('%') {
                let p = redis_int(pct)
                    .filter(|&p| p >= 0)
                    .ok_or("argument must be a memory or percent value")?;
                if p > 100 {
                    return Err("percentage argument must be less or equal to 100".into());
                }
                Ok(if p == 0 { "0".into() } else { format!("{p}%") })
            } else if value.is_empty() {
                Ok("0".into())
            } else {
                parse_size(value)
                    .map(|v| v.to_string())
                    .map_err(|_| "argument must be a memory or percent value".into())
            }
        }
        Kind::Enum(words) => {
            let lower = value.to_ascii_lowercase();
            words
                .iter()
                .find(|w| **w == lower)
                .map(|w| w.to_string())
                .ok_or_else(|| enum_error(words))
        }
        Kind::Flags(words) => {
            let parts: Vec<String> = value
                .split_whitespace()
                .map(|w| w.to_ascii_lowercase())
                .collect();
            if parts.is_empty() || parts.iter().any(|p| !words.contains(&p.as_str())) {
                return Err(enum_error(words));
            }
            Ok(parts.join(" "))
        }
        Kind::Str => Ok(value.to_string()),
        Kind::Save => parse_save(value).map(|_| value.trim().to_string()),
        Kind::Notify => parse_notify(value),
        Kind::Cobl => parse_cobl(current, value),
        Kind::Percentiles => parse_percentiles(value),
        Kind::OomValues => parse_oom_values(value),
        Kind::Loglevel => parse_log_level(value)
            .map(str::to_string)
            .ok_or_else(|| enum_error(&["debug", "verbose", "notice", "warning"])),
        Kind::Dir => match std::fs::metadata(value) {
            Ok(m) if m.is_dir() => Ok(value.to_string()),
            Ok(_) => Err("Not a directory".into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err("No such file or directory".into())
            }
            Err(e) => Err(e.to_string()),
        },
        Kind::Dbfilename => {
            if value.contains('/') || value.contains('\\') {
                Err("dbfilename can't be a path, just a filename".into())
            } else {
                Ok(value.to_string())
            }
        }
    }
}

fn enum_error(words: &[&str]) -> String {
    format!(
        "argument(s) must be one of the following: {}",
        words.join(", ")
    )
}

fn split_bind(s: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

fn is_loopback(addr: &str) -> bool {
    let addr = addr.trim_start_matches('-');
    if addr.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let addr = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(std::net::IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------
// Config: defaults, CONFIG GET/SET
// ---------------------------------------------------------------------------

impl Default for Config {
    /// The configuration used when no flag is given.
    fn default() -> Self {
        let extra = PARAMS
            .iter()
            .filter(|p| p.field.is_none())
            .map(|p| (p.name.to_string(), p.default.to_string()))
            .collect();
        Config {
            port: 6379,
            bind: vec!["127.0.0.1".to_string()],
            requirepass: String::new(),
            maxmemory: 0,
            cache_mode: false,
            hz: 10,
            tcp_backlog: 511,
            io_threads: 0,
            dbnum: 16,
            maxclients: 10000,
            dbfilename: "dump.rdb".to_string(),
            dir: ".".to_string(),
            save: Vec::new(),
            save_raw: String::new(),
            snapshot_cron: String::new(),
            prometheus_port: 0,
            log_level: "info".to_string(),
            protected_mode: true,
            maxmemory_policy: "noeviction".to_string(),
            proto_max_bulk_len: 512 << 20,
            client_query_buffer_limit: 1 << 30,
            timeout: 0,
            tcp_keepalive: 300,
            extra,
        }
    }
}

impl Config {
    /// Parses argv (including argv\[0\]). Handles `--flagfile`. `--help` and
    /// `--version` yield [`ConfigError::Exit`] with the text to print; a bad
    /// flag or value yields [`ConfigError::Invalid`] naming the flag.
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Result<Config, ConfigError> {
        let mut args = args.into_iter();
        let argv0 = args.next().unwrap_or_else(|| "libellule".to_string());
        let rest: Vec<String> = args.collect();

        let command = cli_command();
        let known = known_flags(&command);
        let mut clap_args = vec![argv0];
        let mut extras = Vec::new();
        preprocess(&rest, 0, &known, &mut clap_args, &mut extras)?;

        let matches = command
            .try_get_matches_from(clap_args)
            .map_err(clap_error)?;
        let cli = Cli::from_arg_matches(&matches).map_err(clap_error)?;
        let mut config = cli.into_config()?;
        for (flag, value) in extras {
            let param = find_param(&flag).expect("extras are known parameters");
            let current = config.value_of(param);
            config.apply(param, &value, &current, true).map_err(|msg| {
                ConfigError::Invalid(format!(
                    "error: invalid value '{value}' for '--{flag}': {msg}\n"
                ))
            })?;
        }
        Ok(config)
    }

    /// `CONFIG GET`: every `(name, value)` pair whose parameter name matches the
    /// glob `pattern` (Redis rules, case-insensitive; dashes and underscores
    /// are interchangeable), sorted by name, each name once. Values use Redis
    /// 7.0 formats (sizes as byte counts, booleans as `yes`/`no`). As in Redis,
    /// a pattern without `*`, `?` or `[` is an exact lookup that echoes the
    /// name as given (including `dbnum`, `log_level`, `proactor_threads`).
    pub fn get(&self, pattern: &[u8]) -> Vec<(String, String)> {
        if !pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
            let Ok(name) = std::str::from_utf8(pattern) else {
                return Vec::new();
            };
            return find_param(name)
                .map(|p| vec![(name.to_string(), self.value_of(p))])
                .unwrap_or_default();
        }
        let mut out = Vec::new();
        for p in PARAMS {
            let mut value = None;
            for name in p.names() {
                if glob_match(pattern, name.as_bytes(), true)
                    || glob_match(pattern, swap_separators(name).as_bytes(), true)
                {
                    let v = value.get_or_insert_with(|| self.value_of(p)).clone();
                    out.push((name.to_string(), v));
                }
            }
        }
        out.sort();
        out
    }

    /// The current value of one parameter by any accepted name, in `CONFIG GET`
    /// format, or `None` for an unknown name.
    pub fn get_one(&self, name: &str) -> Option<String> {
        find_param(name).map(|p| self.value_of(p))
    }

    /// `CONFIG SET name value` for one parameter, applied atomically. On
    /// failure returns the exact Redis 7.0 error text, e.g.
    /// `ERR Unknown option or number of arguments for CONFIG SET - 'foo'` or
    /// `ERR CONFIG SET failed (possibly related to argument 'hz') - argument
    /// couldn't be parsed into an integer`. Names are case-insensitive and
    /// accept the underscore spellings of Libellule flags.
    pub fn set(&mut self, name: &str, value: &[u8]) -> Result<(), String> {
        let Some(param) = find_param(name) else {
            return Err(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            ));
        };
        let fail = |msg: &str| {
            format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - {msg}",
                name.to_ascii_lowercase()
            )
        };
        if param.flags & IMMUTABLE != 0 {
            return Err(fail("can't set immutable config"));
        }
        if param.flags & PROTECTED != 0 && !self.protected_configs_enabled() {
            return Err(fail("can't set protected config"));
        }
        let value = std::str::from_utf8(value).map_err(|_| fail("argument must be valid UTF-8"))?;
        let current = self.value_of(param);
        self.apply(param, value, &current, false)
            .map_err(|msg| fail(&msg))
    }

    /// The effective configuration on one line for the start-up log, with
    /// `requirepass` redacted. `extra` parameters appear only when they differ
    /// from their defaults.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "port={} bind={:?} requirepass={} maxmemory={} maxmemory_policy={} cache_mode={} \
             io_threads={} dbnum={} maxclients={} hz={} tcp_backlog={} timeout={} \
             tcp_keepalive={} protected_mode={} dir={:?} dbfilename={:?} save={:?} \
             snapshot_cron={:?} prometheus_port={} log_level={} proto_max_bulk_len={} \
             client_query_buffer_limit={}",
            self.port,
            self.bind.join(" "),
            if self.requirepass.is_empty() {
                "<none>"
            } else {
                "<redacted>"
            },
            self.maxmemory,
            self.maxmemory_policy,
            self.cache_mode,
            self.io_threads,
            self.dbnum,
            self.maxclients,
            self.hz,
            self.tcp_backlog,
            self.timeout,
            self.tcp_keepalive,
            yes_no(self.protected_mode),
            self.dir,
            self.dbfilename,
            format_save(&self.save),
            self.snapshot_cron,
            self.prometheus_port,
            self.log_level,
            self.proto_max_bulk_len,
            self.client_query_buffer_limit,
        );
        for p in PARAMS.iter().filter(|p| p.field.is_none()) {
            if let Some(v) = self.extra.get(p.name).filter(|v| v.as_str() != p.default) {
                let v = if p.name == "masterauth" {
                    "<redacted>"
                } else {
                    v
                };
                s.push_str(&format!(" {}={v:?}", p.name));
            }
        }
        s
    }

    /// True when `bind` contains an address that is not loopback (anything
    /// but 127.0.0.0/8, `::1` and `localhost`; `*` and `::*` count as
    /// non-loopback).
    pub fn binds_non_loopback(&self) -> bool {
        self.bind.iter().any(|a| !is_loopback(a))
    }

    /// The number of shards to run: `io_threads`, or when that is 0 the number
    /// of CPUs this process may run on (at least 1).
    pub fn shard_count(&self) -> usize {
        if self.io_threads > 0 {
            self.io_threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    fn protected_configs_enabled(&self) -> bool {
        self.extra
            .get("enable-protected-configs")
            .is_some_and(|v| v != "no")
    }

    /// The `CONFIG GET` value of a parameter.
    fn value_of(&self, p: &Param) -> String {
        let Some(field) = p.field else {
            let v = self
                .extra
                .get(p.name)
                .cloned()
                .unwrap_or_else(|| p.default.to_string());
            if matches!(p.kind, Kind::Notify) {
                return notify_display(&v);
            }
            return v;
        };
        match field {
            Field::Port => self.port.to_string(),
            Field::Bind => self.bind.join(" "),
            Field::Requirepass => self.requirepass.clone(),
            Field::Maxmemory => self.maxmemory.to_string(),
            Field::CacheMode => yes_no(self.cache_mode).to_string(),
            Field::Hz => self.hz.to_string(),
            Field::TcpBacklog => self.tcp_backlog.to_string(),
            Field::IoThreads => self.io_threads.to_string(),
            Field::Databases => self.dbnum.to_string(),
            Field::Maxclients => self.maxclients.to_string(),
            Field::Dbfilename => self.dbfilename.clone(),
            Field::Dir => std::fs::canonicalize(&self.dir)
                .ok()
                .and_then(|p| p.to_str().map(str::to_string))
                .unwrap_or_else(|| self.dir.clone()),
            Field::Save => format_save(&self.save),
            Field::SnapshotCron => self.snapshot_cron.clone(),
            Field::PrometheusPort => self.prometheus_port.to_string(),
            Field::Loglevel => redis_log_level(&self.log_level).to_string(),
            Field::ProtectedMode => yes_no(self.protected_mode).to_string(),
            Field::MaxmemoryPolicy => self.maxmemory_policy.clone(),
            Field::ProtoMaxBulkLen => self.proto_max_bulk_len.to_string(),
            Field::ClientQueryBufferLimit => self.client_query_buffer_limit.to_string(),
            Field::Timeout => self.timeout.to_string(),
            Field::TcpKeepalive => self.tcp_keepalive.to_string(),
        }
    }

    /// Validates and stores one parameter; the error is the Redis reason text.
    fn apply(&mut self, p: &Param, value: &str, current: &str, cli: bool) -> Result<(), String> {
        let canon = normalize(p.kind, value, current, cli)?;
        let Some(field) = p.field else {
            self.extra.insert(p.name.to_string(), canon);
            return Ok(());
        };
        // `normalize` guarantees the canonical value parses and is in range.
        let int = || canon.parse::<i64>().unwrap_or(0);
        let uint = || canon.parse::<u64>().unwrap_or(0);
        match field {
            Field::Port => self.port = int() as u16,
            Field::Bind => self.bind = split_bind(&canon),
            Field::Requirepass => self.requirepass = canon,
            Field::Maxmemory => self.maxmemory = uint(),
            Field::CacheMode => {
                // The two settings describe one behaviour (docs/memory.md): cache mode
                // evicts (reported as allkeys-lru unless an evicting policy is set),
                // store mode is `noeviction`.
                self.cache_mode = canon == "yes";
                if !self.cache_mode {
                    self.maxmemory_policy = "noeviction".to_string();
                } else if self.maxmemory_policy == "noeviction" {
                    self.maxmemory_policy = "allkeys-lru".to_string();
                }
            }
            Field::Hz => self.hz = int().clamp(1, 500) as u32,
            Field::TcpBacklog => self.tcp_backlog = int() as u32,
            Field::IoThreads => self.io_threads = int() as usize,
            Field::Databases => self.dbnum = int() as usize,
            Field::Maxclients => self.maxclients = int() as usize,
            Field::Dbfilename => self.dbfilename = canon,
            Field::Dir => self.dir = canon,
            Field::Save => {
                self.save = parse_save(&canon)?;
                self.save_raw = canon;
            }
            Field::SnapshotCron => {
                if !canon.trim().is_empty() {
                    crate::persistence::schedule::Cron::parse(&canon)?;
                }
                self.snapshot_cron = canon;
            }
            Field::PrometheusPort => self.prometheus_port = int() as u16,
            Field::Loglevel => self.log_level = canon,
            Field::ProtectedMode => self.protected_mode = canon == "yes",
            Field::MaxmemoryPolicy => {
                self.cache_mode = canon != "noeviction";
                self.maxmemory_policy = canon;
            }
            Field::ProtoMaxBulkLen => self.proto_max_bulk_len = uint(),
            Field::ClientQueryBufferLimit => self.client_query_buffer_limit = uint(),
            Field::Timeout => self.timeout = uint(),
            Field::TcpKeepalive => self.tcp_keepalive = uint(),
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

const AFTER_HELP: &str = "\
Every flag may be spelled with underscores or dashes (--tcp_backlog / --tcp-backlog) and \
takes its value as '--flag value' or '--flag=value'. Booleans accept true/false/yes/no/1/0. \
Sizes accept Redis units (k=1000, kb=1024, m, mb, g, gb) and KiB/MiB/GiB/TiB, e.g. 1.5GiB. \
Any Redis parameter known to CONFIG SET without a dedicated flag is accepted too, \
e.g. --appendonly yes or --hash-max-listpack-entries 64.";

/// The raw command line, before cross-field defaults are resolved.
#[derive(Parser, Debug)]
#[command(
    name = "libellule",
    about = "Libellule: a Redis/Dragonfly-compatible in-memory data store",
    after_help = AFTER_HELP,
    disable_version_flag = true,
    args_override_self = true,
    color = ColorChoice::Never
)]
struct Cli {
    /// TCP port to listen on.
    #[arg(long, default_value_t = 6379)]
    port: u16,

    /// Addresses to bind, space- or comma-separated (e.g. "127.0.0.1 ::1").
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDRS", value_parser = bind_value)]
    bind: String,

    /// Password required from clients (AUTH); empty means none.
    #[arg(long, default_value = "", value_name = "PASSWORD")]
    requirepass: String,

    /// Memory limit (e.g. 4gb, 1.5GiB); 0 means unlimited.
    #[arg(long, default_value = "0", value_name = "SIZE", value_parser = size_value)]
    maxmemory: u64,

    /// Cache mode: evict keys instead of refusing writes when memory is full.
    #[arg(long = "cache_mode", alias = "cache-mode", value_name = "BOOL", default_value = "false",
          num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set,
          value_parser = bool_value)]
    cache_mode: bool,

    /// Frequency of background tasks per second (1..=500; larger values are clamped).
    #[arg(long, default_value = "10", value_parser = hz_value)]
    hz: u32,

    /// Listen backlog of the TCP socket.
    #[arg(
        long = "tcp_backlog",
        alias = "tcp-backlog",
        default_value_t = 511,
        value_name = "N"
    )]
    tcp_backlog: u32,

    /// Number of shards (threads); 0 means one per CPU the process may run on.
    #[arg(long = "io_threads", aliases = ["io-threads", "proactor_threads", "proactor-threads"],
          default_value = "0", value_name = "N", value_parser = io_threads_value)]
    io_threads: usize,

    /// Number of logical databases (1..=1024).
    #[arg(long, alias = "databases", default_value = "16", value_name = "N", value_parser = dbnum_value)]
    dbnum: usize,

    /// Maximum number of connected clients.
    #[arg(long, default_value = "10000", value_name = "N", value_parser = maxclients_value)]
    maxclients: usize,

    /// Snapshot file name.
    #[arg(long, default_value = "dump.rdb", value_name = "FILE",
          value_parser = dbfilename_value)]
    dbfilename: String,

    /// Working directory for snapshots.
    #[arg(long, default_value = ".", value_name = "DIR")]
    dir: String,

    /// Snapshot schedule in Redis syntax, e.g. "3600 1 300 100"; "" means never.
    #[arg(long, default_value = "", value_name = "SCHEDULE", value_parser = save_value)]
    save: String,

    /// Cron expression for snapshots (five fields, UTC), e.g. "*/5 * * * *"; "" = none.
    #[arg(
        long = "snapshot_cron",
        alias = "snapshot-cron",
        default_value = "",
        value_name = "CRON",
        value_parser = cron_value
    )]
    snapshot_cron: String,

    /// Port of the Prometheus metrics endpoint; 0 disables it.
    #[arg(
        long = "prometheus_port",
        alias = "prometheus-port",
        default_value_t = 0,
        value_name = "PORT"
    )]
    prometheus_port: u16,

    /// Log level: error, warn, info, debug, trace (or Redis words warning, notice, verbose).
    #[arg(long = "log_level", aliases = ["log-level", "loglevel"], default_value = "info",
          value_name = "LEVEL", value_parser = log_level_value)]
    log_level: String,

    /// Refuse non-loopback clients when no password is set.
    #[arg(long = "protected_mode", alias = "protected-mode", value_name = "BOOL", default_value = "yes",
          num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set,
          value_parser = bool_value)]
    protected_mode: bool,

    /// Eviction policy (default noeviction; allkeys-lru in cache mode).
    #[arg(long = "maxmemory_policy", alias = "maxmemory-policy", value_name = "POLICY",
          value_parser = policy_value)]
    maxmemory_policy: Option<String>,

    /// Largest accepted bulk string.
    #[arg(long = "proto_max_bulk_len", alias = "proto-max-bulk-len", default_value = "512mb",
          value_name = "SIZE", value_parser = size_value)]
    proto_max_bulk_len: u64,

    /// Largest accepted query buffer per client.
    #[arg(long = "client_query_buffer_limit", alias = "client-query-buffer-limit",
          default_value = "1gb", value_name = "SIZE", value_parser = size_value)]
    client_query_buffer_limit: u64,

    /// Close connections idle for this many seconds; 0 disables.
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    timeout: u64,

    /// TCP keepalive interval in seconds; 0 disables.
    #[arg(
        long = "tcp_keepalive",
        alias = "tcp-keepalive",
        default_value_t = 300,
        value_name = "SECONDS"
    )]
    tcp_keepalive: u64,

    /// Read flags from FILE (one per line; '#' comments). Later flags override it.
    #[arg(long, value_name = "FILE")]
    flagfile: Vec<String>,
}

fn cli_command() -> clap::Command {
    Cli::command().version(env!("CARGO_PKG_VERSION")).arg(
        Arg::new("version")
            .short('v')
            .long("version")
            .action(ArgAction::Version)
            .help("Print version"),
    )
}

fn clap_error(e: clap::Error) -> ConfigError {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ConfigError::Exit(e.to_string()),
        _ => ConfigError::Invalid(e.to_string()),
    }
}

fn bool_value(s: &str) -> Result<bool, String> {
    parse_bool_word(s).ok_or_else(|| "expected true/false/yes/no/1/0".to_string())
}

fn size_value(s: &str) -> Result<u64, String> {
    parse_size(s)
}

fn bind_value(s: &str) -> Result<String, String> {
    if split_bind(s).is_empty() {
        Err("expected at least one address".into())
    } else {
        Ok(s.to_string())
    }
}

fn bounded(s: &str, min: u64, max: u64) -> Result<u64, String> {
    let v: u64 = s
        .parse()
        .map_err(|_| format!("expected an integer between {min} and {max}"))?;
    if v < min || v > max {
        return Err(format!("expected an integer between {min} and {max}"));
    }
    Ok(v)
}

fn hz_value(s: &str) -> Result<u32, String> {
    let v = bounded(s, 1, u32::MAX as u64).map_err(|_| {
        "expected an integer >= 1 (values above 500 are clamped to 500)".to_string()
    })?;
    if v > 500 {
        log::warn!("--hz {v} is above the maximum, using 500");
    }
    Ok(v.min(500) as u32)
}

fn io_threads_value(s: &str) -> Result<usize, String> {
    bounded(s, 0, 1024).map(|v| v as usize)
}

fn dbnum_value(s: &str) -> Result<usize, String> {
    bounded(s, 1, 1024).map(|v| v as usize)
}

fn maxclients_value(s: &str) -> Result<usize, String> {
    bounded(s, 1, u32::MAX as u64).map(|v| v as usize)
}

fn save_value(s: &str) -> Result<String, String> {
    parse_save(s)
        .map(|_| s.trim().to_string())
        .map_err(|_| "expected pairs of '<seconds> <changes>' (seconds >= 1), or \"\"".into())
}

fn cron_value(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Ok(String::new());
    }
    crate::persistence::schedule::Cron::parse(s).map(|_| s.trim().to_string())
}

fn log_level_value(s: &str) -> Result<String, String> {
    parse_log_level(s).map(str::to_string).ok_or_else(|| {
        "expected one of error, warn, info, debug, trace (or warning, notice, verbose)".into()
    })
}

fn policy_value(s: &str) -> Result<String, String> {
    normalize(Kind::Enum(&MAXMEMORY_POLICIES), s, "", true)
        .map_err(|_| format!("expected one of {}", MAXMEMORY_POLICIES.join(", ")))
}

fn dbfilename_value(s: &str) -> Result<String, String> {
    normalize(Kind::Dbfilename, s, "", true)
}

impl Cli {
    fn into_config(self) -> Result<Config, ConfigError> {
        let save = parse_save(&self.save).map_err(ConfigError::Invalid)?;
        let maxmemory_policy = self.maxmemory_policy.unwrap_or_else(|| {
            if self.cache_mode {
                "allkeys-lru".to_string()
            } else {
                "noeviction".to_string()
            }
        });
        // An explicit policy decides the mode (an evicting policy is cache mode,
        // `noeviction` store mode); see docs/memory.md.
        let cache_mode = maxmemory_policy != "noeviction";
        Ok(Config {
            port: self.port,
            bind: split_bind(&self.bind),
            requirepass: self.requirepass,
            maxmemory: self.maxmemory,
            cache_mode,
            hz: self.hz,
            tcp_backlog: self.tcp_backlog,
            io_threads: self.io_threads,
            dbnum: self.dbnum,
            maxclients: self.maxclients,
            dbfilename: self.dbfilename,
            dir: self.dir,
            save,
            save_raw: self.save,
            snapshot_cron: self.snapshot_cron,
            prometheus_port: self.prometheus_port,
            log_level: self.log_level,
            protected_mode: self.protected_mode,
            maxmemory_policy,
            proto_max_bulk_len: self.proto_max_bulk_len,
            client_query_buffer_limit: self.client_query_buffer_limit,
            timeout: self.timeout,
            tcp_keepalive: self.tcp_keepalive,
            ..Config::default()
        })
    }
}

/// How a clap long flag consumes the token after it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takes {
    Nothing,
    Optional,
    Value,
}

/// Long names and aliases of the clap flags and how they take values.
fn known_flags(command: &clap::Command) -> Vec<(String, Takes)> {
    let mut out = Vec::new();
    for arg in command.get_arguments() {
        let takes = if !arg.get_action().takes_values() {
            Takes::Nothing
        } else if arg
            .get_num_args()
            .is_some_and(|r: ValueRange| r.min_values() == 0)
        {
            Takes::Optional
        } else {
            Takes::Value
        };
        let longs = arg
            .get_long()
            .into_iter()
            .chain(arg.get_all_aliases().unwrap_or_default());
        for long in longs {
            out.push((long.to_string(), takes));
        }
    }
    out.push(("help".to_string(), Takes::Nothing));
    out
}

/// Expands `--flagfile` in place and pulls out the generic Redis parameters
/// (`--appendonly yes`), leaving everything else for clap.
fn preprocess(
    args: &[String],
    depth: usize,
    known: &[(String, Takes)],
    clap_args: &mut Vec<String>,
    extras: &mut Vec<(String, String)>,
) -> Result<(), ConfigError> {
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            clap_args.extend(args[i - 1..].iter().cloned());
            break;
        }
        let Some(body) = arg.strip_prefix("--") else {
            clap_args.push(arg.clone());
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if name.eq_ignore_ascii_case("flagfile") || name.eq_ignore_ascii_case("flag-file") {
            let path = match inline {
                Some(p) => p,
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => return Err(ConfigError::Invalid(
                    "error: a value is required for '--flagfile <FILE>' but none was supplied\n"
                        .into(),
                )),
            };
            if depth >= MAX_FLAGFILE_DEPTH {
                return Err(ConfigError::Invalid(format!(
                    "error: invalid value '{path}' for '--flagfile': nested more than {MAX_FLAGFILE_DEPTH} levels deep\n"
                )));
            }
            let tokens = read_flagfile(&path)?;
            preprocess(&tokens, depth + 1, known, clap_args, extras)?;
            continue;
        }
        if let Some((_, takes)) = known.iter().find(|(n, _)| n == name) {
            // Join `--flag value` into `--flag=value` so that clap never
            // mistakes a value such as `-1` or `-secret` for a flag.
            let take = inline.is_none()
                && i < args.len()
                && match takes {
                    Takes::Nothing => false,
                    Takes::Optional => !args[i].starts_with('-'),
                    Takes::Value => true,
                };
            if take {
                clap_args.push(format!("{arg}={}", args[i]));
                i += 1;
            } else {
                clap_args.push(arg.clone());
            }
            continue;
        }
        if find_param(name).is_some() {
            let value = match inline {
                Some(v) => v,
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => {
                    return Err(ConfigError::Invalid(format!(
                        "error: a value is required for '--{name}' but none was supplied\n"
                    )))
                }
            };
            extras.push((name.to_string(), value));
            continue;
        }
        clap_args.push(arg.clone());
    }
    Ok(())
}

/// Reads a flag file into command-line tokens.
fn read_flagfile(path: &str) -> Result<Vec<String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::Invalid(format!(
            "error: invalid value '{path}' for '--flagfile': cannot read it: {e}\n"
        ))
    })?;
    let mut tokens = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = if line.starts_with("--") {
            line.to_string()
        } else if line.len() > 2 && line.starts_with('-') {
            format!("-{line}")
        } else {
            return Err(ConfigError::Invalid(format!(
                "error: invalid value '{path}' for '--flagfile': line {}: expected a flag like --name=value, found '{line}'\n",
                n + 1
            )));
        };
        let eq = line.find('=');
        let ws = line.find(char::is_whitespace);
        match (eq, ws) {
            (Some(e), w) if w.is_none_or(|w| e < w) => {
                let (name, value) = line.split_at(e);
                tokens.push(format!("{name}={}", unquote(&value[1..])));
            }
            (_, Some(w)) => {
                tokens.push(line[..w].to_string());
                tokens.push(unquote(line[w..].trim()).to_string());
            }
            _ => tokens.push(line),
        }
    }
    Ok(tokens)
}

fn unquote(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        Config::from_args(
            std::iter::once("libellule")
                .chain(args.iter().copied())
                .map(String::from),
        )
    }

    fn ok(args: &[&str]) -> Config {
        match parse(args) {
            Ok(c) => c,
            Err(e) => panic!("{args:?} failed: {e}"),
        }
    }

    fn invalid(args: &[&str]) -> String {
        match parse(args) {
            Err(ConfigError::Invalid(m)) => m,
            Err(ConfigError::Exit(m)) => panic!("{args:?}: unexpected exit: {m}"),
            Ok(_) => panic!("{args:?} unexpectedly parsed"),
        }
    }

    fn get1(c: &Config, name: &str) -> String {
        let v = c.get(name.as_bytes());
        assert_eq!(v.len(), 1, "{name}: {v:?}");
        v[0].1.clone()
    }

    #[test]
    fn defaults() {
        let c = ok(&[]);
        assert_eq!(c.port, 6379);
        assert_eq!(c.bind, vec!["127.0.0.1"]);
        assert_eq!(c.requirepass, "");
        assert_eq!(c.maxmemory, 0);
        assert!(!c.cache_mode);
        assert_eq!(c.hz, 10);
        assert_eq!(c.tcp_backlog, 511);
        assert_eq!(c.io_threads, 0);
        assert_eq!(c.dbnum, 16);
        assert_eq!(c.maxclients, 10000);
        assert_eq!(c.dbfilename, "dump.rdb");
        assert_eq!(c.dir, ".");
        assert!(c.save.is_empty());
        assert_eq!(c.save_raw, "");
        assert_eq!(c.snapshot_cron, "");
        assert_eq!(c.prometheus_port, 0);
        assert_eq!(c.log_level, "info");
        assert!(c.protected_mode);
        assert_eq!(c.maxmemory_policy, "noeviction");
        assert_eq!(c.proto_max_bulk_len, 512 * 1024 * 1024);
        assert_eq!(c.client_query_buffer_limit, 1024 * 1024 * 1024);
        assert_eq!(c.timeout, 0);
        assert_eq!(c.tcp_keepalive, 300);
        assert_eq!(c.extra["hash-max-listpack-entries"], "512");
        assert_eq!(c.extra["list-max-listpack-size"], "-2");
        let d = Config::default();
        assert_eq!(format!("{c:?}"), format!("{d:?}"));
        // Empty argv still works.
        assert!(Config::from_args(Vec::<String>::new()).is_ok());
    }

    #[test]
    fn both_spellings_and_forms() {
        for args in [
            &["--tcp-backlog", "512"][..],
            &["--tcp_backlog=512"],
            &["--tcp_backlog", "512"],
            &["--tcp-backlog=512"],
        ] {
            assert_eq!(ok(args).tcp_backlog, 512, "{args:?}");
        }
        assert!(ok(&["--cache_mode", "true"]).cache_mode);
        assert!(ok(&["--cache-mode=true"]).cache_mode);
        assert!(ok(&["--cache_mode"]).cache_mode);
        assert!(ok(&["--cache_mode", "--port", "1"]).cache_mode);
        assert!(!ok(&["--cache-mode", "NO"]).cache_mode);
        let c = ok(&[
            "--port=7000",
            "--io-threads",
            "3",
            "--prometheus-port=9090",
            "--snapshot-cron",
            "*/5 * * * *",
            "--proto-max-bulk-len",
            "1mb",
            "--client-query-buffer-limit=2gb",
            "--tcp-keepalive",
            "0",
            "--maxmemory-policy",
            "ALLKEYS-LFU",
            "--protected-mode",
            "no",
        ]);
        assert_eq!(c.port, 7000);
        assert_eq!(c.io_threads, 3);
        assert_eq!(c.prometheus_port, 9090);
        assert_eq!(c.snapshot_cron, "*/5 * * * *");
        assert_eq!(c.proto_max_bulk_len, 1 << 20);
        assert_eq!(c.client_query_buffer_limit, 2 << 30);
        assert_eq!(c.tcp_keepalive, 0);
        assert_eq!(c.maxmemory_policy, "allkeys-lfu");
        assert!(!c.protected_mode);
        assert_eq!(ok(&["--proactor_threads", "2"]).io_threads, 2);
        assert_eq!(ok(&["--databases", "4"]).dbnum, 4);
    }

    #[test]
    fn booleans() {
        for (w, v) in [
            ("true", true),
            ("YES", true),
            ("1", true),
            ("False", false),
            ("no", false),
            ("0", false),
        ] {
            assert_eq!(ok(&["--protected_mode", w]).protected_mode, v, "{w}");
            assert_eq!(ok(&[&format!("--cache_mode={w}")]).cache_mode, v, "{w}");
        }
        assert!(invalid(&["--cache_mode=maybe"]).contains("--cache_mode"));
    }

    #[test]
    fn empty_values() {
        let c = ok(&["--save", "", "--requirepass", "", "--snapshot_cron="]);
        assert!(c.save.is_empty());
        assert_eq!(c.requirepass, "");
        let c = ok(&["--requirepass", "-secret-"]);
        assert_eq!(c.requirepass, "-secret-");
    }

    #[test]
    fn save_schedule() {
        let c = ok(&["--save", "3600 1 300 100 60 10000"]);
        assert_eq!(c.save, vec![(3600, 1), (300, 100), (60, 10000)]);
        assert_eq!(c.save_raw, "3600 1 300 100 60 10000");
        assert_eq!(get1(&c, "save"), "3600 1 300 100 60 10000");
        for bad in ["1", "0 1", "a 1", "1 -1", "1 2 3"] {
            let m = invalid(&["--save", bad]);
            assert!(m.contains("--save"), "{m}");
        }
    }

    #[test]
    fn bind_list() {
        let c = ok(&["--bind", "127.0.0.1 ::1"]);
        assert_eq!(c.bind, vec!["127.0.0.1", "::1"]);
        assert!(!c.binds_non_loopback());
        assert_eq!(get1(&c, "bind"), "127.0.0.1 ::1");
        assert!(ok(&["--bind=0.0.0.0"]).binds_non_loopback());
        assert!(ok(&["--bind", "127.0.0.1,10.0.0.1"]).binds_non_loopback());
        assert!(!ok(&["--bind", "localhost 127.0.0.2 -::1 [::1]"]).binds_non_loopback());
        assert!(ok(&["--bind", "* -::*"]).binds_non_loopback());
        assert!(invalid(&["--bind", ""]).contains("--bind"));
    }

    #[test]
    fn log_levels() {
        for (w, v) in [
            ("error", "error"),
            ("warn", "warn"),
            ("info", "info"),
            ("debug", "debug"),
            ("trace", "trace"),
        ] {
            assert_eq!(ok(&["--log_level", w]).log_level, v);
        }
        for (w, v) in [
            ("warning", "warn"),
            ("notice", "info"),
            ("verbose", "debug"),
            ("debug", "debug"),
        ] {
            assert_eq!(ok(&["--loglevel", w]).log_level, v);
            assert_eq!(ok(&[&format!("--log-level={w}")]).log_level, v);
        }
        assert!(invalid(&["--loglevel", "loud"]).contains("--log_level"));
        let mut c = ok(&["--loglevel", "warning"]);
        assert_eq!(get1(&c, "loglevel"), "warning");
        c.set("loglevel", b"notice").unwrap();
        assert_eq!(c.log_level, "info");
        assert_eq!(get1(&c, "loglevel"), "notice");
        c.set("log_level", b"trace").unwrap();
        assert_eq!(c.log_level, "trace");
        assert_eq!(
            c.set("loglevel", b"loud").unwrap_err(),
            "ERR CONFIG SET failed (possibly related to argument 'loglevel') - argument(s) must be one of the following: debug, verbose, notice, warning"
        );
    }

    #[test]
    fn numeric_validation() {
        assert_eq!(ok(&["--hz", "500"]).hz, 500);
        assert_eq!(ok(&["--hz", "1000"]).hz, 500);
        for bad in [
            &["--hz", "0"][..],
            &["--hz", "fast"],
            &["--port", "70000"],
            &["--port", "-1"],
            &["--dbnum", "0"],
            &["--dbnum", "2000"],
            &["--maxclients", "0"],
            &["--maxmemory", "lots"],
            &["--maxmemory", "-5"],
            &["--timeout", "x"],
            &["--maxmemory_policy", "lru"],
        ] {
            let m = invalid(bad);
            let flag = bad[0].replace(['-', '_'], "");
            assert!(m.replace(['-', '_'], "").contains(&flag), "{bad:?}: {m}");
        }
    }

    #[test]
    fn unknown_flag_is_named() {
        let m = invalid(&["--frobnicate", "1"]);
        assert!(m.contains("--frobnicate"), "{m}");
        let m = invalid(&["-x"]);
        assert!(m.contains("-x"), "{m}");
    }

    #[test]
    fn help_and_version() {
        for f in ["--help", "-h"] {
            match parse(&[f]) {
                Err(ConfigError::Exit(t)) => {
                    assert!(t.contains("--tcp_backlog"), "{t}");
                    assert!(t.contains("--flagfile"), "{t}");
                }
                other => panic!("{f}: {other:?}"),
            }
        }
        for f in ["--version", "-v"] {
            match parse(&[f]) {
                Err(ConfigError::Exit(t)) => assert!(t.contains(env!("CARGO_PKG_VERSION"))),
                other => panic!("{f}: {other:?}"),
            }
        }
    }

    #[test]
    fn last_occurrence_wins() {
        assert_eq!(ok(&["--port", "1", "--port=2"]).port, 2);
        assert_eq!(
            ok(&["--tcp_backlog", "1", "--tcp-backlog", "3"]).tcp_backlog,
            3
        );
    }

    #[test]
    fn cache_mode_policy_default() {
        assert_eq!(ok(&["--cache_mode=true"]).maxmemory_policy, "allkeys-lru");
        let c = ok(&["--cache_mode=true", "--maxmemory_policy=noeviction"]);
        assert_eq!(c.maxmemory_policy, "noeviction");
    }

    fn temp_file(name: &str, text: &str) -> String {
        let dir = std::env::temp_dir().join(format!("libellule-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    }

    #[test]
    fn flagfile() {
        let path = temp_file(
            "flags.txt",
            "# comment\n\n--port=7001\n--tcp-backlog 100\n  --save \"3600 1\"\n--requirepass=''\n\
             --cache_mode\n-maxmemory=1.5gb\n--appendonly yes\n",
        );
        let c = ok(&["--flagfile", &path]);
        assert_eq!(c.port, 7001);
        assert_eq!(c.tcp_backlog, 100);
        assert_eq!(c.save, vec![(3600, 1)]);
        assert_eq!(c.requirepass, "");
        assert!(c.cache_mode);
        assert_eq!(c.maxmemory, 1_610_612_736);
        assert_eq!(c.extra["appendonly"], "yes");
        // Command-line flags after --flagfile win; those before lose.
        let c = ok(&[
            "--port",
            "1",
            &format!("--flagfile={path}"),
            "--tcp_backlog=5",
        ]);
        assert_eq!(c.port, 7001);
        assert_eq!(c.tcp_backlog, 5);
        // Nested files.
        let outer = temp_file("outer.txt", &format!("--flagfile={path}\n--hz=20\n"));
        let c = ok(&["--flagfile", &outer]);
        assert_eq!((c.port, c.hz), (7001, 20));
        // Errors name the flag.
        let bad = temp_file("bad.txt", "--port=notaport\n");
        assert!(invalid(&["--flagfile", &bad]).contains("--port"));
        let junk = temp_file("junk.txt", "port 1\n");
        assert!(invalid(&["--flagfile", &junk]).contains("--flagfile"));
        assert!(invalid(&["--flagfile", "/nonexistent/flags"]).contains("--flagfile"));
        assert!(invalid(&["--flagfile"]).contains("--flagfile"));
        let selfref = temp_file("self.txt", "");
        std::fs::write(&selfref, format!("--flagfile={selfref}\n")).unwrap();
        assert!(invalid(&["--flagfile", &selfref]).contains("nested"));
    }

    #[test]
    fn generic_redis_params_as_flags() {
        let c = ok(&[
            "--appendonly",
            "true",
            "--hash_max_listpack_entries=64",
            "--list-max-listpack-size",
            "-3",
            "--enable-protected-configs",
            "yes",
            "--notify-keyspace-events",
            "KEA",
            "--hash-max-ziplist-value",
            "1kb",
        ]);
        assert_eq!(c.extra["appendonly"], "yes");
        assert_eq!(c.extra["hash-max-listpack-entries"], "64");
        assert_eq!(c.extra["list-max-listpack-size"], "-3");
        assert_eq!(c.extra["enable-protected-configs"], "yes");
        assert_eq!(c.extra["notify-keyspace-events"], "AKE");
        assert_eq!(c.extra["hash-max-listpack-value"], "1024");
        let m = invalid(&["--appendfsync", "sometimes"]);
        assert!(m.contains("--appendfsync"), "{m}");
        assert!(invalid(&["--appendonly"]).contains("--appendonly"));
    }

    #[test]
    fn sizes() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("100", 100),
            ("100b", 100),
            ("1k", 1000),
            ("1K", 1000),
            ("1kb", 1024),
            ("1KB", 1024),
            ("1kB", 1024),
            ("2m", 2_000_000),
            ("2mb", 2 << 20),
            ("3g", 3_000_000_000),
            ("3gb", 3 << 30),
            ("3GB", 3 << 30),
            ("1t", 1_000_000_000_000),
            ("1tb", 1 << 40),
            ("1KiB", 1024),
            ("1MiB", 1 << 20),
            ("1GiB", 1 << 30),
            ("1TiB", 1 << 40),
            ("1.5GiB", 1_610_612_736),
            ("1.5gb", 1_610_612_736),
            ("1.5g", 1_500_000_000),
            ("0.5kb", 512),
            ("1.1kb", 1126),
            ("007", 7),
            ("18446744073709551615", u64::MAX),
        ];
        for (s, v) in cases {
            assert_eq!(parse_size(s), Ok(*v), "{s}");
        }
        for s in [
            "",
            "-1",
            "abc",
            "1x",
            "1 kb",
            " 1",
            "1.5",
            "1.5b",
            ".5kb",
            "1.kb",
            "1..5kb",
            "1e3",
            "0x10",
            "18446744073709551616",
            "99999999999tb",
            "1gbb",
        ] {
            assert!(parse_size(s).is_err(), "{s}");
        }
    }

    #[test]
    fn globs() {
        let m = |p: &str, t: &str| glob_match(p.as_bytes(), t.as_bytes(), false);
        assert!(m("*", "anything"));
        assert!(m("*", ""));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("a\\", "a\\"));
        assert!(m("[\\]]", "]"));
        // `[]` is an empty class, as in Redis.
        assert!(!m("[]a]", "a"));
        assert!(!m("[]a]", "]"));
        assert!(m("[^]a]", "xa]"));
        assert!(m("a[bc", "ab"));
        assert!(m("a[bc", "ac"));
        assert!(!m("a[bc", "ad"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("*.txt", "notes.txt"));
        assert!(!m("*.txt", "notes.txt.bak"));
        assert!(m("user:*:name", "user:42:name"));
        assert!(m("a*", "a"));
        assert!(!m("a?", "a"));
        assert!(!m("HELLO", "hello"));
        assert!(glob_match(b"HE[L]LO", b"hello", true));
        assert!(glob_match(b"h[A-C]llo", b"hbllo", true));
        assert!(glob_match(b"\xff*", b"\xff\x00\x01", false));
        // Pathological patterns finish quickly.
        let text = vec![b'a'; 10_000];
        let mut pat = b"a*".repeat(200);
        pat.push(b'b');
        let start = std::time::Instant::now();
        assert!(!glob_match(&pat, &text, false));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        let pat = b"*".repeat(100_000);
        assert!(glob_match(&pat, &text, false));
    }

    #[test]
    fn config_get() {
        let c = ok(&[]);
        assert_eq!(get1(&c, "maxmemory"), "0");
        assert_eq!(get1(&c, "port"), "6379");
        assert_eq!(get1(&c, "bind"), "127.0.0.1");
        assert_eq!(get1(&c, "requirepass"), "");
        assert_eq!(get1(&c, "save"), "");
        assert_eq!(get1(&c, "databases"), "16");
        assert_eq!(get1(&c, "protected-mode"), "yes");
        assert_eq!(get1(&c, "proto-max-bulk-len"), "536870912");
        assert_eq!(get1(&c, "client-query-buffer-limit"), "1073741824");
        assert_eq!(get1(&c, "loglevel"), "notice");
        assert_eq!(get1(&c, "tcp-backlog"), "511");
        assert_eq!(get1(&c, "cache_mode"), "no");
        assert_eq!(get1(&c, "io_threads"), "0");
        assert_eq!(get1(&c, "hash-max-ziplist-entries"), "512");
        assert_eq!(get1(&c, "lua-time-limit"), "5000");
        let dir = get1(&c, "dir");
        assert!(dir.starts_with('/'), "{dir}");
        // Exact lookups echo the name as given, like Redis.
        assert_eq!(c.get(b"MAXMEMORY"), vec![("MAXMEMORY".into(), "0".into())]);
        assert_eq!(c.get(b"dbnum"), vec![("dbnum".into(), "16".into())]);
        assert_eq!(c.get(b"tcp_backlog")[0].1, "511");
        assert!(c.get(b"nosuch").is_empty());
        assert!(c.get(b"").is_empty());
        // Globs.
        let names: Vec<String> = c.get(b"maxmemory*").into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "maxmemory",
                "maxmemory-clients",
                "maxmemory-eviction-tenacity",
                "maxmemory-policy",
                "maxmemory-samples"
            ]
        );
        let names: Vec<String> = c.get(b"HASH-*").into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "hash-max-listpack-entries",
                "hash-max-listpack-value",
                "hash-max-ziplist-entries",
                "hash-max-ziplist-value"
            ]
        );
        assert_eq!(c.get(b"cache-*"), vec![("cache_mode".into(), "no".into())]);
        assert_eq!(c.get(b"h?"), vec![("hz".into(), "10".into())]);
        let all = c.get(b"*");
        let mut names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate names");
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        for needed in [
            "port",
            "bind",
            "requirepass",
            "maxmemory",
            "cache_mode",
            "hz",
            "tcp-backlog",
            "io_threads",
            "databases",
            "maxclients",
            "dbfilename",
            "dir",
            "save",
            "snapshot_cron",
            "prometheus_port",
            "loglevel",
            "protected-mode",
            "maxmemory-policy",
            "proto-max-bulk-len",
            "client-query-buffer-limit",
            "timeout",
            "tcp-keepalive",
            "appendonly",
            "notify-keyspace-events",
            "slowlog-max-len",
        ] {
            assert!(names.contains(&needed), "{needed} missing");
        }
        // Hidden aliases are not listed.
        assert!(!names.contains(&"dbnum"));
        assert!(!names.contains(&"log_level"));
    }

    fn set_err(c: &mut Config, name: &str, value: &str) -> String {
        c.set(name, value.as_bytes()).unwrap_err()
    }

    fn fail(name: &str, msg: &str) -> String {
        format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {msg}")
    }

    #[test]
    fn config_set_errors_match_redis() {
        let mut c = ok(&[]);
        assert_eq!(
            set_err(&mut c, "foo", "1"),
            "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"
        );
        assert_eq!(
            set_err(&mut c, "hz", "abc"),
            fail("hz", "argument couldn't be parsed into an integer")
        );
        assert_eq!(
            set_err(&mut c, "HZ", "abc"),
            fail("hz", "argument couldn't be parsed into an integer")
        );
        for v in ["", " 5", "+5", "05", "5.0", "-0"] {
            assert_eq!(
                set_err(&mut c, "hz", v),
                fail("hz", "argument couldn't be parsed into an integer"),
                "{v:?}"
            );
        }
        assert_eq!(
            set_err(&mut c, "hz", "-1"),
            fail("hz", "argument must be between 0 and 2147483647 inclusive")
        );
        assert_eq!(
            set_err(&mut c, "databases", "3"),
            fail("databases", "can't set immutable config")
        );
        assert_eq!(
            set_err(&mut c, "maxmemory", "1x"),
            fail("maxmemory", "argument must be a memory value")
        );
        assert_eq!(
            set_err(&mut c, "maxmemory", "-1"),
            fail("maxmemory", "argument must be a memory value")
        );
        assert_eq!(
            set_err(&mut c, "maxmemory-policy", "bad"),
            fail("maxmemory-policy", "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction")
        );
        for v in ["1", "0 0", "1 -1", "1 2 3", "abc 1"] {
            assert_eq!(
                set_err(&mut c, "save", v),
                fail("save", "Invalid save parameters"),
                "{v}"
            );
        }
        assert_eq!(
            set_err(&mut c, "protected-mode", "maybe"),
            fail("protected-mode", "argument must be 'yes' or 'no'")
        );
        assert_eq!(
            set_err(&mut c, "protected-mode", "true"),
            fail("protected-mode", "argument must be 'yes' or 'no'")
        );
        assert_eq!(
            set_err(&mut c, "appendfsync", "bad"),
            fail(
                "appendfsync",
                "argument(s) must be one of the following: everysec, always, no"
            )
        );
        assert_eq!(
            set_err(&mut c, "notify-keyspace-events", "Z"),
            fail(
                "notify-keyspace-events",
                "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
            )
        );
        assert_eq!(
            set_err(&mut c, "timeout", "-1"),
            fail(
                "timeout",
                "argument must be between 0 and 2147483647 inclusive"
            )
        );
        assert_eq!(
            set_err(&mut c, "tcp-backlog", "10"),
            fail("tcp-backlog", "can't set immutable config")
        );
        assert_eq!(
            set_err(&mut c, "maxclients", "0"),
            fail(
                "maxclients",
                "argument must be between 1 and 4294967295 inclusive"
            )
        );
        assert_eq!(
            set_err(&mut c, "maxclients", "4294967296"),
            fail(
                "maxclients",
                "argument must be between 1 and 4294967295 inclusive"
            )
        );
        assert_eq!(
            set_err(&mut c, "proto-max-bulk-len", "100"),
            fail(
                "proto-max-bulk-len",
                "argument must be between 1048576 and 9223372036854775807 inclusive"
            )
        );
        assert_eq!(
            set_err(&mut c, "client-query-buffer-limit", "100"),
            fail(
                "client-query-buffer-limit",
                "argument must be between 1048576 and 9223372036854775807 inclusive"
            )
        );
        assert_eq!(
            set_err(&mut c, "slowlog-log-slower-than", "-5"),
            fail(
                "slowlog-log-slower-than",
                "argument must be between -1 and 9223372036854775807 inclusive"
            )
        );
        assert_eq!(
            set_err(&mut c, "active-expire-effort", "11"),
            fail(
                "active-expire-effort",
                "argument must be between 1 and 10 inclusive"
            )
        );
        assert_eq!(
            set_err(&mut c, "maxmemory-samples", "0"),
            fail(
                "maxmemory-samples",
                "argument must be between 1 and 2147483647 inclusive"
            )
        );
        assert_eq!(
            set_err(&mut c, "hash-max-ziplist-entries", "-1"),
            fail(
                "hash-max-ziplist-entries",
                "argument must be between 0 and 9223372036854775807 inclusive"
            )
        );
        assert_eq!(
            set_err(&mut c, "dir", "/tmp"),
            fail("dir", "can't set protected config")
        );
        assert_eq!(
            set_err(&mut c, "dbfilename", "x.rdb"),
            fail("dbfilename", "can't set protected config")
        );
        assert_eq!(
            set_err(&mut c, "port", "7000"),
            fail("port", "can't set immutable config")
        );
        assert_eq!(
            set_err(&mut c, "io-threads", "2"),
            fail("io-threads", "can't set immutable config")
        );
        assert_eq!(
            set_err(&mut c, "latency-tracking-info-percentiles", "50 101"),
            fail(
                "latency-tracking-info-percentiles",
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
            )
        );
        assert_eq!(
            set_err(&mut c, "latency-tracking-info-percentiles", "abc"),
            fail(
                "latency-tracking-info-percentiles",
                "Invalid latency-tracking-info-percentiles parameters"
            )
        );
        assert_eq!(
            set_err(&mut c, "oom-score-adj-values", "1 2"),
            fail("oom-score-adj-values", "wrong number of arguments")
        );
        assert_eq!(
            set_err(&mut c, "oom-score-adj-values", "0 0 2001"),
            fail(
                "oom-score-adj-values",
                "Invalid oom-score-adj-values, elements must be between -2000 and 2000."
            )
        );
        assert_eq!(
            set_err(&mut c, "maxmemory-clients", "200%"),
            fail(
                "maxmemory-clients",
                "percentage argument must be less or equal to 100"
            )
        );
        assert_eq!(
            set_err(&mut c, "maxmemory-clients", "0.5%"),
            fail(
                "maxmemory-clients",
                "argument must be a memory or percent value"
            )
        );
        assert_eq!(
            set_err(&mut c, "shutdown-on-sigint", "bad"),
            fail(
                "shutdown-on-sigint",
                "argument(s) must be one of the following: default, save, nosave, now, force"
            )
        );
        for (v, msg) in [
            (
                "foo",
                "Wrong number of arguments in buffer limit configuration.",
            ),
            (
                "foo 0 0 0",
                "Invalid client class specified in buffer limit configuration.",
            ),
            (
                "master 0 0 0",
                "Invalid client class specified in buffer limit configuration.",
            ),
            (
                "normal -1 0 0",
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
            ),
            (
                "normal 1 2 x",
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
            ),
        ] {
            assert_eq!(
                set_err(&mut c, "client-output-buffer-limit", v),
                fail("client-output-buffer-limit", msg)
            );
        }
        // Failed sets leave the configuration untouched.
        assert_eq!(format!("{c:?}"), format!("{:?}", ok(&[])));
    }

    #[test]
    fn config_set_values() {
        let mut c = ok(&[]);
        c.set("hz", b"600").unwrap();
        assert_eq!((c.hz, get1(&c, "hz")), (500, "500".into()));
        c.set("hz", b"0").unwrap();
        assert_eq!(c.hz, 1);
        c.set("HZ", b"11").unwrap();
        assert_eq!(c.hz, 11);
        c.set("maxmemory", b"1gb").unwrap();
        assert_eq!(c.maxmemory, 1 << 30);
        c.set("maxmemory", b"10KB").unwrap();
        assert_eq!(get1(&c, "maxmemory"), "10240");
        c.set("maxmemory", b"3G").unwrap();
        assert_eq!(get1(&c, "maxmemory"), "3000000000");
        c.set("maxmemory", b"").unwrap();
        assert_eq!(c.maxmemory, 0);
        c.set("maxmemory-policy", b"ALLKEYS-LRU").unwrap();
        assert_eq!(c.maxmemory_policy, "allkeys-lru");
        assert_eq!(get1(&c, "maxmemory-policy"), "allkeys-lru");
        c.set("maxmemory_policy", b"volatile-ttl").unwrap();
        assert_eq!(c.maxmemory_policy, "volatile-ttl");
        c.set("save", b"3600 1 300 100").unwrap();
        assert_eq!(c.save, vec![(3600, 1), (300, 100)]);
        assert_eq!(get1(&c, "save"), "3600 1 300 100");
        c.set("save", b"010 0").unwrap();
        assert_eq!(get1(&c, "save"), "10 0");
        c.set("save", b"").unwrap();
        assert!(c.save.is_empty());
        assert_eq!(c.save_raw, "");
        c.set("protected-mode", b"NO").unwrap();
        assert!(!c.protected_mode);
        assert_eq!(get1(&c, "protected-mode"), "no");
        c.set("protected_mode", b"yes").unwrap();
        assert!(c.protected_mode);
        c.set("requirepass", b"s3cret").unwrap();
        assert_eq!(c.requirepass, "s3cret");
        assert_eq!(get1(&c, "requirepass"), "s3cret");
        c.set("requirepass", b"").unwrap();
        assert_eq!(c.requirepass, "");
        c.set("timeout", b"30").unwrap();
        c.set("tcp-keepalive", b"60").unwrap();
        c.set("tcp_keepalive", b"61").unwrap();
        assert_eq!((c.timeout, c.tcp_keepalive), (30, 61));
        c.set("maxclients", b"5").unwrap();
        assert_eq!(c.maxclients, 5);
        c.set("proto-max-bulk-len", b"1mb").unwrap();
        assert_eq!(c.proto_max_bulk_len, 1 << 20);
        c.set("client-query-buffer-limit", b"2mb").unwrap();
        assert_eq!(c.client_query_buffer_limit, 2 << 20);
        c.set("cache_mode", b"yes").unwrap();
        assert!(c.cache_mode);
        c.set("cache-mode", b"no").unwrap();
        assert!(!c.cache_mode);
        c.set("snapshot_cron", b"0 * * * *").unwrap();
        assert_eq!(get1(&c, "snapshot_cron"), "0 * * * *");
        // Extras.
        c.set("hash-max-ziplist-entries", b"99").unwrap();
        assert_eq!(c.extra["hash-max-listpack-entries"], "99");
        assert_eq!(get1(&c, "hash-max-listpack-entries"), "99");
        assert_eq!(get1(&c, "hash-max-ziplist-entries"), "99");
        assert_eq!(c.get_one("hash_max_ziplist_entries").as_deref(), Some("99"));
        c.set("list-max-listpack-size", b"-1").unwrap();
        assert_eq!(c.extra["list-max-listpack-size"], "-1");
        c.set("appendonly", b"YES").unwrap();
        assert_eq!(c.extra["appendonly"], "yes");
        c.set("appendfsync", b"ALWAYS").unwrap();
        assert_eq!(c.extra["appendfsync"], "always");
        c.set("lua-time-limit", b"100").unwrap();
        assert_eq!(c.extra["busy-reply-threshold"], "100");
        c.set("hash-max-listpack-value", b"1kb").unwrap();
        assert_eq!(c.extra["hash-max-listpack-value"], "1024");
        c.set("maxmemory-clients", b"10%").unwrap();
        assert_eq!(c.extra["maxmemory-clients"], "10%");
        c.set("maxmemory-clients", b"0%").unwrap();
        assert_eq!(c.extra["maxmemory-clients"], "0");
        c.set("maxmemory-clients", b"1kb").unwrap();
        assert_eq!(c.extra["maxmemory-clients"], "1024");
        c.set("shutdown-on-sigint", b"NOSAVE now").unwrap();
        assert_eq!(c.extra["shutdown-on-sigint"], "nosave now");
        c.set("oom-score-adj-values", b"100 50 800").unwrap();
        c.set("latency-tracking-info-percentiles", b"100.0 0 99.9")
            .unwrap();
        assert_eq!(c.extra["latency-tracking-info-percentiles"], "100 0 99.9");
        c.set("latency-tracking-info-percentiles", b"").unwrap();
        assert_eq!(c.extra["latency-tracking-info-percentiles"], "");
        c.set("slave-read-only", b"no").unwrap();
        assert_eq!(c.extra["replica-read-only"], "no");
    }

    #[test]
    fn notify_keyspace_events_format() {
        for (input, want) in [
            ("nd$g", "g$dn"),
            ("KEA", "AKE"),
            ("Ex", "xE"),
            ("xE", "xE"),
            ("K", "K"),
            ("AmnK", "AKm"),
            ("g$lshzxetd", "A"),
            ("Kg$lshzxetmdn", "AKm"),
            ("gE", "gE"),
            ("zz", "z"),
            ("", ""),
        ] {
            assert_eq!(
                notify_display(&parse_notify(input).unwrap()),
                want,
                "{input}"
            );
        }
        // The stored form keeps `n` under `A` (Redis raises the events).
        assert_eq!(parse_notify("AmnK").unwrap(), "AnKm");
    }

    #[test]
    fn client_output_buffer_limit() {
        let mut c = ok(&[]);
        assert_eq!(get1(&c, "client-output-buffer-limit"), DEFAULT_COBL);
        c.set("client-output-buffer-limit", b"pubsub 1mb 2mb 60")
            .unwrap();
        assert_eq!(
            get1(&c, "client-output-buffer-limit"),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 2097152 60"
        );
        c.set(
            "client-output-buffer-limit",
            b"NORMAL 1 2 3 replica 1mb 2mb 3",
        )
        .unwrap();
        assert_eq!(
            get1(&c, "client-output-buffer-limit"),
            "normal 1 2 3 slave 1048576 2097152 3 pubsub 1048576 2097152 60"
        );
        c.set("client-output-buffer-limit", b"").unwrap();
        assert_eq!(
            get1(&c, "client-output-buffer-limit"),
            "normal 1 2 3 slave 1048576 2097152 3 pubsub 1048576 2097152 60"
        );
    }

    #[test]
    fn protected_configs() {
        let dir = std::env::temp_dir();
        let dir = dir.to_str().unwrap();
        let mut c = ok(&["--enable-protected-configs", "yes"]);
        c.set("dir", dir.as_bytes()).unwrap();
        assert_eq!(c.dir, dir);
        assert_eq!(
            set_err(&mut c, "dir", "/nonexistent/dir"),
            fail("dir", "No such file or directory")
        );
        let file = temp_file("plain.txt", "x");
        assert_eq!(
            set_err(&mut c, "dir", &file),
            fail("dir", "Not a directory")
        );
        c.set("dbfilename", b"x.rdb").unwrap();
        assert_eq!(c.dbfilename, "x.rdb");
        assert_eq!(
            set_err(&mut c, "dbfilename", "a/b"),
            fail("dbfilename", "dbfilename can't be a path, just a filename")
        );
        assert_eq!(
            set_err(&mut c, "enable-protected-configs", "no"),
            fail("enable-protected-configs", "can't set immutable config")
        );
        assert!(invalid(&["--dbfilename", "a/b.rdb"]).contains("--dbfilename"));
    }

    #[test]
    fn every_param_default_round_trips() {
        let base = Config::default();
        for p in PARAMS {
            for name in p.names() {
                let got = base.get(name.as_bytes());
                assert_eq!(got.len(), 1, "{name}");
                let mut c = ok(&["--enable-protected-configs", "yes"]);
                if p.flags & IMMUTABLE != 0 {
                    let e = c.set(name, got[0].1.as_bytes()).unwrap_err();
                    assert!(e.contains("immutable"), "{name}: {e}");
                } else {
                    c.set(name, got[0].1.as_bytes())
                        .unwrap_or_else(|e| panic!("{name}={:?}: {e}", got[0].1));
                    assert_eq!(c.get(name.as_bytes()), got, "{name}");
                }
            }
            if p.field.is_none() {
                assert_eq!(
                    normalize(p.kind, p.default, p.default, false).as_deref(),
                    Ok(p.default),
                    "{} default is not canonical",
                    p.name
                );
            }
        }
        let mut names: Vec<&str> = PARAMS.iter().map(|p| p.name).collect();
        let sorted = names.clone();
        names.sort();
        assert_eq!(names, sorted, "PARAMS must stay sorted");
    }

    #[test]
    fn summary_redacts_password() {
        let c = ok(&["--requirepass", "hunter2", "--appendonly", "yes"]);
        let s = c.summary();
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("requirepass=<redacted>"), "{s}");
        assert!(s.contains("appendonly=\"yes\""), "{s}");
        assert!(s.contains("port=6379"), "{s}");
        assert!(!s.contains('\n'));
        let s = ok(&[]).summary();
        assert!(s.contains("requirepass=<none>"), "{s}");
        assert!(!s.contains("appendonly"), "{s}");
    }

    #[test]
    fn shard_count() {
        assert_eq!(ok(&["--io_threads", "3"]).shard_count(), 3);
        assert!(ok(&[]).shard_count() >= 1);
        assert!(invalid(&["--io_threads", "5000"]).contains("--io_threads"));
    }
}
