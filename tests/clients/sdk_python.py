#!/usr/bin/env python3
"""The PyPI `pusher` server SDK (3.3) against the server's HTTP API.

While `node hold.mjs` (beside this file) holds real pusher-js subscriptions
(two connections on a public channel, users 1 (two connections) and 2 on a
presence channel, user 2 on a private channel; users signed in), this script
calls trigger, trigger_batch, channels_info, channel_info, users_info and
terminate_user_connections, and checks the answers and what the holders
received.

Environment: PUSHER_HOST, PUSHER_PORT, PUSHER_APP_ID (numeric: the SDK
insists), PUSHER_APP_KEY, PUSHER_APP_SECRET. Optional: PUSHER_TIMEOUT_MS
(global, default 20000), PUSHER_STEP_TIMEOUT_MS (default 5000), NODE (node
binary, default "node"). Server settings: user authentication accepted (for
terminate_user_connections), subscription_count available in channel_info.

Prints one line per check, "N passed, N failed", exits 0 only if all passed.
Notes on the SDK: it signs GETs with body_md5 of the empty body
(d41d8cd98f00b204e9800998ecf8427e), and terminate_user_connections posts to
/users/{id}/terminate_connections WITHOUT the /apps/{app_id} prefix.
"""
import json
import os
import queue
import random
import signal
import string
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
results = []
running = ["setup"]


def env(name):
    v = os.environ.get(name)
    if not v:
        print("FAIL setup: environment variable %s is required (see tests/clients/README.md)" % name)
        sys.exit(2)
    return v


def finish(code=None):
    failed = [n for n, ok in results if not ok]
    if failed:
        print("# failed checks: " + "; ".join(failed))
    print("%d passed, %d failed" % (len(results) - len(failed), len(failed)))
    sys.stdout.flush()
    if holder is not None:
        try:
            holder.kill()
        except Exception:
            pass
    os._exit(code if code is not None else (1 if failed else 0))


def on_timeout(signum, frame):
    print("FAIL %s: global timeout of %d ms reached" % (running[0], TIMEOUT_MS))
    results.append((running[0], False))
    finish(1)


def check(name, fn, critical=False):
    running[0] = name
    try:
        note = fn()
        print("ok   %s%s" % (name, " (%s)" % note if note else ""))
        results.append((name, True))
        ok = True
    except Exception as e:  # noqa: BLE001 - report any failure as the check's
        msg = str(e) or repr(e)
        print("FAIL %s: %s: %s" % (name, type(e).__name__, msg))
        results.append((name, False))
        ok = False
        if critical:
            print("# %s is needed by the rest of the scenario: stopping here" % name)
            finish()
    sys.stdout.flush()
    running[0] = "between checks"
    return ok


def expect_eq(actual, expected, what):
    if actual != expected:
        raise AssertionError("%s: expected %r, got %r" % (what, expected, actual))


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


HOST = env("PUSHER_HOST")
PORT = int(env("PUSHER_PORT"))
APP_ID = env("PUSHER_APP_ID")
KEY = env("PUSHER_APP_KEY")
SECRET = env("PUSHER_APP_SECRET")
TIMEOUT_MS = int(os.environ.get("PUSHER_TIMEOUT_MS") or 20000)
STEP_S = int(os.environ.get("PUSHER_STEP_TIMEOUT_MS") or 5000) / 1000.0
holder = None

signal.signal(signal.SIGALRM, on_timeout)
signal.setitimer(signal.ITIMER_REAL, TIMEOUT_MS / 1000.0)
print("# scenario sdk_python, global timeout %d ms" % TIMEOUT_MS)

try:
    import pusher
    from pusher import errors as perrors
except ImportError as e:
    print("FAIL setup: the PyPI pusher SDK is not installed in %s (%s); run tests/clients/install" % (sys.executable, e))
    sys.exit(2)

sdk = pusher.Pusher(app_id=APP_ID, key=KEY, secret=SECRET, host=HOST, port=PORT, ssl=False)
TAG = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(6))

# ---- the holder: real pusher-js subscriptions
inbox = queue.Queue()
seen = []  # every line from the holder, in order


def reader(stream):
    for line in stream:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            msg = {"type": "noise", "line": line}
        inbox.put(msg)


def next_msg(pred, what, timeout=None):
    """Waits for a holder message matching pred (earlier ones are kept in seen)."""
    for m in seen:
        if pred(m) and not m.get("_taken"):
            m["_taken"] = True
            return m
    deadline = time.time() + (timeout or STEP_S)
    while True:
        left = deadline - time.time()
        if left <= 0:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout or STEP_S, what))
        try:
            m = inbox.get(timeout=left)
        except queue.Empty:
            continue
        seen.append(m)
        if m.get("type") == "error":
            raise AssertionError("hold.mjs failed: %s" % m.get("message"))
        if pred(m):
            m["_taken"] = True
            return m


def drain():
    while True:
        try:
            seen.append(inbox.get_nowait())
        except queue.Empty:
            return


ready = {}


def start_holder():
    global holder
    node = os.environ.get("NODE", "node")
    holder = subprocess.Popen(
        [node, os.path.join(HERE, "hold.mjs")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
        env=dict(os.environ, HOLD_TAG=TAG), text=True, cwd=HERE,
    )
    threading.Thread(target=reader, args=(holder.stdout,), daemon=True).start()
    m = next_msg(lambda m: m.get("type") == "ready", "hold.mjs to report ready", timeout=3 * STEP_S)
    ready.update(m)
    return "sockets %s; signed in: %s" % (m["sockets"], ", ".join(m["signed_in"]) or "none")


check("hold.mjs holds pusher-js subscriptions (public x2, presence users 1 (x2) and 2, private)", start_holder,
      critical=True)
PUB = ready["channels"]["public"]
PRES = ready["channels"]["presence"]
PRIV = ready["channels"]["private"]
SOCK = ready["sockets"]


def got_event(client, channel, event, what=None):
    return next_msg(
        lambda m: m.get("type") == "event" and m["client"] == client and m["channel"] == channel and m["event"] == event,
        what or "%s to receive %s on %s" % (client, event, channel),
    )


def sentinel(channel, clients):
    sid = "s%d" % random.randint(0, 10 ** 9)
    sdk.trigger(channel, "sentinel", {"id": sid})
    for c in clients:
        next_msg(lambda m: m.get("type") == "event" and m["client"] == c and m["event"] == "sentinel"
                 and m["data"].get("id") == sid, "sentinel on %s" % c)


def t_trigger():
    r = sdk.trigger(PUB, "py-event", {"x": 1, "s": "caf\u00e9"})
    expect(isinstance(r, dict), "trigger returned %r, not a JSON object" % (r,))
    for c in ("pubA", "pubB"):
        expect_eq(got_event(c, PUB, "py-event")["data"], {"x": 1, "s": "caf\u00e9"}, "data on %s" % c)
    return "response %s" % json.dumps(r)


check("trigger(channel, event, data) reaches both public subscribers", t_trigger)


def t_trigger_multi():
    r = sdk.trigger([PUB, PRIV], "py-multi", "plain text")
    expect(isinstance(r, dict), "trigger returned %r" % (r,))
    for c, ch in (("pubA", PUB), ("pubB", PUB), ("u2", PRIV)):
        expect_eq(got_event(c, ch, "py-multi")["data"], "plain text", "data on %s/%s" % (c, ch))


check("trigger([public, private], ...) reaches the subscribers of both channels", t_trigger_multi)


def t_exclusion():
    drain()
    sdk.trigger(PUB, "py-excluded", {}, socket_id=SOCK["pubA"])
    got_event("pubB", PUB, "py-excluded")
    sentinel(PUB, ["pubA"])
    drain()
    leaked = [m for m in seen if m.get("type") == "event" and m["client"] == "pubA" and m["event"] == "py-excluded"]
    expect(not leaked, "the excluded socket pubA received the event")


check("trigger(..., socket_id=pubA) excludes pubA only", t_exclusion)


def t_batch():
    r = sdk.trigger_batch([
        {"channel": PUB, "name": "py-b1", "data": {"i": 1}},
        {"channel": PRES, "name": "py-b2", "data": "two"},
        {"channel": PUB, "name": "py-b3", "data": {"i": 3}, "socket_id": SOCK["pubB"]},
    ])
    expect(isinstance(r, dict), "trigger_batch returned %r" % (r,))
    expect_eq(got_event("pubA", PUB, "py-b1")["data"], {"i": 1}, "py-b1 on pubA")
    expect_eq(got_event("pubB", PUB, "py-b1")["data"], {"i": 1}, "py-b1 on pubB")
    for c in ("u1a", "u1b", "u2"):
        expect_eq(got_event(c, PRES, "py-b2")["data"], "two", "py-b2 on %s" % c)
    expect_eq(got_event("pubA", PUB, "py-b3")["data"], {"i": 3}, "py-b3 on pubA")
    sentinel(PUB, ["pubB"])
    drain()
    leaked = [m for m in seen if m.get("type") == "event" and m["client"] == "pubB" and m["event"] == "py-b3"]
    expect(not leaked, "batch entry with socket_id pubB reached pubB")
    return "response %s" % json.dumps(r)


check("trigger_batch delivers each entry to its channel (and honours a per-entry socket_id)", t_batch)


def t_channels_presence():
    r = sdk.channels_info(prefix_filter=PRES, attributes=["user_count"])
    expect_eq(r, {"channels": {PRES: {"user_count": 2}}}, "channels_info(prefix_filter=%r, user_count)" % PRES)


check("channels_info(prefix_filter='presence-...', attributes=['user_count'])", t_channels_presence)


def t_channels_all():
    r = sdk.channels_info()
    chans = r.get("channels")
    expect(isinstance(chans, dict), "no channels object in %r" % (r,))
    for ch in (PUB, PRES, PRIV):
        expect(ch in chans, "%s missing from %r" % (ch, sorted(chans)))
        expect(isinstance(chans[ch], dict), "channels[%s] is %r, not an object" % (ch, chans[ch]))
    r2 = sdk.channels_info(prefix_filter="public-py-%s" % TAG)
    expect_eq(sorted(r2.get("channels", {})), [PUB], "channels with prefix public-py-%s" % TAG)
    return "%d channel(s) listed" % len(chans)


check("channels_info() lists the occupied channels; prefix_filter narrows it", t_channels_all)


def t_channel_presence():
    r = sdk.channel_info(PRES, ["subscription_count", "user_count"])
    expect_eq(r.get("occupied"), True, "occupied")
    expect_eq(r.get("user_count"), 2, "user_count")
    expect_eq(r.get("subscription_count"), 3, "subscription_count")
    return json.dumps(r)


check("channel_info(presence, ['subscription_count','user_count']): occupied, 3 subscriptions, 2 users",
      t_channel_presence)


def t_channel_public():
    r = sdk.channel_info(PUB, ["subscription_count"])
    expect_eq(r.get("occupied"), True, "occupied")
    expect_eq(r.get("subscription_count"), 2, "subscription_count")
    expect("user_count" not in r, "user_count given for a public channel: %r" % (r,))
    r2 = sdk.channel_info(PUB)
    expect_eq(r2.get("occupied"), True, "occupied without info")
    return json.dumps(r)


check("channel_info(public, ['subscription_count']): occupied, 2 subscriptions", t_channel_public)


def t_channel_empty():
    r = sdk.channel_info("public-py-%s-nobody" % TAG)
    expect_eq(r.get("occupied"), False, "occupied")


check("channel_info(unused channel): occupied false", t_channel_empty)


def t_users():
    r = sdk.users_info(PRES)
    users = sorted(r.get("users", []), key=lambda u: u.get("id"))
    expect_eq(users, [{"id": "1"}, {"id": "2"}], "users")


check("users_info(presence): users 1 and 2, once each", t_users)


def t_bad_auth():
    bad = pusher.Pusher(app_id=APP_ID, key=KEY, secret=SECRET + "-wrong", host=HOST, port=PORT, ssl=False)
    try:
        bad.trigger(PUB, "nope", {})
    except perrors.PusherBadAuth:
        return "PusherBadAuth (401)"
    raise AssertionError("a request signed with a wrong secret was accepted")


check("a request signed with a wrong secret is refused with 401", t_bad_auth)


def t_terminate():
    expect("u1a" in ready["signed_in"] and "u1b" in ready["signed_in"],
           "user 1 connections could not sign in (signed in: %s)" % ready["signed_in"])
    r = sdk.terminate_user_connections("1")
    expect(isinstance(r, dict), "terminate_user_connections returned %r" % (r,))
    for c in ("u1a", "u1b"):
        next_msg(lambda m, c=c: m.get("type") == "closed" and m["client"] == c, "%s to be disconnected" % c)
    deadline = time.time() + STEP_S
    while True:
        users = sorted(u.get("id") for u in sdk.users_info(PRES).get("users", []))
        if users == ["2"] or time.time() > deadline:
            break
        time.sleep(0.1)
    expect_eq(users, ["2"], "users after terminating user 1")
    drain()
    expect(not [m for m in seen if m.get("type") == "closed" and m["client"] not in ("u1a", "u1b")],
           "another connection was closed: %r" % [m for m in seen if m.get("type") == "closed"])
    info = sdk.channel_info(PRES, ["user_count", "subscription_count"])
    expect_eq((info.get("user_count"), info.get("subscription_count")), (1, 1), "user_count, subscription_count")


check("terminate_user_connections('1') (POST /users/1/terminate_connections, no /apps prefix) closes both "
      "connections of user 1 only", t_terminate)

finish()
