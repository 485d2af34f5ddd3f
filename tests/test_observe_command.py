"""Observe mode for a program that never imports deferrable: `deferrable observe -- python
job.py` (a sitecustomize put first on PYTHONPATH) and ``DEFERRABLE_OBSERVE=1`` alone (a .pth
file installed with the package)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deferrable._observe_cli import STARTUP, observed_environment, recorded_between
from deferrable.cli import main
from deferrable.emulator import Emulator
from deferrable.ledger import Spend, Tokens, row_of
from tests.conftest import DUMMY_KEY
from tests.ledger_helpers import ledger_rows

ROOT = Path(__file__).resolve().parent.parent
JOB = textwrap.dedent("""\
    import sys
    import anthropic

    client = anthropic.Anthropic()

    def classify(text):
        return client.messages.create(model="claude-haiku-4-5", max_tokens=5,
                                      messages=[{"role": "user", "content": text}])

    print("job:", classify("The room was great").content[0].text)
    sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    """)


@pytest.fixture
def job(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A script that makes one live Anthropic call to the emulator and never imports
    deferrable, in the working directory; its exit status is its first argument."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emulator.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", DUMMY_KEY)
    script = tmp_path / "job.py"
    script.write_text(JOB)
    return script


def observe(job: Path, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    """``python -m deferrable observe -- python job.py ARGS``, run in the job's directory."""
    return subprocess.run(
        [sys.executable, "-m", "deferrable", "observe", "--", sys.executable, job.name, *args],
        cwd=job.parent, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_observe_records_an_unmodified_program_and_reports_it(job: Path) -> None:
    """One live row at job.py:classify in the ledger, and that site a candidate in the report."""
    ran = observe(job)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("job: ")  # the program's own output, untouched
    report = ran.stderr
    assert "Traceback" not in report, report
    assert "deferrable observe: the calls of" in report
    candidates = report.split("candidates: live call sites", 1)[1]
    assert "job.py:classify" in candidates
    [row] = ledger_rows()
    assert (row["site"], row["mode"], row["calls"]) == ("job.py:classify", "live", 1)


def test_observe_reports_only_this_run_and_keeps_the_exit_status(job: Path) -> None:
    """A second run reports its own call (not the first run's), and exits as the job did."""
    assert observe(job).returncode == 0
    ran = observe(job, "3")
    assert ran.returncode == 3, ran.stderr
    line = next(line for line in ran.stderr.splitlines() if line.startswith("job.py:classify"))
    assert line.split()[3] == "1"  # CALL SITE, MODEL, MODE, CALLS
    [row] = ledger_rows()
    assert row["calls"] == 2


def test_observe_runs_the_sitecustomize_it_hides(job: Path, tmp_path: Path) -> None:
    """A sitecustomize already on PYTHONPATH still runs (chained), and calls are still recorded."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "sitecustomize.py").write_text("import os\nos.environ['THEIRS_RAN'] = 'yes'\n")
    (tmp_path / "check.py").write_text(
        "import os, runpy\nprint('theirs:', os.environ.get('THEIRS_RAN'))\n"
        "runpy.run_path('job.py', run_name='__main__')\n")
    env = {**os.environ, "PYTHONPATH": str(theirs)}
    ran = subprocess.run(
        [sys.executable, "-m", "deferrable", "observe", "--", sys.executable, "check.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("theirs: yes")
    assert [row["calls"] for row in ledger_rows()] == [1]


def test_observe_needs_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a command, or with one that does not exist, it says so (exit 2 / 127)."""
    assert main(["observe"]) == 2
    assert "no command to run" in capsys.readouterr().err
    assert main(["observe", "--", "no-such-program-for-deferrable"]) == 127
    assert "cannot run no-such-program-for-deferrable" in capsys.readouterr().err


def test_the_observed_environment() -> None:
    """Observe on, the journal named, the startup directory first on PYTHONPATH once."""
    env = observed_environment({"PYTHONPATH": os.pathsep.join([str(STARTUP), "/mine"])},
                               Path("/j"))
    assert env["DEFERRABLE_OBSERVE"] == "1"
    assert env["DEFERRABLE_STORE"] == str(Path("/j"))
    assert env["PYTHONPATH"] == os.pathsep.join([str(STARTUP), "/mine"])
    assert observed_environment({}, Path("/j"))["PYTHONPATH"] == str(STARTUP)
    assert (STARTUP / "sitecustomize.py").is_file()


def test_recorded_between_subtracts_the_ledger_before() -> None:
    """Rows new since the first read count whole; grown rows count their growth only."""
    one = row_of(Spend("a.f", "anthropic", "claude-haiku-4-5", "live", Tokens(input=10)), at=0)
    other = row_of(Spend("b.g", "anthropic", "claude-haiku-4-5", "live", Tokens(input=10)), at=0)
    grown = {**one, "calls": 3, "input": 30, "paid_usd": 3 * one["paid_usd"]}
    [row, new] = recorded_between([one], [grown, other, ])
    assert (row["calls"], row["input"]) == (2, 20)
    assert row["paid_usd"] == pytest.approx(2 * one["paid_usd"])
    assert new == other
    assert recorded_between([one], [one]) == []


PROBE = ("import sys, site; site.addsitedir(sys.argv[1]); "
         "import deferrable._patching as p; sdk_at_start = 'anthropic' in sys.modules; "
         "import anthropic; print(p._observing, sdk_at_start, bool(p._installed))")


@pytest.mark.parametrize(("value", "expected"), [("1", "True False True"), ("", "")])
def test_the_pth_file_observes_at_startup(tmp_path: Path, value: str, expected: str) -> None:
    """The .pth observes under DEFERRABLE_OBSERVE=1 (importing no SDK at startup; one the
    program imports is patched then), and imports nothing without."""
    site_dir = tmp_path / "site-packages"
    site_dir.mkdir()
    (site_dir / "deferrable_observe.pth").write_text(
        (ROOT / "src" / "deferrable_observe.pth").read_text())
    env = {**os.environ, "DEFERRABLE_OBSERVE": value}
    probe = PROBE if value else "import sys, site; site.addsitedir(sys.argv[1]); " \
        "print(' '.join(m for m in sys.modules if m.startswith('deferrable')))"
    ran = subprocess.run([sys.executable, "-c", probe, str(site_dir)], env=env,
                         capture_output=True, text=True, timeout=60, check=True)
    assert ran.stdout.strip() == expected, ran.stderr


def test_the_pth_file_is_packaged_at_the_top_of_site_packages() -> None:
    """pyproject puts the .pth at the wheel's root (hatchling: wheels and editable wheels)."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    included = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert included["src/deferrable_observe.pth"] == "deferrable_observe.pth"
