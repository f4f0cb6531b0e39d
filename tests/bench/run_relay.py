#!/usr/bin/python3
"""Relay benchmark: Gatehouse's embedded TURN relay against coturn
(issue 7; see tests/bench/README.md, "Relay benchmark").

    /usr/bin/python3 tests/bench/run_relay.py [compare|probe|allocs|all]
        [--rounds N] [--quick] [--json PATH] [--servers gatehouse,coturn]
        [--no-build] [--gatehouse BINARY] [--probe BINARY] [more: --help]

Parts:
  compare  turnutils_uclient loads (client-to-client, UDP and TCP, 120 and
           1000 bytes, 4 and 40 clients, same -n and -z), alternating
           between the two servers for --rounds rounds, each run on a
           fresh server: relayed messages, loss, round trip and jitter as
           uclient reports them, CPU seconds of the relay process and CPU
           per 100k relayed messages, and the ratio Gatehouse / coturn of
           the medians over the rounds.
  probe    added latency and jitter: bench_turn_probe sends a timestamped
           stream relayed (A -> relay -> relay -> B) and the same stream
           directly over loopback, interleaved, while a background load
           through the same relay makes about --total-rate relayed packets
           a second; percentiles of both and their difference.
  allocs   memory per allocation: daemon VmRSS and RssAnon before and after
           --allocs concurrent UDP allocations held open; and the capacity
           of a --capacity-ports port range (allocate until 508).
  all      the three, in that order (the default).

Both servers run on 127.0.0.1 with equivalent settings: realm
gatehouse.test, the static long-term user bench/secret, relay IP
127.0.0.1, relay port ranges of the same size, UDP and TCP listeners and
no TLS, minimal logging (Gatehouse log level "warning"; coturn without
verbose flags, to a file). Gatehouse is started through the integration
harness (tests/integration/gh.py), which lets a daemon started as root
drop to its unprivileged user.

Nothing here asserts a timing. Exit status: 0 when everything worked,
however slow; 1 on a functional failure (a uclient run that did not
complete or relayed nothing, a probe set-up or stream that failed,
allocations that failed or were not refused at the end of the range, a
server that died or did not stop cleanly, a sanitizer report); 2 when the
benchmark could not be built or set up. Traffic goes only to 127.0.0.1.
"""

import argparse
import fcntl
import json
import os
import platform
import queue
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import gh  # noqa: E402
import test_uclient  # noqa: E402  (parse_uclient, expected_sessions)
from run_sessions import log_summary  # noqa: E402

USER, PASSWORD = "bench", "secret"
REALM = gh.Gatehouse.realm
BUILD_TIMEOUT_S = 900
START_TIMEOUT_S = 10
SETTLE_S = 1.0
# Allocations held open per part are bounded by this, and so are the
# descriptors every process here needs.
NOFILE_WANTED = 65536


class Failure(Exception):
    """Something did not work: the benchmark exits 1."""


class SetupError(Exception):
    """The benchmark could not be set up: it exits 2."""


def log(msg=""):
    print(msg, flush=True)


# ----------------------------------------------------------------- build

def run(cmd, timeout=BUILD_TIMEOUT_S, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout, **kw)


def build(build_dir):
    """Builds build/gatehouse and the probe; returns the probe's path. The
    probe is a target of the main build (tests/bench is a subdirectory of
    the top-level CMakeLists.txt); otherwise it is built on its own in
    BUILD_DIR/bench-relay."""
    r = run(["cmake", "--build", build_dir, "-j2", "--target", "gatehouse"])
    if r.returncode != 0:
        raise SetupError("building gatehouse failed:\n" + gh.tail(r.stdout, 40))
    r = run(["cmake", "--build", build_dir, "-j2", "--target", "bench_turn_probe"])
    if r.returncode == 0:
        return os.path.join(build_dir, "tests", "bench", "bench_turn_probe")
    own = os.path.join(build_dir, "bench-relay")
    r = run(["cmake", "-S", HERE, "-B", own])
    if r.returncode == 0:
        r = run(["cmake", "--build", own, "-j2", "--target", "bench_turn_probe"])
    if r.returncode != 0:
        raise SetupError("building bench_turn_probe failed:\n" + gh.tail(r.stdout, 40))
    return os.path.join(own, "bench_turn_probe")


def find_probe(build_dir):
    for c in (os.path.join(build_dir, "tests", "bench", "bench_turn_probe"),
              os.path.join(build_dir, "bench-relay", "bench_turn_probe")):
        if os.path.exists(c):
            return c
    raise SetupError("no bench_turn_probe built; run without --no-build")


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE_WANTED if hard == resource.RLIM_INFINITY else min(NOFILE_WANTED, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# ------------------------------------------------------------ /proc

def proc_cpu_s(pid):
    """utime + stime of the whole process, all its threads (those that
    ended included), from /proc/PID/stat; None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_run_s(pid):
    """Time on CPU of all the process's live threads, in nanoseconds
    summed from /proc/PID/task/*/schedstat: a cross-check of proc_cpu_s()
    without its 10 ms clock-tick resolution. None if it is gone."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    return total / 1e9


def proc_wakeups(pid):
    """How many times the process's live threads went to sleep and were
    woken (voluntary context switches, /proc/PID/task/*/status): on a
    relay, about one per batch of packets. None if it is gone."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches:"):
                            total += int(line.split()[1])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    return total


def proc_mem(pid):
    """VmRSS, RssAnon, VmHWM (KiB), threads and open descriptors."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                    out[k] = int(v.split()[0])
                elif k == "Threads":
                    out[k] = int(v)
        out["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None
    return out


def machine_busy_s():
    """Busy CPU seconds of the whole machine (all cores) so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# ------------------------------------------------------------ servers

class RelayWindows:
    """Holds the locks through which tests/integration/gh.py hands out
    relay port windows (RELAY_WINDOW ports each in RELAY_LO..RELAY_HI-1),
    for every window that overlaps [lo, hi]. While they are held, no
    harness user (a test running in parallel) binds relay ports there, so
    a range wider than one window can be used without stealing ports."""

    def __init__(self, lo, hi):
        self.idx = [i for i in range((gh.RELAY_HI - gh.RELAY_LO) // gh.RELAY_WINDOW)
                    if gh.RELAY_LO + i * gh.RELAY_WINDOW <= hi
                    and gh.RELAY_LO + (i + 1) * gh.RELAY_WINDOW - 1 >= lo]
        self.fds = {}

    def acquire(self, timeout_s, skip=()):
        os.makedirs(gh._LOCK_DIR, exist_ok=True)
        deadline = time.monotonic() + timeout_s
        while True:
            for i in self.idx:
                if i in self.fds or i in skip:
                    continue
                fd = os.open(os.path.join(gh._LOCK_DIR, "relay-%d.lock" % i),
                             os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    self.fds[i] = fd
                except OSError:
                    os.close(fd)
            missing = [i for i in self.idx if i not in self.fds and i not in skip]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise SetupError("relay port windows %s (ports %s) are held by other harness "
                                 "users (tests running?) for more than %d s; wait, or pass "
                                 "--alloc-range/--capacity-range outside %d-%d"
                                 % (missing, ", ".join(
                                     "%d-%d" % (gh.RELAY_LO + i * gh.RELAY_WINDOW,
                                                gh.RELAY_LO + (i + 1) * gh.RELAY_WINDOW - 1)
                                     for i in missing), timeout_s, gh.RELAY_LO,
                                    gh.RELAY_HI - 1))
            time.sleep(0.2)

    def release(self):
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}


class GatehouseServer:
    """build/gatehouse through the integration harness: UDP and TCP
    listeners on one port of 127.0.0.1, no TLS, log level warning."""
    name = "gatehouse"
    logs = []   # the log of every daemon stopped, for the summary at the end

    def __init__(self, binary, port_range=None, allocations_total=None):
        over = {"log": {"level": "warning"}}
        self.g = gh.Gatehouse(binary, config=over, static_users={USER: PASSWORD})
        turn = self.g.config["turn"]
        turn["listen"] = [{"addr": "127.0.0.1:%d" % self.g.port, "transport": "udp"},
                          {"addr": "127.0.0.1:%d" % self.g.port, "transport": "tcp"}]
        self.port_min, self.port_max = port_range or (self.g.port_min, self.g.port_max)
        turn["port_range"] = "%d-%d" % (self.port_min, self.port_max)
        # Every uclient connection comes from 127.0.0.1: the per-source
        # limit (32 by default) would refuse most of a 40-client TCP run.
        turn["limits"] = {"connections_per_source": 4096}
        if allocations_total:
            turn["limits"]["allocations_total"] = allocations_total
        self.port = self.g.port
        self.pid = None
        self._stopped = False
        self.held_window = (self.g.port_min - gh.RELAY_LO) // gh.RELAY_WINDOW

    def start(self):
        try:
            self.g.start()
        except RuntimeError as e:
            raise Failure("gatehouse did not start: %s" % e)
        self.pid = self.g.proc.pid
        return self

    def alive(self):
        return self.g.proc is not None and self.g.proc.poll() is None

    def stop(self):
        """Stops it; returns a list of problems (empty when it stopped
        cleanly with exit status 0 and no sanitizer report). Only the first
        call does anything."""
        if self._stopped:
            return []
        self._stopped = True
        if self.g.proc is None:   # never started: only the window to give back
            gh.release_relay_window(self.g._window_fd)
            self.g._window_fd = None
            shutil.rmtree(self.g.workdir, ignore_errors=True)
            return []
        problems = []
        was_running = self.alive()
        try:
            rc = self.g.stop()
            if not was_running:
                problems.append("gatehouse had exited (status %s) before it was stopped" % rc)
            elif rc != 0:
                problems.append("gatehouse exited with %s after SIGTERM (expected 0)" % rc)
        except RuntimeError as e:
            problems.append(str(e).splitlines()[0])
        if self.g.sanitizer_findings():
            problems.append("sanitizer report in the gatehouse log")
        GatehouseServer.logs.append(self.g.log())
        if problems:
            log("  kept gatehouse's workdir: %s; log tail:\n%s"
                % (self.g.workdir, gh.tail(self.g.log(), 20)))
        else:
            shutil.rmtree(self.g.workdir, ignore_errors=True)
        return problems

    def metrics(self):
        """The relay's packet counters from the admin listener's /metrics:
        {"local": relay-to-relay datagrams handed over inside the process,
        "to_peer": datagrams relayed to peers}, or None."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.g.admin_port,
                                        timeout=5) as resp:
                text = resp.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return None
        out = {}
        for line in text.splitlines():
            name, _, value = line.rpartition(" ")
            if name == "gatehouse_relayed_packets_local_total":
                out["local"] = int(float(value))
            elif name == 'gatehouse_relayed_packets_total{direction="to_peer"}':
                out["to_peer"] = int(float(value))
        return out or None


class CoturnServer:
    """coturn's turnserver, set up like GatehouseServer: same realm and
    static user, relay IP 127.0.0.1, a port range of the same size (a
    harness window unless given), UDP and TCP on one port, no TLS/DTLS,
    loopback peers allowed (it refuses them otherwise), no CLI, and its
    normal log level written to a file instead of stdout."""
    name = "coturn"

    def __init__(self, port_range=None, relay_threads=None):
        self.dir = tempfile.mkdtemp(prefix="coturn-bench-")
        self.port = gh.free_port(socket.SOCK_DGRAM)
        self._window_fd = None
        if port_range is None:
            lo, hi, self._window_fd = gh.reserve_relay_window()
            port_range = (lo, hi)
        self.port_min, self.port_max = port_range
        self.relay_threads = relay_threads
        self.proc = None
        self.pid = None
        self._stopped = False
        self.log_path = os.path.join(self.dir, "coturn.log")

    def start(self):
        cmd = ["turnserver", "-n", "--no-cli", "--listening-ip=127.0.0.1",
               "--listening-port=%d" % self.port, "--relay-ip=127.0.0.1",
               "--min-port=%d" % self.port_min, "--max-port=%d" % self.port_max,
               "--lt-cred-mech", "--user=%s:%s" % (USER, PASSWORD), "--realm=%s" % REALM,
               "--allow-loopback-peers", "--no-tls", "--no-dtls",
               "--log-file=%s" % self.log_path, "--simple-log", "--no-stdout-log",
               "--pidfile=%s" % os.path.join(self.dir, "turnserver.pid"),
               "--userdb=%s" % os.path.join(self.dir, "turndb")]
        if self.relay_threads:
            cmd.append("--relay-threads=%d" % self.relay_threads)
        with open(os.path.join(self.dir, "stdout.log"), "wb") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, cwd=self.dir,
                                         start_new_session=True)
        self.pid = self.proc.pid
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if gh.stun_binding("127.0.0.1", self.port, 0.2):
                return self
            time.sleep(0.05)
        # The caller stops it, which keeps the folder: the process is gone.
        kill_child(self.proc)
        raise Failure("coturn did not answer a STUN Binding within %d s; log tail:\n%s"
                      % (START_TIMEOUT_S, gh.tail(self._log(), 20)))

    def _log(self):
        text = ""
        for name in ("stdout.log", "coturn.log"):
            try:
                with open(os.path.join(self.dir, name), "rb") as f:
                    text += f.read().decode("utf-8", "replace")
            except OSError:
                pass
        return text

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def metrics(self):
        return None

    def stop(self):
        """Stops it (once); returns a list of problems, like
        GatehouseServer.stop(). coturn's exit status is not judged."""
        if self._stopped:
            return []
        self._stopped = True
        problems = []
        if self.proc is not None:
            if self.proc.poll() is not None:
                problems.append("coturn had exited (status %s) before it was stopped"
                                % self.proc.returncode)
            else:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
                    problems.append("coturn did not exit within 10 s of SIGTERM (killed)")
        gh.release_relay_window(self._window_fd)
        self._window_fd = None
        if problems:
            log("  kept coturn's folder: %s; log tail:\n%s" % (self.dir, gh.tail(self._log(), 20)))
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return problems


def new_server(name, args, port_range=None, allocations_total=None):
    if name == "gatehouse":
        return GatehouseServer(args.gatehouse, port_range, allocations_total)
    return CoturnServer(port_range, args.coturn_relay_threads)


class Run:
    """A fresh server for one measurement: start, and stop with the
    problems recorded as failures."""

    def __init__(self, bench, name, label, **kw):
        self.bench, self.name, self.label, self.kw = bench, name, label, kw
        self.srv = None

    def __enter__(self):
        self.srv = new_server(self.name, self.bench.args, **self.kw)
        try:
            return self.srv.start()
        except Failure:
            self.srv.stop()
            raise

    def __exit__(self, exc_type, exc, tb):
        for p in self.srv.stop():
            self.bench.fail("%s: %s" % (self.label, p))
        return False


# ------------------------------------------------------------ helpers

def median(values):
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


def spread(values):
    """'lo-hi' of a list of ratios, '' when there is none."""
    if not values:
        return ""
    return "%.2f-%.2f" % (min(values), max(values))


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt(v, spec="%.2f", none="-"):
    return none if v is None else spec % v


def parse_result(out, tag="RESULT"):
    for line in reversed(out.splitlines()):
        if line.startswith(tag + " "):
            return json.loads(line[len(tag) + 1:])
    return None


class LineReader:
    """Reads a child's stdout on a thread, so that waiting for a line has
    a deadline."""

    def __init__(self, proc):
        self.proc = proc
        self.lines = []
        self.q = queue.Queue()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            self.q.put(line)
        self.q.put(None)

    def wait_for(self, prefix, timeout_s):
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            if line.startswith(prefix):
                return line

    def text(self):
        self.t.join(timeout=5)
        return "\n".join(self.lines)


def kill_child(p):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


# ------------------------------------------------------------ the bench

class Bench:
    def __init__(self, args):
        self.args = args
        self.failures = []
        self.results = {"meta": self.meta()}

    def fail(self, msg):
        self.failures.append(msg)
        log("  FAIL: %s" % msg)

    def meta(self):
        a = self.args
        try:
            ct = run(["turnserver", "--version"], timeout=10).stdout.strip().splitlines()[-1]
        except (OSError, subprocess.SubprocessError, IndexError):
            ct = None
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
        return {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "host": platform.node(), "kernel": platform.release(),
                "cpus": os.cpu_count(), "loadavg_at_start": load,
                "gatehouse": a.gatehouse, "coturn_version": ct,
                "quick": a.quick, "servers": a.server_list}

    # -------------------------------------------------------- compare

    def uclient(self, srv, transport, size, clients, label):
        a = self.args
        cmd = ["turnutils_uclient", "-y", "-m", str(clients), "-n", str(a.messages),
               "-l", str(size), "-z", str(a.pace_ms), "-u", USER, "-w", PASSWORD,
               "-p", str(srv.port)] + (["-t"] if transport == "tcp" else []) + ["127.0.0.1"]
        # uclient starts each client 1-6 s after connecting (coturn
        # src/apps/uclient/uclient.c), sends for n x z, then waits for
        # stragglers: a generous bound.
        timeout = a.messages * a.pace_ms / 1000.0 * 2 + 60
        cpu0, busy0, kids0 = proc_cpu_s(srv.pid), machine_busy_s(), children_cpu_s()
        run0, wake0 = proc_run_s(srv.pid), proc_wakeups(srv.pid)
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_child(p)
            out, _ = p.communicate()
            raise Failure("%s: uclient did not finish within %.0f s; tail:\n%s"
                          % (label, timeout, gh.tail(out, 15)))
        elapsed = time.monotonic() - t0
        cpu1, busy1, kids1 = proc_cpu_s(srv.pid), machine_busy_s(), children_cpu_s()
        run1, wake1 = proc_run_s(srv.pid), proc_wakeups(srv.pid)
        if not srv.alive() or cpu1 is None or run1 is None or wake1 is None:
            raise Failure("%s: the server died during the load" % label)
        if p.returncode != 0:
            raise Failure("%s: uclient exited %d; tail:\n%s" % (label, p.returncode,
                                                               gh.tail(out, 15)))
        try:
            r = test_uclient.parse_uclient(out)
        except AssertionError as e:
            raise Failure("%s: %s" % (label, e))
        sessions = test_uclient.expected_sessions(clients)
        if r["msz"] != sessions or r["sent"] != sessions * a.messages:
            raise Failure("%s: uclient ran %d sessions and sent %d messages; expected %d and %d"
                          % (label, r["msz"], r["sent"], sessions, sessions * a.messages))
        if r["received"] == 0:
            raise Failure("%s: nothing was relayed" % label)
        cpu = cpu1 - cpu0
        client_cpu = kids1 - kids0
        r.update({"elapsed_s": round(elapsed, 2), "cpu_s": round(cpu, 3),
                  "cpu_per_100k": round(cpu / r["received"] * 100000, 3),
                  "sched_cpu_s": round(run1 - run0, 4),
                  "sched_cpu_per_100k": round((run1 - run0) / r["received"] * 100000, 4),
                  "wakeups": wake1 - wake0,
                  "msgs_per_wakeup": round(r["received"] / max(1, wake1 - wake0), 2),
                  "uclient_cpu_s": round(client_cpu, 3),
                  "others_cpu_s": round(max(0.0, busy1 - busy0 - cpu - client_cpu), 2)})
        m = srv.metrics()
        if m:
            r["relayed_packets_local"] = m.get("local")
            r["relayed_packets_to_peer"] = m.get("to_peer")
        return r

    def part_compare(self):
        a = self.args
        loads = [(t, s, m) for t in a.transport_list for s in a.size_list for m in a.client_list]
        log("\n== compare: turnutils_uclient -y -n %d -z %d, %d loads x %s, %d round(s)"
            % (a.messages, a.pace_ms, len(loads), "/".join(a.server_list), a.rounds))
        runs = []
        for rnd in range(a.rounds):
            for transport, size, clients in loads:
                name = "%s %dB m%d" % (transport, size, clients)
                order = a.server_list if rnd % 2 == 0 else a.server_list[::-1]
                for server in order:
                    label = "round %d %s %s" % (rnd + 1, name, server)
                    try:
                        with Run(self, server, label) as srv:
                            r = self.uclient(srv, transport, size, clients, label)
                    except Failure as e:
                        self.fail(str(e))
                        continue
                    r.update({"round": rnd + 1, "load": name, "server": server,
                              "transport": transport, "size": size, "clients": clients})
                    runs.append(r)
                    log("  %-30s relayed %6d lost %4d rtt %.3f ms jitter %.3f ms  "
                        "cpu %.2f s (%.3f s/100k; schedstat %.3f s)  %.1f s, %d wake-ups "
                        "(%.1f msgs each), uclient cpu %.2f s, others %.2f s"
                        % (label, r["received"], r["lost"], r["rtt_ms"], r["jitter_ms"],
                           r["cpu_s"], r["cpu_per_100k"], r["sched_cpu_s"], r["elapsed_s"],
                           r["wakeups"], r["msgs_per_wakeup"], r["uclient_cpu_s"],
                           r["others_cpu_s"])
                        + ("; in process %d of %d" % (r["relayed_packets_local"],
                                                     r["relayed_packets_to_peer"])
                           if r.get("relayed_packets_to_peer") is not None
                           and r.get("relayed_packets_local") is not None else ""))
        summary = []
        for transport, size, clients in loads:
            name = "%s %dB m%d" % (transport, size, clients)
            med = {}
            for server in a.server_list:
                rs = [r for r in runs if r["load"] == name and r["server"] == server]
                med[server] = {k: median([r[k] for r in rs]) for k in
                               ("received", "lost", "rtt_ms", "jitter_ms", "cpu_s",
                                "cpu_per_100k", "sched_cpu_s", "sched_cpu_per_100k",
                                "msgs_per_wakeup")}
                med[server]["rounds"] = len(rs)
            row = {"load": name, "median": med}
            if "gatehouse" in med and "coturn" in med:
                row["ratio_gatehouse_coturn"] = {
                    k: ratio(med["gatehouse"][k], med["coturn"][k])
                    for k in ("cpu_s", "cpu_per_100k", "sched_cpu_per_100k", "rtt_ms",
                              "jitter_ms")}
                # Round by round, the two servers ran back to back: the
                # spread of their ratio shows how far one median can move.
                per_round = []
                for rnd in range(1, a.rounds + 1):
                    g = [r for r in runs if r["load"] == name and r["round"] == rnd and
                         r["server"] == "gatehouse"]
                    c = [r for r in runs if r["load"] == name and r["round"] == rnd and
                         r["server"] == "coturn"]
                    if g and c:
                        q = ratio(g[0]["sched_cpu_per_100k"], c[0]["sched_cpu_per_100k"])
                        if q is not None:
                            per_round.append(q)
                if per_round:
                    row["sched_ratio_per_round"] = per_round
            summary.append(row)
        self.results["compare"] = {
            "uclient": {"messages": a.messages, "pace_ms": a.pace_ms,
                        "clients": a.client_list, "sizes": a.size_list,
                        "transports": a.transport_list},
            "rounds": a.rounds, "runs": runs, "summary": summary}
        return summary

    def print_compare(self, summary):
        log("\nRelay CPU under turnutils_uclient loads (median of %d round(s); "
            "G/C = Gatehouse / coturn):" % self.args.rounds)
        log("  (cpu s: utime+stime from /proc/PID/stat, 10 ms ticks; sched/100k: the same "
            "from /proc/PID/task/*/schedstat, in ns)")
        log("  (G/C sch rounds: the lowest and highest of the rounds' own ratios)")
        hdr = "  %-15s %-9s %7s %5s %7s %7s %6s %8s %9s %8s %7s %7s %7s %14s"
        log(hdr % ("load", "server", "relayed", "lost", "rtt ms", "jit ms", "cpu s",
                   "cpu/100k", "sched/100k", "msg/wake", "G/C cpu", "G/C sch", "G/C jit",
                   "G/C sch rounds"))
        for row in summary:
            first = True
            for server, m in row["median"].items():
                rt = row.get("ratio_gatehouse_coturn", {}) if server == "gatehouse" else {}
                log(hdr % (row["load"] if first else "", server, fmt(m["received"], "%d"),
                           fmt(m["lost"], "%d"), fmt(m["rtt_ms"], "%.3f"),
                           fmt(m["jitter_ms"], "%.3f"), fmt(m["cpu_s"]),
                           fmt(m["cpu_per_100k"], "%.3f"),
                           fmt(m["sched_cpu_per_100k"], "%.3f"),
                           fmt(m["msgs_per_wakeup"], "%.1f"),
                           fmt(rt.get("cpu_per_100k"), "%.2f", ""),
                           fmt(rt.get("sched_cpu_per_100k"), "%.2f", ""),
                           fmt(rt.get("jitter_ms"), "%.2f", ""),
                           spread(row.get("sched_ratio_per_round"))
                           if server == "gatehouse" else ""))
                first = False

    # -------------------------------------------------------- probe

    def probe_one(self, server):
        a = self.args
        label = "probe %s" % server
        bg_rate = max(0, a.total_rate - a.probe_rate)
        out = {"server": server}
        with Run(self, server, label) as srv:
            target = "127.0.0.1:%d" % srv.port
            load = reader = None
            if bg_rate > 0:
                load = subprocess.Popen(
                    [self.probe, "load", "--server", target, "--rate", str(bg_rate),
                     "--size", str(a.probe_size), "--pairs", str(a.background_pairs),
                     "--max-seconds", str(int(a.probe_seconds * 3 + 120))],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    text=True, start_new_session=True)
                reader = LineReader(load)
            try:
                if load is not None and reader.wait_for("READY", 90) is None:
                    kill_child(load)
                    raise Failure("%s: the background load did not start:\n%s"
                                  % (label, gh.tail(reader.text(), 15)))
                if load is not None:
                    time.sleep(1.0)   # let the load reach its rate first
                    load.stdin.write("mark\n")
                    load.stdin.flush()
                cpu0, busy0, t0 = proc_cpu_s(srv.pid), machine_busy_s(), time.monotonic()
                timeout = a.probe_seconds * 2 + 90
                try:
                    p = run([self.probe, "latency", "--server", target, "--rate",
                             str(a.probe_rate), "--size", str(a.probe_size), "--seconds",
                             str(a.probe_seconds)], timeout=timeout)
                except subprocess.TimeoutExpired:
                    raise Failure("%s: the latency probe ran longer than %d s" % (label, timeout))
                cpu1, busy1, t1 = proc_cpu_s(srv.pid), machine_busy_s(), time.monotonic()
                for line in p.stdout.splitlines():
                    if line.startswith("probe:"):
                        log("  " + line)
                res = parse_result(p.stdout)
                if p.returncode != 0 or res is None:
                    raise Failure("%s: the latency probe failed (exit %d):\n%s"
                                  % (label, p.returncode, gh.tail(p.stdout, 15)))
                out["latency"] = res
                if cpu0 is not None and cpu1 is not None:
                    out["relay_cpu_s"] = round(cpu1 - cpu0, 3)
                    out["relay_cpu_pct_of_one_core"] = round(100 * (cpu1 - cpu0) / (t1 - t0), 1)
                    out["machine_busy_pct"] = round(100 * (busy1 - busy0) / (t1 - t0)
                                                    / (os.cpu_count() or 1), 1)
                m = srv.metrics()
                if m:
                    out["relayed_packets"] = m
            finally:
                if load is not None and load.poll() is None:
                    try:
                        load.stdin.write("stop\n")
                        load.stdin.close()
                    except OSError:
                        pass
                    try:
                        load.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        kill_child(load)
            if load is not None:
                text = reader.text()
                for line in text.splitlines():
                    if line.startswith("probe: load:"):
                        log("  " + line)
                bg = parse_result(text)
                if load.returncode != 0 or bg is None:
                    raise Failure("%s: the background load failed (exit %s):\n%s"
                                  % (label, load.returncode, gh.tail(text, 15)))
                out["background"] = bg
            if not srv.alive():
                raise Failure("%s: the server died during the probe" % label)
        return out

    def part_probe(self):
        a = self.args
        bg_rate = max(0, a.total_rate - a.probe_rate)
        log("\n== probe: %d packets/s of %d bytes for %g s, relayed and direct; background "
            "%d packets/s over %d allocation pairs (total target %d/s)"
            % (a.probe_rate, a.probe_size, a.probe_seconds, bg_rate, a.background_pairs,
               a.total_rate))
        res = {"rate": a.probe_rate, "size": a.probe_size, "seconds": a.probe_seconds,
               "background_rate_target": bg_rate, "background_pairs": a.background_pairs,
               "servers": {}}
        for server in a.server_list:
            log(" %s:" % server)
            try:
                res["servers"][server] = self.probe_one(server)
            except Failure as e:
                self.fail(str(e))
        self.results["probe"] = res
        return res

    def print_probe(self, res):
        log("\nLatency probe (µs; relayed = A -> relay -> relay -> B, direct = A' -> B' "
            "over loopback; added = relayed - direct, per percentile):")
        log("  %-9s %-16s %9s %9s %9s %9s   %s"
            % ("server", "", "p50", "p90", "p99", "max", ""))
        for server, r in res["servers"].items():
            lat = r.get("latency")
            if not lat:
                continue
            bg = r.get("background", {}).get("window", {})
            first = True
            for name, key, sub in (("latency relayed", "relayed", "latency_us"),
                                   ("latency direct", "direct", "latency_us"),
                                   ("added latency", "added", "latency_us"),
                                   ("jitter relayed", "relayed", "jitter_us"),
                                   ("jitter direct", "direct", "jitter_us"),
                                   ("added jitter", "added", "jitter_us")):
                p = lat[key][sub]
                log("  %-9s %-16s %9.1f %9.1f %9.1f %9.1f"
                    % (server if first else "", name, p["p50"], p["p90"], p["p99"], p["max"]))
                first = False
            total = lat["relayed"]["received"] / lat["seconds"]
            log("  %-9s relayed %d/%d probe packets (lost %d); background %.0f/s received "
                "(%.0f/s sent) -> about %.0f relayed packets/s in all; relay CPU %s%% of a core"
                % ("", lat["relayed"]["received"], lat["packets"], lat["relayed"]["lost"],
                   bg.get("rate_received", 0), bg.get("rate_sent", 0),
                   bg.get("rate_received", 0) + total,
                   fmt(r.get("relay_cpu_pct_of_one_core"), "%.0f")))
            rp = r.get("relayed_packets")
            if rp and rp.get("to_peer"):
                log("  %-9s relay to relay in process: %d of %d datagrams relayed to peers"
                    % ("", rp.get("local", 0), rp["to_peer"]))

    # -------------------------------------------------------- allocs

    def allocs_run(self, srv, count, window, hold, max_refusals, label):
        """Runs `bench_turn_probe allocs` against srv. With hold, samples
        the server's memory before, while the allocations are held, and
        after they are deleted. Returns (probe result, samples)."""
        samples = {}
        time.sleep(SETTLE_S)
        samples["before"] = proc_mem(srv.pid)
        cmd = [self.probe, "allocs", "--server", "127.0.0.1:%d" % srv.port,
               "--count", str(count), "--window", str(window),
               "--timeout", str(int(120 + count / 50))]
        if hold:
            cmd += ["--hold", "--max-hold", "600"]
        if max_refusals:
            cmd += ["--max-refusals", str(max_refusals)]
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
        reader = LineReader(p)
        try:
            tag = "HOLDING" if hold else "ALLOCATED"
            line = reader.wait_for(tag, 240 + count / 50)
            if line is None:
                raise Failure("%s: no %s line from the probe:\n%s"
                              % (label, tag, gh.tail(reader.text(), 15)))
            held = json.loads(line[len(tag) + 1:])
            if hold:
                time.sleep(SETTLE_S)
                samples["held"] = proc_mem(srv.pid)
                p.stdin.write("release\n")
                p.stdin.flush()
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                raise Failure("%s: the probe did not finish deleting within 120 s" % label)
        finally:
            kill_child(p)
        text = reader.text()
        for l in text.splitlines():
            if l.startswith("probe:"):
                log("  " + l)
        res = parse_result(text)
        if res is None:
            raise Failure("%s: no result from the probe (exit %s):\n%s"
                          % (label, p.returncode, gh.tail(text, 15)))
        res["held"] = held
        res["probe_exit"] = p.returncode
        if hold:
            time.sleep(SETTLE_S)
            samples["released"] = proc_mem(srv.pid)
        return res, samples

    def allocs_one(self, server, windows_big, windows_small):
        a = self.args
        out = {"server": server}
        label = "allocs %s" % server
        # Memory: N concurrent allocations in a range of at least N ports.
        srv = new_server(server, a, port_range=a.alloc_range, allocations_total=a.allocs * 10)
        try:
            windows_big.acquire(a.lock_wait, skip=(getattr(srv, "held_window", None),))
            srv.start()
        except (Failure, SetupError):
            srv.stop()
            windows_big.release()
            raise
        try:
            res, samples = self.allocs_run(srv, a.allocs, 64, True, 0, label)
            if not srv.alive():
                self.fail("%s: the server died holding the allocations" % label)
        finally:
            for pr in srv.stop():
                self.fail("%s: %s" % (label, pr))
            windows_big.release()
        n = res["held"]["allocated"]
        b, h = samples.get("before"), samples.get("held")
        mem = {"allocated": n, "requested": a.allocs, "samples": samples,
               "allocate_seconds": res["held"]["seconds"],
               "allocate_rate": res["held"]["rate"], "errors": res["errors"],
               "deleted": res["deleted"], "delete_errors": res["delete_errors"]}
        if b and h and n:
            mem["per_allocation_kib"] = {
                k: round((h[k] - b[k]) / n, 3) for k in ("VmRSS", "RssAnon")}
            mem["fds_per_allocation"] = round((h["fds"] - b["fds"]) / n, 3)
        out["memory"] = mem
        if n < a.allocs:
            self.fail("%s: %d of %d allocations succeeded (%s)"
                      % (label, n, a.allocs, res["errors"]))
        if res["delete_failed"]:
            self.fail("%s: %d deletions failed (%s)" % (label, res["delete_failed"],
                                                         res["delete_errors"]))
        # Capacity: allocate in a small range until the server refuses.
        lo = a.capacity_range[0]
        size = a.capacity_range[1] - lo + 1
        srv = new_server(server, a, port_range=a.capacity_range,
                         allocations_total=size * 10)
        try:
            windows_small.acquire(a.lock_wait, skip=(getattr(srv, "held_window", None),))
            srv.start()
        except (Failure, SetupError):
            srv.stop()
            windows_small.release()
            raise
        try:
            res, _ = self.allocs_run(srv, size + 100, 16, False, 20, label + " capacity")
        finally:
            for pr in srv.stop():
                self.fail("%s capacity: %s" % (label, pr))
            windows_small.release()
        cap = {"range": "%d-%d" % tuple(a.capacity_range), "ports": size,
               "allocated": res["allocated"], "refused": res["refused"],
               "errors": res["errors"]}
        out["capacity"] = cap
        if res["refused"] == 0:
            self.fail("%s capacity: never refused with 508 after %d attempts (%s)"
                      % (label, res["attempted"], res["errors"]))
        other = {k: v for k, v in res["errors"].items() if k not in ("508", "486")}
        if other:
            self.fail("%s capacity: failures other than refusals: %s" % (label, other))
        return out

    def part_allocs(self):
        a = self.args
        log("\n== allocs: %d concurrent UDP allocations in ports %d-%d; capacity of "
            "ports %d-%d" % (a.allocs, a.alloc_range[0], a.alloc_range[1],
                             a.capacity_range[0], a.capacity_range[1]))
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < a.allocs + 200:
            raise SetupError("%d allocations need about %d open files per process, but the "
                             "limit is %d; lower --allocs" % (a.allocs, a.allocs + 200, soft))
        big = RelayWindows(*a.alloc_range)
        small = RelayWindows(*a.capacity_range)
        res = {"servers": {}}
        for server in a.server_list:
            log(" %s:" % server)
            try:
                res["servers"][server] = self.allocs_one(server, big, small)
            except Failure as e:
                self.fail(str(e))
        self.results["allocs"] = res
        return res

    def print_allocs(self, res):
        log("\nMemory per allocation (%d concurrent UDP allocations; KiB; from "
            "/proc/PID/status, 1 s after each step):" % self.args.allocs)
        log("  %-9s %9s %10s %10s %10s %10s %10s %8s %8s %10s"
            % ("server", "allocated", "RSS before", "RSS held", "RSS after", "Anon before",
               "Anon held", "KiB/RSS", "KiB/Anon", "fds/alloc"))
        for server, r in res["servers"].items():
            m = r.get("memory")
            if not m:
                continue
            s = m["samples"]
            b, h, af = s.get("before") or {}, s.get("held") or {}, s.get("released") or {}
            pa = m.get("per_allocation_kib", {})
            log("  %-9s %9d %10s %10s %10s %10s %10s %8s %8s %10s"
                % (server, m["allocated"], b.get("VmRSS", "-"), h.get("VmRSS", "-"),
                   af.get("VmRSS", "-"), b.get("RssAnon", "-"), h.get("RssAnon", "-"),
                   fmt(pa.get("VmRSS")), fmt(pa.get("RssAnon")),
                   fmt(m.get("fds_per_allocation"))))
            log("  %-9s allocated at %.0f/s; deleted %d" % ("", m["allocate_rate"],
                                                            m["deleted"]))
        log("\nConcurrent allocations a port range allows (allocate until refused):")
        for server, r in res["servers"].items():
            c = r.get("capacity")
            if c:
                log("  %-9s ports %s (%d): %d allocated, then refused %s"
                    % (server, c["range"], c["ports"], c["allocated"], c["errors"]))


# ------------------------------------------------------------ main

def parse_range(s):
    try:
        lo, hi = (int(x) for x in s.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected FIRST-LAST")
    if not 1024 <= lo <= hi <= 65535:
        raise argparse.ArgumentTypeError("need 1024 <= FIRST <= LAST <= 65535")
    return lo, hi


def int_list(s):
    return [int(x) for x in s.split(",") if x]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part", nargs="?", default="all",
                   choices=("compare", "probe", "allocs", "all"))
    p.add_argument("--quick", action="store_true",
                   help="a fast smoke run: 1 round, short loads, 2 s probe at 5000/s "
                        "in all, 1000 allocations, a 100-port capacity range")
    p.add_argument("--rounds", type=int, help="compare: rounds (default 3; quick 1)")
    p.add_argument("--json", metavar="PATH", help="also write every figure to PATH")
    p.add_argument("--servers", default="gatehouse,coturn",
                   help="comma-separated: gatehouse, coturn (default both)")
    p.add_argument("--gatehouse", default=os.path.join(ROOT, "build", "gatehouse"))
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    p.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    p.add_argument("--probe", help="path of bench_turn_probe (default: build it)")
    p.add_argument("--coturn-relay-threads", type=int,
                   help="coturn --relay-threads (default: coturn's, one per CPU)")
    g = p.add_argument_group("compare")
    g.add_argument("--messages", type=int, help="uclient -n (default 5000; quick 200)")
    g.add_argument("--pace-ms", type=int, default=2, help="uclient -z (default 2)")
    g.add_argument("--clients", default="4,40", help="uclient -m values (default 4,40)")
    g.add_argument("--sizes", default="120,1000", help="uclient -l values (default 120,1000)")
    g.add_argument("--transports", default="udp,tcp", help="udp, tcp (default both)")
    g = p.add_argument_group("probe")
    g.add_argument("--probe-rate", type=int, default=1000, help="packets/s (default 1000)")
    g.add_argument("--probe-size", type=int, default=200, help="bytes (default 200)")
    g.add_argument("--probe-seconds", type=float, help="default 10; quick 2")
    g.add_argument("--total-rate", type=int,
                   help="relayed packets/s, probe and background load together "
                        "(default 20000; quick 5000; the probe's rate alone: no load)")
    g.add_argument("--background-pairs", type=int, default=32,
                   help="allocation pairs of the background load (default 32)")
    g = p.add_argument_group("allocs")
    g.add_argument("--allocs", type=int, help="concurrent allocations (default 10000; quick 1000)")
    g.add_argument("--alloc-range", type=parse_range, default=(20000, 31999),
                   help="relay ports for that (default 20000-31999)")
    g.add_argument("--capacity-range", type=parse_range,
                   help="a small relay port range to fill (default 20000-20499; quick 20000-20099)")
    g.add_argument("--lock-wait", type=int, default=300,
                   help="seconds to wait for parallel test runs to free the relay "
                        "port windows of gh.py (default 300)")
    args = p.parse_args()
    q = args.quick
    args.rounds = args.rounds or (1 if q else 3)
    args.messages = args.messages or (200 if q else 5000)
    args.probe_seconds = args.probe_seconds or (2.0 if q else 10.0)
    args.total_rate = args.total_rate if args.total_rate is not None else (5000 if q else 20000)
    args.allocs = args.allocs or (1000 if q else 10000)
    args.capacity_range = args.capacity_range or ((20000, 20099) if q else (20000, 20499))
    args.server_list = [s for s in args.servers.split(",") if s]
    args.client_list = int_list(args.clients)
    args.size_list = int_list(args.sizes)
    args.transport_list = [t for t in args.transports.split(",") if t]
    if (not args.server_list or set(args.server_list) - {"gatehouse", "coturn"}
            or len(set(args.server_list)) != len(args.server_list)):
        p.error("--servers takes gatehouse and/or coturn")
    if set(args.transport_list) - {"udp", "tcp"} or not args.transport_list:
        p.error("--transports takes udp and/or tcp")
    if args.rounds < 1 or args.messages < 1 or args.pace_ms < 0 or args.allocs < 1:
        p.error("--rounds, --messages and --allocs must be positive")
    if args.alloc_range[1] - args.alloc_range[0] + 1 < args.allocs:
        p.error("--alloc-range must have at least --allocs ports")
    if not 20 <= args.probe_size <= 1400 or args.probe_rate < 1:
        p.error("--probe-size must be 20-1400 and --probe-rate positive")
    for lo, hi in (args.alloc_range, args.capacity_range):
        if hi >= 32768 and lo <= 60999:
            p.error("relay ranges must not overlap the kernel's ephemeral ports (32768-60999)")
    parts = ["compare", "probe", "allocs"] if args.part == "all" else [args.part]

    try:
        need = ["turnutils_uclient"] if "compare" in parts else []
        if "coturn" in args.server_list:
            need.append("turnserver")
        missing = [t for t in need if shutil.which(t) is None]
        if missing:
            raise SetupError("%s not found (apt-get install coturn)" % ", ".join(missing))
        if args.probe:
            probe = args.probe
        elif args.no_build:
            probe = find_probe(args.build_dir)
        else:
            probe = build(args.build_dir)
        if "gatehouse" in args.server_list and not os.access(args.gatehouse, os.X_OK):
            raise SetupError("no gatehouse binary at %s" % args.gatehouse)
        soft, hard = raise_nofile()
    except SetupError as e:
        log("bench: cannot set up: %s" % e)
        return 2
    except subprocess.TimeoutExpired:
        log("bench: cannot set up: the build took longer than %d s" % BUILD_TIMEOUT_S)
        return 2

    b = Bench(args)
    b.probe = probe
    b.results["meta"].update({"open_files": [soft, hard], "probe": probe})
    log("bench: parts %s; servers %s; open-file limit %d (hard %d); load average %s"
        % (",".join(parts), ",".join(args.server_list), soft, hard,
           " ".join(b.results["meta"]["loadavg_at_start"])))
    status = 0
    done = {}
    try:
        for part in parts:
            done[part] = getattr(b, "part_" + part)()
    except SetupError as e:
        log("bench: cannot set up: %s" % e)
        status = 2
    except KeyboardInterrupt:
        log("bench: interrupted")
        status = 2

    log("\n================ results")
    if "compare" in done:
        b.print_compare(done["compare"])
    if "probe" in done:
        b.print_probe(done["probe"])
    if "allocs" in done:
        b.print_allocs(done["allocs"])
    if GatehouseServer.logs:
        n, groups = log_summary("\n".join(GatehouseServer.logs))
        log("\nWhat the %d Gatehouse daemons logged (level warning): %d lines%s"
            % (len(GatehouseServer.logs), n, ", most frequent first:" if n else ""))
        for count, line in groups:
            log("  %6d x %s" % (count, line[:200]))
        b.results["gatehouse_log"] = [{"count": c, "first": l} for c, l in groups]
    b.results["failures"] = b.failures
    with open("/proc/loadavg") as f:
        b.results["meta"]["loadavg_at_end"] = f.read().split()[:3]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(b.results, f, indent=2)
        log("\nbench: figures written to %s" % args.json)
    if b.failures:
        log("\nbench: %d failure(s):" % len(b.failures))
        for f in b.failures:
            log("  - " + f.splitlines()[0])
        status = status or 1
    log("bench: %s" % ("OK" if status == 0 else "FAIL"))
    return status


if __name__ == "__main__":
    sys.exit(main())
