#!/usr/bin/env python3
"""Checks an Autobahn|Testsuite fuzzingclient report against fanout's rules.

Usage: check.py INDEX_JSON EXPECTED_JSON [--update]

Fails (exit 1) when
  - a case's behavior or behaviorClose is not OK, NON-STRICT or INFORMATIONAL
    (sections 12 and 13, permessage-deflate, included: fanout negotiates it),
    or
  - the results differ from EXPECTED_JSON in any case, in behavior,
    behaviorClose or the close code fanout sent (remoteCloseCode), or a case is
    missing or new.
Durations are not compared. With --update, EXPECTED_JSON is rewritten from
the report (only when the rules above hold); review the diff before
committing it.
"""

import collections
import json
import sys

ALLOWED = {"OK", "NON-STRICT", "INFORMATIONAL"}
FIELDS = ("behavior", "behaviorClose", "remoteCloseCode")


def case_key(case):
    return tuple(int(part) for part in case.split("."))


def load_results(index_path):
    with open(index_path) as f:
        index = json.load(f)
    if len(index) != 1:
        sys.exit(f"{index_path}: expected one agent, found {sorted(index)}")
    (agent, cases), = index.items()
    return agent, {case: {field: result.get(field) for field in FIELDS} for case, result in cases.items()}


def rule_violations(results):
    bad = []
    for case in sorted(results, key=case_key):
        allowed = ALLOWED
        for field in ("behavior", "behaviorClose"):
            if results[case][field] not in allowed:
                bad.append(f"  {case}: {field} {results[case][field]}")
    return bad


def differences(expected, results):
    diff = []
    for case in sorted(set(expected) | set(results), key=case_key):
        if case not in results:
            diff.append(f"  {case}: expected but not run")
        elif case not in expected:
            diff.append(f"  {case}: new case, not in the expected results ({format_result(results[case])})")
        else:
            for field in FIELDS:
                want, got = expected[case].get(field), results[case][field]
                if want != got:
                    diff.append(f"  {case}: {field} expected {want}, got {got}")
    return diff


def format_result(result):
    return ", ".join(f"{field} {result[field]}" for field in FIELDS)


def write_expected(path, results):
    # One case per line, in case order, so a change shows as a one-line diff.
    lines = [
        f"  {json.dumps(case)}: {json.dumps(results[case], sort_keys=False)}"
        for case in sorted(results, key=case_key)
    ]
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


def main(argv):
    args = [a for a in argv if a != "--update"]
    if len(args) != 2:
        sys.exit(__doc__)
    index_path, expected_path = args
    agent, results = load_results(index_path)

    counts = collections.Counter((r["behavior"], r["behaviorClose"]) for r in results.values())
    print(f"autobahn: {len(results)} cases run against {agent}")
    for (behavior, close), n in sorted(counts.items()):
        print(f"  {n:4}  behavior {behavior}, behaviorClose {close}")

    failed = False
    bad = rule_violations(results)
    if bad:
        failed = True
        print(f"autobahn: {len(bad)} results not allowed (only OK, NON-STRICT, INFORMATIONAL):")
        print("\n".join(bad))

    if "--update" in argv:
        if failed:
            print(f"autobahn: not updating {expected_path} while results are not allowed")
            return 1
        write_expected(expected_path, results)
        print(f"autobahn: wrote {expected_path}; review the diff before committing it")
        return 0

    with open(expected_path) as f:
        expected = json.load(f)
    diff = differences(expected, results)
    if diff:
        failed = True
        print(f"autobahn: {len(diff)} differences from {expected_path}:")
        print("\n".join(diff))
        print("A regression, or an improvement to record: rerun with --update and commit the reviewed diff.")
    if failed:
        return 1
    print(f"autobahn: all results allowed and as in {expected_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
