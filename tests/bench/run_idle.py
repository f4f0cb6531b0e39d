#!/usr/bin/python3
"""Idle benchmark: what a gateway with nothing to do costs (see
tests/bench/README.md).

    /usr/bin/python3 tests/bench/run_idle.py [--seconds S] [--gatehouse BINARY]

Most gateways are idle most of the time, so their timers are a cost paid
all day. This starts build/gatehouse through the integration harness (a
local user database, signaling, the admin API and the TURN relay on
127.0.0.1), waits 3 s for start-up to settle, then reads every thread's
CPU time (/proc/PID/task/*/schedstat, in ns) and context switches over S
seconds (default 20) and prints each per second.

Exit status: 0 when it worked; 1 when the daemon did not start or stop
cleanly. No traffic is sent.
"""

import argparse
import glob
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import gh  # noqa: E402


def threads(pid):
    """{thread name: (CPU ns, context switches)}, summed over threads of
    the same name."""
    out = {}
    for task in glob.glob("/proc/%d/task/*" % pid):
        try:
            with open(os.path.join(task, "comm")) as f:
                name = f.read().strip()
            with open(os.path.join(task, "schedstat")) as f:
                cpu_ns = int(f.read().split()[0])
            switches = 0
            with open(os.path.join(task, "status")) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue    # a thread that just ended
        cpu, sw = out.get(name, (0, 0))
        out[name] = (cpu + cpu_ns, sw + switches)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--gatehouse", default=os.path.join(ROOT, "build", "gatehouse"))
    a = ap.parse_args()
    g = gh.Gatehouse(a.gatehouse, config={"log": {"level": "warning"}})
    with g:
        time.sleep(3)
        before = threads(g.proc.pid)
        time.sleep(a.seconds)
        after = threads(g.proc.pid)
    print("Idle daemon, %.0f s (per second of wall time):" % a.seconds)
    print("  %-16s %10s %12s" % ("thread", "CPU µs/s", "switches/s"))
    total_cpu = total_sw = 0.0
    for name in sorted(after):
        cpu = (after[name][0] - before.get(name, (0, 0))[0]) / 1000.0 / a.seconds
        sw = (after[name][1] - before.get(name, (0, 0))[1]) / a.seconds
        total_cpu += cpu
        total_sw += sw
        print("  %-16s %10.1f %12.1f" % (name, cpu, sw))
    print("  %-16s %10.1f %12.1f" % ("all", total_cpu, total_sw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
