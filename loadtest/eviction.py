#!/usr/bin/env python3
"""Eviction hit-ratio benchmark: Libellule (cache mode) against redis-server with
allkeys-lru and allkeys-lfu, same maxmemory, same request sequence, one after the other
in one run.

Workload 1 (read-through, Zipf): keys drawn from a Zipf(ALPHA) distribution over KEYS
keys (several times what fits in MAXMEMORY); each request is a GET, and a miss is
followed by a SET of a VALUE-byte value. Requests are sent in pipelined batches of
BATCH GETs followed by the SETs of that batch's misses (identical for every server).
WARMUP requests fill the cache, then REQUESTS requests are measured.

Workload 2 (scan resistance): a hot set of HOT keys (a fraction of what fits) is read
through PASSES times; then one sequential read-through pass over SCAN cold keys (three
times what fits); then one pass of GETs over the hot set: its hit ratio is reported.

No third-party module: a minimal RESP client over a socket. Environment knobs:
MAXMEMORY (bytes, default 32 MiB), KEYS, ALPHA, VALUE, WARMUP, REQUESTS, BATCH, HOT,
PASSES, SCAN, SEED, LIB_PORT, REDIS_PORT, LIBELLULE_BIN, REDIS_BIN, LIB_THREADS,
SERVER_CPU (taskset CPU list for the servers, default 0).
"""

import bisect
import os
import random
import socket
import subprocess
import sys
import time

ENV = os.environ
MAXMEMORY = int(ENV.get("MAXMEMORY", 32 * 1024 * 1024))
KEYS = int(ENV.get("KEYS", 1_000_000))
ALPHA = float(ENV.get("ALPHA", 0.99))
VALUE = int(ENV.get("VALUE", 100))
WARMUP = int(ENV.get("WARMUP", 1_000_000))
REQUESTS = int(ENV.get("REQUESTS", 2_000_000))
BATCH = int(ENV.get("BATCH", 64))
HOT = int(ENV.get("HOT", 20_000))
PASSES = int(ENV.get("PASSES", 5))
SCAN = int(ENV.get("SCAN", 600_000))
SEED = int(ENV.get("SEED", 42))
LIB_PORT = int(ENV.get("LIB_PORT", 17381))
REDIS_PORT = int(ENV.get("REDIS_PORT", 17382))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB_BIN = ENV.get("LIBELLULE_BIN", os.path.join(ROOT, "target/release/libellule"))
REDIS_BIN = ENV.get("REDIS_BIN", "/usr/bin/redis-server")
LIB_THREADS = ENV.get("LIB_THREADS", "1")
SERVER_CPU = ENV.get("SERVER_CPU", "0")


class Conn:
    """A pipelining RESP2 client."""

    def __init__(self, port):
        for _ in range(100):
            try:
                self.sock = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"nothing listens on {port}")
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb", buffering=1 << 20)

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def read(self):
        line = self.f.readline()
        t = line[:1]
        if t == b"$":
            n = int(line[1:-2])
            if n < 0:
                return None
            return self.f.read(n + 2)[:-2]
        if t == b"-":
            raise RuntimeError(line[1:-2].decode())
        if t == b"*":
            return [self.read() for _ in range(int(line[1:-2]))]
        return line[1:-2]

    def pipeline(self, payload, n):
        self.sock.sendall(payload)
        return [self.read() for _ in range(n)]

    def call(self, *args):
        return self.pipeline(self.encode(*args), 1)[0]

    def info(self, field):
        text = self.call("INFO", "all").decode()
        for line in text.splitlines():
            if line.startswith(field + ":"):
                return line.split(":", 1)[1]
        return "?"


def zipf_sequence(n, count, rng):
    """`count` key ids drawn from Zipf(ALPHA) over n keys, ranks scattered over ids."""
    cdf = []
    acc = 0.0
    for i in range(1, n + 1):
        acc += 1.0 / (i ** ALPHA)
        cdf.append(acc)
    total = acc
    out = []
    r = rng.random
    bis = bisect.bisect_left
    for _ in range(count):
        rank = bis(cdf, r() * total)
        # Scatter ranks over ids so popular keys are not neighbours.
        out.append((rank * 2654435761) % n)
    return out


def key(i, prefix="k"):
    return b"%s:%010d" % (prefix.encode(), i)


def read_through(conn, ids, value, prefix="k"):
    """GET each key, SET the misses; returns (hits, requests)."""
    hits = 0
    enc = Conn.encode
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        keys = [key(i, prefix) for i in chunk]
        got = conn.pipeline(b"".join(enc(b"GET", k) for k in keys), len(keys))
        misses = [k for k, v in zip(keys, got) if v is None]
        hits += len(keys) - len(misses)
        if misses:
            conn.pipeline(b"".join(enc(b"SET", k, value) for k in misses), len(misses))
    return hits, len(ids)


def gets(conn, ids, prefix):
    """GET each key; returns the hits."""
    hits = 0
    enc = Conn.encode
    for start in range(0, len(ids), BATCH):
        keys = [key(i, prefix) for i in ids[start : start + BATCH]]
        got = conn.pipeline(b"".join(enc(b"GET", k) for k in keys), len(keys))
        hits += sum(1 for v in got if v is not None)
    return hits


def start(name, maxmemory):
    taskset = ["taskset", "-c", SERVER_CPU]
    if name == "libellule":
        cmd = taskset + [
            LIB_BIN, "--port", str(LIB_PORT), "--bind", "127.0.0.1",
            "--maxmemory", str(maxmemory), "--cache_mode", "true",
            "--io_threads", LIB_THREADS, "--save", "", "--dir", "/tmp",
        ]
        port = LIB_PORT
    else:
        policy = name.split(" ")[1]
        cmd = taskset + [
            REDIS_BIN, "--port", str(REDIS_PORT), "--bind", "127.0.0.1",
            "--maxmemory", str(maxmemory), "--maxmemory-policy", policy,
            "--save", "", "--appendonly", "no", "--dir", "/tmp",
        ]
        port = REDIS_PORT
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conn = Conn(port)
    for _ in range(100):
        try:
            if conn.call("PING") == b"PONG":
                break
        except RuntimeError:
            pass
        time.sleep(0.05)
    return proc, conn


def stop(proc):
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


def run(name, maxmemory, seq, value):
    """Both workloads on a fresh server; returns a dict of figures."""
    proc, conn = start(name, maxmemory)
    try:
        startup = int(conn.info("used_memory"))
        t = time.time()
        read_through(conn, seq[:WARMUP], value)
        hits, n = read_through(conn, seq[WARMUP:], value)
        elapsed = time.time() - t
        r = {
            "name": name,
            "maxmemory": maxmemory,
            "hit": hits / n,
            "keys": int(conn.call("DBSIZE")),
            "used": int(conn.info("used_memory")),
            "startup": startup,
            "evicted": conn.info("evicted_keys"),
        }
        # Scan resistance on a fresh keyspace of the same server.
        conn.call("FLUSHALL")
        hot = list(range(HOT))
        for _ in range(PASSES):
            read_through(conn, hot, value, "hot")
        r["hot_before"] = gets(conn, hot, "hot") / HOT
        read_through(conn, list(range(SCAN)), value, "cold")
        r["hot_after"] = gets(conn, hot, "hot") / HOT
        print(
            f"{name:20s} maxmemory {maxmemory:>10d}  hit ratio {r['hit']:.4f}  keys held "
            f"{r['keys']:>8d}  used_memory {r['used']:>10d} (empty {startup})  evicted "
            f"{r['evicted']:>8s}  ({elapsed:.0f} s) | scan: hot set hits before "
            f"{r['hot_before']:.3f}, after {r['hot_after']:.3f}",
            flush=True,
        )
        return r
    finally:
        stop(proc)


def main():
    rng = random.Random(SEED)
    t0 = time.time()
    seq = zipf_sequence(KEYS, WARMUP + REQUESTS, rng)
    print(
        f"# maxmemory {MAXMEMORY} B, {KEYS} keys, Zipf {ALPHA}, {VALUE}-byte values, "
        f"{WARMUP} warm-up + {REQUESTS} measured requests, batches of {BATCH} "
        f"(sequence built in {time.time() - t0:.1f} s)",
        flush=True,
    )
    value = b"v" * VALUE
    print("## same maxmemory", flush=True)
    lib = run("libellule", MAXMEMORY, seq, value)
    lru = run("redis allkeys-lru", MAXMEMORY, seq, value)
    lfu = run("redis allkeys-lfu", MAXMEMORY, seq, value)
    same_ok = lib["hit"] >= lru["hit"] and lib["hit"] >= lfu["hit"]
    print(
        f"# same maxmemory: libellule - lru = {lib['hit'] - lru['hit']:+.4f}, "
        f"libellule - lfu = {lib['hit'] - lfu['hit']:+.4f} (keys held: libellule "
        f"{lib['keys']}, redis {lru['keys']})"
    )
    # The policy alone: redis-server given the maxmemory at which it holds as many keys
    # as Libellule held (its own bytes per key, measured above).
    per_key = (lru["used"] - lru["startup"]) / max(lru["keys"], 1)
    matched = int(lru["startup"] + lib["keys"] * per_key)
    print(f"## equal capacity: redis-server at {matched} B holds about {lib['keys']} keys", flush=True)
    lru2 = run("redis allkeys-lru", matched, seq, value)
    lfu2 = run("redis allkeys-lfu", matched, seq, value)
    eq_ok = lib["hit"] >= lru2["hit"] and lib["hit"] >= lfu2["hit"]
    print(
        f"# equal capacity: libellule - lru = {lib['hit'] - lru2['hit']:+.4f}, "
        f"libellule - lfu = {lib['hit'] - lfu2['hit']:+.4f}"
    )
    scan_ok = lib["hot_after"] >= 0.9
    print(
        f"# scan: hot set after the scan: libellule {lib['hot_after']:.3f}, lru "
        f"{lru['hot_after']:.3f}, lfu {lfu['hot_after']:.3f}"
    )
    print(
        f"# same maxmemory {'PASS' if same_ok else 'FAIL'}, equal capacity "
        f"{'PASS' if eq_ok else 'FAIL'}, scan resistance {'PASS' if scan_ok else 'FAIL'}"
    )
    return 0 if same_ok and eq_ok and scan_ok else 1


if __name__ == "__main__":
    sys.exit(main())
