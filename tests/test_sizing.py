"""Pipeline sizing: engine threads and decode workers chosen together from the cores (a user's choice kept), the
cores read from affinity and cgroup quotas, `fnx run` using it, and `fnx bench e2e` stating bound and fraction."""

from __future__ import annotations

import json
import re

import pytest

from fnx.errors import FnxError
from fnx.runtime.sizing import cgroup_quota, size_pipeline, usable_cores


@pytest.mark.parametrize(("cores", "mode", "threads", "workers"), [
    (1, "exact", 1, 1), (1, "fast", 1, 1),
    (2, "exact", 1, 2), (2, "fast", 1, 1),  # measured best on 2 cores, both modes (docs/BENCHMARKS.md, e2e)
    (4, "exact", 1, 4), (4, "fast", 2, 2),
    (8, "exact", 2, 7), (8, "fast", 4, 4),
])
def test_sized_from_the_cores_alone(cores, mode, threads, workers):
    s = size_pipeline(cores, mode)
    assert (s.threads, s.workers, s.cores) == (threads, workers, cores) and s.reason == "both sized"


@pytest.mark.parametrize("cores", [1, 2, 3, 4, 6, 8, 12, 16, 64])
@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_never_oversubscribed_beyond_the_sleeping_caller(cores, mode):
    s = size_pipeline(cores, mode)
    assert s.threads >= 1 and s.workers >= 1
    # the +1 (exact): the engine's calling thread sleeps while decoding runs; fast's invoke is half the work
    assert s.threads + s.workers <= cores + (mode == "exact") or cores == 1
    assert s.threads < cores or cores == 1  # the engine never takes every core from decoding
    assert size_pipeline(cores, "exact").threads <= size_pipeline(cores, "fast").threads  # exact decodes more


@pytest.mark.parametrize(("cores", "threads", "workers", "want"), [
    (2, 2, None, (2, 1)),   # --threads given: kept; the pool gets the rest
    (2, 4, None, (4, 1)),   # more threads than cores: still kept, the pool keeps one worker
    (8, 3, None, (3, 6)),
    (2, None, 1, (1, 1)),   # --workers given: kept; the engine gets what is left, at least one thread
    (8, None, 6, (2, 6)),
    (8, None, 2, (2, 2)),   # the engine's share caps it even with cores to spare
    (8, None, 0, (8, 0)),   # no pool: decoding and invoke alternate in one thread, the engine may take every core
    (2, 3, 5, (3, 5)),      # both given: both kept, oversubscribed as asked
    (2, 1, 0, (1, 0)),
])
def test_a_users_threads_and_workers_are_kept(cores, threads, workers, want):
    s = size_pipeline(cores, "exact", threads, workers)
    assert (s.threads, s.workers) == want
    assert ("given" in s.reason) and (("other sized" in s.reason) == (threads is None or workers is None))


@pytest.mark.parametrize(("kw", "needle"), [
    ({"cores": 0}, "at least one core"), ({"cores": 2, "threads": 0}, "--threads must be at least 1"),
    ({"cores": 2, "workers": -1}, "--workers must be at least 0"), ({"cores": 2, "mode": "quick"}, "exact, fast"),
])
def test_bad_sizing_inputs_say_what_is_wrong(kw, needle):
    with pytest.raises(FnxError, match=needle):
        size_pipeline(**kw)


def _cgroup_root(tmp_path, cgroup_lines, files):
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text("\n".join(cgroup_lines) + "\n")
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


@pytest.mark.parametrize(("lines", "files", "quota"), [
    (["0::/job"], {"sys/fs/cgroup/job/cpu.max": "150000 100000\n"}, 1.5),
    (["0::/job"], {"sys/fs/cgroup/job/cpu.max": "max 100000\n"}, None),
    (["0::/a/b"], {"sys/fs/cgroup/a/b/cpu.max": "max 100000\n", "sys/fs/cgroup/a/cpu.max": "300000 100000\n"}, 3.0),
    (["4:cpu,cpuacct:/box", "0::/"], {"sys/fs/cgroup/cpu/box/cpu.cfs_quota_us": "200000\n",
                                      "sys/fs/cgroup/cpu/box/cpu.cfs_period_us": "100000\n"}, 2.0),
    (["4:cpu,cpuacct:/box"], {"sys/fs/cgroup/cpu/box/cpu.cfs_quota_us": "-1\n",
                              "sys/fs/cgroup/cpu/box/cpu.cfs_period_us": "100000\n"}, None),
    (["0::/"], {}, None),
])
def test_cgroup_quota_v1_and_v2_with_parents(tmp_path, lines, files, quota):
    assert cgroup_quota(_cgroup_root(tmp_path, lines, files)) == quota


def test_usable_cores_rounds_a_quota_up_and_never_exceeds_affinity(tmp_path):
    from fnx.devices import cpu_count

    root = _cgroup_root(tmp_path, ["0::/job"], {"sys/fs/cgroup/job/cpu.max": "50000 100000\n"})
    assert usable_cores(root) == 1  # half a core still runs one thread
    (tmp_path / "sys/fs/cgroup/job/cpu.max").write_text("6400000 100000\n")
    assert usable_cores(root) == cpu_count()
    assert usable_cores(tmp_path / "nowhere") == cpu_count()


def test_fnx_run_sizes_the_engine_and_the_pool_together_and_keeps_a_users_choice(cli, t0_exports, tmp_path,
                                                                                 monkeypatch):
    import fnx.runtime
    import fnx.runtime.sizing
    from fnx.dev.images import write_jpegs

    write_jpegs(tmp_path / "hd", 3, (320, 240))
    opened = []
    real_load = fnx.runtime.load
    monkeypatch.setattr(fnx.runtime, "load", lambda *a, **kw: opened.append(kw["run"].threads) or real_load(*a, **kw))
    monkeypatch.setattr(fnx.runtime.sizing, "usable_cores", lambda: 8)  # as if on an 8-core machine
    art = t0_exports["tflite"].artifact

    def run(*extra):
        r = cli("run", art, tmp_path / "hd", "--json", *extra)
        assert r.exit_code == 0, r.output
        out = json.loads(r.stdout)
        assert len(out["predictions"]) == 3
        return opened[-1], out["threads"], out["workers"]

    assert run("--preprocess", "exact") == (2, 2, 7)
    assert run("--preprocess", "fast") == (4, 4, 4)
    assert run("--threads", "1") == (1, 1, 7)  # fast (the default): the pool gets the rest
    assert run("--workers", "0") == (8, 8, 0)
    assert run("--threads", "3", "--workers", "1") == (3, 3, 1)


def test_bench_e2e_states_the_bound_and_the_fraction(cli, t0_exports, tmp_path, monkeypatch):
    import fnx.runtime.sizing
    from fnx.dev.images import write_jpegs

    write_jpegs(tmp_path / "hd", 3, (320, 240))
    art = t0_exports["tflite"].artifact
    monkeypatch.setattr(fnx.runtime.sizing, "usable_cores", lambda: 8)  # exact and fast size apart: one session each
    r = cli("bench", "e2e", art, tmp_path / "hd", "--json")
    assert r.exit_code == 0, r.output
    reps = json.loads(r.stdout)
    assert [(rep["threads"], [row["mode"] for row in rep["rows"]]) for rep in reps] == [(2, ["exact"]), (4, ["fast"])]
    for rep in reps:
        assert rep["cores"] == 8
        for row in rep["rows"]:
            cpu = sum(row[f"{k}_cpu_ms"] for k in ("decode", "preprocess", "invoke", "post"))
            assert row["cpu_ms"] == pytest.approx(cpu) and cpu > 0
            assert row["bound_ips"] == pytest.approx(8 * 1e3 / cpu)
            assert row["fraction"] == pytest.approx(row["pipelined_ips"] / row["bound_ips"])
            assert row["workers"] == size_pipeline(8, row["mode"], rep["threads"]).workers
            assert row["other_load"] is None or 0 <= row["other_load"] <= 1
    monkeypatch.setattr(fnx.runtime.sizing, "usable_cores", lambda: 2)
    r = cli("bench", "e2e", art, tmp_path / "hd", "--workers", "1")
    assert r.exit_code == 0, r.output
    text = " ".join(r.stdout.split())
    assert "1 engine thread(s)" in text and "decode workers exact 1, fast 1" in text
    assert "bound: 2 core(s) / the CPU ms one image took" in text
    rows = {line.split()[1]: line.split() for line in r.stdout.splitlines() if line.split()[1:2] in (["exact"], ["fast"])}
    assert set(rows) == {"exact", "fast"} and all(re.fullmatch(r"\d+%", cells[-2]) for cells in rows.values())
