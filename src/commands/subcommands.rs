//! The subcommands of Redis 7.0's container commands and their arities, as
//! `COMMAND` of redis-server 7.0.15 lists them. Redis looks the subcommand up and checks
//! its arity before authentication (`processCommand`), so an unauthenticated
//! `ACL FOO` answers the unknown-subcommand error and `CONFIG GET` the arity error of
//! `config|get`, not `-NOAUTH`. Libellule's handlers dispatch their subcommands
//! themselves; this table is only read on that unauthenticated path.

/// `(container, [(subcommand, arity)])`, names in lower case. Arity as in `COMMAND`:
/// `n` = exactly n arguments with the command and subcommand names, `-n` = at least n.
const TABLE: &[(&str, &[(&str, i32)])] = &[
    (
        "acl",
        &[
            ("cat", -2),
            ("deluser", -3),
            ("dryrun", -4),
            ("genpass", -2),
            ("getuser", 3),
            ("help", 2),
            ("list", 2),
            ("load", 2),
            ("log", -2),
            ("save", 2),
            ("setuser", -3),
            ("users", 2),
            ("whoami", 2),
        ],
    ),
    (
        "client",
        &[
            ("caching", 3),
            ("getname", 2),
            ("getredir", 2),
            ("help", 2),
            ("id", 2),
            ("info", 2),
            ("kill", -3),
            ("list", -2),
            ("no-evict", 3),
            ("pause", -3),
            ("reply", 3),
            ("setname", 3),
            ("tracking", -3),
            ("trackinginfo", 2),
            ("unblock", -3),
            ("unpause", 2),
        ],
    ),
    (
        "cluster",
        &[
            ("addslots", -3),
            ("addslotsrange", -4),
            ("bumpepoch", 2),
            ("count-failure-reports", 3),
            ("countkeysinslot", 3),
            ("delslots", -3),
            ("delslotsrange", -4),
            ("failover", -2),
            ("flushslots", 2),
            ("forget", 3),
            ("getkeysinslot", 4),
            ("help", 2),
            ("info", 2),
            ("keyslot", 3),
            ("links", 2),
            ("meet", -4),
            ("myid", 2),
            ("nodes", 2),
            ("replicas", 3),
            ("replicate", 3),
            ("reset", -2),
            ("saveconfig", 2),
            ("set-config-epoch", 3),
            ("setslot", -4),
            ("shards", 2),
            ("slaves", 3),
            ("slots", 2),
        ],
    ),
    (
        "command",
        &[
            ("count", 2),
            ("docs", -2),
            ("getkeys", -4),
            ("getkeysandflags", -4),
            ("help", 2),
            ("info", -2),
            ("list", -2),
        ],
    ),
    (
        "config",
        &[
            ("get", -3),
            ("help", 2),
            ("resetstat", 2),
            ("rewrite", 2),
            ("set", -4),
        ],
    ),
    (
        "function",
        &[
            ("delete", 3),
            ("dump", 2),
            ("flush", -2),
            ("help", 2),
            ("kill", 2),
            ("list", -2),
            ("load", -3),
            ("restore", -3),
            ("stats", 2),
        ],
    ),
    (
        "latency",
        &[
            ("doctor", 2),
            ("graph", 3),
            ("help", 2),
            ("histogram", -2),
            ("history", 3),
            ("latest", 2),
            ("reset", -2),
        ],
    ),
    (
        "memory",
        &[
            ("doctor", 2),
            ("help", 2),
            ("malloc-stats", 2),
            ("purge", 2),
            ("stats", 2),
            ("usage", -3),
        ],
    ),
    (
        "module",
        &[
            ("help", 2),
            ("list", 2),
            ("load", -3),
            ("loadex", -3),
            ("unload", 3),
        ],
    ),
    (
        "object",
        &[
            ("encoding", 3),
            ("freq", 3),
            ("help", 2),
            ("idletime", 3),
            ("refcount", 3),
        ],
    ),
    (
        "pubsub",
        &[
            ("channels", -2),
            ("help", 2),
            ("numpat", 2),
            ("numsub", -2),
            ("shardchannels", -2),
            ("shardnumsub", -2),
        ],
    ),
    (
        "script",
        &[
            ("debug", 3),
            ("exists", -3),
            ("flush", -2),
            ("help", 2),
            ("kill", 2),
            ("load", 3),
        ],
    ),
    (
        "slowlog",
        &[("get", -2), ("help", 2), ("len", 2), ("reset", 2)],
    ),
    (
        "xgroup",
        &[
            ("create", -5),
            ("createconsumer", 5),
            ("delconsumer", 5),
            ("destroy", 4),
            ("help", 2),
            ("setid", -5),
        ],
    ),
    (
        "xinfo",
        &[("consumers", 4), ("groups", 3), ("help", 2), ("stream", -3)],
    ),
];

/// A container's subcommands: (name, arity), as in [`TABLE`].
pub type Subcommands = &'static [(&'static str, i32)];

/// Every container with its subcommands (names in lower case).
pub fn all() -> impl Iterator<Item = (&'static str, Subcommands)> {
    TABLE.iter().copied()
}

/// What Redis 7.0 answers, before authentication, for a request of `nargs` arguments
/// (names included) of the command `name` (its canonical lower-case name) whose second
/// argument is `sub`, when it is a container: the unknown-subcommand or
/// subcommand-arity error, or `None` (a known subcommand with a valid arity, or not a
/// container), in which case the caller answers `-NOAUTH`.
pub fn pre_auth_error(name: &str, sub: Option<&[u8]>, nargs: usize) -> Option<Vec<u8>> {
    let (_, subs) = TABLE.iter().find(|(c, _)| *c == name)?;
    let sub = sub?;
    let Some((canon, arity)) = subs
        .iter()
        .find(|(s, _)| s.as_bytes().eq_ignore_ascii_case(sub))
    else {
        let mut m = b"ERR unknown subcommand '".to_vec();
        m.extend_from_slice(&sub[..sub.len().min(128)]);
        m.extend_from_slice(b"'. Try ");
        m.extend_from_slice(name.to_ascii_uppercase().as_bytes());
        m.extend_from_slice(b" HELP.");
        return Some(m);
    };
    if super::arity_fits(*arity, nargs) {
        return None;
    }
    Some(super::arity_error(format!("{name}|{canon}").as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_as_redis_before_auth() {
        let e = |a: &[&[u8]]| {
            pre_auth_error(
                std::str::from_utf8(a[0]).unwrap(),
                a.get(1).copied(),
                a.len(),
            )
        };
        assert_eq!(
            e(&[b"acl", b"foo"]).unwrap(),
            b"ERR unknown subcommand 'foo'. Try ACL HELP.".to_vec()
        );
        assert_eq!(e(&[b"acl", b"WHOAMI"]), None);
        assert_eq!(
            e(&[b"acl", b"whoami", b"x"]).unwrap(),
            b"ERR wrong number of arguments for 'acl|whoami' command".to_vec()
        );
        assert_eq!(
            e(&[b"config", b"GET"]).unwrap(),
            b"ERR wrong number of arguments for 'config|get' command".to_vec()
        );
        assert_eq!(e(&[b"config", b"get", b"x", b"y"]), None);
        assert_eq!(e(&[b"get", b"k"]), None);
        assert_eq!(e(&[b"acl"]), None);
    }
}
