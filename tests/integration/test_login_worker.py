#!/usr/bin/python3
"""The login worker under attack, through the real daemon (signaling on
/ws and the admin API's POST /api/login), from several loopback source
addresses: 127.0.0.1 is the honest client; 127.0.0.2 ... 127.0.0.6 are
the others (the daemon listens on 127.0.0.1; a socket bound to another
127/8 address is another client IP to it).

One thread checks every password with argon2id (a third of a second
each). What must hold (gateway/login_queue.h, docs/protocol.md "login",
docs/audit.md):

- A login whose connection closes while it is being checked is still
  audited (login.failure / mfa.failure / login.success, admin.login,
  with "unanswered": true), counted in the metrics, and fed to the
  detectors, so password_guessing_source blocks a client that never
  reads its answers. The check itself counts toward the lockout
  (users.db), so audit and users.db must agree.
- A login still queued when its connection closes is dropped: it has
  done nothing (users.db untouched) and is not audited either.
- A flood of login-and-close, or of logins held open, from one source
  does not hold up another source's login (answered within
  FAIR_ANSWER_S, where the flood would take a minute), for signaling
  and admin logins alike; a source beyond its share of logins being
  checked is told "server busy, try again" (503 busy on the admin API).

Timing: only "answered within N seconds", with N far from both the
fixed behaviour (about a second) and the broken one (a minute).

GH_TESTS=name,... selects tests.
"""

import http.client
import json
import os
import re
import socket
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402
from adminclient import read_audit  # noqa: E402
import sigclient as sc  # noqa: E402

ARGS = None
SLOW = gh.slow_factor()
# A login from another source, behind a flood that would take a minute
# to check: answered within this (the fixed daemon takes about a second).
FAIR_ANSWER_S = 10.0 * SLOW
# How long the daemon may take to check one login and account for it.
SETTLE_S = 15.0 * SLOW
SHARE = 3                 # LOGIN_QUEUE_PER_SOURCE
BUSY = "server busy, try again"


def password_of(name):
    return "pw-%s-0123456789" % name


def daemon(users=(), alerts=None, config=None):
    """A daemon of the test's own with local users (name, groups); the
    detectors off unless alerts says otherwise. Returns (g, users)."""
    over = dict(config or {})
    if alerts:
        over["alerts"] = alerts
    g = gh.Gatehouse(ARGS.gatehouse, config=over or None)
    sc.write_config(g)
    made = {}
    for name, groups in users:
        made[name] = sc.create_user(g, name, password_of(name), groups)
    return g, made


# ---------------------------------------------------------------- clients

def ws(g, source):
    return sc.RawWebSocket("127.0.0.1", g.signaling_port, source=source, timeout=5.0 * SLOW)


def login_msg(user, password, code="000000", mid=1):
    return json.dumps({"type": "login", "id": mid, "user": user, "password": password,
                       "totp": code})


def admin_request(g, source, body, timeout):
    """POST /api/login from source; (status, parsed body)."""
    conn = http.client.HTTPConnection("127.0.0.1", g.admin_port, timeout=timeout,
                                      source_address=(source, 0))
    try:
        conn.request("POST", "/api/login", json.dumps(body),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        text = r.read().decode("utf-8", "replace")
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text
    finally:
        conn.close()


def admin_send_only(g, source, body):
    """Sends POST /api/login from source and returns the open socket,
    without reading anything."""
    s = socket.create_connection(("127.0.0.1", g.admin_port), timeout=5.0 * SLOW,
                                 source_address=(source, 0))
    text = json.dumps(body)
    s.sendall(("POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
               "application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text)).encode())
    return s


# ---------------------------------------------------------------- state

def failures(g, name):
    """users.db's count of failed logins in a row for name."""
    db = sqlite3.connect(os.path.join(g.state_dir, "users.db"), timeout=10)
    try:
        row = db.execute("SELECT failures FROM users WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None
    finally:
        db.close()


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.05)


def from_ip(e, ip):
    """Whether an audit event's source ("ip:port" or "ip") is ip."""
    src = e.get("source") or ""
    return src == ip or src.startswith(ip + ":")


LOGIN_EVENTS = ("login.success", "login.failure", "mfa.failure", "lockout")


def logins_from(g, ip, user=None):
    return [e for e in read_audit(g) if e.get("event") in LOGIN_EVENTS and from_ip(e, ip)
            and (user is None or e.get("user") == user)]


def metric(g, name, labels):
    conn = http.client.HTTPConnection("127.0.0.1", g.admin_port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    want = "%s{%s}" % (name, ",".join('%s="%s"' % kv for kv in labels.items()))
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[1])
    return None


def checks_started(g):
    """How many checks the login worker has taken up (its debug line)."""
    return g.log().count("login: checking ")


def close_while_checked(g, source, msg):
    """Connects from source, sends a login, and closes once the worker
    has taken the check up (after that a close no longer cancels it); the
    check takes far longer, so the connection is gone before the answer."""
    before = checks_started(g)
    c = ws(g, source)
    c.send_texts([msg])
    wait_until(lambda: checks_started(g) > before, SETTLE_S, "the worker to take the login up")
    c.close()


# ---------------------------------------------------------------- tests

def test_unanswered_signaling_logins_audited():
    """Logins whose connection closed while argon2id ran: each check is
    in users.db, and each is audited with what the client claimed, its
    address and unanswered: true, and counted in the metrics; a success
    too (the code is used up). Before the fix none of them was audited."""
    g, u = daemon([("carol", ["team"])])
    ip = "127.0.0.4"
    with g:
        def body():
            carol = u["carol"]
            # Two wrong passwords, then the right one with a wrong code.
            for i, (pw, code) in enumerate([("guess-1", "000000"), ("guess-2", "000000"),
                                            (carol.password, sc.wrong_totp(carol.secret))]):
                close_while_checked(g, ip, login_msg("carol", pw, code))
                wait_until(lambda: failures(g, "carol") == i + 1, SETTLE_S,
                           "users.db to count carol's failure %d" % (i + 1))
            ev = wait_until(lambda: len(logins_from(g, ip, "carol")) >= 3 and
                            logins_from(g, ip, "carol"), SETTLE_S,
                            "the audit of carol's 3 unanswered failed logins")
            assert [e.get("event") for e in ev] == ["login.failure", "login.failure",
                                                    "mfa.failure"], ev
            assert all(e.get("unanswered") is True and e.get("outcome") == "failure" and
                       e.get("reason") for e in ev), ev
            assert metric(g, "gatehouse_logins_total", {"outcome": "failure"}) == 3

            # The right password and code, unanswered: a success all the
            # same (users.db resets the count), audited as one.
            close_while_checked(g, ip, login_msg("carol", carol.password, carol.next_totp()))
            wait_until(lambda: failures(g, "carol") == 0, SETTLE_S, "carol's good login")
            ok = wait_until(lambda: [e for e in logins_from(g, ip, "carol")
                                     if e.get("event") == "login.success"], SETTLE_S,
                            "the audit of carol's unanswered good login")
            assert ok[0].get("unanswered") is True, ok
            assert metric(g, "gatehouse_logins_total", {"outcome": "success"}) == 1
            # An answered login is not marked.
            c = ws(g, "127.0.0.1")
            c.send_texts([login_msg("carol", "guess-3")])
            r = c.next_json(SETTLE_S)
            c.close()
            assert r and r.get("code") == "auth_failed", r
            answered = wait_until(lambda: logins_from(g, "127.0.0.1", "carol"), SETTLE_S,
                                  "the audit of the answered login")
            assert "unanswered" not in answered[0], answered
        gh.with_log(g, body)


def test_queued_login_dropped_when_closed():
    """A login still queued when its connection closes never runs: users.db
    is untouched and nothing is audited for it (it did nothing, so it is
    no attempt). Before the fix it ran anyway, unaudited."""
    g, u = daemon([("carol", ["team"]), ("dave", ["team"])])
    ip = "127.0.0.5"
    with g:
        def body():
            # Both connected first: carol's check occupies the worker ...
            a = ws(g, ip)
            b = ws(g, ip)
            before = checks_started(g)
            a.send_texts([login_msg("carol", "guess-1")])
            wait_until(lambda: checks_started(g) > before, SETTLE_S,
                       "the worker to take carol's login up")
            # ... while dave's, behind it, is sent and its connection closed.
            b.send_texts([login_msg("dave", "guess-1")])
            b.close()
            r = a.next_json(SETTLE_S)
            a.close()
            assert r and r.get("code") == "auth_failed", r
            wait_until(lambda: logins_from(g, ip, "carol"), SETTLE_S, "carol's login audited")
            time.sleep(1.0 * SLOW)  # dave's would have been checked by now
            assert failures(g, "dave") == 0, \
                "dave's login ran after its connection closed (users.db failures %r)" % \
                failures(g, "dave")
            assert not logins_from(g, ip, "dave"), logins_from(g, ip, "dave")
        gh.with_log(g, body)


def test_blind_guessing_detected_and_blocked():
    """A client that sends a guess and closes before the answer, again and
    again: the guesses that were checked are audited and fed to
    password_guessing_source, whose block_source then refuses the source
    (HTTP 403 on the upgrade). Before the fix it could guess unseen."""
    ip = "127.0.0.3"
    g, u = daemon([("alice", ["team"])], alerts={
        "password_guessing_source": {"window_s": 60, "threshold": 4,
                                     "response": "block_source", "block_s": 300}})
    with g:
        def body():
            blocked = False
            deadline = time.monotonic() + 60 * SLOW
            i = 0
            while time.monotonic() < deadline and not blocked:
                i += 1
                try:
                    c = ws(g, ip)
                except ConnectionError:
                    blocked = True  # the upgrade refused (or cut) by the block
                    break
                try:
                    c.send_texts([login_msg("alice", "guess-%d" % i)])
                    time.sleep(0.03)
                except ConnectionError:
                    pass  # closed by the block as it came into force
                finally:
                    c.close()
            assert blocked, "%d blind guesses from %s and the source is not blocked" % (i, ip)
            ev = [e for e in read_audit(g) if e.get("event") == "alert" and
                  e.get("kind") == "password_guessing_source"]
            assert ev and ev[0].get("key") == ip, ev
            checked = logins_from(g, ip)
            assert len(checked) >= 4 and all(e.get("unanswered") for e in checked), checked
            # The honest client is not affected.
            c = ws(g, "127.0.0.1")
            c.send_texts([json.dumps({"type": "ping"})])
            assert c.next_json(5 * SLOW) == {"type": "pong"}
            c.close()
        gh.with_log(g, body)


def test_signaling_flood_does_not_delay_others():
    """270 logins from one source, each connection closed right after its
    login (the queue held them all, a minute of argon2id): a login from
    another source is answered within FAIR_ANSWER_S."""
    g, u = daemon([("bob", ["team"])])
    with g:
        def body():
            t0 = time.monotonic()
            for i in range(270):
                c = ws(g, "127.0.0.2")
                c.send_texts([login_msg("user%d" % (i % 50), "guess%d" % i)])
                c.close()
            flood_s = time.monotonic() - t0
            c = ws(g, "127.0.0.1")
            t1 = time.monotonic()
            c.send_texts([login_msg("bob", u["bob"].password, u["bob"].next_totp())])
            r = c.next_json(120 * SLOW)
            took = time.monotonic() - t1
            c.close()
            assert r is not None and r.get("type") == "login.ok", \
                "bob's login after the flood (sent in %.1f s): %r" % (flood_s, r)
            assert took < FAIR_ANSWER_S, \
                "bob's login took %.1f s behind another source's flood" % took
        gh.with_log(g, body)


def test_held_open_logins_beyond_share_busy(share=SHARE, config=None):
    """One source with 20 connections, each sending a login at once and
    staying open: SHARE of them are checked, the others are told "server
    busy, try again" at once, with when to try again (retry_after_ms),
    and another source's login is answered within FAIR_ANSWER_S (sources
    take turns)."""
    n = 20
    g, u = daemon([("bob", ["team"])], config=config)
    with g:
        def body():
            conns = [ws(g, "127.0.0.2") for _ in range(n)]
            legit = ws(g, "127.0.0.1")
            try:
                for i, c in enumerate(conns):
                    c.send_texts([login_msg("nobody%d" % i, "guess")])
                # Right behind the flood's logins.
                t1 = time.monotonic()
                legit.send_texts([login_msg("bob", u["bob"].password, u["bob"].next_totp())])
                r = legit.next_json(60 * SLOW)
                took = time.monotonic() - t1
                answers = [c.next_json(60 * SLOW) for c in conns]
            finally:
                legit.close()
                for c in conns:
                    c.close()
            busy = sum(1 for a in answers if a and a.get("message") == BUSY)
            failed = sum(1 for a in answers if a and a.get("message") == "authentication failed")
            assert busy + failed == n, answers
            assert busy >= n - 2 * share, \
                "%d of %d logins held open from one source were busy: %r" % (busy, n, answers)
            # All were sent before the first check could end: at least the
            # share was checked.
            assert failed >= share, \
                "%d of %d logins from one source were checked, share %d: %r" % (
                    failed, n, share, answers)
            assert all(a.get("retry_after_ms") == 1000 for a in answers
                       if a.get("message") == BUSY), answers
            assert r is not None and r.get("type") == "login.ok", r
            assert took < FAIR_ANSWER_S, "bob's login took %.1f s" % took
        gh.with_log(g, body)


def test_share_is_configurable():
    """signaling.logins_per_source sets the share: with 7, at least 7 of
    20 logins held open from one source are checked."""
    test_held_open_logins_beyond_share_busy(7, {"signaling": {"logins_per_source": 7}})


def test_admin_flood_does_not_delay_logins():
    """300 admin logins from one source, their connections closed before
    the answer (the shared queue held 256 of them; the admin API answered
    503 meanwhile): an admin login and a signaling login from another
    source are both answered within FAIR_ANSWER_S."""
    g, u = daemon([("bob", ["team"]), ("root1", ["admin"])])
    with g:
        def body():
            open_ = []
            for i in range(300):
                open_.append(admin_send_only(g, "127.0.0.2", {
                    "user": "nosuch%d" % i, "password": "x" * 8, "totp": "000000"}))
                if len(open_) >= 32:
                    time.sleep(0.05)
                    for s in open_:
                        s.close()
                    open_ = []
            for s in open_:
                s.close()
            t1 = time.monotonic()
            root = u["root1"]
            st, b = admin_request(g, "127.0.0.1", {"user": "root1", "password": root.password,
                                                   "totp": root.next_totp()}, 120 * SLOW)
            took = time.monotonic() - t1
            assert st == 200 and b.get("role") == "admin", (st, b)
            assert took < FAIR_ANSWER_S, "the admin login took %.1f s" % took
            c = ws(g, "127.0.0.1")
            t2 = time.monotonic()
            c.send_texts([login_msg("bob", u["bob"].password, u["bob"].next_totp())])
            r = c.next_json(120 * SLOW)
            took = time.monotonic() - t2
            c.close()
            assert r is not None and r.get("type") == "login.ok", r
            assert took < FAIR_ANSWER_S, "the signaling login took %.1f s" % took
        gh.with_log(g, body)


def test_admin_logins_beyond_share_busy():
    """Admin logins held open from one source beyond its share get 503
    busy at once; another source's admin login still goes through."""
    n = 8
    g, u = daemon([("root1", ["admin"])])
    with g:
        def body():
            socks = [admin_send_only(g, "127.0.0.2", {"user": "nosuch%d" % i,
                                                      "password": "x" * 8, "totp": "000000"})
                     for i in range(n)]
            statuses = []
            try:
                for s in socks:
                    s.settimeout(60 * SLOW)
                    data = b""
                    while b"\r\n" not in data:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    m = re.match(rb"HTTP/1\.1 (\d{3})", data)
                    statuses.append(int(m.group(1)) if m else None)
            finally:
                for s in socks:
                    s.close()
            assert sorted(set(statuses)) <= [401, 503], statuses
            assert statuses.count(503) >= n - 2 * SHARE, statuses
            root = u["root1"]
            st, b = admin_request(g, "127.0.0.1", {"user": "root1", "password": root.password,
                                                   "totp": root.next_totp()}, FAIR_ANSWER_S)
            assert st == 200, (st, b)
        gh.with_log(g, body)


def test_unanswered_admin_login_audited():
    """An admin login whose connection closed while argon2id ran: counted
    toward the lockout (users.db), audited as admin.login failed with the
    user, the source and unanswered: true, and fed to the detectors.
    Before the fix: nothing but the lockout count."""
    ip = "127.0.0.6"
    g, u = daemon([("erin", ["admin"])], alerts={
        "password_guessing_user": {"window_s": 60, "threshold": 1, "response": "none"}})
    with g:
        def body():
            before = checks_started(g)
            s = admin_send_only(g, ip, {"user": "erin", "password": "wrong-password",
                                        "totp": "000000"})
            wait_until(lambda: checks_started(g) > before, SETTLE_S,
                       "the worker to take the login up")
            s.close()
            wait_until(lambda: failures(g, "erin") == 1, SETTLE_S, "erin's failure counted")
            ev = wait_until(lambda: [e for e in read_audit(g)
                                     if e.get("event") == "admin.login" and from_ip(e, ip)],
                            SETTLE_S, "the audit of erin's unanswered admin login")
            assert ev[0].get("outcome") == "failed" and ev[0].get("user") == "erin" and \
                ev[0].get("unanswered") is True and ev[0].get("reason") == "bad password", ev
            # ... and fed to the detectors like any failed login.
            wait_until(lambda: [e for e in read_audit(g) if e.get("event") == "alert" and
                                e.get("kind") == "password_guessing_user" and
                                e.get("key") == "erin"], SETTLE_S,
                       "password_guessing_user on erin")
        gh.with_log(g, body)


if __name__ == "__main__":
    ARGS = gh.main_args()
    gh.run_tests([
        test_unanswered_signaling_logins_audited,
        test_queued_login_dropped_when_closed,
        test_blind_guessing_detected_and_blocked,
        test_signaling_flood_does_not_delay_others,
        test_held_open_logins_beyond_share_busy,
        test_share_is_configurable,
        test_admin_flood_does_not_delay_logins,
        test_admin_logins_beyond_share_busy,
        test_unanswered_admin_login_audited,
    ])
