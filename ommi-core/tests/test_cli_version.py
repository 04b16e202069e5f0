"""``ommi --version``: ommi-core's version and each installed driver distribution's."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata


def test_version_names_core_and_the_drivers() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from ommi.cli import main; sys.exit(main())", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"ommi-core {metadata.version('ommi-core')}"
    assert f"ommi-sqlite {metadata.version('ommi-sqlite')}  (driver sqlite)" in lines
    # Listing versions loads no database client (the plugin modules are light).
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, contextlib, io\n"
            "from ommi.cli import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['--version'])\n"
            "print(sorted(m for m in ('aiosqlite', 'psycopg', 'pymongo') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr
