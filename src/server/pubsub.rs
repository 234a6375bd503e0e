//! Pub/sub across shards.
//!
//! A subscriber is registered on its connection's home shard only: each shard keeps the
//! channels, patterns and shard channels its own clients listen to ([`Registry`]).
//! PUBLISH runs a closure on every shard (the channel mesh), which writes the message
//! into the output of its local subscribers and returns how many it reached; the
//! publisher sums the counts. Messages from one publisher reach every subscriber in the
//! order they were published, since a publisher waits for each PUBLISH reply.
//!
//! Keyspace notifications (`notify-keyspace-events`) are queued by the writes
//! ([`crate::shard::ShardData::modified`]) and published by [`flush_key_events`] after
//! the commands that raised them.

use crate::config::glob_match;
use crate::protocol::reply::ReplyWriter;
use crate::shard::{ShardData, Shards};
use indexmap::IndexSet;
use std::rc::Rc;

/// One client's subscriptions, in subscription order.
#[derive(Clone, Debug, Default)]
pub struct Subscriptions {
    /// SUBSCRIBE channels.
    pub channels: IndexSet<Vec<u8>>,
    /// PSUBSCRIBE patterns.
    pub patterns: IndexSet<Vec<u8>>,
    /// SSUBSCRIBE shard channels.
    pub shard_channels: IndexSet<Vec<u8>>,
}

impl Subscriptions {
    /// Channels plus patterns: the count SUBSCRIBE and PSUBSCRIBE replies carry.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Shard channels: the count SSUBSCRIBE replies carry.
    pub fn shard_count(&self) -> usize {
        self.shard_channels.len()
    }

    /// True when the client is in subscribed mode (RESP2 then limits its commands).
    pub fn active(&self) -> bool {
        self.count() + self.shard_count() > 0
    }
}

/// Which kind of subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE / PUBLISH.
    Channel,
    /// PSUBSCRIBE.
    Pattern,
    /// SSUBSCRIBE / SPUBLISH.
    Shard,
}

/// The subscriptions of one shard's clients.
#[derive(Default)]
pub struct Registry {
    channels: hashbrown::HashMap<Vec<u8>, Vec<u64>>,
    patterns: hashbrown::HashMap<Vec<u8>, Vec<u64>>,
    shard_channels: hashbrown::HashMap<Vec<u8>, Vec<u64>>,
}

impl Registry {
    fn map(&mut self, kind: Kind) -> &mut hashbrown::HashMap<Vec<u8>, Vec<u64>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    /// Registers client `id` on `name`.
    pub fn add(&mut self, kind: Kind, name: &[u8], id: u64) {
        let list = self.map(kind).entry(name.to_vec()).or_default();
        if !list.contains(&id) {
            list.push(id);
        }
    }

    /// Unregisters client `id` from `name`.
    pub fn remove(&mut self, kind: Kind, name: &[u8], id: u64) {
        let map = self.map(kind);
        if let Some(list) = map.get_mut(name) {
            list.retain(|c| *c != id);
            if list.is_empty() {
                map.remove(name);
            }
        }
    }

    /// True when nobody on this shard subscribes to anything.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty() && self.shard_channels.is_empty()
    }

    /// Channels (or shard channels) with at least one subscriber, matching `pattern`.
    pub fn active_channels(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let map = match kind {
            Kind::Shard => &self.shard_channels,
            _ => &self.channels,
        };
        map.keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of `channel` (or shard channel) on this shard.
    pub fn subscribers(&self, kind: Kind, channel: &[u8]) -> usize {
        let map = match kind {
            Kind::Shard => &self.shard_channels,
            _ => &self.channels,
        };
        map.get(channel).map_or(0, |l| l.len())
    }

    /// (channels, patterns, shard channels) with at least one subscriber on this shard.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.channels.len(),
            self.patterns.len(),
            self.shard_channels.len(),
        )
    }

    /// Distinct patterns subscribed on this shard.
    pub fn patterns(&self) -> Vec<Vec<u8>> {
        self.patterns.keys().cloned().collect()
    }
}

/// Writes a subscription confirmation (`subscribe`, `unsubscribe`, `psubscribe`...):
/// a push frame in RESP3, an array in RESP2. `name` `None` is Redis's nil (UNSUBSCRIBE
/// with nothing subscribed).
pub fn write_confirmation(out: &mut ReplyWriter, kind: &[u8], name: Option<&[u8]>, count: usize) {
    out.push(3);
    out.bulk(kind);
    match name {
        Some(n) => out.bulk(n),
        None => out.null(),
    }
    out.int(count as i64);
}

fn encode_message(resp3: bool, parts: &[&[u8]]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(parts.iter().map(|p| p.len() + 16).sum::<usize>() + 8);
    let mut w = ReplyWriter::new(&mut buf, resp3);
    w.push(parts.len());
    for p in parts {
        w.bulk(p);
    }
    buf
}

/// Delivers a message to this shard's subscribers of `channel` (and, for [`Kind::Channel`],
/// of matching patterns). Returns the number of receivers.
pub fn deliver_local(d: &mut ShardData, kind: Kind, channel: &[u8], message: &[u8]) -> usize {
    if d.pubsub.is_empty() {
        return 0;
    }
    let mut targets: Vec<(u64, Option<Vec<u8>>)> = Vec::new();
    let map = match kind {
        Kind::Shard => &d.pubsub.shard_channels,
        _ => &d.pubsub.channels,
    };
    if let Some(list) = map.get(channel) {
        targets.extend(list.iter().map(|id| (*id, None)));
    }
    if kind == Kind::Channel {
        for (pat, list) in &d.pubsub.patterns {
            if glob_match(pat, channel, false) {
                targets.extend(list.iter().map(|id| (*id, Some(pat.clone()))));
            }
        }
    }
    let mut delivered = 0;
    for (id, pattern) in targets {
        let Some(resp3) = d.clients.get(&id).map(|c| c.borrow().resp3) else {
            continue;
        };
        let bytes = match (&pattern, kind) {
            (Some(p), _) => encode_message(resp3, &[b"pmessage", p, channel, message]),
            (None, Kind::Shard) => encode_message(resp3, &[b"smessage", channel, message]),
            (None, _) => encode_message(resp3, &[b"message", channel, message]),
        };
        d.push_to_client(id, bytes);
        delivered += 1;
    }
    delivered
}

/// PUBLISH / SPUBLISH: delivers on every shard, returns the number of receivers.
pub async fn publish(shards: &Shards, kind: Kind, channel: Vec<u8>, message: Vec<u8>) -> usize {
    if shards.n == 1 {
        let mut d = shards.data.borrow_mut();
        return deliver_local(&mut d, kind, &channel, &message);
    }
    let channel = std::sync::Arc::new(channel);
    let message = std::sync::Arc::new(message);
    shards
        .run_on_all(move |d| deliver_local(d, kind, &channel, &message))
        .await
        .into_iter()
        .sum()
}

/// Removes every subscription of a closing client from its home shard's registry.
pub fn forget_client(d: &mut ShardData, id: u64, subs: &Subscriptions) {
    for c in &subs.channels {
        d.pubsub.remove(Kind::Channel, c, id);
    }
    for p in &subs.patterns {
        d.pubsub.remove(Kind::Pattern, p, id);
    }
    for c in &subs.shard_channels {
        d.pubsub.remove(Kind::Shard, c, id);
    }
}

/// Publishes the keyspace events queued on this shard (see
/// [`crate::shard::ShardData::key_event`]) as `__keyspace@<db>__:<key>` and
/// `__keyevent@<db>__:<event>` messages. Runs the publication as a task.
pub fn flush_key_events(shards: &Rc<Shards>) {
    let events = {
        let mut d = shards.data.borrow_mut();
        d.drain_expired();
        d.drain_created();
        if d.events.is_empty() {
            return;
        }
        std::mem::take(&mut d.events)
    };
    let mask = shards.data.borrow().notify_mask;
    // One publisher task per shard drains a queue in order: a task per flush could be
    // overtaken by a later one while it waits on a cross-shard send, and subscribers
    // would see a key's events out of order.
    EVENT_QUEUE.with(|q| q.borrow_mut().extend(events.into_iter().map(|e| (e, mask))));
    if EVENT_PUBLISHER_RUNNING.with(|r| r.replace(true)) {
        return;
    }
    let shards = shards.clone();
    glommio::spawn_local(async move {
        use crate::shard::watch::notify;
        while let Some((e, mask)) = EVENT_QUEUE.with(|q| q.borrow_mut().pop_front()) {
            if mask & notify::KEYSPACE != 0 {
                let mut ch = format!("__keyspace@{}__:", e.db).into_bytes();
                ch.extend_from_slice(&e.key);
                publish(&shards, Kind::Channel, ch, e.event.as_bytes().to_vec()).await;
            }
            if mask & notify::KEYEVENT != 0 {
                let ch = format!("__keyevent@{}__:{}", e.db, e.event).into_bytes();
                publish(&shards, Kind::Channel, ch, e.key.to_vec()).await;
            }
        }
        // A burst (a mass expiry announces every key) must not keep its queue's peak size.
        EVENT_QUEUE.with(|q| {
            let mut q = q.borrow_mut();
            if q.capacity() > 1024 {
                q.shrink_to(64);
            }
        });
        EVENT_PUBLISHER_RUNNING.with(|r| r.set(false));
    })
    .detach();
}

thread_local! {
    /// Keyspace events of this shard waiting for its publisher task, with the
    /// notification mask in force when they happened.
    static EVENT_QUEUE: std::cell::RefCell<std::collections::VecDeque<(crate::shard::watch::KeyEvent, u32)>> =
        const { std::cell::RefCell::new(std::collections::VecDeque::new()) };
    /// True while this shard's publisher task runs.
    static EVENT_PUBLISHER_RUNNING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
