//! Runs the Node.js suite in `tests/node/` (ioredis doing what Directus does: scripts
//! through defineCommand, the rate limiter, locks with SELECT, pipelined MULTI/EXEC,
//! pub/sub across shards) against the real binary with three shards.
//!
//! `make test` installs the suite's npm packages first (`npm ci` in `tests/node`).
//! Outside CI the test is skipped when `node` or the packages are missing.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[test]
fn ioredis_directus_suite() {
    if !require_tool("node") {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    if !dir.join("node_modules/ioredis").is_dir() {
        if in_ci() {
            panic!("tests/node/node_modules is missing: `make test` runs `npm ci` there first");
        }
        eprintln!("SKIPPED: run `npm ci` in tests/node to enable the ioredis suite");
        return;
    }
    let s = Server::start(&["--io_threads", "3"]);
    let mut cmd = Command::new("node");
    cmd.arg("--test")
        .arg("directus.test.js")
        .current_dir(&dir)
        .env("LIBELLULE_PORT", s.port.to_string());
    let out = run_with_timeout(cmd, b"", Duration::from_secs(120));
    assert!(
        out.status.success(),
        "the ioredis suite failed:\n{}\n--- server log ---\n{}",
        out.all(),
        s.log()
    );
}
