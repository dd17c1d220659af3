"""Developer sessions: ``nox -s tests``, ``lint``, ``typing``, ``bench``, ``demo``."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typing"]
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole test suite (Redis tests skip when redis-server is not installed)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-q", "-n", "2", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on the library, tests and benchmarks."""
    session.install("ruff")
    session.run("ruff", "check", "plumasync", "tests", "benchmarks", "noxfile.py")


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict on the library."""
    session.install("-e", ".[test]", "mypy", "types-defusedxml")
    session.run("mypy", "--strict", "plumasync")


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark in benchmarks/, printing the ratios recorded in benchmarks/README.md."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The newcomer's first command: harvest from the built-in sandbox."""
    session.install("-e", ".")
    session.run("plumasync", "demo")
