"""Where the Streamlit app's files are and the command that serves them, for `normbt-viz app` (nothing here
imports Streamlit).

In a checkout the app is `app.py` and `pages/` beside the package; an installed package ships them as data under
`<prefix>/share/normbt-viz` (pyproject.toml). The server settings are the shipped `.streamlit/config.toml`, passed
as flags, because Streamlit reads that file only from the folder it is started in.
"""

from __future__ import annotations

import dataclasses
import sys
import sysconfig
import tomllib
from pathlib import Path

from normbt_viz.errors import SpecError
from normbt_viz.params import check_fields, param

CHECKOUT = Path(__file__).resolve().parents[2]
INSTALLED = Path(sysconfig.get_paths()["data"]) / "share" / "normbt-viz"


@dataclasses.dataclass
class AppOptions:
    """`normbt-viz app`'s own options (Streamlit's flags pass through after --)."""

    port: int = param(8501, "the localhost port the app is served on", low=1, high=65535, group="server")

    def validate(self) -> "AppOptions":
        check_fields(self)
        return self


def app_folder() -> Path:
    """The folder holding app.py, pages/ and .streamlit/: the checkout's, else the installed copy."""
    for folder in (CHECKOUT, INSTALLED):
        if (folder / "app.py").is_file() and (folder / "pages").is_dir():
            return folder
    raise SpecError(f"the app's files (app.py, pages/) are neither beside the package ({CHECKOUT}) nor installed in {INSTALLED}; "
                    "reinstall with pip install normbt-viz")


def server_flags(folder: Path) -> list[str]:
    """The settings of `<folder>/.streamlit/config.toml` as `--section.key value` flags."""
    config = folder / ".streamlit" / "config.toml"
    if not config.is_file():
        return ["--server.address", "localhost"]
    flags = []
    for section, values in tomllib.loads(config.read_text()).items():
        for key, value in values.items():
            flags += [f"--{section}.{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return flags


def app_command(port: int, extra: list[str]) -> list[str]:
    """The command that serves the app on localhost:`port`; `extra` streamlit flags come last and win. It runs in
    the caller's folder, whose ./runs (or $NORMBT_VIZ_RUNS) the app reads."""
    folder = app_folder()
    return [sys.executable, "-m", "streamlit", "run", str(folder / "app.py"), *server_flags(folder), "--server.port", str(port), *extra]
