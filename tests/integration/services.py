"""Redis and MariaDB server processes of the integration suite, stoppable and restartable.

Each runs on its own free port with its data in a temporary directory, so a
test may stop and start it without touching the machine's shared servers.
Invariant: ``start()`` returns only when the server answers (PING / ``SELECT 1``
over TCP); ``stop()`` returns only when the process has exited.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pymysql
import redis

PORT_RANGE = (20000, 32000)  # below the kernel's ephemeral range, where clients' ports come from


def free_port_range(count: int) -> int:
    """A first port such that ``count`` consecutive ports are free right now (never ephemeral
    ports: an outgoing connection could take one between this check and the bind)."""
    for _ in range(200):
        first = random.randrange(*PORT_RANGE)
        try:
            for port in range(first, first + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError("no free port range")


READY_TIMEOUT_SECS = 60.0
POLL_SECS = 0.05


def _wait(condition, what: str, timeout_secs: float = READY_TIMEOUT_SECS) -> None:
    deadline = time.monotonic() + timeout_secs
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(POLL_SECS)


def _port_closed(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return False
    except OSError:
        return True


class ServerProcess:
    """A server process started with a fixed command line; restartable on the same port."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port_range(1)
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        raise NotImplementedError

    def start(self) -> float:
        """Start and wait until it answers; returns the seconds it took."""
        began = time.monotonic()
        log = open(self.workdir / f"{self.name}.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        _wait(lambda: self.proc is not None and self.proc.poll() is None and self.answers(), self.name)
        return time.monotonic() - began

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _wait(lambda: _port_closed(self.port), f"{self.name} port closing")


class RedisServer(ServerProcess):
    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            shutil.which("redis-server") or "redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.workdir),
        ]  # fmt: skip

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False


def install_datadir(datadir: Path, user: str) -> None:
    """A fresh MariaDB data directory (``mariadb-install-db``), root without a password."""
    subprocess.run(
        [
            shutil.which("mariadb-install-db") or "mariadb-install-db", "--no-defaults",
            f"--datadir={datadir}", f"--user={user}", "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


class MariaDBServer(ServerProcess):
    """``mariadbd`` with its own ``--datadir`` (made once by ``mariadb-install-db``)."""

    name = "mariadb"
    database = "dt_integration"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.datadir = workdir / "mariadb-data"
        self.install_secs = 0.0

    @property
    def url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{self.database}"

    def install(self) -> None:
        began = time.monotonic()
        install_datadir(self.datadir, "root")
        self.install_secs = time.monotonic() - began

    def command(self) -> list[str]:
        return [
            shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults",
            f"--datadir={self.datadir}", "--user=root", f"--port={self.port}", "--bind-address=127.0.0.1",
            f"--socket={self.workdir}/mariadb.sock", f"--pid-file={self.workdir}/mariadb.pid",
            "--skip-log-bin", "--skip-name-resolve", "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=16M", "--innodb-flush-log-at-trx-commit=2", "--max-connections=500",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
            "--innodb-print-all-deadlocks=ON",
        ]  # fmt: skip

    def answers(self) -> bool:
        try:
            conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=1)
        except pymysql.MySQLError:
            return False
        conn.close()
        return True

    def create_database(self) -> None:
        conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS {self.database} CHARACTER SET utf8mb4")
        finally:
            conn.close()


class SentinelGroup:
    """A Redis primary, two replicas and three sentinels (Debian's ``redis-sentinel``, else
    ``redis-server --sentinel``) on free loopback ports, each with its files in ``workdir``.

    ``down_after_ms`` is Sentinel's ``down-after-milliseconds`` (production: ~5000; tests use
    less so a failover takes a few seconds). Invariant: ``start()`` returns once every replica
    is in sync and every sentinel knows both replicas and both other sentinels, so a failover
    can be started at once; ``stop()`` SIGKILLs whatever is still running.
    """

    def __init__(self, workdir: Path, master_name: str, down_after_ms: int = 1000) -> None:
        self.workdir = workdir
        self.master_name = master_name
        self.down_after_ms = down_after_ms
        first = free_port_range(6)
        self.redis_ports = [first, first + 1, first + 2]
        self.sentinel_ports = [first + 3, first + 4, first + 5]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def sentinels(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.sentinel_ports]

    def _spawn(self, port: int, command: list[str]) -> None:
        log = open(self.workdir / f"redis-{port}.log", "ab")  # noqa: SIM115 - owned by the process
        self.procs[port] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def _redis_command(self, port: int, replica_of: int | None) -> list[str]:
        command = [
            shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
            "--dbfilename", f"dump-{port}.rdb",
        ]  # fmt: skip
        return command + (["--replicaof", "127.0.0.1", str(replica_of)] if replica_of else [])

    def _sentinel_command(self, port: int, primary_port: int) -> list[str]:
        conf = self.workdir / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
            f"sentinel monitor {self.master_name} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {self.master_name} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.master_name} {max(3000, self.down_after_ms * 3)}\n"
            f"sentinel parallel-syncs {self.master_name} 2\n"
        )
        binary = shutil.which("redis-sentinel")
        if binary:
            return [binary, str(conf)]
        return [shutil.which("redis-server") or "redis-server", str(conf), "--sentinel"]

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1, decode_responses=True)

    def start(self) -> None:
        primary, *replicas = self.redis_ports
        self._spawn(primary, self._redis_command(primary, None))
        for port in replicas:
            self._spawn(port, self._redis_command(port, primary))
        _wait(lambda: self._connected_replicas(primary) == len(replicas), "replicas in sync")
        for port in self.sentinel_ports:
            self._spawn(port, self._sentinel_command(port, primary))
        _wait(self._sentinels_agree, "sentinels discovering each other")

    def _connected_replicas(self, port: int) -> int:
        try:
            info = self.client(port).info("replication")
        except redis.RedisError:
            return -1
        return sum(
            1 for key, value in info.items() if key.startswith("slave") and value.get("state") == "online"
        )

    def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            try:
                state = self.client(port).sentinel_master(self.master_name)
            except redis.RedisError:
                return False
            assert isinstance(state, dict)
            if int(state["num-slaves"]) < 2 or int(state["num-other-sentinels"]) < 2:
                return False
        return True

    def primary_port(self) -> int | None:
        """The primary's port as a majority of the sentinels name it (None: no agreement)."""
        votes: dict[int, int] = {}
        for port in self.sentinel_ports:
            try:
                address = self.client(port).sentinel_get_master_addr_by_name(self.master_name)
            except redis.RedisError:
                continue
            if isinstance(address, tuple):
                votes[int(address[1])] = votes.get(int(address[1]), 0) + 1
        best = max(votes.items(), key=lambda item: item[1], default=None)
        return best[0] if best and best[1] >= 2 else None

    def kill_primary(self) -> int:
        """SIGKILL the primary; returns its port."""
        port = self.primary_port()
        assert port is not None
        self.procs[port].kill()
        self.procs[port].wait()
        return port

    def wait_for_new_primary(self, old_port: int, timeout_secs: float = 30.0) -> int:
        """Until the sentinels name another primary that answers as one; returns its port."""

        def promoted() -> bool:
            port = self.primary_port()
            if port is None or port == old_port:
                return False
            try:
                return self.client(port).role()[0] == "master"
            except redis.RedisError:
                return False

        _wait(promoted, "a Sentinel failover", timeout_secs)
        port = self.primary_port()
        assert port is not None
        return port

    def heal(self) -> None:
        """Restart killed Redis nodes as replicas of the current primary, until every sentinel
        sees two healthy replicas again (so one group serves several failover tests)."""
        primary = self.primary_port()
        assert primary is not None
        dead = [port for port in self.redis_ports if self.procs[port].poll() is not None]
        for port in dead:
            self._spawn(port, self._redis_command(port, primary))
        if dead:
            _wait(lambda: self._connected_replicas(primary) == 2, "replicas back in sync")
            _wait(lambda: self._healthy_replicas_seen() == 2, "sentinels seeing the replicas again")

    def _healthy_replicas_seen(self) -> int:
        seen = []
        for port in self.sentinel_ports:
            try:
                replicas = self.client(port).sentinel_slaves(self.master_name)
            except redis.RedisError:
                return -1
            seen.append(
                sum(1 for r in replicas if not (r["is_sdown"] or r["is_odown"] or r["is_disconnected"]))
            )
        return min(seen)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


GALERA_PROVIDER = "/usr/lib/galera/libgalera_smm.so"
# How fast the survivors evict a node that stopped answering (Galera's defaults: 5 s suspect,
# 15 s inactive). Until then the group cannot order new write sets: commits wait.
GALERA_FAILURE_DETECTION = (
    "evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S;"
    "evs.suspect_timeout=PT2S;evs.inactive_timeout=PT3S"
)


class GaleraCluster:
    """Three MariaDB Galera nodes (Debian's ``galera-4``) behind HAProxy, on free loopback ports.

    HAProxy sends every connection to ONE node (the others are ``backup``), so writes never
    conflict in certification and a session reads its own writes; when that node stops
    answering HAProxy's check, new connections go to the next. ``wsrep_sync_wait=1`` makes a
    read on the node that takes over wait until it has applied every write set the cluster
    committed before it. Nodes run as the ``mysql`` user (the rsync state transfer that
    copies the first node's data to the others runs as the server's user), with their files
    in a directory of their own that user may enter.
    """

    def __init__(self, workdir: Path, database: str = "dt_galera") -> None:
        self.workdir = workdir
        self.database = database
        first = free_port_range(13)
        self.sql_ports = [first, first + 1, first + 2]
        self.group_ports = [first + 3, first + 4, first + 5]
        self.ist_ports = [first + 6, first + 7, first + 8]
        self.sst_ports = [first + 9, first + 10, first + 11]
        self.proxy_port = first + 12
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.proxy: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The app's DATABASE_URL: HAProxy."""
        return f"mysql+pymysql://root@127.0.0.1:{self.proxy_port}/{self.database}"

    def _node_dir(self, index: int) -> Path:
        return self.workdir / f"galera-{index}"

    def _command(self, index: int, bootstrap: bool) -> list[str]:
        node = self._node_dir(index)
        members = ",".join(f"127.0.0.1:{port}" for port in self.group_ports)
        group, ist, sst = self.group_ports[index], self.ist_ports[index], self.sst_ports[index]
        command = [
            shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={node}/data",
            "--user=mysql", f"--port={self.sql_ports[index]}", "--bind-address=127.0.0.1",
            f"--socket={node}/mariadb.sock", f"--pid-file={node}/mariadb.pid", "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M", "--max-connections=300",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
            "--binlog-format=ROW", "--default-storage-engine=InnoDB", "--innodb-autoinc-lock-mode=2",
            "--wsrep-on=ON", f"--wsrep-provider={GALERA_PROVIDER}", "--wsrep-cluster-name=datingtoday",
            f"--wsrep-cluster-address=gcomm://{members}", f"--wsrep-node-name=node{index}",
            f"--wsrep-node-address=127.0.0.1:{group}",
            f"--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:{group};"
            f"ist.recv_addr=127.0.0.1:{ist};gcache.size=64M;{GALERA_FAILURE_DETECTION}",
            f"--wsrep-sst-receive-address=127.0.0.1:{sst}", "--wsrep-sst-method=rsync",
            "--wsrep-sync-wait=1",
        ]  # fmt: skip
        return command + (["--wsrep-new-cluster"] if bootstrap else [])

    def node_answers(self, index: int) -> bool:
        try:
            conn = pymysql.connect(
                host="127.0.0.1", port=self.sql_ports[index], user="root", connect_timeout=1
            )
        except pymysql.MySQLError:
            return False
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW STATUS LIKE 'wsrep_local_state_comment'")
                row = cur.fetchone()
            return row is not None and row[1] == "Synced"
        except pymysql.MySQLError:
            return False
        finally:
            conn.close()

    def _start_node(self, index: int, bootstrap: bool) -> None:
        log = open(self._node_dir(index) / "mariadb.log", "ab")  # noqa: SIM115 - owned by the process
        self.procs[index] = subprocess.Popen(
            self._command(index, bootstrap), stdout=log, stderr=subprocess.STDOUT
        )

    def start(self) -> None:
        self.workdir.chmod(0o755)
        for index in range(3):
            node = self._node_dir(index)
            node.mkdir()
            shutil.chown(node, "mysql", "mysql")
            install_datadir(node / "data", "mysql")
        self._start_node(0, bootstrap=True)
        _wait(lambda: self.node_answers(0), "the first Galera node")
        for index in (1, 2):  # one joiner at a time: each copies the first node's data
            self._start_node(index, bootstrap=False)
            _wait(lambda index=index: self.node_answers(index), f"Galera node {index} joining")
        conn = pymysql.connect(host="127.0.0.1", port=self.sql_ports[0], user="root", autocommit=True)
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {self.database} CHARACTER SET utf8mb4")
        conn.close()
        self._start_proxy()

    def _start_proxy(self) -> None:
        servers = "\n".join(
            f"    server node{index} 127.0.0.1:{port} check{' backup' if index else ''}"
            for index, port in enumerate(self.sql_ports)
        )
        conf = self.workdir / "haproxy.cfg"
        conf.write_text(
            "global\n    maxconn 2000\n"
            "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1h\n    timeout server 1h\n"
            f"listen galera\n    bind 127.0.0.1:{self.proxy_port}\n"
            "    default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions\n"
            f"{servers}\n"
        )
        log = open(self.workdir / "haproxy.log", "ab")  # noqa: SIM115 - owned by the process
        self.proxy = subprocess.Popen(
            [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _wait(lambda: not _port_closed(self.proxy_port), "haproxy")

    def kill_node(self, index: int) -> None:
        self.procs[index].kill()
        self.procs[index].wait()

    def count_rows(self, index: int, table: str) -> set[int]:
        conn = pymysql.connect(
            host="127.0.0.1", port=self.sql_ports[index], user="root", database=self.database
        )
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT id FROM {table}")
                return {int(row[0]) for row in cur.fetchall()}
        finally:
            conn.close()

    def stop(self) -> None:
        for proc in [*self.procs.values(), self.proxy]:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
