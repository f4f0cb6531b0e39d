#!/usr/bin/python3
"""A small blocking client for Gatehouse's admin API (gateway/admin.h).

    api = AdminClient(g)                              # http://127.0.0.1:<g.admin_port>
    st, body = api.call("GET", "/api/health")         # (status, parsed JSON or raw text)
    tok = api.login(user)                             # sigclient.User; asserts 200
    st, body = api.call("GET", "/api/users", token=tok)
    events = read_audit(g)                            # state_dir/audit.jsonl, parsed

Every request is a new connection (the API is request/response; this
keeps one test's failure from poisoning the next). api.transcript keeps
the last requests and answers, for assertion messages.

Standard library only (and gh.py, next to it). Traffic goes to 127.0.0.1 only.
"""

import http.client
import json
import os
import time
import urllib.parse

import gh  # slow_factor(): logins (argon2id) take seconds under valgrind

TIMEOUT = 10.0 * gh.slow_factor()
STEPUP_S = 300     # ADMIN_STEPUP_S, gateway/admin.h


def _short(obj, limit=400):
    s = obj if isinstance(obj, str) else json.dumps(obj)
    return s if len(s) <= limit else s[:limit] + "...(%d chars)" % len(s)


class AdminClient:
    def __init__(self, g, host="127.0.0.1"):
        self.g = g
        self.host = host
        self.port = g.admin_port
        self.transcript = []
        self.stepped_up = {}    # token -> when a code of its admin was accepted

    @property
    def origin(self):
        """The API's own origin (allowed on browser requests)."""
        return "http://127.0.0.1:%d" % self.port

    def call(self, method, path, body=None, token=None, origin=None, headers=None,
             raw=None, query=None, timeout=None):
        """One request. body: a JSON-able object (sent as JSON) unless raw
        (bytes/str, sent as is) is given; timeout in seconds, TIMEOUT when
        not given. Returns (status, parsed JSON or the text when it is not
        JSON)."""
        h = {}
        data = None
        if raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
        elif body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            h["Content-Type"] = "application/json"
        if token is not None:
            h["Authorization"] = "Bearer %s" % token
        if origin is not None:
            h["Origin"] = origin
        h.update(headers or {})
        if query:
            path = path + "?" + urllib.parse.urlencode(query)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout or TIMEOUT)
        try:
            # By hand, so that a request without a body carries no
            # Content-Length at all (as curl -X POST sends it), unless
            # the caller sets one in headers.
            conn.putrequest(method, path, skip_accept_encoding=True)
            if data is not None and not any(k.lower() == "content-length" for k in h):
                h["Content-Length"] = str(len(data))
            for k, v in h.items():
                conn.putheader(k, v)
            conn.endheaders(data)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            status = resp.status
            self.last_headers = dict((k.lower(), v) for k, v in resp.getheaders())
        finally:
            conn.close()
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        self.transcript.append("%s %s%s -> %d %s" % (
            method, path, " (Origin %s)" % origin if origin else "", status, _short(parsed, 300)))
        del self.transcript[:-30]
        return status, parsed

    def describe(self, last=12):
        return "\n".join(["  admin API transcript (last %d):" % last] +
                         ["    " + t for t in self.transcript[-last:]])

    def expect(self, want, method, path, **kw):
        """call() and assert the status; returns the body."""
        st, b = self.call(method, path, **kw)
        assert st == want, "%s %s: HTTP %d %s, expected %d\n%s" % (
            method, path, st, _short(b), want, self.describe())
        return b

    def add_user(self, token, actor, body, want=200):
        """POST /api/users as admin actor (a sigclient.User) with token:
        with actor's next TOTP code unless this token's step-up window
        (opened by its last accepted code, ADMIN_STEPUP_S) is still open
        for a good while. Asserts the status; returns the body."""
        opened = self.stepped_up.get(token)
        if opened is None or time.monotonic() - opened > STEPUP_S - 60:
            body = dict(body, actor_totp=actor.next_totp())
        st, b = self.call("POST", "/api/users", body=body, token=token)
        if st == 200 and "actor_totp" in body:
            self.stepped_up[token] = time.monotonic()
        assert st == want, "POST /api/users: HTTP %d %s, expected %d\n%s" % (
            st, _short(b), want, self.describe())
        return b

    def login_raw(self, user, password, code, origin=None):
        body = {"user": user, "password": password}
        if code is not None:
            body["totp"] = code
        return self.call("POST", "/api/login", body=body, origin=origin)

    def login(self, u, expect_role=None):
        """Logs a sigclient.User in with a fresh code; asserts 200 and the
        answer's shape. Returns the token."""
        st, b = self.login_raw(u.name, u.password, u.next_totp())
        assert st == 200 and isinstance(b, dict) and b.get("token"), \
            "admin login of %s: HTTP %d %s\n%s" % (u.name, st, _short(b), self.describe())
        assert b.get("user") == u.name, "login answer names %r, not %s" % (b.get("user"), u.name)
        if expect_role is not None:
            assert b.get("role") == expect_role, "login of %s: role %r, expected %r" % (
                u.name, b.get("role"), expect_role)
        return b["token"]


def audit_path(g):
    return g.config.get("log", {}).get("audit_file") or os.path.join(g.state_dir, "audit.jsonl")


def fill_audit(g, lines):
    """Appends lines synthetic call records to g's audit file, as a
    gateway that has run for a while has them: users u000000..u004999,
    one record 100 ms after the other, the last one now."""
    t0 = int(time.time() * 1000) - lines * 100
    with open(audit_path(g), "a") as f:
        for i in range(lines):
            f.write(json.dumps({
                "ts": "2026-11-27T00:00:00.000Z", "ts_ms": t0 + i * 100, "event": "call.end",
                "outcome": "success", "user": "u%06d" % (i % 5000), "call": "c%012d" % i,
                "peer": "u%06d" % ((i + 1) % 5000), "media": ["audio", "video"],
                "reason": "hangup", "duration_s": 61, "bytes_relayed": 1234567},
                separators=(",", ":")) + "\n")


def read_audit(g):
    """Every event of the audit file, parsed (lines that do not parse are
    returned as {"event": "<unparsable>", "raw": line})."""
    out = []
    try:
        with open(audit_path(g), "r", encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append({"event": "<unparsable>", "raw": line})
    except FileNotFoundError:
        pass
    return out


def secret_of(otpauth):
    """The base32 secret of an otpauth:// URI."""
    q = urllib.parse.urlparse(otpauth).query
    vals = urllib.parse.parse_qs(q).get("secret")
    assert vals and vals[0], "no secret in %r" % otpauth
    return vals[0]
