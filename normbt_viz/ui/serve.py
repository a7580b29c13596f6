"""Start the app as a local server process and wait until it answers: the browser tests and the app-memory
benchmark drive a real `streamlit run app.py` this way (nothing here imports Streamlit)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # where app.py lives


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    """Until `url` answers Streamlit's health check; raises if the server exits or the timeout passes."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("streamlit did not become healthy")


def start_app(env: dict, log_path: Path, timeout: float = 60) -> tuple[subprocess.Popen, str]:
    """(the server process, its URL) of `streamlit run app.py` on a free localhost port, once it is healthy.
    Its output goes to `log_path`. The caller terminates the process."""
    port = free_port()
    with open(log_path, "w") as log:  # the child keeps its own handle to the file
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address", "localhost",
             "--server.headless", "true", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://localhost:{port}"
    try:
        wait_healthy(url, server, timeout)
    except BaseException:
        server.terminate()
        server.wait(timeout=20)
        raise
    return server, url
