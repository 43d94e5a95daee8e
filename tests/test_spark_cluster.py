"""The pipeline on real Spark deployments started by the tests, all bound to 127.0.0.1:

* a standalone cluster (a master and two workers from pyspark's own `bin/spark-class`, each worker
  with its own executor JVM and Python workers in its own working directory), running a config with
  relative paths from the driver's directory, with one worker JVM SIGKILLed in the middle of a stage
  (one run serves both checks): Spark reschedules its tasks on the other worker, and the shards are
  byte-identical to the local executor's (the session's `spark_local_run`);
* a Spark Connect server (`sbin/start-connect-server.sh`): the client only speaks the DataFrame API.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_config
from tests.spark_util import CI, full_config
from tests.test_spark import shard_files

pytestmark = [pytest.mark.spark, pytest.mark.slow]

JVM_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xss4m"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spark_home() -> Path:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if CI:
            pytest.fail("no Java runtime for Spark")
        pytest.skip("no Java runtime for Spark")
    import pyspark

    return Path(pyspark.__file__).parent


def spark_env(scratch: Path) -> dict[str, str]:
    home = spark_home()
    return {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(scratch),
            "SPARK_PID_DIR": str(scratch), "SPARK_DAEMON_MEMORY": "384m", "PYSPARK_PYTHON": sys.executable,
            "SPARK_DAEMON_JAVA_OPTS": JVM_OPTS, "SPARK_NO_DAEMONIZE": "1"}


def wait_for(check: Any, what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if result := check():
                return result
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} did not come up in {timeout:.0f}s")


def stop(proc: subprocess.Popen[Any]) -> None:
    """End a server started in its own process group, with every process it started."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            continue


class Cluster:
    """A standalone master and its workers, each a JVM of its own (stopped by process id)."""

    def __init__(self, scratch: Path, workers: int = 2):
        self.scratch = scratch
        self.env = spark_env(scratch)
        self.port, self.ui = free_port(), free_port()
        cls = str(Path(self.env["SPARK_HOME"]) / "bin" / "spark-class")
        log = open(scratch / "master.log", "w")  # closed with the process
        self.master = subprocess.Popen([cls, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                        "--port", str(self.port), "--webui-port", str(self.ui)],
                                       env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: socket.create_connection(("127.0.0.1", self.port), timeout=1).close() or True, "master")
        self.workers: list[subprocess.Popen[Any]] = []
        for i in range(workers):
            work = scratch / f"worker-{i}"
            work.mkdir()
            log = open(scratch / f"worker-{i}.log", "w")
            self.workers.append(subprocess.Popen(
                [cls, "org.apache.spark.deploy.worker.Worker", self.url, "--host", "127.0.0.1", "--cores", "1",
                 "--memory", "1536m", "--webui-port", str(free_port()), "--work-dir", str(work)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=work, start_new_session=True))
        wait_for(lambda: self.alive_workers() >= workers, "the workers")

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def alive_workers(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui}/json/", timeout=2) as resp:
            return int(json.load(resp).get("aliveworkers", 0))

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker `i` with the executor JVM and Python workers it launched (its process group)."""
        os.killpg(self.workers[i].pid, signal.SIGKILL)
        self.workers[i].wait(timeout=20)

    def close(self) -> None:
        for w in self.workers:
            stop(w)
        stop(self.master)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, spark_demo: Path, spark_models: dict[str, str],
            spark_local_run: Path) -> Path:
    """A directory with the demo data and models under relative names, and (out/local) the session's local
    run of the same pipeline, the reference every deployment's shards must equal."""
    work = tmp_path_factory.mktemp("driver_cwd")
    os.symlink(spark_demo, work / "data")
    os.symlink(Path(spark_models["quality"]).parent, work / "models")
    (work / "out").mkdir()
    os.symlink(spark_local_run, work / "out" / "local")
    return work


def relative_config(demo: Path, models: dict[str, str], output: str, executor: str,
                    spark: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Spark test pipeline with every path relative to the driver's working directory."""
    cfg = json.loads(json.dumps(full_config(demo, models, Path(output), executor)))
    model_dir = str(Path(models["quality"]).parent)
    for i in cfg["inputs"]:
        i["path"] = i["path"].replace(str(demo), "data")
    for s in cfg["stages"]:
        for key in ("model", "tokenizer"):
            if isinstance(s.get(key), str):
                s[key] = s[key].replace(model_dir, "models")
    cfg["output"] = output
    if spark is not None:
        cfg["spark"] = spark
    return cfg


def curate_env() -> dict[str, str]:
    from tests.conftest import REPO

    return {**os.environ, "PYTHONPATH": str(REPO), "SPARK_LOCAL_IP": "127.0.0.1"}


def shards(out: Path) -> dict[str, Any]:
    """The run's shard files (test_spark's `shard_files`), manifest.json parsed: the tokenizer path it
    names resolved (the deployments reach the models through the driver directory's `models` link, the
    session's local run by their own directory) and without the config hash, which hashes that spelling."""
    files: dict[str, Any] = shard_files(out)
    manifest = json.loads(files.pop("manifest.json"))
    manifest.pop("config_hash")
    manifest["tokenizer"]["path"] = os.path.realpath(manifest["tokenizer"]["path"])
    return {**files, "manifest.json": manifest}


def cluster_conf(cluster: Cluster) -> dict[str, Any]:
    return {"master": cluster.url, "conf": {
        "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
        "spark.executor.memory": "1g", "spark.executor.cores": "1", "spark.cores.max": "2",
        "spark.pyspark.python": sys.executable, "spark.log.level": "ERROR",
        "spark.driver.extraJavaOptions": JVM_OPTS, "spark.executor.extraJavaOptions": JVM_OPTS,
        "spark.task.maxFailures": "8", "spark.sql.shuffle.partitions": "8"}}


def run_curate(work: Path, config: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", str(config)], cwd=work, text=True,
                          capture_output=True, timeout=timeout, env=curate_env())
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


@pytest.fixture(scope="module")
def cluster_run(cluster: Cluster, workdir: Path, spark_demo: Path, spark_models: dict[str, str]) -> dict[str, Any]:
    """The pipeline on the standalone cluster with relative paths, one worker JVM SIGKILLed in the middle
    of near_dedup (its tasks rescheduled on the other): the run both cluster tests read. A run that
    fails the relative paths fails both; one that fails the rescheduling fails the second."""
    cfg = relative_config(spark_demo, spark_models, "out/cluster", "spark", cluster_conf(cluster))
    config = write_config(workdir / "cluster.yaml", cfg)
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(config)], cwd=workdir, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=curate_env())
    try:
        victim = workdir / "out" / "cluster" / "near_dedup" / "_stage.json"
        wait_for(lambda: victim.exists() or proc.poll() is not None, "the near_dedup stage", timeout=600)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(2.0)  # inside the stage: its Spark jobs are running on both workers
        cluster.kill_worker(0)
        _, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    return {"returncode": proc.returncode, "stderr": err, "out": workdir / "out" / "cluster"}


def test_standalone_cluster_with_relative_paths(cluster: Cluster, cluster_run: dict[str, Any], workdir: Path) -> None:
    assert cluster_run["returncode"] == 0, cluster_run["stderr"][-4000:]
    run = json.loads((cluster_run["out"] / "_run.json").read_text())
    assert run["status"] == "finished" and run["executor"] == "spark"
    local, spark = shards(workdir / "out" / "local"), shards(cluster_run["out"])
    assert sorted(spark) == sorted(local) and any(f.endswith(".bin") for f in local)
    assert all(spark[f] == local[f] for f in local)
    for i in range(2):  # the executors ran in the workers' own directories, and wrote nothing there
        assert not list((cluster.scratch / f"worker-{i}").rglob("out"))


def test_worker_killed_mid_stage_is_rescheduled(cluster: Cluster, cluster_run: dict[str, Any], workdir: Path) -> None:
    assert cluster_run["returncode"] == 0, cluster_run["stderr"][-4000:]
    assert cluster.alive_workers() == 1  # the kill landed: one worker left ...
    near_dedup = json.loads((cluster_run["out"] / "near_dedup" / "_manifest.json").read_text())
    assert near_dedup["executor"] == "spark"  # ... inside a stage that Spark ran to the end
    assert shards(cluster_run["out"]) == shards(workdir / "out" / "local")


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    scratch = tmp_path_factory.mktemp("connect")
    env = {**spark_env(scratch), "SPARK_DAEMON_MEMORY": "1g"}  # the server is also the Spark driver
    port = free_port()
    script = Path(env["SPARK_HOME"]) / "sbin" / "start-connect-server.sh"
    log = open(scratch / "server.log", "w")
    server = subprocess.Popen(
        ["bash", str(script), "--master", "local[2]", "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
         "--conf", f"spark.connect.grpc.binding.port={port}", "--conf", "spark.driver.host=127.0.0.1",
         "--conf", "spark.driver.bindAddress=127.0.0.1", "--conf", f"spark.driver.extraJavaOptions={JVM_OPTS}",
         "--conf", "spark.log.level=ERROR", "--conf", "spark.ui.enabled=false"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: server.poll() is None and socket.create_connection(("127.0.0.1", port), timeout=1).close()
                 is None, "the Spark Connect server", timeout=180)
        yield f"sc://127.0.0.1:{port}"
    finally:
        stop(server)


def test_spark_connect_gives_the_same_shards(connect_server: str, workdir: Path, spark_demo: Path,
                                             spark_models: dict[str, str]) -> None:
    cfg = relative_config(spark_demo, spark_models, "out/connect", "spark", {"remote": connect_server})
    run_curate(workdir, write_config(workdir / "connect.yaml", cfg))
    manifest = json.loads((workdir / "out" / "connect" / "near_dedup" / "_manifest.json").read_text())
    assert manifest["executor"] == "spark" and manifest["counts"]["removed"] > 0
    assert shards(workdir / "out" / "connect") == shards(workdir / "out" / "local")
