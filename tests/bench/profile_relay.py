#!/usr/bin/python3
"""Where a relay's CPU goes: one turnutils_uclient load of the relay
benchmark, with the server sampled by perf (see tests/bench/README.md,
"profile_relay.py").

    /usr/bin/python3 tests/bench/profile_relay.py [--servers gatehouse,coturn]
        [--clients 4] [--size 120] [--transport udp] [--no-build]

For each server it starts a fresh one as run_relay.py does, samples all
of its threads with `perf record -g -e cpu-clock` while the load runs,
and prints the sampled CPU per relayed message, split by system call and,
inside the calls that send, by stage. On loopback the sender's system
call also runs the receiver's side (IP and UDP input, queueing on the
receiving socket, waking its reader): that stage is what a relay pays
for every datagram it sends, whoever sends it.

Needs perf (Debian linux-perf) and root or kernel.perf_event_paranoid <= 0
for kernel stacks. Exit status: 0 when it worked; 1 when a load failed;
2 when it could not be set up. Traffic goes only to 127.0.0.1.
"""

import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_relay as rr  # noqa: E402

SAMPLE_HZ = 10000
SYSCALL = re.compile(r"(?:__x64_sys|__do_sys|__sys)_(\w+)")
SENDS = {"sendmmsg", "sendmsg", "sendto", "write", "writev"}
# Stages of a send, first match from the top of the stack (the sampled
# function) down: the receiver's side runs in softirq under the send.
STAGES = (
    ("preempted inside the call", ("__schedule",)),
    ("deliver: wake the reader", ("sock_def_readable", "ep_poll_callback")),
    ("deliver: split a GSO datagram", ("skb_segment", "__udp_gso_segment",
                                       "__skb_gso_segment")),
    ("deliver: queue on the socket", ("__udp_enqueue_schedule_skb", "udp_queue_rcv",
                                      "tcp_rcv_established", "tcp_v4_rcv")),
    ("deliver: IP input", ("process_backlog", "net_rx_action", "handle_softirqs")),
    ("build the datagram", ("ip_make_skb", "__ip_append_data", "sock_alloc_send",
                            "tcp_sendmsg_locked")),
    ("route", ("ip_route_output", "fib_table_lookup", "fib_lookup")),
    ("transmit", ("dev_queue_xmit", "loopback_xmit", "dev_hard_start_xmit",
                  "ip_finish_output", "ip_output")),
)


def parse_samples(text):
    """perf script -F comm,period,ip,sym: yields (comm, period_ns, whether
    the sampled address is the kernel's, [symbols from the sampled function
    down])."""
    for block in text.split("\n\n"):
        lines = [ln for ln in block.split("\n") if ln.strip()]
        if not lines:
            continue
        head = lines[0].split()
        if len(head) < 2 or not head[-1].isdigit():
            continue
        frames = [ln.split(None, 1) for ln in lines[1:]]
        syms = [f[1] if len(f) == 2 else "?" for f in frames]
        kernel = bool(frames) and frames[0][0].startswith("ffffffff")
        yield " ".join(head[:-1]), int(head[-1]), kernel, syms


def classify(kernel, syms):
    call = None
    for s in syms:
        m = SYSCALL.match(s)
        if m:
            call = m.group(1)
            break
    if call is None:
        return ("kernel outside system calls" if kernel else "user space"), None
    if call not in SENDS:
        return call, None
    for stage, marks in STAGES:
        if any(s.startswith(m) for s in syms for m in marks):
            return call, stage
    return call, "other"


def profile(bench, server, transport, size, clients, workdir):
    data = os.path.join(workdir, "%s.data" % server)
    label = "%s %s %dB m%d" % (server, transport, size, clients)
    with rr.Run(bench, server, label) as srv:
        perf = subprocess.Popen(["perf", "record", "-q", "-g", "-e", "cpu-clock",
                                 "-F", str(SAMPLE_HZ), "-p", str(srv.pid), "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        time.sleep(0.5)
        try:
            r = bench.uclient(srv, transport, size, clients, label)
        finally:
            perf.send_signal(signal.SIGINT)
            try:
                _, err = perf.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                perf.kill()
                _, err = perf.communicate()
    if perf.returncode not in (0, -signal.SIGINT):
        raise rr.SetupError("perf record failed: %s" % rr.gh.tail(err, 5))
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,period,ip,sym"],
                         capture_output=True, text=True, timeout=600).stdout
    calls = collections.Counter()
    stages = collections.Counter()
    threads = collections.Counter()
    total = 0
    for comm, period, kernel, syms in parse_samples(out):
        call, stage = classify(kernel, syms)
        calls[call] += period
        if stage:
            stages[(call, stage)] += period
        threads[comm] += period
        total += period
    return r, total, calls, stages, threads


def report(server, r, total, calls, stages, threads):
    msgs = max(1, r["received"])

    def us(ns):
        return ns / 1000.0 / msgs

    rr.log("\n%s: %d messages relayed, %d lost; sampled CPU %.3f s, %.2f µs a message"
           " (utime+stime %.3f s)" % (server, r["received"], r["lost"], total / 1e9,
                                       us(total), r["cpu_s"]))
    rr.log("  threads: " + ", ".join("%s %.0f%%" % (t, 100.0 * n / max(1, total))
                                     for t, n in threads.most_common()))
    rr.log("  %-40s %8s %6s" % ("system call / stage", "µs/msg", "share"))
    for call, n in calls.most_common():
        rr.log("  %-40s %8.2f %5.0f%%" % (call, us(n), 100.0 * n / max(1, total)))
        for (c, stage), m in sorted(stages.items(), key=lambda kv: -kv[1]):
            if c == call:
                rr.log("    %-38s %8.2f %5.0f%%" % (stage, us(m), 100.0 * m / max(1, total)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", default="gatehouse,coturn")
    p.add_argument("--clients", type=int, default=4, help="uclient -m (default 4)")
    p.add_argument("--size", type=int, default=120, help="uclient -l (default 120)")
    p.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    p.add_argument("--messages", type=int, default=5000, help="uclient -n (default 5000)")
    p.add_argument("--pace-ms", type=int, default=2, help="uclient -z (default 2)")
    p.add_argument("--gatehouse", default=os.path.join(rr.ROOT, "build", "gatehouse"))
    p.add_argument("--build-dir", default=os.path.join(rr.ROOT, "build"))
    p.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    p.add_argument("--coturn-relay-threads", type=int)
    p.add_argument("--keep", metavar="DIR",
                   help="keep each server's perf data in DIR (SERVER.data, for perf report)")
    args = p.parse_args()
    args.server_list = [s for s in args.servers.split(",") if s]
    args.quick = False
    if set(args.server_list) - {"gatehouse", "coturn"} or not args.server_list:
        p.error("--servers takes gatehouse and/or coturn")
    need = ["perf", "turnutils_uclient"] + (["turnserver"] if "coturn" in args.server_list
                                            else [])
    missing = [t for t in need if shutil.which(t) is None]
    if missing:
        rr.log("profile: cannot set up: %s not found (apt-get install linux-perf coturn)"
               % ", ".join(missing))
        return 2
    try:
        if not args.no_build:
            rr.build(args.build_dir)
        rr.raise_nofile()
    except (rr.SetupError, subprocess.TimeoutExpired) as e:
        rr.log("profile: cannot set up: %s" % e)
        return 2
    bench = rr.Bench(args)
    status = 0
    with tempfile.TemporaryDirectory(prefix="gh-profile-") as tmp:
        workdir = args.keep or tmp
        os.makedirs(workdir, exist_ok=True)
        for server in args.server_list:
            try:
                res = profile(bench, server, args.transport, args.size, args.clients,
                              workdir)
            except rr.Failure as e:
                bench.fail(str(e))
                continue
            except rr.SetupError as e:
                rr.log("profile: cannot set up: %s" % e)
                return 2
            report(server, *res)
    if bench.failures:
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
