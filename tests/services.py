"""Helpers for tests that start real services on 127.0.0.1 and stop only what they started."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a process we started and its children (mlflow server spawns workers)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- A private local Ray head (`ray start --head --block`), stopped by process group, never `ray stop`.

def start_mlflow_server(root: Path, port: int) -> subprocess.Popen:
    """A real `mlflow server` (sqlite store and artifacts under `root`, log appended to root/server.log) on
    127.0.0.1:port, in its own process group; returns once /health answers (slow on a loaded machine)."""
    log = open(root / "server.log", "a")
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()  # the child keeps its own descriptor
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, timeout=180)
    except Exception:
        stop_group(proc)
        raise
    return proc


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports on 127.0.0.1."""
    ports: list[int] = []
    while len(ports) < n:
        p = free_port()
        if p not in ports:
            ports.append(p)
    return ports


def http_status(url: str, headers: dict | None = None, timeout: float = 5) -> int:
    """The HTTP status of a GET (error statuses are returned, not raised)."""
    import urllib.error

    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


class RayHead:
    """A `ray start --head --block` subprocess in its own process group, with a private temp dir, its own
    ports and its own auth token (RAY_AUTH_MODE=token + RAY_AUTH_TOKEN: ~/.ray/auth_token is neither read
    nor written). `client_env` is what a Ray CLI client needs to talk to this head. Stop it with stop():
    never `ray stop`, which stops every Ray on the machine.

    With `autoscaling=<cluster YAML or RayCluster manifest>` the head runs Ray's autoscaler over the fake
    multi-node provider with that file's node types (tests/autoscaling.py): it schedules no work, and the
    nodes the autoscaler starts live under the head's temp dir, so stop() and processes_using() cover them."""

    # On an overloaded machine the raylet can give up waiting for the dashboard agent's port file (a fixed
    # 15 s in Ray 2.60, "Timed out waiting for file .../dashboard_agent_listen_port_...") and `ray start`
    # then fails with "The current node timed out during startup": that startup race is retried once.
    STARTUP_RACE = "timed out during startup"

    def __init__(self, root: Path, *, num_cpus: int = 0, env: dict | None = None, timeout: float = 180,
                 attempts: int = 2, autoscaling: Path | None = None, **simulated):
        import secrets

        self.root = Path(root)
        self.num_cpus, self.extra_env = num_cpus, env or {}
        self.autoscaling, self.simulated = autoscaling, simulated
        self.token = secrets.token_hex(32)
        self.client_env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}
        for k in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH"):
            self.client_env.pop(k, None)
        for attempt in range(1, attempts + 1):
            self._start(attempt)
            try:
                self._wait_ready(timeout)
                return
            except RuntimeError as e:
                self.stop()
                if attempt == attempts or self.STARTUP_RACE not in str(e):
                    raise
                self.remove_temp_dir()
            except BaseException:
                self.stop()
                raise

    def _start(self, attempt: int) -> None:
        import tempfile

        # Ray's unix sockets live in TEMP/session_<date>_<time>_<pid>/sockets/ and their paths must stay under
        # 108 bytes: pytest's tmp_path is too deep, so the private temp dir is a short, fresh one in /tmp.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="tubelab-ray-", dir="/tmp"))
        (gcs, dash, client, agent_http, agent_grpc, rtenv, metrics, node_mgr, obj_mgr) = free_ports(9)
        self.dashboard_url = f"http://127.0.0.1:{dash}"
        self.gcs_address = f"127.0.0.1:{gcs}"
        env = {**self.client_env, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               "RAY_USAGE_STATS_ENABLED": "0", **self.extra_env}
        extra = []
        if self.autoscaling:
            import yaml

            from autoscaling import HEAD_ENV, simulated_cluster

            self.cluster_config = self.root / f"simulated-cluster-{attempt}.yaml"
            self.cluster_config.write_text(yaml.safe_dump(simulated_cluster(self.autoscaling, self.gcs_address,
                                                                            **self.simulated)))
            # RAY_TMPDIR: the autoscaler's nodes live under the head's temp dir too; RAY_ADDRESS: their processes
            # find this cluster by address, not by scanning the machine (the nodes register under the machine's
            # IP, the head under 127.0.0.1: a scan sees two clusters); PYTHONPATH: the provider class.
            env.update(HEAD_ENV, RAY_TMPDIR=str(self.temp_dir), RAY_ADDRESS=self.gcs_address,
                       PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
            extra = [f"--autoscaling-config={self.cluster_config}"]
        self.log_path = self.root / f"ray-start-{attempt}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
             f"--port={gcs}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
             f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent_http}",
             f"--dashboard-agent-grpc-port={agent_grpc}", f"--runtime-env-agent-port={rtenv}",
             f"--metrics-export-port={metrics}", f"--node-manager-port={node_mgr}",
             f"--object-manager-port={obj_mgr}", f"--num-cpus={self.num_cpus}", f"--temp-dir={self.temp_dir}",
             "--disable-usage-stats", *extra],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def auth_header(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def _wait_ready(self, timeout: float) -> None:
        """Up when `ray start` says so (the node registered) and the job API answers with our token."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            if "Ray runtime started" in self.log_path.read_text():
                try:
                    if http_status(f"{self.dashboard_url}/api/jobs/", self.auth_header) == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.5)
        raise TimeoutError(f"the Ray head was not up within {timeout} s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        """Terminate the `ray start --block` process group (its atexit handlers stop the node's processes)."""
        stop_group(self.proc)
        self._log.close()

    def remove_temp_dir(self) -> None:
        """Keep the node's logs beside the test's files, then delete the temp dir (after stop())."""
        import shutil

        logs = sorted(self.temp_dir.glob("session_*/logs"))
        if logs:
            try:
                shutil.copytree(logs[-1], self.root / f"ray-logs-{self.log_path.stem}", dirs_exist_ok=True)
            except (shutil.Error, OSError):
                pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def processes_using(path: str | os.PathLike) -> list[str]:
    """Live processes whose command line or working directory mentions `path` ("pid cmdline" each)."""
    import psutil

    path = str(path)
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if p.pid != os.getpid() and (path in cmd or path in (p.info["cwd"] or "")):
                found.append(f"{p.pid} {cmd[:200]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def wait_gone(path: str | os.PathLike, timeout: float = 30) -> list[str]:
    """Wait until no process uses `path` (see processes_using); returns those left after `timeout`."""
    deadline = time.monotonic() + timeout
    left = processes_using(path)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = processes_using(path)
    return left


# --- An S3 endpoint that fails some requests: a proxy in front of moto_server. --------------------------------

class FlakyS3Proxy:
    """HTTP proxy on 127.0.0.1 that answers every `fail_every`-th request with 503 SlowDown (what S3 sends
    when throttling) and forwards the rest to `upstream`. Counts are per proxy, across all clients."""

    SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                 b'<Message>Please reduce your request rate.</Message></Error>')

    def __init__(self, upstream: str, fail_every: int):
        import http.client
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        self.requests = self.failed = 0
        lock = threading.Lock()
        target = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with lock:
                    proxy.requests += 1
                    fail = proxy.requests % fail_every == 0
                    proxy.failed += fail
                if fail:
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(FlakyS3Proxy.SLOW_DOWN)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(FlakyS3Proxy.SLOW_DOWN)
                    return
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                response = conn.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                # a HEAD's Content-Length is the object's size, not that of the (empty) body
                size = response.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
                self.send_header("Content-Length", size)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PortGate:
    """A TCP forwarder on 127.0.0.1 in front of `upstream` (host, port) that can be closed and opened again on
    the same port: closed, it listens on nothing and has cut every connection, so a client sees what a stopped
    server gives it (connection refused); open, it forwards byte for byte. For outages of a shared real server."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream, self.port = upstream, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.open()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, []
        for s in [listener, *sockets]:
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                if self._listener is not listener:  # closed while connecting
                    client.close()
                    server.close()
                    return
                self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass
