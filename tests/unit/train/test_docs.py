"""The training loop in docs/training.md runs as a researcher runs it (`python train.py`), on the
tiny fixtures."""

import re
import subprocess
import sys


def test_training_loop_in_the_docs_runs_as_a_script(project_root, ty2024, benv2_store, tmp_path):
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
    assert 25 <= len([line for line in code.splitlines() if line.strip()]) <= 60
    script = tmp_path / "train.py"
    script.write_text(code, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, script.name], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "PatchSeriesDataset epoch 0",
        "PatchSeriesDataset epoch 1",
        "Benv2Dataset epoch 0",
        "Benv2Dataset epoch 1",
    ]
    for line in lines:
        loss = float(re.search(r"loss (\S+),", line).group(1))
        assert loss == loss and int(re.search(r"(\d+) samples", line).group(1)) > 0
