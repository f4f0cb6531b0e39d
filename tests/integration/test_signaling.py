#!/usr/bin/python3
"""Negative and protocol tests of Gatehouse's signaling (DESIGN.md,
"Signaling protocol") and of what a call's TURN credentials may reach.

Every test asserts the safe outcome and then that the daemon still
serves: a fresh connection gets pong for ping.

Most tests share one daemon (users with password + TOTP, mfa required,
a policy that lets group "team" call each other); the JWT and the
configured-Origin tests start their own. The last test stops the shared
daemon and asserts a clean exit (code 0, no sanitizer report).

GH_TESTS=name,... selects tests; GH_SKIP_RING=1 skips the two 30 s
ringing timeout tests.
"""

import asyncio
import atexit
import concurrent.futures
import hashlib
import hmac
import json
import logging
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402
from gh import with_log  # noqa: E402
from der import b64u, der_read, der_children  # noqa: E402
import sigclient as sc  # noqa: E402
import turnclient as tc  # noqa: E402

import aiohttp  # noqa: E402

ARGS = None
TEAM = ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank",
        "ivan", "judy", "ken", "lena", "olga", "pete", "quinn", "rose", "sam",
        "tina", "uma", "vic", "wes", "xena",
        "amy", "ben", "cat", "dan", "eve", "fay", "gus",
        "hal", "ida", "jon", "kim", "leo", "mia", "ned", "oto", "pam", "quy", "ria"]
OTHERS = ["victim", "mallory", "locky"]
HOST_IP = "192.168.77.10"      # a "private host address" that must never be forwarded
SRFLX_IP = "198.51.100.7"      # documentation ranges: never contacted
OTHER_TURN_IP = "203.0.113.9"


# ------------------------------------------------------------- fixtures

class _Shared:
    g = None
    users = {}


S = _Shared()


def password_of(name):
    return "pw-%s-0123456789" % name


def shared():
    """The shared daemon, started on first use with every user created."""
    if S.g is not None:
        return S.g
    g = gh.Gatehouse(ARGS.gatehouse)
    policy = os.path.join(g.workdir, "policy.json")
    g.config["policy"] = {"file": policy}
    sc.write_policy(policy, [
        {"name": "team-calls", "from": "group:team", "to": "group:team",
         "media": ["audio", "video", "data", "screen"], "action": "allow"},
        {"name": "no-outsiders", "from": "group:outsiders", "to": "*",
         "media": ["audio", "video", "data", "screen"], "action": "deny"},
    ], {"team": TEAM, "outsiders": ["mallory"]})
    sc.write_config(g)
    # The CLI hashes with argon2id (~0.3 s a user): a few at a time.
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        futs = {n: ex.submit(sc.create_user, g, n, password_of(n),
                             ["team"] if n in TEAM else [])
                for n in TEAM + OTHERS}
        for n, f in futs.items():
            S.users[n] = f.result()
    g.__enter__()
    S.g = g
    return g


def _stop_shared():
    if S.g is not None:
        g, S.g = S.g, None
        try:
            g.__exit__(None, None, None)
        except Exception as e:
            sys.stderr.write("shared daemon: %s\n" % e)


atexit.register(_stop_shared)


def U(name):
    return S.users[name]


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def serves(g):
    await sc.fresh_ping(g)


async def setup_call(g, caller, callee, media=("audio", "data")):
    """caller and callee log in; caller calls, callee accepts. Returns
    (ca, cb, call_id, caller_ice_server, callee_ice_server)."""
    ca = await sc.logged_in(g, U(caller), caller)
    cb = await sc.logged_in(g, U(callee), callee)
    r = await ca.request({"type": "call", "to": callee, "media": list(media)})
    assert r.get("type") == "call.ok", "%s -> %s refused: %r" % (caller, callee, r)
    cid = r["call"]
    await cb.wait_for("incoming", call=cid)
    r2 = await cb.request({"type": "accept", "call": cid})
    assert r2.get("type") == "accept.ok", "accept refused: %r" % r2
    await ca.wait_for("accepted", call=cid)
    return ca, cb, cid, r["ice_servers"][0], r2["ice_servers"][0]


def turn_alloc(g, server=None, user=None, password=None):
    """A UDP TURN client with an allocation; asserts 200."""
    user = user or server["username"]
    password = password or server["credential"]
    c = tc.TurnClient(g.host, g.port, "udp", user, password)
    r = c.allocate()
    assert r is not None and r.ok, "Allocate as %s: %r" % (user[:12], r)
    return c


def audit_events(g, name):
    """The audit trail's events called name (state_dir/audit.jsonl)."""
    path = os.path.join(g.state_dir, "audit.jsonl")
    try:
        with open(path, "rb") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == name:
            out.append(e)
    return out


async def wait_audit(g, name, pred, timeout=5.0):
    """The first audit event called name that pred accepts; the writer is
    a thread of its own, so the line may come a little after the fact."""
    deadline = time.monotonic() + timeout
    while True:
        got = [e for e in audit_events(g, name) if pred(e)]
        if got:
            return got[0]
        assert time.monotonic() < deadline, "no %s audit event matching within %.0f s; have %r" % (
            name, timeout, audit_events(g, name)[-5:])
        await asyncio.sleep(0.1)


# ------------------------------------------------------------ login tests

AUTH_FAILED = None  # (code, message) of the first failure seen, to compare


def auth_failure(r, what):
    assert r.get("type") == "error" and r.get("code") == "auth_failed", \
        "%s: expected error auth_failed, got %r" % (what, r)
    return (r.get("code"), r.get("message"))


def test_login_failures_identical():
    g = shared()

    async def body():
        v = U("victim")
        answers = {}
        # wrong password (valid code)
        async with sc.SigClient(sc.ws_url(g), name="wrong-pw") as c:
            r = await c.login(v.name, "not-the-password", v.next_totp())
            answers["wrong password"] = auth_failure(r, "wrong password")
            assert "id" in r, "error does not echo the request id: %r" % r
            await c.ping()
        # wrong TOTP
        async with sc.SigClient(sc.ws_url(g), name="wrong-totp") as c:
            r = await c.login(v.name, v.password, sc.wrong_totp(v.secret))
            answers["wrong TOTP"] = auth_failure(r, "wrong TOTP")
            await c.ping()
        # the same code twice: the first login succeeds, the second fails
        code = v.next_totp()
        async with sc.SigClient(sc.ws_url(g), name="first") as c1:
            r = await c1.login(v.name, v.password, code)
            assert r.get("type") == "login.ok", "first use of a fresh code refused: %r" % r
            async with sc.SigClient(sc.ws_url(g), name="replay") as c2:
                r = await c2.login(v.name, v.password, code)
                answers["reused TOTP"] = auth_failure(r, "reused TOTP")
                await c2.ping()
        # unknown user
        async with sc.SigClient(sc.ws_url(g), name="unknown") as c:
            r = await c.login("nosuchuser", "whatever-password", "123456")
            answers["unknown user"] = auth_failure(r, "unknown user")
            await c.ping()
        distinct = set(answers.values())
        assert len(distinct) == 1, "failures are distinguishable: %r" % answers
        global AUTH_FAILED
        AUTH_FAILED = distinct.pop()
        await serves(g)
    with_log(g, lambda: run(body()))


def test_login_missing_totp():
    g = shared()

    async def body():
        v = U("victim")
        for label, extra in (("no totp field", None), ("empty totp", "")):
            async with sc.SigClient(sc.ws_url(g), name=label) as c:
                r = await c.login(v.name, v.password, extra)
                got = auth_failure(r, label + " with mfa required")
                if AUTH_FAILED is not None:
                    assert got == AUTH_FAILED, "%s answered %r, other failures %r" % (
                        label, got, AUTH_FAILED)
                # not logged in: a request that needs a login is refused
                r = await c.request({"type": "contacts"})
                assert r.get("type") == "error", "contacts after a refused login: %r" % r
        await serves(g)
    with_log(g, lambda: run(body()))


def test_login_failures_all_auth_failed():
    """DESIGN.md: a login "on any failure" gets auth_failed. Requests the
    daemon refuses before the identity backend (too long a name, password
    or token; both kinds of credential; fields missing or of the wrong
    type) too, with a message saying what was wrong and the same answer
    for a user who exists and one who does not. Over-long values are
    failed attempts (the connection's 5), malformed logins strikes."""
    g = shared()

    async def body():
        cases = [
            ("user name of 64 characters", {"user": "u" * 64, "password": "whatever-password"},
             "user name too long"),
            ("password of 1025 bytes, existing user",
             {"user": "victim", "password": "p" * 1025, "totp": "123456"}, "password too long"),
            ("password of 1025 bytes, unknown user",
             {"user": "nosuchuser", "password": "p" * 1025, "totp": "123456"}, "password too long"),
            ("token of 8193 bytes", {"token": "t" * 8193}, "token too long"),
            ("user, password and token", {"user": "victim", "password": "x" * 10, "token": "a.b.c"},
             None),
            ("no password", {"user": "victim"}, None),
            ("user not a string", {"user": 17, "password": "whatever-password"}, None),
        ]
        answers = {}
        for label, fields, message in cases:
            async with sc.SigClient(sc.ws_url(g), name=label) as c:
                r = await c.request(dict({"type": "login"}, **fields))
                assert r.get("type") == "error" and r.get("code") == "auth_failed", \
                    "%s: expected error auth_failed, got %r" % (label, r)
                if message is not None:
                    assert r.get("message") == message, "%s: message %r" % (label, r.get("message"))
                answers[label] = r.get("message")
                await c.ping()
        assert answers["password of 1025 bytes, existing user"] == \
            answers["password of 1025 bytes, unknown user"], \
            "a user who exists is answered differently: %r" % answers

        # Over-long values are failed attempts, not strikes: five leave the
        # connection open; the sixth attempt is refused and closes it, as
        # after five wrong passwords.
        async with sc.SigClient(sc.ws_url(g), name="too-long x6") as c:
            for i in range(5):
                r = await c.request({"type": "login", "user": "u" * 64, "password": "pw-%d" % i})
                assert r.get("code") == "auth_failed", "over-long name %d: %r" % (i + 1, r)
            await c.ping()
            r = await c.request({"type": "login", "user": "nosuchuser", "password": "whatever"})
            assert r.get("code") == "auth_failed", "sixth attempt: %r" % r
            assert await c.wait_closed(5), "not closed after six login attempts\n%s" % c.describe()
        # A malformed login is still a strike: the fifth closes.
        async with sc.SigClient(sc.ws_url(g), name="malformed x5") as c:
            for i in range(5):
                r = await c.request({"type": "login", "password": "whatever-%d" % i})
                assert r.get("code") == "auth_failed", "malformed login %d: %r" % (i + 1, r)
            assert await c.wait_closed(5), "not closed after five malformed logins\n%s" % c.describe()
        await serves(g)
    with_log(g, lambda: run(body()))


def test_login_control_characters():
    """protocol.md: a login field with control characters is malformed:
    "login needs user and password, or token", a strike, and nothing
    reaches the identity backend (no login.failure in the audit trail).
    Line ends and tabs too, which used to pass as counted attempts."""
    g = shared()

    async def body():
        cases = [
            ("LF in the user name", {"user": "vic\ntim", "password": password_of("victim")}),
            ("CR in the user name", {"user": "victim\r", "password": password_of("victim")}),
            ("TAB in the user name", {"user": "\tvictim", "password": password_of("victim")}),
            ("DEL in the user name", {"user": "vic\x7ftim", "password": password_of("victim")}),
            ("TAB in the password", {"user": "victim", "password": "pw\tvictim"}),
            ("CRLF in the password", {"user": "victim", "password": "pw-victim\r\n"}),
            ("LF in the code", {"user": "victim", "password": password_of("victim"),
                                "totp": "123\n456"}),
            ("LF in the token", {"token": "a.b.c\n"}),
        ]
        async with sc.SigClient(sc.ws_url(g), name="control characters") as c:
            for i, (label, fields) in enumerate(cases):
                r = await c.request(dict({"type": "login"}, **fields))
                assert r.get("type") == "error" and r.get("code") == "auth_failed" and \
                    r.get("message") == "login needs user and password, or token", \
                    "%s: answered %r" % (label, r)
                if i == 3:
                    break
            await c.ping()
            # Strikes: the fifth closes the connection.
            label, fields = cases[4]
            r = await c.request(dict({"type": "login"}, **fields))
            assert r.get("message") == "login needs user and password, or token", \
                "%s: answered %r" % (label, r)
            assert await c.wait_closed(5), "not closed after five malformed logins\n%s" % c.describe()
        for label, fields in cases[5:]:
            async with sc.SigClient(sc.ws_url(g), name=label) as c:
                r = await c.request(dict({"type": "login"}, **fields))
                assert r.get("code") == "auth_failed" and \
                    r.get("message") == "login needs user and password, or token", \
                    "%s: answered %r" % (label, r)
                await c.ping()
        await asyncio.sleep(0.3)
        seen = [e.get("user") for e in audit_events(g, "login.failure")
                if any(ch in (e.get("user") or "") for ch in "\r\n\t\x7f")]
        assert not seen, "logins with control characters reached the backend: %r" % seen
        await serves(g)
    with_log(g, lambda: run(body()))


# --------------------------------------------------------------- JWT

def der_uint(v):
    return v.lstrip(b"\0") or b"\0"


def openssl(*args, data=None):
    p = subprocess.run(["openssl"] + list(args), input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, "openssl %s: %s" % (" ".join(args), p.stderr.decode())
    return p.stdout


class Keys:
    def __init__(self, d):
        self.d = d
        self.rsa = os.path.join(d, "rsa.pem")
        self.rsa_other = os.path.join(d, "rsa-other.pem")
        self.ec = os.path.join(d, "ec.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.rsa)
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.rsa_other)
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", self.ec)
        self.rsa_pub_pem = openssl("pkey", "-in", self.rsa, "-pubout")

    def jwks(self):
        # RSA: SubjectPublicKeyInfo { alg, BIT STRING { SEQUENCE { n, e } } }
        spki = openssl("pkey", "-in", self.rsa, "-pubout", "-outform", "DER")
        _, seq, _ = der_read(spki)
        (_, _alg), (_, bits) = der_children(seq)
        _, rsapub, _ = der_read(bits[1:])
        (_, n), (_, e) = der_children(rsapub)
        # EC: BIT STRING holds 0x04 || X || Y
        spki = openssl("pkey", "-in", self.ec, "-pubout", "-outform", "DER")
        _, seq, _ = der_read(spki)
        (_, _alg), (_, bits) = der_children(seq)
        point = bits[1:]
        assert point[0] == 4 and len(point) == 65, "unexpected EC point %r" % point[:4]
        return {"keys": [
            {"kty": "RSA", "kid": "rsa1", "use": "sig", "alg": "RS256",
             "n": b64u(der_uint(n)), "e": b64u(der_uint(e))},
            {"kty": "EC", "kid": "ec1", "use": "sig", "alg": "ES256", "crv": "P-256",
             "x": b64u(point[1:33]), "y": b64u(point[33:])},
        ]}


def jwt_sign(header, claims, key_pem=None, es256=False, raw_sig=None, hs_key=None):
    signing_input = (b64u(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64u(json.dumps(claims, separators=(",", ":")).encode()))
    if raw_sig is not None:
        sig = raw_sig
    elif hs_key is not None:
        sig = hmac.new(hs_key, signing_input.encode(), hashlib.sha256).digest()
    else:
        sig = openssl("dgst", "-sha256", "-sign", key_pem, data=signing_input.encode())
        if es256:
            _, seq, _ = der_read(sig)
            (_, r), (_, s) = der_children(seq)
            sig = der_uint(r).rjust(32, b"\0") + der_uint(s).rjust(32, b"\0")
    return signing_input + "." + b64u(sig)


def test_jwt_tokens():
    g = gh.Gatehouse(ARGS.gatehouse)
    keys = Keys(g.workdir)
    jwks_path = os.path.join(g.workdir, "jwks.json")
    with open(jwks_path, "w") as f:
        json.dump(keys.jwks(), f)
    g.config["identity"] = {"mfa": "optional", "backends": [
        {"type": "local"},
        {"type": "jwt", "issuer": "https://idp.test", "audience": "gatehouse",
         "jwks_file": jwks_path}]}
    now = int(time.time())

    def claims(sub, **kw):
        c = {"iss": "https://idp.test", "aud": "gatehouse", "sub": sub,
             "iat": now, "exp": now + 600}
        c.update(kw)
        return c

    rs = {"alg": "RS256", "typ": "JWT", "kid": "rsa1"}
    es = {"alg": "ES256", "typ": "JWT", "kid": "ec1"}
    good_rs = jwt_sign(rs, claims("carol"), keys.rsa)
    good_es = jwt_sign(es, claims("dave"), keys.ec, es256=True)
    h, p, s = good_rs.split(".")
    tampered = h + "." + b64u(json.dumps(claims("admin")).encode()) + "." + s
    bad = {
        "expired": jwt_sign(rs, claims("carol", iat=now - 7200, exp=now - 3600), keys.rsa),
        "forged (other RSA key, same kid)": jwt_sign(rs, claims("carol"), keys.rsa_other),
        "tampered payload": tampered,
        "alg none, empty signature": jwt_sign({"alg": "none", "typ": "JWT"}, claims("carol"), raw_sig=b""),
        "alg none, with kid and a signature": jwt_sign({"alg": "none", "kid": "rsa1"}, claims("carol"),
                                                       raw_sig=b"x" * 32),
        "HS256 keyed with the RSA public key PEM": jwt_sign({"alg": "HS256", "typ": "JWT", "kid": "rsa1"},
                                                            claims("carol"), hs_key=keys.rsa_pub_pem),
        "ES256 signature under the RSA kid": jwt_sign({"alg": "ES256", "kid": "rsa1"}, claims("carol"),
                                                      keys.ec, es256=True),
        "wrong audience": jwt_sign(rs, claims("carol", aud="someone-else"), keys.rsa),
    }

    async def body():
        async with sc.SigClient(sc.ws_url(g), name="pw-fail") as c:
            ref = auth_failure(await c.login("nosuchuser", "whatever-password", "123456"),
                               "unknown user (jwt daemon)")
        for label, tok in (("RS256", good_rs), ("ES256", good_es)):
            async with sc.SigClient(sc.ws_url(g), name="jwt-" + label) as c:
                r = await c.login(token=tok)
                want = "carol" if label == "RS256" else "dave"
                assert r.get("type") == "login.ok" and r.get("user") == want, \
                    "valid %s token refused: %r" % (label, r)
                r = await c.request({"type": "contacts"})
                assert r.get("type") == "contacts.ok", "contacts after token login: %r" % r
        failures = []
        for label, tok in bad.items():
            async with sc.SigClient(sc.ws_url(g), name=label) as c:
                r = await c.login(token=tok)
                if r.get("type") != "error" or (r.get("code"), r.get("message")) != ref:
                    failures.append("%s: %r (password failures answer %r)" % (label, r, ref))
                    continue
                await c.ping()
        assert not failures, "tokens not refused like other failures:\n  " + "\n  ".join(failures)
        # A token that expired within the leeway logs in, and the session
        # closes at its next message, with an error first that says why.
        t = int(time.time())
        stale = jwt_sign(rs, claims("carol", iat=t - 30, exp=t - 5), keys.rsa)
        async with sc.SigClient(sc.ws_url(g), name="expired-session") as c:
            r = await c.login(token=stale)
            assert r.get("type") == "login.ok", "token within the leeway refused: %r" % r
            await c.send({"type": "contacts", "id": 5})
            r = await c.wait(lambda m: m.get("type") == "error", 5, "an error before the close")
            assert r.get("code") == "auth_failed" and r.get("message") == "token expired", \
                "expired session answered %r" % r
            assert await c.wait_closed(5), "expired session not closed\n%s" % c.describe()
        await serves(g)
    with g:
        with_log(g, lambda: run(body()))


# DESIGN.md's "Policy file" example, verbatim: "contractors" is named by a
# rule but not listed in "groups", so only the identity backend puts users
# in it (here users.db groups).
DESIGN_POLICY = """{
  "default": "deny",
  "groups": { "sales": ["alice", "bob"], "support": ["carol"] },
  "rules": [
    {"name": "sales-calls", "from": "group:sales", "to": "group:sales",
     "media": ["audio", "video", "data", "screen"], "action": "allow"},
    {"name": "support-recorded", "from": "group:support", "to": "user:dave",
     "media": ["audio"], "action": "allow", "record": true},
    {"name": "no-screens-for-contractors", "from": "group:contractors", "to": "*",
     "media": ["screen"], "action": "deny"}
  ]
}
"""


def test_design_example_policy():
    """The daemon runs DESIGN.md's example policy as printed. erin is in
    sales and contractors by her users.db groups: she may call alice with
    audio but not share her screen; bob (sales in the file only) may."""
    g = gh.Gatehouse(ARGS.gatehouse)
    policy = os.path.join(g.workdir, "policy.json")
    with open(policy, "w") as f:
        f.write(DESIGN_POLICY)
    g.config["policy"] = {"file": policy}
    sc.write_config(g)
    p = subprocess.run([g.binary, "policy", "check", policy], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    out, err = p.stdout.decode(), p.stderr.decode()
    assert p.returncode == 0 and "ok, 3 rules" in out, "policy check: %d %r %r" % (
        p.returncode, out, err)
    assert 'warning: group "contractors"' in err and "sales" not in err, err
    # Recording is asked for and not done: said, for that rule only.
    assert 'warning: rule "support-recorded" asks for recording' in err and \
        "media is not recorded" in err and err.count("asks for recording") == 1, err
    p = subprocess.run([g.binary, "policy", "check", "--strict", policy], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 2 and 'error: group "contractors"' in p.stderr.decode(), \
        "policy check --strict: %d %r" % (p.returncode, p.stderr)
    users = {n: sc.create_user(g, n, password_of(n), groups)
             for n, groups in (("alice", ()), ("bob", ()), ("erin", ("sales", "contractors")),
                               ("carol", ()), ("dave", ()))}

    async def body():
        ca = await sc.logged_in(g, users["alice"], "alice")
        cb = await sc.logged_in(g, users["bob"], "bob")
        ce = await sc.logged_in(g, users["erin"], "erin")
        try:
            # support-recorded: allowed, and both sides are told the rule
            # asks for recording.
            async with sc.SigClient(sc.ws_url(g), name="carol") as cc, \
                    sc.SigClient(sc.ws_url(g), name="dave") as cd:
                for c, n in ((cc, "carol"), (cd, "dave")):
                    u = users[n]
                    r = await c.login(u.name, u.password, u.next_totp())
                    assert r.get("type") == "login.ok", "%s: %r" % (n, r)
                r = await cc.request({"type": "call", "to": "dave", "media": ["audio"]})
                assert r.get("type") == "call.ok" and r.get("record") is True, \
                    "carol -> dave (support-recorded): %r" % r
                inc = await cd.wait_for("incoming", call=r["call"])
                assert inc.get("record") is True, "dave's incoming: %r" % inc
                r2 = await cc.request({"type": "hangup", "call": r["call"]})
                assert r2.get("type") == "hangup.ok", "hangup: %r" % r2
            r = await ce.request({"type": "call", "to": "alice", "media": ["audio", "screen"]})
            assert r.get("type") == "error" and r.get("code") == "forbidden", \
                "erin (contractor) -> alice with screen: %r" % r
            await ca.expect_nothing(0.3, lambda m: m.get("type") == "incoming")
            for caller, c, media in (("erin", ce, ["audio", "video"]),
                                     ("bob", cb, ["audio", "screen"])):
                r = await c.request({"type": "call", "to": "alice", "media": media})
                assert r.get("type") == "call.ok", "%s -> alice %r: %r" % (caller, media, r)
                await ca.wait_for("incoming", call=r["call"])
                r2 = await c.request({"type": "hangup", "call": r["call"]})
                assert r2.get("type") == "hangup.ok", "hangup: %r" % r2
        finally:
            for c in (ca, cb, ce):
                await c.close()
        await serves(g)
    with g:
        with_log(g, lambda: run(body()))
        assert re.search(r'group "contractors" is named by rules but not listed', g.log()), \
            "no warning about the undeclared group in the daemon log"
        assert re.search(r'rule "support-recorded" asks for recording', g.log()), \
            "no warning about the recording rule in the daemon log"
        assert re.search(r'call.decided: carol -> dave: allow by rule "support-recorded" '
                         r'\(the rule asks for recording, which is not built yet', g.log()), \
            "no call.decided log line saying the call is not recorded"
        # The audit trail says which allowed calls the policy wants recorded.
        decided = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(os.path.join(g.state_dir, "audit.jsonl")) as f:
                decided = [e for e in map(json.loads, f) if e.get("event") == "call.decided"]
            if any(e.get("user") == "carol" for e in decided):
                break
            time.sleep(0.1)
        by = {(e.get("user"), e.get("peer"), e.get("outcome")): e for e in decided}
        assert by.get(("carol", "dave", "allow"), {}).get("record") is True, decided
        assert by.get(("erin", "alice", "allow"), {}).get("record") is False, decided
        assert "record" not in by.get(("erin", "alice", "deny"), {"record": 0}), decided


# ------------------------------------------------------------ call errors

def test_call_forbidden():
    g = shared()

    async def body():
        cm = await sc.logged_in(g, U("mallory"), "mallory")
        ca = await sc.logged_in(g, U("alice"), "alice")
        try:
            r = await cm.request({"type": "call", "to": "alice", "media": ["audio"]})
            assert r.get("type") == "error" and r.get("code") == "forbidden", \
                "mallory -> alice (policy denies): %r" % r
            await ca.expect_nothing(0.5, lambda m: m.get("type") == "incoming")
            r = await ca.request({"type": "call", "to": "mallory", "media": ["audio"]})
            assert r.get("type") == "error" and r.get("code") == "forbidden", \
                "alice -> mallory (no allow rule): %r" % r
            await cm.expect_nothing(0.3, lambda m: m.get("type") == "incoming")
            # Policy before presence: an offline user one may not call is
            # "forbidden" too, not "offline".
            r = await cm.request({"type": "call", "to": "bob", "media": ["audio"]})
            assert r.get("code") == "forbidden", "mallory -> offline bob: %r" % r
            await cm.ping()
            await ca.ping()
        finally:
            await cm.close()
            await ca.close()
        await serves(g)
    with_log(g, lambda: run(body()))


def test_call_offline():
    g = shared()

    async def body():
        async with await sc.logged_in(g, U("alice"), "alice") as ca:
            r = await ca.request({"type": "call", "to": "bob", "media": ["audio"]})
            assert r.get("type") == "error" and r.get("code") == "offline", \
                "call to logged-out bob: %r" % r
            # bob logs in and out again: offline once more
            cb = await sc.logged_in(g, U("bob"), "bob")
            await cb.close()
            await asyncio.sleep(0.2)
            r = await ca.request({"type": "call", "to": "bob", "media": ["audio"]})
            assert r.get("code") == "offline", "call to bob after his logout: %r" % r
            await ca.ping()
        await serves(g)
    with_log(g, lambda: run(body()))


def test_call_self():
    g = shared()

    async def body():
        async with await sc.logged_in(g, U("carol"), "carol") as c:
            r = await c.request({"type": "call", "to": "carol", "media": ["audio"]})
            assert r.get("type") == "error" and r.get("code") == "bad_request", \
                "call to self: %r" % r
            await c.expect_nothing(0.3, lambda m: m.get("type") == "incoming")
            await c.ping()
        await serves(g)
    with_log(g, lambda: run(body()))


def test_call_lifecycle_and_interference():
    """reject -> "rejected"; the callee's disconnect -> "disconnected";
    sdp/candidate before acceptance are refused; a user who is not in the
    call can neither send into it, accept it nor hang it up."""
    g = shared()

    async def body():
        cq = await sc.logged_in(g, U("quinn"), "quinn")
        cr = await sc.logged_in(g, U("rose"), "rose")
        cs = await sc.logged_in(g, U("sam"), "sam")
        ct = await sc.logged_in(g, U("tina"), "tina")
        try:
            # reject
            r = await cq.request({"type": "call", "to": "rose", "media": ["audio"]})
            assert r.get("type") == "call.ok", "%r" % r
            cid = r["call"]
            await cr.wait_for("incoming", call=cid)
            await cr.send({"type": "reject", "call": cid})
            h = await cq.wait_for("hangup", call=cid)
            assert h.get("reason") == "rejected", "caller got %r after reject" % h
            # ringing: no media description yet, and only the callee accepts
            r = await cq.request({"type": "call", "to": "rose", "media": ["audio", "data"]})
            cid = r["call"]
            await cr.wait_for("incoming", call=cid)
            for who, c in (("caller", cq), ("callee", cr)):
                r = await c.request({"type": "sdp", "call": cid,
                                     "sdp": {"type": "offer", "sdp": "v=0\r\n"}})
                assert r.get("code") == "bad_request", "sdp from the %s while ringing: %r" % (who, r)
                r = await c.request({"type": "candidate", "call": cid,
                                     "candidate": {"candidate": "", "sdpMid": "0"}})
                assert r.get("code") == "bad_request", "candidate from the %s while ringing: %r" % (who, r)
            r = await cq.request({"type": "accept", "call": cid})
            assert r.get("code") == "bad_request", "the caller accepted its own call: %r" % r
            # an outsider to the call (allowed to call both) knows its id
            for msg in ({"type": "accept", "call": cid}, {"type": "reject", "call": cid},
                        {"type": "hangup", "call": cid}):
                r = await cs.request(msg)
                assert r.get("code") == "bad_request", "sam's %s on someone else's call: %r" % (
                    msg["type"], r)
            r = await cr.request({"type": "accept", "call": cid})
            assert r.get("type") == "accept.ok", "accept after the outsider's tries: %r" % r
            await cq.wait_for("accepted", call=cid)
            # (another outsider: five bad requests close a connection)
            r = await ct.request({"type": "sdp", "call": cid, "sdp": {"type": "offer", "sdp": "v=0\r\n"}})
            assert r.get("code") == "bad_request", "sdp from an outsider: %r" % r
            r = await ct.request({"type": "candidate", "call": cid, "candidate": {"candidate": ""}})
            assert r.get("code") == "bad_request", "candidate from an outsider: %r" % r
            await cq.expect_nothing(0.5, lambda m: m.get("type") in ("sdp", "candidate", "hangup"))
            await cr.expect_nothing(0.0, lambda m: m.get("type") in ("sdp", "candidate", "hangup"))
            # the callee drops: the caller learns "disconnected"
            await cr.close()
            h = await cq.wait_for("hangup", call=cid, timeout=5)
            assert h.get("reason") == "disconnected", "caller got %r after the callee left" % h
            await cq.ping()
            await cs.ping()
            await ct.ping()
        finally:
            for c in (cq, cr, cs, ct):
                await c.close()
        await serves(g)
    with_log(g, lambda: run(body()))


def test_callee_hangup_while_ringing():
    """A callee's hangup on a call that still rings declines it exactly as
    reject: the caller and the callee's other sessions get hangup
    "rejected", the sender hangup.ok. Not a strike: six in a row."""
    g = shared()

    async def body():
        cc = await sc.logged_in(g, U("cat"), "cat")
        cd1 = await sc.logged_in(g, U("dan"), "dan-1")
        cd2 = await sc.logged_in(g, U("dan"), "dan-2")
        try:
            for i in range(6):
                r = await cc.request({"type": "call", "to": "dan", "media": ["audio"]})
                assert r.get("type") == "call.ok", "call %d: %r" % (i + 1, r)
                cid = r["call"]
                await cd1.wait_for("incoming", call=cid)
                await cd2.wait_for("incoming", call=cid)
                r = await cd1.request({"type": "hangup", "call": cid})
                assert r.get("type") == "hangup.ok", \
                    "callee's hangup on ringing call %d answered %r" % (i + 1, r)
                h = await cc.wait_for("hangup", call=cid)
                assert h.get("reason") == "rejected", "caller got %r" % h
                h = await cd2.wait_for("hangup", call=cid)
                assert h.get("reason") == "rejected", "the callee's other session got %r" % h
                await cd1.expect_nothing(0.0, lambda m: m.get("type") == "hangup")
                audit = await wait_audit(g, "call.ended", lambda e: e.get("call") == cid)
                assert audit.get("reason") == "rejected", "audited as %r" % audit
            for c in (cc, cd1, cd2):
                await c.ping()
        finally:
            for c in (cc, cd1, cd2):
                await c.close()
        await serves(g)
    with_log(g, lambda: run(body()))


def test_normal_refusals_not_strikes():
    """A busy callee, a caller in too many calls, a second call to a
    callee the first still rings, and a call another of the callee's
    sessions just answered are answered bad_request, but are not strikes:
    six of each leave the connection open."""
    g = shared()

    async def body():
        ce = await sc.logged_in(g, U("eve"), "eve")
        cf1 = await sc.logged_in(g, U("fay"), "fay-1")
        cf2 = await sc.logged_in(g, U("fay"), "fay-2")
        cg = await sc.logged_in(g, U("gus"), "gus")
        others = [await sc.logged_in(g, U(n), n) for n in ("amy", "ben", "cat")]
        clients = [ce, cf1, cf2, cg] + others
        try:
            calls = []
            for to in ("fay", "amy", "ben", "cat"):   # eve at the per-user cap
                r = await ce.request({"type": "call", "to": to, "media": ["audio"]})
                assert r.get("type") == "call.ok", "eve's call to %s: %r" % (to, r)
                calls.append(r["call"])
            for c in others:                           # four ringing for fay
                r = await c.request({"type": "call", "to": "fay", "media": ["audio"]})
                assert r.get("type") == "call.ok", "%s's call to fay: %r" % (c.name, r)
            for i in range(6):
                r = await cg.request({"type": "call", "to": "fay", "media": ["audio"]})
                assert r.get("type") == "error" and r.get("code") == "bad_request" and \
                    r.get("message") == "the user is busy", "call %d to busy fay: %r" % (i + 1, r)
            await cg.ping()
            for i in range(6):
                r = await ce.request({"type": "call", "to": "gus", "media": ["audio"]})
                assert r.get("code") == "bad_request" and r.get("message") == "too many calls", \
                    "call %d beyond the cap: %r" % (i + 1, r)
            await ce.ping()
            for i in range(6):
                r = await others[0].request({"type": "call", "to": "fay", "media": ["audio"]})
                assert r.get("code") == "bad_request" and \
                    r.get("message") == "a call to this user is already ringing", \
                    "amy's call %d to fay while hers rings: %r" % (i + 1, r)
            await others[0].ping()
            # fay-1 answers; fay-2's accept, reject or hangup crossed it.
            r = await cf1.request({"type": "accept", "call": calls[0]})
            assert r.get("type") == "accept.ok", "%r" % r
            for i in range(6):
                for msg, why in (({"type": "accept"}, "no ringing call to accept"),
                                 ({"type": "reject"}, "no ringing call to reject"),
                                 ({"type": "hangup"}, "no call to hang up")):
                    r = await cf2.request(dict(msg, call=calls[0]))
                    assert r.get("code") == "bad_request" and r.get("message") == why, \
                        "fay-2's %s %d after fay-1 answered: %r" % (msg["type"], i + 1, r)
            await cf2.ping()
            await ce.wait_for("accepted", call=calls[0])
            for c in clients:
                assert not c.closed, "%s was closed\n%s" % (c.name, c.describe())
        finally:
            for c in clients:
                await c.close()
        await serves(g)
    with_log(g, lambda: run(body()))


def test_ringing_does_not_lock_out():
    """Review finding: one allowed caller kept four calls ringing to a
    victim, who was then "busy" to everyone and got "too many calls" when
    calling out. A second call from the same caller to the same callee
    while the first rings is refused (not a strike), and calls ringing
    for a user never keep it from calling out."""
    g = shared()

    async def body():
        cx = await sc.logged_in(g, U("ned"), "caller")
        cv = await sc.logged_in(g, U("oto"), "victim")
        co = await sc.logged_in(g, U("pam"), "other")
        try:
            r = await cx.request({"type": "call", "to": "oto", "media": ["audio"]})
            assert r.get("type") == "call.ok", "first call: %r" % r
            first = r["call"]
            await cv.wait_for("incoming", call=first)
            for i in range(4):
                r = await cx.request({"type": "call", "to": "oto", "media": ["audio"]})
                assert r.get("type") == "error" and r.get("code") == "bad_request" and \
                    r.get("message") == "a call to this user is already ringing", \
                    "call %d to oto while the first rings: %r" % (i + 2, r)
            await cv.expect_nothing(0.3, lambda m: m.get("type") == "incoming")
            # The victim, rung, calls out; others still reach it.
            r = await cv.request({"type": "call", "to": "pam", "media": ["audio"]})
            assert r.get("type") == "call.ok", "oto calls out while rung: %r" % r
            await co.wait_for("incoming", call=r["call"])
            r = await co.request({"type": "call", "to": "oto", "media": ["audio"]})
            assert r.get("type") == "call.ok", "pam calls oto while ned's call rings: %r" % r
            await cv.wait_for("incoming", call=r["call"])
            # Once the first no longer rings, ned may call again.
            await cv.send({"type": "reject", "call": first})
            await cx.wait_for("hangup", call=first)
            r = await cx.request({"type": "call", "to": "oto", "media": ["audio"]})
            assert r.get("type") == "call.ok", "ned's call after the reject: %r" % r
            for c in (cx, cv, co):
                await c.ping()
        finally:
            for c in (cx, cv, co):
                await c.close()
        await serves(g)
    with_log(g, lambda: run(body()))


def test_call_rate_limited():
    """At most 30 calls placed a minute per user (signaling.calls_per_minute),
    over all of its sessions: beyond, error rate_limited, not a strike,
    and a new connection does not start afresh. One call comes back every
    2 s, so every bound counts those that came back meanwhile: a slow
    machine weakens the test, never fails it."""
    g = shared()

    async def body():
        c1 = await sc.logged_in(g, U("leo"), "leo-1")
        c2 = await sc.logged_in(g, U("leo"), "leo-2")
        cm = await sc.logged_in(g, U("mia"), "mia")
        c3 = None
        try:
            placed, refused = 0, None
            t0 = time.monotonic()
            while placed <= 40:
                c = (c1, c2)[placed % 2]
                r = await c.request({"type": "call", "to": "mia", "media": ["audio"]})
                if r.get("type") != "call.ok":
                    refused = r
                    break
                placed += 1
                # Answered before the next call, which may come on the
                # other connection: one call rings to mia at a time.
                r = await c.request({"type": "hangup", "call": r["call"]})
                assert r.get("type") == "hangup.ok", "hangup: %r" % r
                await asyncio.sleep(0.05)   # within each session's message rate
            assert refused is not None, "%d calls placed in a row, none refused" % placed
            assert refused.get("code") == "rate_limited" and \
                refused.get("message") == "too many new calls, try again later", \
                "call %d answered %r" % (placed + 1, refused)
            # 30, and those that came back meanwhile (one every 2 s)
            back = int((time.monotonic() - t0) / 2) + 1
            assert 30 <= placed <= 30 + back, "refused after %d calls in %.1f s" % (
                placed, time.monotonic() - t0)
            # Not a strike; answered the same way on either session.
            limited = 0
            t1 = time.monotonic()
            for i in range(6):
                c = (c1, c2)[i % 2]
                r = await c.request({"type": "call", "to": "mia", "media": ["audio"]})
                if r.get("type") == "call.ok":
                    await c.request({"type": "hangup", "call": r["call"]})
                else:
                    assert r.get("code") == "rate_limited", "attempt %d: %r" % (i + 1, r)
                    limited += 1
            back = int((time.monotonic() - t1) / 2) + 1
            assert limited >= 6 - back, "only %d of 6 attempts refused" % limited
            await c1.ping()
            await c2.ping()
            # A new connection does not refill it: at most the calls that
            # came back meanwhile get through, not another 30.
            t2 = time.monotonic()
            await c1.close()
            await c2.close()
            c3 = await sc.logged_in(g, U("leo"), "leo-3")
            answers = []
            while len(answers) < 30 and "rate_limited" not in answers:
                r = await c3.request({"type": "call", "to": "mia", "media": ["audio"]})
                answers.append(r.get("code") or r.get("type"))
                if r.get("type") == "call.ok":
                    await c3.request({"type": "hangup", "call": r["call"]})
            back = int((time.monotonic() - t2) / 2) + 1
            assert "rate_limited" in answers and answers.count("call.ok") <= back, \
                "after reconnecting: %r" % answers
            await c3.ping()
            # mia may still call.
            r = await cm.request({"type": "call", "to": "leo", "media": ["audio"]})
            assert r.get("type") == "call.ok", "mia's call: %r" % r
        finally:
            for c in (c1, c2, c3, cm):
                if c is not None:
                    await c.close()
        await serves(g)
    with_log(g, lambda: run(body()))


def media_sdp(*sections):
    """A minimal session description with one m= section per (media,
    port, extra lines) given; no candidates (the filter is not under
    test here)."""
    protos = {"audio": "UDP/TLS/RTP/SAVPF 111", "video": "UDP/TLS/RTP/SAVPF 96",
              "application": "UDP/DTLS/SCTP webrtc-datachannel", "text": "UDP/TLS/RTP/SAVPF 98"}
    lines = ["v=0", "o=- 4611731400430051399 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
             "a=group:BUNDLE " + " ".join(str(i) for i in range(len(sections)))]
    for i, (media, port, extra) in enumerate(sections):
        lines += ["m=%s %d %s" % (media, port, protos[media]), "c=IN IP4 0.0.0.0",
                  "a=ice-ufrag:Ab12", "a=ice-pwd:abcdefghijklmnopqrstuvwx",
                  "a=fingerprint:sha-256 DB:E6:CE:32:A1:D9:87:1E:B2:5B:1F:45:E7:12:F8:50:86:10:"
                  "97:55:29:8C:5E:F7:D9:26:C9:EF:E6:FE:B1:14",
                  "a=setup:actpass", "a=mid:%d" % i] + list(extra)
    return "\r\n".join(lines) + "\r\n"


AUDIO = ("audio", 9, ["a=rtpmap:111 opus/48000/2"])
VIDEO = ("video", 9, ["a=rtpmap:96 VP8/90000"])
DATA = ("application", 9, ["a=sctp-port:5000"])
DATA_BUNDLE_ONLY = ("application", 0, ["a=bundle-only", "a=sctp-port:5000"])
VIDEO_BUNDLE_ONLY = ("video", 0, ["a=bundle-only", "a=rtpmap:96 VP8/90000"])
TEXT = ("text", 9, ["a=rtpmap:98 t140/1000"])


def test_sdp_media_enforced():
    """The policy allowed a call with its media only: an offer or answer
    (either way, renegotiations too) with an m= section of another medium
    is refused with forbidden and reaches nobody; bundle-only sections
    with port 0 count; video is allowed by video or screen, application by
    data, nothing else by anything. Not a strike; the call goes on; each
    refusal is audited as call.sdp_refused."""
    g = shared()

    async def refused(c, other, cid, kind, sdp, medium, message):
        r = await c.request({"type": "sdp", "call": cid, "sdp": {"type": kind, "sdp": sdp}})
        assert r.get("type") == "error" and r.get("code") == "forbidden" and \
            r.get("message") == message and r.get("call") == cid, \
            "%s with %s from %s: %r" % (kind, medium, c.name, r)
        await other.expect_nothing(0.3, lambda m: m.get("type") == "sdp")
        e = await wait_audit(g, "call.sdp_refused",
                             lambda e: e.get("call") == cid and e.get("medium") == medium and
                             e.get("user") == c.name and e.get("reason") == kind)
        assert e.get("outcome") == "deny", "audited as %r" % e

    async def forwarded(c, other, cid, kind, sdp):
        await c.send({"type": "sdp", "call": cid, "sdp": {"type": kind, "sdp": sdp}})
        m = await other.wait_for("sdp", call=cid, timeout=3)
        assert m["sdp"]["type"] == kind, "%r" % m
        return m["sdp"]["sdp"]

    async def body():
        ca = await sc.logged_in(g, U("amy"), "amy")
        cb = await sc.logged_in(g, U("ben"), "ben")
        try:
            # An audio call.
            r = await ca.request({"type": "call", "to": "ben", "media": ["audio"]})
            assert r.get("type") == "call.ok", "%r" % r
            cid = r["call"]
            await cb.wait_for("incoming", call=cid)
            r = await cb.request({"type": "accept", "call": cid})
            assert r.get("type") == "accept.ok", "%r" % r
            await ca.wait_for("accepted", call=cid)
            for _ in range(2):   # six refusals on amy's side: no strike
                await refused(ca, cb, cid, "offer", media_sdp(AUDIO, VIDEO), "video",
                              "the call does not allow video")
                await refused(ca, cb, cid, "offer", media_sdp(AUDIO, DATA_BUNDLE_ONLY), "data",
                              "the call does not allow data")
                await refused(ca, cb, cid, "offer", media_sdp(AUDIO, TEXT), "other",
                              "the call does not allow media of other types")
            await refused(ca, cb, cid, "offer", media_sdp(AUDIO, VIDEO_BUNDLE_ONLY), "video",
                          "the call does not allow video")
            out = await forwarded(ca, cb, cid, "offer", media_sdp(AUDIO))
            assert "m=audio 9 " in out and "m=video" not in out, out
            # The answer too, and then a renegotiation from the callee.
            await refused(cb, ca, cid, "answer", media_sdp(AUDIO, VIDEO), "video",
                          "the call does not allow video")
            await forwarded(cb, ca, cid, "answer", media_sdp(AUDIO))
            await refused(cb, ca, cid, "offer", media_sdp(AUDIO, DATA), "data",
                          "the call does not allow data")
            await ca.ping()
            await cb.ping()
            r = await ca.request({"type": "hangup", "call": cid})
            assert r.get("type") == "hangup.ok", "the call did not go on: %r" % r
            h = await cb.wait_for("hangup", call=cid)
            assert h.get("reason") == "hangup", "%r" % h

            # A screen share and data: video and application pass, audio not.
            r = await ca.request({"type": "call", "to": "ben", "media": ["screen", "data"]})
            assert r.get("type") == "call.ok", "%r" % r
            cid = r["call"]
            await cb.wait_for("incoming", call=cid)
            r = await cb.request({"type": "accept", "call": cid})
            assert r.get("type") == "accept.ok", "%r" % r
            await ca.wait_for("accepted", call=cid)
            await refused(ca, cb, cid, "offer", media_sdp(VIDEO, DATA, AUDIO), "audio",
                          "the call does not allow audio")
            out = await forwarded(ca, cb, cid, "offer", media_sdp(VIDEO, DATA))
            assert "m=video 9 " in out and "m=application 9 " in out, out
            await forwarded(cb, ca, cid, "answer", media_sdp(VIDEO, DATA))
            for c in (ca, cb):
                assert not c.closed, "%s was closed\n%s" % (c.name, c.describe())
                await c.ping()
        finally:
            await ca.close()
            await cb.close()
        await serves(g)
    with_log(g, lambda: run(body()))


def test_lockout_same_answer():
    """After repeated failures the right password and code are refused
    too, with the same answer as any other failure."""
    g = shared()

    async def body():
        u = U("locky")
        answers = set()
        for i in range(5):
            async with sc.SigClient(sc.ws_url(g), name="fail %d" % i) as c:
                # a valid code, not handed out by next_totp: a failed login
                # does not use it up
                answers.add(auth_failure(await c.login(u.name, "wrong-%d" % i, sc.totp(u.secret)),
                                         "wrong password %d" % i))
        async with sc.SigClient(sc.ws_url(g), name="locked") as c:
            r = await c.login(u.name, u.password, u.next_totp())
            answers.add(auth_failure(r, "right password and code while locked out"))
            await c.ping()
        if AUTH_FAILED is not None:
            answers.add(AUTH_FAILED)
        assert len(answers) == 1, "lockout answers differ: %r" % answers
        last = [l for l in g.log().splitlines() if "login.failed" in l][-1]
        assert last.rstrip().endswith(": locked"), \
            "the right password and code were refused, but not for the lockout: %r" % last
        await serves(g)
    with_log(g, lambda: run(body()))


# ---------------------------------------------------------------- Origin

async def expect_403(g, origin):
    c = sc.SigClient(sc.ws_url(g), origin=origin, name="origin " + origin)
    try:
        await c.connect()
    except aiohttp.WSServerHandshakeError as e:
        assert e.status == 403, "upgrade with Origin %r answered HTTP %s, expected 403" % (origin, e.status)
        return
    await c.close()
    raise AssertionError("upgrade with Origin %r was accepted" % origin)


async def expect_upgrade(g, origin):
    async with sc.SigClient(sc.ws_url(g), origin=origin, name="origin %s" % origin) as c:
        await c.ping()


def test_origin_default():
    g = shared()
    p = g.signaling_port

    async def body():
        for o in ("http://evil.example", "null", "http://127.0.0.1:%d" % (p + 1),
                  "https://127.0.0.1:%d" % p, "http://127.0.0.1:%d.evil.example" % p):
            await expect_403(g, o)
        for o in ("http://127.0.0.1:%d" % p, "http://localhost:%d" % p, None):
            await expect_upgrade(g, o)
        await serves(g)
    with_log(g, lambda: run(body()))


def test_origin_configured():
    g = gh.Gatehouse(ARGS.gatehouse, config={
        "signaling": {"allowed_origins": ["https://app.example.test"]}})

    async def body():
        await expect_upgrade(g, "https://app.example.test")
        await expect_upgrade(g, None)
        await expect_403(g, "https://evil.example.test")
        # A configured list replaces the defaults.
        await expect_403(g, "http://127.0.0.1:%d" % g.signaling_port)
        await serves(g)
    with g:
        with_log(g, lambda: run(body()))


def test_large_upgrade_headers():
    """A browser sends every cookie of the host with the upgrade: 12 KiB of
    them (single sign-on cookies of a company domain) still connects and
    logs in. Past the 16 KiB limit the request is dropped, and the daemon
    serves on."""
    g = shared()

    async def body():
        big = {"Cookie": "; ".join("sso%d=%s" % (i, "v" * 1000) for i in range(12))}
        async with sc.SigClient(sc.ws_url(g), name="12 KiB of cookies", headers=big) as c:
            u = U("carol")
            r = await c.login(u.name, u.password, u.next_totp())
            assert r.get("type") == "login.ok", "login with 12 KiB of cookies: %r" % r
        huge = {"Cookie": "; ".join("sso%d=%s" % (i, "v" * 1000) for i in range(20))}
        c = sc.SigClient(sc.ws_url(g), name="20 KiB of cookies", headers=huge)
        try:
            await c.connect()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        else:
            await c.close()
            raise AssertionError("an upgrade with 20 KiB of headers was accepted")
        await serves(g)
    with_log(g, lambda: run(body()))

    # Each dropped request makes libwebsockets log a line: a client must
    # not be able to fill the log with them.
    def oversized():
        with socket.create_connection((g.host, g.signaling_port), timeout=5) as s:
            s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nCookie: " + b"v" * 20000 + b"\r\n\r\n")
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
    before = g.log().count("Ran out of header data space")
    t0 = time.monotonic()
    for _ in range(60):
        oversized()
    took = time.monotonic() - t0
    time.sleep(1.1)
    oversized()          # a later second: the count of the rest is logged
    log = g.log()
    lines = log.count("Ran out of header data space") - before
    assert lines <= 10 * (int(took) + 3), \
        "%d lws lines for 61 dropped requests in %.2f s: not rate-limited" % (lines, took)
    assert re.search(r"lws: \d+ more messages were not logged", log), \
        "no count of the lws messages left out\n%s" % gh.tail(log, 20)
    run(serves(g))


PUSHES = 12


def test_contacts_push_replaces_unsent_push():
    """A policy change pushes every session its new contacts list. With
    8,000 users a list is 540 KB, so a few policy changes in a row, while
    a reader is still taking the answer to its own contacts request, went
    past the 1 MiB a slow reader may have queued, and the session was
    closed. A push now replaces the one still unsent: the session stays,
    and gets its answer and the newest list."""
    g = gh.Gatehouse(ARGS.gatehouse)
    policy = os.path.join(g.workdir, "policy.json")
    sc.write_policy(policy, [{"name": "team", "from": "group:team", "to": "group:team",
                              "media": ["audio"], "action": "allow"}], {"team": []})
    g.config["policy"] = {"file": policy}
    sc.write_config(g)
    u = sc.create_user(g, "reader", password_of("reader"), ["team"])
    sc.bulk_users(g, ["member%05d" % i for i in range(8000)], "team")
    with g:
        ws = sc.RawWebSocket(g.host, g.signaling_port, timeout=10, rcvbuf=4096)
        try:
            ws.send_texts([json.dumps({"type": "login", "id": 1, "user": u.name,
                                       "password": u.password, "totp": u.next_totp()})])
            frames, how = ws.read_until_closed(timeout=5)
            assert any(b'"login.ok"' in p for _, p in frames), "login: %s %r" % (how, frames)
            ws.send_texts([json.dumps({"type": "contacts", "id": 2})])
            time.sleep(0.5)
            # Twelve pushes, none read meanwhile: more than the kernel's
            # buffers on loopback take, so the rest waits in the daemon.
            for _ in range(PUSHES):
                os.kill(g.proc.pid, signal.SIGHUP)
                time.sleep(0.3)
            frames, how = ws.read_until_closed(timeout=10)
        finally:
            ws.close()
        texts = [json.loads(p) for op, p in frames if op == 0x1]
        assert how == "timeout", "the session was closed (%s) after %d messages: %r" % (
            how, len(texts), [t.get("type") for t in texts])
        replies = [t for t in texts if t.get("type") == "contacts.ok" and t.get("id") == 2]
        pushes = [t for t in texts if t.get("type") == "contacts.ok" and "id" not in t]
        assert len(replies) == 1 and len(replies[0]["contacts"]) == 8000, \
            "the answer: %r" % [len(r["contacts"]) for r in replies]
        assert 1 <= len(pushes) < PUSHES and all(len(p["contacts"]) == 8000 for p in pushes), \
            "%d of %d pushes arrived: none replaced another" % (len(pushes), PUSHES)
        print("  %d of %d pushes arrived, the others were replaced unsent"
              % (len(pushes), PUSHES), flush=True)
        run(serves(g))


# --------------------------------------------------------- bad requests

def bad_inputs():
    return [
        ("malformed JSON", '{"type": "ping", "id": 1', None),
        ("non-object (array)", '["ping"]', None),
        ("non-object (string)", '"ping"', None),
        ("non-object (number)", "42", None),
        ("duplicate keys", '{"type":"ping","type":"login","id":3}', None),
        ("depth 20", '{"type":"ping","id":4,"x":' + "[" * 20 + "]" * 20 + "}", None),
        ("unknown type", json.dumps({"type": "frobnicate", "id": 5}), 5),
        ("missing type", json.dumps({"id": 6}), 6),
        ("before login: contacts", json.dumps({"type": "contacts", "id": 7}), 7),
        ("before login: call", json.dumps({"type": "call", "id": 8, "to": "bob", "media": ["audio"]}), 8),
        ("oversized (70 KiB)", json.dumps({"type": "ping", "id": 9, "pad": "x" * (70 * 1024)}), None),
    ]


def test_bad_requests():
    g = shared()

    async def body():
        problems = []
        for label, text, want_id in bad_inputs():
            async with sc.SigClient(sc.ws_url(g), name=label) as c:
                await c.send_raw(text)
                try:
                    r = await c.wait(lambda m: True, 3, "an answer to " + label)
                except AssertionError as e:
                    problems.append("%s: %s" % (label, str(e).splitlines()[0]))
                    continue
                if r.get("type") != "error" or r.get("code") != "bad_request":
                    problems.append("%s: answered %r" % (label, r))
                    continue
                if want_id is not None and r.get("id") != want_id:
                    problems.append("%s: error does not echo id %r: %r" % (label, want_id, r))
                try:
                    await c.ping(3)
                except AssertionError as e:
                    problems.append("%s: no pong after one bad request: %s" % (label, str(e).splitlines()[0]))
        assert not problems, "bad requests not answered with bad_request:\n  " + "\n  ".join(problems)
        await serves(g)
    with_log(g, lambda: run(body()))


def test_strikes_close_connection():
    g = shared()

    async def body():
        inputs = [t for _, t, _ in bad_inputs()]
        async with sc.SigClient(sc.ws_url(g), name="striker") as c:
            for i in range(4):
                await c.send_raw(inputs[i])
                r = await c.wait(lambda m: True, 3, "answer to bad request %d" % (i + 1))
                assert r.get("code") == "bad_request", "bad request %d answered %r" % (i + 1, r)
            await c.ping()  # four strikes: still open
            await c.send_raw(inputs[6])
            r = await c.wait(lambda m: m.get("type") == "error", 3, "answer to bad request 5")
            assert r.get("code") == "bad_request", "bad request 5 answered %r" % r
            assert await c.wait_closed(5), "server did not close after 5 bad requests\n%s" % c.describe()
        await serves(g)
    with_log(g, lambda: run(body()))


def test_flood():
    """200 messages written in one go. (A raw socket, not aiohttp: an
    aiohttp client still writing when the server closes gets a reset on
    send and drops what it had not read yet, which would hide the
    server's answers.)"""
    g = shared()

    def flood():
        ws = sc.RawWebSocket("127.0.0.1", g.signaling_port)
        try:
            ws.send_texts([json.dumps({"type": "ping", "id": i}) for i in range(200)])
            return ws.read_until_closed(10)
        finally:
            ws.close()

    async def body():
        frames, how = await sc.in_thread(flood)
        msgs = [json.loads(p) for op, p in frames if op == 0x1]
        closes = [p for op, p in frames if op == 0x8]
        pongs = [m for m in msgs if m.get("type") == "pong"]
        limited = [m for m in msgs if m.get("type") == "error" and m.get("code") == "bad_request"
                   and m.get("message") == "too many messages"]
        code = struct.unpack("!H", closes[0][:2])[0] if closes and len(closes[0]) >= 2 else None
        print("flood: %d pongs, %d 'too many messages', %d other; ended by %s (close code %s)" % (
            len(pongs), len(limited), len(msgs) - len(pongs) - len(limited), how, code), flush=True)
        assert limited, "no bad_request \"too many messages\" among %d answers: %r" % (
            len(msgs), msgs[:3] + msgs[-3:])
        assert len(pongs) <= 60, "%d of 200 pings answered: the rate limit (20/s, burst 40) " \
            "did not hold" % len(pongs)
        assert how in ("close-frame", "eof", "reset"), "flooding connection not closed by the server " \
            "within 10 s (%s)" % how
        await serves(g)
        assert g.alive(), "daemon not alive after the flood"
    with_log(g, lambda: run(body()))


# ------------------------------------- forced closes of stuck readers

PAD_SDP = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
           "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=x-pad:%s\r\n" % ("y" * 40000))


def daemon_send_q(g, client_port):
    """Bytes the daemon's socket to a client's port holds unsent (ss), or
    None when that connection is no longer established on its side."""
    out = subprocess.run(["ss", "-tnH", "state", "established",
                          "( sport = :%d and dport = :%d )" % (g.signaling_port, client_port)],
                         capture_output=True, text=True, timeout=10).stdout.split()
    return int(out[1]) if len(out) > 1 else None


class StuckReader:
    """A participant whose client stops reading: a raw WebSocket with a
    tiny receive buffer, read only until it goes quiet (blocking; run it
    through in_thread)."""

    def __init__(self, g, user):
        self.ws = sc.RawWebSocket(g.host, g.signaling_port, timeout=10, rcvbuf=1024)
        self.port = self.ws.sock.getsockname()[1]
        self.inbox = []
        self.last_sent = time.monotonic()
        self.send({"type": "login", "id": 1, "user": user.name, "password": user.password,
                   "totp": user.next_totp()})
        r = self.wait(lambda m: m.get("id") == 1, 10 * gh.slow_factor())
        assert r.get("type") == "login.ok", "login of %s: %r" % (user.name, r)

    def send(self, *objs):
        self.ws.send_texts([json.dumps(o) for o in objs])
        self.last_sent = time.monotonic()

    def wait(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.inbox):
                if pred(m):
                    return self.inbox.pop(i)
            left = deadline - time.monotonic()
            assert left > 0, "stuck reader: nothing matching within %.1f s: %r" % (
                timeout, self.inbox[-5:])
            self.ws.sock.settimeout(left)
            chunk = self.ws.sock.recv(65536)
            assert chunk, "stuck reader: closed while waiting: %r" % self.inbox[-5:]
            self.ws.buf += chunk
            self.inbox += [json.loads(p) for op, p in self.ws._parse() if op == 0x1]


def forced_close_of_stuck_reader(victim, peer, trigger):
    """Review finding: a client could keep a session the daemon closes
    alive, and with it its calls, credentials and media: the close waited
    for the queue to drain, which a client that stops reading never lets
    happen, and every frame it sent re-armed the idle timeout in place of
    the 2 s close timeout. victim stops reading (peer fills the daemon's
    socket to it with descriptions), stays silent for over 5 s (so that
    the next frame it sends re-arms the timeout, as on the old code), then
    the daemon closes it (trigger) while it keeps pinging. The call must
    end for peer at once, its credentials be refused, the connection be
    gone within seconds without victim reading, and the logout be audited
    once, when the close was asked for."""
    g = shared()
    slow = gh.slow_factor()
    stop = []

    def pinger(sr):
        while not stop:
            try:
                sr.send({"type": "ping"})
            except OSError:
                return
            time.sleep(0.25)

    async def body():
        sr = await sc.in_thread(StuckReader, g, U(victim))
        cp = await sc.logged_in(g, U(peer), peer)
        th = None
        try:
            sr.send({"type": "call", "id": 2, "to": peer, "media": ["audio"]})
            ok = await sc.in_thread(sr.wait, lambda m: m.get("id") == 2)
            assert ok.get("type") == "call.ok", "call: %r" % ok
            cid, vcred = ok["call"], ok["ice_servers"][0]
            await cp.wait_for("incoming", call=cid)
            r = await cp.request({"type": "accept", "call": cid})
            assert r.get("type") == "accept.ok", "accept: %r" % r
            pcred = r["ice_servers"][0]
            await sc.in_thread(sr.wait, lambda m: m.get("type") == "accepted")
            # Fill the daemon's socket to victim until it takes no more.
            prev, same = -1, 0
            for _ in range(60):
                await cp.send({"type": "sdp", "call": cid, "sdp": {"type": "offer", "sdp": PAD_SDP}})
                await asyncio.sleep(0.1)
                q = daemon_send_q(g, sr.port)
                same = same + 1 if q == prev and q else 0
                prev = q
                if same >= 5:
                    break
            assert same >= 5, "the daemon's socket to %s never filled (Send-Q %r)" % (victim, prev)
            await asyncio.sleep(max(0.0, 5.5 - (time.monotonic() - sr.last_sent)))
            if trigger == "disable":
                p = await sc.in_thread(lambda: subprocess.run(
                    [g.binary, "user", "disable", victim, "-c", g.config_path],
                    capture_output=True, text=True, timeout=30))
                assert p.returncode == 0, "user disable: %s%s" % (p.stdout, p.stderr)
                await asyncio.sleep(1.5)   # users.db is read once a second
            else:
                sr.send({"type": "ping"})
                await asyncio.sleep(3.5)
                sr.send(*[{"type": "nonsense", "id": 10 + i} for i in range(5)])
            th = threading.Thread(target=pinger, args=(sr,), daemon=True)
            th.start()
            h = await cp.wait_for("hangup", call=cid, timeout=10 * slow)
            assert h.get("reason") == "disconnected", "%s got %r" % (peer, h)
            deadline = time.monotonic() + 10 * slow
            while daemon_send_q(g, sr.port) is not None:
                assert time.monotonic() < deadline, \
                    "the daemon still holds %s's connection open" % victim
                await asyncio.sleep(0.2)
            for who, cred in ((victim, vcred), (peer, pcred)):
                t = tc.TurnClient(g.host, g.port, "udp", cred["username"], cred["credential"])
                try:
                    resp = await sc.in_thread(t.allocate)
                finally:
                    t.close()
                assert resp is not None and resp.code == 401, \
                    "%s's credentials after the close: Allocate answered %r" % (who, resp)
            await cp.ping()
        finally:
            stop.append(True)
            if th is not None:
                th.join(2)
            sr.ws.close()
            await cp.close()
            if trigger == "disable":
                subprocess.run([g.binary, "user", "enable", victim, "-c", g.config_path],
                               capture_output=True, timeout=30)
        # The audit trail: one logout, written when the close was asked for.
        await asyncio.sleep(0.5)
        events = []
        with open(os.path.join(g.state_dir, "audit.jsonl"), "rb") as f:
            for line in f.read().splitlines():
                try:
                    events.append(json.loads(line))
                except ValueError:
                    pass
        sid = [e for e in events if e.get("event") == "login.success" and e.get("user") == victim][-1]["session"]
        logouts = [i for i, e in enumerate(events) if e.get("event") == "logout" and e.get("session") == sid]
        ended = [e for e in events if e.get("event") == "call.ended" and e.get("call") == cid]
        assert len(logouts) == 1, "%d logouts audited for session %d" % (len(logouts), sid)
        assert len(ended) == 1 and ended[0].get("reason") == "disconnected", "call.ended: %r" % ended
        logout = events[logouts[0]]
        if trigger == "disable":
            changed = [i for i, e in enumerate(events) if e.get("event") == "user.changed"
                       and e.get("user") == victim and e.get("reason") == "disabled"]
            assert changed and logouts[0] < changed[0], \
                "logout %r not audited when the sessions were closed (user.changed %r)" % (
                    logout, [events[i] for i in changed])
        else:
            abuse = [e for e in events if e.get("event") == "session.abuse" and e.get("session") == sid]
            assert len(abuse) == 1 and logout["ts_ms"] - abuse[0]["ts_ms"] < 1000, \
                "logout %r long after the close for abuse %r" % (logout, abuse)
        await serves(g)

    with_log(g, lambda: run(body(), 120))


def test_disabled_user_stuck_reader_loses_call():
    forced_close_of_stuck_reader("hal", "kim", "disable")


def test_striking_stuck_reader_loses_call():
    forced_close_of_stuck_reader("quy", "ria", "strikes")


# ------------------------------------------------- candidate filtering

def relay_line(ip, port, raddr="0.0.0.0", rport=0, foundation="5", typ="relay", transport="udp"):
    return ("candidate:%s 1 %s 16777215 %s %d typ %s raddr %s rport %d generation 0"
            % (foundation, transport, ip, port, typ, raddr, rport))


def test_trickle_candidates_filtered():
    g = shared()

    async def body():
        ce, cf, cid, es, fs = await setup_call(g, "erin", "frank")
        te = tf = ts = None
        try:
            te = await sc.in_thread(turn_alloc, g, es)
            tf = await sc.in_thread(turn_alloc, g, fs)
            ts = await sc.in_thread(lambda: turn_alloc(g, user="bench", password="secret"))
            (eip, eport), (fip, fport), (sip, sport) = te.relayed, tf.relayed, ts.relayed
            injected = {
                "host": "candidate:1 1 udp 2122260223 %s 50000 typ host generation 0" % HOST_IP,
                "host on loopback": "candidate:1 1 udp 2122260223 127.0.0.1 %d typ host" % g.signaling_port,
                "mDNS host": "candidate:1 1 udp 2122260223 0a1b2c3d-1111-2222-3333-444455556666.local 50000 typ host",
                "srflx": "candidate:2 1 udp 1686052607 %s 50001 typ srflx raddr %s rport 50000" % (SRFLX_IP, HOST_IP),
                "prflx": "candidate:2 1 udp 1686052607 %s 50001 typ prflx" % SRFLX_IP,
                "another TURN server's relay": relay_line(OTHER_TURN_IP, 3478, SRFLX_IP, 50001),
                "unallocated Gatehouse relay port": relay_line("127.0.0.1", g.port_max),
                "the other participant's relay": relay_line(fip, fport),
                "a static user's relay": relay_line(sip, sport),
                "own relay as TCP": relay_line(eip, eport, transport="tcp"),
                "own relay address as typ host": relay_line(eip, eport, typ="host"),
                "own relay IP, wrong port": relay_line(eip, eport + 1 if eport < g.port_max else eport - 1),
                "own relay + CRLF + a host line": relay_line(eip, eport) +
                "\r\na=candidate:1 1 udp 2122260223 %s 50000 typ host" % HOST_IP,
                "own relay + LF + a host candidate": relay_line(eip, eport) +
                "\ncandidate:1 1 udp 2122260223 %s 50000 typ host" % HOST_IP,
            }
            for label, cand in injected.items():
                await ce.send({"type": "candidate", "call": cid,
                               "candidate": {"candidate": cand, "sdpMid": "0", "sdpMLineIndex": 0}})
            await ce.ping()
            got = [m for m in cf.inbox if m.get("type") == "candidate"]
            await cf.expect_nothing(1.0, lambda m: m.get("type") == "candidate")
            assert not got
            # The sender's real relay is forwarded, even with a host address
            # in raddr (which must not travel with it).
            real = relay_line(eip, eport, HOST_IP, 50000, foundation="9")
            await ce.send({"type": "candidate", "call": cid,
                           "candidate": {"candidate": real, "sdpMid": "0", "sdpMLineIndex": 0}})
            m = await cf.wait_for("candidate", call=cid, timeout=3)
            cand = m["candidate"]
            fields = cand["candidate"].split()
            assert fields[4:8] == [eip, str(eport), "typ", "relay"], \
                "forwarded candidate %r is not %s:%d relay" % (cand, eip, eport)
            assert cand.get("sdpMid") == "0" and cand.get("sdpMLineIndex") == 0, \
                "sdpMid/sdpMLineIndex not kept: %r" % cand
            assert HOST_IP not in json.dumps(m), "host address forwarded in raddr: %r" % m
            await cf.expect_nothing(0.3, lambda m: m.get("type") == "candidate")
            await ce.ping()
            await cf.ping()
        finally:
            for t in (te, tf, ts):
                if t is not None:
                    t.close()
            await ce.close()
            await cf.close()
        await serves(g)
    with_log(g, lambda: run(body()))


def test_candidate_sdpmid_token():
    """Review finding: candidate.sdpMid was forwarded verbatim, so a
    participant could put SDP lines in front of the other side
    ("0\\r\\nc=IN IP4 10.1.2.3"). Only an RFC 5888 identification-tag
    (an SDP token, 1 to 32 characters) passes; anything else is
    bad_request "bad sdpMid" and nothing is forwarded."""
    g = shared()

    async def body():
        ci, cj, cid, is_, js = await setup_call(g, "ida", "jon")
        ti = None
        try:
            ti = await sc.in_thread(turn_alloc, g, is_)
            ip, port = ti.relayed
            cand = relay_line(ip, port)
            for mid in ("0\r\nc=IN IP4 10.1.2.3\r\n", "0\n", "audio 0", "", "x" * 33,
                        "a\"b", "v\u00e9deo"):
                r = await ci.request({"type": "candidate", "call": cid,
                                      "candidate": {"candidate": cand, "sdpMid": mid,
                                                    "sdpMLineIndex": 0}})
                assert r.get("type") == "error" and r.get("code") == "bad_request" and \
                    r.get("message") == "bad sdpMid", "sdpMid %r answered %r" % (mid, r)
                if mid == "audio 0":
                    # three strikes so far: a new session for the rest
                    break
            await cj.expect_nothing(0.5, lambda m: m.get("type") == "candidate")
            await ci.ping()
            # Token characters pass, as they came.
            for mid in ("0", "audio", "a!#$%&'*+-.^_`{|}~9"):
                await ci.send({"type": "candidate", "call": cid,
                               "candidate": {"candidate": cand, "sdpMid": mid, "sdpMLineIndex": 0}})
                m = await cj.wait_for("candidate", call=cid, timeout=3)
                assert m["candidate"].get("sdpMid") == mid, "sdpMid %r forwarded as %r" % (mid, m)
        finally:
            if ti is not None:
                ti.close()
            await ci.close()
            await cj.close()
        # The rest on a new session: each is a strike.
        ci, cj, cid, is_, js = await setup_call(g, "ida", "jon")
        ti = None
        try:
            ti = await sc.in_thread(turn_alloc, g, is_)
            cand = relay_line(*ti.relayed)
            for mid in ("", "x" * 33, "a\"b", "v\u00e9deo"):
                r = await ci.request({"type": "candidate", "call": cid,
                                      "candidate": {"candidate": cand, "sdpMid": mid}})
                assert r.get("message") == "bad sdpMid", "sdpMid %r answered %r" % (mid, r)
            await cj.expect_nothing(0.5, lambda m: m.get("type") == "candidate")
            await ci.ping()
        finally:
            if ti is not None:
                ti.close()
            await ci.close()
            await cj.close()
        await serves(g)
    with_log(g, lambda: run(body()))


SDP_TEMPLATE = """v=0
o=- 4611731400430051336 2 IN IP4 {host}
s=-
t=0 0
a=group:BUNDLE 0 1
a=msid-semantic:WMS *
m=audio 50000 UDP/TLS/RTP/SAVPF 111
c=IN IP4 {host}
a=rtcp:50001 IN IP4 {host}
a=candidate:1 1 udp 2122260223 {host} 50000 typ host generation 0
a=candidate:2 1 udp 1686052607 {srflx} 50001 typ srflx raddr {host} rport 50000 generation 0
a=candidate:3 1 udp 41885439 {other} 3478 typ relay raddr {srflx} rport 50001 generation 0
a=candidate:4 1 tcp 1518280447 {host} 9 typ host tcptype active generation 0
a=candidate:5 1 udp 16777215 {rip} {rport} typ relay raddr {host} rport 50000 generation 0
a=candidate:6 1 udp 16777215 {fip} {fport} typ relay raddr 0.0.0.0 rport 0 generation 0
a=end-of-candidates
a=ice-ufrag:Ab12
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=fingerprint:sha-256 DB:E6:CE:32:A1:D9:87:1E:B2:5B:1F:45:E7:12:F8:50:86:10:97:55:29:8C:5E:F7:D9:26:C9:EF:E6:FE:B1:14
a=setup:actpass
a=mid:0
a=sendrecv
a=rtcp-mux
a=rtpmap:111 opus/48000/2
m=application 50002 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP4 {host}
a=candidate:7 1 udp 2122260223 {host} 50002 typ host generation 0
a=candidate:8 1 udp 16777215 {rip} {rport} typ relay raddr {srflx} rport 50001 generation 0
a=ice-ufrag:Ab12
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=fingerprint:sha-256 DB:E6:CE:32:A1:D9:87:1E:B2:5B:1F:45:E7:12:F8:50:86:10:97:55:29:8C:5E:F7:D9:26:C9:EF:E6:FE:B1:14
a=setup:actpass
a=mid:1
a=sctp-port:5000
a=max-message-size:262144
"""


def test_sdp_host_candidates_removed():
    g = shared()

    async def body():
        ce, cf, cid, es, fs = await setup_call(g, "olga", "pete")
        te = tf = None
        try:
            te = await sc.in_thread(turn_alloc, g, es)
            tf = await sc.in_thread(turn_alloc, g, fs)
            (rip, rport), (fip, fport) = te.relayed, tf.relayed
            sdp = SDP_TEMPLATE.format(host=HOST_IP, srflx=SRFLX_IP, other=OTHER_TURN_IP,
                                      rip=rip, rport=rport, fip=fip, fport=fport)
            await ce.send({"type": "sdp", "call": cid, "sdp": {"type": "offer", "sdp": sdp}})
            m = await cf.wait_for("sdp", call=cid, timeout=3)
            assert m["sdp"]["type"] == "offer", "forwarded as %r" % m["sdp"]["type"]
            out = m["sdp"]["sdp"]
            lines = [l.strip() for l in out.splitlines()]
            cands = [l for l in lines if "candidate" in l and not l.startswith("a=end-of-candidates")]
            want = "127.0.0.1 %d typ relay" % rport
            assert len(cands) == 2 and all(want in l for l in cands), \
                "expected exactly the sender's relay (twice), got %r in:\n%s" % (cands, out)
            for ip in (HOST_IP, SRFLX_IP, OTHER_TURN_IP):
                assert ip not in out, "%s survives in the forwarded SDP:\n%s" % (ip, out)
            assert ("%d typ relay" % fport) not in out, "the other participant's relay was kept:\n%s" % out
            for l in lines:
                if l.startswith(("c=", "o=")):
                    assert l.split()[-1] == "0.0.0.0", "not rewritten: %r" % l
                if l.startswith("m="):
                    assert l.split()[1] == "9", "m= port not 9: %r" % l
                if l.startswith("a=rtcp:"):
                    assert l.split()[0] == "a=rtcp:9", "a=rtcp port not 9: %r" % l
            # The rest of the description is intact.
            for keep in ("a=ice-ufrag:Ab12", "a=fingerprint:sha-256 DB:E6", "a=mid:1",
                         "a=rtpmap:111 opus/48000/2", "a=sctp-port:5000"):
                assert keep in out, "%r lost in the forwarded SDP:\n%s" % (keep, out)
            await ce.ping()
            await cf.ping()
        finally:
            for t in (te, tf):
                if t is not None:
                    t.close()
            await ce.close()
            await cf.close()
        await serves(g)
    with_log(g, lambda: run(body()))


HOST_IP6 = "2001:db8:77::10"

SDP_ODD_SPELLINGS = """v=0
o=- 4611731400430051337 2 IN IP6 {host6}
s=-
t=0 0
a=candidate:0 1 udp 2122260223 {host} 50010 typ host
m=audio 50000 UDP/TLS/RTP/SAVPF 111
c=IN IP6 {host6}
a=rtcp:50001 IN IP6 {host6}
a=candidate foo:1 1 udp 2122260223 {host} 50000 typ host
a=candidate :2 1 udp 2122260223 {host} 50001 typ host
a=Candidate:3 1 udp 2122260223 {host} 50002 typ host
a=CANDIDATE:4 1 udp 2122260223 {host} 50003 typ host
a=candidate:5 1 udp 2122260223 {host6} 50004 typ host
a=candidate:6 1 udp 16777215 {rip} {rport} typ relay raddr {host6} rport 50004
a=candidate:7  1 udp 2122260223 {host} 50005 typ host
a=candidate:8 1 udp 2122260223 {host} 50006 typ  host
a=candidate:9\t1 udp 2122260223 {host} 50007 typ host
a=candidate:10 1 udp 16777215 {host} 50008 typ relay
a=candidate:11 1 udp 16777215 {rip} {rport} typ Relay
a=remote-candidates:1 {host} 50000
a=ice-ufrag:Ab12
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=fingerprint:sha-256 DB:E6:CE:32:A1:D9:87:1E:B2:5B:1F:45:E7:12:F8:50:86:10:97:55:29:8C:5E:F7:D9:26:C9:EF:E6:FE:B1:14
a=setup:actpass
a=mid:0
a=rtcp-mux
a=rtpmap:111 opus/48000/2
"""


def test_sdp_odd_candidate_spellings():
    """Spellings some parser might still read as a candidate (libwebrtc
    takes "a=candidate foo:..."), IPv6 host addresses, a session-level
    candidate: none may reach the other side. Refusing the whole SDP
    (bad_request) is also safe; forwarding any of them is not."""
    g = shared()

    async def body():
        ca, cb, cid, as_, bs = await setup_call(g, "uma", "vic")
        ta = None
        try:
            ta = await sc.in_thread(turn_alloc, g, as_)
            rip, rport = ta.relayed
            sdp = SDP_ODD_SPELLINGS.format(host=HOST_IP, host6=HOST_IP6, rip=rip, rport=rport)
            await ca.send({"type": "sdp", "id": 77, "call": cid, "sdp": {"type": "offer", "sdp": sdp}})
            await asyncio.sleep(1.0)
            fwd = [m for m in cb.drain() if m.get("type") == "sdp"]
            err = [m for m in ca.drain() if m.get("id") == 77]
            if not fwd:
                assert err and err[0].get("code") == "bad_request", \
                    "SDP neither forwarded nor refused: %r" % err
                print("odd-spelling SDP refused as a whole: %r" % err[0], flush=True)
            else:
                out = fwd[0]["sdp"]["sdp"]
                print("odd-spelling SDP forwarded as:\n%s" % out, flush=True)
                for ip in (HOST_IP, HOST_IP6):
                    assert ip not in out, "%s survives in the forwarded SDP:\n%s" % (ip, out)
                kept = [l for l in out.splitlines() if "candidate" in l.lower()]
                assert all(("%s %d typ relay" % (rip, rport)) in l for l in kept), \
                    "candidate-like lines other than the sender's relay kept: %r" % kept
                for l in out.splitlines():
                    if l.startswith(("c=", "o=")):
                        assert l.split()[-1] in ("0.0.0.0", "::"), "not rewritten: %r" % l
            await ca.ping()
            await cb.ping()
        finally:
            if ta is not None:
                ta.close()
            await ca.close()
            await cb.close()
        await serves(g)
    with_log(g, lambda: run(body()))


# ---------------------------------------------- TURN credentials of a call

def test_call_credentials_scope_and_revocation():
    g = shared()

    async def body():
        ca, cb, cid, gs, hs = await setup_call(g, "gina", "hank")
        cx, cy, cid2, xs, ys = await setup_call(g, "ivan", "judy")
        clients = []
        listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(1.0)
        try:
            for u in (gs["username"], gs["credential"], hs["username"], hs["credential"]):
                for secret in ("gina", "hank", cid):
                    assert secret not in u, "TURN credential %r reveals %r" % (u, secret)
            a1 = await sc.in_thread(turn_alloc, g, gs)
            a2 = await sc.in_thread(turn_alloc, g, gs)
            b1 = await sc.in_thread(turn_alloc, g, hs)
            x1 = await sc.in_thread(turn_alloc, g, xs)
            s1 = await sc.in_thread(lambda: turn_alloc(g, user="bench", password="secret"))
            clients += [a1, a2, b1, x1, s1]
            refused = {
                "the signaling port": ("127.0.0.1", g.signaling_port),
                "the TURN listener": ("127.0.0.1", g.port),
                "another call's allocation": x1.relayed,
                "a static user's allocation": s1.relayed,
                "the same user's other allocation": a2.relayed,
                "its own relayed address": a1.relayed,
                "a plain UDP socket on loopback": listener.getsockname(),
            }
            problems = []
            for label, peer in refused.items():
                r = await sc.in_thread(a1.create_permission, [peer])
                if r is None or r.code != 403:
                    problems.append("CreatePermission to %s %s:%d answered %r, expected 403"
                                    % (label, peer[0], peer[1], r))
            r = await sc.in_thread(a1.create_permission, [b1.relayed])
            if r is None or r.code != 200:
                problems.append("CreatePermission to the other participant's relay answered %r" % r)
            r = await sc.in_thread(b1.create_permission, [a1.relayed])
            if r is None or r.code != 200:
                problems.append("the other participant's CreatePermission back answered %r" % r)
            r = await sc.in_thread(a1.channel_bind, 0x4001, x1.relayed)
            if r is None or r.code != 403:
                problems.append("ChannelBind to another call's allocation answered %r" % r)
            assert not problems, "\n  ".join([""] + problems)
            # With a permission for the other participant (same IP as
            # everything here), nothing else on 127.0.0.1 is reachable.
            a1.send_indication(listener.getsockname(), b"escape")
            a1.send_indication(b1.relayed, b"\x80hello hank")  # RTP-like: media only
            got = await sc.in_thread(b1.recv_data, 2.0)
            assert got is not None and got[2] == b"\x80hello hank" and tuple(got[1]) == tuple(a1.relayed), \
                "relay to the other participant failed: %r" % (got,)
            try:
                leaked = listener.recvfrom(2048)
            except socket.timeout:
                leaked = None
            assert leaked is None, "a Send indication to a non-relay loopback port was relayed: %r" % (leaked,)

            # Hangup: the credentials go and the allocations with them.
            await cb.send({"type": "hangup", "call": cid})
            h = await ca.wait_for("hangup", call=cid)
            assert h.get("reason") == "hangup", "gina got %r" % h
            await asyncio.sleep(0.2)
            for who, srv in (("gina", gs), ("hank", hs)):
                c = tc.TurnClient(g.host, g.port, "udp", srv["username"], srv["credential"])
                clients.append(c)
                r = await sc.in_thread(c.allocate)
                assert r is not None and r.code == 401, \
                    "%s's call credentials after hangup: Allocate answered %r, expected 401" % (who, r)
            for who, c in (("a1", a1), ("a2", a2), ("b1", b1)):
                r = await sc.in_thread(c.refresh, 600)
                assert r is not None and not r.ok and r.code in (401, 437), \
                    "Refresh of %s's allocation after hangup answered %r" % (who, r)
                c.relayed = None  # nothing left to release
            log = g.log()
            m = re.search(r"turn: (\d+) allocations of call %s removed" % re.escape(cid), log)
            assert m and int(m.group(1)) == 3, "expected '3 allocations of call %s removed' in the log; " \
                "found %r" % (cid, m.group(0) if m else None)
            # The other call and the static user are untouched.
            r = await sc.in_thread(x1.refresh, 600)
            assert r is not None and r.ok, "the other call's allocation after this hangup: %r" % r
            r = await sc.in_thread(s1.refresh, 600)
            assert r is not None and r.ok, "the static user's allocation after the hangup: %r" % r
            await cx.ping()
        finally:
            listener.close()
            for c in clients:
                c.close()
            for c in (ca, cb, cx, cy):
                await c.close()
        await serves(g)
    with_log(g, lambda: run(body()))


def test_same_pair_two_calls():
    """Two concurrent calls between the same two users: an allocation of
    one call reaches the other user's allocation of the same call only,
    and ending one call leaves the other working."""
    g = shared()

    async def body():
        cw = await sc.logged_in(g, U("wes"), "wes")
        cx = await sc.logged_in(g, U("xena"), "xena")
        clients = []
        try:
            calls = []
            for _ in range(2):
                r = await cw.request({"type": "call", "to": "xena", "media": ["audio"]})
                assert r.get("type") == "call.ok", "%r" % r
                await cx.wait_for("incoming", call=r["call"])
                r2 = await cx.request({"type": "accept", "call": r["call"]})
                assert r2.get("type") == "accept.ok", "%r" % r2
                await cw.wait_for("accepted", call=r["call"])
                calls.append((r["call"], r["ice_servers"][0], r2["ice_servers"][0]))
            (c1, w1s, x1s), (c2, w2s, x2s) = calls
            w1 = await sc.in_thread(turn_alloc, g, w1s)
            x1 = await sc.in_thread(turn_alloc, g, x1s)
            w2 = await sc.in_thread(turn_alloc, g, w2s)
            x2 = await sc.in_thread(turn_alloc, g, x2s)
            clients += [w1, x1, w2, x2]
            r = await sc.in_thread(w1.create_permission, [x2.relayed])
            assert r is not None and r.code == 403, "call 1 -> xena's call-2 allocation: %r" % r
            r = await sc.in_thread(w2.create_permission, [x1.relayed])
            assert r is not None and r.code == 403, "call 2 -> xena's call-1 allocation: %r" % r
            r = await sc.in_thread(w1.create_permission, [x1.relayed])
            assert r is not None and r.code == 200, "call 1 -> xena's call-1 allocation: %r" % r
            r = await sc.in_thread(w2.create_permission, [x2.relayed])
            assert r is not None and r.code == 200, "call 2 -> xena's call-2 allocation: %r" % r
            await cw.send({"type": "hangup", "call": c1})
            h = await cx.wait_for("hangup", call=c1)
            assert h.get("reason") == "hangup", "%r" % h
            await asyncio.sleep(0.2)
            r = await sc.in_thread(w2.refresh, 600)
            assert r is not None and r.ok, "call 2's allocation after call 1 ended: %r" % r
            r = await sc.in_thread(x2.create_permission, [w2.relayed])
            assert r is not None and r.code == 200, "call 2 permission after call 1 ended: %r" % r
            r = await sc.in_thread(w1.refresh, 600)
            assert r is not None and not r.ok, "call 1's allocation after its hangup: %r" % r
            w1.relayed = x1.relayed = None
            await cw.ping()
        finally:
            for c in clients:
                c.close()
            await cw.close()
            await cx.close()
        await serves(g)
    with_log(g, lambda: run(body()))


# ------------------------------------------------------------- ringing

def test_ringing_timeout():
    if os.environ.get("GH_SKIP_RING"):
        print("skipped (GH_SKIP_RING)")
        return
    g = shared()

    async def body():
        ck = await sc.logged_in(g, U("ken"), "ken")
        cl = await sc.logged_in(g, U("lena"), "lena")
        try:
            r = await ck.request({"type": "call", "to": "lena", "media": ["audio"]})
            assert r.get("type") == "call.ok", "%r" % r
            cid = r["call"]
            srv = r["ice_servers"][0]
            t0 = time.monotonic()
            await cl.wait_for("incoming", call=cid)
            h = await ck.wait_for("hangup", call=cid, timeout=40)
            dt = time.monotonic() - t0
            assert h.get("reason") == "timeout", "caller got %r" % h
            assert 28 <= dt <= 36, "ringing ended after %.1f s, expected 30 s" % dt
            h2 = await cl.wait_for("hangup", call=cid, timeout=2)
            assert h2.get("reason") == "timeout", "callee got %r" % h2
            r = await cl.request({"type": "accept", "call": cid})
            assert r.get("code") == "bad_request", "accept after the timeout: %r" % r
            # The call's credentials went with it.
            t = tc.TurnClient(g.host, g.port, "udp", srv["username"], srv["credential"])
            try:
                resp = await sc.in_thread(t.allocate)
            finally:
                t.close()
            assert resp is not None and resp.code == 401, \
                "caller's credentials after the ringing timeout: %r" % resp
            await ck.ping()
        finally:
            await ck.close()
            await cl.close()
        await serves(g)
    with_log(g, lambda: run(body(), 60))


def test_ringing_timeout_wall_clock_steps():
    """The hub measures ringing on the monotonic clock (hub.h, struct
    hub_time): with the daemon's wall clock stepped back an hour, a call
    still ends with "timeout" 30 s after it was placed; with it stepped a
    day ahead, a call just placed still rings, and its setup_ms and
    duration_ms in the audit are not a day long."""
    if os.environ.get("GH_SKIP_RING"):
        print("skipped (GH_SKIP_RING)")
        return
    with gh.WallShift() as ws:
        g = gh.Gatehouse(ARGS.gatehouse)
        policy = os.path.join(g.workdir, "policy.json")
        g.config["policy"] = {"file": policy}
        sc.write_policy(policy, [
            {"name": "team-calls", "from": "group:team", "to": "group:team",
             "media": ["audio"], "action": "allow"},
        ], {"team": ["ken", "lena"]})
        sc.write_config(g)
        users = {n: sc.create_user(g, n, password_of(n), ["team"]) for n in ("ken", "lena")}
        ws.wrap(g)

        async def body():
            # Logged in before any step: the TOTP codes follow the real clock.
            ck = await sc.logged_in(g, users["ken"], "ken")
            cl = await sc.logged_in(g, users["lena"], "lena")
            try:
                r = await ck.request({"type": "call", "to": "lena", "media": ["audio"]})
                assert r.get("type") == "call.ok", "%r" % r
                cid = r["call"]
                t0 = time.monotonic()
                await cl.wait_for("incoming", call=cid)
                ws.step(-3600 * 1000)
                h = await ck.wait_for("hangup", call=cid, timeout=40)
                dt = time.monotonic() - t0
                assert h.get("reason") == "timeout", "caller got %r" % h
                assert 28 <= dt <= 36, "ringing ended after %.1f s with the wall clock an " \
                    "hour behind, expected 30 s" % dt
                h2 = await cl.wait_for("hangup", call=cid, timeout=2)
                assert h2.get("reason") == "timeout", "callee got %r" % h2

                # A day ahead: the hub ticks once a second, so 2.5 s is
                # long enough for a deadline on the wall clock to have fired.
                r = await ck.request({"type": "call", "to": "lena", "media": ["audio"]})
                assert r.get("type") == "call.ok", "%r" % r
                cid = r["call"]
                await cl.wait_for("incoming", call=cid)
                ws.step(24 * 3600 * 1000)
                await asyncio.sleep(2.5)
                r = await cl.request({"type": "accept", "call": cid})
                assert r.get("type") == "accept.ok", \
                    "accept after the wall clock stepped a day ahead: %r" % r
                await ck.wait_for("accepted", call=cid)
                r = await ck.request({"type": "hangup", "call": cid})
                assert r.get("type") == "hangup.ok", "%r" % r
                e = await wait_audit(g, "call.accepted", lambda e: e.get("call") == cid)
                assert 0 <= e.get("setup_ms", -1) < 10 * 1000, "call.accepted %r" % e
                e = await wait_audit(g, "call.ended", lambda e: e.get("call") == cid)
                assert 0 <= e.get("duration_ms", -1) < 10 * 1000, "call.ended %r" % e
                await ck.ping()
            finally:
                await ck.close()
                await cl.close()
            await serves(g)
        with g:
            with_log(g, lambda: run(body(), 90))


def test_zz_shared_daemon_exits_cleanly():
    if S.g is None:
        return
    g, S.g = S.g, None
    g.__exit__(None, None, None)  # raises on a non-zero exit or a sanitizer report


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    ARGS = gh.main_args()
    gh.run_tests([
        test_login_failures_identical,
        test_login_missing_totp,
        test_login_failures_all_auth_failed,
        test_login_control_characters,
        test_jwt_tokens,
        test_design_example_policy,
        test_call_forbidden,
        test_call_offline,
        test_call_self,
        test_call_lifecycle_and_interference,
        test_callee_hangup_while_ringing,
        test_normal_refusals_not_strikes,
        test_ringing_does_not_lock_out,
        test_call_rate_limited,
        test_sdp_media_enforced,
        test_lockout_same_answer,
        test_origin_default,
        test_origin_configured,
        test_large_upgrade_headers,
        test_contacts_push_replaces_unsent_push,
        test_bad_requests,
        test_strikes_close_connection,
        test_flood,
        test_disabled_user_stuck_reader_loses_call,
        test_striking_stuck_reader_loses_call,
        test_trickle_candidates_filtered,
        test_candidate_sdpmid_token,
        test_sdp_host_candidates_removed,
        test_sdp_odd_candidate_spellings,
        test_call_credentials_scope_and_revocation,
        test_same_pair_two_calls,
        test_ringing_timeout,
        test_ringing_timeout_wall_clock_steps,
        test_zz_shared_daemon_exits_cleanly,
    ])
