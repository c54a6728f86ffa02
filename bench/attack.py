#!/usr/bin/env python3
"""Helpers for bench/attack.sh (a failed client authentication buys Argon2
work): an open-loop client at a fixed rate, a sampler of the server's
memory and threads, a probe, and the report.

Subcommands:
  load URL --basic B --rate R --seconds S [--connections C] [--xff ADDR]
       [--body BODY] [--timeout T] [--ready-file F --go-file G --stop-file X] --out FILE
      Opens C keep-alive connections, creates F and waits for G (see sample), then
      sends R requests a second for S seconds, each at its scheduled time over the
      C connections (a request waits for a free one), or until X appears (the
      sampler stopped the attack early: later requests are not sent). Latency
      is counted from the scheduled time, not from the send, so that a stalled
      server is not hidden by fewer requests being sent (no coordinated
      omission). Writes the statuses and p50/p99/max as JSON to FILE.
  probe URL (--basic B | --wrong-secret-for ID) [--count N] [--xff ADDR] [--body BODY]
      N requests one after the other (with --wrong-secret-for, each with a fresh
      random secret); prints the statuses and the median latency.
  sample --pid PID [--ready-file F] --go-file G [--stop-file X] [--seconds S]
         [--recovery R] [--interval I] [--rss-limit-mib L] [--max-seconds M] --out FILE
      Creates F, waits for G ("name=pid" fields of the load's processes, ending
      in a newline: the start signal), then reads VmRSS, VmHWM and Threads of
      /proc/PID/status every I seconds (0.1). With an "attacker" in G: samples
      while it lives, then R seconds more (memory returning); without: S seconds.
      Stops the attacker (SIGINT, then SIGKILL) and the clients (creates X) if
      the server's RSS passes L MiB (4096) or the attack outlives M seconds: a
      shared machine is not to be swapped to death.
      Writes the peaks, the RSS before and after, and how the CPU was shared
      during the attack as JSON to FILE (and every sample to FILE.tsv).
  report DIR CASE...
      The Markdown table and the target lines of the cases whose files are in
      DIR/CASE/ (attack.txt from wrk, honest.json, victim.json, sample.json).

Standard library only.
"""

import argparse
import asyncio
import base64
import json
import math
import os
import random
import signal
import string
import sys
import time
import urllib.parse
from collections import Counter

MIB = 1024  # kB per MiB (/proc reports kB)


# --- HTTP/1.1 over asyncio streams ----------------------------------------------


class Target:
    def __init__(self, url, body, xff):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.path = u.path or "/"
        self.body = body.encode()
        self.xff = xff

    def request(self, basic):
        lines = [
            f"POST {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Content-Type: application/x-www-form-urlencoded",
            "Accept: application/json",
            f"Authorization: Basic {basic}",
            f"Content-Length: {len(self.body)}",
        ]
        if self.xff:
            lines.append(f"X-Forwarded-For: {self.xff}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


class Connection:
    def __init__(self, target):
        self.target = target
        self.reader = self.writer = None

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def exchange(self, raw):
        """Sends one request, returns (status, headers)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.target.host, self.target.port)
        self.writer.write(raw)
        await self.writer.drain()
        line = await self.reader.readline()
        if not line:
            raise ConnectionError("connection closed before the status line")
        status = int(line.split()[1])
        headers = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if length:
            await self.reader.readexactly(length)
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers


def wait_for_go(ready_file, go_file, limit=60):
    """Says it is ready (creates ready_file), then waits for go_file, a line of
    "name=pid" fields ending in a newline; returns them as a dict."""
    if ready_file:
        with open(ready_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    if not go_file:
        return {}
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with open(go_file) as f:
                text = f.read()
            if text.endswith("\n"):
                return {k: int(v) for k, v in (w.split("=", 1) for w in text.split())}
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    sys.exit(f"no {go_file} within {limit} s")


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def random_secret():
    return "".join(random.choice(string.ascii_letters + string.digits) for _ in range(24))


def wrong_basic(client_id):
    return base64.b64encode(f"{client_id}:{random_secret()}".encode()).decode()


async def run_load(args):
    target = Target(args.url, args.body, args.xff)
    raw = target.request(args.basic)
    pool = asyncio.Queue()
    for _ in range(args.connections):
        pool.put_nowait(Connection(target))
    loop = asyncio.get_running_loop()
    # The connections are open before the start, as an honest client's pool would be.
    conns = [pool.get_nowait() for _ in range(args.connections)]
    for conn in conns:
        conn.reader, conn.writer = await asyncio.open_connection(target.host, target.port)
        pool.put_nowait(conn)
    wait_for_go(args.ready_file, args.go_file)
    count = int(args.rate * args.seconds)
    start = loop.time() + 0.001
    latencies, statuses, errors = [], Counter(), Counter()
    retry_after = []
    stop_at = [None]  # when the attack was stopped early: later requests are not sent

    async def watch_stop():
        while args.stop_file:
            if os.path.exists(args.stop_file):
                stop_at[0] = loop.time()
                return
            await asyncio.sleep(0.05)

    watcher = asyncio.ensure_future(watch_stop())

    async def one(i):
        at = start + i / args.rate
        delay = at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if stop_at[0] is not None and at > stop_at[0]:
            return
        conn = await pool.get()
        try:
            remaining = args.timeout - (loop.time() - at)
            if remaining <= 0:
                raise asyncio.TimeoutError
            status, headers = await asyncio.wait_for(conn.exchange(raw), remaining)
            statuses[status] += 1
            if "retry-after" in headers:
                retry_after.append(headers["retry-after"])
        except asyncio.TimeoutError:
            conn.close()
            errors["timeout"] += 1
        except (OSError, ConnectionError, ValueError, IndexError, asyncio.IncompleteReadError) as e:
            conn.close()
            errors[type(e).__name__] += 1
        finally:
            latencies.append(loop.time() - at)
            pool.put_nowait(conn)

    began = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(count)))
    seconds = time.monotonic() - began
    watcher.cancel()
    while not pool.empty():
        pool.get_nowait().close()
    ms = sorted(x * 1000 for x in latencies)
    return {
        "requests": len(latencies),
        "scheduled": count,
        "seconds": round(seconds, 3),
        "rate": args.rate,
        "connections": args.connections,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": dict(errors),
        "ok": statuses.get(200, 0),
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": ms[-1] if ms else None,
        "retry_after": sorted(set(retry_after))[:5],
    }


def cmd_load(args):
    result = asyncio.run(run_load(args))
    with open(args.out, "w") as f:
        json.dump(result, f)


async def run_probe(args):
    target = Target(args.url, args.body, args.xff)
    conn = Connection(target)
    statuses, times = Counter(), []
    for _ in range(args.count):
        basic = args.basic or wrong_basic(args.wrong_secret_for)
        t = time.monotonic()
        status, _ = await asyncio.wait_for(conn.exchange(target.request(basic)), 30)
        times.append((time.monotonic() - t) * 1000)
        statuses[status] += 1
    conn.close()
    return statuses, sorted(times)


def cmd_probe(args):
    if not args.basic and not args.wrong_secret_for:
        sys.exit("probe: --basic or --wrong-secret-for is needed")
    statuses, times = asyncio.run(run_probe(args))
    status_text = ", ".join(f"{n} x {s}" for s, n in sorted(statuses.items()))
    print(f"{status_text}; latency median {percentile(times, 50):.1f} ms, min {times[0]:.1f} ms, max {times[-1]:.1f} ms")
    if args.expect and set(statuses) != {args.expect}:
        sys.exit(f"probe: expected only status {args.expect}, got {status_text}")


# --- the sampler ------------------------------------------------------------------


def proc_status(pid):
    """(VmRSS kB, VmHWM kB, Threads) of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except (FileNotFoundError, ProcessLookupError):
        return None
    kb = lambda name: int(fields.get(name, "0 kB").split()[0])
    return kb("VmRSS"), kb("VmHWM"), int(fields.get("Threads", "0"))


def proc_ticks(pid):
    """utime + stime of pid (all its threads), clock ticks; None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def machine_ticks():
    """(total, idle) ticks of all cores."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    return sum(values), values[3] + values[4]


def alive(pid):
    if pid is None:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def cmd_sample(args):
    pid = args.pid
    try:  # VmHWM from now on (Linux >= 4.0); a fresh server makes this a formality
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    interval = args.interval
    t0 = time.monotonic()
    samples = []  # (t, rss, hwm, threads)
    before = proc_status(pid)
    # The load's processes, once they are all started.
    watch = wait_for_go(args.ready_file, args.go_file)
    watch.pop("sampler", None)
    attacker = watch.pop("attacker", None)
    t0 = time.monotonic()
    ticks = {name: [None, None] for name in [*watch, *(["attacker"] if attacker else [])]}
    attack_end = None
    stopped = None
    server_died = False

    def cpu_snapshot():
        return (machine_ticks(), proc_ticks(pid))

    def stop_all(attacker):
        if args.stop_file:
            with open(args.stop_file, "w") as f:
                f.write("stop\n")
        os.kill(attacker, signal.SIGINT)

    def note_ticks(name, wpid):
        t = proc_ticks(wpid)
        if t is not None:
            if ticks[name][0] is None:
                ticks[name][0] = t
            ticks[name][1] = t

    cpu_start = cpu_snapshot()
    cpu_end = None
    while True:
        now = time.monotonic() - t0
        st = proc_status(pid)
        if st is None:
            server_died = True
            break
        samples.append((now, *st))
        if attack_end is None:
            for name, wpid in watch.items():
                note_ticks(name, wpid)
        if attacker is not None:
            if attack_end is None:
                note_ticks("attacker", attacker)
                if not alive(attacker):
                    attack_end = now
                    cpu_end = cpu_snapshot()
                elif stopped is None and st[0] > args.rss_limit_mib * MIB:
                    stopped = (f"the server's RSS passed {args.rss_limit_mib} MiB at {now:.1f} s: "
                               "the attacker and the clients stopped there")
                    stop_all(attacker)
                elif stopped is None and now > args.max_seconds:
                    stopped = f"the attack outlived {args.max_seconds:g} s: the attacker and the clients stopped"
                    stop_all(attacker)
                elif stopped is not None and now > args.max_seconds + 10:
                    os.kill(attacker, signal.SIGKILL)
            elif now >= attack_end + args.recovery:
                break
        elif now >= args.seconds:
            cpu_end = cpu_snapshot()
            attack_end = now
            break
        time.sleep(max(0.0, interval - ((time.monotonic() - t0) - now)))
    if cpu_end is None:
        cpu_end = cpu_snapshot()

    with open(args.out + ".tsv", "w") as f:
        f.write("seconds\tVmRSS_kB\tVmHWM_kB\tthreads\n")
        for s in samples:
            f.write("%.2f\t%d\t%d\t%d\n" % s)
    (total0, idle0), server0 = cpu_start
    (total1, idle1), server1 = cpu_end
    total = max(1, total1 - total0)
    cpu = {"server": 100 * ((server1 or server0) - server0) / total}
    for name, (first, last) in ticks.items():
        if first is not None:
            cpu[name] = 100 * (last - first) / total
    cpu["idle"] = 100 * (idle1 - idle0) / total
    cpu["other"] = max(0.0, 100 - sum(cpu.values()))
    attack = [s for s in samples if attack_end is None or s[0] <= attack_end]
    peak = max(samples, key=lambda s: s[1]) if samples else (0, 0, 0, 0)
    result = {
        "samples": len(samples),
        "interval": interval,
        "rss_before_kib": before[0] if before else None,
        "threads_before": before[2] if before else None,
        "peak_rss_kib": peak[1],
        "peak_rss_at_seconds": round(peak[0], 1),
        "peak_hwm_kib": max((s[2] for s in samples), default=None),
        "peak_threads": max((s[3] for s in samples), default=None),
        "rss_attack_end_kib": attack[-1][1] if attack else None,
        "attack_seconds": round(attack_end, 1) if attack_end is not None else None,
        "rss_after_kib": samples[-1][1] if samples else None,
        "threads_after": samples[-1][3] if samples else None,
        "after_seconds": round(samples[-1][0] - attack_end, 1) if samples and attack_end is not None else None,
        "cpu_percent": {k: round(v) for k, v in cpu.items()},
        "stopped": stopped,
        "server_died": server_died,
    }
    with open(args.out, "w") as f:
        json.dump(result, f)


# --- the report -------------------------------------------------------------------


def parse_wrk(path):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("ATTACK_RESULT "):
                    return {k: float(v) for k, v in (p.split("=", 1) for p in line.split()[1:])}
    except FileNotFoundError:
        pass
    return None


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def mib(kib):
    return "-" if kib is None else f"{kib / MIB:.0f}"


def ms(x):
    return "-" if x is None else f"{x:.1f}"


def cmd_report(args):
    head = (
        "| case | attack req/s | 401 | 429 | 503 | other | sock err | peak RSS MiB | VmHWM MiB "
        "| RSS +%s s MiB | threads peak | honest p50 ms | honest p99 ms | honest non-200 |"
    )
    rows, notes, targets = [], [], []
    recovery = None
    for case in args.cases:
        d = os.path.join(args.dir, case)
        w = parse_wrk(os.path.join(d, "attack.txt"))
        h = load_json(os.path.join(d, "honest.json")) or {}
        v = load_json(os.path.join(d, "victim.json"))
        s = load_json(os.path.join(d, "sample.json")) or {}
        honest_bad = h.get("requests", 0) - h.get("ok", 0) if h else None
        if w:
            sock = int(w["connect"] + w["read"] + w["write"] + w["timeout"])
            other = int(w["sother"] + w["s408"] + w["s200"])
            attack_cells = [f"{w['rps']:.0f}", f"{w['s401']:.0f}", f"{w['s429']:.0f}", f"{w['s503']:.0f}", str(other), str(sock)]
            after = mib(s.get("rss_after_kib"))
            recovery = s.get("after_seconds")
        else:
            attack_cells = ["-"] * 6
            after = "-"
        rows.append(
            "| "
            + " | ".join(
                [case + (" (stopped early)" if s.get("stopped") else ""), *attack_cells, mib(s.get("peak_rss_kib")), mib(s.get("peak_hwm_kib")), after,
                 str(s.get("peak_threads", "-")), ms(h.get("p50_ms")), ms(h.get("p99_ms")),
                 "-" if honest_bad is None else str(honest_bad)]
            )
            + " |"
        )
        peak = s.get("peak_hwm_kib") or s.get("peak_rss_kib")
        if w and peak is not None and h.get("p99_ms") is not None:
            rss_ok = peak < 300 * MIB
            p99_ok = h["p99_ms"] < 50 and honest_bad == 0
            targets.append(
                f"{case}: peak RSS {peak / MIB:.0f} MiB (target < 300: {'met' if rss_ok else 'NOT met'}), "
                f"honest p99 {h['p99_ms']:.1f} ms with {honest_bad} non-200 "
                f"(target < 50 ms, all 200: {'met' if p99_ok else 'NOT met'})"
            )
        detail = []
        if w:
            detail.append(
                f"attacker {w['requests']:.0f} requests in {w['seconds']:.1f} s "
                f"(200 {w['s200']:.0f}, 401 {w['s401']:.0f}, 408 {w['s408']:.0f}, 429 {w['s429']:.0f}, "
                f"503 {w['s503']:.0f}, other {w['sother']:.0f}; wrk connect/read/write/timeout errors "
                f"{w['connect']:.0f}/{w['read']:.0f}/{w['write']:.0f}/{w['timeout']:.0f}), "
                f"its latency p50 {w['p50_ms']:.1f} ms p99 {w['p99_ms']:.1f} ms"
            )
            if w["retry_after_min"] >= 0:
                detail.append(f"Retry-After on 429/503 {w['retry_after_min']:.0f}..{w['retry_after_max']:.0f} s")
        if h:
            detail.append(
                f"honest client {h['requests']} requests (of {h.get('scheduled', h['requests'])} scheduled) at {h['rate']:g}/s over {h['connections']} connections: "
                f"statuses {h['statuses']}, errors {h['errors'] or 'none'}, p50 {ms(h['p50_ms'])} p99 {ms(h['p99_ms'])} "
                f"max {ms(h['max_ms'])} ms"
            )
        if v:
            detail.append(
                f"victim (the imported-secret client, right secret) {v['requests']} requests "
                f"(of {v.get('scheduled', v['requests'])} scheduled) at {v['rate']:g}/s: "
                f"statuses {v['statuses']}, errors {v['errors'] or 'none'}, p50 {ms(v['p50_ms'])} p99 {ms(v['p99_ms'])} "
                f"max {ms(v['max_ms'])} ms" + (f", Retry-After {v['retry_after']}" if v.get("retry_after") else "")
            )
        if s:
            detail.append(
                f"server RSS {mib(s.get('rss_before_kib'))} MiB before, peak {mib(s.get('peak_rss_kib'))} MiB "
                f"at {s.get('peak_rss_at_seconds')} s, {mib(s.get('rss_attack_end_kib'))} MiB when the attack ended"
                + (f", {mib(s.get('rss_after_kib'))} MiB {s.get('after_seconds')} s later" if w else "")
                + f"; threads {s.get('threads_before')} before, peak {s.get('peak_threads')}, {s.get('threads_after')} at the end"
            )
            cpu = s.get("cpu_percent", {})
            detail.append(
                f"CPU of the machine over the {s.get('attack_seconds')} s "
                + ("until wrk exited: " if w else "run: ")
                + ", ".join(f"{k} {v}%" for k, v in cpu.items())
            )
            if s.get("stopped"):
                detail.append(f"STOPPED EARLY: {s['stopped']}")
            if s.get("server_died"):
                detail.append("THE SERVER DIED")
        notes.append(f"{case}: " + "; ".join(detail))
    print(head % ("-" if recovery is None else f"{recovery:.0f}"))
    print("|---" + "|---:" * 13 + "|")
    print("\n".join(rows))
    print()
    for line in targets + notes:
        print(f"- {line}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("load")
    s.add_argument("url")
    s.add_argument("--basic", required=True)
    s.add_argument("--rate", type=float, required=True)
    s.add_argument("--seconds", type=float, required=True)
    s.add_argument("--connections", type=int, default=4)
    s.add_argument("--xff")
    s.add_argument("--body", default="grant_type=client_credentials")
    s.add_argument("--timeout", type=float, default=10)
    s.add_argument("--ready-file")
    s.add_argument("--go-file")
    s.add_argument("--stop-file")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_load)

    s = sub.add_parser("probe")
    s.add_argument("url")
    s.add_argument("--basic")
    s.add_argument("--wrong-secret-for")
    s.add_argument("--count", type=int, default=5)
    s.add_argument("--xff")
    s.add_argument("--body", default="grant_type=client_credentials")
    s.add_argument("--expect", type=int)
    s.set_defaults(func=cmd_probe)

    s = sub.add_parser("sample")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--ready-file")
    s.add_argument("--go-file", required=True)
    s.add_argument("--stop-file")
    s.add_argument("--seconds", type=float, default=5)
    s.add_argument("--recovery", type=float, default=10)
    s.add_argument("--interval", type=float, default=0.1)
    s.add_argument("--rss-limit-mib", type=int, default=4096)
    s.add_argument("--max-seconds", type=float, default=120)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_sample)

    s = sub.add_parser("report")
    s.add_argument("dir")
    s.add_argument("cases", nargs="+")
    s.set_defaults(func=cmd_report)

    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
