"""The Redis store on a three-master Redis Cluster started on loopback (skipped without redis-server).

Group keys are hash-tagged, so each group's WATCH/MULTI transaction stays in one slot; the test checks
that admissions on the cluster decide exactly like the memory store, and that values and leases work.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
from store_worker import REDIS_SERVER, free_port

from plumasync import Budget, FakeClock
from plumasync.governor import GroupKey, GroupState, Lane, MemoryStore, RateHeaders

REDIS_CLI = shutil.which("redis-cli")
pytestmark = [
    pytest.mark.skipif(REDIS_SERVER is None or REDIS_CLI is None,
                       reason="redis-server and redis-cli are needed to start a Redis Cluster on loopback "
                              "(apt-get install redis-server)"),
    pytest.mark.anyio,
]
pytest.importorskip("redis", reason="the redis package is not installed (pip install 'plumasync[redis]')")

from redis.asyncio.cluster import RedisCluster  # noqa: E402

from plumasync.governor.stores.redis import RedisStore  # noqa: E402

T0 = 1_700_000_000.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[int]]:
    assert REDIS_SERVER is not None and REDIS_CLI is not None
    ports = _cluster_ports(3)
    work = tempfile.mkdtemp(prefix="plumasync-cluster-")
    procs = [subprocess.Popen([REDIS_SERVER, "--port", str(p), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                               "--cluster-config-file", f"{work}/nodes-{p}.conf", "--save", "",
                               "--appendonly", "no", "--dir", work],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in ports]
    try:
        for p in ports:
            _wait_ping(p)
        subprocess.run([REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=30)
        deadline = time.monotonic() + 20
        while b"cluster_state:ok" not in subprocess.run([REDIS_CLI, "-p", str(ports[0]), "cluster", "info"],
                                                        capture_output=True, timeout=5).stdout:
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not become ready")
            time.sleep(0.1)
        yield ports
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(work, ignore_errors=True)


def _cluster_ports(n: int) -> list[int]:
    """Free ports below 55536: a cluster node also listens on its port + 10000."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port <= 55535 and port not in ports and _free(port + 10000):
            ports.append(port)
    return ports


def _free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_ping(port: int) -> None:
    assert REDIS_CLI is not None
    deadline = time.monotonic() + 10
    while subprocess.run([REDIS_CLI, "-p", str(port), "ping"], capture_output=True, timeout=5).stdout.strip() \
            != b"PONG":
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server on {port} did not start")
        time.sleep(0.05)


async def test_groups_on_three_masters_decide_like_the_memory_store(cluster: list[int]) -> None:
    clock = FakeClock(T0)
    client = RedisCluster(host="127.0.0.1", port=cluster[0])
    store = RedisStore(client, clock=clock, prefix=f"c{random.randrange(10**6)}")
    memory = MemoryStore(clock)
    policy = Budget(limit=5, window=60.0, reserve=1).policy()
    keys = [GroupKey("host", f"{random.Random(i).getrandbits(64):016x}", "data") for i in range(30)]  # accounts
    try:
        await client.initialize()
        slots = {_node_of(client, store.state_key(k)) for k in keys}
        assert len(slots) == 3, "the groups should live on all three masters"
        rng = random.Random(7)
        for step in range(200):
            key = rng.choice(keys)
            permit = f"p{step}"
            lane = rng.choice(list(Lane))
            got, expected = await store.acquire(key, policy, lane, permit), await memory.acquire(key, policy, lane,
                                                                                                  permit)
            assert got == expected, f"step {step}"
            if got.decision.granted:
                headers = RateHeaders(limit=5, remaining=rng.randint(0, 4), reset=(clock.now() // 60 + 1) * 60,
                                      date=float(int(clock.now())))
                await store.observe(key, policy, permit, 200, headers)
                await memory.observe(key, policy, permit, 200, headers)
            assert (await store.state(key) or GroupState.new(policy)) == (memory.state(key) or GroupState.new(policy))
            await clock.advance(rng.random() * 5)
        assert sorted(await store.keys()) == sorted(await memory.keys())
        await store.set_value("cred", b"x", 30)
        assert await store.get_value("cred") == b"x"
        assert await store.claim("auth", "me", 10) and not await store.claim("auth", "you", 10)
        assert not store.degraded
    finally:
        await store.aclose()


def _node_of(client: RedisCluster, key: str) -> str:
    node = client.get_node_from_key(key)
    assert node is not None
    return node.name


async def test_redis_time_on_a_cluster(cluster: list[int]) -> None:
    """With the system clock the store reads TIME from the master holding the group."""
    store = RedisStore(RedisCluster(host="127.0.0.1", port=cluster[1]), prefix=f"t{random.randrange(10**6)}")
    policy = Budget(limit=5, window=60.0).policy()
    try:
        timed = await store.acquire(GroupKey("host", "abc", "data"), policy, Lane.INTERACTIVE, "p")
        assert timed.decision.granted and abs(timed.now - time.time()) < 5
    finally:
        await store.aclose()


async def test_fleet_counters_on_a_cluster(cluster: list[int]) -> None:
    """The cache statistics' counters (one hash per name) add up on a cluster too."""
    store = RedisStore(RedisCluster(host="127.0.0.1", port=cluster[2]), prefix=f"s{random.randrange(10**6)}")
    try:
        await store.add_counts("vt-stats|x", {"hits": 2, "misses": 1, "stale": 0})
        await store.add_counts("vt-stats|x", {"hits": 3})
        assert await store.get_counts("vt-stats|x") == {"hits": 5, "misses": 1}
    finally:
        await store.aclose()
