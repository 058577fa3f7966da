#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Integration test of the CPython process registry, stack walker and symbolizer.

For each interpreter: start app.py (threads blocked in send()/sendall() on full sockets),
read the stacks CPython itself reports, run walk_check on the live process and compare
function, file and line frame by frame.  Requires root (process_vm_readv, map_files).

  run.py [--walk-check BIN] [--root LABEL SUITE EXE]... [--only LABEL]...

Without --walk-check, walk_check.c is compiled with cc against user/{pyproc,pysym,pywalk,log}.c.
The Debian roots of tests/pythons/provision.sh (bullseye 3.9, trixie 3.13, sid 3.14, under
$WSAUDIT_ROOTS) are used when they exist; --root adds another interpreter from such a root.
Interpreters that are not installed are reported as skipped with the reason, never as passed.
Exit status 0 only when every frame of every interpreter that ran matched.
"""
import argparse
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
PYENV = "/root/.pyenv/versions"
ROOTS = os.environ.get("WSAUDIT_ROOTS", "/var/cache/wsaudit/roots")
RUN_IN_ROOT = os.path.join(ROOT, "tests", "pythons", "run-in-root.sh")
DEBIAN_ROOTS = [("debian-bullseye", "bullseye", "/usr/bin/python3.9"),
                ("debian-trixie", "trixie", "/usr/bin/python3.13"),
                ("debian-sid", "sid", "/usr/bin/python3.14")]
SOURCES = ["user/pyproc.c", "user/pysym.c", "user/pywalk.c", "user/log.c"]


def build_walk_check(outdir):
    out = os.path.join(outdir, "walk_check")
    cmd = ["cc", "-std=gnu11", "-O1", "-g", "-fsanitize=address,undefined",
           "-fno-sanitize-recover=all", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
           "-D_GNU_SOURCE", "-I" + os.path.join(ROOT, "include"), "-I" + os.path.join(ROOT, "user"),
           os.path.join(HERE, "walk_check.c")] + [os.path.join(ROOT, s) for s in SOURCES] + \
          ["-lelf", "-o", out]
    subprocess.run(cmd, check=True)
    return out


def interpreters(args):
    found = []
    for minor in ("3.9", "3.10", "3.11", "3.12", "3.13"):
        paths = sorted(glob.glob(os.path.join(PYENV, minor + ".*", "bin", "python" + minor)))
        if paths:
            ver = paths[-1].split("/")[-3]
            found.append(("pyenv-" + ver, None, paths[-1], None))
        else:
            found.append(("pyenv-" + minor, None, None, "no pyenv build under " + PYENV))
    deb = "/usr/bin/python3.11"
    found.append(("debian-3.11", None, deb if os.path.exists(deb) else None,
                  None if os.path.exists(deb) else deb + " missing"))
    for label, suite, exe in DEBIAN_ROOTS + [tuple(r) for r in args.root or []]:
        root = os.path.join(ROOTS, suite)
        if not os.path.exists(os.path.join(root, ".wsaudit-root")):
            found.append((label, None, None, "root %s not provisioned "
                          "(tests/pythons/provision.sh)" % root))
        elif not os.path.exists(os.path.join(root, exe.lstrip("/"))):
            found.append((label, None, None, "%s not found in %s" % (exe, root)))
        else:
            found.append((label, suite, exe, None))
    if args.only:
        found = [f for f in found if f[0] in args.only]
    return found


def start_app(root, exe, work, pidns=False):
    """Start app.py; returns (process, dump path as seen from here)."""
    if pidns:
        # A container-like PID namespace: the app is PID 1 inside, another PID here.
        inside = None
        dump = os.path.join(work, "dump.json")
        cmd = ["unshare", "--pid", "--fork", "--mount-proc", exe,
               os.path.join(HERE, "app.py"), dump]
    elif root:
        # The app runs in the root's own mount namespace, from a bound copy.
        inside = tempfile.mkdtemp(prefix="pyattr-root-")
        shutil.copytree(HERE, os.path.join(inside, "app"),
                        ignore=shutil.ignore_patterns("*.c", "run.py", "__pycache__"))
        cmd = [RUN_IN_ROOT, "--bind", inside + ":/pyattr", root, exe, "/pyattr/app/app.py",
               "/pyattr/dump.json"]
        dump = os.path.join(inside, "dump.json")
    else:
        inside = None
        dump = os.path.join(work, "dump.json")
        cmd = [exe, os.path.join(HERE, "app.py"), dump]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            text=True, start_new_session=True)
    return proc, dump, inside


def parse_walk(text):
    threads = {}
    cur = None
    errors = []
    header = None
    for line in text.splitlines():
        f = line.split("\t")
        if f[0] == "python":
            header = f[1:]
        elif f[0] == "validate":
            header = (header or []) + ["validated"]
        elif f[0] == "thread":
            tid = int(f[1])
            if tid in threads:  # second (cached) pass
                cur = threads[tid]["again"] = []
            else:
                threads[tid] = {"frames": [], "skipped": int(f[4])}
                cur = threads[tid]["frames"]
        elif f[0] == "frame":
            cur.append({"function": f[1], "name": f[2], "file": f[3], "line": int(f[4]),
                        "cls": None if f[5] == "-" else f[5]})
        elif f[0] == "error":
            errors.append(line)
    return header, threads, errors


def expected_function(t, minor):
    """What the walker must report as the function: co_qualname, or Class.name on <= 3.10."""
    if minor >= 11:
        return t["qualname"]
    if t.get("cell"):
        # 3.9/3.10 leave a receiver captured by a closure out of its slot: name only.
        return t["name"]
    return t["cls"] + "." + t["name"] if t["cls"] else t["name"]


def expected_cls(t, minor):
    if minor <= 10 and t.get("cell"):
        return None
    return t["cls"]


def host_pid(proc, pidns):
    """The app's PID as seen from here: with --pid --fork it is unshare's only child."""
    if not pidns:
        return proc.pid
    with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
        return int(f.read().split()[0])


def check_one(label, root, exe, walk_check, work, wrap=(), pidns=False):
    proc, dump, inside = start_app(root, exe, work, pidns)
    try:
        deadline = time.time() + 30
        line = proc.stdout.readline().strip()
        if line != "READY" or time.time() > deadline:
            return None, "app did not get ready (%r): %s" % (line, proc.stderr.read()[-500:])
        with open(dump) as f:
            truth = json.load(f)
        minor = int(truth["version"].split(".")[1])
        idents = [str(t["ident"]) for t in truth["threads"]]
        pid = host_pid(proc, pidns)
        res = subprocess.run(list(wrap) + [walk_check, str(pid)] + idents,
                             capture_output=True, text=True)
        header, walked, errors = parse_walk(res.stdout)
        if res.returncode or errors:
            print(res.stdout + res.stderr)
        matched = total = 0
        details = []
        for t in truth["threads"]:
            w = walked.get(t["ident"], {"frames": []})
            if w.get("again") is not None and w["again"] != w["frames"]:
                details.append("%s: cached pass differs from the first" % t["name"])
            n = max(len(t["frames"]), len(w["frames"]))
            total += n
            for i in range(n):
                a = t["frames"][i] if i < len(t["frames"]) else None
                b = w["frames"][i] if i < len(w["frames"]) else None
                # The receiver's class comes from pysym_method_class on every version.
                ok = a is not None and b is not None and \
                    a["name"] == b["name"] and a["file"] == b["file"] and \
                    (a["line"] or 0) == b["line"] and expected_cls(a, minor) == b["cls"] and \
                    expected_function(a, minor) == b["function"]
                if ok:
                    matched += 1
                else:
                    details.append("%s #%d: python %s, walker %s" % (t["name"], i, a, b))
        # native_id is namespace-local under a PID namespace: gdb's LWPs would not match.
        fsb = None if pidns else fsbase_check(pid, truth["threads"])
        if fsb and fsb[0] != fsb[1]:
            details.append("fs_base differs from thread_id on %d threads" % (fsb[1] - fsb[0]))
        return {"version": truth["version"], "header": header, "matched": matched, "fsb": fsb,
                "total": total, "threads": len(truth["threads"]), "details": details,
                "rc": res.returncode, "errors": errors}, None
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        if inside:
            shutil.rmtree(inside, ignore_errors=True)


def fsbase_check(pid, threads):
    """The BPF walk matches task->thread.fsbase against tstate->thread_id: check it with gdb.

    Returns (matched, total) or None without gdb.  gdb stops the threads briefly; their
    blocked sendto restarts transparently.
    """
    if not shutil.which("gdb"):
        return None
    res = subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx",
                          "-ex", "thread apply all p/x $fs_base"],
                         capture_output=True, text=True, timeout=60)
    fs = {}
    lwp = None
    for line in res.stdout.splitlines():
        m = re.match(r"^Thread \d+ \(.*LWP (\d+)", line)
        if m:
            lwp = int(m.group(1))
            continue
        m = re.match(r"^\$\d+ = (0x[0-9a-f]+)", line)
        if m and lwp is not None:
            fs[lwp] = int(m.group(1), 16)
            lwp = None
    matched = sum(1 for t in threads if fs.get(t["native_id"]) == t["ident"])
    return matched, len(threads)


def check_unsupported(ver, walk_check):
    """An interpreter outside 3.9-3.14 must be refused with its version and path."""
    paths = sorted(glob.glob(os.path.join(PYENV, ver + ".*", "bin", "python" + ver)))
    if not paths:
        return None
    proc = subprocess.Popen([paths[-1], "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.5)
        res = subprocess.run([walk_check, str(proc.pid), "1"], capture_output=True, text=True)
    finally:
        proc.kill()
        proc.wait()
    out = res.stdout.strip()
    ok = res.returncode == 1 and out.startswith("error\t0\tnot python:") and \
        ("Python %s in " % ver) in out and "not supported" in out
    return ok, out.split("\t")[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--walk-check")
    ap.add_argument("--root", nargs=3, action="append", metavar=("LABEL", "SUITE", "EXE"))
    ap.add_argument("--only", action="append")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("pyattr: SKIP: needs root (process_vm_readv on other processes, map_files)")
        return 77
    work = tempfile.mkdtemp(prefix="pyattr-")
    try:
        walk_check = args.walk_check or build_walk_check(work)
        failed = skipped = ran = 0
        all_m = all_t = 0
        for label, root, exe, why in interpreters(args):
            if not exe:
                print("pyattr: %-14s SKIPPED: %s" % (label, why))
                skipped += 1
                continue
            r, err = check_one(label, root, exe, walk_check, work)
            if err:
                print("pyattr: %-14s FAILED: %s" % (label, err))
                failed += 1
                continue
            ran += 1
            all_m += r["matched"]
            all_t += r["total"]
            ok = r["matched"] == r["total"] and not r["rc"] and not r["errors"] and \
                not r["details"] and "validated" in (r["header"] or [])
            print("pyattr: %-15s %-8s %d/%d frames matched, %d threads, fs_base==thread_id %s,"
                  " %s  [%s]" % (
                      label, r["version"], r["matched"], r["total"], r["threads"],
                      "%d/%d" % r["fsb"] if r["fsb"] else "not checked (no gdb)",
                      "ok" if ok else "FAILED", " ".join(r["header"] or ["no header"])))
            for d in r["details"]:
                print("    " + d)
            if not ok:
                failed += 1
        # Without CAP_SYS_ADMIN/CAP_CHECKPOINT_RESTORE map_files cannot be opened: the
        # registry must fall back to /proc/PID/root, checked by inode.
        capsh = shutil.which("capsh")
        cands = [i for i in interpreters(args) if i[2] and not i[1]]
        if capsh and cands:
            label, root, exe, _ = cands[0]
            wrap = [capsh, "--drop=cap_sys_admin,cap_checkpoint_restore", "--", "-c",
                    'exec "$0" "$@"']
            r, err = check_one(label, root, exe, walk_check, work, wrap=wrap)
            ok = not err and r["matched"] == r["total"] and not r["rc"] and not r["details"]
            print("pyattr: %-15s without CAP_SYS_ADMIN: %s" % (
                label, err or "%d/%d frames matched, %s" % (
                    r["matched"], r["total"], "ok" if ok else "FAILED")))
            if not ok:
                failed += 1
        else:
            print("pyattr: capability-dropped run SKIPPED: no capsh")
        # In a PID namespace the walk must work from the host's PID, unchanged.
        if shutil.which("unshare") and cands:
            label, root, exe, _ = cands[-1]
            r, err = check_one(label, root, exe, walk_check, work, pidns=True)
            ok = not err and r["matched"] == r["total"] and not r["rc"] and not r["details"]
            print("pyattr: %-15s in a PID namespace: %s" % (
                label, err or "%d/%d frames matched, %s" % (
                    r["matched"], r["total"], "ok" if ok else "FAILED")))
            if not ok:
                failed += 1
        else:
            print("pyattr: PID-namespace run SKIPPED: no unshare")
        for ver in ("2.7", "3.7", "3.8"):
            r = check_unsupported(ver, walk_check)
            if r is None:
                print("pyattr: %-14s SKIPPED: no pyenv build" % ("pyenv-" + ver))
                continue
            print("pyattr: %-14s %s: %s" % ("pyenv-" + ver, "ok" if r[0] else "FAILED", r[1]))
            if not r[0]:
                failed += 1
        acc = 100.0 * all_m / all_t if all_t else 0.0
        print("pyattr: %d interpreters ran, %d skipped, %d failed; %d/%d frames (%.2f%%)" % (
            ran, skipped, failed, all_m, all_t, acc))
        return 1 if failed or not ran else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
