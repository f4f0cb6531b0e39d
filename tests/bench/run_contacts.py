#!/usr/bin/python3
"""Contacts benchmark: what a contacts list costs the signaling thread with
many local users (see tests/bench/README.md).

    /usr/bin/python3 tests/bench/run_contacts.py [--users N] [--sessions S]
        [--requests R] [--probe-seconds S] [--gatehouse BINARY]

Starts build/gatehouse through the integration harness with a local user
database of N users in group "team" and a policy that lets "team" call
"team". S of the users are made with the CLI (argon2id, TOTP) and log in;
the other N - S rows are copied into users.db with the first user's hash,
so that setting up 10,000 users takes seconds, not an hour of argon2.
Then it prints:
  - the time of one {"type":"contacts"} request and answer (mean of R),
    as seen by the client, and the size of the answer;
  - the time from SIGHUP (a policy reload, which pushes contacts to every
    session) until every session has its new list;
  - with --probe-seconds S, what that work does to media relayed at the
    same time: bench_turn_probe streams 1000 packets a second through the
    daemon's TURN relay for S seconds while every session asks for its
    contacts ten times a second and two policy reloads push them; it
    prints the probe's latency percentiles, relayed and direct.

Exit status: 0 when it worked, however slow; 1 when a request failed or
the daemon did not stop cleanly. Traffic goes only to 127.0.0.1.
"""

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import gh  # noqa: E402
import sigclient as sc  # noqa: E402


async def probe_under_load(g, cs, a):
    """Relay latency while every session asks for contacts in a loop and
    two policy reloads push them; bounded by the probe's own duration."""
    probe = await asyncio.create_subprocess_exec(
        a.probe, "latency", "--server", "127.0.0.1:%d" % g.port, "--rate", "1000",
        "--size", "200", "--seconds", str(a.probe_seconds),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    done = asyncio.Event()
    answers = [0]

    async def ask(c):
        # Half the daemon's message rate limit (20 a second a session).
        while not done.is_set():
            t = time.monotonic()
            r = await c.request({"type": "contacts"}, timeout=300)
            assert r.get("type") == "contacts.ok", "contacts: %r" % r
            answers[0] += 1
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - t)))

    async def reloads():
        for _ in range(2):
            await asyncio.sleep(a.probe_seconds / 3.0)
            if not done.is_set():
                os.kill(g.proc.pid, signal.SIGHUP)

    tasks = [asyncio.ensure_future(ask(c)) for c in cs] + [asyncio.ensure_future(reloads())]
    out, _ = await asyncio.wait_for(probe.communicate(), timeout=a.probe_seconds * 3 + 120)
    done.set()
    await asyncio.gather(*tasks)
    text = out.decode(errors="replace")
    if probe.returncode != 0:
        raise RuntimeError("bench_turn_probe failed (exit %d):\n%s" % (probe.returncode,
                                                                       gh.tail(text, 15)))
    print("relay latency while %d sessions asked for contacts (%d answers) and the policy "
          "was reloaded twice:" % (len(cs), answers[0]))
    for line in text.splitlines():
        if line.startswith("probe:"):
            print("  " + line)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--gatehouse", default=os.path.join(ROOT, "build", "gatehouse"))
    ap.add_argument("--probe-seconds", type=int, default=0)
    ap.add_argument("--probe", default=os.path.join(ROOT, "build", "tests", "bench",
                                                    "bench_turn_probe"))
    a = ap.parse_args()
    if a.sessions < 1 or a.users < a.sessions or a.requests < 1:
        ap.error("need 1 <= --sessions <= --users and --requests >= 1")
    if a.probe_seconds > 0 and not os.access(a.probe, os.X_OK):
        ap.error("no %s: build it (cmake --build build --target bench_turn_probe) "
                 "or name it with --probe" % a.probe)

    g = gh.Gatehouse(a.gatehouse, config={"log": {"level": "warning"}},
                     static_users={"bench": "secret"})
    policy = os.path.join(g.workdir, "policy.json")
    g.config["policy"] = {"file": policy}
    sc.write_policy(policy, [{"name": "team", "from": "group:team", "to": "group:team",
                              "media": ["audio", "video"], "action": "allow"}], {"team": []})
    sc.write_config(g)
    users = [sc.create_user(g, "s%05d" % i, "bench-password-%d" % i, ["team"])
             for i in range(a.sessions)]
    db = sqlite3.connect(os.path.join(g.state_dir, "users.db"))
    pw_hash = db.execute("SELECT pw_hash FROM users LIMIT 1").fetchone()[0]
    rest = ["u%06d" % i for i in range(a.users - a.sessions)]
    db.executemany("INSERT INTO users (name, pw_hash, created) VALUES (?, ?, 1)",
                   [(n, pw_hash) for n in rest])
    db.executemany("INSERT INTO user_groups (name, grp) VALUES (?, 'team')",
                   [(n,) for n in rest])
    db.commit()
    db.close()

    async def run():
        cs = [await sc.logged_in(g, u, u.name) for u in users]
        try:
            c = cs[0]
            t0 = time.monotonic()
            for _ in range(a.requests):
                r = await c.request({"type": "contacts"}, timeout=300)
                assert r.get("type") == "contacts.ok", "contacts: %r" % r
            dt = (time.monotonic() - t0) / a.requests
            print("contacts request: %.1f ms (mean of %d), %d contacts, %d bytes" % (
                dt * 1000, a.requests, len(r["contacts"]), len(json.dumps(r))))
            for x in cs:
                x.inbox.clear()
            t0 = time.monotonic()
            os.kill(g.proc.pid, signal.SIGHUP)
            for x in cs:
                await x.wait_for("contacts.ok", timeout=600)
            print("push to %d sessions after a policy reload: %.2f s" % (
                len(cs), time.monotonic() - t0))
            if a.probe_seconds > 0:
                await probe_under_load(g, cs, a)
        finally:
            for x in cs:
                await x.close()

    print("gatehouse %s: %d local users, %d sessions" % (a.gatehouse, a.users, a.sessions))
    with g:
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
