"""Which cores vLLM's CPU build computes on (synth.cpu_binding), on made-up /sys trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from synth.cpu_binding import compute_cores, omp_binding, parse_cpu_list


def fake_sys(root: Path, cores: dict[int, tuple[int, int]], nodes: dict[int, str]) -> tuple[Path, Path]:
    """cpu -> (package, core id); node -> cpulist."""
    for cpu, (package, core) in cores.items():
        topo = root / "cpu" / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text(f"{package}\n")
        (topo / "core_id").write_text(f"{core}\n")
    for node, cpulist in nodes.items():
        (root / "node" / f"node{node}").mkdir(parents=True)
        (root / "node" / f"node{node}" / "cpulist").write_text(cpulist + "\n")
    return root / "cpu", root / "node"


def test_cpu_lists_parse_like_the_kernel_writes_them() -> None:
    assert parse_cpu_list("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_cpu_list("5") == [5]


def test_one_logical_cpu_per_physical_core_minus_the_reserved(tmp_path: Path) -> None:
    # 4 cores with SMT siblings 4-7, one NUMA node
    cpu, node = fake_sys(tmp_path, {i: (0, i % 4) for i in range(8)}, {0: "0-7"})
    assert compute_cores(0, allowed=list(range(8)), sys_cpu=cpu, sys_node=node) == [0, 1, 2, 3]
    assert compute_cores(1, allowed=list(range(8)), sys_cpu=cpu, sys_node=node) == [0, 1, 2]
    assert compute_cores(0, allowed=[1, 5, 6], sys_cpu=cpu, sys_node=node) == [1, 6]
    assert compute_cores(4, allowed=list(range(8)), sys_cpu=cpu, sys_node=node) is None  # nothing left


def test_several_numa_nodes_are_left_to_vllms_own_binding(tmp_path: Path) -> None:
    cpu, node = fake_sys(tmp_path, {i: (i // 2, i % 2) for i in range(4)}, {0: "0-1", 1: "2-3"})
    assert compute_cores(0, allowed=[0, 1, 2, 3], sys_cpu=cpu, sys_node=node) is None
    assert compute_cores(0, allowed=[2, 3], sys_cpu=cpu, sys_node=node) == [2, 3]


def test_the_binding_holds_while_vllm_starts_and_a_callers_choice_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    with omp_binding(0, 1) as cores:
        assert cores and os.environ["VLLM_CPU_OMP_THREADS_BIND"] == ",".join(map(str, cores))
        assert set(cores) <= os.sched_getaffinity(0)
    assert "VLLM_CPU_OMP_THREADS_BIND" not in os.environ
    with omp_binding(None, 1) as cores:  # vLLM's default asked for
        assert cores is None and "VLLM_CPU_OMP_THREADS_BIND" not in os.environ
    with omp_binding(0, 2) as cores:  # tensor parallel: vLLM splits the cores per rank
        assert cores is None
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0")
    with omp_binding(0, 1) as cores:
        assert cores is None and os.environ["VLLM_CPU_OMP_THREADS_BIND"] == "0"
