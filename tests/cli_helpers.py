"""Running the `tracker` command line inside a test, as a user's shell would see it."""

from __future__ import annotations

import pytest

from tracker.cli import main


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """`tracker ARGS...`: its exit code (0 when it returns normally), standard output and standard error."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exit_info.value.code or 0, out, err
