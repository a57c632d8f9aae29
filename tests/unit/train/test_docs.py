"""The training loop in docs/training.md runs as written, on the tiny fixtures."""

import contextlib
import io
import re


def test_training_loop_in_the_docs_runs(project_root, ty2024, benv2_store):
    text = (project_root / "docs" / "training.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    paths = {
        "CUBE": ty2024.entries["zarr-zip"],
        "CHIP_INDEX": ty2024.index_dir,
        "BENV2": benv2_store,
    }
    for name, path in paths.items():
        code, n = re.subn(rf"^{name} = .*$", f"{name} = Path({str(path)!r})", code, flags=re.M)
        assert n == 1, f"the doc's loop no longer sets {name} on one line"
    assert 25 <= len(code.strip().splitlines()) <= 60
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/training.md", "exec"), {"__name__": "docs_training"})
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "PatchSeriesDataset epoch 0",
        "PatchSeriesDataset epoch 1",
        "Benv2Dataset epoch 0",
        "Benv2Dataset epoch 1",
    ]
    for line in lines:
        loss = float(re.search(r"loss (\S+),", line).group(1))
        assert loss == loss and int(re.search(r"(\d+) samples", line).group(1)) > 0
