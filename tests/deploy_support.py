"""The documented deployment, run for real: the gunicorn command and the nginx site of
docs/live-feed.md (with docs/deployment.md's upstream of several app nodes), taken from the
documents themselves so that what they say is what is tested."""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import IN_CI
from .live_support import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
LIVE_FEED_DOC = ROOT / "docs" / "live-feed.md"
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"
DOC_UPSTREAM = "127.0.0.1:8000"
UPSTREAM_BLOCK = re.compile(r"upstream omni_api \{.*?\}\n", re.S)


def documented_block(language: str, doc: Path = LIVE_FEED_DOC) -> str:
    """The first fenced ``language`` block of ``doc`` (docs/live-feed.md)."""
    text = doc.read_text()
    match = re.search(rf"```{language}\n(.*?)```", text, re.S)
    assert match, f"docs/{doc.name} has no {language} block"
    return match.group(1)


def nodes_site(ports: list[int]) -> str:
    """docs/live-feed.md's nginx site with docs/deployment.md's upstream of app nodes, whose
    documented addresses are replaced, in order, by ``ports`` on loopback."""
    upstream = UPSTREAM_BLOCK.search(documented_block("nginx", DEPLOYMENT_DOC)).group(0)
    addresses = re.findall(r"server (\S+);", upstream)
    assert len(addresses) == len(ports), upstream
    for address, port in zip(addresses, ports, strict=True):
        upstream = upstream.replace(f"server {address};", f"server 127.0.0.1:{port};")
    return UPSTREAM_BLOCK.sub(lambda _: upstream, documented_block("nginx"), count=1)


def gunicorn_command() -> list[str]:
    """The documented gunicorn command (the line of the bash block that starts it)."""
    line = next(
        line for line in documented_block("bash").splitlines() if line.startswith("gunicorn ")
    )
    command = shlex.split(line)
    command[0] = str(Path(sys.executable).parent / "gunicorn")
    return command


class Gunicorn:
    """The reference host under gunicorn, started with the documented command."""

    def __init__(self, tmp_path: Path, env: dict, extra_args: tuple = ()):
        self.port = free_port()
        self.log = tmp_path / f"gunicorn-{self.port}.log"
        self.env = {
            **os.environ,
            "OMNI_BIND": f"127.0.0.1:{self.port}",
            "PYTHONPATH": str(ROOT),
            **{key: str(value) for key, value in env.items()},
        }
        self.extra_args = list(extra_args)
        self.process = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Gunicorn":
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                gunicorn_command() + self.extra_args,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port)
        return self

    def kill(self) -> None:
        """kill -9 the master and its workers at once: a node that dies."""
        pids = [self.process.pid, *children(self.process.pid)]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


def children(pid: int) -> list[int]:
    """The ids of the processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it exited meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def nginx_binary() -> str:
    binary = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if binary is None:
        if IN_CI:
            pytest.fail("CI=true: nginx is not installed (Debian package nginx)")
        pytest.skip("nginx is not installed")
    return binary


class Nginx:
    """nginx with the documented site in front of ``upstream_port`` (or the given
    ``site``), on a free port."""

    def __init__(
        self,
        tmp_path: Path,
        upstream_port: int | None = None,
        site: str | None = None,
        worker_connections: int = 256,
    ):
        self.port = free_port()
        self.prefix = tmp_path / f"nginx-{self.port}"
        self.prefix.mkdir()
        if site is None:
            site = documented_block("nginx").replace(DOC_UPSTREAM, f"127.0.0.1:{upstream_port}")
        site = re.sub(r"listen\s+80\b", f"listen 127.0.0.1:{self.port}", site)
        temp = self.prefix / "temp"
        temp.mkdir()
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(
            "user root;\nworker_processes 1;\n"
            f"error_log {self.prefix}/error.log info;\npid {self.prefix}/nginx.pid;\n"
            f"events {{ worker_connections {worker_connections}; }}\n"
            "http {\n"
            f"  access_log {self.prefix}/access.log;\n"
            f"  client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n"
            f"  fastcgi_temp_path {temp}/fastcgi;\n  uwsgi_temp_path {temp}/uwsgi;\n"
            f"  scgi_temp_path {temp}/scgi;\n"
            f"{site}\n}}\n"
        )
        self.process = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Nginx":
        command = [nginx_binary(), "-p", str(self.prefix), "-c", str(self.conf)]
        check = subprocess.run([*command, "-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen([*command, "-g", "daemon off;"])
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
