"""Samples the kernel's socket memory every half second until stopped (SIGTERM/SIGINT):
/proc/net/sockstat's `TCP: inuse ... mem` (mem is in pages) and the bytes held by each slab
cache (/proc/slabinfo: active objects x object size). Writes one JSON object per line to
OUT, so bench/compare can take a baseline before connections open and a sample while they are
held. Stdlib only.

Usage: python3 kernel_sample.py OUT [INTERVAL_SECONDS]
"""

import json
import signal
import sys
import time


def sockstat():
    fields = {}
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                words = line.split()[1:]
                fields = {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}
    return fields


def slab_bytes():
    """Bytes in active objects per slab cache; empty when /proc/slabinfo is not readable."""
    caches = {}
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                if line.startswith(("slabinfo", "#")):
                    continue
                w = line.split()
                caches[w[0]] = int(w[1]) * int(w[3])
    except OSError:
        pass
    return caches


def main():
    out = open(sys.argv[1], "w")
    interval = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while running:
        sample = {"t": time.time(), "tcp": sockstat(), "slab": slab_bytes()}
        out.write(json.dumps(sample) + "\n")
        out.flush()
        time.sleep(interval)


if __name__ == "__main__":
    main()
