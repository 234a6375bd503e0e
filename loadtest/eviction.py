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
    hits = 0
    enc = Conn.encode
    for start in range(0, len(ids), BATCH):
        keys = [key(i, prefix) for i in ids[start : start + BATCH]]
        got = conn.pipeline(b"".join(enc(b"GET", k) for k in keys), len(keys))
        hits += sum(1 for v in got if v is not None)
    return hits


def start(name):
    taskset = ["taskset", "-c", SERVER_CPU]
    if name == "libellule":
        cmd = taskset + [
            LIB_BIN, "--port", str(LIB_PORT), "--bind", "127.0.0.1",
            "--maxmemory", str(MAXMEMORY), "--cache_mode", "true",
            "--io_threads", LIB_THREADS, "--save", "", "--dir", "/tmp",
        ]
        port = LIB_PORT
    else:
        policy = name.split(" ")[1]
        cmd = taskset + [
            REDIS_BIN, "--port", str(REDIS_PORT), "--bind", "127.0.0.1",
            "--maxmemory", str(MAXMEMORY), "--maxmemory-policy", policy,
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


def main():
    rng = random.Random(SEED)
    t0 = time.time()
    seq = zipf_sequence(KEYS, WARMUP + REQUESTS, rng)
    print(
        f"# maxmemory {MAXMEMORY} B, {KEYS} keys, Zipf {ALPHA}, {VALUE}-byte values, "
        f"{WARMUP} warm-up + {REQUESTS} measured requests (sequence built in "
        f"{time.time() - t0:.1f} s)",
        flush=True,
    )
    value = b"v" * VALUE
    servers = ["libellule", "redis allkeys-lru", "redis allkeys-lfu"]
    only = ENV.get("ONLY")
    if only:
        servers = [s for s in servers if only in s]
    rows = []
    for name in servers:
        proc, conn = start(name)
        try:
            t = time.time()
            read_through(conn, seq[:WARMUP], value)
            hits, n = read_through(conn, seq[WARMUP:], value)
            elapsed = time.time() - t
            used = conn.info("used_memory")
            evicted = conn.info("evicted_keys")
            dbsize = int(conn.call("DBSIZE"))
            # Scan resistance on a fresh keyspace of the same server.
            conn.call("FLUSHALL")
            hot = list(range(HOT))
            for _ in range(PASSES):
                read_through(conn, hot, value, "hot")
            warm_hits = gets(conn, hot, "hot")
            read_through(conn, list(range(SCAN)), value, "cold")
            after = gets(conn, hot, "hot")
            rows.append((name, hits / n, dbsize, used, evicted, warm_hits / HOT, after / HOT))
            print(
                f"{name:20s} hit ratio {hits / n:.4f}  keys held {dbsize}  "
                f"used_memory {used}  evicted {evicted}  ({elapsed:.0f} s) | scan: hot "
                f"set hits before {warm_hits / HOT:.3f}, after {after / HOT:.3f}",
                flush=True,
            )
        finally:
            stop(proc)
    if rows and rows[0][0] == "libellule" and len(rows) == 3:
        lib, lru, lfu = rows
        print(
            f"# libellule - lru = {lib[1] - lru[1]:+.4f}, libellule - lfu = "
            f"{lib[1] - lfu[1]:+.4f}; hot set after scan: libellule {lib[6]:.3f}, "
            f"lru {lru[6]:.3f}, lfu {lfu[6]:.3f}"
        )
        ok = lib[1] >= lru[1] and lib[1] >= lfu[1] and lib[6] >= 0.9
        print("# PASS" if ok else "# FAIL")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
