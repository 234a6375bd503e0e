#!/usr/bin/env python3
"""Soak test: many open connections, a mixed pipelined load, churn, then checks.

Not part of `cargo test`. Run it with `loadtest/soak.sh` (which builds and starts the
server) or directly against a running server:

    python3 loadtest/soak.py --port 16379 --pid <server pid> --duration 120

What it does, all at once for --duration seconds:
  * holder processes open --hold connections in total and keep them open (each one
    answers a PING at the start and at the end);
  * worker processes (--workers, each with --conns connections) send pipelines
    (--pipeline commands) of a mix of SET (unique key per write), INCR, RPUSH, HSET,
    GET, MGET (keys on several shards), EXPIRE-free reads; every acknowledged write
    is recorded;
  * a churn process connects and disconnects continuously, half of the time leaving
    in the middle of a pipeline without reading the replies.
Afterwards it checks that every acknowledged write is readable (each SET key holds its
value, each counter equals its acknowledged INCRs, each list holds its acknowledged
pushes in order, each hash its fields), then FLUSHALLs and compares the server's RSS,
used_memory and open file descriptors with their values before the run.
Prints one JSON object with the figures; exits 1 when a check fails.
"""

import argparse
import json
import multiprocessing as mp
import os
import random
import resource
import socket
import sys
import time


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    """A blocking RESP2 connection with a read buffer."""

    def __init__(self, port, timeout=60):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.pos = 0

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        chunk = self.s.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed")
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = self.buf[self.pos:i]
                self.pos = i + 2
                return line
            self._fill()

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t in (b"+", b"-"):
            return (t + rest).decode()
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) - self.pos < n + 2:
                self._fill()
            v = self.buf[self.pos:self.pos + n]
            self.pos += n + 2
            return v
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.reply() for _ in range(n)]
        raise ValueError("bad reply %r" % line)

    def cmd(self, *args):
        self.send(encode(*args))
        return self.reply()

    def close(self):
        self.s.close()


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(max(n, soft), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def holder(port, count, stop_at, out):
    raise_nofile(count + 64)
    conns = []
    failed = 0
    for _ in range(count):
        try:
            conns.append(Conn(port))
        except OSError:
            failed += 1
    # Everyone answers once at the start (pipelined over all connections).
    for c in conns:
        c.send(b"*1\r\n$4\r\nPING\r\n")
    ok_start = sum(1 for c in conns if c.reply() == "+PONG")
    while time.time() < stop_at:
        time.sleep(0.5)
    for c in conns:
        c.send(b"*1\r\n$4\r\nPING\r\n")
    ok_end = 0
    for c in conns:
        try:
            if c.reply() == "+PONG":
                ok_end += 1
        except OSError:
            pass
    for c in conns:
        c.close()
    out.put({"held": len(conns), "connect_failed": failed, "ok_start": ok_start, "ok_end": ok_end})


def worker(port, wid, nconns, pipeline, stop_at, out):
    rnd = random.Random(wid)
    conns = [Conn(port) for _ in range(nconns)]
    acked_sets = {}  # key -> value
    incr = {}  # counter -> acked count
    pushes = {}  # list -> acked values in order
    hfields = {}  # hash -> {field: value}
    ops = 0
    errors = 0
    seq = 0
    while time.time() < stop_at:
        for c in conns:
            batch = []
            meta = []
            for _ in range(pipeline):
                seq += 1
                r = rnd.random()
                if r < 0.30:
                    k = "soak:w%d:s%d" % (wid, seq)
                    v = "v%d-%d" % (seq, rnd.randrange(1 << 30))
                    batch.append(encode("SET", k, v))
                    meta.append(("set", k, v))
                elif r < 0.45:
                    k = "soak:w%d:c%d" % (wid, rnd.randrange(50))
                    batch.append(encode("INCR", k))
                    meta.append(("incr", k, None))
                elif r < 0.60:
                    k = "soak:w%d:l%d" % (wid, rnd.randrange(50))
                    v = "e%d" % seq
                    batch.append(encode("RPUSH", k, v))
                    meta.append(("push", k, v))
                elif r < 0.70:
                    k = "soak:w%d:h%d" % (wid, rnd.randrange(50))
                    f = "f%d" % rnd.randrange(100)
                    v = "x%d" % seq
                    batch.append(encode("HSET", k, f, v))
                    meta.append(("hset", (k, f), v))
                elif r < 0.90:
                    batch.append(encode("GET", "soak:w%d:s%d" % (wid, rnd.randrange(1, seq + 1))))
                    meta.append(("read", None, None))
                else:
                    keys = ["soak:w%d:s%d" % (wid, rnd.randrange(1, seq + 1)) for _ in range(4)]
                    batch.append(encode("MGET", *keys))
                    meta.append(("read", None, None))
            c.send(b"".join(batch))
            for kind, k, v in meta:
                rep = c.reply()
                ops += 1
                if isinstance(rep, str) and rep.startswith("-"):
                    errors += 1
                    continue
                if kind == "set" and rep == "+OK":
                    acked_sets[k] = v
                elif kind == "incr":
                    incr[k] = incr.get(k, 0) + 1
                elif kind == "push":
                    pushes.setdefault(k, []).append(v)
                elif kind == "hset":
                    hfields.setdefault(k[0], {})[k[1]] = v
    # Verification, on a fresh connection.
    v = Conn(port)
    bad = []
    keys = list(acked_sets)
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        got = v.cmd("MGET", *chunk)
        for k, g in zip(chunk, got):
            if g != acked_sets[k].encode():
                bad.append(("set", k))
    for k, n in incr.items():
        if v.cmd("GET", k) != str(n).encode():
            bad.append(("incr", k))
    for k, vals in pushes.items():
        if v.cmd("LRANGE", k, 0, -1) != [x.encode() for x in vals]:
            bad.append(("list", k))
    for k, fields in hfields.items():
        got = v.cmd("HGETALL", k)
        d = {got[i].decode(): got[i + 1].decode() for i in range(0, len(got), 2)}
        if d != fields:
            bad.append(("hash", k))
    v.close()
    for c in conns:
        c.close()
    acked = len(acked_sets) + sum(incr.values()) + sum(len(x) for x in pushes.values()) + sum(
        len(x) for x in hfields.values())
    out.put({"ops": ops, "errors": errors, "acked_writes": acked, "verified_keys": len(acked_sets) + len(incr) + len(pushes) + len(hfields), "bad": bad[:20], "bad_count": len(bad)})


def churn(port, stop_at, out):
    rnd = random.Random(7)
    n = 0
    abandoned = 0
    while time.time() < stop_at:
        try:
            c = Conn(port)
            if rnd.random() < 0.5:
                # Leave in the middle of a pipeline, replies unread.
                c.send(b"".join(encode("SET", "soak:churn:%d" % i, "x") for i in range(200)))
                abandoned += 1
            else:
                c.cmd("SET", "soak:churn:last", n)
                c.cmd("GET", "soak:churn:last")
            c.close()
            n += 1
        except OSError:
            time.sleep(0.01)
    out.put({"churn_connections": n, "abandoned_pipelines": abandoned})


def proc_figures(pid):
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    fds = len(os.listdir("/proc/%d/fd" % pid))
    return rss, fds


def used_memory(port):
    c = Conn(port)
    info = c.cmd("INFO", "memory").decode()
    c.close()
    for line in info.splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    return 0


def connected_clients(port):
    c = Conn(port)
    info = c.cmd("INFO", "clients").decode()
    c.close()
    for line in info.splitlines():
        if line.startswith("connected_clients:"):
            return int(line.split(":")[1])
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=16379)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--duration", type=int, default=120)
    ap.add_argument("--hold", type=int, default=10000)
    ap.add_argument("--holders", type=int, default=4)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--pipeline", type=int, default=32)
    args = ap.parse_args()

    start_rss, start_fds = proc_figures(args.pid)
    start_used = used_memory(args.port)
    stop_at = time.time() + args.duration
    q = mp.Queue()
    procs = []
    per = args.hold // args.holders
    for i in range(args.holders):
        procs.append(mp.Process(target=holder, args=(args.port, per, stop_at, q)))
    for w in range(args.workers):
        procs.append(mp.Process(target=worker, args=(args.port, w, args.conns, args.pipeline, stop_at, q)))
    procs.append(mp.Process(target=churn, args=(args.port, stop_at, q)))
    t0 = time.time()
    for p in procs:
        p.start()
    peak_clients = 0
    peak_rss = 0
    while time.time() < stop_at:
        time.sleep(2)
        try:
            peak_clients = max(peak_clients, connected_clients(args.port))
            peak_rss = max(peak_rss, proc_figures(args.pid)[0])
        except OSError:
            pass
    results = [q.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.time() - t0
    # Let the server close everything, then drop the data.
    time.sleep(3)
    c = Conn(args.port)
    dbsize = c.cmd("DBSIZE")
    c.cmd("FLUSHALL")
    c.close()
    # jemalloc hands freed pages back after its decay time (10 s by default).
    for _ in range(15):
        time.sleep(1)
        end_rss, end_fds = proc_figures(args.pid)
        if end_rss <= start_rss * 1.25:
            break
    end_used = used_memory(args.port)
    holders = [r for r in results if "held" in r]
    workers = [r for r in results if "ops" in r]
    ch = [r for r in results if "churn_connections" in r][0]
    summary = {
        "duration_s": round(elapsed, 1),
        "connections_held": sum(r["held"] for r in holders),
        "held_connect_failed": sum(r["connect_failed"] for r in holders),
        "held_answering_at_end": sum(r["ok_end"] for r in holders),
        "peak_connected_clients": peak_clients,
        "worker_ops": sum(r["ops"] for r in workers),
        "worker_ops_per_s": round(sum(r["ops"] for r in workers) / elapsed),
        "error_replies": sum(r["errors"] for r in workers),
        "acked_writes": sum(r["acked_writes"] for r in workers),
        "acked_writes_lost": sum(r["bad_count"] for r in workers),
        "lost_examples": [b for r in workers for b in r["bad"]][:10],
        "churn_connections": ch["churn_connections"],
        "abandoned_pipelines": ch["abandoned_pipelines"],
        "keys_before_flush": dbsize,
        "rss_start_mib": round(start_rss / 2**20, 1),
        "rss_peak_mib": round(peak_rss / 2**20, 1),
        "rss_end_mib": round(end_rss / 2**20, 1),
        "used_memory_start": start_used,
        "used_memory_end": end_used,
        "fds_start": start_fds,
        "fds_end": end_fds,
    }
    ok = (
        summary["acked_writes_lost"] == 0
        and summary["held_answering_at_end"] == summary["connections_held"]
        and summary["held_connect_failed"] == 0
        and end_fds <= start_fds
        and summary["error_replies"] == 0
    )
    summary["ok"] = ok
    print(json.dumps(summary, indent=2))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
