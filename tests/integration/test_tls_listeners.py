#!/usr/bin/python3
"""How the signaling and admin listeners use TLS (DESIGN.md: "The
top-level tls certificate and key serve every TLS listener (signaling,
admin, TURN over TLS); a component may carry its own tls to override it.
Plain (non-TLS) listeners are allowed only on loopback addresses, with a
warning.").

On loopback (real daemons on 127.0.0.1, certificates made here with
openssl, self-signed for IP 127.0.0.1 and DNS localhost):
  - test_loopback_serves_configured_cert: the DESIGN.md sample's shape
    (top-level tls with relative paths, signaling and admin on 127.0.0.1,
    allowed_origins ["https://localhost:PORT"]): a WSS client with that
    Origin, verifying the server against the configured certificate,
    pings and logs in, and the peer certificate is byte for byte the
    configured one; a plain ws:// client on the same port pings too; the
    admin API answers over HTTPS (same certificate) and plain HTTP, and
    takes browser requests from its https and http origins only; the
    start log names https and has the two "on loopback only, plain ...
    too" warnings.
  - test_admin_tls_override: admin.tls names a second certificate: the
    admin listener serves it while signaling serves the top-level one;
    with no allowed_origins, signaling accepts its own https and http
    origins and no other.
  - test_loopback_without_cert_is_plain: no certificate configured: both
    listeners are plain only (a TLS handshake fails), and the start log
    warns that each is plain and allowed on loopback only.

Off loopback (test_non_loopback_listeners_speak_tls): TLS, and only TLS.
The test makes its own network namespace gh-tls-<random> with a veth pair
(both ends inside it) and 10.201.0.1/24 on one end, runs the daemon
inside it (`ip netns exec NS gatehouse run -c CONF`) with signaling.listen
and admin.listen on 10.201.0.1 and a certificate it generates for IP
10.201.0.1 (tls.cert / tls.key, key mode 0600), and checks from inside
the namespace (a probe script run with `ip netns exec`):
  - plain HTTP to either port gets no HTTP response;
  - HTTPS, verifying the server with that certificate as the CA and
    10.201.0.1 as the name, works: GET / on signaling is the demo page,
    GET /api/health on admin is {"status":"ok"}, and a WebSocket upgrade
    on /ws over TLS gets 101.
All traffic stays inside the namespace, which is deleted at the end (also
on failure). Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for netns).
GH_TESTS=name,... selects tests.
"""

import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402
from gh import with_log  # noqa: E402
import sigclient as sc  # noqa: E402

import aiohttp  # noqa: E402

ARGS = None
ADDR = "10.201.0.1"
SIG_PORT = 8443
ADMIN_PORT = 9443

PROBE = r'''
import base64, http.client, json, os, socket, ssl, sys, time
addr, sig, adm, ca = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
out = {}

def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((addr, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False

out["up"] = {"signaling": wait_port(sig), "admin": wait_port(adm)}

def plain(port, path):
    """Plain HTTP on the port: what came back within 3 s."""
    try:
        s = socket.create_connection((addr, port), timeout=3)
    except OSError as e:
        return {"error": repr(e)}
    data = b""
    how = "eof"
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n"
                   % (path, addr, port)).encode())
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and len(data) < 4096:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                how = "timeout"
                break
            except ConnectionResetError:
                how = "reset"
                break
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return {"how": how, "len": len(data), "head": data[:200].decode("latin-1"),
            "http": data.startswith(b"HTTP/")}

def tls_ctx():
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = True
    return ctx

def https(port, path):
    try:
        c = http.client.HTTPSConnection(addr, port, timeout=5, context=tls_ctx())
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        res = {"status": r.status, "ctype": r.getheader("Content-Type"),
               "body": body[:4000].decode("utf-8", "replace"),
               "tls": c.sock.version() if c.sock else None}
        c.close()
        return res
    except Exception as e:
        return {"error": repr(e)}

def wss(port):
    try:
        s = tls_ctx().wrap_socket(socket.create_connection((addr, port), timeout=5),
                                  server_hostname=addr)
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(("GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n" % (addr, port, key)).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        return {"status_line": data.split(b"\r\n")[0].decode("latin-1")}
    except Exception as e:
        return {"error": repr(e)}

out["plain_signaling"] = plain(sig, "/")
out["plain_admin"] = plain(adm, "/api/health")
out["https_signaling"] = https(sig, "/")
out["https_admin"] = https(adm, "/api/health")
out["wss"] = wss(sig)
print(json.dumps(out))
'''


def sh(*cmd, check=True):
    p = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), p.returncode,
                                                   p.stdout.decode("utf-8", "replace")))
    return p.stdout.decode("utf-8", "replace")


class Netns:
    """gh-tls-<random>: lo up, and a veth pair inside it with ADDR/24."""

    def __init__(self):
        self.name = "gh-tls-%s" % uuid.uuid4().hex[:8]
        self.made = False

    def __enter__(self):
        sh("ip", "netns", "add", self.name)
        self.made = True
        try:
            sh("ip", "-n", self.name, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
            sh("ip", "-n", self.name, "addr", "add", ADDR + "/24", "dev", "v0")
            sh("ip", "-n", self.name, "link", "set", "v0", "up")
            sh("ip", "-n", self.name, "link", "set", "v1", "up")
            sh("ip", "-n", self.name, "link", "set", "lo", "up")
        except BaseException:
            self.delete()
            raise
        return self

    def delete(self):
        if self.made:
            sh("ip", "netns", "del", self.name, check=False)
            self.made = False

    def __exit__(self, *exc):
        self.delete()
        return False

    def exec(self, *cmd, **kw):
        return ["ip", "netns", "exec", self.name] + list(cmd)


def self_signed(directory, ip, prefix="", dns=None):
    """PREFIXcert.pem and PREFIXkey.pem (mode 0600) in directory: a
    self-signed certificate for IP ip (and DNS name dns), usable as its
    own CA by a verifying client."""
    cert = os.path.join(directory, prefix + "cert.pem")
    key = os.path.join(directory, prefix + "key.pem")
    san = "IP:%s" % ip + (",DNS:%s" % dns if dns else "")
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=%s%s" % (prefix, ip),
       "-addext", "subjectAltName=%s" % san,
       "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
       "-addext", "extendedKeyUsage=serverAuth")
    os.chmod(key, 0o600)
    return cert, key


def test_non_loopback_listeners_speak_tls():
    work = tempfile.mkdtemp(prefix="gatehouse-tlsl-")
    # The daemon drops to an unprivileged user: let it through the folder.
    os.chmod(work, 0o711)
    ok = False
    proc = None
    logp = os.path.join(work, "gatehouse.log")

    def log():
        try:
            with open(logp, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
    try:
        cert, key = self_signed(work, ADDR)
        conf = os.path.join(work, "gatehouse.json")
        with open(conf, "w") as f:
            json.dump({
                "realm": "gatehouse.test",
                "state_dir": os.path.join(work, "state"),
                "tls": {"cert": cert, "key": key},
                "signaling": {"listen": "%s:%d" % (ADDR, SIG_PORT)},
                "admin": {"listen": "%s:%d" % (ADDR, ADMIN_PORT)},
                "turn": {"listen": [{"addr": "127.0.0.1:3478", "transport": "udp"}],
                         "relay_ip": "127.0.0.1", "port_range": "40000-40099"},
                "log": {"level": "debug"},
            }, f, indent=2)
        out = sh(ARGS.gatehouse, "check-config", "-c", conf, check=False)
        probe = os.path.join(work, "probe.py")
        with open(probe, "w") as f:
            f.write(PROBE)
        with Netns() as ns:
            with open(logp, "ab") as lf:
                # Under GH_VALGRIND, valgrind in front (ip netns exec keeps the pid).
                proc = subprocess.Popen(ns.exec(*gh.valgrind_argv(), os.path.abspath(ARGS.gatehouse),
                                                "run", "-c", conf),
                                        stdin=subprocess.DEVNULL, stdout=lf,
                                        stderr=subprocess.STDOUT, cwd=work,
                                        start_new_session=True)
            try:
                p = subprocess.run(ns.exec("/usr/bin/python3", probe, ADDR, str(SIG_PORT),
                                           str(ADMIN_PORT), cert),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
                assert proc.poll() is None, "gatehouse exited with %s (check-config: %s):\n%s" % (
                    proc.returncode, out.strip(), gh.tail(log(), 20))
                assert p.returncode == 0, "probe failed: %s" % p.stderr.decode()
                r = json.loads(p.stdout)
                print("  probe: %s" % json.dumps({k: v for k, v in r.items()}, indent=None)[:1500],
                      flush=True)
                problems = []
                if not all(r["up"].values()):
                    problems.append("listeners not up: %r" % r["up"])
                for name in ("plain_signaling", "plain_admin"):
                    x = r[name]
                    if x.get("http"):
                        problems.append("%s: plain HTTP got an HTTP answer: %r" % (
                            name, x.get("head", "")[:120]))
                hs = r["https_signaling"]
                if hs.get("status") != 200 or "<title>Gatehouse</title>" not in hs.get("body", ""):
                    problems.append("HTTPS GET / on signaling: %r" % {
                        k: (v[:200] if isinstance(v, str) else v) for k, v in hs.items()})
                ha = r["https_admin"]
                try:
                    health = json.loads(ha.get("body", ""))
                except ValueError:
                    health = None
                if ha.get("status") != 200 or health != {"status": "ok"}:
                    problems.append("HTTPS GET /api/health on admin: %r" % ha)
                if " 101 " not in r["wss"].get("status_line", "") + " ":
                    problems.append("WebSocket upgrade over TLS: %r" % r["wss"])
                # Off loopback: https in the start lines, and no plain way in.
                text = log()
                for want in ("demo page at https://%s:%d/" % (ADDR, SIG_PORT),
                             "admin: API on https://%s:%d/api/" % (ADDR, ADMIN_PORT)):
                    if want not in text:
                        problems.append("start log lacks %r" % want)
                plain = [l for l in text.splitlines() if "plain HTTP" in l]
                if plain:
                    problems.append("start log speaks of plain HTTP: %r" % plain)
                assert not problems, "non-loopback listeners:\n  " + "\n  ".join(problems)
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=10 * gh.slow_factor())
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
                        raise AssertionError("gatehouse did not exit within %.0f s of SIGTERM"
                                             % (10 * gh.slow_factor()))
            rc = proc.returncode
            gh.valgrind_check_pid(proc.pid, rc)
            findings = [l for l in log().splitlines() if any(m in l for m in gh.SANITIZER_MARKERS)]
            assert not findings, "sanitizer report:\n%s" % "\n".join(findings[:10])
            assert rc == 0, "gatehouse exited with %s after SIGTERM:\n%s" % (rc, gh.tail(log(), 20))
            ok = True
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("kept workdir %s; daemon log tail:\n%s" % (work, gh.tail(log(), 30)), flush=True)


# ----------------------------------------------------------- on loopback

LO = "127.0.0.1"


def cert_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def verifying_context(cafile):
    """Trusts only cafile (a self-signed certificate) and checks the name:
    a handshake succeeds only with that certificate."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = True
    return ctx


def http_get(port, path, origin=None, cafile=None):
    """GET over plain HTTP, or HTTPS verified against cafile. Returns
    (status, body text, the server's certificate in DER or None)."""
    h = {"Origin": origin} if origin else {}
    if cafile:
        c = http.client.HTTPSConnection(LO, port, timeout=10 * gh.slow_factor(),
                                        context=verifying_context(cafile))
    else:
        c = http.client.HTTPConnection(LO, port, timeout=10 * gh.slow_factor())
    try:
        c.request("GET", path, headers=h)
        r = c.getresponse()
        body = r.read().decode("utf-8", "replace")
        der = c.sock.getpeercert(binary_form=True) if cafile and c.sock else None
        return r.status, body, der
    finally:
        c.close()


def tls_handshake_error(port):
    """None when a TLS handshake (no verification) completes on the port,
    else what stopped it."""
    try:
        with socket.create_connection((LO, port), timeout=5 * gh.slow_factor()) as raw:
            with gh.tls_client_context().wrap_socket(raw, server_hostname=LO):
                return None
    except (ssl.SSLError, OSError) as e:
        return repr(e)


async def ws_session(url, origin, ctx, user=None):
    """Connects, pings (and logs user in); returns the peer certificate
    (DER, None over ws://)."""
    c = sc.SigClient(url, origin=origin, name=url, ssl_context=ctx)
    await c.connect()
    try:
        await c.ping()
        if user is not None:
            await c.login_user(user)
        return c.peer_cert_der()
    finally:
        await c.close()


async def ws_refused_status(url, origin, ctx):
    """The HTTP status that refused the upgrade; AssertionError if it
    was accepted."""
    try:
        c = await sc.SigClient(url, origin=origin, name=url, ssl_context=ctx).connect()
    except aiohttp.WSServerHandshakeError as e:
        return e.status
    await c.close()
    raise AssertionError("upgrade to %s with Origin %s was accepted" % (url, origin))


def test_loopback_serves_configured_cert():
    g = gh.Gatehouse(ARGS.gatehouse)
    cert, key = self_signed(g.workdir, LO, dns="localhost")
    sp, ap = g.signaling_port, g.admin_port
    origin = "https://localhost:%d" % sp
    # DESIGN.md's sample: relative paths, from the config file's folder.
    g.config["tls"] = {"cert": "cert.pem", "key": "key.pem"}
    g.config["signaling"]["allowed_origins"] = [origin]
    alice = sc.create_user(g, "alice", "pw-alice-0123456789")
    want = cert_der(cert)
    with g:
        def check():
            text = gh.wait_log(g, [
                "signaling: listening on %s:%d (demo page at https://%s:%d/)" % (LO, sp, LO, sp),
                "signaling: %s:%d serves HTTPS/WSS and, on loopback only, plain HTTP/WS too"
                % (LO, sp),
                "admin: API on https://%s:%d/api/" % (LO, ap),
                "admin: %s:%d serves HTTPS and, on loopback only, plain HTTP too" % (LO, ap)])
            assert "is plain HTTP" not in text, gh.tail(text, 30)

            ctx = verifying_context(cert)
            wss = "wss://%s:%d/ws" % (LO, sp)
            der = asyncio.run(ws_session(wss, origin, ctx, alice))
            assert der == want, "WSS peer certificate is not the configured one"
            # Plain ws:// on the same port, as local scripts use it.
            der = asyncio.run(ws_session("ws://%s:%d/ws" % (LO, sp), None, None))
            assert der is None
            # The allow-list still holds over TLS.
            st = asyncio.run(ws_refused_status(wss, "https://evil.example", ctx))
            assert st == 403, "foreign Origin on WSS: HTTP %s, expected 403" % st

            st, body, _ = http_get(sp, "/", cafile=cert)
            assert st == 200 and "<title>Gatehouse</title>" in body, (st, body[:200])

            st, body, der = http_get(ap, "/api/health", cafile=cert)
            assert (st, json.loads(body)) == (200, {"status": "ok"}), (st, body)
            assert der == want, "admin HTTPS peer certificate is not the configured one"
            st, body, _ = http_get(ap, "/api/health")
            assert (st, json.loads(body)) == (200, {"status": "ok"}), (st, body)
            # Browser requests: the API's own origins under both schemes.
            for o, ca in (("https://%s:%d" % (LO, ap), cert), ("https://localhost:%d" % ap, cert),
                          ("http://%s:%d" % (LO, ap), None), ("http://localhost:%d" % ap, None)):
                st, body, _ = http_get(ap, "/api/health", origin=o, cafile=ca)
                assert st == 200, "admin Origin %s: HTTP %d %s" % (o, st, body[:200])
            st, body, _ = http_get(ap, "/api/health", origin="https://evil.example", cafile=cert)
            assert st == 403, "admin foreign Origin: HTTP %d %s" % (st, body[:200])
        with_log(g, check)


def test_admin_tls_override():
    g = gh.Gatehouse(ARGS.gatehouse)
    top, top_key = self_signed(g.workdir, LO, dns="localhost")
    adm, adm_key = self_signed(g.workdir, LO, prefix="admin-", dns="localhost")
    sp, ap = g.signaling_port, g.admin_port
    g.config["tls"] = {"cert": top, "key": top_key}
    g.config["admin"]["tls"] = {"cert": "admin-cert.pem", "key": "admin-key.pem"}
    assert cert_der(top) != cert_der(adm)
    with g:
        def check():
            gh.wait_log(g, ["admin: API on https://%s:%d/api/" % (LO, ap),
                         "signaling: %s:%d serves HTTPS/WSS" % (LO, sp)])
            st, _, der = http_get(ap, "/api/health", cafile=adm)
            assert st == 200 and der == cert_der(adm), \
                "admin listener does not serve admin.tls (HTTP %d)" % st
            # Verifying against the top-level certificate must fail there.
            try:
                http_get(ap, "/api/health", cafile=top)
            except ssl.SSLCertVerificationError:
                pass
            else:
                raise AssertionError("admin listener passed verification with the top-level cert")
            st, _, der = http_get(sp, "/", cafile=top)
            assert st == 200 and der == cert_der(top), \
                "signaling does not serve the top-level certificate (HTTP %d)" % st

            # No allowed_origins: the listener's own, under both schemes.
            ctx = verifying_context(top)
            wss, ws = "wss://%s:%d/ws" % (LO, sp), "ws://%s:%d/ws" % (LO, sp)
            for url, o, c in ((wss, "https://localhost:%d" % sp, ctx),
                              (wss, "https://%s:%d" % (LO, sp), ctx),
                              (ws, "http://localhost:%d" % sp, None),
                              (ws, "http://%s:%d" % (LO, sp), None)):
                asyncio.run(ws_session(url, o, c))
            st = asyncio.run(ws_refused_status(wss, "https://localhost:%d" % (sp + 1), ctx))
            assert st == 403, "another port's Origin: HTTP %s, expected 403" % st
        with_log(g, check)


def test_loopback_without_cert_is_plain():
    g = gh.Gatehouse(ARGS.gatehouse)
    sp, ap = g.signaling_port, g.admin_port
    with g:
        def check():
            text = gh.wait_log(g, [
                "signaling: listening on %s:%d (demo page at http://%s:%d/)" % (LO, sp, LO, sp),
                "signaling: %s:%d is plain HTTP/WS (no certificate configured); it is allowed "
                "on loopback only" % (LO, sp),
                "admin: API on http://%s:%d/api/" % (LO, ap),
                "admin: %s:%d is plain HTTP (no certificate configured); it is allowed "
                "on loopback only" % (LO, ap)])
            assert "on loopback only, plain" not in text, gh.tail(text, 30)
            for line in text.splitlines():
                if " is plain HTTP" in line:
                    assert " warning " in line, "not a warning: %r" % line
            for port in (sp, ap):
                err = tls_handshake_error(port)
                assert err is not None, "port %d completed a TLS handshake" % port
            st, body, _ = http_get(ap, "/api/health")
            assert st == 200, (st, body)
            asyncio.run(ws_session("ws://%s:%d/ws" % (LO, sp), "http://localhost:%d" % sp, None))
        with_log(g, check)


def test_namespace_left_behind():
    """No gh-tls-* namespace of this run is left (deleted also on failure)."""
    left = [l.split()[0] for l in sh("ip", "netns", "list").splitlines()
            if l.startswith("gh-tls-")]
    assert not left, "namespaces left behind: %s" % left


def main():
    global ARGS
    ARGS = gh.main_args()
    gh.run_tests([test_loopback_serves_configured_cert, test_admin_tls_override,
                  test_loopback_without_cert_is_plain,
                  test_non_loopback_listeners_speak_tls, test_namespace_left_behind])


if __name__ == "__main__":
    main()
