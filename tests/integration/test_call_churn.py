#!/usr/bin/python3
"""Many short calls: placing and hanging up calls leaves nothing behind.

test_call_churn_memory_bounded
    Sixteen signaling sessions (four callers, each calling four callees
    from a session of its own) place calls and hang each up at once, as
    fast as the per-session message rate allows: a warm-up, then
    CHURN_CALLS more. The daemon's resident memory (VmRSS) after the
    churn may exceed the one after the warm-up by at most
    MAX_BYTES_PER_CALL per call. A daemon that keeps a record of every
    ended call until its credentials expire (12 h) grows by about 100
    bytes per call, which is what this catches; a daemon that keeps
    only its live calls does not grow. Under AddressSanitizer (whose
    allocator keeps growing for a while whatever the daemon keeps) and
    valgrind the figures are printed but not judged; the unit test
    test_registry.c checks the bound there. Then the credentials of ended
    calls, the first and the last of the churn, are still refused
    (Allocate -> 401: revocation stays fail-closed without any record of
    ended calls), a new call's credentials work, and GET /metrics
    counts no call and no allocation.

Traffic only to 127.0.0.1.
"""

import asyncio
import http.client
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402
import sigclient as sc  # noqa: E402
import turnclient as tc  # noqa: E402

ARGS = None

CALLERS = ["caller%d" % i for i in range(4)]
CALLEES = ["callee%d" % i for i in range(4)]
PASSWORD = "pw-churn-0123456789"
WARMUP_CALLS = 600
CHURN_CALLS = 4000
# The old ended-call record cost ~100 bytes per call (an 80-byte entry
# plus malloc's header); a page or two of allocator noise over 4000
# calls stays far below this.
MAX_BYTES_PER_CALL = 40
# HUB_MSGS_PER_S is 20 sustained per session, and a call is two
# messages (call, hangup): stay a little below 10 calls a second.
CALL_PERIOD_S = 0.11


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/%d/status" % pid)


def gauges(g):
    """gatehouse_active_calls and gatehouse_active_allocations from GET
    /metrics."""
    conn = http.client.HTTPConnection("127.0.0.1", g.admin_port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        text = r.read().decode("utf-8", "replace")
        assert r.status == 200, "GET /metrics: %d %s" % (r.status, text[:200])
    finally:
        conn.close()
    out = {}
    for line in text.splitlines():
        for name in ("gatehouse_active_calls", "gatehouse_active_allocations"):
            if line.startswith(name + " "):
                out[name] = float(line.split()[-1])
    return out


def allocate(g, server):
    """Allocate with a call's credentials; releases what it got."""
    c = tc.TurnClient(g.host, g.port, "udp", server["username"], server["credential"])
    try:
        return c.allocate()
    finally:
        c.close()


async def churn(pairs, total, first_last):
    """Each (caller session, callee name) pair places calls and hangs
    each up until `total` calls were placed in all. Returns how many."""
    placed = [0]

    async def one(cs, callee):
        while placed[0] < total:
            t0 = time.monotonic()
            r = await cs.request({"type": "call", "to": callee, "media": ["audio"]})
            if r.get("type") != "call.ok":
                raise AssertionError("call %s -> %s answered %r" % (cs.name, callee, r))
            await cs.send({"type": "hangup", "call": r["call"]})
            placed[0] += 1
            if first_last[0] is None:
                first_last[0] = r
            first_last[1] = r
            # The client keeps a transcript of everything; not needed here.
            cs.transcript.clear()
            cs.inbox.clear()
            left = CALL_PERIOD_S - (time.monotonic() - t0)
            if left > 0:
                await asyncio.sleep(left)

    await asyncio.gather(*(one(cs, callee) for cs, callee in pairs))
    return placed[0]


async def drain(clients, stop):
    """The callees receive incoming and hangup for every call; keep
    their inboxes from growing in the test."""
    while not stop.is_set():
        for c in clients:
            c.transcript.clear()
            c.inbox.clear()
        await asyncio.sleep(0.5)


def instrumented(pid):
    """Is the daemon under a sanitizer's or valgrind's allocator?"""
    if gh.valgrind_dir():
        return True
    with open("/proc/%d/maps" % pid) as f:
        return any("libasan" in line or "libtsan" in line for line in f)


def test_call_churn_memory_bounded():
    g = gh.Gatehouse(ARGS.gatehouse, config={
        "identity": {"mfa": "off"},
        # Four callers place thousands of calls a minute: far more than
        # a person would (signaling.calls_per_minute, 30 by default).
        "signaling": {"calls_per_minute": 1000000},
        "alerts": {"call_fanout": {"threshold": 0}},
        "log": {"level": "info"}})
    pol = os.path.join(g.workdir, "policy.json")
    sc.write_policy(pol, [{"name": "churn", "from": "group:callers", "to": "group:callees",
                           "media": ["audio"], "action": "allow"}],
                    {"callers": CALLERS, "callees": CALLEES})
    g.config["policy"] = {"file": pol}
    sc.write_config(g)
    users = {}
    for n in CALLERS:
        users[n] = sc.create_user(g, n, PASSWORD, ["callers"], with_totp=False)
    for n in CALLEES:
        users[n] = sc.create_user(g, n, PASSWORD, ["callees"], with_totp=False)

    async def login(name, label):
        c = await sc.connect(g, label)
        r = await c.login(name, PASSWORD)
        assert r.get("type") == "login.ok", "login of %s: %r" % (name, r)
        return c

    async def body():
        callees = [await login(n, n) for n in CALLEES]
        pairs = []
        for a in CALLERS:
            for b in CALLEES:
                pairs.append((await login(a, "%s->%s" % (a, b)), b))
        stop = asyncio.Event()
        drainer = asyncio.ensure_future(drain(callees, stop))
        try:
            fl = [None, None]
            n = await churn(pairs, WARMUP_CALLS, fl)
            await asyncio.sleep(1.0)
            rss0 = rss_bytes(g.proc.pid)
            fl = [None, None]
            t0 = time.monotonic()
            n = await churn(pairs, CHURN_CALLS, fl)
            took = time.monotonic() - t0
            await sc.fresh_ping(g)
            await asyncio.sleep(1.0)
            rss1 = rss_bytes(g.proc.pid)
            per_call = (rss1 - rss0) / n
            print("%d calls in %.1f s; VmRSS %d kB -> %d kB: %+.1f bytes per call (limit %d)"
                  % (n, took, rss0 // 1024, rss1 // 1024, per_call, MAX_BYTES_PER_CALL),
                  flush=True)
            if instrumented(g.proc.pid):
                print("(not judged: the daemon runs under a sanitizer or valgrind)", flush=True)
            else:
                assert per_call <= MAX_BYTES_PER_CALL, \
                    "the daemon grew by %.1f bytes per call over %d short calls (VmRSS %d kB " \
                    "-> %d kB): something is kept for every ended call" % (
                        per_call, n, rss0 // 1024, rss1 // 1024)

            loop = asyncio.get_running_loop()
            for which, r in (("first", fl[0]), ("last", fl[1])):
                resp = await loop.run_in_executor(None, allocate, g, r["ice_servers"][0])
                assert resp is not None and resp.code == 401, \
                    "credentials of the %s ended call (%s): Allocate answered %r, expected 401" \
                    % (which, r["call"], resp)
            # A live call's credentials still work.
            cs, callee = pairs[0]
            r = await cs.request({"type": "call", "to": callee, "media": ["audio"]})
            assert r.get("type") == "call.ok", "call after the churn: %r" % r
            resp = await loop.run_in_executor(None, allocate, g, r["ice_servers"][0])
            assert resp is not None and resp.ok, \
                "credentials of a live call after the churn: Allocate answered %r" % resp
            await cs.send({"type": "hangup", "call": r["call"]})
            await asyncio.sleep(0.3)
            st = await loop.run_in_executor(None, gauges, g)
            assert st == {"gatehouse_active_calls": 0, "gatehouse_active_allocations": 0}, \
                "after the churn: %r, expected no call and no allocation" % st
        finally:
            stop.set()
            await drainer
            for c in callees + [cs for cs, _ in pairs]:
                await c.close()

    with g:
        gh.with_log(g, lambda: asyncio.run(body()))


def main():
    global ARGS
    ARGS = gh.main_args()
    gh.run_tests([test_call_churn_memory_bounded])


if __name__ == "__main__":
    main()
