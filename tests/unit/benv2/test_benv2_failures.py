"""A patch that cannot be converted makes `benv2 tiles` fail with one line (a rerun retries it)."""

from pathlib import Path

import pytest

from eolab.benv2.convert import raise_for_failures
from eolab.benv2.reader import PatchError, read_patch
from eolab.core.errors import InputError


@pytest.mark.parametrize("s1_name", [None, "", float("nan")])
def test_a_row_without_s1_name_is_skipped_with_its_reason(tmp_path, s1_name):
    with pytest.raises(PatchError) as info:
        read_patch(
            patch_id="S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_26_57",
            s1_name=s1_name,
            s2_root=tmp_path,
            s1_root=tmp_path,
            refmap_root=None,
            bands=("B02",),
        )
    assert info.value.reason == "missing_s1_name"
    assert "T33UUP_26_57: the metadata table gives no s1_name" in info.value.detail


def test_raise_for_failures_counts_by_reason_and_names_the_log():
    summary = {"selected": 9, "skipped": 2, "failed": 1}
    summary["failures_by_reason"] = {"missing_s1": 2, "disk_full": 1}
    with pytest.raises(InputError) as info:
        raise_for_failures(summary, Path("out"))
    assert str(info.value) == (
        "out/log.jsonl: 3 of 9 patches not converted (missing_s1 2, disk_full 1; "
        "the log names each; a rerun retries them)"
    )
    raise_for_failures({"selected": 9, "skipped": 0, "failed": 0}, Path("out"))  # all done
