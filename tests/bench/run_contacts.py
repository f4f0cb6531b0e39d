#!/usr/bin/python3
"""Contacts benchmark: what a contacts list costs the signaling thread with
many local users (see tests/bench/README.md).

    /usr/bin/python3 tests/bench/run_contacts.py [--users N] [--sessions S]
        [--requests R] [--gatehouse BINARY]

Starts build/gatehouse through the integration harness with a local user
database of N users in group "team" and a policy that lets "team" call
"team". S of the users are made with the CLI (argon2id, TOTP) and log in;
the other N - S rows are copied into users.db with the first user's hash,
so that setting up 10,000 users takes seconds, not an hour of argon2.
Then it prints:
  - the time of one {"type":"contacts"} request and answer (mean of R),
    as seen by the client, and the size of the answer;
  - the time from SIGHUP (a policy reload, which pushes contacts to every
    session) until every session has its new list.

run_stalls.py measures what these lists do to relayed media.

Exit status: 0 when it worked, however slow; 1 when a request failed or
the daemon did not stop cleanly. Traffic goes only to 127.0.0.1.
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import gh  # noqa: E402
import sigclient as sc  # noqa: E402


def setup_directory(g, n_users, n_sessions):
    """Before g starts: a policy that lets group "team" call "team", and
    n_users local users in "team", of whom n_sessions are made with the
    CLI (returned, as sigclient.User) and the rest copied into users.db
    with the first one's hash."""
    policy = os.path.join(g.workdir, "policy.json")
    g.config["policy"] = {"file": policy}
    sc.write_policy(policy, [{"name": "team", "from": "group:team", "to": "group:team",
                              "media": ["audio", "video"], "action": "allow"}], {"team": []})
    sc.write_config(g)
    users = [sc.create_user(g, "s%05d" % i, "bench-password-%d" % i, ["team"])
             for i in range(n_sessions)]
    sc.bulk_users(g, ["u%06d" % i for i in range(n_users - n_sessions)], "team")
    return users


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--gatehouse", default=os.path.join(ROOT, "build", "gatehouse"))
    a = ap.parse_args()
    if a.sessions < 1 or a.users < a.sessions or a.requests < 1:
        ap.error("need 1 <= --sessions <= --users and --requests >= 1")

    g = gh.Gatehouse(a.gatehouse, config={"log": {"level": "warning"}})
    users = setup_directory(g, a.users, a.sessions)

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
        finally:
            for x in cs:
                await x.close()

    print("gatehouse %s: %d local users, %d sessions" % (a.gatehouse, a.users, a.sessions))
    with g:
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
