"""The demo camera's takes: the same face and moves, never the same bytes (the page refuses
frames it has seen before), so that two parties or two runs of `make demo` each pass."""

from __future__ import annotations

import numpy as np
import pytest

from sunshine.demo import demo_faces_dir, write_demo_camera


def _frames(path) -> list[np.ndarray]:
    data = path.read_bytes()
    header, _, body = data.partition(b"\n")
    w, h = (int(p[1:]) for p in header.split()[1:3])
    size = w * h * 3 // 2
    return [
        np.frombuffer(chunk[6:], np.uint8) for chunk in (body[i : i + 6 + size] for i in range(0, len(body), 6 + size))
    ]


def test_each_take_moves_every_frame_a_little_and_differently(tmp_path):
    faces = demo_faces_dir()
    if faces is None:
        pytest.fail("the demo face photos (shared/testdata/faces) are needed")
    plain, one, two = tmp_path / "plain.y4m", tmp_path / "one.y4m", tmp_path / "two.y4m"
    n = write_demo_camera(plain, faces, ["left", "right", "mouth"])
    assert write_demo_camera(one, faces, ["left", "right", "mouth"], take=1) == n
    write_demo_camera(two, faces, ["left", "right", "mouth"], take=2)
    base, a, b = _frames(plain), _frames(one), _frames(two)
    assert len(base) == len(a) == len(b) == n
    for x, y, z in zip(base, a, b, strict=True):
        assert not np.array_equal(x, y) and not np.array_equal(y, z)
        assert np.abs(x.astype(int) - y.astype(int)).mean() < 3  # the same picture to the eye
