//! Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE,
//! SUNSUBSCRIBE, PUBLISH, SPUBLISH and PUBSUB CHANNELS|NUMSUB|NUMPAT|SHARDCHANNELS|
//! SHARDNUMSUB|HELP.
//!
//! Subscriptions are kept by the subscriber's home shard; PUBLISH visits every shard
//! (see [`crate::server::pubsub`]). In RESP2 a subscribed client may only send the
//! commands the dispatcher allows; in RESP3 messages arrive as push frames between
//! ordinary replies.

use super::server::{help_reply, sub_arity_error, subcommand_error};
use crate::commands::{eq_ic, flags, AsyncCtx, CommandSpec, ConnCtx, Handler, ReplyFuture};
use crate::protocol::parse::{Args, OwnedArgs};
use crate::server::pubsub::{self, write_confirmation, Kind};
use std::collections::BTreeSet;

const SUB_FLAGS: u32 = flags::PUBSUB | flags::NOSCRIPT | flags::LOADING | flags::STALE;

/// The pub/sub commands, as Redis 7.0's COMMAND INFO describes them.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "subscribe",
        -2,
        SUB_FLAGS,
        (0, 0, 0),
        "@pubsub @slow",
        Handler::Conn(subscribe),
    ),
    CommandSpec::new(
        "unsubscribe",
        -1,
        SUB_FLAGS,
        (0, 0, 0),
        "@pubsub @slow",
        Handler::Conn(unsubscribe),
    ),
    CommandSpec::new(
        "psubscribe",
        -2,
        SUB_FLAGS,
        (0, 0, 0),
        "@pubsub @slow",
        Handler::Conn(psubscribe),
    ),
    CommandSpec::new(
        "punsubscribe",
        -1,
        SUB_FLAGS,
        (0, 0, 0),
        "@pubsub @slow",
        Handler::Conn(punsubscribe),
    ),
    CommandSpec::new(
        "ssubscribe",
        -2,
        SUB_FLAGS,
        (1, -1, 1),
        "@pubsub @slow",
        Handler::Conn(ssubscribe),
    ),
    CommandSpec::new(
        "sunsubscribe",
        -1,
        SUB_FLAGS,
        (1, -1, 1),
        "@pubsub @slow",
        Handler::Conn(sunsubscribe),
    ),
    CommandSpec::new(
        "publish",
        3,
        flags::PUBSUB | flags::LOADING | flags::STALE | flags::FAST,
        (0, 0, 0),
        "@pubsub @fast",
        Handler::Conn(publish),
    ),
    CommandSpec::new(
        "spublish",
        3,
        flags::PUBSUB | flags::LOADING | flags::STALE | flags::FAST,
        (1, 1, 1),
        "@pubsub @fast",
        Handler::Conn(spublish),
    ),
    CommandSpec::new(
        "pubsub",
        -2,
        flags::PUBSUB | flags::LOADING | flags::STALE,
        (0, 0, 0),
        "@pubsub @slow",
        Handler::Async(pubsub_cmd),
    ),
];

fn subscribe_kind(ctx: &mut ConnCtx, args: Args, kind: Kind, confirm: &[u8]) {
    let id = ctx.client.id;
    for i in 1..args.len() {
        let name = args.get(i);
        let subs = &mut ctx.client.subs;
        let set = match kind {
            Kind::Channel => &mut subs.channels,
            Kind::Pattern => &mut subs.patterns,
            Kind::Shard => &mut subs.shard_channels,
        };
        if set.insert(name.to_vec()) {
            ctx.shard.pubsub.add(kind, name, id);
        }
        let count = match kind {
            Kind::Shard => subs.shard_count(),
            _ => subs.count(),
        };
        write_confirmation(&mut ctx.out, confirm, Some(name), count);
    }
}

fn unsubscribe_kind(ctx: &mut ConnCtx, args: Args, kind: Kind, confirm: &[u8]) {
    let id = ctx.client.id;
    let names: Vec<Vec<u8>> = if args.len() > 1 {
        (1..args.len()).map(|i| args.get(i).to_vec()).collect()
    } else {
        let subs = &ctx.client.subs;
        match kind {
            Kind::Channel => subs.channels.iter().cloned().collect(),
            Kind::Pattern => subs.patterns.iter().cloned().collect(),
            Kind::Shard => subs.shard_channels.iter().cloned().collect(),
        }
    };
    let count_of = |ctx: &ConnCtx| match kind {
        Kind::Shard => ctx.client.subs.shard_count(),
        _ => ctx.client.subs.count(),
    };
    if names.is_empty() {
        let count = count_of(ctx);
        write_confirmation(&mut ctx.out, confirm, None, count);
        return;
    }
    for name in names {
        let subs = &mut ctx.client.subs;
        let set = match kind {
            Kind::Channel => &mut subs.channels,
            Kind::Pattern => &mut subs.patterns,
            Kind::Shard => &mut subs.shard_channels,
        };
        if set.shift_remove(&name) {
            ctx.shard.pubsub.remove(kind, &name, id);
        }
        let count = count_of(ctx);
        write_confirmation(&mut ctx.out, confirm, Some(&name), count);
    }
}

fn subscribe(ctx: &mut ConnCtx, args: Args) {
    subscribe_kind(ctx, args, Kind::Channel, b"subscribe");
}

fn psubscribe(ctx: &mut ConnCtx, args: Args) {
    subscribe_kind(ctx, args, Kind::Pattern, b"psubscribe");
}

fn ssubscribe(ctx: &mut ConnCtx, args: Args) {
    subscribe_kind(ctx, args, Kind::Shard, b"ssubscribe");
}

fn unsubscribe(ctx: &mut ConnCtx, args: Args) {
    unsubscribe_kind(ctx, args, Kind::Channel, b"unsubscribe");
}

fn punsubscribe(ctx: &mut ConnCtx, args: Args) {
    unsubscribe_kind(ctx, args, Kind::Pattern, b"punsubscribe");
}

fn sunsubscribe(ctx: &mut ConnCtx, args: Args) {
    unsubscribe_kind(ctx, args, Kind::Shard, b"sunsubscribe");
}

/// PUBLISH / SPUBLISH: inline with one shard, otherwise a visit to every shard.
fn publish_kind(ctx: &mut ConnCtx, args: Args, kind: Kind) {
    if ctx.shards.n == 1 {
        let n = pubsub::deliver_local(ctx.shard, kind, args.get(1), args.get(2));
        ctx.out.int(n as i64);
        return;
    }
    let shards = ctx.shards.clone();
    let resp3 = ctx.client.resp3;
    let (channel, message) = (args.get(1).to_vec(), args.get(2).to_vec());
    ctx.deferred = Some(Box::pin(async move {
        let n = pubsub::publish(&shards, kind, channel, message).await;
        let mut buf = Vec::new();
        crate::protocol::reply::ReplyWriter::new(&mut buf, resp3).int(n as i64);
        buf
    }));
}

fn publish(ctx: &mut ConnCtx, args: Args) {
    publish_kind(ctx, args, Kind::Channel)
}

fn spublish(ctx: &mut ConnCtx, args: Args) {
    publish_kind(ctx, args, Kind::Shard)
}

const PUBSUB_HELP: &[&[u8]] = &[
    b"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CHANNELS [<pattern>]",
    b"    Return the currently active channels matching a <pattern> (default: '*').",
    b"NUMPAT",
    b"    Return number of subscriptions to patterns.",
    b"NUMSUB [<channel> ...]",
    b"    Return the number of subscribers for the specified channels, excluding",
    b"    pattern subscriptions(default: no channels).",
    b"SHARDCHANNELS [<pattern>]",
    b"    Return the currently active shard level channels matching a <pattern> (default: '*').",
    b"SHARDNUMSUB [<shardchannel> ...]",
    b"    Return the number of subscribers for the specified shard level channel(s)",
    b"HELP",
    b"    Prints this help.",
];

fn pubsub_cmd(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let v = args.view();
        let sub = v.get(1).to_vec();
        let argc = v.len();
        let mut buf = Vec::new();
        let mut out = ctx.writer(&mut buf);
        let syntax = |out: &mut crate::protocol::reply::ReplyWriter| {
            let mut m = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
            m.extend_from_slice(&sub);
            m.extend_from_slice(b"'. Try PUBSUB HELP.");
            out.error(&m);
        };
        if eq_ic(&sub, "help") {
            if argc != 2 {
                sub_arity_error(&mut out, "pubsub", &sub);
                return buf;
            }
            help_reply(&mut out, PUBSUB_HELP);
        } else if eq_ic(&sub, "channels") || eq_ic(&sub, "shardchannels") {
            if argc > 3 {
                syntax(&mut out);
                return buf;
            }
            let kind = if eq_ic(&sub, "channels") {
                Kind::Channel
            } else {
                Kind::Shard
            };
            let pattern = (argc == 3).then(|| v.get(2).to_vec());
            let lists = ctx
                .shards
                .run_on_all(move |d| d.pubsub.active_channels(kind, pattern.as_deref()))
                .await;
            let all: BTreeSet<Vec<u8>> = lists.into_iter().flatten().collect();
            out.array(all.len());
            for c in &all {
                out.bulk(c);
            }
        } else if eq_ic(&sub, "numsub") || eq_ic(&sub, "shardnumsub") {
            let kind = if eq_ic(&sub, "numsub") {
                Kind::Channel
            } else {
                Kind::Shard
            };
            let channels: Vec<Vec<u8>> = (2..argc).map(|i| v.get(i).to_vec()).collect();
            let query = std::sync::Arc::new(channels.clone());
            let counts = ctx
                .shards
                .run_on_all(move |d| {
                    query
                        .iter()
                        .map(|c| d.pubsub.subscribers(kind, c))
                        .collect::<Vec<usize>>()
                })
                .await;
            out.array(channels.len() * 2);
            for (i, c) in channels.iter().enumerate() {
                out.bulk(c);
                out.int(counts.iter().map(|per| per[i]).sum::<usize>() as i64);
            }
        } else if eq_ic(&sub, "numpat") {
            if argc != 2 {
                sub_arity_error(&mut out, "pubsub", &sub);
                return buf;
            }
            let lists = ctx.shards.run_on_all(|d| d.pubsub.patterns()).await;
            let all: BTreeSet<Vec<u8>> = lists.into_iter().flatten().collect();
            out.int(all.len() as i64);
        } else {
            subcommand_error(&mut out, "pubsub", &sub);
        }
        buf
    })
}
