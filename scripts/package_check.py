"""Packaging check (`make package-check`): the two distributions as users get them.

1. Build wheel and sdist of ``airflow-provider-sgseg`` and ``sgseg-emulator`` (or take them from
   ``--built``); ``twine check`` them; the provider wheel's metadata declares no extras.
2. Install the provider wheel alone into a clean venv with Airflow (``--airflow``, default the
   oldest supported line), and check: ``airflow providers list`` shows it with no error or
   warning about it; ``sqlglot`` and ``sgseg_emulator`` are not installed; there is no
   ``sgseg-emulator`` command; pytest there loads no sgseg plugin.
3. Add the emulator wheel and run the example pipeline test (tests/dags/test_pipeline.py:
   create -> refresh -> deferrable wait -> Asset -> Single Send under ``airflow dags test``,
   1 segment, 1 refresh, 1 send) from a copy of tests/ and dags/, so the installed wheels are
   what runs, not the checkout.

Each check prints ``ok <what>`` or stops with ``FAILED <what>: <why>`` (exit 1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROVIDER_DIST = "airflow_provider_sgseg"
EMULATOR_DIST = "sgseg_emulator"


class CheckFailed(Exception):
    pass


def run(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise CheckFailed(
            f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done.stdout + done.stderr


def install(uv: str, python: str, packages: list[str], constraints: list[str]) -> None:
    """``uv pip install`` of ``packages`` into the venv of ``python``, within ``constraints``."""
    run([uv, "pip", "install", "--quiet", "--python", python, *packages, *constraints])


def check(what: str, ok: bool, why: str = "") -> None:
    if not ok:
        raise CheckFailed(f"{what}: {why}")
    print(f"ok {what}", flush=True)


def build(uv: str, dist: Path, *, reuse: bool = False) -> dict[str, list[Path]]:
    if not reuse:
        shutil.rmtree(dist, ignore_errors=True)
        run([uv, "build", "--quiet", "--out-dir", str(dist), str(REPO)])
        run([uv, "build", "--quiet", "--out-dir", str(dist), str(REPO / "emulator")])
    built = {name: sorted(dist.glob(f"{name}-*")) for name in (PROVIDER_DIST, EMULATOR_DIST)}
    for name, files in built.items():
        kinds = sorted(path.suffix for path in files)
        check(f"built wheel and sdist of {name}", kinds == [".gz", ".whl"], f"found {files}")
    run(
        [
            sys.executable,
            "-m",
            "twine",
            "check",
            "--strict",
            *(str(path) for files in built.values() for path in files),
        ]
    )
    check("twine check --strict of both distributions", True)
    extras = [
        line
        for line in wheel_metadata(wheel(built[PROVIDER_DIST])).splitlines()
        if line.startswith("Provides-Extra:")
    ]
    check("the provider wheel's metadata declares no extras (no dev/bench)", not extras, str(extras))
    return built


def wheel_metadata(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return archive.read(name).decode()


def wheel(files: list[Path]) -> Path:
    return next(path for path in files if path.suffix == ".whl")


def provider_alone(uv: str, venv: Path, wheel: Path, airflow: str, constraints: list[str]) -> dict[str, str]:
    shutil.rmtree(venv, ignore_errors=True)
    run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
    python = str(venv / "bin" / "python")
    install(uv, python, [str(wheel), f"apache-airflow=={airflow}"], constraints)
    home = Path(tempfile.mkdtemp(prefix="pkgcheck-airflow-home-"))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("VIRTUAL_ENV", None)

    where = run([python, "-c", f"import {PROVIDER_DIST}; print({PROVIDER_DIST}.__file__)"], env=env, cwd=home)
    check("the provider imports from the installed wheel", str(venv) in where, where)

    listed = subprocess.run(
        [str(venv / "bin" / "airflow"), "providers", "list", "--output", "json"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
    )
    check("airflow providers list exits 0", listed.returncode == 0, listed.stderr[-3000:])
    lines = listed.stdout.splitlines()
    table = next((line for line in lines if line.startswith("[{")), "[]")  # the rest is Airflow's log
    providers = {p["package_name"]: p for p in json.loads(table)}
    ours = providers.get("airflow-provider-sgseg")
    check("airflow providers list shows airflow-provider-sgseg", ours is not None, listed.stdout[-2000:])
    noisy = [
        line
        for line in [*lines, *listed.stderr.splitlines()]
        if line != table
        and any(word in line.lower() for word in ("warning", "error", "exception"))
        and any(name in line.lower() for name in ("sgseg", "sendgrid"))
    ]
    check("no error or warning about the provider", not noisy, "\n".join(noisy))

    missing = (
        run(
            [
                python,
                "-c",
                "import importlib.util as u; "
                "print([m for m in ('sqlglot', 'sgseg_emulator') if u.find_spec(m)])",
            ],
            env=env,
            cwd=home,
        )
        .strip()
        .splitlines()[-1]
    )
    check("sqlglot and sgseg_emulator are not installed", missing == "[]", missing)
    check(
        "no sgseg-emulator command",
        not (venv / "bin" / "sgseg-emulator").exists()
        and shutil.which("sgseg-emulator", path=env["PATH"]) is None,
    )

    install(uv, python, ["pytest"], constraints)
    config = subprocess.run(
        [python, "-m", "pytest", "--trace-config", "--collect-only", "-q", "-p", "no:cacheprovider"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
    )
    check("pytest runs there", config.returncode in (0, 5), config.stderr[-2000:])  # 5: no tests
    plugins = [line for line in config.stdout.splitlines() if EMULATOR_DIST in line]
    check("pytest there loads no sgseg plugin", not plugins, "\n".join(plugins))
    return env


def pipeline_with_wheels(
    uv: str, venv: Path, wheel: Path, env: dict[str, str], constraints: list[str]
) -> None:
    python = str(venv / "bin" / "python")
    # The example pipeline lands its Single Send results in a SQLite warehouse: a user doing that
    # installs Airflow's SQLite provider next to this one.
    provider_sqlite = "apache-airflow-providers-sqlite"
    install(uv, python, [str(wheel), provider_sqlite, "pytest-timeout"], constraints)
    work = Path(tempfile.mkdtemp(prefix="pkgcheck-tests-"))
    shutil.copytree(REPO / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "dags", work / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    (work / "pytest.ini").write_text("[pytest]\ntimeout = 600\nfilterwarnings = ignore::DeprecationWarning\n")
    test_env = {key: value for key, value in env.items() if key != "AIRFLOW_HOME"}
    out = run(
        [
            python,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/dags/test_pipeline.py::test_refresh_then_single_send_end_to_end",
        ],
        env=test_env,
        cwd=work,
    )
    check(
        "example pipeline with the installed wheels (1 segment, 1 refresh, 1 send)",
        " passed" in out,
        out[-2000:],
    )
    shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--airflow", default="3.0.6", help="Airflow version for the clean venv")
    parser.add_argument("--work", type=Path, default=REPO / "dist", help="where wheels and the venv go")
    parser.add_argument(
        "--built", type=Path, help="take both distributions from here instead of building them (make dist)"
    )
    parser.add_argument("--skip-pipeline", action="store_true", help="only the build and install checks")
    args = parser.parse_args()

    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
    constraints_file = REPO / "ci" / f"constraints-airflow-{args.airflow}.txt"
    if not constraints_file.exists():  # an unpinned install is what the check exists to rule out
        lines = sorted(
            path.stem.removeprefix("constraints-airflow-")
            for path in constraints_file.parent.glob("constraints-airflow-*.txt")
        )
        print(
            f"FAILED no {constraints_file.relative_to(REPO)}: the supported lines are {' '.join(lines)}",
            flush=True,
        )
        return 1
    constraints = ["-c", str(constraints_file)]
    try:
        built = build(uv, args.built or args.work / "packages", reuse=args.built is not None)
        venv = args.work / f"venv-provider-only-{args.airflow}"
        env = provider_alone(uv, venv, wheel(built[PROVIDER_DIST]), args.airflow, constraints)
        if not args.skip_pipeline:
            pipeline_with_wheels(uv, venv, wheel(built[EMULATOR_DIST]), env, constraints)
    except CheckFailed as failure:
        print(f"FAILED {failure}", flush=True)
        return 1
    print("package check passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
