#!/usr/bin/python3
"""Two headless Chromium browsers call each other through Gatehouse using
the demo page it serves (web/index.html + web/gatehouse.js).

The daemon runs with MFA required and a policy that lets alice and bob
call each other with audio, video and data. Both log in through the page's
form with password and TOTP; alice calls bob, bob answers; on both sides
the test asserts decoded, advancing remote video, a selected ICE pair that
is relay at both ends (getStats), only relay candidates on the Gatehouse
relay among those received over signaling, the page's security indicator
showing relayed + encrypted + not recorded, a data channel message each
way, and that alice's hang-up reaches bob. The browser part is
chromium_call.mjs (playwright-core driving the Debian chromium).

test_chromium_login_retries_when_busy: with signaling.logins_per_source 1
and the test's own password logins from 127.0.0.1 keeping that share
taken, a login through the demo page is told "server busy" with
retry_after_ms; the page says it is busy (chromium_login_busy.mjs), the
test lets the checker go, and the JavaScript client's own retry logs in.

Needs: /usr/bin/chromium (Debian package "chromium"), node and npm; the
test installs playwright-core into tests/integration/node_modules when it
is missing (never a browser). It fails, not skips, when a piece is
missing."""

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import adminclient as ac  # noqa: E402
import gh  # noqa: E402
import sigclient as sc  # noqa: E402

ARGS = None
CHROMIUM = "/usr/bin/chromium"
NODE_TIMEOUT_S = 75
USERS = {"alice": "alice-Pass-1234", "bob": "bob-Pass-5678"}
MEDIA = ["audio", "video", "data"]
# Pinned so that every machine drives Chromium with the same client; any
# recent playwright-core works with the Debian chromium.
PLAYWRIGHT = "playwright-core@1.65.1"


def totp(secret_b32, now=None, step_s=30, digits=6):
    """RFC 6238 TOTP (HMAC-SHA-1) for the step that holds `now`."""
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if now is None else now) // step_s)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % (10 ** digits)
    return "%0*d" % (digits, code)


def test_totp_rfc6238_vector():
    # RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits).
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp(secret, now=59, digits=8) == "94287082", totp(secret, now=59, digits=8)


def need_tools():
    """Fails with a clear message when a piece the test needs is missing;
    installs playwright-core (and only that) locally when absent."""
    if not os.access(CHROMIUM, os.X_OK):
        raise AssertionError(
            "%s not found: install the Debian package 'chromium' "
            "(apt-get install -y --no-install-recommends chromium); this test "
            "never downloads a browser" % CHROMIUM)
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise AssertionError("%s not found on PATH: install the Debian packages nodejs and npm" % tool)
    if not os.path.isdir(os.path.join(HERE, "node_modules", "playwright-core")):
        print("installing %s into %s/node_modules" % (PLAYWRIGHT, HERE), flush=True)
        env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
        p = subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund",
                            "--prefix", HERE, PLAYWRIGHT],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=300)
        if p.returncode != 0:
            raise AssertionError("npm install %s failed (%d):\n%s" % (PLAYWRIGHT, p.returncode, p.stdout))


def add_user(g, name, password):
    """`gatehouse user add NAME --password-stdin --totp`; returns the base32
    TOTP secret it prints."""
    p = subprocess.run([g.binary, "user", "add", name, "--password-stdin", "--totp",
                        "-c", g.config_path],
                       input=password + "\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    assert p.returncode == 0, "user add %s exited %d:\n%s%s" % (name, p.returncode, p.stdout, p.stderr)
    m = re.search(r"^secret: *([A-Z2-7]+=*)\s*$", p.stdout, re.M)
    assert m, "user add %s printed no 'secret:' line:\n%s" % (name, p.stdout)
    assert "otpauth://totp/" in p.stdout, "user add %s printed no otpauth URI:\n%s" % (name, p.stdout)
    return m.group(1)


def make_gatehouse():
    """A daemon config with MFA required and alice <-> bob allowed; the
    users are created (with the CLI, on the config's state_dir) before the
    daemon starts. Returns (g, {user: totp_secret})."""
    g = gh.Gatehouse(ARGS.gatehouse)
    policy_path = os.path.join(g.workdir, "policy.json")
    with open(policy_path, "w") as f:
        json.dump({
            "default": "deny",
            "rules": [
                {"name": "alice-bob", "from": "user:alice", "to": "user:bob",
                 "media": MEDIA, "action": "allow"},
                {"name": "bob-alice", "from": "user:bob", "to": "user:alice",
                 "media": MEDIA, "action": "allow"},
            ],
        }, f, indent=2)
    gh._merge(g.config, {"policy": {"file": policy_path}, "identity": {"mfa": "required"}})
    # start() writes the same file again; the CLI needs it now to find
    # state_dir (users.db).
    with open(g.config_path, "w") as f:
        json.dump(g.config, f, indent=2)
    secrets = {name: add_user(g, name, pw) for name, pw in USERS.items()}
    return g, secrets


def test_chromium_call():
    t0 = time.monotonic()
    need_tools()
    g, secrets = make_gatehouse()
    with g:
        settings_path = os.path.join(g.workdir, "chromium_call.json")
        # Codes for the current step (accepted for steps now-1..now+1, each
        # once per user: alice and bob have their own).
        now = time.time()
        settings = {
            "url": "http://127.0.0.1:%d/" % g.signaling_port,
            "chromium": CHROMIUM,
            "caller": {"user": "alice", "password": USERS["alice"], "totp": totp(secrets["alice"], now)},
            "callee": {"user": "bob", "password": USERS["bob"], "totp": totp(secrets["bob"], now)},
            "relay": {"host": g.host, "port_min": g.port_min, "port_max": g.port_max},
            "timeout_ms": (NODE_TIMEOUT_S - 5) * 1000,
        }
        fd = os.open(settings_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(settings, f)
        # Its own session, so that a timeout takes Chromium down with it.
        p = subprocess.Popen(["node", os.path.join(HERE, "chromium_call.mjs"), settings_path],
                             cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)
        try:
            out, _ = p.communicate(timeout=NODE_TIMEOUT_S)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            rc = "timeout after %d s" % NODE_TIMEOUT_S
        finally:
            os.unlink(settings_path)
        out = out.decode("utf-8", "replace")
        log = g.log()
        if rc != 0:
            print(out)
            print("---- gatehouse log (tail)\n%s" % gh.tail(log, 80))
            raise AssertionError("chromium_call.mjs: exit %s (output above)" % rc)
        print("\n".join(l for l in out.splitlines() if not l.startswith("RESULT ")), flush=True)
        result = json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[7:])
        for role in ("caller", "callee"):
            r = result[role]
            assert r["pair"]["local"]["type"] == "relay" and r["pair"]["remote"]["type"] == "relay", r
        # The daemon saw the whole call: both logins with MFA, the policy
        # decision, acceptance and the hang-up.
        for want in (r"login\.ok: .*user bob \(mfa\)", r"login\.ok: .*user alice \(mfa\)",
                     r'alice -> bob: allow by rule "alice-bob"', r"call\.accepted: .*alice -> bob",
                     r"alice -> bob ended: hangup", r"bob -> alice ended: rejected"):
            assert re.search(want, log), "daemon log lacks /%s/; tail:\n%s" % (want, gh.tail(log, 60))
        # The relay read the DTLS handshake (docs/turn.md, "Media
        # inspection"): the version Chromium chose, and under DTLS 1.2 each
        # certificate checked against its sender's a=fingerprint.
        dtls = [e for e in ac.read_audit(g) if e.get("event") == "media.dtls"]
        hellos = [e for e in dtls if e.get("check") == "server_hello"]
        assert hellos and all(e.get("version") in ("1.2", "1.3") and
                              e.get("outcome") == "success" for e in hellos), dtls
        print("DTLS on the media path: %s, %s" % (sorted({e["version"] for e in hellos}),
                                                  sorted({e.get("cipher_suite") for e in hellos})),
              flush=True)
        assert all(e.get("fingerprint") == "match" for e in dtls if e.get("check") == "certificate"), \
            "a certificate check failed: %r" % dtls
        if any(e["version"] == "1.2" for e in hellos):
            assert any(e.get("check") == "certificate" for e in dtls), dtls
        removed = len(re.findall(r"candidate\.removed", log))
        print("daemon removed %d candidates (the client offers relay candidates only)" % removed)
        assert g.alive(), "daemon not alive after the call; log tail:\n%s" % gh.tail(log)
    print("test_chromium_call took %.1f s" % (time.monotonic() - t0), flush=True)


def busy_flood(g, stop):
    """Until stop is set, keeps 127.0.0.1's share of the login checker
    taken: password logins of an unknown user (an unknown user costs an
    argon2id check too), each sent as soon as the one before is answered.
    5 go on a connection, the most the gateway takes; the next connection
    is opened beforehand, so the share is free only for the moment
    between an answer and the next login."""
    login = json.dumps({"type": "login", "user": "flood", "password": "not-a-password"})

    def connect():
        return sc.RawWebSocket("127.0.0.1", g.signaling_port, source="127.0.0.1")

    ws, spare, old, sent = connect(), None, None, 0
    try:
        while not stop.is_set():
            if sent == 4 and spare is None:
                spare = connect()
            ws.send_texts([login])
            sent += 1
            if old is not None:
                old.close()
                old = None
            ws.next_json(30)
            if sent == 5:
                old, ws, spare, sent = ws, spare, None, 0
    finally:
        for c in (ws, spare, old):
            if c is not None:
                c.close()


def test_chromium_login_retries_when_busy():
    need_tools()
    g, secrets = make_gatehouse()
    gh._merge(g.config, {"signaling": {"logins_per_source": 1}})
    with g:
        stop = threading.Event()
        flood = threading.Thread(target=busy_flood, args=(g, stop), daemon=True)
        flood.start()
        settings_path = os.path.join(g.workdir, "chromium_login_busy.json")
        settings = {"url": "http://127.0.0.1:%d/" % g.signaling_port, "chromium": CHROMIUM,
                    "user": "alice", "password": USERS["alice"],
                    "totp": totp(secrets["alice"]), "timeout_ms": 40000}
        fd = os.open(settings_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(settings, f)
        p = subprocess.Popen(["node", os.path.join(HERE, "chromium_login_busy.mjs"), settings_path],
                             cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True, text=True)
        killer = threading.Timer(NODE_TIMEOUT_S, lambda: os.killpg(p.pid, signal.SIGKILL))
        killer.start()
        out = []
        try:
            for line in p.stdout:
                out.append(line.rstrip("\n"))
                if line.startswith("BUSY-SEEN"):
                    stop.set()
            rc = p.wait()
        finally:
            killer.cancel()
            stop.set()
            flood.join(60)
            os.unlink(settings_path)
        print("\n".join(l for l in out if not l.startswith("RESULT ")), flush=True)
        assert rc == 0, "chromium_login_busy.mjs: exit %s; daemon log tail:\n%s" % (
            rc, gh.tail(g.log(), 40))
        result = json.loads(next(l for l in out if l.startswith("RESULT "))[7:])
        assert result["busySeen"], "the page never said the gateway was busy: %r" % result
        assert result["statuses"][-1] == "Logged in as alice", result
        ok = [e for e in ac.read_audit(g) if e.get("event") == "login.success" and
              e.get("user") == "alice"]
        assert len(ok) == 1, "alice's logins in the audit trail: %r" % ok


if __name__ == "__main__":
    ARGS = gh.main_args()
    gh.run_tests([test_totp_rfc6238_vector, test_chromium_call,
                  test_chromium_login_retries_when_busy])
