#!/usr/bin/python3
"""TURN relaying measured with coturn's turnutils_uclient: 10 clients
relaying to each other through the server (-y), over UDP, TCP, Send
indications and TLS. Plain runs must lose nothing and deliver every
message; TLS runs are judged side by side with coturn, because uclient
itself reports a few lost packets per client over TLS (TESTING.md)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402

ARGS = None

CLIENTS = 10      # -m
MESSAGES = 1000   # -n, per client
LENGTH = 172      # -l
# -z: ms between messages. 5 ms is reliable with coturn for the plain
# transports and keeps a run near 12 s; TLS uses TESTING.md's 20 ms,
# where uclient's own TLS artefact is smallest (about 1 per client).
PACE_MS = 5
TLS_PACE_MS = 20


def expected_sessions(m):
    # uclient -y (client-to-client) with RTCP rounds the client count up
    # to a multiple of 4 (coturn src/apps/uclient/startuclient.c).
    return m + ((4 - (m & 3)) & 3)


def parse_uclient(out):
    """Final figures of a turnutils_uclient run, or AssertionError."""
    msz = [int(x) for x in re.findall(r"start_mclient: msz=(\d+)", out)]
    assert msz, "no progress lines in uclient output; tail:\n%s" % gh.tail(out, 30)

    def last(pattern, conv=int):
        found = re.findall(pattern, out, re.M)
        assert found, "no match for %r in uclient output; tail:\n%s" % (pattern, gh.tail(out, 30))
        return conv(found[-1])
    return {
        # msz counts the sessions still running; the largest is the total.
        "msz": max(msz),
        "sent": last(r"start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=\d+\s*$"),
        "received": last(r"start_mclient: tot_send_msgs=\d+, tot_recv_msgs=(\d+)\s*$"),
        "lost": last(r"Total lost packets (\d+)"),
        "send_dropped": last(r"total send dropped (\d+)"),
        "rtt_ms": last(r"Average round trip delay ([0-9.]+) ms", float),
        "jitter_ms": last(r"Average jitter ([0-9.]+) ms", float),
    }


def run_uclient(port, extra=(), pace_ms=PACE_MS, label=""):
    cmd = ["turnutils_uclient", "-y", "-m", str(CLIENTS), "-n", str(MESSAGES),
           "-l", str(LENGTH), "-z", str(pace_ms), "-u", "bench", "-w", "secret",
           "-p", str(port)] + list(extra) + ["127.0.0.1"]
    timeout = MESSAGES * pace_ms / 1000.0 * 2 + 60
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    t0 = time.monotonic()
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        raise AssertionError("%s: uclient did not finish within %.0f s; tail:\n%s"
                             % (label, timeout, gh.tail(out.decode("utf-8", "replace"), 30)))
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    out = out.decode("utf-8", "replace")
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, "%s: uclient exited %d; tail:\n%s" % (label, p.returncode, gh.tail(out, 30))
    r = parse_uclient(out)
    r["elapsed_s"] = elapsed
    print("%s: %s" % (label, " ".join("%s=%s" % (k, (round(v, 3) if isinstance(v, float) else v))
                                       for k, v in r.items())), flush=True)
    return r, out


def check_complete(r, out, label):
    want = expected_sessions(CLIENTS) * MESSAGES
    assert r["msz"] == expected_sessions(CLIENTS), \
        "%s: uclient ran %d sessions, expected %d" % (label, r["msz"], expected_sessions(CLIENTS))
    assert r["sent"] == want, "%s: sent %d messages, expected %d" % (label, r["sent"], want)
    assert r["lost"] == 0, "%s: %d packets lost" % (label, r["lost"])
    assert r["received"] == want, "%s: received %d messages, expected %d" % (label, r["received"], want)


def daemon_check(g, label):
    assert g.alive(), "%s: daemon not alive after the run; log tail:\n%s" % (label, gh.tail(g.log()))


def _plain(extra, label):
    with gh.Gatehouse(ARGS.gatehouse) as g:
        try:
            r, out = run_uclient(g.port, extra, label="gatehouse " + label)
            check_complete(r, out, label)
        except AssertionError:
            print("daemon log tail (%s):\n%s" % (label, gh.tail(g.log(), 40)))
            raise
        daemon_check(g, label)


def test_uclient_udp():
    _plain([], "udp")


def test_uclient_tcp():
    _plain(["-t"], "tcp")


def test_uclient_udp_send_indications():
    _plain(["-s"], "udp -s")


class Coturn:
    """coturn's turnserver on ports of its own, configured like the
    Gatehouse test instance (long-term credentials bench/secret, realm,
    loopback relay, loopback peers allowed, TLS with a throw-away cert)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="coturn-it-")
        self.port = gh.free_port(socket.SOCK_DGRAM)
        self.tls_port = gh.free_port(socket.SOCK_STREAM)
        self.port_min, self.port_max = gh.relay_window()
        self.proc = None

    def __enter__(self):
        cert = os.path.join(self.dir, "cert.pem")
        key = os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
                        "-days", "1", "-keyout", key, "-out", cert],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.log_path = os.path.join(self.dir, "coturn.log")
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(
                ["turnserver", "-n", "--no-cli", "--listening-ip=127.0.0.1",
                 "--listening-port=%d" % self.port, "--tls-listening-port=%d" % self.tls_port,
                 "--relay-ip=127.0.0.1", "--min-port=%d" % self.port_min,
                 "--max-port=%d" % self.port_max, "--lt-cred-mech", "--user=bench:secret",
                 "--realm=gatehouse.test", "--allow-loopback-peers", "--no-dtls",
                 "--cert=%s" % cert, "--pkey=%s" % key, "--log-file=stdout"],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if gh.stun_binding("127.0.0.1", self.port, 0.2):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("coturn did not start; log:\n%s" % gh.tail(open(self.log_path).read()))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


def test_uclient_tls_vs_coturn():
    extra_base = ["-t", "-S"]
    with Coturn() as c:
        rc, _ = run_uclient(c.tls_port, extra_base, TLS_PACE_MS, label="coturn tls")
    # Sanity of the reference itself: it relayed nearly everything.
    want = expected_sessions(CLIENTS) * MESSAGES
    assert rc["sent"] == want and rc["received"] + rc["lost"] >= want * 0.99, \
        "reference coturn TLS run looks broken: %r" % rc
    with gh.Gatehouse(ARGS.gatehouse) as g:
        try:
            r, out = run_uclient(g.tls_port, extra_base, TLS_PACE_MS, label="gatehouse tls")
            print("TLS lost packets: gatehouse %d, coturn %d" % (r["lost"], rc["lost"]), flush=True)
            assert r["sent"] == want, "gatehouse tls: sent %d messages, expected %d" % (r["sent"], want)
            assert r["received"] > 0, "gatehouse tls: nothing relayed"
            assert r["lost"] <= rc["lost"] + 2, \
                "gatehouse tls lost %d packets, coturn %d (allowed coturn + 2)" % (r["lost"], rc["lost"])
            assert r["received"] + r["lost"] >= want * 0.99, \
                "gatehouse tls: received %d + lost %d do not account for %d sent" % (
                    r["received"], r["lost"], want)
        except AssertionError:
            print("daemon log tail (tls):\n%s" % gh.tail(g.log(), 40))
            raise
        daemon_check(g, "tls")


if __name__ == "__main__":
    ARGS = gh.main_args()
    gh.run_tests([
        test_uclient_udp,
        test_uclient_tcp,
        test_uclient_udp_send_indications,
        test_uclient_tls_vs_coturn,
    ])
