"""deploy/cluster.py: the simulated hosts differ from one host only by topology settings."""

from __future__ import annotations

from pathlib import Path

from deploy.cluster_topology import (
    APP_HOSTS,
    DB_HOSTS,
    HOSTS,
    REDIS_HOSTS,
    ClusterSettings,
    address,
    namespace,
)


def test_every_host_has_its_own_private_address_and_namespace() -> None:
    addresses = [address(host) for host in HOSTS]
    assert len(set(addresses)) == len(HOSTS)
    assert all(a.startswith("10.213.0.") for a in addresses)
    assert all(namespace(host).startswith("dtc-") and len(f"v-{host}") <= 15 for host in HOSTS)
    assert len(REDIS_HOSTS) == 3 and len(DB_HOSTS) == 3 and len(APP_HOSTS) == 2


def test_app_hosts_get_only_topology_settings(tmp_path: Path) -> None:
    settings = ClusterSettings(run_dir=tmp_path, processes_per_host=2)
    env = settings.app_env("app2")
    assert env["DT_BIND_ADDRESS"] == address("app2")
    assert env["REDIS_SENTINELS"] == ",".join(f"{address(h)}:26379" for h in REDIS_HOSTS)
    assert env["DATABASE_URL"].startswith("mysql+pymysql://root@127.0.0.1:3307/")  # the host's HAProxy
    assert address("edge") in env["TRUSTED_PROXIES"].split(",")
    edge = settings.edge_env()
    assert edge["DT_APP_HOSTS"] == f"{address('app1')},{address('app2')}"
    assert settings.base_url == f"http://{address('edge')}:8080"
