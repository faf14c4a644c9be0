"""The CPUs this process may really use, and what a benchmark ran on.

``os.cpu_count()`` counts the host's CPUs: in a container limited to two of them (a CPU quota or an
affinity mask) it can say 16 or 64, and a pool sized by it runs that many threads on two cores,
which costs more time in switching and cache misses than it gains. ``available_cpus`` counts
what the scheduler will actually give this process.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

# Instruction sets the demand stage's numpy float32 exp and numba kernel speed up with.
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f")


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by a cgroup CPU quota (v2 ``cpu.max`` or v1 ``cfs_quota_us``), if any."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """CPUs this process can run on at once: the affinity mask, capped by a cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, max(1, math.floor(quota + 0.5)))
    return max(1, n)


def available_memory(
    meminfo: Path = Path("/proc/meminfo"), cgroup: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """Bytes of memory this process could still take: the kernel's MemAvailable, capped by what a
    cgroup memory limit leaves (v2 ``memory.max`` less ``memory.current``); None where unknown."""
    free: int | None = None
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        return None
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max" and free is not None:
            used = int((cgroup / "memory.current").read_text())
            free = min(free, max(int(limit) - used, 0))
    except (OSError, ValueError):
        pass
    return free


def cpu_model() -> tuple[str, list[str]]:
    """The CPU's model name and which of ``CPU_FLAGS`` it offers (Linux /proc/cpuinfo)."""
    name, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name == "unknown":
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return name, [f for f in CPU_FLAGS if f in flags]


def huge_pages(root: Path = Path("/sys/kernel/mm/transparent_hugepage")) -> dict[str, str]:
    """The kernel's transparent huge page modes (``enabled``, ``defrag``: the bracketed choice of
    each file), empty where the files are absent. With ``madvise``, numpy asks for huge pages for
    its large arrays, and the first touch of a fresh 1.1 GB then took 0.17-1.03 s against about 0.4
    s with small pages (memory compaction), on the development machine."""
    out = {}
    for name in ("enabled", "defrag"):
        try:
            text = (root / name).read_text()
        except OSError:
            continue
        chosen = text[text.find("[") + 1 : text.find("]")] if "[" in text else text.strip()
        out[name] = chosen
    return out


def describe() -> dict[str, Any]:
    """What a timing depends on: CPU, CPUs usable, thread settings, numpy's SIMD, numba."""
    import numpy as np

    name, flags = cpu_model()
    out: dict[str, Any] = {
        "cpu": name,
        "cpu_flags": flags,
        "os_cpu_count": os.cpu_count(),
        "available_cpus": available_cpus(),
        "cgroup_quota_cpus": _cgroup_quota(),
        "numpy": np.__version__,
        "env": {
            k: os.environ[k]
            for k in (
                "OPENBLAS_CORETYPE",
                "OPENBLAS_NUM_THREADS",
                "OMP_NUM_THREADS",
                "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS",
                "NUMBA_CACHE_DIR",
                "NUMBA_THREADING_LAYER",
                "NUMPY_MADVISE_HUGEPAGE",
            )
            if k in os.environ
        },
    }
    out["huge_pages"] = huge_pages()
    try:  # whether numpy asks the kernel for huge pages (NUMPY_MADVISE_HUGEPAGE)
        from numpy._core.multiarray import _get_madvise_hugepage

        out["numpy_madvise_hugepage"] = bool(_get_madvise_hugepage())
    except ImportError:  # numpy < 2
        pass
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats

        out["numpy_simd"] = [f for f in ("AVX2", "FMA3", "AVX512F", "AVX512_SKX") if feats.get(f)]
    except ImportError:  # numpy < 2
        pass
    try:
        import numba

        out["numba"] = numba.__version__
        out["numba_threading_layer"] = numba.config.THREADING_LAYER
    except ImportError:
        pass
    return out


def one_line() -> str:
    """``describe`` in one line, for the head of a benchmark's output."""
    m = describe()
    env = ", ".join(f"{k}={v}" for k, v in m["env"].items()) or "none set"
    return (
        f"CPU: {m['cpu']} ({', '.join(m['cpu_flags']) or 'no listed flags'}), "
        f"{m['available_cpus']} usable; numpy {m['numpy']}, numba {m.get('numba', 'absent')}; "
        f"thread settings: {env}; load average {os.getloadavg()[0]:.2f} (other work slows every "
        "figure)"
    )
