"""Running the `artflow` CLI in-process for the CLI and forged-input tests."""

from __future__ import annotations

from core import cli


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `artflow ARGV`; never a traceback, whatever the input."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err
