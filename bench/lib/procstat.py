"""Samples one process's CPU time (user + system, all threads) and RSS every 0.1 s until it
exits or this sampler is stopped, one line per sample:
`WALL_SECONDS CPU_SECONDS RSS_BYTES CORE0_BUSY_SECONDS CORE1_BUSY_SECONDS`.
bench/compare uses it to charge the server's CPU time to the measurement window of a run
(CPU seconds per delivery do not depend on what else runs on the machine the way wall-clock
rates do), and to see how much of the server's core other processes took meanwhile (core 0
busy time minus the server's own). Stdlib only.

Usage: python3 procstat.py PID OUT
"""

import os
import signal
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def sample(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
    rss = int(fields[21]) * PAGE
    return cpu, rss


def cores_busy():
    """Seconds cpu0 and cpu1 spent running tasks (user, nice, system, steal) from /proc/stat;
    interrupt and softirq time is left out, as the kernel does not charge it to any task."""
    busy = {}
    with open("/proc/stat") as f:
        for line in f:
            w = line.split()
            if w[0] in ("cpu0", "cpu1"):
                ticks = [int(x) for x in w[1:]]
                busy[w[0]] = (ticks[0] + ticks[1] + ticks[2] + ticks[7]) / TICKS
    return busy.get("cpu0", 0.0), busy.get("cpu1", 0.0)


def main():
    pid, out = int(sys.argv[1]), open(sys.argv[2], "w")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        try:
            cpu, rss = sample(pid)
            core0, core1 = cores_busy()
        except (OSError, ValueError, IndexError):
            return
        out.write(f"{time.time():.3f} {cpu:.2f} {rss} {core0:.2f} {core1:.2f}\n")
        out.flush()
        time.sleep(0.1)


if __name__ == "__main__":
    main()
