//! Transaction commands: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Queueing happens in the dispatcher (`server::conn`): once MULTI is open, every command
//! but EXEC, DISCARD, MULTI, WATCH, QUIT and RESET is checked (name, arity,
//! authentication) and answered `+QUEUED`, or refused, which dooms the transaction to
//! `-EXECABORT`. EXEC hands the queue to [`crate::server::multi::exec`], which runs it
//! atomically across shards.

use crate::commands::{flags, CommandSpec, ConnCtx, Handler};
use crate::protocol::parse::Args;
use crate::server::multi;

/// The transaction commands, as Redis 7.0's COMMAND INFO describes them.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "multi",
        1,
        flags::NOSCRIPT | flags::LOADING | flags::STALE | flags::FAST | flags::ALLOW_BUSY,
        (0, 0, 0),
        "@fast @transaction",
        Handler::Conn(multi_cmd),
    ),
    CommandSpec::new(
        "exec",
        1,
        flags::NOSCRIPT | flags::LOADING | flags::STALE | flags::SKIP_MONITOR,
        (0, 0, 0),
        "@slow @transaction",
        Handler::Conn(exec_cmd),
    ),
    CommandSpec::new(
        "discard",
        1,
        flags::NOSCRIPT | flags::LOADING | flags::STALE | flags::FAST | flags::ALLOW_BUSY,
        (0, 0, 0),
        "@fast @transaction",
        Handler::Conn(discard_cmd),
    ),
    CommandSpec::new(
        "watch",
        -2,
        flags::NOSCRIPT | flags::LOADING | flags::STALE | flags::FAST | flags::ALLOW_BUSY,
        (1, -1, 1),
        "@fast @transaction",
        Handler::Conn(watch_cmd),
    ),
    CommandSpec::new(
        "unwatch",
        1,
        flags::NOSCRIPT | flags::LOADING | flags::STALE | flags::FAST | flags::ALLOW_BUSY,
        (0, 0, 0),
        "@fast @transaction",
        Handler::Conn(unwatch_cmd),
    ),
];

fn multi_cmd(ctx: &mut ConnCtx, _args: Args) {
    if ctx.client.multi.is_some() {
        ctx.out.error(b"ERR MULTI calls can not be nested");
        return;
    }
    ctx.client.multi = Some(Box::default());
    ctx.out.ok();
}

fn discard_cmd(ctx: &mut ConnCtx, _args: Args) {
    if ctx.client.multi.take().is_none() {
        ctx.out.error(b"ERR DISCARD without MULTI");
        return;
    }
    multi::unwatch_all(ctx.client, ctx.shard, ctx.shards);
    ctx.out.ok();
}

fn exec_cmd(ctx: &mut ConnCtx, _args: Args) {
    let Some(state) = ctx.client.multi.take() else {
        ctx.out.error(b"ERR EXEC without MULTI");
        return;
    };
    if state.aborted {
        multi::unwatch_all(ctx.client, ctx.shard, ctx.shards);
        ctx.out
            .error(b"EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    multi::exec(ctx, state.queued);
}

fn watch_cmd(ctx: &mut ConnCtx, args: Args) {
    if ctx.client.multi.is_some() {
        ctx.out.error(b"ERR WATCH inside MULTI is not allowed");
        return;
    }
    multi::watch(ctx, &args);
}

fn unwatch_cmd(ctx: &mut ConnCtx, _args: Args) {
    multi::unwatch_all(ctx.client, ctx.shard, ctx.shards);
    ctx.out.ok();
}
