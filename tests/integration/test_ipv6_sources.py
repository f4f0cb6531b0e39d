#!/usr/bin/python3
"""An IPv6 client is counted, limited and blocked by its /64
(docs/configuration.md, "Sources"): a host that holds a /64 can speak from
any address inside it, so a limit or a block per address would give it a
fresh start with each new address.

The file runs in a network namespace of its own: it re-executes itself
under `unshare --net`, brings up lo and gives it addresses in two /64s of
fd00::/8 (unique local addresses, never routed):
  fd00:1:2:3::a .. ::f   one source (fd00:1:2:3::/64)
  fd00:1:2:4::a          another source
The daemon listens on [::1] for signaling and TURN (UDP), and the clients
bind those addresses before they connect. All traffic stays on the
namespace's loopback, which goes away with the process. Needs root
(CAP_SYS_ADMIN for the namespace, CAP_NET_ADMIN for the addresses).

  - test_detector_and_block_cover_the_64: password_guessing_source with a
    threshold of 4 fires on 2 failed logins from ::a and 2 from ::b; the
    alert, the response.block event and GET /api/blocks name
    fd00:1:2:3::/64. A session that ::d had open is closed; ::c is refused
    at the WebSocket upgrade (403) and by the relay (no answer to a
    Binding), while fd00:1:2:4::a is served by both. DELETE
    /api/blocks/fd00:1:2:3:: (any address of the /64 names it) lifts the
    block, and ::c is served again.
  - test_connection_cap_covers_the_64: 32 signaling connections from four
    addresses of the /64 use up its cap: the 33rd, from a fifth address,
    gets 503; one from the other /64 gets 101; after one closes, the
    fifth address gets in. test_connection_cap_is_configurable: the same
    with signaling.connections_per_source 6.
GH_TESTS=name,... selects tests.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import adminclient  # noqa: E402
import gh  # noqa: E402
import sigclient as sc  # noqa: E402
import turnclient as tc  # noqa: E402

ARGS = None
NETNS_MARK = "GH_IPV6_SOURCES_NETNS"
SRC = ["fd00:1:2:3::%x" % i for i in range(0xa, 0x10)]   # one /64
OTHER = "fd00:1:2:4::a"                                  # another /64
PREFIX = "fd00:1:2:3::/64"
WS_CAP = 32   # signaling.connections_per_source's default


def setup_namespace():
    """In the fresh namespace: lo up, and the test's addresses on it
    (nodad: usable at once, no duplicate address detection to wait for)."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for a in SRC + [OTHER]:
        subprocess.run(["ip", "-6", "addr", "add", a + "/64", "dev", "lo", "nodad"],
                       check=True)


class Daemon:
    """A Gatehouse listening on [::1] (signaling, TURN over UDP) and on
    127.0.0.1 (admin API, TURN over UDP), with local users. Context
    manager."""

    def __init__(self, config=None, users=()):
        g = gh.Gatehouse(ARGS.gatehouse, config=config)
        g.config["signaling"]["listen"] = "[::1]:%d" % g.signaling_port
        # 127.0.0.1 too: the harness waits for a Binding answer there.
        g.config["turn"]["listen"] = [{"addr": "127.0.0.1:%d" % g.port, "transport": "udp"},
                                      {"addr": "[::1]:%d" % g.port, "transport": "udp"}]
        self.g = g
        sc.write_config(g)
        self.users = {name: sc.create_user(g, name, name + "-pw-1234", groups)
                      for name, groups in users}
        self.admin = adminclient.AdminClient(g)

    def __enter__(self):
        self.g.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            print("daemon log tail:\n%s" % gh.tail(self.g.log(), 40), flush=True)
        return self.g.__exit__(exc_type, exc, tb)

    def ws(self, src):
        """A WebSocket from src: (RawWebSocket or None, HTTP status)."""
        try:
            w = sc.RawWebSocket("::1", self.g.signaling_port, source=src)
            return w, w.status
        except ConnectionError as e:
            return None, getattr(e, "status", None)

    def upgrade_status(self, src):
        w, status = self.ws(src)
        if w is not None:
            w.close()
        return status

    def turn_answers(self, src):
        c = tc.TurnClient("::1", self.g.port, "udp", local=(src, 0), timeout=1.0)
        try:
            return c.binding() is not None
        finally:
            c.close(release=False)

    def audit(self):
        return adminclient.read_audit(self.g)

    def wait_audit(self, pred, what, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            for e in self.audit():
                if pred(e):
                    return e
            assert time.monotonic() < deadline, "no %s in the audit trail; last: %s" % (
                what, [json.dumps(e)[:200] for e in self.audit()[-6:]])
            time.sleep(0.1)


def failed_login(d, src, name):
    """One failed password login from src; the answer, or None when the
    connection closed first (the block that the login raised closes it)."""
    w, status = d.ws(src)
    assert w is not None, "upgrade from %s: HTTP %s" % (src, status)
    try:
        return w.request({"type": "login", "user": name, "password": "wrong-password"})
    finally:
        w.close()


def test_detector_and_block_cover_the_64():
    kind = "password_guessing_source"
    over = {"alerts": {kind: {"window_s": 60, "threshold": 4, "response": "block_source",
                              "block_s": 300}}}
    with Daemon(over, users=[("alice", []), ("op", ["operator"])]) as d:
        alice = d.users["alice"]
        held, status = d.ws(SRC[3])
        assert held is not None, "upgrade from %s: HTTP %s" % (SRC[3], status)
        r = held.request({"type": "login", "user": alice.name, "password": alice.password,
                          "totp": alice.next_totp()})
        assert r and r.get("type") == "login.ok", "login of alice from %s: %r" % (SRC[3], r)
        # Four failures from two addresses of one /64: one source.
        for src, name in [(SRC[0], "nobody1"), (SRC[1], "nobody2"), (SRC[0], "nobody3")]:
            r = failed_login(d, src, name)
            assert r and r.get("code") == "auth_failed", "failed login from %s: %r" % (src, r)
        failed_login(d, SRC[1], "nobody4")
        a = d.wait_audit(lambda e: e.get("event") == "alert" and e.get("kind") == kind,
                         "alert " + kind)
        assert a.get("source") == PREFIX and a.get("key") == PREFIX and \
            a.get("value") == 4, "alert: %r" % a
        blk = d.wait_audit(lambda e: e.get("event") == "response.block", "response.block")
        assert blk.get("source") == PREFIX, "response.block: %r" % blk
        # What the source had open is closed, from whichever address.
        frames, how = held.read_until_closed(5.0)
        held.close()
        assert how != "timeout", "the session of %s stayed open after the block" % SRC[3]
        # A fresh address of the /64 is refused; the other /64 is not.
        assert d.upgrade_status(SRC[2]) == 403, "upgrade from %s not refused" % SRC[2]
        assert not d.turn_answers(SRC[2]), "the relay answered %s" % SRC[2]
        assert d.upgrade_status(OTHER) == 101, "upgrade from %s refused" % OTHER
        assert d.turn_answers(OTHER), "the relay ignored %s" % OTHER

        tok = d.admin.login(d.users["op"])
        st, b = d.admin.call("GET", "/api/blocks", token=tok)
        rows = [x.get("source") for x in (b.get("blocks") or [])] if st == 200 else None
        assert rows == [PREFIX], "GET /api/blocks: %s %s" % (st, b)
        st, b = d.admin.call("DELETE", "/api/blocks/fd00:1:2:3::", token=tok)
        assert st == 200, "DELETE /api/blocks/fd00:1:2:3::: HTTP %s %s" % (st, b)
        assert d.upgrade_status(SRC[2]) == 101, "%s still refused after the unblock" % SRC[2]
        assert d.turn_answers(SRC[2]), "the relay still ignores %s" % SRC[2]
        st, b = d.admin.call("DELETE", "/api/blocks/" + SRC[4], token=tok)
        assert st == 404, "a second DELETE: HTTP %s %s" % (st, b)


def test_connection_cap_covers_the_64(cap=WS_CAP, config=None):
    with Daemon(config) as d:
        held = []
        try:
            for i in range(cap):
                src = SRC[i % 4]
                w, status = d.ws(src)
                assert w is not None, "connection %d from %s: HTTP %s" % (i + 1, src, status)
                held.append(w)
            assert d.upgrade_status(SRC[4]) == 503, \
                "connection %d from the /64 (%s) was not refused" % (cap + 1, SRC[4])
            assert d.upgrade_status(OTHER) == 101, "the other /64 was refused"
            held.pop().close()
            deadline = time.monotonic() + 5
            while d.upgrade_status(SRC[4]) != 101:
                assert time.monotonic() < deadline, "%s refused after one closed" % SRC[4]
                time.sleep(0.1)
        finally:
            for w in held:
                w.close()


def test_connection_cap_is_configurable():
    test_connection_cap_covers_the_64(6, {"signaling": {"connections_per_source": 6}})


def main():
    global ARGS
    ARGS = gh.main_args()
    if os.environ.get(NETNS_MARK) != "1":
        if os.geteuid() != 0:
            print("FAIL: needs root for its network namespace (unshare --net)", flush=True)
            sys.exit(1)
        env = dict(os.environ, **{NETNS_MARK: "1"})
        os.execvpe("unshare", ["unshare", "--net", "--", sys.executable,
                               os.path.abspath(__file__), "--gatehouse", ARGS.gatehouse], env)
    setup_namespace()
    gh.run_tests([
        test_detector_and_block_cover_the_64,
        test_connection_cap_covers_the_64,
        test_connection_cap_is_configurable,
    ])


if __name__ == "__main__":
    main()
