#!/usr/bin/python3
"""A real rsyslogd (Debian's rsyslog + rsyslog-gnutls) owned by a test: a
SIEM collector for Gatehouse's RFC 5424 output.

    with Rsyslog() as rs:                     # or rs = Rsyslog().start(); rs.stop()
        rs.address("udp") / ("tcp") / ("tls") # "127.0.0.1:PORT" for log.syslog.address
        rs.ca_file                            # the CA that signed the TLS listener's cert
        rs.lines("tls")                       # raw messages received on that input
        rs.restart()                          # same ports and certificates
        m = rs.wait_for(lambda m: m.msgid == "login.success", transport="udp")
        m.pri, m.severity, m.facility, m.version, m.hostname, m.app, m.procid,
        m.msgid, m.sd, m.msg, m.json()        # parse_5424() of one raw line

Three inputs, each on a free loopback port with its own ruleset and output
file, so a test can tell which transport delivered a message:
  - imudp                                          -> udp.log
  - imtcp (octet counting or LF framing)           -> tcp.log
  - imtcp with the gtls driver, StreamDriver.Mode=1, AuthMode anon
    (server-only TLS: the client checks us, we check nobody) -> tls.log
Each output keeps the raw message ("%rawmsg%\\n"), exactly the bytes of
the syslog message without the octet-count framing. rsyslogd's own
diagnostics (TLS handshake errors and the like) are in log().

Everything lives in a fresh temp directory: the config (-f), the PID
file (-i), the work directory (global workDirectory), the certificates,
the output files. rsyslogd runs with -n (no fork) as the test's child, on
no socket but its three inputs (no imuxsock, no imklog: the system's
/dev/log and kernel log are untouched), and reads nothing from /etc.
Works as root (CI) and as any user who may bind the ports.

make_ca(dir, name) and make_cert(dir, ca, ips, name) make a CA and a
server certificate for IP addresses with `openssl`; the tests use them for
the daemon's own listeners too.

Standard library + the `openssl` and `rsyslogd` binaries. Traffic only on
127.0.0.1.
"""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402  (free_port: ports never handed out twice in a process)

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
TRANSPORTS = ("udp", "tcp", "tls")
PROBE_APP = "rsyslog-probe"


# -------------------------------------------------------------- certificates

def _openssl(args, cwd):
    p = subprocess.run(["openssl"] + args, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed (%d): %s" % (
            " ".join(args[:2]), p.returncode, p.stderr.decode("utf-8", "replace")))


def make_ca(directory, name="ca"):
    """A self-signed CA (EC P-256). Returns (cert_path, key_path)."""
    os.makedirs(directory, exist_ok=True)
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    _openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes", "-keyout", key, "-out", cert, "-days", "2",
              "-subj", "/CN=Gatehouse test CA %s %s" % (name, uuid.uuid4().hex[:8]),
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], directory)
    os.chmod(key, 0o600)
    return cert, key


def make_cert(directory, ca, ips, name="server"):
    """A server certificate signed by ca (cert, key) whose subjectAltName
    holds the given IP addresses. Returns (cert_path, key_path); the key
    is mode 0600."""
    os.makedirs(directory, exist_ok=True)
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    csr = os.path.join(directory, name + ".csr")
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                % ",".join("IP:%s" % ip for ip in ips))
    _openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
              "-keyout", key, "-out", csr, "-subj", "/CN=%s" % ips[0]], directory)
    os.chmod(key, 0o600)
    _openssl(["x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
              "-out", cert, "-days", "2", "-extfile", ext], directory)
    return cert, key


# ------------------------------------------------------------------ RFC 5424

_RFC5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>(?P<version>\d{1,2}) (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) "
    r"(?P<procid>\S+) (?P<msgid>\S+) (?P<sd>-|(?:\[[^\]]*\])+)(?: (?P<msg>.*))?$", re.S)


class SyslogMessage:
    """One parsed RFC 5424 message (fields as text; pri/version ints)."""

    def __init__(self, raw, transport):
        self.raw = raw
        self.transport = transport
        m = _RFC5424.match(raw)
        self.ok = m is not None
        g = m.groupdict() if m else {}
        self.pri = int(g["pri"]) if m else None
        self.version = int(g["version"]) if m else None
        self.facility = self.pri // 8 if m else None
        self.severity = self.pri % 8 if m else None
        self.timestamp = g.get("ts")
        self.hostname = g.get("host")
        self.app = g.get("app")
        self.procid = g.get("procid")
        self.msgid = g.get("msgid")
        self.sd = g.get("sd")
        self.msg = g.get("msg")

    def json(self):
        """MSG parsed as JSON (None when it is not JSON)."""
        try:
            return json.loads(self.msg) if self.msg is not None else None
        except ValueError:
            return None

    def __repr__(self):
        r = self.raw if len(self.raw) <= 300 else self.raw[:300] + "..."
        return "<%s %r>" % (self.transport, r)


def parse_5424(raw, transport="?"):
    return SyslogMessage(raw, transport)


# ------------------------------------------------------------------- rsyslogd

_CONF = """\
# Written by tests/integration/rsyslog.py; nothing here reads or writes /etc.
global(workDirectory="{work}"
       net.enableDNS="off"
       maxMessageSize="128k"
       defaultNetstreamDriverCAFile="{ca}"
       defaultNetstreamDriverCertFile="{cert}"
       defaultNetstreamDriverKeyFile="{key}")
module(load="imudp")
module(load="imtcp" maxSessions="200")
template(name="gh_raw" type="string" string="%rawmsg%\\n")
ruleset(name="gh_udp") {{ action(type="omfile" file="{out}/udp.log" template="gh_raw") }}
ruleset(name="gh_tcp") {{ action(type="omfile" file="{out}/tcp.log" template="gh_raw") }}
ruleset(name="gh_tls") {{ action(type="omfile" file="{out}/tls.log" template="gh_raw") }}
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="gh_udp")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="gh_tcp")
input(type="imtcp" address="127.0.0.1" port="{tls}" ruleset="gh_tls"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
# rsyslogd's own messages (the default ruleset)
action(type="omfile" file="{out}/rsyslogd-internal.log")
"""


class Rsyslog:
    """A private rsyslogd on three free loopback ports. server_ips: the IP
    addresses its TLS certificate names (default 127.0.0.1)."""

    host = "127.0.0.1"

    def __init__(self, server_ips=("127.0.0.1",), workdir=None):
        self.workdir = workdir or tempfile.mkdtemp(prefix="gatehouse-rsyslog-")
        self.outdir = os.path.join(self.workdir, "out")
        self.spool = os.path.join(self.workdir, "work")
        self.conf_path = os.path.join(self.workdir, "rsyslog.conf")
        self.pid_path = os.path.join(self.workdir, "rsyslogd.pid")
        self.stderr_path = os.path.join(self.workdir, "rsyslogd.stderr")
        self.server_ips = list(server_ips)
        self.ports = {}
        self.proc = None
        self.ca_file = None
        self.ca = None

    # ---- set-up
    def _write_config(self):
        for d in (self.outdir, self.spool):
            os.makedirs(d, exist_ok=True)
        certs = os.path.join(self.workdir, "certs")
        self.ca = make_ca(certs, "collector-ca")
        self.ca_file = self.ca[0]
        self.cert, self.key = make_cert(certs, self.ca, self.server_ips, "collector")
        self.ports = {"udp": gh.free_port(socket.SOCK_DGRAM),
                      "tcp": gh.free_port(socket.SOCK_STREAM),
                      "tls": gh.free_port(socket.SOCK_STREAM)}
        with open(self.conf_path, "w") as f:
            f.write(_CONF.format(work=self.spool, ca=self.ca_file, cert=self.cert,
                                 key=self.key, out=self.outdir, **self.ports))

    def start(self, timeout=15.0):
        if not self.ports:
            self._write_config()
        chk = subprocess.run([RSYSLOGD, "-N1", "-f", self.conf_path], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=30)
        if chk.returncode != 0:
            raise RuntimeError("rsyslogd -N1 refused the config:\n%s"
                               % chk.stdout.decode("utf-8", "replace"))
        err = open(self.stderr_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [RSYSLOGD, "-n", "-f", self.conf_path, "-i", self.pid_path],
                stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT,
                cwd=self.workdir, start_new_session=True)
        finally:
            err.close()
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _probe(self, transport, token):
        raw = ("<14>1 - - %s - probe - %s" % (PROBE_APP, token)).encode()
        if transport == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.sendto(raw, (self.host, self.ports["udp"]))
            finally:
                s.close()
            return
        s = socket.create_connection((self.host, self.ports[transport]), timeout=2)
        try:
            if transport == "tls":
                ctx = ssl.create_default_context(cafile=self.ca_file)
                s = ctx.wrap_socket(s, server_hostname=self.server_ips[0])
            s.sendall(b"%d " % len(raw) + raw)
            if transport == "tls":
                try:
                    s.unwrap()
                except (OSError, ssl.SSLError):
                    pass
        finally:
            s.close()

    def _wait_ready(self, timeout):
        """Each input delivers one probe to its file."""
        deadline = time.monotonic() + timeout
        pending = set(TRANSPORTS)
        last_err = {}
        while pending:
            if self.proc.poll() is not None:
                raise RuntimeError("rsyslogd exited with %s during start-up:\n%s"
                                   % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise RuntimeError("rsyslogd inputs %s not delivering within %.0f s (%s):\n%s"
                                   % (sorted(pending), timeout, last_err, self.log()))
            for t in sorted(pending):
                token = "ready-%s-%s" % (t, uuid.uuid4().hex)
                try:
                    self._probe(t, token)
                except (OSError, ssl.SSLError) as e:
                    last_err[t] = repr(e)
                    continue
                t_end = time.monotonic() + 1.0
                while time.monotonic() < t_end:
                    if any(token in line for line in self._read(t)):
                        pending.discard(t)
                        break
                    time.sleep(0.05)
            if pending:
                time.sleep(0.1)

    # ---- reading
    def _read(self, transport):
        try:
            with open(os.path.join(self.outdir, "%s.log" % transport), "rb") as f:
                data = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        return [l for l in data.split("\n") if l]

    def lines(self, transport=None):
        """Raw messages received (all inputs, or one), probes left out."""
        out = []
        for t in (TRANSPORTS if transport is None else (transport,)):
            out += [l for l in self._read(t) if (" %s " % PROBE_APP) not in l[:80]]
        return out

    def messages(self, transport=None):
        """lines() parsed; each SyslogMessage knows its transport."""
        out = []
        for t in (TRANSPORTS if transport is None else (transport,)):
            out += [SyslogMessage(l, t) for l in self.lines(t)]
        return out

    def wait_for(self, pred, transport=None, timeout=10.0, what="syslog message"):
        """The first message (parsed) matching pred; AssertionError on
        timeout, naming what was received."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.messages(transport):
                if pred(m):
                    return m
            if time.monotonic() > deadline:
                got = self.messages(transport)
                raise AssertionError("rsyslog: no %s within %.0f s on %s; received %d: %s\n"
                                     "rsyslogd log: %s" % (
                                         what, timeout, transport or "any input", len(got),
                                         got[-6:], gh.tail(self.log(), 8)))
            time.sleep(0.1)

    def address(self, transport):
        return "%s:%d" % (self.host, self.ports[transport])

    def log(self):
        out = ""
        for p in (self.stderr_path, os.path.join(self.outdir, "rsyslogd-internal.log")):
            try:
                with open(p, "rb") as f:
                    out += f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                pass
        return out

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # ---- teardown
    def stop(self, timeout=10.0):
        """SIGTERM, wait, SIGKILL if needed. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def restart(self, timeout=15.0):
        """Stops rsyslogd and starts it again on the same ports with the
        same certificates (a collector restart, as seen by a sender)."""
        self.stop()
        self.proc = None
        return self.start(timeout)

    def cleanup(self):
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        if exc_type is None:
            self.cleanup()
        else:
            sys.stderr.write("kept rsyslog workdir: %s\n" % self.workdir)
        return False


if __name__ == "__main__":
    # Self-check: start, send one message on each input, stop.
    with Rsyslog() as rs:
        for t in TRANSPORTS:
            tok = uuid.uuid4().hex
            raw = "<86>1 2024-01-01T00:00:00.000Z h gatehouse 1 selftest - {\"t\":\"%s\"}" % tok
            if t == "udp":
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.sendto(raw.encode(), ("127.0.0.1", rs.ports[t]))
                s.close()
            else:
                s = socket.create_connection(("127.0.0.1", rs.ports[t]))
                if t == "tls":
                    s = ssl.create_default_context(cafile=rs.ca_file).wrap_socket(
                        s, server_hostname="127.0.0.1")
                s.sendall(b"%d " % len(raw) + raw.encode())
                s.close()
            m = rs.wait_for(lambda m, tok=tok: tok in (m.msg or ""), t, 5)
            assert m.ok and m.pri == 86 and m.msgid == "selftest", m
            print("%s: %r" % (t, m))
        print("rsyslog self-check ok")
