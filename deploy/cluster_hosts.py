"""What runs on each simulated host of :mod:`deploy.cluster`: Redis, Sentinel, Galera, HAProxy, app, edge.

Every process is started inside its host's namespace (``ip netns exec``) with
its log in ``<run dir>/logs``; each ``start_*`` returns once that part answers
(or raises :class:`~deploy.cluster_topology.ClusterError`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from deploy.cluster_topology import (
    APP_HOSTS,
    DATABASE,
    DB_HOSTS,
    DB_PORT,
    GALERA_FAILURE_DETECTION,
    GALERA_PROVIDER,
    PROXY_PORT,
    REDIS_HOSTS,
    REDIS_PORT,
    SENTINEL_MASTER,
    SENTINEL_PORT,
    ClusterError,
    ClusterSettings,
    address,
    in_ns,
    run,
    wait_for,
)
from deploy.settings import REPO_DIR


class ClusterHosts:
    """Starts and asks the services of the simulated hosts."""

    def __init__(self, settings: ClusterSettings | None = None) -> None:
        self.settings = settings or ClusterSettings()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    # -- processes ----------------------------------------------------------------
    def spawn(self, name: str, host: str, command: list[str], env: dict[str, str] | None = None) -> None:
        log_dir = self.settings.run_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the process
        self.procs[name] = subprocess.Popen(
            in_ns(host, *command), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def start_redis(self) -> None:
        down_after = self.settings.sentinel_down_after_ms
        primary = address(REDIS_HOSTS[0])
        for host in REDIS_HOSTS:
            workdir = self.settings.run_dir / host
            workdir.mkdir(parents=True, exist_ok=True)
            command = [
                shutil.which("redis-server") or "redis-server", "--port", str(REDIS_PORT),
                "--bind", address(host), "--protected-mode", "no", "--save", "", "--appendonly", "no",
                "--dir", str(workdir),
            ]  # fmt: skip
            if host != REDIS_HOSTS[0]:
                command += ["--replicaof", primary, str(REDIS_PORT)]
            self.spawn(f"redis-{host}", host, command)
        for host in REDIS_HOSTS:
            conf = self.settings.run_dir / host / "sentinel.conf"
            conf.write_text(
                f"port {SENTINEL_PORT}\nbind {address(host)}\nprotected-mode no\n"
                f"dir {self.settings.run_dir / host}\n"
                f"sentinel monitor {SENTINEL_MASTER} {primary} {REDIS_PORT} 2\n"
                f"sentinel down-after-milliseconds {SENTINEL_MASTER} {down_after}\n"
                f"sentinel failover-timeout {SENTINEL_MASTER} {max(10000, down_after * 3)}\n"
                f"sentinel parallel-syncs {SENTINEL_MASTER} 2\n"
            )
            binary = shutil.which("redis-sentinel")
            command = [binary, str(conf)] if binary else ["redis-server", str(conf), "--sentinel"]
            self.spawn(f"sentinel-{host}", host, command)
        wait_for(self._sentinels_ready, "three sentinels knowing two replicas and each other")

    def _sentinels_ready(self) -> bool:
        for host in REDIS_HOSTS:
            answer = run(
                *in_ns("client", "redis-cli", "-h", address(host), "-p", str(SENTINEL_PORT)),
                "sentinel", "master", SENTINEL_MASTER, check=False, timeout=5,
            )  # fmt: skip
            fields = answer.stdout.split()
            state = dict(zip(fields[::2], fields[1::2], strict=False))
            if state.get("num-slaves") != "2" or state.get("num-other-sentinels") != "2":
                return False
        return True

    def redis_primary(self) -> str | None:
        """The address a majority of sentinels name as primary."""
        votes: dict[str, int] = {}
        for host in REDIS_HOSTS:
            answer = run(
                *in_ns("client", "redis-cli", "-h", address(host), "-p", str(SENTINEL_PORT)),
                "sentinel", "get-master-addr-by-name", SENTINEL_MASTER, check=False, timeout=5,
            )  # fmt: skip
            lines = answer.stdout.split()
            if answer.returncode == 0 and lines:
                votes[lines[0]] = votes.get(lines[0], 0) + 1
        best = max(votes.items(), key=lambda item: item[1], default=None)
        return best[0] if best and best[1] >= 2 else None

    def start_galera(self) -> None:
        members = ",".join(f"{address(h)}:4567" for h in DB_HOSTS)
        self.settings.run_dir.chmod(0o755)
        for index, host in enumerate(DB_HOSTS):
            node = self.settings.run_dir / host
            node.mkdir(parents=True, exist_ok=True)
            node.chmod(0o755)
            shutil.chown(node, "mysql", "mysql")
            run(
                shutil.which("mariadb-install-db") or "mariadb-install-db", "--no-defaults",
                f"--datadir={node}/data", "--user=mysql", "--auth-root-authentication-method=normal",
                "--skip-test-db", timeout=120,
            )  # fmt: skip
            ip = address(host)
            command = [
                shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={node}/data",
                "--user=mysql", f"--port={DB_PORT}", f"--bind-address={ip}",
                f"--socket={node}/mariadb.sock", f"--pid-file={node}/mariadb.pid", "--skip-name-resolve",
                "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=32M", "--max-connections=500",
                "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
                "--binlog-format=ROW", "--default-storage-engine=InnoDB", "--innodb-autoinc-lock-mode=2",
                "--innodb-flush-log-at-trx-commit=2",
                "--wsrep-on=ON", f"--wsrep-provider={GALERA_PROVIDER}", "--wsrep-cluster-name=datingtoday",
                f"--wsrep-cluster-address=gcomm://{members}", f"--wsrep-node-name={host}",
                f"--wsrep-node-address={ip}",
                f"--wsrep-provider-options=gcache.size=64M;{GALERA_FAILURE_DETECTION}",
                f"--wsrep-sst-receive-address={ip}:4444", "--wsrep-sst-method=rsync", "--wsrep-sync-wait=1",
            ]  # fmt: skip
            if index == 0:
                command.append("--wsrep-new-cluster")
            self.spawn(f"mariadb-{host}", host, command)
            wait_for(lambda host=host: self._galera_synced(host), f"Galera node {host}")
        root_grant = (
            f"CREATE DATABASE IF NOT EXISTS {DATABASE} CHARACTER SET utf8mb4;"
            "CREATE USER IF NOT EXISTS 'root'@'%';"
            "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;"
        )
        run(
            "mysql",
            f"--socket={self.settings.run_dir / DB_HOSTS[0] / 'mariadb.sock'}",
            "-uroot",
            "-e",
            root_grant,
        )

    def _galera_synced(self, host: str) -> bool:
        sock = self.settings.run_dir / host / "mariadb.sock"
        answer = run(
            "mysql", f"--socket={sock}", "-uroot", "-N", "-e",
            "SHOW STATUS LIKE 'wsrep_local_state_comment'", check=False, timeout=5,
        )  # fmt: skip
        return answer.returncode == 0 and "Synced" in answer.stdout

    def start_haproxy(self, host: str) -> None:
        servers = "\n".join(
            f"    server {db} {address(db)}:{DB_PORT} check{' backup' if index else ''}"
            for index, db in enumerate(DB_HOSTS)
        )
        conf = self.settings.run_dir / host / "haproxy.cfg"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            "global\n    maxconn 4000\n"
            "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1h\n    timeout server 1h\n"
            f"listen galera\n    bind 127.0.0.1:{PROXY_PORT}\n"
            "    default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions\n"
            f"{servers}\n"
        )
        self.spawn(
            f"haproxy-{host}", host, [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f", str(conf)]
        )

    def start_app_hosts(self) -> None:
        for host in APP_HOSTS:
            self.start_haproxy(host)
        env = self.settings.app_env(APP_HOSTS[0])
        time.sleep(1.0)
        migrate = in_ns(
            APP_HOSTS[0], self.settings.python, "-m", "flask", "--app", "wsgi_app", "db", "upgrade"
        )
        result = subprocess.run(migrate, env=env, cwd=REPO_DIR, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise ClusterError(f"migrations: {result.stderr.strip()[-2000:]}")
        for host in APP_HOSTS:
            result = subprocess.run(
                in_ns(host, self.settings.python, "-m", "deploy", "start"),
                env=self.settings.app_env(host), cwd=REPO_DIR, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            if result.returncode != 0:
                raise ClusterError(f"deploy start on {host}: {result.stderr.strip()}")

    def start_edge(self) -> None:
        from deploy.render import render_all
        from deploy.settings import StackSettings

        saved = dict(os.environ)
        try:
            os.environ.update(self.settings.edge_env())
            edge = StackSettings.from_env()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        _, nginx_conf = render_all(edge)
        prefix = edge.nginx_prefix
        run(
            *in_ns(
                "edge",
                edge.nginx_bin,
                "-p",
                f"{prefix}/",
                "-c",
                str(nginx_conf),
                "-e",
                f"{prefix}/logs/error.log",
            )
        )
        wait_for(lambda: self.health_from_client(), "the edge answering /api/health")

    def health_from_client(self, path: str = "/api/health") -> bool:
        answer = run(
            *in_ns("client", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2",
                   self.settings.base_url + path),
            check=False, timeout=10,
        )  # fmt: skip
        return answer.stdout.strip() == "200"
