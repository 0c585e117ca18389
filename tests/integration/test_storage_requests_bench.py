"""bench.storage_requests runs each variant in a worker process: the baseline's worker imports
the app code of BASELINE_REF from a git export (bench from the checkout), and every worker's rows
come back to the parent as JSON. Nothing timed, no measured number asserted."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bench.request_counter import Operation
from bench.storage_requests import (APP_PATHS, BASELINE_REF, PATHS, ROOT, VARIANTS, PathResult, Sample, export_app,
                                    merge_workers, result_from_json, result_to_json, section)

PROBE = """
import json, sys
from pathlib import Path
from bench.storage_requests import check_app_code, use_app_code
root = Path(sys.argv[1])
use_app_code(root)
files = check_app_code(root)
import bench.request_counter, shared.service.scoring as scoring
print(json.dumps({"files": files, "bench": bench.request_counter.__file__,
                  "combiner": hasattr(scoring, "RequestCombiner"), "recent_ids": hasattr(scoring, "RecentIds")}))
"""


def test_the_baseline_export_imports_the_old_app_code_and_the_checkouts_bench(tmp_path):
    root, why = export_app(BASELINE_REF, tmp_path / "app")
    if root is None:
        pytest.skip(f"no baseline to export here: {why}")
    assert sorted(p.name for p in root.iterdir()) == sorted(APP_PATHS)  # the app code only, no bench
    out = subprocess.run([sys.executable, "-c", PROBE, str(root)], cwd=ROOT, capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout)
    assert seen["files"]["shared"] == str((root / "shared" / "__init__.py").resolve())
    assert all(Path(f).is_relative_to(root.resolve()) for f in seen["files"].values())
    assert Path(seen["bench"]).resolve() == ROOT / "bench" / "request_counter.py"
    assert (seen["combiner"], seen["recent_ids"]) == (False, False)  # the scoring path before issue #17's changes


def test_an_unknown_commit_is_reported_not_raised(tmp_path):
    root, why = export_app("0" * 40, tmp_path / "app")
    assert root is None and "0000000" in why and not (tmp_path / "app").exists()


def test_the_baseline_variant_is_the_named_commit():
    assert VARIANTS["baseline"].ref == BASELINE_REF and len(BASELINE_REF) == 40
    assert [name for name, v in VARIANTS.items() if v.ref is None] == ["current-requests", "current"]


def _result(variant: str, path, combined: int | None = None) -> PathResult:
    read = Operation("tables", "GET", "profiles", "point read")
    batch = Operation("tables", "POST", "audit [id index]", "$batch")
    sample = Sample(events=100, requests={read: 100, batch: 16}, statuses={(read, 200): 99, (read, None): 1, (batch, 202): 16},
                    cpu_seconds=0.5, floor=116, floor_parts={"customers": 100, "audit": 8, "index": 16}, combined=combined)
    return PathResult(variant, path, [sample, sample], floor_text="100 profile reads + 16 index writes")


def test_a_workers_rows_round_trip_through_json():
    for path in PATHS:
        for combined in (None, 12):
            original = _result("current", path, combined)
            back = result_from_json(json.loads(json.dumps(result_to_json(original))))
            assert back == original
            assert back.samples[0].requests == original.samples[0].requests  # Operation keys, not strings


def test_the_report_has_every_variant_and_path_and_says_why_a_variant_did_not_run():
    variants = ["current-requests", "current"]
    results = [_result(v, p, 12 if p.key == "http_concurrent" else None) for p in PATHS for v in variants]
    info = {v: {"calibration_ms": 1.0, "transports": ["RequestsTransport"]} for v in variants}
    text = section(results, {"command": "bench", "date": "today", "machine": "here", "load_start": 0.0, "load_end": 0.0,
                             "rounds": 2, "requested": ["baseline"] + variants, "variants": variants,
                             "skipped": {"baseline": "git is not installed"}, "info": info})
    assert "- `baseline`: " in text and "**Not run in this run: git is not installed**" in text
    for p in PATHS:
        assert sum(f"| {p.title} | {v} |" in text for v in variants) == 2
        assert f"*{p.title}*" in text  # its breakdown table


def test_interleaved_rounds_merge_into_one_row_per_variant_and_path_in_round_order():
    def worker(variant, cpu_seconds, calibration, transport):
        result = _result(variant, PATHS[0], None)
        result.samples = [replace(result.samples[0], cpu_seconds=cpu_seconds)]
        return {"variant": variant, "calibration_ms": calibration, "transports": [transport],
                "results": [result_to_json(result)]}

    outputs = [worker("baseline", 0.9, 2.0, "RequestsTransport"), worker("current", 0.2, 0.5, "LeanTransport"),
               worker("baseline", 0.7, 3.0, "RequestsTransport"), worker("current", 0.3, 0.7, "LeanTransport"),
               worker("baseline", 0.8, 2.5, "RequestsTransport"), worker("current", 0.25, 0.6, "LeanTransport")]
    results, info = merge_workers(outputs)
    assert sorted((r.variant, r.path.key) for r in results) == [("baseline", PATHS[0].key), ("current", PATHS[0].key)]
    by_variant = {r.variant: r for r in results}
    assert [s.cpu_seconds for s in by_variant["baseline"].samples] == [0.9, 0.7, 0.8]  # round order
    assert [s.cpu_seconds for s in by_variant["current"].samples] == [0.2, 0.3, 0.25]
    assert info == {"baseline": {"calibration_ms": 2.5, "transports": ["RequestsTransport"]},
                    "current": {"calibration_ms": 0.6, "transports": ["LeanTransport"]}}


def test_a_failed_worker_is_run_once_more_and_the_failure_is_reported():
    from bench.storage_requests import WorkerFailed, once_more_on_failure, variant_lines

    calls, said, retried = [], [], []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise WorkerFailed("the baseline worker failed (exit 1)")
        return {"variant": "baseline"}

    assert once_more_on_failure(flaky, "`baseline`, round 2", retried, said.append) == {"variant": "baseline"}
    assert len(calls) == 2 and retried == ["`baseline`, round 2: the baseline worker failed (exit 1)"]

    def broken():
        raise WorkerFailed("exit 1")

    with pytest.raises(SystemExit):
        once_more_on_failure(broken, "`current`, round 1", [], said.append)
    lines = variant_lines({"requested": [], "skipped": {}, "info": {}, "retried": retried})
    assert "Run once more" in lines and "round 2" in lines
