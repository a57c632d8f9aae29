"""``eolab bench chips`` without stacchip (its own venv needs the internet): eolab's index of
one full-size synthetic tile against the per-chip Python loop, the same chips and fractions,
and ratios that follow from the recorded times."""

import json
import statistics

import pytest

from eolab.chips.bench import CHIP, FULL, agreement, run


def test_chips_benchmark_without_stacchip(tmp_path):
    out = tmp_path / "chips.json"
    result = run(out, repeats=1, use_stacchip=False, workdir=tmp_path)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["stacchip"] == {"used": False, "reason": "--no-stacchip"}
    assert set(result["cases"]) == {"l2a_scl", "l1c_msk_classi"}
    for name, case in result["cases"].items():
        assert case["chips_total"] == (FULL // CHIP) ** 2 == 42 * 42, name
        assert 0 < case["chips_kept"] < case["chips_total"], name  # nodata strip, clouds
        assert case["agreement_python_loop"] == {
            "same_chips": True, "max_abs_diff_cloud": 0.0, "max_abs_diff_nodata": 0.0
        }, name  # fmt: skip
        eolab_s = statistics.median(case["eolab"]["repeats_s"])
        loop_s = statistics.median(case["python_loop"]["repeats_s"])
        assert case["ratio_python_loop"] == pytest.approx(loop_s / eolab_s, rel=1e-4)
        assert case["eolab_beyond_read_s"] == pytest.approx(
            case["eolab"]["median_s"] - case["read_files_only"]["median_s"]
        )
    assert list(tmp_path.glob("eolab-bench-chips-*")) == []  # the inputs are removed


def test_agreement_reports_different_chips_and_fraction_gaps():
    import numpy as np
    import pandas as pd

    table = pd.DataFrame(
        {"chipid": ["a", "b"], "cloud_cover_percentage": [0.1, 0.5], "nodata_percentage": [0, 0.2]}
    )
    same = agreement(table, ["b", "a"], np.array([0.5, 0.25]), np.array([0.2, 0.0]))
    assert same == {
        "same_chips": True, "max_abs_diff_cloud": pytest.approx(0.15), "max_abs_diff_nodata": 0.0
    }  # fmt: skip
    assert agreement(table, ["a"], np.array([0.1]), np.array([0.0])) == {
        "same_chips": False, "eolab_chips": 2, "other_chips": 1
    }  # fmt: skip
