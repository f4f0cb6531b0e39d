#!/usr/bin/python3
"""Stalls benchmark: what control-plane work does to relayed media (see
tests/bench/README.md).

    /usr/bin/python3 tests/bench/run_stalls.py [--scenarios idle,contacts,logins,admin,audit]
        [--seconds S] [--users N] [--sessions S] [--interval S] [--audit-lines N]
        [--gatehouse BINARY]
        [--probe BINARY]

The signaling thread and the relay thread share the daemon's state lock
(gateway/state_lock.h): whatever the signaling thread does while it holds
the lock, every relayed packet waits for. For each scenario this starts
a fresh build/gatehouse through the integration harness, streams 1000
packets a second of 200 bytes through its TURN relay with
`bench_turn_probe latency` for S seconds (and the same stream directly
over loopback, for comparison), runs the scenario's load meanwhile, and
prints the probe's percentiles of latency and jitter. Meanwhile a
WebSocket session, from a process of its own, pings the signaling
server every 0.1 s: the percentiles of its round trips, in ms, show what
the load does to signaling. Scenarios:

  idle      no load: the baseline.
  contacts  N local users (see run_contacts.py); each of S signed-in
            sessions asks for its contacts every --interval seconds (0.1:
            half the rate limit), and two SIGHUPs push new lists to all
            of them.
  admin     an admin signed in to the admin API adds users (POST
            /api/users) one request after another, at most 40; each one
            hashes a password with argon2id (on the login worker).
  logins    two clients sign in with a password, again and again (the
            argon2id checks run on the login worker thread).
  audit     the audit file gets --audit-lines synthetic call records
            (300,000, about 70 MB), and an auditor queries it through the
            admin API one request after another, at most 40: the newest
            1000 records, then one user's newest 100 (on the audit reader
            thread).

Exit status: 0 when it worked, however slow; 1 when a request or the
probe failed, or the daemon did not stop cleanly. Traffic goes only to
127.0.0.1.
"""

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import adminclient as ac  # noqa: E402
import gh  # noqa: E402
import sigclient as sc  # noqa: E402
from run_contacts import setup_directory  # noqa: E402

ADMIN_MAX_REQUESTS = 40
PING_INTERVAL_S = 0.1   # half the signaling rate limit's 20 a second


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100.0))]


async def signaling_probe(url, seconds):
    """The --signaling-probe mode, in a process of its own so that the
    load's clients do not delay it: a WebSocket session (not signed in;
    ping works before login) pings every PING_INTERVAL_S for seconds and
    prints each round trip in ms, one a line."""
    c = sc.SigClient(url, name="pinger")
    await c.connect()
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.monotonic()
            await c.ping(timeout=120)
            print("%.3f" % ((time.monotonic() - t) * 1000.0), flush=True)
            await asyncio.sleep(max(0.0, PING_INTERVAL_S - (time.monotonic() - t)))
    finally:
        await c.close()


async def with_probe(g, a, load):
    """Runs the latency probe against g for a.seconds while load(done)
    runs; load must return once done is set. Returns the probe's lines
    and what load returned."""
    probe = await asyncio.create_subprocess_exec(
        a.probe, "latency", "--server", "127.0.0.1:%d" % g.port, "--rate", "1000",
        "--size", "200", "--seconds", str(a.seconds),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    pinger = await asyncio.create_subprocess_exec(
        sys.executable, os.path.abspath(__file__), "--signaling-probe", sc.ws_url(g),
        "--seconds", str(a.seconds), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    done = asyncio.Event()
    task = asyncio.ensure_future(load(done))
    try:
        out, _ = await asyncio.wait_for(probe.communicate(), timeout=a.seconds * 3 + 120)
        pings, _ = await asyncio.wait_for(pinger.communicate(), timeout=a.seconds * 3 + 120)
    finally:
        done.set()
        for p in (probe, pinger):
            if p.returncode is None:
                p.kill()
                await p.wait()
    what = await task
    text = out.decode(errors="replace")
    if probe.returncode != 0:
        raise RuntimeError("bench_turn_probe failed (exit %d):\n%s"
                           % (probe.returncode, gh.tail(text, 15)))
    ping_text = pings.decode(errors="replace")
    try:
        rtts = [float(l) for l in ping_text.split()]
    except ValueError:
        rtts = []
    if pinger.returncode != 0 or not rtts:
        raise RuntimeError("the signaling probe failed (exit %d):\n%s"
                           % (pinger.returncode, gh.tail(ping_text, 15)))
    lines = [l for l in text.splitlines() if l.startswith("probe:")]
    lines.append("signaling ping ms (%d)         %9.2f %9.2f %9.2f %9.2f" % (
        len(rtts), percentile(rtts, 50), percentile(rtts, 90), percentile(rtts, 99), max(rtts)))
    return lines, what


def scenario_idle(a):
    g = gh.Gatehouse(a.gatehouse, config={"log": {"level": "warning"}})

    async def load(done):
        await done.wait()
        return "no load"

    with g:
        return asyncio.run(with_probe(g, a, load))


def scenario_contacts(a):
    g = gh.Gatehouse(a.gatehouse, config={"log": {"level": "warning"}})
    users = setup_directory(g, a.users, a.sessions)

    async def run():
        cs = [await sc.logged_in(g, u, u.name) for u in users]
        answers = [0]

        async def ask(c, done):
            while not done.is_set():
                t = time.monotonic()
                r = await c.request({"type": "contacts"}, timeout=300)
                assert r.get("type") == "contacts.ok", "contacts: %r" % r
                answers[0] += 1
                await asyncio.sleep(max(0.0, a.interval - (time.monotonic() - t)))

        async def load(done):
            tasks = [asyncio.ensure_future(ask(c, done)) for c in cs]
            for _ in range(2):
                try:
                    await asyncio.wait_for(done.wait(), timeout=a.seconds / 3.0)
                except asyncio.TimeoutError:
                    os.kill(g.proc.pid, signal.SIGHUP)
            await done.wait()
            await asyncio.gather(*tasks)
            return ("%d sessions asked for contacts of %d users (%d answers), 2 policy "
                    "reloads" % (len(cs), a.users, answers[0]))

        try:
            return await with_probe(g, a, load)
        finally:
            for c in cs:
                await c.close()

    with g:
        return asyncio.run(run())


def scenario_logins(a):
    # Password only, so that a user can sign in again at once (a TOTP
    # code is good once).
    g = gh.Gatehouse(a.gatehouse, config={"log": {"level": "warning"},
                                          "identity": {"mfa": "optional"}})
    sc.write_config(g)
    users = [sc.create_user(g, "l%02d" % i, "bench-password-%d" % i, with_totp=False)
             for i in range(2)]

    async def login_loop(u, done, count):
        while not done.is_set():
            c = await sc.connect(g, u.name)
            try:
                r = await c.login(u.name, u.password)
                assert r.get("type") == "login.ok", "login of %s: %r" % (u.name, r)
                count[0] += 1
            finally:
                await c.close()

    async def load(done):
        count = [0]
        await asyncio.gather(*[login_loop(u, done, count) for u in users])
        return "%d clients signed in %d times with passwords (argon2id on the login " \
            "worker)" % (len(users), count[0])

    with g:
        return asyncio.run(with_probe(g, a, load))


def admin_load(a, one_request, describe, prepare=None):
    """A fresh daemon with an admin, who makes one_request(api, token,
    admin, i) one after another (at most ADMIN_MAX_REQUESTS) while the probe runs;
    prepare(g), when given, runs once the daemon is up. describe(count)
    says what was done."""
    g = gh.Gatehouse(a.gatehouse, config={"log": {"level": "warning"}})
    sc.write_config(g)
    admin = sc.create_user(g, "root", "bench-admin-password", ["admin"])
    api = ac.AdminClient(g)

    def work(stop, count):
        token = api.login(admin)
        while not stop.is_set() and count[0] < ADMIN_MAX_REQUESTS:
            one_request(api, token, admin, count[0])
            count[0] += 1

    async def load(done):
        count, stop = [0], threading.Event()
        fut = asyncio.get_running_loop().run_in_executor(None, work, stop, count)
        await done.wait()
        stop.set()
        await fut
        return describe(count[0])

    with g:
        if prepare is not None:
            prepare(g)
        return asyncio.run(with_probe(g, a, load))


def scenario_admin(a):
    def add_user(api, token, admin, i):
        # The admin's TOTP code with the first; the rest within the
        # step-up window it opens.
        api.add_user(token, admin, {"name": "added%03d" % i, "password": "bench-password-%d" % i,
                                    "groups": ["team"], "totp": False})

    return admin_load(a, add_user, lambda n: "an admin added %d users through the admin API" % n)


def scenario_audit(a):
    queries = ["/api/audit", "/api/audit?user=u000042&limit=100"]

    def query(api, token, admin, i):
        path = queries[i % len(queries)]
        st, body = api.call("GET", path, token=token)
        assert st == 200 and body.get("events"), "GET %s: HTTP %d" % (path, st)

    return admin_load(
        a, query, lambda n: "an auditor queried an audit trail of %d records %d times "
        "(all; one user's)" % (a.audit_lines, n),
        prepare=lambda g: ac.fill_audit(g, a.audit_lines))


SCENARIOS = {"idle": scenario_idle, "contacts": scenario_contacts, "logins": scenario_logins,
             "admin": scenario_admin, "audit": scenario_audit}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default="idle,contacts,logins,admin,audit")
    ap.add_argument("--audit-lines", type=int, default=300000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--gatehouse", default=os.path.join(ROOT, "build", "gatehouse"))
    ap.add_argument("--probe", default=os.path.join(ROOT, "build", "tests", "bench",
                                                    "bench_turn_probe"))
    ap.add_argument("--signaling-probe", metavar="URL", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.signaling_probe:
        asyncio.run(signaling_probe(a.signaling_probe, a.seconds))
        return 0
    names = [s for s in a.scenarios.split(",") if s]
    if not names or any(s not in SCENARIOS for s in names):
        ap.error("--scenarios: a comma-separated list of %s" % ", ".join(SCENARIOS))
    if not 1 <= a.seconds <= 600 or a.sessions < 1 or a.users < a.sessions or \
            a.interval < 0.05:
        ap.error("need 1 <= --seconds <= 600, 1 <= --sessions <= --users and "
                 "--interval >= 0.05 (the rate limit is 20 messages a second)")
    if not os.access(a.probe, os.X_OK):
        ap.error("no %s: build it (cmake --build build --target bench_turn_probe) "
                 "or name it with --probe" % a.probe)
    print("gatehouse %s; relayed and direct: 1000 packets/s of 200 bytes for %d s"
          % (a.gatehouse, a.seconds))
    for name in names:
        lines, what = SCENARIOS[name](a)
        print("\n== %s: %s" % (name, what))
        for line in lines:
            if "latency" in line or "jitter" in line or "received" in line or "µs" in line \
                    or line.startswith("signaling"):
                print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
