"""Run a student's notebook in a bubblewrap sandbox and decide, outside it, what may be trusted.

The trusted side (this module, in the grader's process) never executes student code. It
1. instruments the notebook nbgrader has sanitised (locked test cells restored): a probe cell
   first, after each run of test cells one cell holding a probe and a canary (a test the
   grader wrote that must fail), and a probe at the end;
2. runs it with tools/sandbox_run.py inside `bwrap` (a private copy of the notebook only, no
   network, read-only system and venv, no home, solutions or gradebook; rlimits on memory, CPU,
   processes and file size; a wall-clock limit; every process dies with the sandbox);
3. reads back only the outputs, attaches them to its own copy of the cells, strips results a
   test cell did not compute (nbgrader's `execute_result` partial credit), and checks canaries,
   probes and the submission's source (static checks). Whatever it finds is a "flag": the
   submission is listed "flagged for review: reason" and never silently scored.

``SandboxExecute`` plugs this into nbgrader's autograde in place of its Execute preprocessor.
See docs/INSTRUCTORS.md for the threat model.
"""
from __future__ import annotations

import ast
import copy
import json
import os
import pwd
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().parent / "sandbox_run.py"
GRADER = "grader-"  # ids of the cells the grader inserts
INSIDE = "/sandbox"  # the sandbox's working folder (its private copy)


@dataclass
class Limits:
    """Per-submission limits (docs/INSTRUCTORS.md, "Limits"); grade.py exposes each as an option."""
    cell_timeout: int = 120          # s per cell (nbgrader's Execute.timeout)
    wall_timeout: int = 1800         # s for the whole notebook, kernel start included
    memory_mb: int = 6144            # address space per process (RLIMIT_AS)
    cpu_s: int = 1800                # CPU seconds per process (RLIMIT_CPU)
    processes: int = 64              # processes and threads of the sandbox's user (RLIMIT_NPROC)
    file_size_mb: int = 256          # largest file a submission may write (RLIMIT_FSIZE)
    max_output_kb: int = 2048        # output kept per cell; the rest is dropped with a note
    max_notebook_mb: int = 64        # largest executed notebook read back
    max_cells: int = 400             # cells in a submission (an appended 10,000-cell loop is refused)

    @classmethod
    def from_dict(cls, values: dict) -> "Limits":
        names = {f.name for f in fields(cls)}
        return cls(**{k: int(v) for k, v in values.items() if k in names})


class SandboxError(RuntimeError):
    """The notebook could not be run to the end in the sandbox (reason in the message)."""


def available() -> str | None:
    """None when bubblewrap works here, else why not (and how to fix it)."""
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install -y bubblewrap)"
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"bubblewrap cannot create namespaces here: {probe.stderr.strip()[:300]}"
    return None


# --------------------------------------------------------------------------------------------
# The sandbox itself
# --------------------------------------------------------------------------------------------

def _sandbox_uid() -> int | None:
    """When the grader runs as root, the sandbox runs as an unused uid (so RLIMIT_NPROC holds and
    no file of root's is writable); a per-process uid keeps parallel workers apart."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    uid = 61000 + os.getpid() % 4000
    try:
        pwd.getpwuid(uid)
        return None  # taken by a real account: don't borrow it
    except KeyError:
        return uid


def _ro_binds() -> list[str]:
    """What the sandbox may read: the system, Python, the venv, the course package and data."""
    args: list[str] = []
    binds = [Path("/usr")]
    prefixes = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent.parent}
    binds += sorted(p for p in prefixes if not str(p).startswith("/usr/"))
    binds.append(ROOT / "bdl_course")  # the editable install's package, never solutions/
    if (ROOT / "data").is_dir():
        # public data and lesson 07's pinned HMC draws (no answers there); pyproject.toml is what
        # tells bdl_course.data.default_data_dir that it runs from a checkout with that folder
        binds += [ROOT / "data", ROOT / "pyproject.toml"]
    data = os.environ.get("BDL_COURSE_DATA")
    if data and Path(data).is_dir():
        binds.append(Path(data).resolve())
    made: set[str] = set()
    for path in [*binds, Path("/grader/x")]:
        # bwrap (as root) creates missing parents 0700: make them 0755, or the uid cannot pass
        for parent in reversed(path.parents):
            if str(parent) != "/" and str(parent) not in made:
                made.add(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
        if path.name != "x":
            args += ["--ro-bind", str(path), str(path)]
    for link in ("bin", "lib", "lib64", "sbin"):
        target = Path("/") / link
        if target.is_symlink():
            args += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            args += ["--ro-bind", str(target), str(target)]
    for etc in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "fonts", "mime.types"):
        if (Path("/etc") / etc).exists():
            args += ["--ro-bind", f"/etc/{etc}", f"/etc/{etc}"]
    return args


def _limits_preexec(limits: Limits, uid: int | None):
    nproc = limits.processes
    if uid is None:  # the grader's own user: its processes count too
        nproc += len([p for p in os.listdir("/proc") if p.isdigit()])

    def apply():
        os.setsid()
        for res, value in [(resource.RLIMIT_AS, limits.memory_mb * 2**20),
                           (resource.RLIMIT_CPU, limits.cpu_s),
                           (resource.RLIMIT_FSIZE, limits.file_size_mb * 2**20),
                           (resource.RLIMIT_NPROC, nproc),
                           (resource.RLIMIT_CORE, 0),
                           (resource.RLIMIT_NOFILE, 1024)]:
            try:
                resource.setrlimit(res, (value, value))
            except (ValueError, OSError):
                pass
    return apply


def bwrap_command(scratch: Path, limits: Limits, uid: int | None) -> list[str]:
    env = {"HOME": f"{INSIDE}/home", "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "IPYTHONDIR": f"{INSIDE}/home/.ipython", "MPLCONFIGDIR": f"{INSIDE}/home/.mpl",
           "JUPYTER_RUNTIME_DIR": f"{INSIDE}/home/.jupyter/runtime",
           "JUPYTER_CONFIG_DIR": f"{INSIDE}/home/.jupyter", "JUPYTER_DATA_DIR": f"{INSIDE}/home/.jupyter/data",
           "JUPYTER_PLATFORM_DIRS": "1", "PYTHONSAFEPATH": "1", "PYTHONNOUSERSITE": "1",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "LANG": "C.UTF-8",
           # progress bars nobody watches (make course runs without them too): their widget
           # messages cost lesson 03 half a second, and feedback would show them frozen at 0%
           "TQDM_DISABLE": "1"}
    if os.environ.get("BDL_COURSE_DATA"):
        env["BDL_COURSE_DATA"] = str(Path(os.environ["BDL_COURSE_DATA"]).resolve())
    if uid is not None:
        # root: bwrap builds the sandbox with root's privileges (it can read the Python under
        # /root), then setpriv drops to the unused uid, which clears every capability
        cmd = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
               "--unshare-cgroup-try", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    else:
        cmd, drop = ["bwrap", "--unshare-all"], []
    cmd += ["--die-with-parent", "--new-session", "--clearenv",
            "--hostname", "sandbox", "--proc", "/proc", "--dev", "/dev",
            # world-writable like the real ones: the sandbox's uid needs /dev/shm for the
            # semaphores of joblib and multiprocessing (without it scikit-learn's n_jobs=-1
            # silently ran serial, lesson 05 2.5 s slower than on the student's machine)
            "--perms", "1777", "--tmpfs", "/tmp", "--perms", "1777", "--tmpfs", "/dev/shm",
            *_ro_binds(), "--ro-bind", str(RUNNER), "/grader/sandbox_run.py",
            "--bind", str(scratch), INSIDE, "--chdir", INSIDE]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    cmd += [*drop, sys.executable, "-I", "/grader/sandbox_run.py", f"{INSIDE}/submission.ipynb",
            f"{INSIDE}/executed.ipynb", f"--cell-timeout={limits.cell_timeout}",
            f"--max-output={limits.max_output_kb * 1024}"]
    return cmd


@dataclass
class RunResult:
    executed: dict | None
    seconds: float
    log: str


def _seed_font_cache(mplconfigdir: Path) -> None:
    """A copy of this machine's matplotlib font list: a student's kernel has one, and without it
    every sandbox rebuilt it (a tenth of a second, and fc-list's error reached stderr)."""
    try:
        import matplotlib
        found = sorted(Path(matplotlib.get_cachedir()).glob("fontlist-v*.json"))
    except Exception:  # noqa: BLE001  (no cache here: matplotlib builds one in the sandbox)
        found = []
    if found:
        mplconfigdir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found[-1], mplconfigdir / found[-1].name)


FIGURES_OFF = """\
# written by the grader: figures are shown (and closed) but not drawn. The lessons' plots come
# from the lessons' own code; drawing them for every submission cost lesson 01 0.64 s of its
# 4.4 s. tools/grade.py --figures draws them, for feedback and Formgrader.
c.InlineBackend.figure_formats = set()
"""


def run_sandboxed(nb: nbformat.NotebookNode, limits: Limits, scratch: Path, figures: bool = False) -> RunResult:
    """Execute ``nb`` inside the sandbox, ``scratch`` being its only writable folder; ``figures``:
    draw matplotlib figures into the outputs (else each shows as its text, e.g. ``<Figure ...>``)."""
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "home").mkdir(exist_ok=True)
    _seed_font_cache(scratch / "home" / ".mpl")
    if not figures:
        profile = scratch / "home" / ".ipython" / "profile_default"
        profile.mkdir(parents=True, exist_ok=True)
        (profile / "ipython_kernel_config.py").write_text(FIGURES_OFF)
    nbformat.write(nb, scratch / "submission.ipynb")
    uid = _sandbox_uid()
    if uid is not None:
        for path in [scratch, *scratch.rglob("*")]:
            os.lchown(path, uid, uid)
    cmd = bwrap_command(scratch, limits, uid)
    start = time.monotonic()
    # stdout/stderr go to files, never pipes: a forked child holding a pipe cannot stall us
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                preexec_fn=_limits_preexec(limits, uid))
        try:
            proc.wait(timeout=limits.wall_timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:  # the whole session: bwrap, its pid namespace and anything left in it
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        log.seek(0)
        text = log.read(200_000).decode("utf-8", "replace")
    seconds = time.monotonic() - start
    if timed_out:
        raise SandboxError(f"the notebook ran over the {limits.wall_timeout} s limit for a submission")
    out = scratch / "executed.ipynb"
    if out.is_symlink() or not out.is_file():
        raise SandboxError(f"the sandbox returned no executed notebook (exit {proc.returncode}):\n{text[-3000:]}")
    if out.stat().st_size > limits.max_notebook_mb * 2**20:
        raise SandboxError(f"the executed notebook is over {limits.max_notebook_mb} MB")
    with open(out, "rb") as f:
        raw = f.read(limits.max_notebook_mb * 2**20 + 1)
    try:  # nbformat joins multi-line strings (the reader's form) and upgrades old versions
        executed = nbformat.reads(raw.decode("utf-8", "replace"), as_version=4)
    except Exception as error:  # noqa: BLE001  (anything unreadable is the sandbox's fault)
        raise SandboxError(f"the sandbox returned an unreadable notebook: {error}") from None
    return RunResult(executed, seconds, text)


# --------------------------------------------------------------------------------------------
# Instrumentation: probes and canaries
# --------------------------------------------------------------------------------------------

SNAPSHOT_MODULES = ("torch", "numpy", "math", "bdl_course", "scipy")

PROBE_SETUP = r'''
def _grader_setup(modules, nonce):
    import builtins, importlib, sys, types
    loaded = []
    for name in modules:
        try:
            loaded.append(importlib.import_module(name))
        except Exception:
            pass
    def holders():
        ip = get_ipython()
        out = [("builtins", builtins), ("shell", type(ip)), ("displayhook", type(ip.displayhook)),
               ("compiler", type(ip.compile)), ("display_pub", type(ip.display_pub))]
        if getattr(ip, "kernel", None) is not None:
            out.append(("kernel", type(ip.kernel)))
        for m in loaded:
            out.append((m.__name__, m))
            if m.__name__ == "torch":
                import torch, torch.nn.functional, torch.distributions, torch.testing
                out += [("torch.Tensor", torch.Tensor), ("torch.nn.functional", torch.nn.functional),
                        ("torch.distributions", torch.distributions), ("torch.testing", torch.testing),
                        ("torch.distributions.kl", torch.distributions.kl)]
            if m.__name__ == "numpy":
                out += [("numpy.testing", m.testing)]
            if m.__name__ == "bdl_course":
                out += [(k, v) for k, v in sorted(sys.modules.items()) if k.startswith("bdl_course.") and v]
        return out
    def snapshot():
        snap = {}
        for prefix, obj in holders():
            # raw namespace entries (getattr would make a new bound method every time)
            spaces = [vars(k) for k in obj.__mro__] if isinstance(obj, type) else [vars(obj)]
            seen = set()
            for space in spaces:
                for key, value in list(space.items()):
                    if key in seen:
                        continue
                    seen.add(key)
                    if callable(value) or isinstance(value, (type, classmethod, staticmethod, property)):
                        snap[prefix + "." + key] = value
                        code = getattr(value, "__code__", None)
                        if code is not None:
                            snap[prefix + "." + key + ".__code__"] = code
        kl = sys.modules.get("torch.distributions.kl")  # never imported here: it costs seconds
        if kl is not None:
            snap["torch.distributions.kl._KL_REGISTRY"] = tuple(kl._KL_REGISTRY.values())
        return snap
    import os
    libraries = tuple(os.path.join(os.path.realpath(p), "") for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})
    libraries += tuple(os.path.join(os.path.dirname(os.path.realpath(m.__file__)), "") for m in loaded
                       if getattr(m, "__file__", None) and m.__name__ == "bdl_course")
    def library(value, depth=0):
        """Defined by an installed library (not in a cell or a file of the submission)?"""
        if depth > 3:
            return False
        if isinstance(value, (classmethod, staticmethod)):
            return library(value.__func__, depth + 1)
        if isinstance(value, property):
            return all(library(f, depth + 1) for f in (value.fget, value.fset, value.fdel) if f is not None)
        if isinstance(value, tuple):
            return all(library(v, depth + 1) for v in value)
        if isinstance(value, types.CodeType):
            return os.path.realpath(value.co_filename).startswith(libraries)
        target = getattr(value, "__func__", value)
        code = getattr(target, "__code__", None)
        if code is not None:
            return library(code, depth + 1)
        if isinstance(value, type):
            if value.__module__ == "builtins":
                return True
            module = sys.modules.get(value.__module__)
            return os.path.realpath(getattr(module, "__file__", "") or "/").startswith(libraries)
        return True  # C-level callables: only a library makes them
    def foreign(callbacks):
        return [id(f) for f in callbacks if not library(f)]
    def hooks():
        ip = get_ipython()
        h = {"sys.displayhook": id(sys.displayhook),
             "sys.meta_path": [id(x) for x in sys.meta_path], "sys.path_hooks": [id(x) for x in sys.path_hooks],
             "sys.settrace": id(sys.gettrace()), "sys.setprofile": id(sys.getprofile()),
             "ast_transformers": [id(x) for x in ip.ast_transformers],
             "input_transformers_cleanup": [id(x) for x in ip.input_transformers_cleanup],
             "input_transformers_post": [id(x) for x in ip.input_transformers_post],
             "input_transformer_manager": id(ip.input_transformer_manager),
             "line_transforms": [id(x) for x in getattr(ip.input_transformer_manager, "line_transforms", [])],
             "token_transformers": [id(x) for x in getattr(ip.input_transformer_manager, "token_transformers", [])],
             # libraries (matplotlib's inline backend) register callbacks as they are first used
             "events": {k: foreign(v) for k, v in ip.events.callbacks.items()},
             "displayhook": id(ip.displayhook), "display_pub": id(ip.display_pub),
             "custom_exceptions": repr(ip.custom_exceptions), "compile": id(ip.compile),
             "shell_class": id(type(ip)), "kernel_class": id(type(ip.kernel)) if getattr(ip, "kernel", None) else 0,
             "overrides": sorted(k for k, v in vars(ip).items() if callable(v) and not k.startswith("_")
                                 and k not in {"excepthook"}),
             "kernel_overrides": sorted(k for k, v in vars(ip.kernel).items() if callable(v))
                                 if getattr(ip, "kernel", None) else []}
        return h
    import gc
    def quietly(fn):
        # the probe allocates thousands of short-lived objects: with the collector paused they
        # never reach an older generation, so the lesson's own cells meet no extra full
        # collection (one cost lesson 01 0.1 s)
        paused = gc.isenabled()
        gc.disable()
        try:
            return fn()
        finally:
            if paused:
                gc.enable()
    base_snap, base_hooks = quietly(snapshot), quietly(hooks)
    def probe(label):
        import json
        print("GRADER-PROBE", nonce, label, json.dumps(quietly(check)))
    def check():
        issues = []
        now = snapshot()
        # ipykernel rebinds input/getpass for every execute request
        changed = sorted(k for k, v in base_snap.items() if now.get(k) is not v and not library(now.get(k))
                         and k not in ("builtins.input", "builtins.raw_input", "builtins.getpass"))
        if changed:
            issues.append("rebinds " + ", ".join(changed[:12]) + (" ..." if len(changed) > 12 else ""))
        h = hooks()
        for key, value in base_hooks.items():
            if h.get(key) != value:
                issues.append("changes " + key)
        here = [n for n, m in list(sys.modules.items())
                if str(getattr(m, "__file__", "") or "").startswith("/sandbox")]
        if here:
            issues.append("imports modules from its own folder: " + ", ".join(sorted(here)[:8]))
        bad_path = [p for p in sys.path if p in ("", ".") or str(p).startswith("/sandbox")]
        if bad_path:
            issues.append("puts its own folder on sys.path")
        return issues
    return probe
'''


def _modules_imported(nb) -> list[str]:
    found = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(_python_source(cell.source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return [m for m in SNAPSHOT_MODULES if m in found]


def _code_cell(cell_id: str, source: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.id = cell_id
    return cell


@dataclass
class Plan:
    probes: dict[str, str] = field(default_factory=dict)     # cell id -> label
    canaries: dict[str, str] = field(default_factory=dict)   # cell id -> nonce its error must carry
    nonce: str = ""


def is_test_cell(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def instrument(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, Plan]:
    """The notebook to run: ``nb`` with the grader's probe and canary cells inserted."""
    plan = Plan(nonce=secrets.token_hex(8))
    probe_name = f"_grader_probe_{secrets.token_hex(4)}"
    setup = (PROBE_SETUP + f"\n{probe_name} = _grader_setup({_modules_imported(nb)!r}, {plan.nonce!r})\n"
             f"del _grader_setup\n{probe_name}('start')")
    cells = [_code_cell(f"{GRADER}setup", setup)]
    plan.probes[f"{GRADER}setup"] = "start"
    for index, cell in enumerate(nb.cells):
        cells.append(cell)
        last_of_run = index + 1 == len(nb.cells) or not is_test_cell(nb.cells[index + 1])
        if is_test_cell(cell) and last_of_run:
            # one grader cell after each run of test cells (an exercise's visible and hidden
            # tests; each cell costs a kernel round trip): the probe, then the canary, which must
            # fail as any test does. A patch made before the tests, or during them and kept, is
            # seen here; one undone within the tests would escape a probe placed before them too.
            cid, nonce = f"{GRADER}check-{index}", secrets.token_hex(6)
            a, b = secrets.randbelow(10**6), 10**6 + secrets.randbelow(10**6)
            # always an assert statement (in a form chosen at random): a transformer that strips
            # asserts from test cells must strip it too, and so make the canary pass; in `finally`,
            # so that it runs even when the probe was sabotaged
            canary = secrets.choice([f'assert {a} == {b}, "{nonce}"', f'assert ({a} > {b}), "{nonce}"',
                                     f'assert not {b} - {a} > 0, "{nonce}"'])
            cells.append(_code_cell(cid, f"try:\n    {probe_name}({cid!r})\nfinally:\n    {canary}"))
            plan.probes[cid] = cid
            plan.canaries[cid] = nonce
    cells.append(_code_cell(f"{GRADER}probe-end", f"{probe_name}('end')"))
    plan.probes[f"{GRADER}probe-end"] = "end"
    run = copy.deepcopy(nb)
    run.cells = cells
    return run, plan


def _last_is_expression(source: str) -> bool:
    try:
        tree = ast.parse(_python_source(source))
    except SyntaxError:
        return False
    return bool(tree.body) and isinstance(tree.body[-1], ast.Expr)


def merge_and_check(nb: nbformat.NotebookNode, plan: Plan, executed: dict) -> list[str]:
    """Attach the executed outputs to ``nb`` (the trusted cells) and return the flags."""
    flags = []
    sent = [c.get("id") for c in instrument_ids(nb, plan)]
    got_cells = executed.get("cells") if isinstance(executed, dict) else None
    if not isinstance(got_cells, list) or [c.get("id") for c in got_cells if isinstance(c, dict)] != sent:
        raise SandboxError("the executed notebook does not have the cells that were sent")
    by_id = {c["id"]: c for c in got_cells}
    stopped = executed.get("metadata", {}).get("sandbox_error")
    if stopped:
        flags.append(f"the run stopped early ({str(stopped)[:200]}); the cells after it did not run")
    for cid, label in plan.probes.items():
        outputs = by_id[cid].get("outputs", [])
        texts = "".join("".join(o.get("text", "")) if isinstance(o.get("text"), list) else str(o.get("text", ""))
                        for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stdout")
        match = re.search(rf"GRADER-PROBE {plan.nonce} {re.escape(label)} (\[.*\])", texts)
        if not match:
            errors = [o.get("ename") for o in outputs if o.get("output_type") == "error"]
            if label == "end" and any(e == "CellTimeoutError" for e in errors):
                continue  # a timeout before the end probe is scored as a timeout, not flagged
            flags.append(f"the grader's integrity probe ({label}) did not report" + (f" ({errors[0]})" if errors else ""))
            continue
        try:
            issues = json.loads(match.group(1))
        except ValueError:
            issues = ["an unreadable report"]
        for issue in issues:
            text = f"the submission {issue}" + ("" if label in ("start", "end") else f" (seen by the end of test cell {label.split('-')[-1]})")
            if not any(issue in f for f in flags):
                flags.append(text)
    for cid, nonce in plan.canaries.items():
        outputs = by_id[cid].get("outputs", [])
        ok = any(o.get("output_type") == "error" and o.get("ename") == "AssertionError"
                 and nonce in str(o.get("evalue", "")) for o in outputs)
        timeout = any(o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError" for o in outputs)
        if not ok and not timeout and by_id[cid].get("execution_count") is not None:
            flags.append("a canary test inserted by the grader (which must fail) passed: the submission "
                         "changes how test cells run")
            break
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        got = by_id.get(cell.get("id"))
        outputs = [nbformat.from_dict(o) for o in (got or {}).get("outputs", []) if isinstance(o, dict)]
        if is_test_cell(cell):
            results = [o for o in outputs if o.output_type in ("execute_result", "display_data")]
            if results and not _last_is_expression(cell.source):
                flags.append(f"test cell {cell.metadata.nbgrader.get('grade_id')} shows a result its test "
                             "does not compute (e.g. sys.displayhook: nbgrader's partial-credit trick)")
            # nbgrader reads a numeric execute_result as partial credit: the course never uses it
            outputs = [o for o in outputs if o.output_type != "execute_result"]
            if got is not None and got.get("execution_count") is None and not any(
                    o.output_type == "error" for o in outputs):
                outputs.append(nbformat.v4.new_output("error", ename="NotRun", evalue="the test cell did not run",
                                                      traceback=["the test cell did not run"]))
        cell.outputs = outputs
        cell.execution_count = (got or {}).get("execution_count") if isinstance((got or {}).get("execution_count"), int) else None
    return flags


def instrument_ids(nb, plan: Plan) -> list:
    """The cells in the order the instrumented notebook has them (ids only matter)."""
    out = [{"id": f"{GRADER}setup"}]
    for index, cell in enumerate(nb.cells):
        out.append({"id": cell.get("id")})
        if f"{GRADER}check-{index}" in plan.canaries:
            out.append({"id": f"{GRADER}check-{index}"})
    out.append({"id": f"{GRADER}probe-end"})
    return out


# --------------------------------------------------------------------------------------------
# Static checks of what the student wrote (trusted: the source is data here, never run)
# --------------------------------------------------------------------------------------------

# what honest answers in this course never need; reported with cell and line
SUSPECT_CALLS = {  # builtins, flagged wherever the name is used
    "get_ipython": "reaches into IPython (transformers, hooks, magics)", "__import__": "imports dynamically",
    "exec": "executes generated code", "eval": "evaluates generated code", "compile": "compiles generated code",
    "setattr": "sets attributes dynamically", "delattr": "deletes attributes dynamically",
    "__builtins__": "reaches into builtins", "forbid": "touches the grader's forbid()",
}
SUSPECT_ATTRIBUTES = {  # flagged as attributes (x.name) or names imported from a module
    "displayhook": "touches sys.displayhook", "excepthook": "touches sys.excepthook",
    "ast_transformers": "installs an AST transformer", "input_transformers_post": "installs an input transformer",
    "input_transformers_cleanup": "installs an input transformer",
    "input_transformer_manager": "installs an input transformer",
    "__code__": "rewrites function code", "__globals__": "reaches into function globals",
    "__builtins__": "reaches into builtins", "__torch_function__": "overrides torch functions",
    "__torch_dispatch__": "overrides torch dispatch", "_KL_REGISTRY": "edits torch's KL registry",
    "register_kl": "registers a KL rule", "settrace": "installs a trace hook", "setprofile": "installs a profile hook",
    "meta_path": "installs an import hook", "path_hooks": "installs an import hook",
    "environ": "reads the environment", "getenv": "reads the environment", "fork": "forks processes",
    "system": "runs shell commands", "popen": "runs shell commands", "_getframe": "inspects frames",
    "f_globals": "inspects frames", "f_locals": "inspects frames", "f_back": "inspects frames",
    "forbid": "touches the grader's forbid()",
    "run_cell": "overrides IPython", "run_ast_nodes": "overrides IPython", "run_code": "overrides IPython",
    "showtraceback": "overrides IPython", "register_magic_function": "defines IPython magics",
}
SUSPECT_MODULES = {  # flagged when imported
    "ctypes": "uses ctypes", "subprocess": "runs processes", "sqlite3": "opens databases", "socket": "opens sockets",
    "pickle": "unpickles data", "marshal": "loads code objects", "importlib": "imports dynamically",
    "inspect": "inspects frames/source", "gc": "walks the garbage collector", "atexit": "registers exit handlers",
    "signal": "installs signal handlers", "threading": "starts threads", "multiprocessing": "starts processes",
    "shutil": "copies or deletes files", "pty": "opens terminals", "IPython": "reaches into IPython",
    "ipykernel": "reaches into the kernel", "nbgrader": "reaches into nbgrader", "glob": "searches the file system",
}
COMPARISON_DUNDERS = {"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__abs__",
                      "__sub__", "__rsub__", "__float__", "__index__", "__getattr__", "__getattribute__",
                      "__instancecheck__", "__subclasscheck__", "__len__", "__iter__"}
MODULE_ROOTS = {"torch", "np", "numpy", "math", "sys", "builtins", "bdl", "bdl_course", "IPython", "os", "F", "nn",
                "scipy", "dist", "distributions"}
FILE_SUFFIXES = re.compile(r"\.(ipynb|db|py|pth|cfg|json)\b|solutions|gradebook|nbgrader_config|site-packages|\.\./")


def _python_source(source: str) -> str:
    """The cell as Python (IPython magics and shell escapes become get_ipython() calls)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def static_flags(cells: list) -> list[str]:
    """Reasons to review the given (student-written) code cells; [] for ordinary answers."""
    flags: list[str] = []

    def add(cell, node, why):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id") or cell.get("id") or "?"
        line = getattr(node, "lineno", 0)
        text = f"cell {grade_id} line {line}: {why}"
        if text not in flags:
            flags.append(text)

    for cell in cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(_python_source(cell.source))
        except SyntaxError:
            continue  # it fails when run, and scores what it scores
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in SUSPECT_CALLS:
                add(cell, node, SUSPECT_CALLS[node.id])
            elif isinstance(node, ast.Attribute) and node.attr in SUSPECT_ATTRIBUTES:
                add(cell, node, SUSPECT_ATTRIBUTES[node.attr])
            elif isinstance(node, ast.Attribute) and node.attr == "modules" and \
                    isinstance(node.value, ast.Name) and node.value.id == "sys":
                add(cell, node, "edits sys.modules")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    root = alias.name.split(".")[0]
                    if root in SUSPECT_MODULES:
                        add(cell, node, SUSPECT_MODULES[root])
            elif isinstance(node, ast.ImportFrom) and node.module:
                root = node.module.split(".")[0]
                if root in SUSPECT_MODULES:
                    add(cell, node, SUSPECT_MODULES[root])
                for alias in node.names:
                    if alias.name in SUSPECT_ATTRIBUTES or alias.name in SUSPECT_CALLS:
                        add(cell, node, SUSPECT_ATTRIBUTES.get(alias.name) or SUSPECT_CALLS[alias.name])
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
                targets = list(node.targets) if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                while targets:
                    target = targets.pop()
                    if isinstance(target, (ast.Tuple, ast.List)):
                        targets += target.elts
                        continue
                    if isinstance(target, ast.Starred):
                        targets.append(target.value)
                        continue
                    root, through_attribute = target, False
                    while isinstance(root, (ast.Attribute, ast.Subscript)):  # the chain, not its indices
                        through_attribute |= isinstance(root, ast.Attribute)
                        root = root.value
                    if through_attribute and isinstance(root, ast.Name) and root.id in MODULE_ROOTS:
                        add(cell, node, f"rebinds {ast.unparse(target)} (monkeypatching a library)")
            if isinstance(node, ast.ClassDef):
                for base in node.bases:
                    if "Tensor" in ast.unparse(base):
                        add(cell, node, f"defines a Tensor subclass ({node.name})")
                for item in node.body:  # an answer object that compares equal to anything
                    names = [item.name] if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) else \
                        [t.id for t in getattr(item, "targets", []) if isinstance(t, ast.Name)]
                    for dunder in set(names) & COMPARISON_DUNDERS:
                        add(cell, item, f"class {node.name} overrides {dunder} (answers that compare as anything)")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and FILE_SUFFIXES.search(node.value):
                add(cell, node, f"names a file or folder of the course ({node.value[:60]!r})")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
                add(cell, node, "opens files")
    return flags


def student_cells(nb: nbformat.NotebookNode) -> list:
    """Cells whose source the student controls (nbgrader restores only the locked ones)."""
    return [c for c in nb.cells if c.cell_type == "code" and not c.metadata.get("nbgrader", {}).get("locked")]


# --------------------------------------------------------------------------------------------
# nbgrader integration
# --------------------------------------------------------------------------------------------

REPORTS: dict[tuple[str, str], dict] = {}  # (lesson, student) -> {"flags": [...], "seconds": s, ...}


_PREPROCESSOR = []


def _make_preprocessor():
    if _PREPROCESSOR:
        return _PREPROCESSOR[0]
    from nbgrader.preprocessors import NbGraderPreprocessor
    from traitlets import Bool, Dict, Unicode

    class SandboxExecute(NbGraderPreprocessor):
        """nbgrader's Execute, done in the sandbox and checked outside it (see module docstring)."""

        limits = Dict({}, help="Limits fields (tools/sandbox.py) to override").tag(config=True)
        source_notebook = Unicode("", help="the lesson's source notebook: cells identical to one of "
                                  "its cells are the course's code, not checked statically").tag(config=True)
        scratch_root = Unicode("", help="where the per-submission sandbox folders go").tag(config=True)
        figures = Bool(False, help="draw matplotlib figures into the graded notebook").tag(config=True)

        def preprocess(self, nb, resources):
            info = resources.get("nbgrader", {})
            key = (info.get("assignment", "?"), info.get("student", "?"))
            report = REPORTS.setdefault(key, {"flags": []})
            limits = Limits.from_dict(self.limits)
            if len(nb.cells) > limits.max_cells:
                raise SandboxError(f"the notebook has {len(nb.cells)} cells (limit {limits.max_cells})")
            known = set()
            if self.source_notebook and Path(self.source_notebook).is_file():
                known = {c.source.strip() for c in nbformat.read(self.source_notebook, as_version=4).cells}
            report["flags"] += static_flags([c for c in student_cells(nb) if c.source.strip() not in known])
            run, plan = instrument(nb)
            root = Path(self.scratch_root or tempfile.gettempdir())
            root.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=f"sandbox-{key[1]}-", dir=root))
            try:
                result = run_sandboxed(run, limits, scratch, figures=self.figures)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            report["seconds"] = result.seconds
            report["flags"] += merge_and_check(nb, plan, result.executed)
            return nb, resources

    _PREPROCESSOR.append(SandboxExecute)
    return SandboxExecute


def autograde_preprocessors() -> list:
    """nbgrader's autograde steps, with its Execute replaced by the sandbox. Not SaveAutoGrades:
    the worker's gradebook is a scratch copy, and the trusted process scores the returned
    notebook into the course's own (tools/grade.py, save_to_gradebook)."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import CheckCellMetadata, IgnorePattern, LimitOutput
    return [_make_preprocessor(), IgnorePattern, ClearMetadataPreprocessor, LimitOutput, CheckCellMetadata]
