#!/usr/bin/python3
"""Least privilege (gateway/privdrop.h): a daemon started as root serves as
an unprivileged user with no capabilities in any thread, and still does
all its work (STUN, signaling logins that write users.db, the audit file,
its reopen on SIGUSR1, users added with the CLI while it runs); a daemon
started unprivileged with CAP_NET_BIND_SERVICE (systemd's
AmbientCapabilities=) binds a low port and then drops it; key and state
files that group or others may read stop the start with a message that
names the file and the fix.

Needs root (the CI runs the integration tests as root); without it every
test is skipped.
"""

import asyncio
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402
from gh import with_log  # noqa: E402
import sigclient as sc  # noqa: E402
import adminclient as ac  # noqa: E402

ARGS = None
NOBODY = pwd.getpwnam("nobody")
PASSWORD = "pw-privdrop-0123456789"


def root_only():
    if os.geteuid() != 0:
        print("SKIP: not root, nothing to drop")
        return False
    return True


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def threads_status(pid):
    """{tid: {key: value}} from /proc/<pid>/task/<tid>/status."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        fields = {}
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    fields[k] = v.strip()
        except FileNotFoundError:
            continue
        out[tid] = fields
    return out


def assert_unprivileged(pid, uid, gid, threads_min=3):
    """Every thread: uid/gid (all four) as given, no supplementary group,
    no capability in any set, no_new_privs."""
    st = threads_status(pid)
    # main, the audit writer and the login worker at least
    assert len(st) >= threads_min, "only %d threads: %r" % (len(st), list(st))
    for tid, f in st.items():
        assert f["Uid"].split() == [str(uid)] * 4, "thread %s Uid %r" % (tid, f["Uid"])
        assert f["Gid"].split() == [str(gid)] * 4, "thread %s Gid %r" % (tid, f["Gid"])
        assert f["Groups"] == "", "thread %s Groups %r" % (tid, f["Groups"])
        for k in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            assert int(f[k], 16) == 0, "thread %s %s %s" % (tid, k, f[k])
        assert f["NoNewPrivs"] == "1", "thread %s NoNewPrivs %r" % (tid, f["NoNewPrivs"])


def owned_by(path, pw):
    st = os.lstat(path)
    return st.st_uid == pw.pw_uid and st.st_gid == pw.pw_gid


def state_files(g):
    return sorted(os.path.join(g.state_dir, n) for n in os.listdir(g.state_dir))


def assert_state_owned(g, pw):
    assert owned_by(g.state_dir, pw), "state_dir owned by %r" % (os.stat(g.state_dir),)
    for p in state_files(g):
        assert owned_by(p, pw), "%s owned by uid %d, not %s" % (p, os.lstat(p).st_uid, pw.pw_name)
        assert stat.S_IMODE(os.lstat(p).st_mode) & 0o077 == 0 or p.endswith("tls-cert.pem"), \
            "%s mode %o" % (p, stat.S_IMODE(os.lstat(p).st_mode))


def audit_events(g):
    return ac.read_audit(g)


def wait_audit(g, since, pred, what, timeout=10.0):
    """The audit writer is a thread of its own: poll for the event."""
    deadline = time.monotonic() + timeout
    while True:
        ev = audit_events(g)[since:]
        if any(pred(e) for e in ev):
            return
        assert time.monotonic() < deadline, "no %s in the audit file: %r" % (what, ev)
        time.sleep(0.05)


async def login_ok(g, user):
    c = await sc.logged_in(g, user, user.name)
    await c.ping()
    await c.close()


# ------------------------------------------------------------------ tests

def test_root_start_serves_as_nobody():
    """run_as "nobody": the drop is logged, every thread is nobody with no
    capability, and everything that writes still works."""
    if not root_only():
        return
    g = gh.Gatehouse(ARGS.gatehouse, config={"run_as": "nobody", "identity": {"mfa": "required"}})
    policy = os.path.join(g.workdir, "policy.json")
    g.config["policy"] = {"file": policy}
    sc.write_policy(policy, [])
    # Made by the CLI as root before the first start: root's files, which
    # the start hands over.
    alice = sc.create_user(g, "alice", PASSWORD)
    assert os.stat(os.path.join(g.state_dir, "users.db")).st_uid == 0
    with g:
        def check():
            log = gh.wait_log(g, ["dropped privileges to nobody (uid %d, gid %d)" % (
                NOBODY.pw_uid, NOBODY.pw_gid), " ready"])
            # The drop comes after the listeners, before "ready".
            assert log.index("dropped privileges") < log.index("ready")
            assert_unprivileged(g.proc.pid, NOBODY.pw_uid, NOBODY.pw_gid)
            assert_state_owned(g, NOBODY)
            for n in ("users.db-wal", "users.db-shm"):
                assert os.path.exists(os.path.join(g.state_dir, n)), n

            assert gh.stun_binding(g.host, g.port) is not None, "no STUN answer"
            before = len(audit_events(g))
            run(login_ok(g, alice))           # users.db written (TOTP step)
            wait_audit(g, before, lambda e: e.get("event") == "login.success" and
                       e.get("user") == "alice", "login.success of alice")

            # A user added by root's CLI while the daemon runs: the CLI acts
            # as the state_dir's owner, so nothing in state_dir becomes root's.
            bob = sc.create_user(g, "bob", PASSWORD)
            assert_state_owned(g, NOBODY)
            # ... and leaves the daemon's WAL in place (a CLI that thought
            # itself the database's last user would delete it).
            fds = [os.readlink("/proc/%d/fd/%s" % (g.proc.pid, fd))
                   for fd in os.listdir("/proc/%d/fd" % g.proc.pid)]
            assert not [f for f in fds if "users.db" in f and f.endswith("(deleted)")], fds
            run(login_ok(g, bob))

            # Rotation: rename, SIGUSR1, a new file made by nobody.
            audit = ac.audit_path(g)
            os.rename(audit, audit + ".1")
            os.kill(g.proc.pid, signal.SIGUSR1)
            deadline = time.monotonic() + 5
            while not os.path.exists(audit) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert os.path.exists(audit), "no new audit file after SIGUSR1\n" + gh.tail(g.log())
            run(login_ok(g, alice))
            wait_audit(g, 0, lambda e: e.get("event") == "login.success",
                       "login.success in the new audit file")
            assert owned_by(audit, NOBODY)
            assert stat.S_IMODE(os.stat(audit).st_mode) == 0o600

            # The policy file lives in the workdir, which nobody may write
            # (gh.py): the admin API's atomic replace works, and the file
            # it leaves is nobody's.
            admin = sc.create_user(g, "chief", PASSWORD, groups=["admin"])
            api = ac.AdminClient(g)
            tok = api.login(admin, expect_role="admin")
            new = {"default": "deny", "groups": {"x": ["alice"]}, "rules": []}
            st, b = api.call("PUT", "/api/policy", body=new, token=tok, origin=api.origin)
            assert st == 200, "PUT /api/policy: %d %r\n%s" % (st, b, api.describe())
            with open(policy) as f:
                assert json.load(f) == new
            assert owned_by(policy, NOBODY)
            assert g.alive()
        with_log(g, check)


def thread_nice(pid):
    """{thread name: [nice values]} from /proc/<pid>/task/*/stat."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                # Field 19, counted after the name in parentheses.
                nice = int(f.read().rsplit(")", 1)[1].split()[16])
        except (FileNotFoundError, IndexError, ValueError):
            continue
        out.setdefault(name, []).append(nice)
    return out


def test_background_threads_give_way():
    """The login worker (argon2id) and the audit reader run at nice 10, so
    that the scheduler lets the main and relay threads preempt them; the
    main and relay threads keep the priority they started with."""
    g = gh.Gatehouse(ARGS.gatehouse)
    with g:
        def check():
            n = thread_nice(g.proc.pid)
            assert n.get("gh-login") == [10] and n.get("gh-audit-query") == [10], \
                "background threads' nice values: %r" % n
            assert n.get("gh-relay") == [0] and 0 in n.get("gatehouse", []), \
                "main and relay threads' nice values: %r" % n
        with_log(g, check)


def test_default_user():
    """No run_as: "gatehouse" when that user exists, else "nobody" with a
    warning that says how to create one."""
    if not root_only():
        return
    pw = gh.run_as_user()
    with gh.Gatehouse(ARGS.gatehouse) as g:
        def check():
            log = g.log()
            assert "dropped privileges to %s (uid %d" % (pw.pw_name, pw.pw_uid) in log, gh.tail(log)
            if pw.pw_name == "nobody":
                assert 'no user "gatehouse": running as "nobody"' in log, gh.tail(log)
                assert "useradd --system" in log
            assert_unprivileged(g.proc.pid, pw.pw_uid, pw.pw_gid)
            assert g.alive()
        with_log(g, check)


def test_run_as_root_keeps_root():
    """run_as "root" is the explicit way to keep root (said in a warning)."""
    if not root_only():
        return
    with gh.Gatehouse(ARGS.gatehouse, config={"run_as": "root"}) as g:
        log = g.log()
        assert 'run_as "root" is root: keeping every privilege' in log, gh.tail(log)
        st = threads_status(g.proc.pid)
        assert all(f["Uid"].split()[1] == "0" for f in st.values())


def expect_refusal(g, needles, rc=1):
    """Starts g, expects it to exit during start-up with rc and every
    needle in its log; cleans up."""
    try:
        try:
            g.start()
        except RuntimeError:
            pass
        else:
            raise AssertionError("the daemon started; expected a refusal naming %r" % (needles,))
        assert g.returncode == rc, "exit %r, expected %d\n%s" % (g.returncode, rc, gh.tail(g.log()))
        log = g.log()
        for n in needles:
            assert n in log, "%r not in the log:\n%s" % (n, gh.tail(log))
        assert "ready" not in log
    finally:
        g.stop()
        shutil.rmtree(g.workdir, ignore_errors=True)


def test_refuses_readable_secrets():
    """turn_secret, secrets.key, users.db (and its -wal), users.lock, the audit file
    and a configured TLS key that group or others may read: no start, and
    the message names the file and "chmod 600 <file>"; exit 1 for the
    state files, 2 for the configured key (invalid input,
    daemon_check_files())."""
    if not root_only():
        return
    for name, mode in (("turn_secret", 0o640), ("secrets.key", 0o640), ("users.db", 0o644),
                       ("users.db-wal", 0o604), ("users.lock", 0o640),
                       ("audit.jsonl", 0o640), ("tls-key.pem", 0o640)):
        g = gh.Gatehouse(ARGS.gatehouse)
        os.makedirs(g.state_dir, mode=0o700)
        path = os.path.join(g.state_dir, name)
        with open(path, "w") as f:
            f.write("00" * 32 + "\n" if name in ("turn_secret", "secrets.key") else "")
        os.chmod(path, mode)
        expect_refusal(g, [path, "chmod 600 %s" % path])

    # A configured key elsewhere is input the operator named: refused as
    # invalid (exit 2, as check-config does) by the key loader, which looks
    # at the mode before the content (neither file holds PEM here).
    g = gh.Gatehouse(ARGS.gatehouse)
    key = os.path.join(g.workdir, "key.pem")
    cert = os.path.join(g.workdir, "cert.pem")
    for path in (key, cert):
        with open(path, "w") as f:
            f.write("not PEM\n")
    os.chmod(key, 0o640)
    g.config["tls"] = {"cert": cert, "key": key}
    expect_refusal(g, ["tls.key: %s" % key, "chmod 600 %s" % key], rc=2)


def test_refuses_open_state_dir():
    """A state_dir that group or others may write: "chmod 700 <dir>"."""
    if not root_only():
        return
    g = gh.Gatehouse(ARGS.gatehouse)
    os.makedirs(g.state_dir)
    os.chmod(g.state_dir, 0o770)
    expect_refusal(g, ["state_dir %s" % g.state_dir, "chmod 700 %s" % g.state_dir])


def test_refuses_unreachable_state_dir():
    """A state_dir below a folder that run_as cannot enter: the daemon
    would fail later at every write, so it refuses to serve and says why."""
    if not root_only():
        return
    g = gh.Gatehouse(ARGS.gatehouse, config={"run_as": "nobody"})
    os.chown(g.workdir, 0, 0)
    os.chmod(g.workdir, 0o700)
    expect_refusal(g, ["state_dir %s: not usable by nobody" % g.state_dir, "chmod o+x"])


def test_refuses_unknown_user():
    if not root_only():
        return
    g = gh.Gatehouse(ARGS.gatehouse, config={"run_as": "no-such-user-gh"})
    expect_refusal(g, ['run_as: no user named "no-such-user-gh"'])
    assert not os.path.exists(g.state_dir), "state_dir made before the refusal"


def test_refuses_foreign_state_dir():
    """Root does not hand over a state_dir that belongs to a third user."""
    if not root_only():
        return
    g = gh.Gatehouse(ARGS.gatehouse, config={"run_as": "nobody"})
    os.makedirs(g.state_dir, mode=0o700)
    os.chown(g.state_dir, 4242, 4242)
    expect_refusal(g, ["state_dir %s: owned by uid 4242" % g.state_dir])


def test_unprivileged_start_drops_capabilities():
    """Started as nobody with CAP_NET_BIND_SERVICE (what the systemd unit
    does): a TURN listener below 1024 is bound, then no thread keeps any
    capability."""
    if not root_only():
        return
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        print("SKIP: no setpriv")
        return
    low = None
    for p in range(900, 1000):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", p))
            low = p
            break
        except OSError:
            continue
        finally:
            s.close()
    assert low is not None, "no free UDP port in 900-999"
    g = gh.Gatehouse(ARGS.gatehouse)
    # The harness sends STUN to g.port: make that the low one.
    g.port = low
    g.config["turn"]["listen"] = [{"addr": "127.0.0.1:%d" % low, "transport": "udp"},
                                  {"addr": "127.0.0.1:%d" % g.tls_port, "transport": "tls"}]
    wrapper = os.path.join(g.workdir, "as-nobody.sh")
    # Under GH_VALGRIND the wrapper execs valgrind itself, after setpriv:
    # valgrind in front of the script would not follow the execs.
    launcher = " ".join(shlex.quote(a) for a in g.launcher)
    g.launcher = []
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec %s --reuid nobody --regid %d --clear-groups "
                "--inh-caps +net_bind_service --ambient-caps +net_bind_service %s %s \"$@\"\n"
                % (setpriv, NOBODY.pw_gid, launcher, os.path.abspath(ARGS.gatehouse)))
    os.chmod(wrapper, 0o755)
    g.binary = wrapper
    with g:
        def check():
            log = g.log()
            assert "capabilities dropped now that the listeners are bound" in log, gh.tail(log)
            assert "dropped privileges to" not in log
            assert_unprivileged(g.proc.pid, NOBODY.pw_uid, NOBODY.pw_gid)
            assert gh.stun_binding(g.host, low) is not None
        with_log(g, check)


def main():
    global ARGS
    ARGS = gh.main_args()
    gh.run_tests([
        test_root_start_serves_as_nobody,
        test_default_user,
        test_run_as_root_keeps_root,
        test_refuses_readable_secrets,
        test_refuses_open_state_dir,
        test_refuses_unreachable_state_dir,
        test_refuses_unknown_user,
        test_refuses_foreign_state_dir,
        test_unprivileged_start_drops_capabilities,
        test_background_threads_give_way,
    ])


if __name__ == "__main__":
    main()
