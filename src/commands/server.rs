//! Connection and server commands: PING, ECHO, QUIT, RESET, HELLO, AUTH, SELECT, CLIENT,
//! INFO, CONFIG, COMMAND, TIME, SHUTDOWN, DEBUG.

use super::{
    arity_error, eq_ic, flags, parse_int, AsyncCtx, CommandSpec, ConnCtx, Handler, ReplyFuture,
    NOT_INT, SYNTAX_ERR,
};
use crate::protocol::parse::{Args, OwnedArgs};
use crate::protocol::reply::ReplyWriter;
use crate::server::client::ReplyMode;
use crate::shard::{registry, ShardData};
use std::fmt::Write as _;

/// The commands of this family.
pub static COMMANDS: &[CommandSpec] = &[
    spec(
        "ping",
        -1,
        flags::FAST | flags::SUBSCRIBE_OK,
        "@fast @connection",
        Handler::Conn(ping),
    ),
    spec(
        "echo",
        2,
        flags::FAST,
        "@fast @connection",
        Handler::Conn(echo),
    ),
    spec(
        "quit",
        -1,
        flags::NO_AUTH | flags::FAST | flags::ALLOW_BUSY | flags::LOADING | flags::STALE,
        "@fast @connection",
        Handler::Conn(quit),
    ),
    spec(
        "reset",
        1,
        flags::NOSCRIPT
            | flags::LOADING
            | flags::STALE
            | flags::FAST
            | flags::NO_AUTH
            | flags::ALLOW_BUSY,
        "@fast @connection",
        Handler::Conn(reset),
    ),
    spec(
        "hello",
        -1,
        flags::SKIP_MONITOR
            | flags::NOSCRIPT
            | flags::LOADING
            | flags::STALE
            | flags::FAST
            | flags::NO_AUTH
            | flags::ALLOW_BUSY,
        "@fast @connection",
        Handler::Conn(hello),
    ),
    spec(
        "auth",
        -2,
        flags::SKIP_MONITOR
            | flags::NOSCRIPT
            | flags::LOADING
            | flags::STALE
            | flags::FAST
            | flags::NO_AUTH
            | flags::ALLOW_BUSY,
        "@fast @connection",
        Handler::Conn(auth),
    ),
    spec(
        "select",
        2,
        flags::LOADING | flags::STALE | flags::FAST,
        "@fast @connection",
        Handler::Conn(select),
    ),
    spec(
        "client",
        -2,
        flags::NOSCRIPT | flags::LOADING | flags::STALE,
        "@slow @connection",
        Handler::Async(client_async),
    ),
    spec(
        "info",
        -1,
        flags::LOADING | flags::STALE,
        "@slow @dangerous",
        Handler::Async(info),
    ),
    spec(
        "config",
        -2,
        flags::ADMIN | flags::NOSCRIPT | flags::LOADING | flags::STALE,
        "@admin @slow @dangerous",
        Handler::Async(config),
    ),
    spec(
        "command",
        -1,
        flags::LOADING | flags::STALE,
        "@slow @connection",
        Handler::Conn(command),
    ),
    spec(
        "time",
        1,
        flags::LOADING | flags::STALE | flags::FAST,
        "@fast",
        Handler::Conn(time),
    ),
    spec(
        "shutdown",
        -1,
        flags::ADMIN
            | flags::NOSCRIPT
            | flags::LOADING
            | flags::STALE
            | flags::NO_MULTI
            | flags::ALLOW_BUSY,
        "@admin @slow @dangerous",
        Handler::Conn(shutdown),
    ),
    spec(
        "monitor",
        1,
        flags::ADMIN | flags::NOSCRIPT | flags::LOADING | flags::STALE,
        "@admin @slow @dangerous",
        Handler::Conn(monitor),
    ),
    spec(
        "debug",
        -2,
        flags::ADMIN | flags::NOSCRIPT | flags::LOADING | flags::STALE,
        "@admin @slow @dangerous",
        Handler::Conn(debug),
    ),
    spec(
        "role",
        1,
        flags::NOSCRIPT | flags::LOADING | flags::STALE | flags::FAST,
        "@admin @fast @dangerous",
        Handler::Conn(role),
    ),
];

/// ROLE: Libellule has no replication, so it is always a master with no replicas at
/// replication offset 0.
fn role(ctx: &mut ConnCtx, _args: Args) {
    ctx.out.array(3);
    ctx.out.bulk(b"master");
    ctx.out.int(0);
    ctx.out.array(0);
}

const fn spec(
    name: &'static str,
    arity: i32,
    flags: u32,
    acl: &'static str,
    handler: Handler,
) -> CommandSpec {
    CommandSpec::new(name, arity, flags, (0, 0, 0), acl, handler)
}

/// `ERR unknown subcommand 'x'. Try CMD HELP.`
pub(crate) fn subcommand_error(out: &mut ReplyWriter, cmd: &str, sub: &[u8]) {
    let mut m = b"ERR unknown subcommand '".to_vec();
    m.extend_from_slice(&sub[..sub.len().min(128)]);
    m.extend_from_slice(b"'. Try ");
    m.extend_from_slice(cmd.to_ascii_uppercase().as_bytes());
    m.extend_from_slice(b" HELP.");
    out.error(&m);
}

/// `ERR wrong number of arguments for 'cmd|sub' command`.
pub(crate) fn sub_arity_error(out: &mut ReplyWriter, cmd: &str, sub: &[u8]) {
    let mut name = cmd.as_bytes().to_vec();
    name.push(b'|');
    name.extend(sub.iter().map(|c| c.to_ascii_lowercase()));
    out.error(&arity_error(&name));
}

/// Replies with a HELP text: one simple string per line, as Redis does.
pub(crate) fn help_reply(out: &mut ReplyWriter, lines: &[&[u8]]) {
    out.array(lines.len());
    for l in lines {
        out.simple(l);
    }
}

fn ping(ctx: &mut ConnCtx, args: Args) {
    if ctx.client.subs.active() && !ctx.client.resp3 && args.len() <= 2 {
        // RESP2 subscribed mode: Redis answers as a message-like array.
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out
            .bulk(if args.len() == 2 { args.get(1) } else { b"" });
        return;
    }
    match args.len() {
        1 => ctx.out.simple(b"PONG"),
        2 => ctx.out.bulk(args.get(1)),
        _ => ctx.out.error(&arity_error(b"ping")),
    }
}

fn echo(ctx: &mut ConnCtx, args: Args) {
    ctx.out.bulk(args.get(1));
}

fn quit(ctx: &mut ConnCtx, _args: Args) {
    ctx.out.ok();
    ctx.client.close_requested = true;
}

fn reset(ctx: &mut ConnCtx, _args: Args) {
    ctx.client.multi = None;
    crate::server::multi::unwatch_all(ctx.client, ctx.shard, ctx.shards);
    let subs = std::mem::take(&mut ctx.client.subs);
    crate::server::pubsub::forget_client(ctx.shard, ctx.client.id, &subs);
    let c = &mut *ctx.client;
    c.db = 0;
    c.resp3 = false;
    c.name.clear();
    c.reply_mode = ReplyMode::On;
    c.no_evict = false;
    c.monitor = false;
    c.authenticated = ctx.shard.config.requirepass.is_empty();
    ctx.out.resp3 = false;
    ctx.out.simple(b"RESET");
}

/// Constant-time comparison of a password attempt with the configured one.
fn password_matches(configured: &str, attempt: &[u8]) -> bool {
    let a = configured.as_bytes();
    // Compare over the longer length so timing does not reveal the length match.
    let n = a.len().max(attempt.len());
    let mut diff = (a.len() ^ attempt.len()) as u8 | u8::from(a.len() != attempt.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = attempt.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    diff == 0
}

const WRONGPASS: &[u8] = b"WRONGPASS invalid username-password pair or user is disabled.";

/// Checks `user`/`pass` against the default user. Ok(true) = authenticated.
fn check_auth(shard: &ShardData, user: Option<&[u8]>, pass: &[u8]) -> bool {
    if let Some(u) = user {
        if u != b"default" {
            return false;
        }
    }
    let configured = &shard.config.requirepass;
    if configured.is_empty() {
        // nopass default user: any password is accepted (Redis behaviour with a username).
        return true;
    }
    password_matches(configured, pass)
}

fn auth(ctx: &mut ConnCtx, args: Args) {
    if args.len() > 3 {
        ctx.out.error(SYNTAX_ERR);
        return;
    }
    if args.len() == 2 && ctx.shard.config.requirepass.is_empty() {
        ctx.out.error(b"ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
        return;
    }
    let (user, pass) = if args.len() == 3 {
        (Some(args.get(1)), args.get(2))
    } else {
        (None, args.get(1))
    };
    if check_auth(ctx.shard, user, pass) {
        ctx.client.authenticated = true;
        ctx.out.ok();
    } else {
        ctx.shard.stats.auth_failures += 1;
        ctx.out.error(WRONGPASS);
    }
}

fn hello(ctx: &mut ConnCtx, args: Args) {
    let mut proto = None;
    let mut i = 1;
    if args.len() >= 2 {
        match parse_int(args.get(1)) {
            Some(v) => proto = Some(v),
            None => {
                ctx.out
                    .error(b"ERR Protocol version is not an integer or out of range");
                return;
            }
        }
        i = 2;
    }
    let mut auth: Option<(Vec<u8>, Vec<u8>)> = None;
    let mut setname: Option<Vec<u8>> = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        let opt = args.get(i);
        if eq_ic(opt, "auth") && more >= 2 {
            auth = Some((args.get(i + 1).to_vec(), args.get(i + 2).to_vec()));
            i += 3;
        } else if eq_ic(opt, "setname") && more >= 1 {
            setname = Some(args.get(i + 1).to_vec());
            i += 2;
        } else {
            let mut m = b"ERR Syntax error in HELLO option '".to_vec();
            m.extend_from_slice(opt);
            m.push(b'\'');
            ctx.out.error(&m);
            return;
        }
    }
    if let Some(p) = proto {
        if !(2..=3).contains(&p) {
            ctx.out.error(b"NOPROTO unsupported protocol version");
            return;
        }
    }
    if let Some((user, pass)) = &auth {
        if !check_auth(ctx.shard, Some(user), pass) {
            ctx.shard.stats.auth_failures += 1;
            ctx.out.error(WRONGPASS);
            return;
        }
        ctx.client.authenticated = true;
    }
    if !ctx.client.authenticated {
        ctx.out.error(b"NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        return;
    }
    if let Some(name) = setname {
        if !valid_client_name(&name) {
            ctx.out
                .error(b"ERR Client names cannot contain spaces, newlines or special characters.");
            return;
        }
        ctx.client.name = name;
    }
    if let Some(p) = proto {
        ctx.client.resp3 = p == 3;
        ctx.out.resp3 = p == 3;
    }
    let out = &mut ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(crate::REDIS_COMPAT_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if ctx.client.resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(ctx.client.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
}

fn select(ctx: &mut ConnCtx, args: Args) {
    match parse_int(args.get(1)) {
        None => ctx.out.error(NOT_INT),
        Some(v) if v < 0 || v as usize >= ctx.shard.dbs.len() => {
            ctx.out.error(b"ERR DB index is out of range")
        }
        Some(v) => {
            ctx.client.db = v as usize;
            ctx.out.ok();
        }
    }
}

fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

fn time(ctx: &mut ConnCtx, _args: Args) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ctx.out.array(2);
    ctx.out.bulk_int(now.as_secs() as i64);
    ctx.out.bulk_int(now.subsec_micros() as i64);
}

fn shutdown(ctx: &mut ConnCtx, args: Args) {
    let (mut nosave, mut save, mut force, mut abort, mut other) =
        (false, false, false, false, false);
    for a in args.iter().skip(1) {
        if eq_ic(a, "nosave") {
            nosave = true;
        } else if eq_ic(a, "save") {
            save = true;
        } else if eq_ic(a, "now") {
            // No replicas to wait for: NOW changes nothing here.
            other = true;
        } else if eq_ic(a, "force") {
            force = true;
        } else if eq_ic(a, "abort") {
            abort = true;
        } else {
            ctx.out.error(SYNTAX_ERR);
            return;
        }
    }
    if (abort && (nosave || save || force || other)) || (nosave && save) {
        ctx.out.error(SYNTAX_ERR);
        return;
    }
    if abort {
        ctx.out.error(b"ERR No shutdown in progress.");
        return;
    }
    log::warn!("User requested shutdown...");
    // As Redis: no save while loading; otherwise SAVE, or save points configured.
    let want_save =
        !crate::persistence::loading() && !nosave && (save || !ctx.shard.config.save.is_empty());
    if !want_save {
        exit_now();
    }
    let shards = ctx.shards.clone();
    let resp3 = ctx.client.resp3;
    ctx.deferred = Some(Box::pin(async move {
        log::info!("Saving the final RDB snapshot before exiting.");
        if crate::persistence::schedule::save_waiting(shards).await || force {
            exit_now();
        }
        log::warn!("Error trying to save the DB, can't exit.");
        let mut buf = Vec::new();
        ReplyWriter::new(&mut buf, resp3).error(b"ERR Errors trying to SHUTDOWN. Check logs.");
        buf
    }));
}

fn exit_now() -> ! {
    crate::ops::notify("STOPPING=1\nSTATUS=Shutting down");
    log::info!("Libellule is now ready to exit, bye bye...");
    std::process::exit(0);
}

fn monitor(ctx: &mut ConnCtx, _args: Args) {
    if !ctx.client.monitor {
        ctx.client.monitor = true;
        crate::server::monitor::add(ctx.client.id, ctx.shard.id);
    }
    ctx.out.ok();
}

fn debug(ctx: &mut ConnCtx, args: Args) {
    let sub = args.get(1);
    if eq_ic(sub, "sleep") && args.len() == 3 {
        match crate::protocol::reply::parse_double(args.get(2)) {
            Some(secs) if secs >= 0.0 && secs.is_finite() => {
                // Like Redis, DEBUG SLEEP blocks the server (here: this shard).
                std::thread::sleep(std::time::Duration::from_secs_f64(secs));
                ctx.out.ok();
            }
            // Redis reads the delay with strtod: anything unparsable sleeps 0.
            _ => ctx.out.ok(),
        }
    } else if eq_ic(sub, "help") {
        ctx.out.array(2);
        ctx.out
            .simple(b"DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
        ctx.out.simple(b"SLEEP <seconds>");
    } else {
        subcommand_error(&mut ctx.out, "debug", sub);
    }
}

// ---------------------------------------------------------------- COMMAND

fn command_info(out: &mut ReplyWriter, s: &CommandSpec) {
    out.array(10);
    out.bulk(s.name.as_bytes());
    out.int(s.arity as i64);
    let mut names: Vec<&str> = flags::NAMES
        .iter()
        .filter(|(bit, _)| s.flags & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    if s.numkeys > 0 || s.keys_fn.is_some() {
        // Redis derives "movablekeys" from a key spec whose count is an argument.
        let at = names
            .iter()
            .position(|n| *n == "allow_busy")
            .unwrap_or(names.len());
        names.insert(at, "movablekeys");
    }
    out.set(names.len());
    for n in names {
        out.simple(n.as_bytes());
    }
    out.int(s.first_key as i64);
    out.int(s.last_key as i64);
    out.int(s.step as i64);
    let cats: Vec<&str> = s.acl.split_whitespace().collect();
    out.set(cats.len());
    for c in cats {
        out.simple(c.as_bytes());
    }
    out.set(0); // tips
    out.array(0); // key specs
    out.array(0); // subcommands
}

fn command(ctx: &mut ConnCtx, args: Args) {
    let reg = registry();
    if args.len() == 1 {
        ctx.out.array(reg.list.len());
        for s in &reg.list {
            command_info(&mut ctx.out, s);
        }
        return;
    }
    let sub = args.get(1);
    if eq_ic(sub, "count") {
        if args.len() != 2 {
            return sub_arity_error(&mut ctx.out, "command", sub);
        }
        ctx.out.int(reg.list.len() as i64);
    } else if eq_ic(sub, "info") {
        if args.len() == 2 {
            ctx.out.array(reg.list.len());
            for s in &reg.list {
                command_info(&mut ctx.out, s);
            }
            return;
        }
        ctx.out.array(args.len() - 2);
        for name in args.iter().skip(2) {
            match reg.lookup(name) {
                Some(s) => command_info(&mut ctx.out, s),
                None => ctx.out.null_array(),
            }
        }
    } else if eq_ic(sub, "list") {
        let mut names: Vec<&str> = reg.list.iter().map(|s| s.name).collect();
        if args.len() == 5 && eq_ic(args.get(2), "filterby") {
            let kind = args.get(3);
            let val = args.get(4);
            if eq_ic(kind, "pattern") {
                names.retain(|n| crate::config::glob_match(val, n.as_bytes(), true));
            } else if eq_ic(kind, "aclcat") {
                let cat = String::from_utf8_lossy(val).to_ascii_lowercase();
                names.retain(|n| {
                    reg.lookup(n.as_bytes())
                        .map(|s| {
                            s.acl
                                .split_whitespace()
                                .any(|c| c.trim_start_matches('@') == cat)
                        })
                        .unwrap_or(false)
                });
            } else if eq_ic(kind, "module") {
                names.clear();
            } else {
                ctx.out.error(SYNTAX_ERR);
                return;
            }
        } else if args.len() != 2 {
            ctx.out.error(SYNTAX_ERR);
            return;
        }
        ctx.out.array(names.len());
        for n in names {
            ctx.out.bulk(n.as_bytes());
        }
    } else if eq_ic(sub, "docs") {
        let specs: Vec<&CommandSpec> = if args.len() == 2 {
            reg.list.clone()
        } else {
            args.iter().skip(2).filter_map(|n| reg.lookup(n)).collect()
        };
        ctx.out.map(specs.len());
        for s in specs {
            ctx.out.bulk(s.name.as_bytes());
            ctx.out.map(2);
            ctx.out.bulk(b"summary");
            ctx.out
                .bulk(format!("The {} command.", s.name.to_ascii_uppercase()).as_bytes());
            ctx.out.bulk(b"group");
            let group = s
                .acl
                .split_whitespace()
                .map(|c| c.trim_start_matches('@'))
                .find(|c| {
                    !matches!(
                        *c,
                        "fast" | "slow" | "read" | "write" | "dangerous" | "admin"
                    )
                })
                .unwrap_or("generic");
            ctx.out.bulk(group.as_bytes());
        }
    } else if eq_ic(sub, "getkeys") {
        if args.len() < 3 {
            return sub_arity_error(&mut ctx.out, "command", sub);
        }
        let Some(s) = reg.lookup(args.get(2)) else {
            ctx.out.error(b"ERR Invalid command specified");
            return;
        };
        let argc = args.len() - 2;
        if !s.arity_ok(argc) {
            ctx.out
                .error(b"ERR Invalid number of arguments specified for command");
            return;
        }
        if s.numkeys > 0 && s.numkeys_count(argc, |i| args.get(i + 2)).is_none() {
            ctx.out
                .error(b"ERR Invalid arguments specified for command");
            return;
        }
        let mut keys = Vec::new();
        s.for_each_key_pos(argc, |i| args.get(i + 2), |i| keys.push(args.get(i + 2)));
        if keys.is_empty() {
            ctx.out.error(b"ERR The command has no key arguments");
            return;
        }
        ctx.out.array(keys.len());
        for k in keys {
            ctx.out.bulk(k);
        }
    } else if eq_ic(sub, "help") {
        let lines: &[&[u8]] = &[
            b"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            b"(no subcommand)",
            b"    Return details about all Redis commands.",
            b"COUNT",
            b"    Return the total number of commands in this Redis server.",
            b"LIST",
            b"    Return a list of all commands in this Redis server.",
            b"INFO [<command-name> ...]",
            b"    Return details about multiple Redis commands.",
            b"DOCS [<command-name> ...]",
            b"    Return documentation details about multiple Redis commands.",
            b"GETKEYS <full-command>",
            b"    Return the keys from a full Redis command.",
            b"HELP",
            b"    Print this help.",
        ];
        help_reply(&mut ctx.out, lines);
    } else {
        subcommand_error(&mut ctx.out, "command", sub);
    }
}

// ---------------------------------------------------------------- CLIENT

fn client_async(actx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let mut buf = Vec::new();
        let a = args.view();
        let sub = a.get(1).to_ascii_lowercase();
        let me = actx.client.id;
        let home = actx.shards.id;
        match sub.as_slice() {
            b"list" => {
                let mut ids: Option<Vec<u64>> = None;
                let mut i = 2;
                let mut ok = true;
                while i < a.len() {
                    if eq_ic(a.get(i), "type") && i + 1 < a.len() {
                        let t = a.get(i + 1);
                        if !(eq_ic(t, "normal")
                            || eq_ic(t, "master")
                            || eq_ic(t, "replica")
                            || eq_ic(t, "pubsub")
                            || eq_ic(t, "slave"))
                        {
                            let mut m = b"ERR Unknown client type '".to_vec();
                            m.extend_from_slice(t);
                            m.push(b'\'');
                            actx.writer(&mut buf).error(&m);
                            return buf;
                        }
                        if !eq_ic(t, "normal") {
                            ids = Some(Vec::new());
                        }
                        i += 2;
                    } else if eq_ic(a.get(i), "id") && i + 1 < a.len() {
                        let mut v = ids.take().unwrap_or_default();
                        i += 1;
                        while i < a.len() {
                            match parse_int(a.get(i)) {
                                Some(id) if id > 0 => v.push(id as u64),
                                _ => {
                                    actx.writer(&mut buf).error(b"ERR Invalid client ID");
                                    return buf;
                                }
                            }
                            i += 1;
                        }
                        ids = Some(v);
                    } else {
                        ok = false;
                        break;
                    }
                }
                if !ok {
                    actx.writer(&mut buf).error(SYNTAX_ERR);
                    return buf;
                }
                let ids = std::sync::Arc::new(ids);
                let lines = actx
                    .shards
                    .run_on_all(move |d| {
                        let mut s = String::new();
                        for (id, c) in &d.clients {
                            if ids
                                .as_ref()
                                .as_ref()
                                .map(|v| v.contains(id))
                                .unwrap_or(true)
                            {
                                s.push_str(&c.borrow().info_line());
                                s.push('\n');
                            }
                        }
                        s
                    })
                    .await;
                let all: String = lines.concat();
                actx.writer(&mut buf).verbatim(all.as_bytes());
            }
            b"info" if a.len() == 2 => {
                let line = actx
                    .shards
                    .run_on(home, move |d| {
                        d.clients.get(&me).map(|c| c.borrow().info_line())
                    })
                    .await
                    .unwrap_or_default();
                actx.writer(&mut buf)
                    .verbatim(format!("{line}\n").as_bytes());
            }
            b"kill" => client_kill(&actx, a, &mut buf).await,
            _ => {
                // Everything else only touches this client.
                let owned = args.clone();
                let resp3 = actx.client.resp3;
                return actx
                    .shards
                    .run_on(home, move |d| client_local(d, me, owned.view(), resp3))
                    .await;
            }
        }
        buf
    })
}

/// CLIENT subcommands that only touch the calling client (run on its home shard).
fn client_local(d: &mut ShardData, me: u64, a: Args, resp3: bool) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut out = ReplyWriter::new(&mut buf, resp3);
    let Some(client) = d.clients.get(&me).cloned() else {
        out.error(b"ERR client is gone");
        return buf;
    };
    let mut c = client.borrow_mut();
    let sub = a.get(1);
    let n = a.len();
    if eq_ic(sub, "id") && n == 2 {
        out.int(c.id as i64);
    } else if eq_ic(sub, "getname") && n == 2 {
        if c.name.is_empty() {
            out.null();
        } else {
            out.bulk(&c.name);
        }
    } else if eq_ic(sub, "setname") && n == 3 {
        let name = a.get(2);
        if !valid_client_name(name) {
            out.error(b"ERR Client names cannot contain spaces, newlines or special characters.");
        } else {
            c.name = name.to_vec();
            out.ok();
        }
    } else if eq_ic(sub, "setinfo") && n == 4 {
        let attr = a.get(2);
        let val = a.get(3);
        if !val.iter().all(|&ch| (b'!'..=b'~').contains(&ch)) {
            let mut m = b"ERR ".to_vec();
            m.extend_from_slice(&attr.to_ascii_lowercase());
            m.extend_from_slice(b" cannot contain spaces, newlines or special characters.");
            out.error(&m);
        } else if eq_ic(attr, "lib-name") {
            c.lib_name = val.to_vec();
            out.ok();
        } else if eq_ic(attr, "lib-ver") {
            c.lib_ver = val.to_vec();
            out.ok();
        } else {
            let mut m = b"ERR Unrecognized option '".to_vec();
            m.extend_from_slice(attr);
            m.push(b'\'');
            out.error(&m);
        }
    } else if eq_ic(sub, "no-evict") && n == 3 {
        let v = a.get(2);
        if eq_ic(v, "on") {
            c.no_evict = true;
            out.ok();
        } else if eq_ic(v, "off") {
            c.no_evict = false;
            out.ok();
        } else {
            out.error(SYNTAX_ERR);
        }
    } else if eq_ic(sub, "reply") && n == 3 {
        let v = a.get(2);
        if eq_ic(v, "on") {
            c.reply_mode = ReplyMode::On;
            out.ok();
        } else if eq_ic(v, "off") {
            c.reply_mode = ReplyMode::Off;
        } else if eq_ic(v, "skip") {
            if c.reply_mode != ReplyMode::Off {
                c.reply_mode = ReplyMode::Skip;
            }
        } else {
            out.error(SYNTAX_ERR);
        }
    } else if eq_ic(sub, "help") && n == 2 {
        let lines: &[&[u8]] = &[
            b"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            b"GETNAME",
            b"    Return the name of the current connection.",
            b"ID",
            b"    Return the ID of the current connection.",
            b"INFO",
            b"    Return information about the current client connection.",
            b"KILL <ip:port>",
            b"    Kill connection made from <ip:port>.",
            b"KILL <option> <value> [<option> <value> [...]]",
            b"    Kill connections. Options are: ID, ADDR, LADDR, SKIPME.",
            b"LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)]",
            b"    Return information about client connections.",
            b"NO-EVICT (ON|OFF)",
            b"    Protect current client connection from eviction.",
            b"REPLY (ON|OFF|SKIP)",
            b"    Control the replies sent to the current connection.",
            b"SETINFO <option> <value>",
            b"    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
            b"SETNAME <name>",
            b"    Assign the name <name> to the current connection.",
            b"HELP",
            b"    Print this help.",
        ];
        help_reply(&mut out, lines);
    } else if [
        "id", "getname", "setname", "setinfo", "no-evict", "reply", "info", "help",
    ]
    .iter()
    .any(|s| eq_ic(sub, s))
    {
        sub_arity_error(&mut out, "client", sub);
    } else {
        subcommand_error(&mut out, "client", sub);
    }
    buf
}

async fn client_kill(actx: &AsyncCtx, a: Args<'_>, buf: &mut Vec<u8>) {
    // Old form: CLIENT KILL addr:port -> +OK or error. New form: filters -> count.
    let me = actx.client.id;
    let mut id: Option<u64> = None;
    let mut addr: Option<String> = None;
    let mut laddr: Option<String> = None;
    let mut skipme = true;
    let old_form = a.len() == 3;
    if old_form {
        addr = Some(String::from_utf8_lossy(a.get(2)).into_owned());
        skipme = false;
    } else {
        if a.len() < 4 || !a.len().is_multiple_of(2) {
            actx.writer(buf).error(SYNTAX_ERR);
            return;
        }
        let mut i = 2;
        while i + 1 < a.len() {
            let (k, v) = (a.get(i), a.get(i + 1));
            if eq_ic(k, "id") {
                match parse_int(v) {
                    Some(x) if x > 0 => id = Some(x as u64),
                    _ => {
                        actx.writer(buf)
                            .error(b"ERR client-id should be greater than 0");
                        return;
                    }
                }
            } else if eq_ic(k, "addr") {
                addr = Some(String::from_utf8_lossy(v).into_owned());
            } else if eq_ic(k, "laddr") {
                laddr = Some(String::from_utf8_lossy(v).into_owned());
            } else if eq_ic(k, "skipme") {
                if eq_ic(v, "yes") {
                    skipme = true;
                } else if eq_ic(v, "no") {
                    skipme = false;
                } else {
                    actx.writer(buf).error(SYNTAX_ERR);
                    return;
                }
            } else if eq_ic(k, "type") || eq_ic(k, "user") || eq_ic(k, "maxage") {
                // Only normal clients of the default user exist.
                let ok_type = !eq_ic(k, "type") || eq_ic(v, "normal");
                let ok_user = !eq_ic(k, "user") || v == b"default";
                if !(ok_type && ok_user) {
                    id = Some(0);
                }
            } else {
                actx.writer(buf).error(SYNTAX_ERR);
                return;
            }
            i += 2;
        }
    }
    let filter = std::sync::Arc::new((id, addr, laddr, skipme, me));
    let counts = actx
        .shards
        .run_on_all(move |d| {
            let (id, addr, laddr, skipme, me) = &*filter;
            let mut n = 0i64;
            for (cid, c) in &d.clients {
                let mut c = c.borrow_mut();
                if *skipme && cid == me {
                    continue;
                }
                if id.is_some_and(|x| x != *cid) {
                    continue;
                }
                if addr.as_ref().is_some_and(|x| *x != c.addr) {
                    continue;
                }
                if laddr.as_ref().is_some_and(|x| *x != c.laddr) {
                    continue;
                }
                c.close_requested = true;
                n += 1;
            }
            if n > 0 {
                d.wake_loop();
            }
            n
        })
        .await;
    let total: i64 = counts.iter().sum();
    let mut w = actx.writer(buf);
    if old_form {
        if total == 0 {
            w.error(b"ERR No such client");
        } else {
            w.ok();
        }
    } else {
        w.int(total);
    }
}

// ---------------------------------------------------------------- CONFIG

fn config(actx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let mut buf = Vec::new();
        let a = args.view();
        let sub = a.get(1);
        if eq_ic(sub, "get") {
            if a.len() < 3 {
                sub_arity_error(&mut actx.writer(&mut buf), "config", sub);
                return buf;
            }
            let patterns: Vec<Vec<u8>> = a.iter().skip(2).map(|p| p.to_vec()).collect();
            let pairs = actx
                .shards
                .run_on(actx.shards.id, move |d| {
                    let mut seen = std::collections::BTreeMap::new();
                    for p in &patterns {
                        for (k, v) in d.config.get(p) {
                            seen.entry(k).or_insert(v);
                        }
                    }
                    seen.into_iter().collect::<Vec<_>>()
                })
                .await;
            let mut w = actx.writer(&mut buf);
            w.map(pairs.len());
            for (k, v) in pairs {
                w.bulk(k.as_bytes());
                w.bulk(v.as_bytes());
            }
        } else if eq_ic(sub, "set") {
            if a.len() < 4 || !a.len().is_multiple_of(2) {
                sub_arity_error(&mut actx.writer(&mut buf), "config", sub);
                return buf;
            }
            let pairs: Vec<(String, Vec<u8>)> = (2..a.len())
                .step_by(2)
                .map(|i| {
                    (
                        String::from_utf8_lossy(a.get(i)).into_owned(),
                        a.get(i + 1).to_vec(),
                    )
                })
                .collect();
            // Validate on a copy first so a bad value changes nothing anywhere.
            let check = pairs.clone();
            let verdict = actx
                .shards
                .run_on(actx.shards.id, move |d| {
                    let mut c = d.config.clone();
                    for (k, v) in &check {
                        c.set(k, v)?;
                    }
                    Ok::<(), String>(())
                })
                .await;
            match verdict {
                Err(msg) => actx.writer(&mut buf).error(msg.as_bytes()),
                Ok(()) => {
                    let pairs = std::sync::Arc::new(pairs);
                    actx.shards
                        .run_on_all(move |d| {
                            for (k, v) in pairs.iter() {
                                let _ = d.config.set(k, v);
                            }
                            d.apply_config();
                        })
                        .await;
                    actx.writer(&mut buf).ok();
                }
            }
        } else if eq_ic(sub, "resetstat") {
            if a.len() != 2 {
                sub_arity_error(&mut actx.writer(&mut buf), "config", sub);
                return buf;
            }
            actx.shards.run_on_all(|d| d.reset_stats()).await;
            crate::shard::memory::reset_peak();
            actx.writer(&mut buf).ok();
        } else if eq_ic(sub, "rewrite") {
            actx.writer(&mut buf)
                .error(b"ERR The server is running without a config file");
        } else if eq_ic(sub, "help") {
            let lines: &[&[u8]] = &[
                b"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                b"GET <pattern>",
                b"    Return parameters matching the glob-like <pattern> and their values.",
                b"SET <directive> <value>",
                b"    Set the configuration <directive> to <value>.",
                b"RESETSTAT",
                b"    Reset statistics reported by the INFO command.",
                b"REWRITE",
                b"    Rewrite the configuration file.",
                b"HELP",
                b"    Print this help.",
            ];
            help_reply(&mut actx.writer(&mut buf), lines);
        } else {
            subcommand_error(&mut actx.writer(&mut buf), "config", sub);
        }
        buf
    })
}

// ---------------------------------------------------------------- INFO

/// Per-shard figures INFO adds up.
#[derive(Default, Clone)]
struct InfoShard {
    /// Per database: (index, keys, keys with a TTL, estimated average TTL in ms).
    keys: Vec<(usize, usize, u64, u64)>,
    stats: crate::shard::ShardStats,
    expired: u64,
    dirty: u64,
    /// The shard's own estimate of its share of used memory (before INFO refreshes).
    mem_estimate: u64,
}

fn info(actx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let mut sections: Vec<String> = a
            .iter()
            .skip(1)
            .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
            .collect();
        if sections.is_empty() {
            sections.push("default".into());
        }
        let all = sections.iter().any(|s| s == "all" || s == "everything");
        let default = sections.iter().any(|s| s == "default");
        let want = |name: &str| -> bool {
            all || sections.iter().any(|s| s == name)
                || (default && !matches!(name, "commandstats" | "latencystats"))
        };
        let shards = actx
            .shards
            .run_on_all(|d| InfoShard {
                keys: d
                    .dbs
                    .iter()
                    .enumerate()
                    .map(|(i, db)| {
                        let ttl = db.avg_ttl_ms(crate::shard::now_ms());
                        (i, db.len(), db.expires_len() as u64, ttl)
                    })
                    .collect(),
                stats: d.stats.clone(),
                expired: d.dbs.iter().map(|db| db.expired_keys).sum(),
                dirty: d.dirty,
                mem_estimate: d.shard_used_estimate(),
            })
            .await;
        let dirty: u64 = shards.iter().map(|x| x.dirty).sum();
        let (config, started) = actx
            .shards
            .run_on(actx.shards.id, |d| (d.config.clone(), d.started))
            .await;
        let nshards = actx.shards.n;
        let mut s = String::new();
        let sum = |f: &dyn Fn(&crate::shard::ShardStats) -> u64| -> u64 {
            shards.iter().map(|x| f(&x.stats)).sum()
        };
        let uptime = started.elapsed().as_secs();
        if want("server") {
            let _ = write!(
                s,
                "# Server\r\nredis_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nlibellule_version:{}\r\nos:{}\r\narch_bits:64\r\nmultiplexing_api:io_uring\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nio_threads_active:{}\r\nshards:{}\r\nexecutable:{}\r\nconfig_file:\r\ncache_mode:{}\r\nprometheus_port:{}\r\nprotected_mode:{}\r\n\r\n",
                crate::REDIS_COMPAT_VERSION,
                crate::VERSION,
                std::env::consts::OS,
                std::process::id(),
                run_id(),
                config.port,
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros(),
                uptime,
                uptime / 86400,
                config.hz,
                config.hz,
                nshards,
                nshards,
                std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
                u8::from(config.cache_mode),
                config.prometheus_port,
                if config.protected_mode { "yes" } else { "no" },
            );
        }
        if want("clients") {
            let _ = write!(
                s,
                "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{}\r\ntracking_clients:0\r\nclients_in_timeout_table:0\r\n\r\n",
                sum(&|st| st.connected_clients),
                config.maxclients,
                sum(&|st| st.blocked_clients)
            );
        }
        if want("memory") {
            let st = crate::shard::memory::refresh();
            let used = st.allocated;
            let rss = read_rss();
            let peak = crate::shard::memory::peak().max(used);
            let startup = crate::shard::memory::startup();
            let dataset = used.saturating_sub(startup);
            let pct = |a: u64, b: u64| {
                if b == 0 {
                    0.0
                } else {
                    a as f64 * 100.0 / b as f64
                }
            };
            let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
            let total_system = total_system_memory();
            let _ = write!(
                s,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2}%\r\nused_memory_startup:{startup}\r\nused_memory_dataset:{dataset}\r\nused_memory_dataset_perc:{:.2}%\r\nallocator_allocated:{used}\r\nallocator_active:{}\r\nallocator_resident:{}\r\ntotal_system_memory:{total_system}\r\ntotal_system_memory_human:{}\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nallocator_frag_ratio:{:.2}\r\nallocator_frag_bytes:{}\r\nallocator_rss_ratio:{:.2}\r\nallocator_rss_bytes:{}\r\nrss_overhead_ratio:{:.2}\r\nrss_overhead_bytes:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_allocator:jemalloc-5.3.0\r\ncache_mode:{}\r\nshard_used_memory:{}\r\nshard_maxmemory:{}\r\n\r\n",
                human_bytes(used),
                human_bytes(rss),
                human_bytes(peak),
                pct(used, peak),
                pct(dataset, used),
                st.active,
                st.resident,
                human_bytes(total_system),
                config.maxmemory,
                human_bytes(config.maxmemory),
                config.maxmemory_policy,
                ratio(st.active, used),
                st.active.saturating_sub(used),
                ratio(st.resident, st.active),
                st.resident.saturating_sub(st.active),
                ratio(rss, st.resident),
                rss as i64 - st.resident as i64,
                ratio(rss, used),
                rss as i64 - used as i64,
                u8::from(config.cache_mode),
                shards
                    .iter()
                    .map(|x| x.mem_estimate.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                config.maxmemory / nshards as u64,
            );
        }
        if want("persistence") {
            s.push_str(&crate::persistence::info_section(&config, dirty));
        }
        if want("stats") {
            let expired: u64 = shards.iter().map(|x| x.expired).sum();
            let _ = write!(
                s,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:0\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:0\r\npubsub_patterns:0\r\ntotal_error_replies:{}\r\ntotal_reads_processed:0\r\ntotal_writes_processed:0\r\nacl_access_denied_auth:{}\r\n\r\n",
                sum(&|st| st.total_connections),
                sum(&|st| st.total_commands),
                sum(&|st| st.net_input_bytes),
                sum(&|st| st.net_output_bytes),
                sum(&|st| st.rejected_connections),
                expired,
                sum(&|st| st.evicted_keys),
                sum(&|st| st.keyspace_hits),
                sum(&|st| st.keyspace_misses),
                sum(&|st| st.errors.values().sum()),
                sum(&|st| st.auth_failures),
            );
        }
        if want("replication") {
            s.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\n\r\n");
        }
        if want("cpu") {
            let (user, sys) = cpu_times();
            let _ = write!(
                s,
                "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\n\r\n"
            );
        }
        if want("commandstats") {
            s.push_str("# Commandstats\r\n");
            let reg = registry();
            for (i, name) in reg.stat_names.iter().enumerate() {
                let calls: u64 = shards.iter().map(|x| x.stats.cmds[i].calls).sum();
                let rejected: u64 = shards.iter().map(|x| x.stats.cmds[i].rejected).sum();
                let failed: u64 = shards.iter().map(|x| x.stats.cmds[i].failed).sum();
                let usec: u64 = shards
                    .iter()
                    .filter_map(|x| x.stats.latency.get(i)?.as_ref())
                    .map(|h| h.total_ns)
                    .sum::<u64>()
                    / 1000;
                if calls + rejected == 0 {
                    continue;
                }
                let per = if calls > 0 {
                    usec as f64 / calls as f64
                } else {
                    0.0
                };
                let _ = write!(
                    s,
                    "cmdstat_{}:calls={},usec={},usec_per_call={:.2},rejected_calls={},failed_calls={}\r\n",
                    name, calls, usec, per, rejected, failed
                );
            }
            s.push_str("\r\n");
        }
        if want("errorstats") {
            s.push_str("# Errorstats\r\n");
            let mut errs: std::collections::BTreeMap<String, u64> = Default::default();
            for x in &shards {
                for (k, v) in &x.stats.errors {
                    *errs.entry(k.clone()).or_insert(0) += v;
                }
            }
            for (k, v) in errs {
                let _ = write!(s, "errorstat_{k}:count={v}\r\n");
            }
            s.push_str("\r\n");
        }
        if want("latencystats") {
            s.push_str("# Latencystats\r\n");
            let percentiles: Vec<f64> = actx
                .shards
                .data
                .borrow()
                .config
                .extra
                .get("latency-tracking-info-percentiles")
                .map(|v| {
                    v.split_whitespace()
                        .filter_map(|p| p.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            for (i, name) in registry().stat_names.iter().enumerate() {
                let mut h = crate::shard::latency::Histogram::default();
                for x in &shards {
                    if let Some(Some(one)) = x.stats.latency.get(i) {
                        h.merge(one);
                    }
                }
                if h.count == 0 {
                    continue;
                }
                let _ = write!(s, "latency_percentiles_usec_{name}:");
                for (n, p) in percentiles.iter().enumerate() {
                    let sep = if n == 0 { "" } else { "," };
                    let usec = h.percentile_ns(*p) as f64 / 1000.0;
                    let _ = write!(s, "{sep}p{}={usec:.3}", crate::shard::latency::le_label(*p));
                }
                s.push_str("\r\n");
            }
            s.push_str("\r\n");
        }
        if want("keyspace") {
            s.push_str("# Keyspace\r\n");
            let ndb = shards.first().map(|x| x.keys.len()).unwrap_or(0);
            for db in 0..ndb {
                let keys: usize = shards.iter().map(|x| x.keys[db].1).sum();
                let expires: u64 = shards.iter().map(|x| x.keys[db].2).sum();
                // The shards' estimates weighted by their numbers of keys with a TTL.
                let weighted: u128 = shards
                    .iter()
                    .map(|x| x.keys[db].2 as u128 * x.keys[db].3 as u128)
                    .sum();
                let avg_ttl = weighted.checked_div(expires as u128).unwrap_or(0);
                if keys > 0 {
                    let _ = write!(
                        s,
                        "db{db}:keys={keys},expires={expires},avg_ttl={avg_ttl}\r\n"
                    );
                }
            }
            s.push_str("\r\n");
        }
        // Redis ends the text without the last blank line.
        while s.ends_with("\r\n\r\n") {
            s.truncate(s.len() - 2);
        }
        let mut buf = Vec::new();
        actx.writer(&mut buf).verbatim(s.as_bytes());
        buf
    })
}

fn run_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        (0..40)
            .map(|_| format!("{:x}", rng.gen_range(0..16u8)))
            .collect()
    })
}

fn read_rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// Physical memory of the machine (`total_system_memory`).
fn total_system_memory() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages.max(0) as u64) * (page.max(0) as u64)
}

fn cpu_times() -> (f64, f64) {
    // SAFETY: getrusage fills the struct.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        (t(ru.ru_utime), t(ru.ru_stime))
    }
}

fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n < 1024.0 {
        format!("{}B", n as u64)
    } else if n < 1024.0 * 1024.0 {
        format!("{:.2}K", n / 1024.0)
    } else if n < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", n / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", n / (1024.0 * 1024.0 * 1024.0))
    }
}
