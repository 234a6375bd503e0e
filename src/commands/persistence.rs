//! Snapshot commands: SAVE, BGSAVE [SCHEDULE], LASTSAVE (the machinery is in
//! [`crate::persistence`]).

use super::{eq_ic, flags, AsyncCtx, CommandSpec, ConnCtx, Handler, ReplyFuture, SYNTAX_ERR};
use crate::persistence::{save, schedule};
use crate::protocol::parse::{Args, OwnedArgs};

/// The commands of this family.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "save",
        1,
        flags::ADMIN | flags::NOSCRIPT | flags::NO_MULTI,
        (0, 0, 0),
        "@admin @slow @dangerous",
        Handler::Async(save_cmd),
    ),
    CommandSpec::new(
        "bgsave",
        -1,
        flags::ADMIN | flags::NOSCRIPT,
        (0, 0, 0),
        "@admin @slow @dangerous",
        Handler::Async(bgsave),
    ),
    CommandSpec::new(
        "lastsave",
        1,
        flags::LOADING | flags::STALE | flags::FAST | flags::RANDOM,
        (0, 0, 0),
        "@admin @fast @dangerous",
        Handler::Conn(lastsave),
    ),
];

const IN_PROGRESS: &[u8] = b"ERR Background save already in progress";

fn reply(ctx: &AsyncCtx, f: impl FnOnce(&mut crate::protocol::reply::ReplyWriter)) -> Vec<u8> {
    let mut buf = Vec::new();
    f(&mut ctx.writer(&mut buf));
    buf
}

/// `SAVE`: writes a snapshot and replies when it is on disk. Other clients keep being
/// served meanwhile (the snapshot is point-in-time without blocking them).
fn save_cmd(ctx: AsyncCtx, _args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        match save::run(ctx.shards.clone(), false).await {
            Ok(()) => reply(&ctx, |w| w.ok()),
            Err(save::SaveError::InProgress) => reply(&ctx, |w| w.error(IN_PROGRESS)),
            Err(save::SaveError::Failed(_)) => reply(&ctx, |w| w.error(b"ERR")),
        }
    })
}

/// `BGSAVE [SCHEDULE]`
fn bgsave(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let schedule = match a.len() {
            1 => false,
            2 if eq_ic(a.get(1), "schedule") => true,
            _ => return reply(&ctx, |w| w.error(SYNTAX_ERR)),
        };
        if !save::claim() {
            if schedule {
                schedule::schedule_bgsave();
                return reply(&ctx, |w| w.simple(b"Background saving scheduled"));
            }
            return reply(&ctx, |w| w.error(IN_PROGRESS));
        }
        // The cut is taken before the reply: writes sent after it are not in the file.
        // Inside EXEC the transaction holds every shard's whole-shard lock already.
        let st = save::start(&ctx.shards, true, ctx.client.in_exec).await;
        let shards = ctx.shards.clone();
        glommio::spawn_local(async move {
            futures_lite::future::yield_now().await;
            let _ = save::finish(&shards, st).await;
        })
        .detach();
        reply(&ctx, |w| w.simple(b"Background saving started"))
    })
}

/// `LASTSAVE`
fn lastsave(ctx: &mut ConnCtx, _args: Args) {
    ctx.out.int(crate::persistence::last_save() as i64);
}
