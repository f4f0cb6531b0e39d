#!/usr/bin/python3
"""Gatehouse to a SIEM, with a real collector: RFC 5424 syslog to a real
rsyslogd (tests/integration/rsyslog.py) over UDP, TCP and TLS; the audit
file's SIGUSR1 reopen; and every anomaly detector driven by real traffic
(signaling logins and calls, TURN requests, relayed media), each checked
four ways: the audit "alert" event, its automatic response (and that
response's own audit event and effect), the Prometheus counter
gatehouse_alerts_total{kind}, and the syslog line at rsyslog (MSGID
"alert"; severity ALERT when a response ran, WARNING otherwise).

Facility is authpriv (10), so PRI = 80 + severity: 86 INFO, 84 WARNING,
81 ALERT.

Sources other than 127.0.0.1 (127.0.0.2 ... 127.0.0.6) are used where a
test makes the daemon block a source, so that 127.0.0.1 can show it is
unaffected. Every daemon is the test's own, so no block outlives a test.
All traffic goes to 127.0.0.0/8 (TESTING.md network rule); 10.0.0.x
addresses appear only inside TURN CreatePermission requests that the
relay must refuse.

Also: a forged record in a user name never becomes a second syslog
record; an event over the transport's size limit (a policy change)
arrives reduced but valid, and the next one is not lost; TLS to a collector whose certificate names another IP delivers
nothing; the daemon delivers again after the collector restarts; a
response switched on without block_s still lasts (lock and block); and
a webhook receiver that hangs must not hold up the audit trail.

GH_TESTS=name,... selects tests.
"""

import asyncio
import atexit
import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402
import rsyslog  # noqa: E402
import sigclient as sc  # noqa: E402
import turnclient as tc  # noqa: E402

ARGS = None
RS = None            # the shared collector, started in main()

SEV_ALERT, SEV_WARNING, SEV_INFO = 1, 4, 6
FACILITY_AUTHPRIV = 10
HOSTNAME = socket.gethostname()


def pri(sev):
    return FACILITY_AUTHPRIV * 8 + sev


def password_of(name):
    return "pw-%s-0123456789" % name


# ------------------------------------------------------------ the daemon

class Daemon:
    """A Gatehouse of this test with syslog to the shared rsyslog, and
    local users made before it starts. Context manager."""

    def __init__(self, config=None, users=(), transport="tcp", syslog=True):
        over = {}
        if syslog:
            s = {"address": RS.address(transport), "transport": transport}
            if transport == "tls":
                s["ca_file"] = RS.ca_file
            over = {"log": {"syslog": s}}
        gh._merge(over, config or {})
        self.g = gh.Gatehouse(ARGS.gatehouse, config=over)
        self.users = {}
        sc.write_config(self.g)
        for name, groups in users:
            self.users[name] = sc.create_user(self.g, name, password_of(name), groups)

    def __enter__(self):
        self.g.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            print("daemon log tail:\n%s" % gh.tail(self.g.log(), 40), flush=True)
        return self.g.__exit__(exc_type, exc, tb)

    @property
    def pid(self):
        return str(self.g.proc.pid)

    # ---- audit trail
    def audit_path(self):
        p = self.g.config.get("log", {}).get("audit_file")
        if not p:
            return os.path.join(self.g.state_dir, "audit.jsonl")
        return os.path.join(os.path.dirname(self.g.config_path), p)

    def audit(self, path=None):
        out = []
        try:
            with open(path or self.audit_path(), encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        try:
                            out.append(json.loads(line))
                        except ValueError:
                            out.append({"event": "<unparsable>", "raw": line})
        except FileNotFoundError:
            pass
        return out

    def wait_audit(self, pred, timeout=10.0, what="audit event", path=None):
        deadline = time.monotonic() + timeout
        while True:
            for e in self.audit(path):
                if pred(e):
                    return e
            if time.monotonic() > deadline:
                evs = self.audit(path)
                raise AssertionError("no %s in the audit trail within %.0f s; last events: %s"
                                     % (what, timeout, [short(e) for e in evs[-8:]]))
            time.sleep(0.1)

    def wait_alert(self, kind, timeout=10.0, **match):
        return self.wait_audit(
            lambda e: e.get("event") == "alert" and e.get("kind") == kind and
            all(e.get(k) == v for k, v in match.items()),
            timeout, "alert of kind %s%s" % (kind, (" with %r" % match) if match else ""))

    # ---- admin API
    def api(self, method, path, body=None, token=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.g.admin_port, timeout=10)
        try:
            h = {}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                h["Content-Type"] = "application/json"
            if token:
                h["Authorization"] = "Bearer %s" % token
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            text = r.read().decode("utf-8", "replace")
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text
        finally:
            conn.close()

    def admin_login(self, name):
        u = self.users[name]
        st, b = self.api("POST", "/api/login", {"user": u.name, "password": u.password,
                                                  "totp": u.next_totp()})
        assert st == 200 and isinstance(b, dict) and b.get("token"), \
            "admin login of %s: HTTP %s %s" % (name, st, short(b))
        return b["token"]

    def metric(self, name, **labels):
        """A counter's value from GET /metrics (0 when the series is absent)."""
        st, text = self.api("GET", "/metrics")
        assert st == 200 and isinstance(text, str), "GET /metrics: HTTP %s %s" % (st, short(text))
        lab = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        want = "%s{%s}" % (name, lab) if labels else name
        for line in text.splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0

    def alerts_total(self, kind):
        return self.metric("gatehouse_alerts_total", kind=kind)

    # ---- syslog at the collector
    def syslog(self, msgid, pred=None, transport=None, timeout=10.0):
        def match(m):
            return (m.ok and m.procid == self.pid and m.msgid == msgid and
                    (pred is None or pred(m)))
        return RS.wait_for(match, transport, timeout,
                           "message with PROCID %s MSGID %s" % (self.pid, msgid))

    def mine(self, transport=None):
        return [m for m in RS.messages(transport) if m.ok and m.procid == self.pid]


def short(obj, limit=400):
    s = obj if isinstance(obj, str) else json.dumps(obj)
    return s if len(s) <= limit else s[:limit] + "...(%d chars)" % len(s)


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


# ------------------------------------------------ a WebSocket from any source

class WS:
    """A blocking RFC 6455 client whose socket is bound to src (so that a
    test can speak from 127.0.0.2 while the daemon listens on 127.0.0.1).
    status is the HTTP status of the upgrade (101 when it succeeded)."""

    def __init__(self, port, src="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(src, 0))
        self.buf = b""
        self.next_id = 1
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n" % (port, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            try:
                chunk = self.sock.recv(4096)
            except (ConnectionResetError, socket.timeout):
                chunk = b""
            if not chunk:
                break
            head += chunk
        self.head = head
        m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
        self.status = int(m.group(1)) if m else None
        if b"\r\n\r\n" in head:
            self.buf = head.split(b"\r\n\r\n", 1)[1]

    def send_text(self, text):
        p = text.encode() if isinstance(text, str) else text
        n = len(p)
        if n < 126:
            hdr = struct.pack("!BB", 0x81, 0x80 | n)
        else:
            hdr = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        mask = os.urandom(4)
        self.sock.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(p)))

    def _frame(self):
        if len(self.buf) < 2:
            return None
        n, off = self.buf[1] & 0x7F, 2
        if n == 126:
            if len(self.buf) < 4:
                return None
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            if len(self.buf) < 10:
                return None
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        if len(self.buf) < off + n:
            return None
        op, payload = self.buf[0] & 0x0F, self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return op, payload

    def recv(self, timeout=5.0):
        """Next text frame as JSON; None on timeout; "closed" when closed."""
        deadline = time.monotonic() + timeout
        while True:
            f = self._frame()
            if f is not None:
                op, payload = f
                if op == 0x1:
                    return json.loads(payload)
                if op == 0x8:
                    return "closed"
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except ConnectionResetError:
                return "closed"
            if not chunk:
                return "closed"
            self.buf += chunk

    def request(self, obj, timeout=10.0):
        obj = dict(obj, id=self.next_id)
        self.next_id += 1
        self.send_text(json.dumps(obj))
        deadline = time.monotonic() + timeout
        while True:
            r = self.recv(max(0.0, deadline - time.monotonic()))
            if r is None or r == "closed":
                raise AssertionError("no answer to %s (%s)" % (obj.get("type"), r or "timeout"))
            if r.get("id") == obj["id"]:
                return r

    def login(self, user, password, code="000000"):
        return self.request({"type": "login", "user": user, "password": password, "totp": code})

    def wait_closed(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.recv(max(0.0, deadline - time.monotonic())) == "closed":
                return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def upgrade_status(d, src):
    w = WS(d.g.signaling_port, src)
    try:
        return w.status
    finally:
        w.close()


def turn_answers(d, src):
    """True when a STUN Binding from src gets an answer from the relay."""
    c = tc.TurnClient("127.0.0.1", d.g.port, "udp", local=(src, 0), timeout=1.0)
    try:
        return c.binding() is not None
    finally:
        c.close(release=False)


def login_ok(d, name, src="127.0.0.1"):
    u = d.users[name]
    w = WS(d.g.signaling_port, src)
    try:
        assert w.status == 101, "upgrade from %s: HTTP %s" % (src, w.status)
        return w.login(u.name, u.password, u.next_totp())
    finally:
        w.close()


def failed_logins(d, src, names, password="wrong-password", blocks=False):
    """One failed login per name from src (5 at most a connection). With
    blocks, the last one raises an alert whose response blocks src, which
    closes the connection: no answer to it is fine then."""
    w = None
    try:
        for i, n in enumerate(names):
            if i % 5 == 0:
                if w is not None:
                    w.close()
                w = WS(d.g.signaling_port, src)
                assert w.status == 101, "upgrade from %s: HTTP %s" % (src, w.status)
            if blocks and i == len(names) - 1:
                try:
                    r = w.login(n, password)
                except AssertionError as e:
                    assert "(closed)" in str(e), "last failed login: %s" % e
                    return
            else:
                r = w.login(n, password)
            assert r.get("type") == "error" and r.get("code") == "auth_failed", \
                "failed login of %s answered %r" % (n, r)
    finally:
        if w is not None:
            w.close()


def check_alert_syslog(d, kind, response, transport="tcp"):
    """The alert's syslog line: MSGID alert, the audit JSON as MSG,
    ALERT when a response ran, else WARNING."""
    m = d.syslog("alert", lambda m: (m.json() or {}).get("kind") == kind, transport)
    sev = SEV_WARNING if response == "none" else SEV_ALERT
    j = m.json()
    assert m.version == 1 and m.app == "gatehouse", "alert syslog header: %r" % m
    assert m.pri == pri(sev), "alert %s (response %s) sent with PRI %d, expected %d: %r" % (
        kind, response, m.pri, pri(sev), m)
    assert j.get("event") == "alert" and j.get("response") == response, \
        "alert syslog MSG: %r" % j
    return m


def check_alert_metric(d, kind, before):
    """gatehouse_alerts_total{kind} grew by exactly the number of audited
    alerts of that kind (at least one)."""
    n = len([e for e in d.audit() if e.get("event") == "alert" and e.get("kind") == kind])
    assert n >= 1, "no %s alert audited" % kind
    deadline = time.monotonic() + 5
    while True:
        v = d.alerts_total(kind)
        if v == before + n:
            return v
        if time.monotonic() > deadline:
            raise AssertionError('gatehouse_alerts_total{kind="%s"} is %s, expected %s '
                                 '(%d alerts audited)' % (kind, v, before + n, n))
        time.sleep(0.1)


# ------------------------------------------------------- a. transports

def _transport_case(transport):
    with Daemon(users=[("alice", [])], transport=transport) as d:
        r = login_ok(d, "alice")
        assert r.get("type") == "login.ok", "alice's login: %r" % r
        w = WS(d.g.signaling_port)
        r = w.login("alice", "not-her-password")
        w.close()
        assert r.get("code") == "auth_failed", "bad login answered %r" % r

        ok = d.syslog("login.success", transport=transport)
        bad = d.syslog("login.failure", transport=transport)
        audit = d.audit()
        problems = []
        for m, sev, name in ((ok, SEV_INFO, "login.success"), (bad, SEV_WARNING, "login.failure")):
            if m.version != 1:
                problems.append("%s: VERSION %s, not 1" % (name, m.version))
            if m.pri != pri(sev):
                problems.append("%s: PRI %s (severity %s), expected %d (authpriv.%s)" % (
                    name, m.pri, m.severity, pri(sev), "info" if sev == SEV_INFO else "warning"))
            if m.app != "gatehouse":
                problems.append("%s: APP-NAME %r" % (name, m.app))
            if m.hostname != HOSTNAME:
                problems.append("%s: HOSTNAME %r, expected %r" % (name, m.hostname, HOSTNAME))
            if m.sd != "-":
                problems.append("%s: STRUCTURED-DATA %r" % (name, m.sd))
            if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$",
                            m.timestamp or ""):
                problems.append("%s: TIMESTAMP %r not RFC 3339" % (name, m.timestamp))
            j = m.json()
            if j is None:
                problems.append("%s: MSG is not JSON: %r" % (name, m.msg))
                continue
            same = [e for e in audit if e.get("event") == name and e.get("ts_ms") == j.get("ts_ms")]
            if not same:
                problems.append("%s: no audit line with ts_ms %s" % (name, j.get("ts_ms")))
            elif same[0] != j:
                problems.append("%s: MSG %s differs from the audit line %s" % (
                    name, short(j), short(same[0])))
            if j.get("ts") != m.timestamp:
                problems.append("%s: TIMESTAMP %s but the event's ts %s" % (
                    name, m.timestamp, j.get("ts")))
        if j and bad.json().get("user") != "alice":
            problems.append("login.failure MSG names user %r" % bad.json().get("user"))
        others = [t for t in rsyslog.TRANSPORTS if t != transport and d.mine(t)]
        if others:
            problems.append("messages also arrived on %s" % others)
        assert not problems, "%s syslog:\n  %s\n  received: %s" % (
            transport, "\n  ".join(problems), d.mine(transport)[:4])


def test_syslog_udp():
    _transport_case("udp")


def test_syslog_tcp():
    _transport_case("tcp")


def test_syslog_tls():
    _transport_case("tls")


def _tls_refused_case(ca_file, why, rs=None):
    rs = rs or RS
    over = {"log": {"syslog": {"address": rs.address("tls"), "transport": "tls",
                               "ca_file": ca_file}}}
    with Daemon(over, users=[("alice", [])], syslog=False) as d:
        t0 = time.monotonic()
        for _ in range(2):
            r = login_ok(d, "alice")
            assert r.get("type") == "login.ok", "login while syslog TLS fails: %r" % r
            w = WS(d.g.signaling_port)
            r = w.login("alice", "nope")
            w.close()
            assert r.get("code") == "auth_failed", "%r" % r
        took = time.monotonic() - t0
        d.wait_audit(lambda e: e.get("event") == "login.failure", what="login.failure")
        time.sleep(3.0)  # the writer's connect attempts are 2 s at most
        got = [m for m in rs.messages() if m.ok and m.procid == d.pid]
        assert not got, "syslog over TLS with %s delivered %d messages: %s" % (why, len(got), got[:3])
        run(sc.fresh_ping(d.g))
        assert d.g.alive(), "daemon died"
        n = len([e for e in d.audit() if e.get("event") in ("login.success", "login.failure")])
        assert n == 4, "audit file holds %d login events, expected 4" % n
        print("  %s: 4 logins took %.1f s, nothing delivered" % (why, took), flush=True)


def test_syslog_tls_wrong_ca():
    ca = rsyslog.make_ca(os.path.join(RS.workdir, "other"), "unrelated-ca")
    _tls_refused_case(ca[0], "an unrelated CA")


def test_syslog_tls_cert_for_other_ip():
    """Right CA, but the collector's certificate names 127.0.0.9, not the
    127.0.0.1 the daemon connects to."""
    with rsyslog.Rsyslog(server_ips=("127.0.0.9",)) as other:
        _tls_refused_case(other.ca_file, "a certificate for 127.0.0.9", rs=other)


def test_syslog_no_injection():
    """A user name that carries a newline and a whole forged syslog
    record reaches the collector as one message (the JSON escapes it, and
    TCP is octet-counted), never as a second record. A signaling login
    refuses such a name before the identity backend (protocol.md: control
    characters), so nothing carries it from there; an admin login audits
    it as sent."""
    forged = "x\n<81>1 2020-01-01T00:00:00Z forged gatehouse 1 alert - {}"
    for transport in ("udp", "tcp"):
        with Daemon(transport=transport) as d:
            w = WS(d.g.signaling_port)
            r = w.login(forged, "pw")
            w.close()
            assert r.get("type") == "error", "%r" % r
            print("  %s: the forged name was answered %s %r" % (
                transport, r.get("code"), r.get("message")), flush=True)
            if r.get("code") == "auth_failed" and \
                    r.get("message") != "login needs user and password, or token":
                m = d.syslog("login.failure", transport=transport)
                assert (m.json() or {}).get("user") == forged, "MSG %r" % m
            st, _ = d.api("POST", "/api/login", {"user": forged, "password": "pw", "totp": "123456"})
            assert st == 401, "admin login as the forged name: HTTP %s" % st
            m = d.syslog("admin.login", transport=transport)
            assert (m.json() or {}).get("user") == forged, "MSG %r" % m
            run(sc.fresh_ping(d.g))
            time.sleep(0.5)
            bad = [m for m in RS.messages(transport) if "forged" in (m.hostname or "") or
                   m.raw.startswith("<81>1 2020") or not m.ok]
            assert not bad, "%s: a forged or broken record at the collector: %s" % (transport, bad)


def test_syslog_collector_restart():
    """The collector goes away and comes back on the same port: the daemon
    keeps serving meanwhile and delivers again after it is back."""
    with rsyslog.Rsyslog() as rs:
        for transport in ("tcp", "tls"):
            s = {"address": rs.address(transport), "transport": transport}
            if transport == "tls":
                s["ca_file"] = rs.ca_file
            with Daemon({"log": {"syslog": s}}, users=[("alice", [])], syslog=False) as d:
                def mine(event=None):
                    return [m for m in rs.messages(transport) if m.ok and m.procid == d.pid
                            and event in (None, m.msgid)]
                assert login_ok(d, "alice").get("type") == "login.ok"
                deadline = time.monotonic() + 10
                while not mine("login.success"):
                    assert time.monotonic() < deadline, "%s: nothing delivered before the " \
                        "restart" % transport
                    time.sleep(0.1)
                failed0 = d.metric("gatehouse_syslog_failed_total")
                rs.stop()
                for _ in range(2):
                    w = WS(d.g.signaling_port)
                    r = w.login("alice", "while-down")
                    w.close()
                    assert r.get("code") == "auth_failed", "login while the collector is down: %r" % r
                run(sc.fresh_ping(d.g))
                # What the collector missed is counted.
                deadline = time.monotonic() + 10
                while d.metric("gatehouse_syslog_failed_total") <= failed0:
                    assert time.monotonic() < deadline, "%s: gatehouse_syslog_failed_total " \
                        "stayed at %d while the collector was down" % (transport, failed0)
                    time.sleep(0.2)
                rs.restart()
                n0 = len(mine())
                t0 = time.monotonic()
                tries = 0
                while len(mine()) == n0:
                    assert time.monotonic() - t0 < 15, "%s: nothing delivered within 15 s of " \
                        "the collector's restart (%d events made)\n%s" % (
                            transport, tries, gh.tail(d.g.log(), 10))
                    w = WS(d.g.signaling_port)
                    w.login("alice", "after-restart-%d" % tries)
                    w.close()
                    tries += 1
                    time.sleep(0.3)
                print("  %s: delivering again %.1f s after the restart (%d events made, "
                      "%d lost)" % (transport, time.monotonic() - t0, tries,
                                    tries - (len(mine()) - n0)), flush=True)


# Over UDP an event is kept within 8 KiB by default (RFC 5426 §3.2; the
# datagram limit is 65,507 bytes), over TCP and TLS within 64 KiB.
SYSLOG_DEFAULT_MAX = {"udp": 8192, "tcp": 65536}


def big_policy(names):
    """A valid policy of about 28 bytes per name: one group of them."""
    return {"default": "deny",
            "groups": {"crowd": ["member-of-the-crowd-%05d" % i for i in range(names)]},
            "rules": [{"name": "crowd", "from": "group:crowd", "to": "group:crowd",
                       "media": ["audio"], "action": "allow"}]}


def audit_line(d, event, timeout=10.0):
    """The first audit line of this event, as the file holds it (no
    newline)."""
    deadline = time.monotonic() + timeout
    while True:
        with open(d.audit_path(), encoding="utf-8") as f:
            for raw in f:
                if ('"event":"%s"' % event) in raw:
                    return raw.rstrip("\n")
        assert time.monotonic() < deadline, "no %s in the audit file" % event
        time.sleep(0.1)


def test_syslog_large_event_reduced():
    """An admin replaces the policy with one of ~110 KB through the admin
    API: the admin.policy.replace event (before and after) is larger
    than both transports' limits. At the collector it arrives as one
    valid JSON message within the limit, marked "reduced": the "after"
    policy replaced by the SHA-256 and length of its JSON text as the
    audit line holds it, the rest of the event as in the audit line, and
    the whole line's length and SHA-256 in the marker. The event right
    after it (the admin's logout, a few milliseconds later) arrives too,
    and the collector missed nothing (gatehouse_syslog_failed_total 0).
    Before, a UDP datagram over 65,507 bytes failed with EMSGSIZE, the
    sender then paused a second (the logout was lost too), and over TCP
    the JSON was cut at 64 KiB."""
    for transport in ("udp", "tcp"):
        d = Daemon(users=[("op", ["admin"])], transport=transport)
        pol = os.path.join(d.g.workdir, "policy.json")
        sc.write_policy(pol, [])
        d.g.config["policy"] = {"file": pol}
        with d:
            tok = d.admin_login("op")
            after = big_policy(4000)
            st, b = d.api("PUT", "/api/policy", after, token=tok)
            assert st == 200, "PUT /api/policy: HTTP %s %s" % (st, short(b))
            st, b = d.api("POST", "/api/logout", token=tok)
            assert st == 200, "POST /api/logout: HTTP %s %s" % (st, short(b))

            line = audit_line(d, "admin.policy.replace")
            full = json.loads(line)
            limit = SYSLOG_DEFAULT_MAX[transport]
            assert len(line) > limit, "the event (%d bytes) is not over the %s limit %d" % (
                len(line), transport, limit)

            m = d.syslog("admin.policy.replace", transport=transport)
            size = len(m.raw.encode("utf-8"))
            j = m.json()
            assert j is not None, "%s: the large event is not valid JSON at the collector " \
                "(%d bytes): ...%s" % (transport, size, m.raw[-200:])
            assert size <= limit, "%s: a message of %d bytes, over the limit %d" % (
                transport, size, limit)
            red = j.get("reduced")
            after_text = json.dumps(full["after"], separators=(",", ":"), ensure_ascii=False)
            want_after = {"sha256": hashlib.sha256(after_text.encode()).hexdigest(),
                          "bytes": len(after_text.encode())}
            problems = []
            if not isinstance(red, dict):
                problems.append("no \"reduced\" marker: %s" % short(j))
            else:
                if red.get("bytes") != len(line.encode()):
                    problems.append("reduced.bytes %r, the audit line has %d" % (
                        red.get("bytes"), len(line.encode())))
                if red.get("sha256") != hashlib.sha256(line.encode()).hexdigest():
                    problems.append("reduced.sha256 is not the audit line's SHA-256")
                if "after" not in (red.get("members") or []):
                    problems.append("reduced.members %r lacks \"after\"" % red.get("members"))
            if j.get("after") != want_after:
                problems.append("after is %s, expected %s" % (short(j.get("after")), want_after))
            for k in ("ts", "ts_ms", "event", "actor", "role", "outcome", "source", "target"):
                if j.get(k) != full.get(k):
                    problems.append("%s is %r, the audit line has %r" % (k, j.get(k), full.get(k)))
            for k, v in j.items():
                if k not in ("reduced",) and k not in (red or {}).get("members", []) and \
                        full.get(k) != v:
                    problems.append("member %s differs from the audit line" % k)
            assert not problems, "%s: the reduced admin.policy.replace:\n  %s" % (
                transport, "\n  ".join(problems))
            # The event after it is not lost, and nothing was.
            d.syslog("admin.logout", transport=transport)
            failed = d.metric("gatehouse_syslog_failed_total")
            assert failed == 0, "%s: gatehouse_syslog_failed_total %s" % (transport, failed)
            print("  %s: the %d-byte event arrived as %d bytes, reduced %s; the logout after it "
                  "too" % (transport, len(line), size, red.get("members")), flush=True)


# ------------------------------------------------------- b. SIGUSR1 reopen

def test_sigusr1_reopen():
    """logrotate's way: rename the file, SIGUSR1, and the daemon writes a
    new file at the configured path (log.audit_file, relative to the
    config file's folder)."""
    d = Daemon({"log": {"audit_file": "logs/audit.jsonl"}}, users=[("alice", [])],
               syslog=False)
    os.makedirs(os.path.join(d.g.workdir, "logs"), exist_ok=True)
    if os.geteuid() == 0:
        # The new file is made by the user the daemon dropped to
        # (gateway/privdrop.h): the folder must be that user's.
        pw = gh.run_as_user()
        os.chown(os.path.join(d.g.workdir, "logs"), pw.pw_uid, pw.pw_gid)
    path = os.path.join(d.g.workdir, "logs", "audit.jsonl")
    with d:
        assert login_ok(d, "alice").get("type") == "login.ok"
        d.wait_audit(lambda e: e.get("event") == "login.success", path=path, what="first login")
        rotated = path + ".1"
        os.rename(path, rotated)
        marker = len(d.g.log())
        os.kill(d.g.proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while "reopening the audit file" not in d.g.log()[marker:]:
            assert time.monotonic() < deadline, "no 'reopening the audit file' in the log " \
                "within 5 s of SIGUSR1:\n%s" % gh.tail(d.g.log()[marker:], 10)
            time.sleep(0.05)
        w = WS(d.g.signaling_port)
        r = w.login("alice", "after-rotation-wrong")
        w.close()
        assert r.get("code") == "auth_failed"
        assert login_ok(d, "alice").get("type") == "login.ok"
        e = d.wait_audit(lambda e: e.get("event") == "login.failure", path=path,
                         what="login.failure in the new file")
        d.wait_audit(lambda e: e.get("event") == "login.success", path=path,
                     what="second login.success in the new file")
        old = d.audit(rotated)
        assert [x.get("event") for x in old].count("login.success") == 1 and \
            not any(x.get("event") == "login.failure" for x in old), \
            "events after SIGUSR1 went to the rotated file: %s" % [x.get("event") for x in old]
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == 0o600, "the reopened audit file has mode %o, expected 600" % mode
        assert e.get("user") == "alice"


# --------------------------------------------------------- c. detectors

def test_password_guessing_user():
    over = {"alerts": {"password_guessing_user": {"window_s": 60, "threshold": 3,
                                                  "response": "lock_user", "block_s": 600}}}
    with Daemon(over, users=[("victim", []), ("op", ["operator"])]) as d:
        kind = "password_guessing_user"
        before = d.alerts_total(kind)
        assert before == 0, "counter starts at %s" % before
        failed_logins(d, "127.0.0.1", ["victim"] * 3, password="guess")
        a = d.wait_alert(kind, key="victim")
        assert a.get("response") == "lock_user" and a.get("user") == "victim" and \
            a.get("value") == 3 and a.get("threshold") == 3, "alert: %r" % a
        lock = d.wait_audit(lambda e: e.get("event") == "response.lock" and
                            e.get("user") == "victim", what="response.lock of victim")
        assert lock.get("lock_s") == 600, "response.lock: %r" % lock
        r = login_ok(d, "victim")
        assert r.get("type") == "error" and r.get("code") == "auth_failed", \
            "the locked user logged in with the right password: %r" % r
        d.wait_audit(lambda e: e.get("event") == "lockout" and e.get("user") == "victim",
                     what="lockout event for the refused right password")
        tok = d.admin_login("op")
        st, b = d.api("POST", "/api/users/victim/unlock", token=tok)
        assert st == 200, "unlock: HTTP %s %s" % (st, short(b))
        d.wait_audit(lambda e: e.get("event") == "admin.user.unlock" and
                     e.get("target") == "victim" and e.get("actor") == "op",
                     what="admin.user.unlock")
        r = login_ok(d, "victim")
        assert r.get("type") == "login.ok", "login after the unlock: %r" % r
        check_alert_metric(d, kind, before)
        check_alert_syslog(d, kind, "lock_user")
        lk = d.syslog("response.lock")
        assert lk.pri in (pri(SEV_INFO), pri(SEV_WARNING), pri(SEV_ALERT)), lk


def test_password_guessing_user_default_lock_length():
    """Only the threshold is lowered; response lock_user with the
    detector's own default duration. The lock must hold."""
    over = {"alerts": {"password_guessing_user": {"window_s": 60, "threshold": 3,
                                                  "response": "lock_user"}}}
    with Daemon(over, users=[("victim", [])]) as d:
        failed_logins(d, "127.0.0.1", ["victim"] * 3, password="guess")
        d.wait_alert("password_guessing_user", key="victim")
        lock = d.wait_audit(lambda e: e.get("event") == "response.lock",
                            what="response.lock")
        r = login_ok(d, "victim")
        assert r.get("type") != "login.ok", \
            "password_guessing_user fired with response lock_user, but the user logged in " \
            "right after with the right password: the default lock length is %r s (%r)" % (
                lock.get("lock_s"), lock)


def test_block_source_default_length():
    """A detector whose default response is not block_source, switched to
    block_source without block_s: the block must last some time."""
    over = {"alerts": {"password_guessing_user": {"window_s": 60, "threshold": 3,
                                                  "response": "block_source"}}}
    with Daemon(over, users=[("victim", [])]) as d:
        failed_logins(d, "127.0.0.7", ["victim"] * 3, password="guess", blocks=True)
        d.wait_alert("password_guessing_user", key="victim")
        blk = d.wait_audit(lambda e: e.get("event") == "response.block", what="response.block")
        st = upgrade_status(d, "127.0.0.7")
        assert st == 403, \
            "password_guessing_user fired with response block_source, but 127.0.0.7 still " \
            "upgrades (HTTP %s) right after: the block lasts %r s (%r)" % (
                st, blk.get("block_s"), blk)


def test_detector_windows_ignore_wall_clock_steps():
    """A detector's window is a duration, on the monotonic clock: a
    forward step of the system clock does not forget what a window holds,
    and a backward step does not keep it past its length (the detectors
    hold each key's time at its latest, so on the wall clock a window
    would not slide until the clock caught up: any three failures within
    the step's length would raise the alert)."""
    kind = "password_guessing_source"
    # Three checked logins must fit in the window, slow daemons included.
    window = int(3 * gh.slow_factor())
    over = {"alerts": {kind: {"window_s": window, "threshold": 3, "response": "none"}}}
    with gh.WallShift() as shift:
        d = Daemon(over, syslog=False)
        shift.wrap(d.g)
        with d:
            # Forwards: two failures, a step of a day, a third: one window.
            failed_logins(d, "127.0.0.21", ["nobody1", "nobody2"])
            shift.step(86400 * 1000)
            failed_logins(d, "127.0.0.21", ["nobody3"])
            a = d.wait_alert(kind, key="127.0.0.21")
            assert a.get("value") == 3, "alert: %r" % a
            # Backwards: a failure, a step back of two days (one behind the
            # real clock), then two more a window and a half apart: never
            # three in one window.
            failed_logins(d, "127.0.0.22", ["nobody4"])
            shift.step(-86400 * 1000)
            failed_logins(d, "127.0.0.22", ["nobody5"])
            time.sleep(window + 0.5)
            failed_logins(d, "127.0.0.22", ["nobody6"])
            d.wait_audit(lambda e: e.get("event") == "login.failure" and
                         e.get("user") == "nobody6", what="the failure of nobody6")
            time.sleep(1.0)
            late = [e for e in d.audit() if e.get("event") == "alert" and
                    e.get("key") == "127.0.0.22"]
            assert not late, "three failures over %.1f s raised a %d s window's alert " \
                "after the clock stepped back: %r" % (window + 0.5, window, late)


def test_block_length_ignores_wall_clock_steps():
    """A block lasts block_s of real time (the monotonic clock): a forward
    step of the system clock does not lift it, and a backward step does
    not lengthen it."""
    kind = "password_guessing_source"
    # Long enough for the checks below, slow daemons included.
    block_s = int(4 * gh.slow_factor())
    over = {"alerts": {kind: {"window_s": 60, "threshold": 2, "response": "block_source",
                              "block_s": block_s}}}
    with gh.WallShift() as shift:
        d = Daemon(over, syslog=False)
        shift.wrap(d.g)
        with d:
            failed_logins(d, "127.0.0.23", ["nobody1", "nobody2"], blocks=True)
            d.wait_audit(lambda e: e.get("event") == "response.block" and
                         e.get("source") == "127.0.0.23", what="the block of 127.0.0.23")
            shift.step(86400 * 1000)
            assert upgrade_status(d, "127.0.0.23") == 403, \
                "a step of the clock a day forward lifted a %d s block" % block_s
            failed_logins(d, "127.0.0.24", ["nobody3", "nobody4"], blocks=True)
            d.wait_audit(lambda e: e.get("event") == "response.block" and
                         e.get("source") == "127.0.0.24", what="the block of 127.0.0.24")
            blocked_at = time.monotonic()
            shift.step(-86400 * 1000)
            assert upgrade_status(d, "127.0.0.24") == 403, "127.0.0.24 is not blocked"
            while upgrade_status(d, "127.0.0.24") != 101:
                assert time.monotonic() - blocked_at < 2.5 * block_s, \
                    "a %d s block still holds %.0f s on, after a step of the clock back" % (
                        block_s, 2.5 * block_s)
                time.sleep(0.2)


def open_session(d, name, src):
    """A logged-in signaling session of name from src, left open."""
    u = d.users[name]
    w = WS(d.g.signaling_port, src)
    assert w.status == 101, "upgrade from %s: HTTP %s" % (src, w.status)
    r = w.login(u.name, u.password, u.next_totp())
    assert r.get("type") == "login.ok", "login of %s from %s: %r" % (name, src, r)
    return w


def check_source_closed(d, src, sessions, allocations, kept=()):
    """A block of src ended what src had open: every signaling session in
    sessions is closed by the server, and allocations (their relayed
    addresses) are deleted with reason "source blocked"; the sessions in
    kept, from other addresses, stay open."""
    for w in sessions:
        assert w.wait_closed(5.0), "a signaling session from blocked %s is still open" % src
    for relayed in allocations:
        e = d.wait_audit(lambda e: e.get("event") == "allocation.deleted" and
                         e.get("relayed") == "%s:%d" % relayed,
                         what="allocation.deleted of %s:%d" % relayed)
        assert e.get("reason") == "source blocked" and \
            e.get("source", "").startswith(src + ":"), "%r" % e
    for w in kept:
        assert not w.wait_closed(0.5), "a session from another address was closed too"


def test_password_guessing_source():
    """Blocked from the main thread (signaling events): the block also
    closes the source's open session and deletes its allocation."""
    kind = "password_guessing_source"
    over = {"alerts": {kind: {"window_s": 60, "threshold": 4, "response": "block_source",
                              "block_s": 30}}}
    with Daemon(over, users=[("alice", []), ("op", ["operator"])]) as d:
        before = d.alerts_total(kind)
        open_from_2 = open_session(d, "alice", "127.0.0.2")
        open_from_1 = open_session(d, "alice", "127.0.0.1")
        c = tc.TurnClient("127.0.0.1", d.g.port, "udp", "bench", "secret",
                          local=("127.0.0.2", 0))
        try:
            r = c.allocate()
            assert r is not None and r.ok, "Allocate from 127.0.0.2: %r" % r
            failed_logins(d, "127.0.0.2", ["nobody1", "nobody2", "alice", "nobody3"],
                          blocks=True)
            a = d.wait_alert(kind, key="127.0.0.2")
            check_source_closed(d, "127.0.0.2", [open_from_2], [c.relayed],
                                kept=[open_from_1])
        finally:
            c.close(release=False)
            open_from_2.close()
            open_from_1.close()
        assert a.get("response") == "block_source" and a.get("block_s") == 30 and \
            a.get("source") == "127.0.0.2" and a.get("value") == 4, "alert: %r" % a
        blk = d.wait_audit(lambda e: e.get("event") == "response.block" and
                           e.get("source") == "127.0.0.2", what="response.block")
        assert blk.get("block_s") == 30 and blk.get("reason") == kind, "%r" % blk
        # The source is refused at signaling and at the relay ...
        st = upgrade_status(d, "127.0.0.2")
        assert st == 403, "WebSocket upgrade from the blocked 127.0.0.2: HTTP %s" % st
        assert not turn_answers(d, "127.0.0.2"), "the relay answered the blocked 127.0.0.2"
        # ... 127.0.0.1 is not.
        assert upgrade_status(d, "127.0.0.1") == 101
        assert turn_answers(d, "127.0.0.1"), "the relay ignores 127.0.0.1 too"
        assert login_ok(d, "alice").get("type") == "login.ok"
        tok = d.admin_login("op")
        st, b = d.api("GET", "/api/blocks", token=tok)
        rows = b.get("blocks") if isinstance(b, dict) else b
        assert st == 200 and isinstance(rows, list), "GET /api/blocks: %s %s" % (st, short(b))
        row = [x for x in rows if x.get("source") == "127.0.0.2"]
        assert row, "GET /api/blocks does not list 127.0.0.2: %s" % short(b)
        left = row[0].get("until_ms", 0) / 1000.0 - time.time()
        assert 0 < left <= 31, "block of 127.0.0.2 ends in %.1f s, expected <= 30" % left
        assert row[0].get("reason") == kind, "block reason %r" % row[0].get("reason")
        st, b = d.api("DELETE", "/api/blocks/127.0.0.2", token=tok)
        assert st == 200, "DELETE /api/blocks/127.0.0.2: HTTP %s %s" % (st, short(b))
        d.wait_audit(lambda e: e.get("event") == "admin.block.remove" and
                     e.get("target") == "127.0.0.2" and e.get("actor") == "op",
                     what="admin.block.remove of 127.0.0.2 by op")
        st, b = d.api("GET", "/api/blocks", token=tok)
        assert not [x for x in (b.get("blocks") or []) if x.get("source") == "127.0.0.2"], \
            "still listed after DELETE: %s" % short(b)
        assert upgrade_status(d, "127.0.0.2") == 101, "127.0.0.2 still refused after the unblock"
        assert turn_answers(d, "127.0.0.2"), "the relay still ignores 127.0.0.2 after the unblock"
        assert login_ok(d, "alice", "127.0.0.2").get("type") == "login.ok"
        st, b = d.api("DELETE", "/api/blocks/127.0.0.2", token=tok)
        assert st == 404, "a second DELETE: HTTP %s %s" % (st, short(b))
        check_alert_metric(d, kind, before)
        check_alert_syslog(d, kind, "block_source")


def test_credential_stuffing():
    kind = "credential_stuffing"
    over = {"alerts": {kind: {"window_s": 300, "threshold": 3, "response": "block_source",
                              "block_s": 4}}}
    with Daemon(over) as d:
        before = d.alerts_total(kind)
        failed_logins(d, "127.0.0.5", ["anna", "anna", "bert"])
        time.sleep(0.5)
        assert not [e for e in d.audit() if e.get("event") == "alert" and e.get("kind") == kind], \
            "credential_stuffing fired on two distinct users (threshold 3)"
        failed_logins(d, "127.0.0.5", ["chris"], blocks=True)
        a = d.wait_alert(kind, key="127.0.0.5")
        assert a.get("response") == "block_source" and a.get("value") == 3, "alert: %r" % a
        d.wait_audit(lambda e: e.get("event") == "response.block" and
                     e.get("source") == "127.0.0.5", what="response.block of 127.0.0.5")
        assert upgrade_status(d, "127.0.0.5") == 403, "blocked 127.0.0.5 still upgrades"
        assert upgrade_status(d, "127.0.0.1") == 101
        # block_s 4: the block ends by itself.
        blk = [e for e in d.audit() if e.get("event") == "response.block"][0]
        time.sleep(max(0.0, blk["ts_ms"] / 1000.0 + 4.5 - time.time()))
        st = upgrade_status(d, "127.0.0.5")
        assert st == 101, "127.0.0.5 still refused (HTTP %s) after its 4 s block" % st
        check_alert_metric(d, kind, before)
        check_alert_syslog(d, kind, "block_source")


def test_relay_scanning():
    kind = "relay_scanning"
    over = {"alerts": {kind: {"window_s": 60, "threshold": 5, "response": "block_source",
                              "block_s": 30}}}
    with Daemon(over) as d:
        before = d.alerts_total(kind)
        c = tc.TurnClient("127.0.0.1", d.g.port, "udp", "bench", "secret",
                          local=("127.0.0.3", 0))
        try:
            r = c.allocate()
            assert r is not None and r.ok, "Allocate from 127.0.0.3: %r" % r
            # Internal addresses only inside the requests: the relay must
            # refuse them and send nothing there.
            for i in range(5):
                r = c.create_permission([("10.0.0.%d" % (i + 1), 9)])
                assert r is not None and r.code == 403, "CreatePermission 10.0.0.%d: %r" % (i + 1, r)
        finally:
            c.close(release=False)
        a = d.wait_alert(kind, key="127.0.0.3")
        assert a.get("response") == "block_source" and a.get("user") == "bench" and \
            a.get("value") == 5, "alert: %r" % a
        d.wait_audit(lambda e: e.get("event") == "response.block" and
                     e.get("source") == "127.0.0.3", what="response.block of 127.0.0.3")
        # Blocked from the relay thread: the scanner's allocation is deleted
        # (by the main thread, after the relay's batch).
        check_source_closed(d, "127.0.0.3", [], [c.relayed])
        refused = [e for e in d.audit() if e.get("event") == "permission.refused"]
        assert len(refused) == 5, "%d permission.refused events" % len(refused)
        assert not turn_answers(d, "127.0.0.3"), "the relay still answers the scanner 127.0.0.3"
        assert turn_answers(d, "127.0.0.1"), "the relay ignores 127.0.0.1"
        assert upgrade_status(d, "127.0.0.3") == 403, "scanner 127.0.0.3 may still use signaling"
        check_alert_metric(d, kind, before)
        check_alert_syslog(d, kind, "block_source")


def test_traffic_spike():
    """Two allocations of the static user relay to each other (relay to
    relay on 127.0.0.1) far above a 200 kB/s cap. The response, end_call,
    has no call to end (a static user has none): the log line says it is
    not applied, and the allocations go on relaying."""
    kind = "traffic_spike"
    over = {"alerts": {kind: {"window_s": 10, "threshold": 200000, "response": "end_call"}}}
    with Daemon(over) as d:
        before = d.alerts_total(kind)
        a = tc.TurnClient("127.0.0.1", d.g.port, "udp", "bench", "secret")
        b = tc.TurnClient("127.0.0.1", d.g.port, "udp", "bench", "secret")
        try:
            for c in (a, b):
                r = c.allocate()
                assert r is not None and r.ok, "Allocate: %r" % r
            r = a.create_permission([b.relayed])
            assert r is not None and r.ok, "A's permission for B's relay: %r" % r
            r = b.create_permission([a.relayed])
            assert r is not None and r.ok, "B's permission for A's relay: %r" % r
            r = a.channel_bind(0x4000, b.relayed)
            assert r is not None and r.ok, "ChannelBind: %r" % r
            a.send_channel(0x4000, b"hello")
            got = b.recv_data(2.0)
            assert got is not None and got[2] == b"hello", "relay to relay: B got %r" % (got,)
            payload = os.urandom(1000)
            frame = tc.channel_data(0x4000, payload)
            a.sock.setblocking(True)
            sent = 0
            t0 = time.monotonic()
            alert = None
            # ~2 MB/s (10x the cap) for at most 8 s, stopping at the alert.
            while time.monotonic() - t0 < 8.0 and alert is None:
                for _ in range(100):
                    try:
                        a.sock.send(frame)
                        sent += len(payload)
                    except OSError:
                        pass
                time.sleep(0.05)
                al = [e for e in d.audit() if e.get("event") == "alert" and e.get("kind") == kind]
                alert = al[0] if al else None
            took = time.monotonic() - t0
            print("  sent %d bytes in %.1f s (%.0f B/s) until the alert" % (sent, took, sent / took),
                  flush=True)
            al = d.wait_alert(kind)
            keys = {"%s:%d" % a.relayed, "%s:%d" % b.relayed}
            assert al.get("key") in keys, "alert key %r is not one of the allocations %s" % (
                al.get("key"), keys)
            assert al.get("response") == "end_call" and al.get("threshold") == 200000 and \
                al.get("value", 0) > 200000 and al.get("user") == "bench" and \
                "call" not in al, "alert: %r" % al
            assert "response end_call (not applied: the alert names no call)" in d.g.log(), \
                "the alert's log line:\n%s" % gh.tail(d.g.log(), 10)
            assert not any(e.get("event") == "response.end_call" for e in d.audit()), \
                "an end_call response was audited for a static user's allocation"
            time.sleep(0.5)
            while b.recv_data(0.2) is not None:
                pass    # what was still in flight
            a.send_channel(0x4000, b"still relaying")
            got = b.recv_data(2.0)
            assert got is not None and got[2] == b"still relaying", \
                "after the alert, B got %r" % (got,)
        finally:
            a.close()
            b.close()
        check_alert_metric(d, kind, before)
        check_alert_syslog(d, kind, "end_call")


def test_traffic_spike_ends_call():
    """A call's allocation relays above the cap: the alert is raised while
    the daemon walks its allocations once a second, and its response,
    end_call, frees both allocations of the call, the walk's next one
    among them. The response waits until the walk is over (under ASan a
    use after free would be reported here): the call ends with reason
    alert, both allocations go, and the daemon goes on serving."""
    kind = "traffic_spike"
    over = {"alerts": {kind: {"window_s": 10, "threshold": 200000, "response": "end_call"}}}
    d = Daemon(over, users=[("alice", ["team"]), ("bob", ["team"])])
    pol = os.path.join(d.g.workdir, "policy.json")
    sc.write_policy(pol, [{"name": "team", "from": "group:team", "to": "group:team",
                           "media": ["audio"], "action": "allow"}], {"team": ["alice", "bob"]})
    d.g.config["policy"] = {"file": pol}
    with d:
        async def body():
            ca, cb, cid, ta, tb = await sc.call_with_allocations(d.g, d.users, "alice", "bob")
            try:
                rtp = b"\x80\x6f" + os.urandom(998)
                t0 = time.monotonic()
                # ~1 MB/s (5x the cap) for at most 8 s, stopping at the end.
                ended = None
                while time.monotonic() - t0 < 8.0 and ended is None:
                    for _ in range(50):
                        ta.send_indication(tb.relayed, rtp)
                    await asyncio.sleep(0.05)
                    ended = [m for m in ca.inbox if m.get("type") == "hangup"]
                    ended = ended or None
                for c in (ca, cb):
                    m = await c.wait_for("hangup", call=cid)
                    assert m.get("reason") == "alert", "hangup: %r" % m
                while await sc.in_thread(tb.recv_data, 0.2) is not None:
                    pass    # what was still in flight
                # The call's credentials are revoked (401) and its
                # allocations gone (437): nothing is relayed any more.
                for t in (ta, tb):
                    r = await sc.in_thread(t.refresh, 600)
                    assert r is not None and r.code in (401, 437), \
                        "the call's allocation outlived it: Refresh %r" % (r,)
                ta.send_indication(tb.relayed, rtp)
                got = await sc.in_thread(tb.recv_data, 1.0)
                assert got is None, "relayed after the call ended: %r" % (got,)
            finally:
                ta.close(release=False)
                tb.close(release=False)
                await ca.close()
                await cb.close()
            await sc.fresh_ping(d.g)
            return cid
        cid = run(body())
        al = d.wait_alert(kind)
        assert al.get("response") == "end_call" and al.get("call") == cid, "alert: %r" % al
        d.wait_audit(lambda e: e.get("event") == "response.end_call" and e.get("call") == cid,
                     what="response.end_call of the call")
        assert d.g.alive(), "the daemon died"


def test_signaling_flood():
    kind = "signaling_flood"
    over = {"alerts": {kind: {"window_s": 60, "threshold": 3, "response": "block_source",
                              "block_s": 30}}}
    with Daemon(over) as d:
        before = d.alerts_total(kind)
        for i in range(3):
            w = WS(d.g.signaling_port, "127.0.0.4")
            try:
                assert w.status == 101, "session %d from 127.0.0.4: HTTP %s" % (i + 1, w.status)
                for j in range(5):
                    w.send_text("garbage %d-%d {" % (i, j))
                assert w.wait_closed(5), "session %d not closed after 5 bad requests" % (i + 1)
            finally:
                w.close()
        a = d.wait_alert(kind, key="127.0.0.4")
        assert a.get("response") == "block_source" and a.get("value") == 3, "alert: %r" % a
        abuse = [e for e in d.audit() if e.get("event") == "session.abuse"]
        assert len(abuse) == 3, "%d session.abuse events" % len(abuse)
        d.wait_audit(lambda e: e.get("event") == "response.block" and
                     e.get("source") == "127.0.0.4", what="response.block of 127.0.0.4")
        assert upgrade_status(d, "127.0.0.4") == 403, "flooder 127.0.0.4 still upgrades"
        assert upgrade_status(d, "127.0.0.1") == 101
        check_alert_metric(d, kind, before)
        check_alert_syslog(d, kind, "block_source")


def test_call_fanout():
    kind = "call_fanout"
    over = {"alerts": {kind: {"window_s": 60, "threshold": 5, "response": "none"}}}
    d = Daemon(over, users=[("alice", ["team"]), ("bob", ["team"])])
    pol = os.path.join(d.g.workdir, "policy.json")
    sc.write_policy(pol, [{"name": "team", "from": "group:team", "to": "group:team",
                           "media": ["audio"], "action": "allow"}], {"team": ["alice", "bob"]})
    d.g.config["policy"] = {"file": pol}
    with d:
        before = d.alerts_total(kind)

        async def body():
            ca = await sc.logged_in(d.g, d.users["alice"])
            cb = await sc.logged_in(d.g, d.users["bob"])
            try:
                for i in range(5):
                    r = await ca.request({"type": "call", "to": "bob", "media": ["audio"]})
                    assert r.get("type") == "call.ok", "call %d: %r" % (i + 1, r)
                    await cb.wait_for("incoming", call=r["call"])
                    await ca.send({"type": "hangup", "call": r["call"]})
                    await cb.wait_for("hangup", call=r["call"])
            finally:
                await ca.close()
                await cb.close()
        run(body())
        a = d.wait_alert(kind, key="alice")

        async def more():
            ca = await sc.logged_in(d.g, d.users["alice"])
            try:
                for i in range(3):   # bob is offline now: still calls placed
                    r = await ca.request({"type": "call", "to": "bob", "media": ["audio"]})
                    assert r.get("type") == "error", "call to offline bob: %r" % r
            finally:
                await ca.close()
        run(more())
        time.sleep(0.5)
        n = [e for e in d.audit() if e.get("event") == "alert" and e.get("kind") == kind]
        assert len(n) == 1, "call_fanout fired %d times in one window (8 calls)" % len(n)
        assert a.get("response") == "none" and a.get("user") == "alice" and \
            a.get("value") == 5, "alert: %r" % a
        assert not [e for e in d.audit() if e.get("event", "").startswith("response.")], \
            "call_fanout with response none ran a response"
        check_alert_metric(d, kind, before)
        check_alert_syslog(d, kind, "none")


# ----------------------------------------------------------- d. webhook

class _Hook(http.server.BaseHTTPRequestHandler):
    got = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        _Hook.got.append((self.path, dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_alert_webhook():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    port = srv.server_address[1]
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        url = "http://127.0.0.1:%d/gatehouse/alerts" % port
        over = {"alerts": {"webhook": url,
                           "relay_scanning": {"window_s": 60, "threshold": 2, "response": "none"}}}
        d = Daemon(over, syslog=False)
        sc.write_config(d.g)
        p = subprocess.run([d.g.binary, "check-config", "-c", d.g.config_path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = p.stdout.decode("utf-8", "replace").strip()
        if p.returncode != 0:
            gh.release_relay_window(d.g._window_fd)
            d.g._window_fd = None
            shutil.rmtree(d.g.workdir, ignore_errors=True)
        assert p.returncode == 0, "FEATURE MISSING: alerts.webhook is not accepted by " \
            "`gatehouse check-config` (exit %d: %s)" % (p.returncode, out)
        with d:
            c = tc.TurnClient("127.0.0.1", d.g.port, "udp", "bench", "secret",
                              local=("127.0.0.6", 0))
            try:
                assert c.allocate().ok
                for i in range(2):
                    c.create_permission([("10.0.0.%d" % (i + 1), 9)])
            finally:
                c.close(release=False)
            a = d.wait_alert("relay_scanning", key="127.0.0.6")
            deadline = time.monotonic() + 10
            while not _Hook.got and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _Hook.got, "no POST at the webhook within 10 s of the alert %r" % a
            path, headers, body = _Hook.got[0]
            assert path == "/gatehouse/alerts", "webhook POSTed to %r" % path
            ct = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
            assert ct.startswith("application/json"), "webhook Content-Type %r" % ct
            j = json.loads(body)
            for k in ("kind", "key", "response", "value", "threshold"):
                assert j.get(k) == a.get(k), "webhook %s=%r, the alert has %r (%s)" % (
                    k, j.get(k), a.get(k), short(j))
    finally:
        srv.shutdown()
        srv.server_close()


def test_webhook_slow_receiver_does_not_hold_audit():
    """A webhook receiver that takes the connection but never answers
    (a hung SOAR relay) must not hold up the audit trail: an event made
    right after three alerts is in the audit file within 3 s."""
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(64)          # never accept()ed: connects succeed, nobody answers
    port = lst.getsockname()[1]
    try:
        over = {"alerts": {"webhook": "http://127.0.0.1:%d/hook" % port,
                           "relay_scanning": {"window_s": 60, "threshold": 1, "response": "none"}}}
        d = Daemon(over, syslog=False)
        sc.write_config(d.g)
        p = subprocess.run([d.g.binary, "check-config", "-c", d.g.config_path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if p.returncode != 0:
            gh.release_relay_window(d.g._window_fd)
            d.g._window_fd = None
            shutil.rmtree(d.g.workdir, ignore_errors=True)
        assert p.returncode == 0, "FEATURE MISSING: alerts.webhook refused by check-config: %s" % (
            p.stdout.decode("utf-8", "replace").strip())
        with d:
            for src in ("127.0.0.8", "127.0.0.9", "127.0.0.10"):
                c = tc.TurnClient("127.0.0.1", d.g.port, "udp", "bench", "secret",
                                  local=(src, 0))
                try:
                    assert c.allocate().ok
                    r = c.create_permission([("10.0.0.1", 9)])
                    assert r is not None and r.code == 403, "%r" % r
                finally:
                    c.close(release=False)
            t0 = time.monotonic()
            c = tc.TurnClient("127.0.0.1", d.g.port, "udp", "bench", "secret")
            try:
                assert c.allocate().ok
                relayed = "%s:%d" % c.relayed
                d.wait_audit(lambda e: e.get("event") == "allocation.created" and
                                 e.get("relayed") == relayed, timeout=20,
                                 what="allocation.created of %s" % relayed)
                took = time.monotonic() - t0
            finally:
                c.close(release=False)
            n = len([x for x in d.audit() if x.get("event") == "alert"])
            print("  %d alerts; the next event reached the audit file after %.1f s" % (n, took),
                  flush=True)
            assert took < 3.0, "with a webhook receiver that does not answer, an event made " \
                "after %d alerts reached the audit file only %.1f s later: the webhook POST " \
                "(2 s timeout) runs on the audit writer thread and holds up the audit file " \
                "and syslog behind it" % (n, took)
    finally:
        lst.close()


# ----------------------------------------------------------------- main

def _stop_rs():
    if RS is not None:
        RS.stop()


def main():
    global ARGS, RS
    ARGS = gh.main_args()
    RS = rsyslog.Rsyslog()
    RS.start()
    atexit.register(_stop_rs)
    ok = False
    try:
        gh.run_tests([
            test_syslog_udp,
            test_syslog_tcp,
            test_syslog_tls,
            test_syslog_tls_wrong_ca,
            test_syslog_tls_cert_for_other_ip,
            test_syslog_no_injection,
            test_syslog_collector_restart,
            test_syslog_large_event_reduced,
            test_sigusr1_reopen,
            test_password_guessing_user,
            test_password_guessing_user_default_lock_length,
            test_block_source_default_length,
            test_password_guessing_source,
            test_detector_windows_ignore_wall_clock_steps,
            test_block_length_ignores_wall_clock_steps,
            test_credential_stuffing,
            test_relay_scanning,
            test_traffic_spike,
            test_traffic_spike_ends_call,
            test_signaling_flood,
            test_call_fanout,
            test_alert_webhook,
            test_webhook_slow_receiver_does_not_hold_audit,
        ])
    except SystemExit as e:
        ok = e.code == 0
        raise
    finally:
        RS.stop()
        if ok:
            RS.cleanup()
        else:
            sys.stderr.write("kept rsyslog workdir: %s\n" % RS.workdir)


if __name__ == "__main__":
    main()
