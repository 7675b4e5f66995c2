"""The page's "copy curl" line run by real curl: what it sends is what the page sends.

curl parses `;type=`, `;headers=@FILE` and `;filename=` inside a `-F name=value`, so a
value the page did not write (a layer name from someone's checkpoint) could make the copied
command read a local file into the request. `--form-string` sends its value as it is.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from tests import files
from tests.pages import Page

pytestmark = pytest.mark.browser

# A name from a checkpoint someone else made: as -F's value, curl would read secret.txt
# into the part's headers and send text/plain.
NAME = "x;headers=@secret.txt;type=text/plain"


def test_the_copied_curl_sends_a_layer_name_with_semicolons_as_it_is(
    page: Page, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("X-Secret: do-not-send\n")
    w = torch.arange(12, dtype=torch.float32).reshape(3, 4, 1, 1)
    (tmp_path / "model.pt").write_bytes(files.pt({f"{NAME}.weight": w, "other.weight": w}))
    (tmp_path / "x.npy").write_bytes(files.npy(np.ones((4, 3, 5), np.float32)))
    page.open()
    curl = page.page.evaluate(
        """async (name) => {
            const s = await import('/static/js/state.js');
            const request = {input: {layout: 'chw'}, weights: {layer: name}, device: 'cpu'};
            const names = {input: 'x.npy', weights: 'model.pt'};
            return s.curlCommand(location.origin, '/api/v1/compare', request, names);
        }""",
        NAME,
    )
    # Files stay -F (curl reads them: that is the point); the spec is sent as it is.
    assert "-F 'input=@x.npy' -F 'weights=@model.pt' --form-string 'spec=" in curl, curl
    done = subprocess.run(
        ["bash", "-c", curl], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "onebyone.json").read_text())
    assert report.get("layer", {}).get("checkpoint_layer") == NAME, report


# A dropped file's own name, from someone else's disk: inside -F's @file, `;type=` and
# `;headers=@FILE` would be curl's options, and a comma or a quote breaks the value.
FILE = 'acts;type=image;headers=@secret.txt,"x".npy'


def test_the_copied_curl_sends_a_dropped_files_name_as_it_is(page: Page, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("X-Secret: do-not-send\n")
    (tmp_path / FILE).write_bytes(files.npy(np.ones((4, 3, 5), np.float32)))
    page.open()
    curl = page.page.evaluate(
        """async (name) => {
            const s = await import('/static/js/state.js');
            const request = {input: {layout: 'chw'}, device: 'cpu'};
            return s.curlCommand(location.origin, '/api/v1/compare', request, {input: name});
        }""",
        FILE,
    )
    done = subprocess.run(
        ["bash", "-c", curl + " --trace-ascii trace.txt"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    sent = (tmp_path / "trace.txt").read_text(errors="replace")
    assert "X-Secret" not in sent and "Content-Type: image" not in sent, sent[:2000]
    report = json.loads((tmp_path / "onebyone.json").read_text())
    assert report["input_source"] == "file:npy" and report["shapes"]["input"] == [4, 3, 5]
