"""A host without Ray or PyYAML: exit 3 with the install command (issue 21, point 8), and
tcvom errors raised in a Ray worker come back as the same error.

The package is hidden the way a host lacks it: ``sys.modules[name] = None`` in a fresh
interpreter makes ``import name`` raise ImportError there; nothing else is replaced.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from tcvom import errors
from tcvom.errors import EXIT_MISSING, InputError, MissingDependencyError, TcvomError


def _cli_without(package: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    script = (
        "import sys\n"
        f"sys.modules[{package!r}] = None\n"
        "from tcvom.cli import main\n"
        f"sys.exit(main({argv!r}))\n"
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


def test_run_with_ray_executor_without_ray_exits_3_with_the_install_command(farm_shot, tmp_path: Path) -> None:
    done = _cli_without("ray", ["run", "--plate", farm_shot.plate, "--keyframes", farm_shot.keyframes,
                                "--out", str(tmp_path / "out"), "--method", "classical", "--executor", "ray",
                                "--progress", "none"])
    assert done.returncode == EXIT_MISSING, done.stderr
    assert "pip install 'tcvom[farm]'" in done.stderr and "--executor local" in done.stderr
    assert "Traceback" not in done.stderr and "report" not in done.stderr


def test_yaml_template_without_pyyaml_exits_3_with_the_install_command(tmp_path: Path) -> None:
    done = _cli_without("yaml", ["farm", "template", str(tmp_path / "job.yaml")])
    assert done.returncode == EXIT_MISSING, done.stderr
    assert "pip install 'tcvom[farm]'" in done.stderr and ".json template" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "job.yaml").exists()


@pytest.mark.parametrize(
    "error",
    [
        InputError("no such plate", path="/shots/a.####.exr", frame=1003, hint="check --plate"),
        errors.MissingFrameError("missing", frame=7),
        errors.WeightsError("bad keys", path="w.pth"),
        MissingDependencyError("ray", "farm", purpose="--executor ray", alternative="use --executor local"),
        errors.MissingWeightsError("no weights", hint="tcvom weights add FILE"),
    ],
)
def test_tcvom_errors_pickle_as_they_were(error: TcvomError) -> None:
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error)
    assert (again.message, again.path, again.frame, again.hint, again.exit_code) == (
        error.message, error.path, error.frame, error.hint, error.exit_code)
    assert vars(again) == vars(error)


def test_an_error_in_a_ray_task_comes_back_as_the_same_error(tmp_path: Path) -> None:
    """The worker's result crosses a process boundary by pickle; what comes back is raised
    as the error the worker raised (type, path, frame, hint)."""
    import logging

    from tcvom.farm.ray_executor import _raise_if_error, _task

    missing = str(tmp_path / "nowhere.####.exr")
    log = logging.getLogger("tcvom")
    before = (list(log.handlers), log.propagate, log.level)
    returned = pickle.loads(pickle.dumps(_task("matte", {"plate": missing, "trimaps": missing,
                                                         "out": str(tmp_path / "alpha"), "method": "classical"})))
    assert (list(log.handlers), log.propagate, log.level) == before  # the task's collector is gone again
    with pytest.raises(InputError) as raised:
        _raise_if_error(returned, set())
    assert missing in str(raised.value) or "nowhere" in str(raised.value)
    assert raised.value.exit_code == errors.EXIT_BAD_INPUT
