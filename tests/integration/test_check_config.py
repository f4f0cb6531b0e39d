#!/usr/bin/python3
"""`gatehouse check-config` and the start of `gatehouse run` on the files a
configuration names (DESIGN.md, "Command line"; docs/configuration.md,
"gatehouse check-config").

check-config loads every file the configuration names with the daemon's
own loaders: the TLS pairs (tls, signaling.tls, turn.tls: read, key mode,
key matches certificate), each JWT backend's jwks_file, policy.file and
log.syslog.ca_file. A missing, unreadable or invalid one is exit 2 with a
message that names the key; `run` refuses the same input with the same
message and exit 2, before it makes anything. check-config itself makes
nothing: no state_dir, no self-signed certificate, no users.db, no secret.
`"registry": {"type": "redis"}` is accepted with a warning from both.

Certificates come from `openssl`, the JWKS from an EC key made with it.
Nothing listens or sends here except the one daemon that logs the Redis
warning, on 127.0.0.1 (TESTING.md).
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402
from der import b64u, der_read  # noqa: E402

ARGS = None

REDIS_WARNING = ('registry: type "redis" is not built yet: this node runs alone and '
                 'shares nothing (calls, revocations, quotas)')


# ------------------------------------------------------------------ files

def openssl(*args):
    p = subprocess.run(["openssl"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, "openssl %s: %s" % (" ".join(args), p.stderr.decode())
    return p.stdout


def cert_pair(d, name):
    """A self-signed P-256 certificate and its key (mode 0600): paths."""
    cert, key = os.path.join(d, name + "-cert.pem"), os.path.join(d, name + "-key.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + name)
    os.chmod(key, 0o600)
    return cert, key


def jwks(d):
    """A JWKS with one P-256 public key: its path."""
    pem = os.path.join(d, "jwt-ec.pem")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", pem)
    spki = openssl("pkey", "-in", pem, "-pubout", "-outform", "DER")
    _, seq, _ = der_read(spki)
    _, _, off = der_read(seq)          # AlgorithmIdentifier
    _, bits, _ = der_read(seq, off)    # BIT STRING: 0 unused bits, 04 || x || y
    pt = bits[1:]
    path = os.path.join(d, "jwks.json")
    write_json(path, {"keys": [{"kty": "EC", "kid": "ec1", "use": "sig", "alg": "ES256",
                                "crv": "P-256", "x": b64u(pt[1:33]), "y": b64u(pt[33:])}]})
    return path


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)


def write_policy(path, media=("audio",)):
    write_json(path, {"default": "deny", "groups": {"team": ["alice", "bob"]},
                      "rules": [{"name": "team", "from": "group:team", "to": "group:team",
                                 "media": list(media), "action": "allow"}]})


# ---------------------------------------------------------------- running

@contextlib.contextmanager
def instance(config=None):
    """A Gatehouse (ports, relay window, workdir) that may never start;
    its window and workdir go at the end."""
    g = gh.Gatehouse(ARGS.gatehouse, config=config)
    try:
        yield g
    finally:
        g.stop()
        shutil.rmtree(g.workdir, ignore_errors=True)


def full_config(g):
    """Every kind of file a configuration can name, all valid: a top-level
    pair, signaling.tls and turn.tls overrides, a JWT backend, a policy
    file and a syslog CA file."""
    w = g.workdir
    top, sig, turn = cert_pair(w, "top"), cert_pair(w, "sig"), cert_pair(w, "turn")
    policy = os.path.join(w, "policy.json")
    write_policy(policy)
    g.config["tls"] = {"cert": top[0], "key": top[1]}
    g.config["signaling"]["tls"] = {"cert": sig[0], "key": sig[1]}
    g.config["turn"]["tls"] = {"cert": turn[0], "key": turn[1]}
    g.config["identity"] = {"backends": [
        {"type": "local"},
        {"type": "jwt", "issuer": "https://idp.test", "audience": "gatehouse",
         "jwks_file": jwks(w)}]}
    g.config["policy"] = {"file": policy}
    # The collector is never contacted by check-config; the CA must load.
    g.config["log"]["syslog"] = {"address": "127.0.0.1:6514", "transport": "tls",
                                 "ca_file": top[0]}
    return g.config


def check_config(g, as_user=None):
    """Writes g.config, runs `gatehouse check-config -c`; (exit, stdout,
    stderr). Refuses sanitizer reports."""
    write_json(g.config_path, g.config)
    pre = None
    if as_user is not None:
        def pre():
            os.setgroups([])
            os.setgid(as_user.pw_gid)
            os.setuid(as_user.pw_uid)
    p = subprocess.run([os.path.abspath(ARGS.gatehouse), "check-config", "-c", g.config_path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                       preexec_fn=pre)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    bad = [m for m in gh.SANITIZER_MARKERS if m in err]
    assert not bad, "sanitizer report from check-config:\n%s" % err
    return p.returncode, out, err


def expect_invalid(g, message, as_user=None):
    """check-config exits 2 and prints `gatehouse: FILE: <message>`."""
    rc, out, err = check_config(g, as_user)
    line = "gatehouse: %s: %s" % (g.config_path, message)
    assert rc == 2 and line in err, \
        "check-config: expected exit 2 and %r\nexit %d\n--- stdout\n%s--- stderr\n%s" % (
            line, rc, out, err)
    assert not out, "check-config printed on stdout: %r" % out
    return err


def made_nothing(g):
    """Nothing but what the test wrote: no state_dir, no self-signed pair,
    no users.db, no secret, anywhere below the workdir."""
    assert not os.path.exists(g.state_dir), "state_dir %s was made: %r" % (
        g.state_dir, os.listdir(g.state_dir))
    for root, _, files in os.walk(g.workdir):
        for f in files:
            assert f not in ("tls-cert.pem", "tls-key.pem", "users.db", "turn_secret",
                             "secrets.key", "audit.jsonl"), "made %s" % os.path.join(root, f)


def run_refused(g):
    """`gatehouse run` on g.config must stop during start-up: (exit, log)."""
    return gh.start_refused(g, "the daemon started on invalid input")


# ------------------------------------------------------------------ tests

def test_valid_files_pass_and_nothing_is_made():
    """Every file present and valid: exit 0, "FILE: ok", nothing on stderr.
    The configuration has a TURN TLS listener and a local backend, for
    which the start would make a state_dir, users.db and a secret:
    check-config makes none of them. (The old check-config passed this
    too: it guards the new checks against refusing valid input.)"""
    with instance() as g:
        full_config(g)
        rc, out, err = check_config(g)
        assert rc == 0 and out.strip() == "%s: ok" % g.config_path and not err, \
            "valid files: exit %d\n--- stdout\n%s--- stderr\n%s" % (rc, out, err)
        made_nothing(g)
    # No certificate at all: the start would make a self-signed pair for
    # the TURN TLS listener; checking must not.
    with instance() as g:
        rc, out, err = check_config(g)
        assert rc == 0, "embedded-style config: exit %d: %s" % (rc, err)
        made_nothing(g)


def test_policy_file_missing_or_invalid():
    """policy.file missing: "cannot open: No such file or directory";
    invalid: the policy parser's own message, after the key."""
    with instance() as g:
        full_config(g)
        path = os.path.join(g.workdir, "absent.json")
        g.config["policy"] = {"file": path}
        expect_invalid(g, "policy.file: %s: cannot open: No such file or directory" % path)
        made_nothing(g)
        path = os.path.join(g.workdir, "fax.json")
        write_policy(path, ["audio", "fax"])
        g.config["policy"] = {"file": path}
        expect_invalid(g, 'policy.file: %s: rules[0].media[1]: unknown media kind "fax"' % path)
        made_nothing(g)


def test_tls_pairs():
    """A key that does not match its certificate (named tls.key, and
    admin.tls.key), a missing certificate (turn.tls.cert), a key that group
    or others may read (signaling.tls.key, with the fix), and a certificate
    that is not PEM."""
    with instance() as g:
        cfg = full_config(g)
        top, other = dict(cfg["tls"]), cert_pair(g.workdir, "other")
        cfg["tls"] = {"cert": top["cert"], "key": other[1]}
        expect_invalid(g, "tls.key: %s: does not match the certificate %s" % (
            other[1], top["cert"]))
        cfg["tls"] = top

        turn = dict(cfg["turn"]["tls"])
        missing = os.path.join(g.workdir, "missing-cert.pem")
        cfg["turn"]["tls"] = {"cert": missing, "key": turn["key"]}
        expect_invalid(g, "turn.tls.cert: %s: cannot open: No such file or directory" % missing)
        cfg["turn"]["tls"] = turn

        sig_key = cfg["signaling"]["tls"]["key"]
        os.chmod(sig_key, 0o640)
        expect_invalid(g, "signaling.tls.key: %s: readable by group or others (mode 0640): "
                       "chmod 600 %s" % (sig_key, sig_key))
        os.chmod(sig_key, 0o600)

        junk = os.path.join(g.workdir, "junk-cert.pem")
        with open(junk, "w") as f:
            f.write("not a certificate\n")
        cfg["tls"] = {"cert": junk, "key": top["key"]}
        expect_invalid(g, "tls.cert: %s: cannot load the certificate chain" % junk)
        cfg["tls"] = top

        # admin.tls is a pair of its own, checked the same way.
        cfg.setdefault("admin", {})["tls"] = {"cert": top["cert"], "key": other[1]}
        expect_invalid(g, "admin.tls.key: %s: does not match the certificate %s" % (
            other[1], top["cert"]))
        made_nothing(g)


def test_jwks_file():
    """A jwks_file that is not a JWK set, that does not parse, or is missing:
    named by its backend's key."""
    with instance() as g:
        cfg = full_config(g)
        path = cfg["identity"]["backends"][1]["jwks_file"]
        key = "identity.backends[1].jwks_file"
        write_json(path, {"keys": "none"})
        expect_invalid(g, '%s: %s: not a JWK set (no "keys" array)' % (key, path))
        with open(path, "w") as f:
            f.write('{"keys": [')
        expect_invalid(g, "%s: %s: line " % (key, path))
        os.unlink(path)
        expect_invalid(g, "%s: %s: cannot open: No such file or directory" % (key, path))
        made_nothing(g)


def test_syslog_ca_file():
    """A log.syslog.ca_file that is missing or holds no certificate."""
    with instance() as g:
        cfg = full_config(g)
        path = os.path.join(g.workdir, "ca.pem")
        cfg["log"]["syslog"]["ca_file"] = path
        expect_invalid(g, "log.syslog.ca_file: %s: cannot open: No such file or directory" % path)
        with open(path, "w") as f:
            f.write("not a certificate\n")
        expect_invalid(g, "log.syslog: cannot set up TLS (CA file %s)" % path)


def test_syslog_max_message_bytes():
    """log.syslog.max_message_bytes: over UDP no more than a datagram can
    carry; over TLS (and TCP) up to 4 MiB."""
    with instance() as g:
        cfg = full_config(g)
        cfg["log"]["syslog"]["max_message_bytes"] = 1048576
        rc, out, err = check_config(g)
        assert rc == 0, "check-config with max_message_bytes 1048576 over tls: exit %d\n%s%s" % (
            rc, out, err)
        cfg["log"]["syslog"] = {"address": "127.0.0.1:514", "transport": "udp",
                                "max_message_bytes": 65508}
        expect_invalid(g, 'log.syslog.max_message_bytes: expected an integer from 1024 to '
                       '65507 with "udp" (the largest UDP payload)')
        cfg["log"]["syslog"]["max_message_bytes"] = 512
        expect_invalid(g, "log.syslog.max_message_bytes: expected an integer from 1024 to "
                       "4194304")


def test_unreadable_key_names_the_user():
    """check-config run by a user who cannot read a root-only key: exit 2,
    and the message says the file cannot be read, as whom (a daemon
    started by that user would fail the same way). Root only."""
    if os.geteuid() != 0:
        print("  (not root: skipped)", flush=True)
        return
    pw = gh.run_as_user()
    with instance() as g:
        cfg = full_config(g)
        # The workdir belongs to pw (gh.Gatehouse); the files the test
        # wrote are root's: readable, except the keys (0600).
        for f in os.listdir(g.workdir):
            if not f.endswith("-key.pem"):
                os.chmod(os.path.join(g.workdir, f), 0o644)
        write_json(g.config_path, cfg)
        os.chmod(g.config_path, 0o644)
        key = cfg["tls"]["key"]
        expect_invalid(g, "tls.key: %s: cannot be read as uid %d: Permission denied" % (
            key, pw.pw_uid), as_user=pw)


def test_run_refuses_invalid_files_with_exit_2():
    """`gatehouse run` on an invalid policy file, a mismatched pair or an
    invalid JWKS: exit 2 (invalid input, not 1) with check-config's very
    message, and before anything is made (no state_dir)."""
    with instance() as g:
        path = os.path.join(g.workdir, "fax.json")
        write_policy(path, ["fax"])
        g.config["policy"] = {"file": path}
        want = 'policy.file: %s: rules[0].media[0]: unknown media kind "fax"' % path
        checked = expect_invalid(g, want)
        rc, log = run_refused(g)
        line = "gatehouse: %s: %s" % (g.config_path, want)
        assert rc == 2 and line in log, "run: exit %r, expected 2 and %r\n%s" % (
            rc, line, gh.tail(log))
        assert line in checked
        made_nothing(g)
    with instance() as g:
        a, b = cert_pair(g.workdir, "a"), cert_pair(g.workdir, "b")
        g.config["tls"] = {"cert": a[0], "key": b[1]}
        rc, log = run_refused(g)
        want = "tls.key: %s: does not match the certificate %s" % (b[1], a[0])
        assert rc == 2 and want in log, "run: exit %r, expected 2 and %r\n%s" % (
            rc, want, gh.tail(log))
        made_nothing(g)
    with instance() as g:
        path = os.path.join(g.workdir, "jwks.json")
        write_json(path, {"keys": []})
        g.config["identity"] = {"backends": [
            {"type": "jwt", "issuer": "https://idp.test", "audience": "gatehouse",
             "jwks_file": path}]}
        rc, log = run_refused(g)
        want = "identity.backends[0].jwks_file: %s: no usable public key" % path
        assert rc == 2 and want in log, "run: exit %r, expected 2 and %r\n%s" % (
            rc, want, gh.tail(log))
        made_nothing(g)


def test_secrets_key_file():
    """identity.secrets_key_file must name a key that is there: 64 hex
    digits, mode 0600. check-config and run refuse a missing, open or
    malformed one (exit 2, naming the setting and the file) and make
    none; a good one passes."""
    with instance() as g:
        path = os.path.join(g.workdir, "secrets.key")
        g.config["identity"] = {"secrets_key_file": path}
        want = "identity.secrets_key_file: %s: No such file or directory" % path
        expect_invalid(g, want)
        rc, log = run_refused(g)
        assert rc == 2 and want in log, "run: exit %r, expected 2 and %r\n%s" % (
            rc, want, gh.tail(log))
        made_nothing(g)
        with open(path, "w") as f:
            f.write("00" * 31 + "\n")
        os.chmod(path, 0o600)
        expect_invalid(g, "identity.secrets_key_file: %s: expected 64 hex digits and a "
                       "newline" % path)
        with open(path, "w") as f:
            f.write("00" * 32 + "\n")
        os.chmod(path, 0o640)
        expect_invalid(g, "identity.secrets_key_file: %s: readable by group or others "
                       "(chmod 600)" % path)
        os.chmod(path, 0o600)
        rc, out, err = check_config(g)
        assert rc == 0 and not err, "check-config on a good key: exit %d\n%s%s" % (
            rc, out, err)


def test_run_runtime_failure_stays_1():
    """A state_dir that is a file is not invalid input but a runtime
    failure: exit 1 still. (Guards the line between the two; the old code
    passed it too.)"""
    with instance() as g:
        with open(g.state_dir, "w") as f:
            f.write("a file\n")
        rc, log = run_refused(g)
        assert rc == 1 and "not a directory" in log, "run: exit %r\n%s" % (rc, gh.tail(log))


def test_redis_registry_warns():
    """registry.type "redis": check-config exits 0 with the warning on
    stderr; the daemon starts and logs the same warning."""
    redis = {"registry": {"type": "redis", "url": "redis://127.0.0.1:6379", "node": "relay-2"}}
    with instance(redis) as g:
        rc, out, err = check_config(g)
        line = "gatehouse: %s: warning: %s" % (g.config_path, REDIS_WARNING)
        assert rc == 0 and out.strip() == "%s: ok" % g.config_path and line in err, \
            "check-config with redis: exit %d\n--- stdout\n%s--- stderr\n%s" % (rc, out, err)
    g = gh.Gatehouse(ARGS.gatehouse, config=redis)
    with g:
        log = g.log()
        assert "warning " + REDIS_WARNING in log, "no Redis warning at start:\n%s" % gh.tail(log)


if __name__ == "__main__":
    ARGS = gh.main_args()
    gh.run_tests([
        test_valid_files_pass_and_nothing_is_made,
        test_policy_file_missing_or_invalid,
        test_tls_pairs,
        test_jwks_file,
        test_syslog_ca_file,
        test_syslog_max_message_bytes,
        test_unreadable_key_names_the_user,
        test_run_refuses_invalid_files_with_exit_2,
        test_secrets_key_file,
        test_run_runtime_failure_stays_1,
        test_redis_registry_warns,
    ])
