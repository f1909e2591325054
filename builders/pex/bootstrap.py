# The bootstrap of a PEX file written by sparkenv. It runs as __main__.py of
# the zip: it checks the interpreter against the PEX's constraints, unpacks
# the bundled distributions once into PEX_ROOT, puts them on sys.path and
# then behaves like the python command (-c, -m, a script, stdin) or runs the
# entry point.
#
# It must parse and run on every interpreter a user may point it at, so
# that a too-old python gets a clear message instead of a syntax error: no
# f-strings, no keyword-only arguments, nothing newer than Python 2.7 and
# 3.6 share.
from __future__ import print_function

import json
import os
import re
import shutil
import sys
import tempfile
import zipfile

_OPT_NOARG = "bBdEhiIOqsSuvVx"
_CLAUSE = re.compile(r"^(~=|==|!=|<=|>=|<|>)(\d+(?:\.\d+)*)(\.\*)?$")
_IMPL = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)")


def _prog():
    return os.path.basename(sys.argv[0] or "pex")


def _die(msg, code):
    sys.stderr.write("%s: %s\n" % (_prog(), msg))
    sys.stderr.flush()
    sys.exit(code)


def _impl():
    impl = getattr(sys, "implementation", None)
    if impl is not None:
        return impl.name.lower()
    import platform

    return platform.python_implementation().lower()


def _clause_ok(op, want, star, have):
    want = [int(x) for x in want.split(".")]
    have = list(have)
    if star:
        eq = have[: len(want)] == want
        if op == "==":
            return eq
        if op == "!=":
            return not eq
        return False
    n = max(len(want), len(have))
    a = have + [0] * (n - len(have))
    b = want + [0] * (n - len(want))
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    if op == "~=":
        prefix = want[:-1]
        return a >= b and have[: len(prefix)] == prefix
    return False


def _constraint_ok(spec, impl, have):
    s = spec.replace(" ", "")
    m = _IMPL.match(s)
    if m:
        if m.group(1).lower() != impl:
            return False
        s = s[m.end():]
    if not s:
        return True
    for clause in s.split(","):
        c = _CLAUSE.match(clause)
        if c is None or not _clause_ok(c.group(1), c.group(2), c.group(3), have):
            return False
    return True


def _check_interpreter(info):
    specs = info.get("interpreter_constraints") or []
    if not specs:
        return
    have = tuple(sys.version_info[:3])
    impl = _impl()
    for spec in specs:
        if _constraint_ok(spec, impl, have):
            return
    _die(
        "this PEX needs Python %s; %s is %s"
        % (" or ".join(specs), sys.executable or "this interpreter", ".".join(str(x) for x in have)),
        1,
    )


def _read_info(pex):
    if os.path.isdir(pex):
        with open(os.path.join(pex, "PEX-INFO")) as f:
            return json.load(f)
    zf = zipfile.ZipFile(pex)
    try:
        return json.loads(zf.read("PEX-INFO").decode("utf-8"))
    finally:
        zf.close()


def _makedirs(d):
    try:
        os.makedirs(d)
    except OSError:
        if not os.path.isdir(d):
            raise


def _usable(d):
    try:
        _makedirs(d)
    except OSError:
        return False
    return os.access(d, os.W_OK | os.X_OK)


def _roots():
    out = []
    r = os.environ.get("PEX_ROOT")
    if r:
        out.append(os.path.expanduser(r))
    else:
        home = os.path.expanduser("~")
        if home != "~":
            out.append(os.path.join(home, ".pex"))
    uid = getattr(os, "getuid", lambda: 0)()
    # YARN and Kubernetes executors often run with a HOME that does not
    # exist or cannot be written.
    out.append(os.path.join(tempfile.gettempdir(), "pex-root-%d" % uid))
    return out


def _extract(pex, parent, final):
    # Many executor processes may start the same PEX at the same moment:
    # each unpacks into its own directory and renames it into place; the
    # first rename wins and the others drop their copy. A crash leaves a
    # hidden temporary directory, never a half-filled final one.
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(final) + ".", suffix=".tmp", dir=parent)
    try:
        zf = zipfile.ZipFile(pex)
        try:
            for zi in zf.infolist():
                name = zi.filename
                if name in ("__main__.py", "PEX-INFO"):
                    continue
                parts = [p for p in name.split("/") if p]
                if name.startswith("/") or ".." in parts or "\\" in name or not parts:
                    raise IOError("PEX member %r is not a safe relative path" % name)
                dest = os.path.join(tmp, *parts)
                if name.endswith("/"):
                    _makedirs(dest)
                    continue
                _makedirs(os.path.dirname(dest))
                src = zf.open(zi)
                try:
                    with open(dest, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                finally:
                    src.close()
                if (zi.external_attr >> 16) & 0o111:
                    os.chmod(dest, 0o755)
        finally:
            zf.close()
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, final)
        except OSError:
            if not os.path.isdir(final):
                raise
            shutil.rmtree(tmp, True)
    except BaseException:
        shutil.rmtree(tmp, True)
        raise
    return final


def _install(pex, info):
    if os.path.isdir(pex):
        return pex
    h = info["pex_hash"]
    err = None
    for root in _roots():
        parent = os.path.join(root, "sparkenv")
        final = os.path.join(parent, h)
        if os.path.isdir(final):
            return final
        if not _usable(parent):
            continue
        try:
            return _extract(pex, parent, final)
        except (IOError, OSError) as e:
            err = e
    _die("cannot unpack %s into %s: %s" % (pex, " or ".join(_roots()), err or "no writable directory"), 1)


def _is_site_dir(p):
    tail = os.path.basename(os.path.normpath(p))
    return tail in ("site-packages", "dist-packages")


def _activate(root, info, path0):
    import site

    deps = [os.path.join(root, ".deps", d) for d in sorted(info.get("distributions") or {})]
    before = list(sys.path)
    for d in [root] + deps:
        site.addsitedir(d)
    added = [p for p in sys.path if p not in before]
    inherit = os.environ.get("PEX_INHERIT_PATH", info.get("inherit_path") or "false").lower()
    rest = []
    kept = []
    for p in before[1:]:
        if _is_site_dir(p):
            # The interpreter's own site-packages are left out unless asked
            # for, so that what runs is what was built.
            if inherit in ("fallback", "prefer", "true"):
                kept.append(p)
            continue
        rest.append(p)
    if inherit == "prefer":
        added = kept + added
    else:
        rest = rest + kept
    head = [] if path0 is None else [path0]
    sys.path[:] = head + added + rest


class _Usage(Exception):
    pass


def _parse(args):
    """Split a python command line into options, what to run and its
    arguments. Returns (opts, (kind, value), rest)."""
    opts = {"u": False, "B": False, "s": False, "W": [], "X": [], "h": False, "V": False}
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        if a == "-" or not a.startswith("-"):
            break
        if a.startswith("--"):
            if a == "--version":
                opts["V"] = True
                i += 1
                continue
            if a == "--help":
                opts["h"] = True
                i += 1
                continue
            if a.startswith("--check-hash-based-pycs="):
                i += 1
                continue
            if a == "--check-hash-based-pycs":
                i += 2
                continue
            raise _Usage("unknown option %s" % a)
        j = 1
        consumed = 1
        while j < len(a):
            ch = a[j]
            if ch in "cmWX":
                val = a[j + 1:]
                if not val:
                    if i + 1 >= len(args):
                        raise _Usage("Argument expected for the -%s option" % ch)
                    val = args[i + 1]
                    consumed = 2
                if ch in "cm":
                    return opts, (ch, val), args[i + consumed:]
                opts[ch].append(val)
                break
            if ch not in _OPT_NOARG:
                raise _Usage("unknown option -%s" % ch)
            if ch in opts:
                opts[ch] = True
            j += 1
        i += consumed
    rest = args[i:]
    if not rest:
        return opts, ("stdin", ""), []
    if rest[0] == "-":
        return opts, ("stdin", "-"), rest[1:]
    return opts, ("script", rest[0]), rest[1:]


def _apply(opts):
    if opts["V"]:
        print("Python %s" % sys.version.split()[0])
        sys.exit(0)
    if opts["h"]:
        print("usage: %s [option] ... [-c cmd | -m mod | file | -] [arg] ..." % _prog())
        sys.exit(0)
    if opts["B"]:
        sys.dont_write_bytecode = True
    if opts["s"]:
        import site

        user = getattr(site, "USER_SITE", None)
        sys.path[:] = [p for p in sys.path if p != user]
    for w in opts["W"]:
        sys.warnoptions.append(w)
        try:
            import warnings

            warnings._setoption(w)
        except Exception:
            pass
    xo = getattr(sys, "_xoptions", None)
    for x in opts["X"]:
        k, eq, v = x.partition("=")
        if xo is not None:
            xo[k] = v if eq else True
    if opts["u"]:
        os.environ["PYTHONUNBUFFERED"] = "1"
        _unbuffer()


def _unbuffer():
    for name in ("stdout", "stderr"):
        f = getattr(sys, name)
        try:
            f.flush()
            fd = f.fileno()
        except Exception:
            continue
        if sys.version_info[0] < 3:
            setattr(sys, name, os.fdopen(os.dup(fd), "w", 0))
            continue
        import io

        raw = io.FileIO(fd, "w", closefd=False)
        setattr(sys, name, io.TextIOWrapper(raw, encoding=f.encoding, errors=f.errors, write_through=True))


def _fresh_main():
    import types

    m = types.ModuleType("__main__")
    m.__dict__["__builtins__"] = sys.modules["__main__"].__dict__.get("__builtins__")
    sys.modules["__main__"] = m
    return m.__dict__


def _exec(source, filename):
    ns = _fresh_main()
    code = compile(source, filename, "exec")
    exec(code, ns)


def _report(run, *args):
    """Run, printing an uncaught exception as python would: without the
    bootstrap's own frames on top of the traceback."""
    try:
        run(*args)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException:
        import traceback

        etype, value, tb = sys.exc_info()
        here = _report.__code__.co_filename
        while tb is not None and tb.tb_frame.f_code.co_filename == here:
            tb = tb.tb_next
        sys.stdout.flush()
        traceback.print_exception(etype, value, tb)
        sys.stderr.flush()
        sys.exit(1)


def _run_interpreter(kind, value, rest):
    import runpy

    if kind == "c":
        sys.argv[:] = ["-c"] + rest
        _exec(value, "<string>")
    elif kind == "m":
        sys.argv[:] = ["-m"] + rest
        runpy.run_module(value, run_name="__main__", alter_sys=True)
    elif kind == "script":
        sys.argv[:] = [value] + rest
        runpy.run_path(value, run_name="__main__")
    elif value == "" and sys.stdin is not None and sys.stdin.isatty():
        import code

        sys.argv[:] = [""]
        code.interact(local=_fresh_main())
    else:
        sys.argv[:] = [value] + rest
        _exec(sys.stdin.read(), "<stdin>")


def _run_entry_point(ep):
    import runpy

    mod, colon, attr = ep.partition(":")
    mod = mod.strip()
    if not colon:
        runpy.run_module(mod, run_name="__main__", alter_sys=True)
        return
    __import__(mod)
    obj = sys.modules[mod]
    for part in attr.split("[")[0].strip().split("."):
        obj = getattr(obj, part)
    sys.exit(obj())


def _path0(kind, value):
    if kind == "m":
        return os.getcwd()
    if kind == "script":
        return os.path.dirname(os.path.realpath(value))
    return ""


def main():
    keep = sys.modules["__main__"]  # the bootstrap's own globals stay alive
    pex = os.path.dirname(os.path.abspath(__file__))
    info = _read_info(pex)
    _check_interpreter(info)
    args = sys.argv[1:]
    ep = info.get("entry_point") or ""
    mode = None
    if ep and os.environ.get("PEX_INTERPRETER", "") in ("", "0", "false"):
        # An entry point takes the arguments, except when the command line
        # is a python one that names code to run: Spark starts every
        # worker as `<pex> -m pyspark.daemon`.
        try:
            parsed = _parse(args)
            if parsed[1][0] in ("c", "m"):
                mode = parsed
        except _Usage:
            pass
        if mode is None:
            root = _install(pex, info)
            _activate(root, info, None)
            _report(_run_entry_point, ep)
            return keep
    if mode is None:
        try:
            mode = _parse(args)
        except _Usage as e:
            _die("%s\nusage: %s [option] ... [-c cmd | -m mod | file | -] [arg] ..." % (e, _prog()), 2)
    opts, (kind, value), rest = mode
    root = _install(pex, info)
    _activate(root, info, _path0(kind, value))
    _apply(opts)
    _report(_run_interpreter, kind, value, rest)
    return keep


if __name__ == "__main__":
    main()
