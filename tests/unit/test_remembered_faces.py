"""The tests' face results kept on disk (`auth_media.RememberedFaces` with a folder) are what
face_recognition itself answers, with its types, in every process that reads them."""

from __future__ import annotations

import io

import face_recognition
import numpy as np
from PIL import Image

from tests.unit import auth_media as media


def test_kept_results_are_the_librarys_own(tmp_path):
    pixels = np.asarray(Image.open(io.BytesIO(media.reference())).convert("RGB"))
    writer, reader = media.RememberedFaces(tmp_path), media.RememberedFaces(tmp_path)
    for remembered in (writer, reader):  # the second computes nothing: it reads what the first wrote
        locations = remembered.face_locations(pixels)
        encodings = remembered.face_encodings(pixels, locations)
        landmarks = remembered.face_landmarks(pixels, locations)
        assert locations == face_recognition.face_locations(pixels) and isinstance(locations[0], tuple)
        expected = face_recognition.face_encodings(pixels, locations)
        assert len(encodings) == len(expected) == 1
        assert encodings[0].dtype == np.float64 and np.array_equal(encodings[0], expected[0])
        assert landmarks == face_recognition.face_landmarks(pixels, locations)
    assert len(list(tmp_path.glob("face-results-*/*.json"))) == 3
    assert not list(tmp_path.glob("face-results-*/*.tmp"))


def test_an_unreadable_kept_result_is_computed_again(tmp_path):
    pixels = np.asarray(Image.open(io.BytesIO(media.reference())).convert("RGB"))
    media.RememberedFaces(tmp_path).face_locations(pixels)
    (kept,) = tmp_path.glob("face-results-*/*.json")
    kept.write_text("{not json")
    assert media.RememberedFaces(tmp_path).face_locations(pixels) == face_recognition.face_locations(pixels)
    assert kept.read_text().startswith("[[")
