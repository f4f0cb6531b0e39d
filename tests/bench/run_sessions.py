#!/usr/bin/python3
"""Session benchmark: N concurrent authenticated WebSocket sessions against
the real daemon (see tests/bench/README.md).

    /usr/bin/python3 tests/bench/run_sessions.py [--sessions N] [--no-build]
        [--gatehouse BINARY] [--daemon-nofile N] [-- extra bench_sessions options]

Builds the daemon and the C client (tests/bench/bench_sessions.c), raises
the open-file limit, makes an EC P-256 key and its JWKS, writes a config
(signaling on 127.0.0.1, a JWT backend, a policy that lets the bench users
call each other, state in a temporary folder, log level warning), starts
build/gatehouse through the integration harness (tests/integration/gh.py),
runs the client, prints its table and what the daemon logged, and stops the
daemon.

Exit status: 0 when everything worked, however slow; 1 on a functional
failure (a session not connected or not logged in, a broken call cycle,
the daemon crashing or not stopping cleanly); 2 when the bench could not
be built or set up. Traffic goes only to 127.0.0.0/8.
"""

import argparse
import collections
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import gh  # noqa: E402

ISSUER = "https://bench.invalid"
AUDIENCE = "gatehouse"
KID = "bench"
GROUP = "bench"
NOFILE_WANTED = 65536
BUILD_TIMEOUT_S = 900
# Connect, login and close are each bounded by the client's phase
# timeout (180 s); this is the outer bound for the whole client run.
CLIENT_TIMEOUT_S = 1800


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=BUILD_TIMEOUT_S, **kw)


def build(build_dir):
    """Builds build/gatehouse and the client; returns the client's path.
    The client is a target of the main build when the top-level
    CMakeLists.txt has add_subdirectory(tests/bench); otherwise it is built
    on its own in BUILD_DIR/bench-sessions."""
    r = run(["cmake", "--build", build_dir, "-j2", "--target", "gatehouse"])
    if r.returncode != 0:
        sys.exit("bench: building gatehouse failed:\n" + gh.tail(r.stdout, 40))
    r = run(["cmake", "--build", build_dir, "-j2", "--target", "bench_sessions"])
    if r.returncode == 0:
        return os.path.join(build_dir, "tests", "bench", "bench_sessions")
    own = os.path.join(build_dir, "bench-sessions")
    r = run(["cmake", "-S", HERE, "-B", own])
    if r.returncode == 0:
        r = run(["cmake", "--build", own, "-j2"])
    if r.returncode != 0:
        sys.exit("bench: building bench_sessions failed:\n" + gh.tail(r.stdout, 40))
    return os.path.join(own, "bench_sessions")


def raise_nofile(sessions):
    """Raises the soft open-file limit (inherited by the daemon and the
    client) as far as the hard limit allows; returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE_WANTED if hard == resource.RLIM_INFINITY else min(NOFILE_WANTED, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # The daemon holds one descriptor a session plus a few dozen of its own.
    if soft < sessions + 200:
        sys.exit("bench: %d sessions need about %d open files per process, but the "
                 "limit is %d (hard %d); lower --sessions" % (sessions, sessions + 200,
                                                             soft, hard))
    return soft, hard


def daemon_limits(pid):
    try:
        with open("/proc/%d/limits" % pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    return " ".join(line.split()[3:5])
    except OSError:
        pass
    return "?"


def log_summary(text):
    """What the daemon logged (at level warning: its warnings and errors,
    libwebsockets' included, and anything else written to its stderr),
    grouped by message with the numbers masked, most frequent first."""
    lines = [l for l in text.splitlines() if l.strip()]
    groups = collections.Counter()
    first = {}
    for l in lines:
        key = re.sub(r"\d+", "N", re.sub(r"^\d{4}-\d\d-\d\dT\S+\s+", "", l))[:160]
        groups[key] += 1
        first.setdefault(key, l)
    return len(lines), [(n, first[k]) for k, n in groups.most_common(15)]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=10000)
    p.add_argument("--gatehouse", default=os.path.join(ROOT, "build", "gatehouse"))
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    p.add_argument("--no-build", action="store_true",
                   help="use the binaries as they are")
    p.add_argument("--client", help="path of bench_sessions (default: build it)")
    p.add_argument("--daemon-nofile", type=int, default=0,
                   help="start the daemon with this soft open-file limit instead "
                        "(to see what it does when descriptors run out)")
    p.add_argument("extra", nargs="*", help="after --: more bench_sessions options")
    args = p.parse_args()
    if args.sessions < 2:
        p.error("--sessions must be at least 2")

    if args.client:
        client = args.client
    elif args.no_build:
        client = next((c for c in (
            os.path.join(args.build_dir, "tests", "bench", "bench_sessions"),
            os.path.join(args.build_dir, "bench-sessions", "bench_sessions"))
            if os.path.exists(c)), None)
        if client is None:
            sys.exit("bench: no bench_sessions built; run without --no-build")
    else:
        client = build(args.build_dir)
    soft, hard = raise_nofile(args.sessions)

    files = tempfile.mkdtemp(prefix="gatehouse-bench-")
    # The daemon drops to an unprivileged user and must still read these.
    os.chmod(files, 0o711)
    key = os.path.join(files, "bench-key.pem")
    jwks = os.path.join(files, "jwks.json")
    policy = os.path.join(files, "policy.json")
    r = run([client, "keygen", "--key", key, "--jwks", jwks, "--kid", KID])
    if r.returncode != 0:
        shutil.rmtree(files, ignore_errors=True)
        sys.exit("bench: keygen failed:\n" + r.stdout)
    with open(policy, "w") as f:
        json.dump({"default": "deny", "groups": {GROUP: []},
                   "rules": [{"name": "bench-calls", "from": "group:" + GROUP,
                              "to": "group:" + GROUP, "media": ["audio", "video", "data"],
                              "action": "allow"}]}, f, indent=2)
    config = {
        "identity": {"mfa": "required", "backends": [
            {"type": "jwt", "issuer": ISSUER, "audience": AUDIENCE, "jwks_file": jwks,
             "user_claim": "sub", "groups_claim": "groups"}]},
        "policy": {"file": policy},
        "log": {"level": "warning"},
        # A session places a call every 2 x --pair-interval-ms at most:
        # far above what signaling.calls_per_minute lets a person place.
        "signaling": {"calls_per_minute": 1000000},
    }

    status = 0
    started = False
    g = gh.Gatehouse(args.gatehouse, config=config)
    print("bench: %s, %d sessions, open-file limit %d (hard %d), workdir %s"
          % (args.gatehouse, args.sessions, soft, hard, g.workdir), flush=True)
    try:
        if args.daemon_nofile:
            # The daemon inherits the limit at fork; the client keeps the high one.
            resource.setrlimit(resource.RLIMIT_NOFILE, (args.daemon_nofile, hard))
        try:
            g.start()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        started = True
        pid = g.proc.pid
        print("bench: daemon pid %d, signaling 127.0.0.1:%d, its open-file limit %s"
              % (pid, g.signaling_port, daemon_limits(pid)), flush=True)
        cmd = [client, "run", "--port", str(g.signaling_port), "--pid", str(pid),
               "--key", key, "--kid", KID, "--issuer", ISSUER, "--audience", AUDIENCE,
               "--group", GROUP, "--sessions", str(args.sessions)] + args.extra
        print("bench: " + " ".join(cmd), flush=True)
        try:
            rc = subprocess.run(cmd, timeout=CLIENT_TIMEOUT_S).returncode
        except subprocess.TimeoutExpired:
            print("bench: FAIL: the client ran longer than %d s" % CLIENT_TIMEOUT_S)
            rc = 1
        if rc != 0:
            status = 1 if rc == 1 else 2
        if g.proc.poll() is not None:
            print("bench: FAIL: the daemon exited with %s during the run"
                  % g.proc.returncode)
            status = 1
    except RuntimeError as e:  # the harness: start-up failed
        print("bench: FAIL: %s" % e)
        status = 1
    finally:
        shutil.rmtree(files, ignore_errors=True)
        try:
            running = started and g.proc.poll() is None
            rc = g.stop()
            if running and rc != 0:
                print("bench: FAIL: the daemon exited with %s after SIGTERM (expected 0)"
                      % rc)
                status = 1
        except RuntimeError as e:  # did not stop within 10 s of SIGTERM
            print("bench: FAIL: %s" % str(e).splitlines()[0])
            status = 1
    log = g.log()
    findings = g.sanitizer_findings()
    if findings:
        print("bench: FAIL: sanitizer report in the daemon log")
        status = 1

    n, groups = log_summary(log)
    print("\ndaemon log (level warning): %d lines%s" % (n, ":" if n else ""))
    for count, line in groups:
        print("  %6d x %s" % (count, line[:200]))
    if status == 0:
        shutil.rmtree(g.workdir, ignore_errors=True)
    else:
        print("bench: kept the daemon's workdir (config, log): %s" % g.workdir)
    print("bench: %s" % ("OK" if status == 0 else "FAIL"))
    return status


if __name__ == "__main__":
    sys.exit(main())
