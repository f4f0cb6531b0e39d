#!/usr/bin/python3
"""Shared harness for Gatehouse integration tests.

Stable API (other test files import it):

    free_port(sock_type=socket.SOCK_DGRAM) -> int
    class Gatehouse(binary, config=None, static_users={"bench": "secret"})
        host, port, tls_port, signaling_port, admin_port, realm, state_dir,
        config_path, port_min, port_max, workdir
        start(), stop() -> int, alive() -> bool, log() -> str,
        context manager (start/stop + sanitizer check)
    stun_binding(host, port, timeout=2.0) -> (ip, port) | None
    run_tests(tests) -> None (exits the process)
    main_args() -> argparse.Namespace  (--gatehouse BINARY)

Extras (also stable, but optional to use): DELETE (a marker that removes a
key when deep-merging a config), build_stun(), parse_stun(),
stun_binding_stream(), relay_window(), reserve_relay_window(), tail(),
run_as_user(), slow_factor(), valgrind_dir(), valgrind_argv(),
valgrind_findings(), valgrind_check_pid(), Gatehouse.launcher, WallShift
(steps the daemon's wall clock).

Under valgrind: with GH_VALGRIND=<folder> in the environment, start()
runs the daemon under valgrind memcheck (valgrind_argv(); one log per
daemon, <folder>/vg-<pid>.log), waits longer for it to come up and go
down, and stop() raises when valgrind reported an error or a definite
leak (exit code 97, "ERROR SUMMARY: N" with N > 0, "definitely lost"
with bytes). slow_factor() is what a test multiplies a timeout by that
waits for the daemon to do something (1 normally, GH_SLOW_FACTOR or 10
under valgrind). tests/valgrind/run.sh drives it.

Tests send traffic only to 127.0.0.1 (see TESTING.md, "Network rule").
"""

import argparse
import copy
import errno
import fcntl
import json
import os
import pwd
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import traceback

DEFAULT_BINARY = "/work/main/build/gatehouse"

MAGIC_COOKIE = 0x2112A442
STUN_BINDING_REQUEST = 0x0001
STUN_BINDING_SUCCESS = 0x0101
ATTR_MAPPED_ADDRESS = 0x0001
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_SOFTWARE = 0x8022
ATTR_FINGERPRINT = 0x8028

# Relay port windows: 40 windows of 300 ports in 20000-31999. The kernel's
# ephemeral range here is 32768-60999, so free_port() never lands in a
# relay window. Each instance holds an flock on its window for its
# lifetime so that tests running in parallel (also in other processes)
# never share relay ports.
RELAY_LO = 20000
RELAY_HI = 32000
RELAY_WINDOW = 300
_LOCK_DIR = os.path.join(tempfile.gettempdir(), "gatehouse-test-locks")

_handed_out = set()


class _Delete:
    def __repr__(self):
        return "gh.DELETE"


# Use as a value in a config override to remove the key from the base.
DELETE = _Delete()


# ---------------------------------------------------------------- ports

def free_port(sock_type=socket.SOCK_DGRAM) -> int:
    """A port on 127.0.0.1 that is free for both UDP and TCP right now.

    sock_type says which kind is bound first (to get a kernel-chosen port);
    the other kind is then checked on the same number. Ports returned
    earlier by this process are never returned again."""
    other = socket.SOCK_STREAM if sock_type == socket.SOCK_DGRAM else socket.SOCK_DGRAM
    for _ in range(200):
        a = socket.socket(socket.AF_INET, sock_type)
        b = socket.socket(socket.AF_INET, other)
        try:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port in _handed_out:
                continue
            try:
                b.bind(("127.0.0.1", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
        finally:
            a.close()
            b.close()
    raise RuntimeError("free_port: no port free for both UDP and TCP")


def _ports_free(lo, hi):
    for p in range(lo, hi + 1):
        for t in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, t)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                return False
            finally:
                s.close()
    return True


def reserve_relay_window():
    """Returns (port_min, port_max, lock_fd): a random 300-port window in
    20000-31999 whose ports are free now and which no other harness user
    holds. Release with release_relay_window(lock_fd). When none is free,
    waits up to GH_WINDOW_WAIT_S seconds (default 0) for one: a benchmark
    (tests/bench/run_relay.py) holds most windows for minutes, which a
    long valgrind run had rather wait out than fail on."""
    os.makedirs(_LOCK_DIR, exist_ok=True)
    n = (RELAY_HI - RELAY_LO) // RELAY_WINDOW
    wait_s = float(os.environ.get("GH_WINDOW_WAIT_S") or 0)
    deadline = time.monotonic() + wait_s
    said = False
    while True:
        order = list(range(n))
        random.shuffle(order)
        for idx in order:
            path = os.path.join(_LOCK_DIR, "relay-%d.lock" % idx)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            lo = RELAY_LO + idx * RELAY_WINDOW
            hi = lo + RELAY_WINDOW - 1
            if _ports_free(lo, hi):
                return lo, hi, fd
            os.close(fd)
        if time.monotonic() >= deadline:
            break
        if not said:
            sys.stderr.write("gh: every relay port window is held or in use; waiting up to "
                             "%.0f s (GH_WINDOW_WAIT_S)\n" % wait_s)
            said = True
        time.sleep(1.0)
    raise RuntimeError("no free relay port window in %d-%d" % (RELAY_LO, RELAY_HI - 1))


def release_relay_window(fd):
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def relay_window():
    """(port_min, port_max) of a fresh window; the lock is held until the
    process exits. For tests that start other servers (coturn)."""
    lo, hi, fd = reserve_relay_window()
    _held_fds.append(fd)
    return lo, hi


_held_fds = []


# ----------------------------------------------------------------- STUN

def build_stun(msg_type, attrs=(), txid=None):
    """A STUN message: attrs is a list of (type, bytes). Returns
    (message_bytes, txid)."""
    if txid is None:
        txid = os.urandom(12)
    body = b""
    for t, v in attrs:
        body += struct.pack("!HH", t, len(v)) + v + b"\0" * (-len(v) % 4)
    return struct.pack("!HHI", msg_type, len(body), MAGIC_COOKIE) + txid + body, txid


def parse_stun(data):
    """Parses one STUN message. Returns (msg_type, txid, [(type, value)]) or
    None when it is not a well-formed STUN message."""
    if len(data) < 20:
        return None
    msg_type, length, cookie = struct.unpack("!HHI", data[:8])
    if msg_type & 0xC000 or cookie != MAGIC_COOKIE or length % 4 or 20 + length > len(data):
        return None
    txid = data[8:20]
    attrs = []
    off = 20
    end = 20 + length
    while off < end:
        if end - off < 4:
            return None
        t, alen = struct.unpack("!HH", data[off:off + 4])
        off += 4
        if alen > end - off:
            return None
        attrs.append((t, data[off:off + alen]))
        off += alen + (-alen % 4)
    if off != end:
        return None
    return msg_type, txid, attrs


def fingerprint_ok(data):
    """True when the message has no FINGERPRINT, or a correct one as its
    last attribute (RFC 8489 §14.7); False otherwise."""
    import zlib
    m = parse_stun(data)
    if m is None:
        return False
    attrs = m[2]
    idx = [i for i, (t, _) in enumerate(attrs) if t == ATTR_FINGERPRINT]
    if not idx:
        return True
    if idx != [len(attrs) - 1] or len(attrs[-1][1]) != 4:
        return False
    total = 20 + struct.unpack("!H", data[2:4])[0]
    want = (zlib.crc32(data[:total - 8]) ^ 0x5354554E) & 0xFFFFFFFF
    return struct.unpack("!I", attrs[-1][1])[0] == want


def decode_xor_address(value, txid):
    """XOR-MAPPED-ADDRESS / XOR-PEER-ADDRESS / XOR-RELAYED-ADDRESS value ->
    (ip, port) or None."""
    if len(value) < 4:
        return None
    family = value[1]
    port = struct.unpack("!H", value[2:4])[0] ^ (MAGIC_COOKIE >> 16)
    if family == 0x01 and len(value) == 8:
        raw = struct.unpack("!I", value[4:8])[0] ^ MAGIC_COOKIE
        return socket.inet_ntop(socket.AF_INET, struct.pack("!I", raw)), port
    if family == 0x02 and len(value) == 20:
        key = struct.pack("!I", MAGIC_COOKIE) + txid
        raw = bytes(x ^ y for x, y in zip(value[4:20], key))
        return socket.inet_ntop(socket.AF_INET6, raw), port
    return None


def _binding_mapped(resp, txid):
    m = parse_stun(resp)
    if m is None:
        return None
    msg_type, rtxid, attrs = m
    if msg_type != STUN_BINDING_SUCCESS or rtxid != txid:
        return None
    for t, v in attrs:
        if t == ATTR_XOR_MAPPED_ADDRESS:
            return decode_xor_address(v, txid)
    return None


def stun_binding(host, port, timeout=2.0):
    """Sends one Binding request over UDP and returns the XOR-MAPPED-ADDRESS
    of the answer as (ip, port), or None (no answer in time, or an answer
    that is not a matching Binding success with that attribute)."""
    req, txid = build_stun(STUN_BINDING_REQUEST)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.connect((host, port))
        deadline = time.monotonic() + timeout
        s.send(req)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            s.settimeout(left)
            try:
                resp = s.recv(65536)
            except (socket.timeout, ConnectionRefusedError):
                return None
            mapped = _binding_mapped(resp, txid)
            if mapped is not None:
                return mapped
            m = parse_stun(resp)
            if m is not None and m[1] == txid:
                return None  # an answer, but not a usable one
    finally:
        s.close()


def recv_stun_stream(sock, timeout=2.0):
    """Reads one whole STUN message from a stream socket (TCP or TLS)."""
    deadline = time.monotonic() + timeout
    buf = b""
    need = 20
    while len(buf) < need:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out reading a STUN message (%d of %d bytes)" % (len(buf), need))
        sock.settimeout(left)
        chunk = sock.recv(need - len(buf))
        if not chunk:
            raise ConnectionError("connection closed after %d of %d bytes" % (len(buf), need))
        buf += chunk
        if len(buf) >= 4 and need == 20:
            need = 20 + struct.unpack("!H", buf[2:4])[0]
    return buf


def tls_client_context():
    """TLS client context with verification off (the daemon's cert is
    self-signed)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def stun_binding_stream(host, port, use_tls=False, timeout=2.0):
    """Binding over TCP (or TLS). Returns (mapped, local_addr, response)
    where mapped is (ip, port) or None and response the raw bytes."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        if use_tls:
            s = tls_client_context().wrap_socket(s, server_hostname="localhost")
        local = s.getsockname()[:2]
        req, txid = build_stun(STUN_BINDING_REQUEST)
        s.sendall(req)
        resp = recv_stun_stream(s, timeout)
        return _binding_mapped(resp, txid), local, resp
    finally:
        s.close()


# --------------------------------------------------------------- daemon

def run_as_user():
    """The pwd entry of the user a daemon started as root becomes by
    default (gateway/privdrop.h): "gatehouse", else "nobody"."""
    try:
        return pwd.getpwnam("gatehouse")
    except KeyError:
        return pwd.getpwnam("nobody")


def _merge(base, over):
    for k, v in over.items():
        if v is DELETE:
            base.pop(k, None)
        elif isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def tail(text, lines=60):
    return "\n".join(text.splitlines()[-lines:])


# -------------------------------------------------------------- valgrind

# valgrind's exit code when it found an error (--error-exitcode).
VALGRIND_EXIT = 97


def valgrind_dir():
    """The folder for valgrind logs (GH_VALGRIND), or None: then the
    daemon runs natively."""
    return os.environ.get("GH_VALGRIND") or None


def slow_factor() -> float:
    """How much slower than native the daemon is expected to answer:
    GH_SLOW_FACTOR when set, else 10 under valgrind (memcheck runs the
    daemon's own code 20-50x slower, but most of a test's time is spent
    waiting on sockets and in the test itself), else 1. Multiply a
    timeout by it when it bounds work the daemon does; leave alone the
    ones that measure the daemon's own timers."""
    env = os.environ.get("GH_SLOW_FACTOR")
    if env:
        return max(1.0, float(env))
    return 10.0 if valgrind_dir() else 1.0


def valgrind_argv(log_dir=None):
    """The argv prefix that runs the daemon under memcheck with its log in
    log_dir (default valgrind_dir(), made if need be), or [] when there
    is none. Only definite leaks count (--errors-for-leak-kinds): the
    daemon's threads and libraries keep memory reachable until exit by
    design. Nothing is suppressed unless tests/valgrind/*.supp says so,
    each entry with the reason."""
    log_dir = log_dir or valgrind_dir()
    if not log_dir:
        return []
    _valgrind_prepare(log_dir)
    argv = ["valgrind", "--tool=memcheck", "--leak-check=full",
            "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite",
            "--error-exitcode=%d" % VALGRIND_EXIT, "--track-fds=no",
            "--num-callers=30", "--child-silent-after-fork=yes",
            # No gdbserver: its FIFOs in /tmp, made as root, are left behind
            # when the daemon, no longer root, cannot unlink them at exit.
            "--vgdb=no",
            "--log-file=%s" % os.path.join(os.path.abspath(log_dir), "vg-%p.log")]
    supp_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "valgrind")
    if os.path.isdir(supp_dir):
        for n in sorted(os.listdir(supp_dir)):
            if n.endswith(".supp"):
                argv.append("--suppressions=%s" % os.path.normpath(os.path.join(supp_dir, n)))
    return argv


def valgrind_check_pid(pid, returncode):
    """For a daemon started with valgrind_argv() in front (directly, or
    by a wrapper that ends in exec, which keeps the pid) that has exited
    with returncode: raises RuntimeError with valgrind's records when its
    log, <GH_VALGRIND>/vg-<pid>.log, reports an error or a definite leak,
    when valgrind exited with VALGRIND_EXIT, or when there is no such log.
    Does nothing without GH_VALGRIND."""
    if not valgrind_dir():
        return
    path = os.path.join(valgrind_dir(), "vg-%d.log" % pid)
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        raise RuntimeError("no valgrind log %s: the daemon did not run under valgrind "
                           "(a wrapper that does not exec valgrind_argv()?)" % path)
    ok, summary, excerpt = valgrind_findings(text)
    if ok and returncode != VALGRIND_EXIT:
        return
    raise RuntimeError("valgrind report for gatehouse (exit %s, %s errors, %s bytes "
                       "definitely lost), %s:\n%s"
                       % (returncode, summary["errors"], summary["definitely_lost"], path, excerpt))


def _valgrind_prepare(log_dir):
    """Makes log_dir, writable for whoever valgrind runs as. valgrind opens
    its log before the daemon drops privileges and keeps the descriptor,
    but a wrapper that drops before exec'ing valgrind (test_privdrop's
    setpriv) has it create the file as the unprivileged user. The sticky
    bit keeps users from touching each other's logs, as in /tmp."""
    os.makedirs(log_dir, exist_ok=True)
    if os.geteuid() == 0 or os.stat(log_dir).st_uid == os.geteuid():
        os.chmod(log_dir, 0o1777)


def valgrind_findings(log_text):
    """(ok, summary, excerpt) for one valgrind log: ok is False when it
    reports an error, a definite leak with bytes, or no summary at all
    (the process never reached exit: killed, or still running); summary
    is {"errors": N, "definitely_lost": bytes, "indirectly_lost": bytes}
    (None where the log has no such line); excerpt is the error and
    definite-leak records with their stacks, for a failure message."""
    summary = {"errors": None, "definitely_lost": None, "indirectly_lost": None}
    m = re.findall(r"ERROR SUMMARY: ([\d,]+) errors", log_text)
    if m:
        summary["errors"] = int(m[-1].replace(",", ""))
    for key, label in (("definitely_lost", "definitely lost"),
                       ("indirectly_lost", "indirectly lost")):
        m = re.findall(r"%s: ([\d,]+) bytes" % label, log_text)
        if m:
            summary[key] = int(m[-1].replace(",", ""))
    if summary["errors"] is not None and summary["definitely_lost"] is None:
        # No leak summary is printed when nothing was allocated at exit.
        if "All heap blocks were freed" in log_text:
            summary["definitely_lost"] = summary["indirectly_lost"] = 0
    ok = (summary["errors"] == 0 and not summary["definitely_lost"])
    # Records: blocks of "==pid== " lines separated by blank ones; keep the
    # ones that are not the preamble or the summaries.
    records, cur = [], []
    for line in log_text.splitlines():
        body = re.sub(r"^==\d+== ?", "", line)
        if body.strip():
            cur.append(line)
        elif cur:
            records.append(cur)
            cur = []
    if cur:
        records.append(cur)
    keep = []
    for r in records:
        head = re.sub(r"^==\d+== ?", "", r[0])
        if head.startswith(("Memcheck,", "Copyright", "Using Valgrind", "Command:",
                            "Parent PID:", "HEAP SUMMARY", "LEAK SUMMARY", "For lists of",
                            "For counts of", "Use --track-origins", "Rerun with",
                            "To see them", "Reachable blocks", "ERROR SUMMARY",
                            "Searching for pointers", "All heap blocks")):
            continue
        if head.startswith(("Warning: set address range perms",
                            "Warning: noted but unhandled ioctl")):
            continue
        keep.append("\n".join(r))
    excerpt = "\n\n".join(keep[:8])
    if len(keep) > 8:
        excerpt += "\n\n(%d more records)" % (len(keep) - 8)
    if summary["errors"] is None:
        excerpt = (excerpt + "\n\n" if excerpt else "") + \
            "(no ERROR SUMMARY: valgrind did not see the process exit)\n" + tail(log_text, 20)
    return ok, summary, excerpt


SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer",
                     "ThreadSanitizer", "UndefinedBehaviorSanitizer")


class Gatehouse:
    host = "127.0.0.1"
    realm = "gatehouse.test"

    def __init__(self, binary, config=None, static_users={"bench": "secret"}):
        self.binary = binary
        self.port = free_port(socket.SOCK_DGRAM)
        self.tls_port = free_port(socket.SOCK_STREAM)
        self.signaling_port = free_port(socket.SOCK_STREAM)
        self.admin_port = free_port(socket.SOCK_STREAM)
        self.port_min, self.port_max, self._window_fd = reserve_relay_window()
        self.workdir = tempfile.mkdtemp(prefix="gatehouse-it-")
        if os.geteuid() == 0:
            # Started as root, the daemon drops to run_as_user() once its
            # listeners are bound: state_dir (made below the workdir) and
            # the policy files the tests keep here must stay reachable and
            # writable for that user, as /var/lib/gatehouse is in a real
            # deployment.
            pw = run_as_user()
            os.chown(self.workdir, pw.pw_uid, pw.pw_gid)
        self.state_dir = os.path.join(self.workdir, "state")
        self.config_path = os.path.join(self.workdir, "gatehouse.json")
        self.log_path = os.path.join(self.workdir, "gatehouse.log")
        self.proc = None
        self.returncode = None
        # argv prefix of the daemon: valgrind under GH_VALGRIND. A test that
        # starts the daemon through a wrapper of its own puts it in front of
        # the binary there and sets this to [] (the log is still found and
        # checked by pid, which exec keeps).
        self.launcher = valgrind_argv()
        self._vg_checked = None
        h = self.host
        turn = {
            "listen": [
                {"addr": "%s:%d" % (h, self.port), "transport": "udp"},
                {"addr": "%s:%d" % (h, self.port), "transport": "tcp"},
                {"addr": "%s:%d" % (h, self.tls_port), "transport": "tls"},
            ],
            "relay_ip": h,
            "port_range": "%d-%d" % (self.port_min, self.port_max),
        }
        if static_users is not None:
            turn["static_users"] = dict(static_users)
        self.config = {
            "realm": self.realm,
            "state_dir": self.state_dir,
            "signaling": {"listen": "%s:%d" % (h, self.signaling_port)},
            "admin": {"listen": "%s:%d" % (h, self.admin_port)},
            "turn": turn,
            "log": {"level": "debug"},
            # The tests drive refusals and failures from 127.0.0.1 on
            # purpose; the detectors still alert, but blocking the one
            # source every test shares would stop the rest of a file.
            # Tests of the responses turn them back on.
            "alerts": {"relay_scanning": {"response": "none"},
                       "password_guessing_source": {"response": "none"},
                       "credential_stuffing": {"response": "none"},
                       "signaling_flood": {"response": "none"},
                       "password_guessing_user": {"response": "none"}},
        }
        if config:
            _merge(self.config, config)

    # Start-up attempts when a listener's port was taken meanwhile.
    START_ATTEMPTS = 3

    def _move_ports(self):
        """Ports are picked before the daemon binds them, so another
        process (a parallel test's client socket, given an ephemeral port)
        can take one in between. New ones, wherever the config names the
        old ones (listeners, allowed origins)."""
        moves = [("port", socket.SOCK_DGRAM), ("tls_port", socket.SOCK_STREAM),
                 ("signaling_port", socket.SOCK_STREAM), ("admin_port", socket.SOCK_STREAM)]
        text = json.dumps(self.config)
        for attr, kind in moves:
            old, new = getattr(self, attr), free_port(kind)
            text = re.sub(r"(?<=:)%d(?!\d)" % old, str(new), text)
            setattr(self, attr, new)
        self.config = json.loads(text)

    def start(self):
        for attempt in range(1, self.START_ATTEMPTS + 1):
            try:
                return self._start_once()
            except RuntimeError:
                # The relay says so; libwebsockets gives the errno (98).
                clash = self.proc is not None and self.proc.poll() is not None and \
                    re.search(r"Address already in use|ERROR on binding fd \d+ to port "
                              r"\d+ \(-1 %d\)" % errno.EADDRINUSE, self.log())
                if not clash or attempt == self.START_ATTEMPTS:
                    raise
                os.replace(self.log_path, "%s.clash-%d" % (self.log_path, attempt))
                self._move_ports()

    def _start_once(self):
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)
        if valgrind_dir():
            _valgrind_prepare(valgrind_dir())
        binary = self.binary
        if os.sep in binary:
            # The daemon (or valgrind) is exec'd after the chdir to workdir,
            # where a relative path such as build/gatehouse means nothing.
            binary = os.path.abspath(binary)
        logf = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                list(self.launcher) + [binary, "run", "-c", self.config_path],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                cwd=self.workdir, start_new_session=True)
        finally:
            logf.close()
        self.returncode = None
        limit = 10.0 * slow_factor()
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                raise RuntimeError("gatehouse exited with %s during start-up; log tail:\n%s"
                                   % (self.proc.returncode, tail(self.log())))
            if stun_binding(self.host, self.port, timeout=0.2 * slow_factor()) is not None:
                return self
            time.sleep(0.05)
        self._kill()
        raise RuntimeError("gatehouse did not answer a STUN Binding on udp %s:%d within %.0f s; log tail:\n%s"
                           % (self.host, self.port, limit, tail(self.log())))

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        if self.proc is not None:
            self.returncode = self.proc.returncode

    def stop(self) -> int:
        """SIGTERM, then wait up to 10 s (times slow_factor()); releases the
        relay port window, also when start() was never called. Returns the
        exit code (negative: killed by that signal). Raises if the daemon
        had to be SIGKILLed, and under valgrind when its log reports an
        error or a definite leak."""
        limit = 10.0 * slow_factor()
        try:
            # Never started: nothing to stop, but the window is released.
            if self.proc is None:
                return self.returncode
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=limit)
                except subprocess.TimeoutExpired:
                    self._kill()
                    raise RuntimeError("gatehouse did not exit within %.0f s of SIGTERM (killed); log tail:\n%s"
                                       % (limit, tail(self.log())))
            self.returncode = self.proc.returncode
            self.valgrind_check()
            return self.returncode
        finally:
            release_relay_window(self._window_fd)
            self._window_fd = None

    def valgrind_check(self):
        """Under valgrind, after the daemon exited: raises RuntimeError when
        its log reports an error or a definite leak, when valgrind exited
        with VALGRIND_EXIT, or when there is no log. Checks each start
        once."""
        if not valgrind_dir() or self.proc is None or self.proc.poll() is None \
                or self._vg_checked == self.proc.pid:
            return
        self._vg_checked = self.proc.pid
        try:
            valgrind_check_pid(self.proc.pid, self.returncode)
        except RuntimeError as e:
            raise RuntimeError("%s\ndaemon log tail (workdir %s):\n%s"
                               % (e, self.workdir, tail(self.log(), 20)))

    def alive(self) -> bool:
        return (self.proc is not None and self.proc.poll() is None
                and stun_binding(self.host, self.port, timeout=1.0 * slow_factor()) is not None)

    def log(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def sanitizer_findings(self):
        return [l for l in self.log().splitlines() if any(m in l for m in SANITIZER_MARKERS)]

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self._kill()
            release_relay_window(self._window_fd)
            self._window_fd = None
            sys.stderr.write("kept gatehouse workdir: %s\n" % self.workdir)
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        ok = exc_type is None
        try:
            rc = self.stop()
        except Exception as e:
            sys.stderr.write("kept gatehouse workdir: %s\n" % self.workdir)
            if ok:
                raise
            # The test's own failure propagates; say what stop() found too.
            sys.stderr.write("note: also on stop: %s\n" % e)
            return False
        findings = self.sanitizer_findings()
        if findings:
            sys.stderr.write("kept gatehouse workdir: %s\n" % self.workdir)
            raise RuntimeError("sanitizer report in gatehouse log:\n%s\nlog tail:\n%s"
                               % ("\n".join(findings[:10]), tail(self.log())))
        if rc != 0:
            sys.stderr.write("kept gatehouse workdir: %s\n" % self.workdir)
            if ok:
                raise RuntimeError("gatehouse exited with %s after SIGTERM (expected 0); log tail:\n%s"
                                   % (rc, tail(self.log())))
            sys.stderr.write("note: gatehouse also exited with %s after SIGTERM\n" % rc)
            return False
        if ok:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            sys.stderr.write("kept gatehouse workdir: %s\n" % self.workdir)
        return False


# -------------------------------------------------------------- running

def start_refused(g, what="the daemon started"):
    """g must stop during start-up: (exit code, log). Refuses sanitizer
    reports."""
    try:
        g.start()
    except RuntimeError:
        pass
    else:
        raise AssertionError(what)
    g.stop()
    found = g.sanitizer_findings()
    assert not found, "sanitizer report:\n%s" % "\n".join(found[:10])
    return g.returncode, g.log()


def wait_log(g, needles, timeout=5.0):
    """The daemon log once it holds every needle: start() returns when the
    relay answers STUN, and the start's last lines ("ready" among them)
    may follow a moment later. AssertionError naming the missing ones
    otherwise."""
    deadline = time.monotonic() + timeout * slow_factor()
    while True:
        text = g.log()
        missing = [n for n in needles if n not in text]
        if not missing:
            return text
        if time.monotonic() > deadline:
            raise AssertionError("start log lacks %r; tail:\n%s" % (missing, tail(text, 30)))
        time.sleep(0.1)


def with_log(g, fn, lines=50):
    """Runs fn(); on failure prints the tail of g's log first."""
    try:
        return fn()
    except BaseException:
        print("daemon log tail:\n%s" % tail(g.log(), lines), flush=True)
        raise


# An LD_PRELOAD shim that moves the daemon's wall clock (CLOCK_REALTIME and
# its coarse variant) by the number of milliseconds in the file named by
# GH_WALL_SHIFT_FILE, read on every call, as an NTP step or an operator's
# `date -s` would. The monotonic clock is left alone.
WALL_SHIFT_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long shift_ms(void)
{
	const char *path = getenv("GH_WALL_SHIFT_FILE");
	long long v = 0;
	FILE *f;

	if (path == NULL || (f = fopen(path, "r")) == NULL)
		return 0;
	if (fscanf(f, "%lld", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	long long ns;
	int rc;

	if (real == NULL)
		real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	rc = real(id, ts);
	if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
		ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + shift_ms() * 1000000LL;
		ts->tv_sec = ns / 1000000000LL;
		ts->tv_nsec = ns % 1000000000LL;
	}
	return rc;
}
"""


class WallShift:
    """Steps the wall clock of a daemon started through it, as an NTP step
    or `date -s` would, with WALL_SHIFT_SHIM (needs a C compiler):

        with gh.WallShift() as w:
            g = gh.Gatehouse(...)
            w.wrap(g)            # before g starts
            with g:
                w.step(-3600 * 1000)   # the wall clock is an hour behind now

    step() sets the shift from the real wall clock (not a sum of steps);
    the daemon reads it on every clock_gettime() of CLOCK_REALTIME."""

    def __init__(self):
        self.tmp = None

    def __enter__(self):
        cc = shutil.which("cc") or shutil.which("gcc")
        assert cc is not None, "no C compiler (cc) to build the clock shim with"
        self.tmp = tempfile.mkdtemp(prefix="gh-clockshim-")
        src = os.path.join(self.tmp, "shim.c")
        self.so = os.path.join(self.tmp, "shim.so")
        self.shift = os.path.join(self.tmp, "wall_shift_ms")
        with open(src, "w") as f:
            f.write(WALL_SHIFT_SHIM)
        r = subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", self.so, src, "-ldl"],
                           capture_output=True, text=True)
        assert r.returncode == 0, "cannot build the clock shim: %s" % r.stderr
        os.chmod(self.tmp, 0o755)  # the daemon reads the shift after dropping root
        self.step(0)
        return self

    def __exit__(self, exc_type, exc, tb):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def wrap(self, g):
        """Makes g start with the shim preloaded."""
        # verify_asan_link_order: the shim comes before the ASan runtime.
        asan = os.environ.get("ASAN_OPTIONS", "")
        g.launcher = ["env", "LD_PRELOAD=" + self.so, "GH_WALL_SHIFT_FILE=" + self.shift,
                      "ASAN_OPTIONS=" + ":".join(x for x in (asan, "verify_asan_link_order=0") if x)
                      ] + list(g.launcher)

    def step(self, ms):
        """From now on the daemon's wall clock is ms off the real one."""
        with open(self.shift + ".new", "w") as f:
            f.write("%d\n" % ms)
        os.chmod(self.shift + ".new", 0o644)
        os.replace(self.shift + ".new", self.shift)


def run_tests(tests):
    """Runs each test function; prints PASS/FAIL lines and a final
    "N passed, N failed"; exits 1 if any failed. GH_TESTS (comma
    separated substrings) in the environment selects a subset; GH_SKIP
    (the same) leaves tests out, each said with a SKIP line."""
    sel = [s for s in os.environ.get("GH_TESTS", "").split(",") if s]
    skip = [s for s in os.environ.get("GH_SKIP", "").split(",") if s]
    passed = failed = 0
    for t in tests:
        name = t.__name__
        if sel and not any(s in name for s in sel):
            continue
        if any(s in name for s in skip):
            print("SKIP %s (GH_SKIP)" % name, flush=True)
            continue
        try:
            t()
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            failed += 1
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            print("FAIL %s: %s: %s" % (name, type(e).__name__, reason), flush=True)
            traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
        else:
            passed += 1
            print("PASS %s" % name, flush=True)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)


def main_args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--gatehouse", default=os.environ.get("GATEHOUSE", DEFAULT_BINARY),
                   help="path of the gatehouse binary (default %(default)s)")
    return p.parse_args()
