"""The README runs as written (issue 15, item 6).

Every fenced ```python block, and every line of a ```bash / ```sh / ```shell / ```console / plain
``` block that starts with ``embedkit`` or ``python`` (or ``.venv/bin/embedkit``, ``.venv/bin/python``,
after optional ``VAR=value`` assignments), runs in README order in one temporary directory that
holds a copy of ``examples/`` (so ``examples/data/corpus.txt`` etc. resolve as from the repository
root). Python blocks share one namespace, as in a notebook; commands run through the shell with the
virtual environment's ``bin`` first on PATH and a fresh ``./indexes`` store.

Left out, each reported as skipped with its reason:

* a block preceded by ``<!-- skip-test: REASON -->`` (blank lines may sit between them);
* command lines that need what a test cannot have: ``pip``/``make``/``python -m venv`` (installs),
  ``python -m pytest`` (the suite this test belongs to),
  ``embedkit serve`` and ``uvicorn.run`` (servers that block), CUDA (``cuda`` in the line or block),
  ``curl`` (a running server);
* ``...`` placeholders are not skipped: a snippet that cannot run as written is a failure.

Run it alone:  ``.venv/bin/python -m pytest -q tests/test_readme.py``; leave the README run out of a
suite run with ``-k "not readme_snippets"``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
STEP_TIMEOUT = 240          # seconds for one snippet
SHELL_LANGS = {"", "bash", "sh", "shell", "console", "shell-session"}
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
_SKIP = re.compile(r"<!--\s*skip-test\s*:?\s*(.*?)\s*-->")
_COMMAND = re.compile(r"^(?:\$\s+)?(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*(?:\.venv/bin/)?(embedkit|python3?)(?:\s|$)")
_AUTO_SKIP = [  # (pattern in a command line, why)
    (re.compile(r"\b(pip|make)\b|-m\s+venv\b"), "installs software"),
    (re.compile(r"\bembedkit\b.*\bserve\b"), "starts a server that blocks"),
    (re.compile(r"cuda", re.I), "needs a GPU"),
    (re.compile(r"-m\s+pytest\b"), "runs the test suite (this test is part of it)"),
]
_AUTO_SKIP_PY = [
    (re.compile(r"uvicorn\.run\("), "starts a server that blocks"),
    (re.compile(r"""device\s*=\s*["']cuda"""), "needs a GPU"),
]


@dataclass
class Snippet:
    kind: str        # "python" or "shell"
    line: int        # README line of the code (1-based)
    code: str
    skip: str = ""   # why it does not run ("" = it runs)


def extract_snippets(text: str) -> list[Snippet]:
    """The runnable snippets of a Markdown text, in order, with skip reasons."""
    out: list[Snippet] = []
    lines = text.splitlines()
    i = 0
    pending_skip = ""
    while i < len(lines):
        line = lines[i]
        m_skip = _SKIP.search(line)
        if m_skip:
            pending_skip = m_skip.group(1) or "marked skip-test"
            i += 1
            continue
        m = _FENCE.match(line)
        if not m:
            if line.strip():
                pending_skip = ""  # a skip mark applies to the next block only, across blank lines
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        body, start = [], i + 2
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1  # the closing fence
        skip, pending_skip = pending_skip, ""
        if lang in ("python", "py", "python3"):
            code = textwrap.dedent("\n".join(body))
            why = skip or next((w for rx, w in _AUTO_SKIP_PY if rx.search(code)), "")
            out.append(Snippet("python", start, code, why))
        elif lang in SHELL_LANGS:
            for text_, offset in _joined(body):
                if not _COMMAND.match(text_.strip()):
                    continue
                why = skip or next((w for rx, w in _AUTO_SKIP if rx.search(text_)), "")
                out.append(Snippet("shell", start + offset, re.sub(r"^\$\s+", "", text_.strip()), why))
    return out


def _joined(body: list[str]):
    """Shell lines with backslash continuations joined: (text, offset of its first line)."""
    buf, first = [], 0
    for n, line in enumerate(body):
        if not buf:
            first = n
        if line.rstrip().endswith("\\"):
            buf.append(line.rstrip()[:-1])
            continue
        buf.append(line)
        yield " ".join(part.strip() for part in buf), first
        buf = []
    if buf:
        yield " ".join(part.strip() for part in buf), first


# The runner: one process, run in the temporary directory; python snippets share one namespace.
RUNNER = r'''
import contextlib, io, json, os, signal, subprocess, sys, traceback
snippets = json.load(open(sys.argv[1], encoding="utf-8"))
timeout = int(sys.argv[3])
results = []
ns = {"__name__": "__readme__"}

def one_line(text):
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    return lines[-1][:400] if lines else ""

def alarm(signum, frame):
    raise TimeoutError(f"took more than {timeout} s")

signal.signal(signal.SIGALRM, alarm)
for s in snippets:
    if s["skip"]:
        results.append({"line": s["line"], "kind": s["kind"], "status": "skipped", "why": s["skip"]})
        continue
    if s["kind"] == "python":
        out = io.StringIO()
        signal.alarm(timeout)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                exec(compile(s["code"], f"README.md:{s['line']}", "exec"), ns)
            status, why = "ok", ""
        except BaseException as exc:  # SystemExit included: a snippet must not end the run
            tb = traceback.extract_tb(exc.__traceback__)
            where = next((f"README.md:{int(f.filename.split(':')[1]) + f.lineno - 1}" for f in reversed(tb)
                          if f.filename.startswith("README.md:")), "")
            status, why = "failed", f"{where} {type(exc).__name__}: {one_line(str(exc)) or repr(exc)}".strip()
        finally:
            signal.alarm(0)
    else:
        try:
            res = subprocess.run(s["code"], shell=True, capture_output=True, text=True, timeout=timeout,
                                 executable="/bin/bash")
            status = "ok" if res.returncode == 0 else "failed"
            why = "" if status == "ok" else f"exit {res.returncode}: {one_line(res.stderr) or one_line(res.stdout)}"
        except subprocess.TimeoutExpired:
            status, why = "failed", f"took more than {timeout} s"
    results.append({"line": s["line"], "kind": s["kind"], "status": status, "why": why, "code": s["code"][:200]})
    json.dump(results, open(sys.argv[2], "w", encoding="utf-8"), indent=1)
json.dump(results, open(sys.argv[2], "w", encoding="utf-8"), indent=1)
'''


def run_snippets(snippets: list[Snippet], workdir: Path, timeout: int = STEP_TIMEOUT) -> list[dict]:
    """Run ``snippets`` in ``workdir`` (see the module docstring); one result dict per snippet."""
    spec, result, runner = workdir / ".snippets.json", workdir / ".results.json", workdir / ".runner.py"
    spec.write_text(json.dumps([asdict(s) for s in snippets]), encoding="utf-8")
    runner.write_text(RUNNER, encoding="utf-8")
    bin_dir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if k not in ("EMBEDKIT_STORE", "EMBEDKIT_TOKEN")}
    env.update(PATH=bin_dir + os.pathsep + env.get("PATH", ""), OMP_WAIT_POLICY=env.get("OMP_WAIT_POLICY", "PASSIVE"),
               MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    venv = Path(bin_dir).parent
    if (venv / "pyvenv.cfg").exists():
        env["VIRTUAL_ENV"] = str(venv)
        (workdir / ".venv").symlink_to(venv, target_is_directory=True)  # '.venv/bin/embedkit ...' lines
    proc = subprocess.run([sys.executable, str(runner), str(spec), str(result), str(timeout)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout * max(1, len(snippets)) + 60)
    if not result.exists():
        raise AssertionError(f"the README runner died before the first snippet: {proc.stderr[-2000:]}")
    results = json.loads(result.read_text(encoding="utf-8"))
    if len(results) < len(snippets):
        raise AssertionError(f"the README runner stopped after {len(results)} of {len(snippets)} snippets: "
                             f"{proc.stderr[-2000:]}")
    return results


def prepare_workdir(tmp: Path) -> Path:
    shutil.copytree(ROOT / "examples", tmp / "examples", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return tmp


# ---------------------------------------------------------------- the harness itself
SAMPLE = """\
Intro.

```python
x = 1
```

<!-- skip-test: writes to the network -->

```python
raise SystemExit("never run")
```

```bash
embedkit --version    # a comment
ls -la
python -c "print(x)" \\
   --flag
FOO=1 .venv/bin/embedkit list
pip install embedkit
python -m pytest -q tests
embedkit serve --port 8080
embedkit train word2vec c.txt --device cuda
```

```
InputError: an error shown as output
$ embedkit list
```

```python
from embedkit.serve import create_app
import uvicorn
uvicorn.run(create_app("indexes"))
```
"""


def test_extract_snippets_follows_the_rules():
    got = [(s.kind, s.line, s.code, s.skip) for s in extract_snippets(SAMPLE)]
    assert got == [
        ("python", 4, "x = 1", ""),
        ("python", 10, 'raise SystemExit("never run")', "writes to the network"),
        ("shell", 14, "embedkit --version    # a comment", ""),
        ("shell", 16, 'python -c "print(x)" --flag', ""),
        ("shell", 18, "FOO=1 .venv/bin/embedkit list", ""),
        ("shell", 20, "python -m pytest -q tests", "runs the test suite (this test is part of it)"),
        ("shell", 21, "embedkit serve --port 8080", "starts a server that blocks"),
        ("shell", 22, "embedkit train word2vec c.txt --device cuda", "needs a GPU"),
        ("shell", 27, "embedkit list", ""),
        ("python", 31, 'from embedkit.serve import create_app\nimport uvicorn\nuvicorn.run(create_app("indexes"))',
         "starts a server that blocks"),
    ]
    # 'pip install' does not start with embedkit/python: not a snippet at all


def test_runner_reports_failures_with_their_line_and_goes_on(tmp_path):
    snippets = [Snippet("python", 3, "import embedkit as ek\nval = 41"),
                Snippet("python", 7, "val += 1\nassert val == 42\nopen('made.txt', 'w').write(str(val))"),
                Snippet("python", 9, "x = 1\nraise ValueError('bad thing\\nsecond line')"),
                Snippet("shell", 12, "embedkit --version"),
                Snippet("shell", 13, "embedkit query missing key"),
                Snippet("shell", 14, "test -f made.txt && python -c 'import embedkit'"),
                Snippet("python", 16, "raise SystemExit(3)", "marked")]
    results = run_snippets(snippets, prepare_workdir(tmp_path), timeout=120)
    assert [r["status"] for r in results] == ["ok", "ok", "failed", "ok", "failed", "ok", "skipped"]
    assert results[2]["why"] == "README.md:10 ValueError: second line"  # the README line that raised
    assert "exit 1" in results[4]["why"] and "missing" in results[4]["why"]


def test_examples_data_is_what_its_script_writes(tmp_path):
    sys.path.insert(0, str(ROOT / "examples" / "data"))
    try:
        import make_data
    finally:
        sys.path.pop(0)
    make_data.main(tmp_path)
    for name in make_data.FILES:
        shipped = ROOT / "examples" / "data" / name
        assert shipped.read_bytes() == (tmp_path / name).read_bytes(), f"{name}: run examples/data/make_data.py"
        assert shipped.stat().st_size < 40_000


# ---------------------------------------------------------------- the README
def test_readme_snippets_run(tmp_path):
    snippets = extract_snippets(README.read_text(encoding="utf-8"))
    assert snippets, "no runnable snippet found in README.md"
    results = run_snippets(snippets, prepare_workdir(tmp_path))
    failed = [r for r in results if r["status"] == "failed"]
    ran = sum(r["status"] == "ok" for r in results)
    skipped = [f"  README.md:{r['line']} ({r['why']})" for r in results if r["status"] == "skipped"]
    report = "\n".join(f"  README.md:{r['line']} [{r['kind']}] {r['code'].splitlines()[0][:90]!r}\n      -> {r['why']}"
                       for r in failed)
    assert not failed, (f"{len(failed)} of {len(results)} README snippets fail ({ran} ran, {len(skipped)} skipped):\n"
                        f"{report}\nskipped:\n" + "\n".join(skipped))
