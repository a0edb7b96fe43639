"""Picks the next offered rate in bench/compare's search for a server's highest sustained
broadcast rate, from the steps run so far.

History file: one line per step, `RATE VERDICT NS_PER_DELIVERY` (verdict from judge.py).

Rules:
- first step: START;
- an `invalid` step ends the search (its connections were not all open, so no rate will do);
- nothing sustained yet: halve the lowest failing rate, down to START / 16;
- sustained, nothing above it failed yet: four times the best sustained rate, capped at MAX;
- a sustained rate below a failed one: try their geometric mean, until they are within 25%;
- at most MAX_STEPS steps.

The CPU cost per delivery is no guide to the next rate: servers that write each message with
its own syscall at low rates batch several per write once they fall slightly behind, and then
carry many times more.

Prints the next rate (messages/s over all publishers) or `done`.

Usage: python3 search.py HISTORY START MAX MAX_STEPS
"""

import math
import sys


def nice(rate):
    """Two significant digits, so command lines stay readable."""
    if rate <= 0:
        return 0
    digits = 1 - int(math.floor(math.log10(rate)))
    return round(rate, digits) if digits > 0 else float(round(rate, digits))


def next_rate(history, start, max_rate, max_steps):
    if not history:
        return start
    if len(history) >= max_steps or history[-1][1] == "invalid":
        return None
    passes = [r for r, v in history if v == "pass"]
    fails = [r for r, v in history if v != "pass"]
    if not passes:
        low = min(fails) / 2
        return nice(low) if low >= start / 16 else None
    best = max(passes)
    above = [f for f in fails if f > best]
    if above:
        fail = min(above)
        if fail / best <= 1.25:
            return None
        return nice(math.sqrt(best * fail))
    if best >= max_rate:
        return None
    return nice(min(max_rate, best * 4))


def main():
    path, start, max_rate, max_steps = sys.argv[1:5]
    history = []
    try:
        with open(path) as f:
            for line in f:
                r, v = line.split()[:2]
                history.append((float(r), v))
    except FileNotFoundError:
        pass
    rate = next_rate(history, float(start), float(max_rate), int(max_steps))
    print("done" if rate is None else f"{rate:g}")


if __name__ == "__main__":
    main()
