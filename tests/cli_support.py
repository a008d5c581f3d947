"""Running the ``communique`` command line: in-process (fast) or in a subprocess (as a user would)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

from click.testing import CliRunner

from communique.cli import main


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def last_line(self) -> str:
        return self.out.strip().splitlines()[-1]


def communique(*args: str, database: str | None = None, stdin: bytes | None = None,
               env: dict[str, str] | None = None, separate_process: bool = False,
               timeout: float = 300) -> Run:
    """Run ``communique ARGS``; return its exit code and output.

    In-process runs call the real command-line entry point with click's runner,
    which swaps standard streams and environment only; ``separate_process``
    starts ``python -m communique`` instead.
    """
    command = list(args) + (["--database", database] if database is not None else [])
    cleared = {k: None for k in os.environ if k.startswith("COMMUNIQUE_")}
    if not separate_process:
        result = CliRunner().invoke(main, command, input=stdin, env={**cleared, **(env or {})})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Run(result.exit_code, result.stdout, result.stderr)
    full_env = {k: v for k, v in os.environ.items() if k not in cleared}
    full_env.update(env or {})
    done = subprocess.run([sys.executable, "-m", "communique", *command], input=stdin,
                          capture_output=True, env=full_env, timeout=timeout)
    return Run(done.returncode, done.stdout.decode(), done.stderr.decode())
