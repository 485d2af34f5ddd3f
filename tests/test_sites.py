"""Call site names: ``module.qualname`` for a module's code, ``path:qualname`` for a
script's, short and the same on every run; and the report shows them so."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from deferrable._sites import function_site, module_name, script_path, site_name
from deferrable.emulator import Emulator
from tests.conftest import DUMMY_KEY

CWD = "/home/me/work"
HOME = "/home/me"


def test_a_module_is_named_by_its_import_name() -> None:
    """An imported module is its __name__; under `python -m` its spec's name, not __main__."""
    assert module_name({"__name__": "myjob.pipeline"}) == "myjob.pipeline"
    spec = types.SimpleNamespace(name="myjob.pipeline")
    assert module_name({"__name__": "__main__", "__spec__": spec}) == "myjob.pipeline"


def test_a_script_has_no_module_name() -> None:
    """A script (__main__ without a spec), and code of a name that is no import name, are scripts."""
    assert module_name({"__name__": "__main__", "__spec__": None}) is None
    assert module_name({"__name__": "<run_path>"}) is None
    assert module_name({}) is None


def test_a_module_site_is_module_dot_qualname() -> None:
    """Module code: module.qualname, whatever file it is in (site-packages included)."""
    site = site_name("myjob.pipeline", "/venv/lib/python3.12/site-packages/myjob/pipeline.py",
                     "Classifier.classify", CWD, HOME)
    assert site == "myjob.pipeline.Classifier.classify"


def test_a_script_site_is_its_path_from_the_working_directory() -> None:
    """Script code: the path relative to the working directory, a colon, the qualname."""
    assert site_name(None, f"{CWD}/jobs/nightly.py", "classify", CWD, HOME) == \
        "jobs/nightly.py:classify"
    assert site_name(None, "jobs/nightly.py", "classify", CWD, HOME) == "jobs/nightly.py:classify"
    assert site_name(None, f"{CWD}/job.py", "<module>", CWD, HOME) == "job.py:<module>"


def test_a_script_elsewhere_is_under_home_or_absolute() -> None:
    """Outside the working directory: ~/... inside the home directory, else the absolute path."""
    assert script_path(f"{HOME}/jobs/nightly.py", CWD, HOME) == "~/jobs/nightly.py"
    assert script_path("/opt/jobs/nightly.py", CWD, HOME) == "/opt/jobs/nightly.py"
    assert script_path(f"{CWD}/../work2/job.py", CWD, HOME) == "~/work2/job.py"
    assert script_path("<stdin>", CWD, HOME) == "<stdin>"
    assert script_path(None, CWD, HOME) == "?"


def test_a_comprehension_is_its_function() -> None:
    """A comprehension's frame (Python 3.11 gives it one, 3.12 not) names its function."""
    assert site_name("m", None, "run.<locals>.<listcomp>", CWD) == "m.run"
    assert site_name("m", None, "run.<locals>.<genexpr>", CWD) == "m.run"
    assert site_name(None, "job.py", "<listcomp>", CWD, HOME) == "job.py:<module>"
    assert site_name("m", None, "run.<locals>.<lambda>", CWD) == "m.run.<locals>.<lambda>"


def classify(text: str) -> str:
    """A module-level function to name."""
    return text


def test_a_decorated_function_is_named_like_its_calls() -> None:
    """function_site: module.qualname; a partial by its function; an object by its class."""
    assert function_site(classify) == f"{__name__}.classify"
    assert function_site(functools.partial(classify, "x")) == f"{__name__}.classify"

    class Labeller:
        def __call__(self, text: str) -> str:
            return text

    assert function_site(Labeller()) == (
        f"{__name__}.test_a_decorated_function_is_named_like_its_calls.<locals>.Labeller")


def test_a_scripts_function_is_named_by_its_path(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A function of the running script (module __main__) is path:qualname, like its calls."""
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "jobs" / "nightly.py"
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(compile("def classify(text):\n    return text\n", str(script), "exec"), namespace)  # noqa: S102
    main = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert function_site(namespace["classify"]) == "jobs/nightly.py:classify"


JOB = textwrap.dedent("""\
    import anthropic
    import deferrable
    from myjob.pipeline import classify

    client = anthropic.Anthropic()
    deferrable.observe()

    def summarise(text):
        return client.messages.create(model="claude-haiku-4-5", max_tokens=5,
                                      messages=[{"role": "user", "content": text}])

    @deferrable.deferrable
    def label(text):
        return summarise(text)

    summarise("live from the script")
    classify(client, "live from a module")
    label("deferred").result(timeout=60)
    """)
PIPELINE = textwrap.dedent("""\
    def classify(client, text):
        return client.messages.create(model="claude-haiku-4-5", max_tokens=5,
                                      messages=[{"role": "user", "content": text}])
    """)


def test_the_report_shows_short_sites(emulator: Emulator, tmp_path: Path) -> None:
    """A real script's sites in the ledger and report: path:function, module.function, short."""
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "nightly.py").write_text(JOB)
    (tmp_path / "myjob").mkdir()
    (tmp_path / "myjob" / "__init__.py").write_text("")
    (tmp_path / "myjob" / "pipeline.py").write_text(PIPELINE)
    env = {**os.environ, "ANTHROPIC_BASE_URL": emulator.url, "ANTHROPIC_API_KEY": DUMMY_KEY,
           "PYTHONPATH": str(tmp_path), "DEFERRABLE_MAX_WAIT": "0.05"}
    ran = subprocess.run([sys.executable, "jobs/nightly.py"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr
    report = subprocess.run([sys.executable, "-m", "deferrable", "report", "--json"],
                            capture_output=True, text=True, timeout=60, check=True)
    sites = {(line["site"], line["mode"]) for line in json.loads(report.stdout)["by_site"]}
    assert sites == {("jobs/nightly.py:summarise", "live"), ("myjob.pipeline.classify", "live"),
                     ("jobs/nightly.py:label", "batch")}
    text = subprocess.run([sys.executable, "-m", "deferrable", "report"],
                          capture_output=True, text=True, timeout=60, check=True).stdout
    assert "myjob.pipeline.classify" in text
    assert "jobs/nightly.py:summarise" in text
    assert str(tmp_path) not in text.split("\n", 1)[1]  # the title names the journal's path
