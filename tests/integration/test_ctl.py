#!/usr/bin/python3
"""`gatehouse ctl` against a real daemon's admin API.

One daemon for every test here, with a policy file and local users: an
admin, an auditor, and two callers in one group. The admin logs in with
`ctl login --password-stdin` (password and TOTP code on stdin) and a
token file in a temporary folder; then status, users, policy get /
validate / put (a valid file, and an invalid one whose error names the
place), calls (a live call listed and ended), role limits, usage errors,
and logout (after which the token is dead on the server too, and the CLI
says to log in).

Every ctl run is checked for sanitizer reports, and for the token showing
up in its output. Traffic goes to 127.0.0.1 only (TESTING.md).
"""

import asyncio
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402
import sigclient as sc  # noqa: E402

ARGS = None


class S:
    g = None
    users = {}
    tmp = None           # temporary folder for token and policy files
    policy_path = None


ALL_MEDIA = ["audio", "video", "data", "screen"]
TEAM_RULE = {"name": "team-calls", "from": "group:team", "to": "group:team",
             "media": ALL_MEDIA, "action": "allow"}


def url(g=None):
    return "http://127.0.0.1:%d" % (g or S.g).admin_port


def token_file(who="admin"):
    return os.path.join(S.tmp, "token-%s" % who)


def saved_token(who="admin"):
    with open(token_file(who)) as f:
        lines = f.read().splitlines()
    assert len(lines) == 3, "token file has %d lines, expected url, user, token" % len(lines)
    return lines[2]


def ctl(*args, who="admin", stdin=None, with_url=True, expect=None, timeout=60):
    """Runs `gatehouse ctl [--url URL] ARGS` with GATEHOUSE_TOKEN_FILE set
    for `who`. Returns (exit code, stdout, stderr); asserts the exit code
    when expect is given, and always that no sanitizer reported and no
    saved token leaked into the output."""
    env = dict(os.environ)
    env["GATEHOUSE_TOKEN_FILE"] = token_file(who)
    cmd = [ARGS.gatehouse, "ctl"] + (["--url", url()] if with_url else []) + list(args)
    p = subprocess.run(cmd, input=(stdin or "").encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    what = "ctl %s: exit %d\n--- stdout\n%s--- stderr\n%s" % (" ".join(args), p.returncode, out, err)
    bad = [m for m in gh.SANITIZER_MARKERS if m in err]
    assert not bad, "sanitizer report in %s" % what
    if os.path.exists(token_file(who)):
        tok = saved_token(who)
        assert tok not in out and tok not in err, "the token was printed by %s" % what
    if expect is not None:
        assert p.returncode == expect, "expected exit %d from %s" % (expect, what)
    return p.returncode, out, err


def api_get(path, token):
    """GET on the admin API with a bearer token, bypassing the CLI.
    Returns (status, parsed body)."""
    req = urllib.request.Request(url() + path, headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def login(who, user):
    """`ctl login USER --password-stdin` with the password and a fresh code."""
    return ctl("login", user.name, "--password-stdin", who=who,
               stdin="%s\n%s\n" % (user.password, user.next_totp()))


def table(out):
    """Rows of a ctl table as lists of cells (header first)."""
    return [line.split() for line in out.splitlines() if line.strip()]


def shared():
    if S.g is not None:
        return S.g
    S.tmp = tempfile.mkdtemp(prefix="gatehouse-ctl-")
    g = gh.Gatehouse(ARGS.gatehouse)
    S.policy_path = os.path.join(g.workdir, "policy.json")
    g.config["policy"] = {"file": S.policy_path}
    sc.write_policy(S.policy_path, [TEAM_RULE], {"team": ["alice", "bob"]})
    sc.write_config(g)
    for name, groups in (("admin", ["admin"]), ("watcher", ["auditor"]),
                         ("alice", ["team"]), ("bob", ["team"])):
        S.users[name] = sc.create_user(g, name, "pw-%s-0123456789" % name, groups)
    g.__enter__()
    S.g = g
    return g


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


# ------------------------------------------------------------------ tests

def test_login_writes_private_token_file():
    shared()
    rc, out, err = login("admin", S.users["admin"])
    assert rc == 0, "login failed: %s %s" % (out, err)
    assert out.strip() == "logged in as admin (admin)", out
    st = os.stat(token_file())
    assert stat.S_IMODE(st.st_mode) == 0o600, "token file mode %o" % stat.S_IMODE(st.st_mode)
    tok = saved_token()
    assert tok not in out and tok not in err
    # The file holds the real token: the API takes it.
    status, body = api_get("/api/status", tok)
    assert status == 200, (status, body)
    # No temporary file left next to it.
    assert sorted(os.listdir(S.tmp)) == ["token-admin"], os.listdir(S.tmp)


def test_login_failure():
    shared()
    u = S.users["watcher"]
    rc, out, err = ctl("login", "watcher", "--password-stdin", who="nobody",
                       stdin="wrong-password-123\n%s\n" % sc.wrong_totp(u.secret))
    assert rc == 1, (rc, out, err)
    assert "(401)" in err and err.startswith("gatehouse: "), err
    assert not os.path.exists(token_file("nobody"))
    # Only the user can be named on the command line with --password-stdin.
    ctl("login", "--password-stdin", who="nobody", stdin="x\n", expect=2)


def test_status():
    shared()
    rc, out, err = ctl("status", expect=0)
    fields = dict(line.split(": ", 1) for line in out.splitlines())
    for k in ("version", "uptime_s", "sessions", "calls", "allocations", "policy_file"):
        assert k in fields, "no %s in status output:\n%s" % (k, out)
    assert fields["policy_file"] == "yes", out
    # The URL of the last login is the default.
    rc, out2, err = ctl("status", with_url=False, expect=0)
    assert "version: " in out2, out2
    rc, out3, err = ctl("--json", "status", expect=0)
    assert "uptime_s" in json.loads(out3)
    rc, out4, err = ctl("health", who="nobody", expect=0)
    assert out4.strip() == "ok", out4


def test_users():
    shared()
    rc, out, err = ctl("users", expect=0)
    rows = table(out)
    assert rows[0] == ["NAME", "GROUPS", "TOTP", "DISABLED", "FAILURES", "LOCKED-UNTIL"], rows
    byname = {r[0]: r for r in rows[1:]}
    assert set(byname) >= {"admin", "watcher", "alice", "bob"}, out
    assert byname["admin"][1:4] == ["admin", "yes", "no"], byname["admin"]
    rc, out, err = ctl("users", "--json", expect=0)
    assert {u["name"] for u in json.loads(out)["users"]} >= {"admin", "alice"}
    # Adding a user hands out credentials: the admin's fresh code too.
    rc, out, err = ctl("users", "add", "carol", "--group", "team", "--password-stdin",
                       stdin="pw-carol-0123456789\n%s\n" % sc.wrong_totp(S.users["admin"].secret))
    assert rc == 1 and "actor_totp" in err and "(403)" in err, "add with a wrong code: %s" % err
    rc, out, err = ctl("users", "add", "carol", "--group", "team", "--password-stdin",
                       stdin="pw-carol-0123456789\n%s\n" % S.users["admin"].next_totp(), expect=0)
    assert out.strip() == "user carol added", out
    rc, out, err = ctl("users", "--json", expect=0)
    carol = [u for u in json.loads(out)["users"] if u["name"] == "carol"]
    assert carol and carol[0]["groups"] == ["team"], carol


def test_policy_get_validate_put():
    shared()
    rc, out, err = ctl("policy", "get", expect=0)
    with open(S.policy_path) as f:
        assert json.loads(out) == json.load(f), out

    good = os.path.join(S.tmp, "good.json")
    sc.write_policy(good, [TEAM_RULE, {"name": "no-screens", "from": "*", "to": "*",
                                       "media": ["screen"], "action": "deny"}],
                    {"team": ["alice", "bob"]})
    rc, out, err = ctl("policy", "validate", good, expect=0)
    assert "ok, 2 rules" in out, out
    rc, out, err = ctl("policy", "put", good, expect=0)
    with open(S.policy_path) as f, open(good) as g2:
        assert json.load(f) == json.load(g2), "the policy file was not replaced"
    rc, out, err = ctl("policy", "get", expect=0)
    assert [r["name"] for r in json.loads(out)["rules"]] == ["team-calls", "no-screens"], out

    bad = os.path.join(S.tmp, "bad.json")
    sc.write_policy(bad, [TEAM_RULE, {"name": "typo", "from": "*", "to": "*",
                                      "media": ["vidoe"], "action": "deny"}],
                    {"team": ["alice", "bob"]})
    with open(S.policy_path) as f:
        before = f.read()
    for verb in ("validate", "put"):
        rc, out, err = ctl("policy", verb, bad, expect=1)
        assert "rules[1].media[0]" in err and "(400)" in err, err
        assert err.startswith("gatehouse: "), err
    with open(S.policy_path) as f:
        assert f.read() == before, "an invalid policy changed the file"

    # A group that rules name but "groups" does not list is valid, with a
    # warning that names it.
    loose = os.path.join(S.tmp, "loose.json")
    sc.write_policy(loose, [TEAM_RULE, {"name": "no-contractors", "from": "group:contractors",
                                        "to": "*", "media": ["screen"], "action": "deny"}],
                    {"team": ["alice", "bob"]})
    rc, out, err = ctl("policy", "validate", loose, expect=0)
    assert "ok, 2 rules" in out, out
    assert re.search(r'warning: group "contractors" is named by rules but not listed', err), err
    # Not JSON at all: the error gives line and column.
    syntax = os.path.join(S.tmp, "syntax.json")
    with open(syntax, "w") as f:
        f.write('{"default": "deny",\n "rules": [}\n')
    rc, out, err = ctl("policy", "put", syntax, expect=1)
    assert "2:" in err and "(400)" in err, err
    # A file that is not there is a usage error, and nothing is sent.
    ctl("policy", "put", os.path.join(S.tmp, "missing.json"), expect=2)


def test_calls_list_and_end():
    g = shared()

    async def go():
        a = await sc.logged_in(g, S.users["alice"], "alice")
        b = await sc.logged_in(g, S.users["bob"], "bob")
        try:
            r = await a.request({"type": "call", "to": "bob", "media": ["audio"]})
            assert r.get("type") == "call.ok", r
            cid = r["call"]
            await b.wait_for("incoming", call=cid)
            loop = asyncio.get_running_loop()
            rc, out, err = await loop.run_in_executor(None, lambda: ctl("calls", expect=0))
            rows = table(out)
            assert rows[0][:3] == ["CALL", "CALLER", "CALLEE"], rows
            assert [cid, "alice", "bob", "audio", "ringing"] == rows[1][:5], out
            rc, out, err = await loop.run_in_executor(
                None, lambda: ctl("calls", "end", cid, expect=0))
            assert "ended" in out, out
            m = await a.wait_for("hangup", call=cid)
            assert m.get("reason") == "admin", m
            rc, out, err = await loop.run_in_executor(None, lambda: ctl("calls", expect=0))
            assert len(table(out)) == 1, "the call is still listed:\n" + out
            rc, out, err = await loop.run_in_executor(
                None, lambda: ctl("calls", "end", cid, expect=1))
            assert "(404)" in err, err
            rc, out, err = await loop.run_in_executor(None, lambda: ctl("sessions", expect=0))
            users = [r[1] for r in table(out)[1:]]
            assert "alice" in users and "bob" in users, out
        finally:
            await a.close()
            await b.close()

    run(go())


def test_roles_and_usage_errors():
    shared()
    rc, out, err = login("auditor", S.users["watcher"])
    assert rc == 0 and "(auditor)" in out, (out, err)
    ctl("status", who="auditor", expect=0)
    good = os.path.join(S.tmp, "good.json")
    rc, out, err = ctl("policy", "put", good, who="auditor", expect=1)
    assert "(403)" in err, err
    rc, out, err = ctl("users", "unlock", "alice", who="auditor", expect=1)
    assert "(403)" in err, err

    # The token goes only to the server that issued it.
    rc, out, err = ctl("--url", "http://127.0.0.1:1", "status", with_url=False, expect=1)
    assert "saved token is for" in err, err

    for args in (["users", "add"], ["bogus"], ["status", "--totp"], ["sessions", "x"],
                 ["users", "disable", ".."], ["--url", "ftp://127.0.0.1/", "status"],
                 ["--url", "http://192.0.2.1:9443", "health"],
                 ["audit", "--limit", "ten"]):
        rc, out, err = ctl(*args, with_url=False, expect=2)
        assert err.startswith("gatehouse: "), (args, err)


def test_audit():
    shared()
    rc, out, err = ctl("audit", "--event", "admin.policy.replace", expect=0)
    rows = table(out)
    assert rows[0] == ["TIME", "EVENT", "OUTCOME", "ACTOR", "TARGET", "DETAIL"], rows
    outcomes = [r[2] for r in rows[1:]]
    assert "success" in outcomes and "failed" in outcomes, out
    rc, out, err = ctl("audit", "--user", "admin", "--limit", "5", "--json", expect=0)
    events = json.loads(out)["events"]
    assert 0 < len(events) <= 5 and all("event" in e for e in events), out


def test_zz_logout():
    shared()
    tok = saved_token()
    rc, out, err = ctl("logout", expect=0)
    assert not os.path.exists(token_file()), "the token file is still there"
    status, body = api_get("/api/status", tok)
    assert status == 401, "the token still works after logout: %s %s" % (status, body)
    rc, out, err = ctl("status", expect=1)
    assert "log in" in err, err
    ctl("logout", "--url", url(), with_url=False, expect=0)  # again: nothing to do


def test_zzz_daemon_exits_cleanly():
    if S.g is None:
        return
    g, S.g = S.g, None
    g.__exit__(None, None, None)  # raises on a non-zero exit or a sanitizer report
    shutil.rmtree(S.tmp, ignore_errors=True)


if __name__ == "__main__":
    ARGS = gh.main_args()
    try:
        gh.run_tests([
            test_login_writes_private_token_file,
            test_login_failure,
            test_status,
            test_users,
            test_policy_get_validate_put,
            test_calls_list_and_end,
            test_roles_and_usage_errors,
            test_audit,
            test_zz_logout,
            test_zzz_daemon_exits_cleanly,
        ])
    finally:
        if S.g is not None:
            S.g.__exit__(None, None, None)
