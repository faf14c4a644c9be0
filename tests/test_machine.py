"""Usable CPUs: a container's CPU quota, not the host's CPU count, sizes the demand threads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from model import machine


def test_cgroup_v2_and_v1_quotas_are_read(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("200000 100000\n")
    assert machine._cgroup_quota(tmp_path) == pytest.approx(2.0)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert machine._cgroup_quota(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("150000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert machine._cgroup_quota(v1) == pytest.approx(1.5)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1")  # no limit
    assert machine._cgroup_quota(v1) is None


def test_a_quota_of_two_cpus_on_a_big_host_gives_two_threads(monkeypatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setattr(machine, "_cgroup_quota", lambda: 2.0)
    assert machine.available_cpus() == 2
    monkeypatch.setattr(machine, "_cgroup_quota", lambda: 0.3)  # a fraction of a CPU: one thread
    assert machine.available_cpus() == 1
    monkeypatch.setattr(machine, "_cgroup_quota", lambda: None)
    assert machine.available_cpus() == 64


def test_describe_names_the_cpu_and_its_settings() -> None:
    d = machine.describe()
    assert d["available_cpus"] >= 1 and d["os_cpu_count"] >= d["available_cpus"]
    assert set(d["cpu_flags"]) <= set(machine.CPU_FLAGS)
    assert set(d["huge_pages"]) <= {"enabled", "defrag"}


def test_huge_page_modes_are_the_bracketed_choices(tmp_path) -> None:
    (tmp_path / "enabled").write_text("always [madvise] never\n")
    (tmp_path / "defrag").write_text("always defer defer+madvise [madvise] never\n")
    assert machine.huge_pages(tmp_path) == {"enabled": "madvise", "defrag": "madvise"}
    assert machine.huge_pages(tmp_path / "absent") == {}


def test_available_memory_is_memavailable_capped_by_a_cgroup_limit(tmp_path: Path) -> None:
    """MemAvailable in bytes; a cgroup v2 limit leaves at most its limit less what is in use."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   20000000 kB\n")
    cgroup = tmp_path / "cg"
    cgroup.mkdir()
    assert machine.available_memory(meminfo, cgroup) == 20_000_000 * 1024  # no cgroup files
    (cgroup / "memory.max").write_text("max\n")
    (cgroup / "memory.current").write_text("1000\n")
    assert machine.available_memory(meminfo, cgroup) == 20_000_000 * 1024  # no limit
    (cgroup / "memory.max").write_text(f"{8 * 2**30}\n")
    (cgroup / "memory.current").write_text(f"{3 * 2**30}\n")
    assert machine.available_memory(meminfo, cgroup) == 5 * 2**30  # the limit leaves 5 GiB
    assert machine.available_memory(tmp_path / "none", cgroup) is None  # not Linux
