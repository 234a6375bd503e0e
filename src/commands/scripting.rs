//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT
//! LOAD|EXISTS|FLUSH|KILL|HELP.
//!
//! A script runs on the shard that owns its declared keys (see
//! [`crate::scripting::engine`]). When its keys are held by a cross-shard command or
//! transaction, it waits for their locks first. When its declared keys span shards, it
//! locks them all, borrows the remote ones (their entries move to the caller's shard
//! while locked), runs on the caller's shard and hands them back, so the script is
//! atomic over every key it declared.

use super::server::{help_reply, sub_arity_error, subcommand_error};
use crate::commands::{
    eq_ic, flags, parse_int, AsyncCtx, CommandSpec, ConnCtx, Handler, ReplyFuture,
};
use crate::protocol::parse::{Args, OwnedArgs};
use crate::scripting::engine::{self, run_script, KillOutcome, ScriptCall};
use crate::shard::ShardData;
use crate::storage::Detached;
use std::collections::BTreeMap;

/// SCRIPT KILL's reply when the running script has written.
pub const UNKILLABLE: &[u8] = b"UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";

const EVAL_FLAGS: u32 = flags::NOSCRIPT | flags::SKIP_MONITOR | flags::STALE;

/// The scripting commands, as Redis 7.0's COMMAND INFO describes them.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "eval",
        -3,
        EVAL_FLAGS,
        (0, 0, 0),
        "@slow @scripting",
        Handler::Conn(eval),
    ),
    CommandSpec::new(
        "evalsha",
        -3,
        EVAL_FLAGS,
        (0, 0, 0),
        "@slow @scripting",
        Handler::Conn(evalsha),
    ),
    CommandSpec::new(
        "eval_ro",
        -3,
        EVAL_FLAGS | flags::READONLY,
        (0, 0, 0),
        "@slow @scripting",
        Handler::Conn(eval_ro),
    ),
    CommandSpec::new(
        "evalsha_ro",
        -3,
        EVAL_FLAGS | flags::READONLY,
        (0, 0, 0),
        "@slow @scripting",
        Handler::Conn(evalsha_ro),
    ),
    CommandSpec::new(
        "script",
        -2,
        flags::NOSCRIPT | flags::ALLOW_BUSY,
        (0, 0, 0),
        "@slow @scripting",
        Handler::Async(script),
    ),
];

fn eval(ctx: &mut ConnCtx, args: Args) {
    eval_generic(ctx, args, false, false);
}

fn evalsha(ctx: &mut ConnCtx, args: Args) {
    eval_generic(ctx, args, true, false);
}

fn eval_ro(ctx: &mut ConnCtx, args: Args) {
    eval_generic(ctx, args, false, true);
}

fn evalsha_ro(ctx: &mut ConnCtx, args: Args) {
    eval_generic(ctx, args, true, true);
}

/// True when one of `keys` is locked on `d` by someone else.
fn keys_locked(d: &ShardData, db: usize, keys: &[Vec<u8>]) -> bool {
    !d.locks.is_empty() && keys.iter().any(|k| d.locks.is_locked(db, k))
}

/// EVAL and friends. A script whose keys are all on the connection's shard (and not
/// locked) runs inline, like a local command; otherwise the connection waits for the
/// path in [`eval_elsewhere`].
fn eval_generic(ctx: &mut ConnCtx, args: Args, by_sha: bool, readonly: bool) {
    if by_sha {
        // Redis looks the script up before it reads numkeys.
        let sha = String::from_utf8_lossy(args.get(1)).to_ascii_lowercase();
        if !engine::compiled_here(&sha) && !engine::exists(&sha) {
            return ctx
                .out
                .error(b"NOSCRIPT No matching script. Please use EVAL.");
        }
    }
    let Some(numkeys) = parse_int(args.get(2)) else {
        return ctx.out.error(crate::commands::NOT_INT);
    };
    if numkeys < 0 {
        return ctx.out.error(b"ERR Number of keys can't be negative");
    }
    if numkeys as usize > args.len() - 3 {
        return ctx
            .out
            .error(b"ERR Number of keys can't be greater than number of args");
    }
    let nk = numkeys as usize;
    let sha = if by_sha {
        let sha = String::from_utf8_lossy(args.get(1)).to_ascii_lowercase();
        if !engine::compiled_here(&sha) && !engine::exists(&sha) {
            return ctx
                .out
                .error(b"NOSCRIPT No matching script. Please use EVAL.");
        }
        sha
    } else {
        let body = args.get(1);
        let sha = engine::sha1_hex(body);
        if !engine::compiled_here(&sha) && !engine::exists(&sha) {
            if let Err(msg) = engine::check_compiles(body) {
                return ctx.out.error(&msg);
            }
            engine::remember(body);
        }
        sha
    };
    let keys: Vec<Vec<u8>> = (3..3 + nk).map(|i| args.get(i).to_vec()).collect();
    let argv: Vec<Vec<u8>> = (3 + nk..args.len()).map(|i| args.get(i).to_vec()).collect();
    let db = ctx.client.db;
    let call = ScriptCall {
        sha,
        keys,
        argv,
        db,
        resp3: ctx.client.resp3,
        readonly,
        borrowed: Vec::new(),
        client_id: ctx.client.id,
    };
    let home = ctx.shard.id;
    let local = call.keys.iter().all(|k| ctx.shards.owner(k) == home);
    if local && (ctx.client.in_exec || !keys_locked(ctx.shard, db, &call.keys)) {
        let result = run_script(ctx.shard, call);
        ctx.out.raw(&result.reply);
        return;
    }
    let actx = AsyncCtx {
        shards: ctx.shards.clone(),
        client: ctx.client.clone(),
    };
    ctx.deferred = Some(Box::pin(eval_elsewhere(actx, call)));
}

/// A script whose keys live on another shard, or are locked, or span shards.
async fn eval_elsewhere(ctx: AsyncCtx, call: ScriptCall) -> Vec<u8> {
    let db = call.db;
    let groups = ctx
        .shards
        .group_keys(db, call.keys.iter().map(|k| k.as_slice()));
    let in_exec = ctx.client.in_exec;
    if groups.len() <= 1 {
        let target = groups.keys().next().copied().unwrap_or(ctx.shards.id);
        let first = call.clone();
        let done = ctx
            .shards
            .run_on(target, move |d| {
                if !in_exec && keys_locked(d, db, &first.keys) {
                    return None;
                }
                Some(run_script(d, first).reply)
            })
            .await;
        if let Some(reply) = done {
            return reply;
        }
        ctx.lock(&groups).await;
        let reply = ctx
            .shards
            .run_on(target, move |d| run_script(d, call).reply)
            .await;
        ctx.unlock(&groups).await;
        return reply;
    }
    ctx.lock(&groups).await;
    let reply = run_borrowing(&ctx, call, &groups).await;
    ctx.unlock(&groups).await;
    reply
}

/// Lent entries: (db, key, entry) per owning shard.
type Lent = BTreeMap<usize, Vec<(usize, Vec<u8>, Option<Detached>)>>;

/// A script whose declared keys span shards: with every key locked, moves the remote
/// keys' entries to this shard, runs the script here, and moves them back (created,
/// changed or deleted). Watches of the returned keys are dirtied if the script wrote.
async fn run_borrowing(
    ctx: &AsyncCtx,
    mut call: ScriptCall,
    groups: &BTreeMap<usize, Vec<crate::shard::locks::LockKey>>,
) -> Vec<u8> {
    let home = ctx.shards.id;
    let mut lent: Lent = BTreeMap::new();
    for (&shard, keys) in groups {
        if shard == home {
            continue;
        }
        let keys = keys.clone();
        let taken = ctx
            .shards
            .run_on(shard, move |d| {
                let now = crate::shard::now_ms();
                keys.into_iter()
                    .map(|(db, k)| {
                        let e = d.dbs[db].remove(&k, now);
                        (db, k, e)
                    })
                    .collect::<Vec<_>>()
            })
            .await;
        lent.insert(shard, taken);
    }
    let result = {
        let mut d = ctx.shards.data.borrow_mut();
        for items in lent.values_mut() {
            for (db, k, e) in items.iter_mut() {
                call.borrowed.push((*db, k.clone()));
                if let Some(e) = e.take() {
                    d.dbs[*db].insert_entry(k, e);
                }
            }
        }
        let result = run_script(&mut d, call);
        let now = crate::shard::now_ms();
        for items in lent.values_mut() {
            for (db, k, e) in items.iter_mut() {
                *e = d.dbs[*db].remove(k, now);
            }
        }
        result
    };
    let wrote = result.wrote;
    for (shard, items) in lent {
        ctx.shards
            .run_on(shard, move |d| {
                for (db, k, e) in items {
                    if let Some(e) = e {
                        d.dbs[db].insert_entry(&k, e);
                    }
                    if wrote {
                        d.watches.touch(db, &k);
                    }
                }
            })
            .await;
    }
    result.reply
}

const SCRIPT_HELP: &[&[u8]] = &[
    b"SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"DEBUG (YES|SYNC|NO)",
    b"    Set the debug mode for subsequent scripts executed.",
    b"EXISTS <sha1> [<sha1> ...]",
    b"    Return information about the existence of the scripts in the script cache.",
    b"FLUSH [ASYNC|SYNC]",
    b"    Flush the Lua scripts cache. Very dangerous on replicas.",
    b"    When called without the optional mode argument, the behavior is determined by the",
    b"    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    b"    * ASYNC: Asynchronously flush the scripts cache.",
    b"    * SYNC: Synchronously flush the scripts cache.",
    b"KILL",
    b"    Kill the currently executing Lua script.",
    b"LOAD <script>",
    b"    Load a script into the scripts cache without executing it.",
    b"HELP",
    b"    Prints this help.",
];

fn script(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let sub = a.get(1).to_vec();
        let argc = a.len();
        let mut buf = Vec::new();
        let mut out = ctx.writer(&mut buf);
        if eq_ic(&sub, "help") {
            if argc != 2 {
                sub_arity_error(&mut out, "script", &sub);
                return buf;
            }
            help_reply(&mut out, SCRIPT_HELP);
        } else if eq_ic(&sub, "load") {
            if argc != 3 {
                sub_arity_error(&mut out, "script", &sub);
                return buf;
            }
            let body = a.get(2);
            match engine::check_compiles(body) {
                Err(msg) => out.error(&msg),
                Ok(()) => {
                    let sha = engine::remember(body);
                    out.bulk(sha.as_bytes());
                }
            }
        } else if eq_ic(&sub, "exists") {
            if argc < 3 {
                sub_arity_error(&mut out, "script", &sub);
                return buf;
            }
            out.array(argc - 2);
            for i in 2..argc {
                out.int(engine::exists(&String::from_utf8_lossy(a.get(i))) as i64);
            }
        } else if eq_ic(&sub, "flush") {
            if argc > 3 || (argc == 3 && !eq_ic(a.get(2), "async") && !eq_ic(a.get(2), "sync")) {
                out.error(b"ERR SCRIPT FLUSH only support SYNC|ASYNC option");
                return buf;
            }
            engine::flush_store();
            ctx.shards.run_on_all(|_| engine::flush_local()).await;
            ctx.writer(&mut buf).ok();
        } else if eq_ic(&sub, "kill") {
            if argc != 2 {
                sub_arity_error(&mut out, "script", &sub);
                return buf;
            }
            match engine::kill(ctx.shards.n) {
                KillOutcome::Killed => out.ok(),
                KillOutcome::NotBusy => out.error(b"NOTBUSY No scripts in execution right now."),
                KillOutcome::Unkillable => out.error(UNKILLABLE),
            }
        } else if eq_ic(&sub, "debug") {
            if argc != 3 {
                sub_arity_error(&mut out, "script", &sub);
                return buf;
            }
            out.error(b"ERR SCRIPT DEBUG (the Lua debugger) is not supported by Libellule");
        } else {
            subcommand_error(&mut out, "script", &sub);
        }
        buf
    })
}
