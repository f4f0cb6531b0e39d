#!/usr/bin/python3
"""The local users' TOTP secrets at rest (docs/configuration.md,
"identity.secrets_key_file"; signaling/secret_seal.h).

users.db keeps each TOTP secret sealed under the secrets key, a file of
its own: state_dir/secrets.key, made at the first use, or the file that
identity.secrets_key_file names. These tests enrol users with the real
CLI, log them in over the real WebSocket, and read the files as an
attacker with a copy of state_dir but not of the key would:

- no byte sequence of a secret is in users.db or its log;
- the daemon and the CLI refuse a database with a key other than its
  own, by name, and lose nothing: with the right key back, logins work;
- a key kept outside state_dir (root's alone when the daemon starts as
  root) serves the daemon and the CLI, and no second key is made;
- `gatehouse user rekey` seals every secret again under a new key, only
  while the daemon is stopped; the old key opens nothing after it, and a
  rekey cut short after its commit is finished by the next one.

Everything listens on 127.0.0.1 (TESTING.md).
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402
import sigclient as sc  # noqa: E402

ARGS = None
MISMATCH = "its TOTP secrets are sealed with the secrets key of id"


def raw_secret(u):
    s = u.secret.upper()
    return base64.b32decode(s + "=" * (-len(s) % 8))


def state_files_holding(g, needle):
    """The files below state_dir whose bytes contain needle."""
    found = []
    for root, _, files in os.walk(g.state_dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                if needle in fh.read():
                    found.append(f)
    return found


def login(g, u, totp=None):
    """The reply to one login of u (a fresh code unless totp is given)."""
    async def body():
        async with sc.SigClient(sc.ws_url(g), name="login-" + u.name) as c:
            return await c.login(u.name, u.password, totp or u.next_totp())
    return asyncio.run(body())


def cli(g, *args):
    """`gatehouse user ARGS -c CONFIG`: (exit, stdout + stderr)."""
    sc.write_config(g)
    p = subprocess.run([g.binary, "user"] + list(args) + ["-c", g.config_path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    bad = [m for m in gh.SANITIZER_MARKERS if m in out]
    assert not bad, "sanitizer report from the CLI:\n%s" % out
    return p.returncode, out


def write_key(path, hex_text):
    """Rewrites a key file in place: its owner and mode stay."""
    with open(path, "w") as f:
        f.write(hex_text + "\n")


def sealed_blob(g, name):
    """name's sealed TOTP secret, as users.db holds it."""
    db = sqlite3.connect(os.path.join(g.state_dir, "users.db"))
    try:
        return db.execute("SELECT totp_sealed FROM users WHERE name = ?", (name,)).fetchone()[0]
    finally:
        db.close()


def sealed_put(g, name, blob):
    db = sqlite3.connect(os.path.join(g.state_dir, "users.db"))
    try:
        with db:
            db.execute("UPDATE users SET totp_sealed = ? WHERE name = ?", (blob, name))
    finally:
        db.close()


def keys_apart(g, **texts):
    """Key files (mode 0600) in g.workdir/keys, apart from state_dir, which
    the daemon hands to its user when it starts as root: these stay the
    starter's. {name: hex text} -> {name: path}."""
    key_dir = os.path.join(g.workdir, "keys")
    os.mkdir(key_dir, 0o700)
    paths = {}
    for name, text in texts.items():
        paths[name] = os.path.join(key_dir, name + ".key")
        write_key(paths[name], text)
        os.chmod(paths[name], 0o600)
    return paths


def key_id(hex_key):
    """The id users.db records for a key (signaling/secret_seal.h)."""
    return hmac.new(bytes.fromhex(hex_key), b"gh-userdb-key-id",
                    hashlib.sha256).digest()[:8].hex()


def lifecycle(g):
    """The daemon.start and daemon.stop events of the audit trail."""
    with open(os.path.join(g.state_dir, "audit.jsonl")) as f:
        events = [json.loads(line) for line in f if line.strip()]
    return events, [e for e in events if e["event"] in ("daemon.start", "daemon.stop")]


def read_key(path):
    with open(path) as f:
        return f.read().strip()


def login_ok(g, u):
    r = gh.with_log(g, lambda: login(g, u))
    assert r.get("type") == "login.ok", "%s's login: %r" % (u.name, r)


def test_secrets_sealed_and_wrong_key_refused():
    g = gh.Gatehouse(ARGS.gatehouse)
    try:
        carol = sc.create_user(g, "carol", "carol's password")
        dave = sc.create_user(g, "dave", "dave's password")
        key_path = os.path.join(g.state_dir, "secrets.key")
        st = os.stat(key_path)
        assert st.st_mode & 0o777 == 0o600, "secrets.key mode %o" % (st.st_mode & 0o777)
        with open(key_path) as f:
            good_key = f.read().strip()
        assert len(good_key) == 64, "secrets.key holds %r" % good_key
        for u in (carol, dave):
            secret = raw_secret(u)
            assert len(secret) == 20
            # Half the secret is enough to look for: no copy of it, whole
            # or in part, in the database or its log.
            held = state_files_holding(g, secret[:10]) + state_files_holding(g, secret[10:])
            assert not held, "%s's TOTP secret is in %r" % (u.name, held)

        g.start()
        r = gh.with_log(g, lambda: login(g, carol))
        assert r.get("type") == "login.ok", "carol's login: %r" % r
        r = login(g, dave, sc.wrong_totp(dave.secret))
        assert r.get("type") == "error" and r.get("code") == "auth_failed", \
            "dave with a wrong code: %r" % r
        # Enrolled anew by the CLI while the daemon runs: the new secret
        # is sealed too, and the daemon opens it.
        rc, out = cli(g, "totp-reset", "carol")
        assert rc == 0, "user totp-reset: exit %d: %s" % (rc, out)
        carol.secret = [line[len("secret: "):].strip() for line in out.splitlines()
                        if line.startswith("secret: ")][0]
        carol.last_step = -1
        assert not state_files_holding(g, raw_secret(carol)[:10])
        r = login(g, carol)
        assert r.get("type") == "login.ok", "carol's login after re-enrolment: %r" % r
        assert g.stop() == 0, "daemon exit %r" % g.returncode

        # Another key: refused by the daemon (exit 1) and by the CLI,
        # naming users.db and the setting.
        write_key(key_path, "ab" * 32)
        rc, log = gh.start_refused(g)
        db = os.path.join(g.state_dir, "users.db")
        assert rc == 1 and "%s: %s" % (db, MISMATCH) in log and \
            "identity.secrets_key_file" in log, "start with another key: exit %r\n%s" % (
                rc, gh.tail(log))
        rc, out = cli(g, "list")
        assert rc == 1 and MISMATCH in out, "user list with another key: exit %d: %s" % (rc, out)

        # The right key back: nothing was lost.
        write_key(key_path, good_key)
        g.start()
        r = gh.with_log(g, lambda: login(g, dave))
        assert r.get("type") == "login.ok", "dave's login with the key back: %r" % r
        assert g.stop() == 0
    finally:
        g.stop()
        shutil.rmtree(g.workdir, ignore_errors=True)


def test_named_key_file_outside_state_dir():
    g = gh.Gatehouse(ARGS.gatehouse)
    try:
        named = keys_apart(g, gatehouse_secrets="5a" * 32)["gatehouse_secrets"]
        g.config["identity"] = {"secrets_key_file": named}
        erin = sc.create_user(g, "erin", "erin's password")
        assert not os.path.exists(os.path.join(g.state_dir, "secrets.key")), \
            "a key was made in state_dir though the configuration names one"
        assert not state_files_holding(g, raw_secret(erin)[:10])
        g.start()
        r = gh.with_log(g, lambda: login(g, erin))
        assert r.get("type") == "login.ok", "erin's login: %r" % r
        assert g.stop() == 0
        assert not os.path.exists(os.path.join(g.state_dir, "secrets.key"))
        rc, out = cli(g, "list")
        assert rc == 0 and "erin" in out, "user list: exit %d: %s" % (rc, out)

        # Named but gone: invalid input (exit 2) for the daemon and the
        # CLI, and never made anew.
        os.unlink(named)
        rc, log = gh.start_refused(g)
        want = "identity.secrets_key_file: %s: No such file or directory" % named
        assert rc == 2 and want in log, "start without the key: exit %r\n%s" % (
            rc, gh.tail(log))
        rc, out = cli(g, "list")
        assert rc == 2 and want in out, "user list without the key: exit %d: %s" % (rc, out)
        assert not os.path.exists(named)
    finally:
        g.stop()
        shutil.rmtree(g.workdir, ignore_errors=True)


def test_rekey():
    g = gh.Gatehouse(ARGS.gatehouse)
    try:
        frank = sc.create_user(g, "frank", "frank's password")
        gina = sc.create_user(g, "gina", "gina's password")
        key_path = os.path.join(g.state_dir, "secrets.key")
        staged = key_path + ".new"
        old_key = read_key(key_path)

        # Not while the daemon runs: it would go on with the old key.
        g.start()
        pid = g.proc.pid
        rc, out = cli(g, "rekey")
        assert rc == 1 and "stop the daemon first" in out, "rekey while running: %d: %s" % (
            rc, out)
        assert read_key(key_path) == old_key
        login_ok(g, frank)
        assert g.stop() == 0
        # The audit trail opens and closes with the daemon, naming the key
        # that users.db is sealed with.
        events, life = lifecycle(g)
        assert [e["event"] for e in life] == ["daemon.start", "daemon.stop"] and \
            events[0] == life[0] and events[-1] == life[1], "audit trail: %r" % events
        for e in life:
            assert e["pid"] == pid and e["secrets_key_id"] == key_id(old_key) and \
                e["outcome"] == "success" and e.get("version"), "lifecycle event %r" % e
        assert life[1]["reason"] == "signal", "daemon.stop %r" % life[1]

        # A secret that does not open refuses the whole rekey, by name.
        blob = sealed_blob(g, "gina")
        sealed_put(g, "gina", blob[:20] + bytes([blob[20] ^ 1]) + blob[21:])
        rc, out = cli(g, "rekey")
        assert rc == 1 and 'user "gina": the TOTP secret does not open' in out, \
            "rekey with an altered row: exit %d: %s" % (rc, out)
        assert read_key(key_path) == old_key and not os.path.exists(staged)
        sealed_put(g, "gina", blob)
        rc, out = cli(g, "rekey", "--new-key", os.path.join(g.workdir, "missing.key"))
        assert rc == 2 and "No such file" in out, "rekey --new-key missing: %d: %s" % (rc, out)

        before_blobs = [sealed_blob(g, u.name) for u in (frank, gina)]
        rc, out = cli(g, "rekey")
        assert rc == 0 and "2 TOTP secrets sealed again" in out, "rekey: exit %d: %s" % (
            rc, out)
        for blob in before_blobs:
            held = state_files_holding(g, blob)
            assert not held, "a secret sealed under the old key is still in %r" % held
        new_key = read_key(key_path)
        assert new_key != old_key and len(new_key) == 64, "secrets.key holds %r" % new_key
        assert os.stat(key_path).st_mode & 0o777 == 0o600
        assert not os.path.exists(staged)
        # The old key opens nothing now.
        write_key(key_path, old_key)
        rc, log = gh.start_refused(g)
        assert rc == 1 and MISMATCH in log, "start with the old key: exit %r\n%s" % (
            rc, gh.tail(log))
        write_key(key_path, new_key)
        g.start()
        login_ok(g, frank)
        login_ok(g, gina)
        assert g.stop() == 0
        _, life = lifecycle(g)
        assert life[-2]["event"] == "daemon.start" and \
            life[-2]["secrets_key_id"] == key_id(new_key), "after the rekey: %r" % life[-2:]

        # A rekey cut short between its commit and the rename: users.db is
        # under secrets.key.new, secrets.key still holds the key before.
        # Hard links keep the files' owner (the daemon's user).
        before = os.path.join(g.state_dir, "key-before")
        os.link(key_path, before)
        rc, out = cli(g, "rekey")
        assert rc == 0, "rekey: exit %d: %s" % (rc, out)
        third_key = read_key(key_path)
        os.rename(key_path, staged)
        os.rename(before, key_path)
        rc, out = cli(g, "list")
        assert rc == 1 and MISMATCH in out and "%s exists: a gatehouse user rekey was " \
            "cut short" % staged in out, "user list: exit %d: %s" % (rc, out)
        rc, log = gh.start_refused(g)
        assert rc == 1 and "%s exists" % staged in log, "start: exit %r\n%s" % (
            rc, gh.tail(log))
        rc, out = cli(g, "rekey")
        assert rc == 0 and "finished an interrupted rekey" in out, "rekey: exit %d: %s" % (
            rc, out)
        assert read_key(key_path) == third_key and not os.path.exists(staged)
        g.start()
        login_ok(g, gina)
        assert g.stop() == 0
    finally:
        g.stop()
        shutil.rmtree(g.workdir, ignore_errors=True)


def test_rekey_to_a_named_key():
    g = gh.Gatehouse(ARGS.gatehouse)
    try:
        keys = keys_apart(g, old="5a" * 32, new="6b" * 32)
        named, fresh = keys["old"], keys["new"]
        g.config["identity"] = {"secrets_key_file": named}
        hugo = sc.create_user(g, "hugo", "hugo's password")

        # This command writes nothing outside state_dir: the operator
        # makes the new key and names it.
        rc, out = cli(g, "rekey")
        assert rc == 2 and "--new-key FILE" in out, "rekey: exit %d: %s" % (rc, out)
        os.chmod(fresh, 0o640)
        rc, out = cli(g, "rekey", "--new-key", fresh)
        assert rc == 2 and "--new-key: %s: readable by group" % fresh in out, \
            "rekey to a readable key: exit %d: %s" % (rc, out)
        os.chmod(fresh, 0o600)
        rc, out = cli(g, "rekey", "--new-key", fresh)
        assert rc == 0 and "Set identity.secrets_key_file to %s" % fresh in out, \
            "rekey --new-key: exit %d: %s" % (rc, out)
        assert not os.path.exists(os.path.join(g.state_dir, "secrets.key"))
        rc, log = gh.start_refused(g)
        assert rc == 1 and MISMATCH in log, "start with the old key: exit %r\n%s" % (
            rc, gh.tail(log))

        g.config["identity"] = {"secrets_key_file": fresh}
        g.start()
        login_ok(g, hugo)
        assert g.stop() == 0
        rc, out = cli(g, "rekey", "--new-key", fresh)
        assert rc == 0 and "nothing to do" in out, "rekey again: exit %d: %s" % (rc, out)
    finally:
        g.stop()
        shutil.rmtree(g.workdir, ignore_errors=True)


if __name__ == "__main__":
    ARGS = gh.main_args()
    gh.run_tests([
        test_secrets_sealed_and_wrong_key_refused,
        test_named_key_file_outside_state_dir,
        test_rekey,
        test_rekey_to_a_named_key,
    ])
