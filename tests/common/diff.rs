//! The differential harness: the same commands go to the reference
//! `redis-server` and to Libellule (or, with `DIFF_SELFTEST=1`, a second
//! redis-server) and the replies must match byte for byte, except where a
//! reply is legitimately non-deterministic (see [`compare`]).
//!
//! Used by `tests/differential*.rs`: one file per command family, so the
//! families can grow their scripted and random suites independently.

use super::*;

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// The server under test: Libellule, or (self-test) a second redis-server.
pub enum Target {
    Libellule(Server),
    Redis(RedisServer),
}

impl Target {
    pub fn port(&self) -> u16 {
        match self {
            Target::Libellule(s) => s.port,
            Target::Redis(s) => s.port,
        }
    }
}

pub fn selftest() -> bool {
    std::env::var("DIFF_SELFTEST")
        .map(|v| v == "1")
        .unwrap_or(false)
}

/// Starts the reference and the target server, or returns None when the
/// reference is unavailable outside CI.
pub fn start_pair(io_threads: &str, extra: &[&str]) -> Option<(RedisServer, Target)> {
    let redis = RedisServer::start_with(extra)?;
    let target = if selftest() {
        Target::Redis(RedisServer::start_with(extra)?)
    } else {
        let mut args = vec!["--io_threads", io_threads];
        args.extend_from_slice(extra);
        Target::Libellule(Server::start(&args))
    };
    Some((redis, target))
}

/// A pair of connections, one to each server, with the command history.
pub struct Diff {
    pub label: String,
    pub redis: RawConn,
    pub lib: RawConn,
    pub history: Vec<String>,
    pub seed: Option<u64>,
}

pub fn upper(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_uppercase()
}

impl Diff {
    pub fn new(label: &str, redis_port: u16, lib_port: u16) -> Diff {
        Diff {
            label: label.to_string(),
            redis: RawConn::connect(redis_port),
            lib: RawConn::connect(lib_port),
            history: Vec::new(),
            seed: None,
        }
    }

    /// Sends a command (given as a redis-cli style line) to both servers and
    /// compares the replies.
    pub fn line(&mut self, line: &str) -> (Reply, Reply) {
        let args = split_args(line);
        self.exec(&args)
    }

    /// Sends `args` to both servers and compares the replies; panics with the
    /// history on a mismatch. Returns (redis reply, libellule reply).
    pub fn exec(&mut self, args: &[Vec<u8>]) -> (Reply, Reply) {
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        self.redis.send(&refs);
        self.lib.send(&refs);
        self.compare_next(args)
    }

    /// Sends `cmds` to both servers as one pipeline (a single write each), then reads
    /// and compares the replies in order as [`Diff::exec`] does. Returns the
    /// redis-server replies.
    pub fn exec_pipeline(&mut self, cmds: &[Vec<Vec<u8>>]) -> Vec<Reply> {
        let mut bytes = Vec::new();
        for args in cmds {
            let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
            bytes.extend_from_slice(&encode_command(&refs));
        }
        self.redis.send_raw(&bytes);
        self.lib.send_raw(&bytes);
        cmds.iter().map(|args| self.compare_next(args).0).collect()
    }

    /// Reads the next reply of each server, the one to `args`, and compares them.
    fn compare_next(&mut self, args: &[Vec<u8>]) -> (Reply, Reply) {
        let (ra, rawa) = self.redis.read_reply_raw();
        let (rb, rawb) = match self.lib.try_read_reply_raw() {
            Ok(r) => r,
            Err(e) => {
                self.history
                    .push(format!("{}  -> redis: {:?}", show_command(args), ra));
                self.fail(&format!(
                    "libellule gave no reply ({e:?}) to {}\n  redis replied: {}",
                    show_command(args),
                    escape_bytes(&rawa)
                ));
            }
        };
        self.history
            .push(format!("{}  -> {:?}", show_command(args), ra));
        if let Err(why) = compare(args, &ra, &rawa, &rb, &rawb) {
            self.fail(&format!(
                "MISMATCH on: {}\n  redis-server: {:?}\n                {}\n  libellule:    {:?}\n                {}\n  ({why})",
                show_command(args),
                ra,
                escape_bytes(&rawa),
                rb,
                escape_bytes(&rawb)
            ));
        }
        (ra, rb)
    }

    pub fn fail(&self, msg: &str) -> ! {
        let n = self.history.len();
        let from = n.saturating_sub(80);
        let mut hist = String::new();
        if from > 0 {
            hist.push_str(&format!("  ... {from} earlier commands omitted\n"));
        }
        for (i, h) in self.history[from..].iter().enumerate() {
            hist.push_str(&format!("  #{:<6} {h}\n", from + i));
        }
        let path = std::env::temp_dir().join(format!(
            "libellule-diff-history-{}-{}.txt",
            std::process::id(),
            self.label
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        ));
        let _ = std::fs::write(&path, self.history.join("\n"));
        let seed = match self.seed {
            Some(s) => format!("\n  reproduce with DIFF_SEED={s}"),
            None => String::new(),
        };
        panic!(
            "[{}] {msg}{seed}\n  command history (redis replies), full history in {}:\n{hist}",
            self.label,
            path.display()
        );
    }

    /// Like [`Diff::line`] for replies whose order is server-specific (HGETALL,
    /// HKEYS, HVALS of a "hashtable" hash): compares the elements sorted (the
    /// field/value pairs for HGETALL).
    pub fn unordered(&mut self, line: &str) {
        let args = split_args(line);
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        let a = self.redis.cmd(&refs);
        let b = self.lib.cmd(&refs);
        self.history.push(format!(
            "{}  -> {} (compared unordered)",
            show_command(&args),
            a.kind()
        ));
        let pairs = upper(&args[0]) == "HGETALL";
        let norm = |r: &Reply| -> Option<Vec<Vec<Reply>>> {
            let items: Vec<Reply> = match r {
                Reply::Map(m) => m.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect(),
                Reply::Array(Some(v)) => v.clone(),
                _ => return None,
            };
            let mut groups: Vec<Vec<Reply>> = if pairs {
                items.chunks(2).map(|c| c.to_vec()).collect()
            } else {
                items.into_iter().map(|x| vec![x]).collect()
            };
            groups.sort();
            Some(groups)
        };
        let same = match (norm(&a), norm(&b)) {
            (None, None) => a == b,
            (x, y) => a.kind() == b.kind() && x == y,
        };
        if !same {
            self.fail(&format!(
                "MISMATCH (unordered) on: {}\n  redis-server: {a:?}\n  libellule:    {b:?}",
                show_command(&args)
            ));
        }
    }

    /// Runs a script: one command per line, `#` comments and blank lines
    /// ignored.
    pub fn script(&mut self, text: &str) {
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            self.line(l);
        }
    }
}

/// Compares two replies to `args`. Exact byte equality, except for the
/// commands whose result is legitimately non-deterministic or
/// server-specific.
pub fn compare(
    args: &[Vec<u8>],
    a: &Reply,
    rawa: &[u8],
    b: &Reply,
    rawb: &[u8],
) -> Result<(), String> {
    let name = upper(&args[0]);
    let sub = args.get(1).map(|s| upper(s)).unwrap_or_default();
    let exact = || {
        if rawa == rawb {
            Ok(())
        } else {
            Err("replies differ".to_string())
        }
    };
    // Errors are always compared exactly.
    if a.is_error() || b.is_error() {
        return exact();
    }
    let same_kind = || {
        if a.kind() == b.kind() {
            Ok(())
        } else {
            Err(format!("reply types differ: {} vs {}", a.kind(), b.kind()))
        }
    };
    match name.as_str() {
        "KEYS" => match (a, b) {
            (Reply::Array(Some(x)), Reply::Array(Some(y))) => {
                let mut x = x.clone();
                let mut y = y.clone();
                x.sort();
                y.sort();
                if x == y {
                    Ok(())
                } else {
                    Err("KEYS returned different key sets (compared sorted)".into())
                }
            }
            _ => exact(),
        },
        "TTL" | "PTTL" | "EXPIRETIME" | "PEXPIRETIME" => {
            let tol = if name.starts_with('P') { 1000 } else { 1 };
            match (a, b) {
                (Reply::Int(x), Reply::Int(y)) if *x >= 0 && *y >= 0 => {
                    if (x - y).abs() <= tol {
                        Ok(())
                    } else {
                        Err(format!("{name} differs by more than {tol}"))
                    }
                }
                _ => exact(),
            }
        }
        "RANDOMKEY" | "TIME" | "INFO" | "LASTSAVE" => same_kind(),
        // Random fields: compare the reply's shape (count, pair nesting) only.
        "HRANDFIELD" | "ZRANDMEMBER" => {
            same_kind()?;
            if let (Reply::Array(Some(x)), Reply::Array(Some(y))) = (a, b) {
                if x.len() != y.len() {
                    return Err(format!("{name} counts differ: {} vs {}", x.len(), y.len()));
                }
                for (p, q) in x.iter().zip(y) {
                    let inner = |r: &Reply| match r {
                        Reply::Array(Some(v)) => v.len(),
                        _ => 0,
                    };
                    if p.kind() != q.kind() || inner(p) != inner(q) {
                        return Err(format!("{name} reply shapes differ"));
                    }
                }
            }
            Ok(())
        }
        // A skiplist's ZSCAN order is hash order: a finished scan (cursor 0 on both)
        // must return the same member/score pairs; a partial one the same shape.
        "ZSCAN" => {
            same_kind()?;
            let pairs = |r: &Reply| -> Option<(Vec<u8>, Vec<Vec<Reply>>)> {
                let v = r.as_array();
                let mut p: Vec<Vec<Reply>> =
                    v.get(1)?.as_array().chunks(2).map(|c| c.to_vec()).collect();
                p.sort();
                Some((v.first()?.as_bytes().to_vec(), p))
            };
            match (pairs(a), pairs(b)) {
                (Some((ca, pa)), Some((cb, pb))) if ca == b"0" && cb == b"0" => {
                    if pa == pb {
                        Ok(())
                    } else {
                        Err("ZSCAN returned different pairs (compared sorted)".into())
                    }
                }
                (Some(_), Some(_)) => Ok(()),
                _ => Err("ZSCAN reply is not a 2-element array".into()),
            }
        }
        "SCAN" => {
            same_kind()?;
            match (a, b) {
                (Reply::Array(Some(x)), Reply::Array(Some(y))) if x.len() == 2 && y.len() == 2 => {
                    if x[0].kind() == y[0].kind() && x[1].kind() == y[1].kind() {
                        Ok(())
                    } else {
                        Err("SCAN reply shapes differ".into())
                    }
                }
                _ => Err("SCAN reply is not a 2-element array".into()),
            }
        }
        "CLIENT" if matches!(sub.as_str(), "ID" | "LIST" | "INFO") => same_kind(),
        "COMMAND" if sub.is_empty() || matches!(sub.as_str(), "COUNT" | "DOCS" | "INFO") => {
            same_kind()
        }
        "CONFIG" if sub == "GET" => {
            same_kind()?;
            // A parameter that one server does not know gives an empty reply;
            // only compare emptiness for a literal (non-glob) name.
            let globless = args[2..]
                .iter()
                .all(|p| !p.iter().any(|c| matches!(c, b'*' | b'?' | b'[')));
            let empty = |r: &Reply| match r {
                Reply::Array(Some(v)) => v.is_empty(),
                Reply::Map(m) => m.is_empty(),
                _ => false,
            };
            if globless && empty(a) != empty(b) {
                Err("CONFIG GET: one server knows the parameter, the other doesn't".into())
            } else {
                Ok(())
            }
        }
        "HELLO" => compare_hello(a, b),
        _ => exact(),
    }
}

/// HELLO: same fields in the same order, same proto/mode/role/modules; the
/// server name, version and client id may differ.
pub fn compare_hello(a: &Reply, b: &Reply) -> Result<(), String> {
    pub fn pairs(r: &Reply) -> Option<Vec<(Reply, Reply)>> {
        match r {
            Reply::Map(m) => Some(m.clone()),
            Reply::Array(Some(v)) if v.len() % 2 == 0 => {
                Some(v.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect())
            }
            _ => None,
        }
    }
    if a.kind() != b.kind() {
        return Err(format!(
            "HELLO reply types differ: {} vs {}",
            a.kind(),
            b.kind()
        ));
    }
    let (Some(pa), Some(pb)) = (pairs(a), pairs(b)) else {
        return Err("HELLO reply is not a map".into());
    };
    let ka: Vec<_> = pa.iter().map(|p| p.0.clone()).collect();
    let kb: Vec<_> = pb.iter().map(|p| p.0.clone()).collect();
    if ka != kb {
        return Err(format!("HELLO fields differ: {ka:?} vs {kb:?}"));
    }
    for ((k, va), (_, vb)) in pa.iter().zip(pb.iter()) {
        let key = match k {
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            Reply::Simple(s) => s.clone(),
            _ => String::new(),
        };
        let strict = matches!(key.as_str(), "proto" | "mode" | "role" | "modules");
        if strict && va != vb {
            return Err(format!("HELLO field {key} differs: {va:?} vs {vb:?}"));
        }
        if va.kind() != vb.kind() {
            return Err(format!("HELLO field {key} has different types"));
        }
    }
    Ok(())
}

/// Runs `f` against a freshly started pair of servers.
pub fn with_pair(
    label: &str,
    io_threads: &str,
    extra: &[&str],
    f: impl FnOnce(&mut Diff, &Target),
) {
    let Some((redis, target)) = start_pair(io_threads, extra) else {
        return;
    };
    let mut d = Diff::new(
        &format!("{label} io_threads={io_threads}"),
        redis.port,
        target.port(),
    );
    f(&mut d, &target);
    drop(redis);
}

/// True when the target implements LPUSH (so WRONGTYPE cases can run).
pub fn target_has_lists(target_port: u16) -> bool {
    let mut c = RawConn::connect(target_port);
    let r = c.cmd(&[b"LPUSH", b"__libellule_probe__", b"x"]);
    let _ = c.cmd(&[b"DEL", b"__libellule_probe__"]);
    match r.error_text() {
        Some(e) => {
            if e.starts_with("ERR unknown command") {
                eprintln!("LPUSH is not implemented yet: skipping the WRONGTYPE cases");
                false
            } else {
                panic!("LPUSH probe failed: {e}");
            }
        }
        None => true,
    }
}
