"""Finding faces by their size: group photos from a phone camera, the pixel budget, the
detectors behind one interface, reading order."""

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from training.ml.detection import (
    COLOUR_LEVELS,
    DetectOptions,
    _colour_then_grey,
    _level_groups,
    detection_scale,
    search,
)
from training.ml.faces import Face, detect_faces, in_reading_order

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
needs_datasets = pytest.mark.skipif(not DATASETS.is_dir(), reason="shared/datasets is not here")


def phone_group_photo(size=(4000, 3000), columns=6, rows=4, tile=280, seed=0):
    """LFW photos (a face of ~115 px in a 280 px tile) pasted on a plain background:
    [(left, top, right, bottom)] of the tiles, and the photo."""
    photos = sorted((DATASETS / "lfw_dev").glob("*/*.jpg"))
    random.Random(seed).shuffle(photos)
    canvas = Image.new("RGB", size, (150, 140, 120))
    tiles = []
    step_x, step_y = size[0] // columns, size[1] // rows
    for index in range(columns * rows):
        x = (index % columns) * step_x + (step_x - tile) // 2
        y = (index // columns) * step_y + (step_y - tile) // 2
        with Image.open(photos[index]) as photo:
            canvas.paste(photo.convert("RGB").resize((tile, tile)), (x, y))
        tiles.append((x, y, x + tile, y + tile))
    return canvas, tiles


def found_tiles(boxes, tiles):
    def centre_in(box, tile):
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        return tile[0] <= cx < tile[2] and tile[1] <= cy < tile[3]

    return sum(any(centre_in(box, tile) for box in boxes) for tile in tiles)


@needs_datasets
@pytest.mark.parametrize("detector", ["hog", "cnn"])
def test_it_finds_the_faces_of_a_12_megapixel_group_photo(detector):
    canvas, tiles = phone_group_photo()

    result = search(canvas, DetectOptions(detector=detector, min_face=96))

    boxes = [box for box, _ in result.faces]
    assert found_tiles(boxes, tiles) >= len(tiles) - 1
    assert len(boxes) <= len(tiles) + 1  # no face found twice across strips


@needs_datasets
def test_scaling_the_photo_to_1024_px_as_before_loses_those_faces():
    canvas, tiles = phone_group_photo()
    small = canvas.resize((1024, 768))

    boxes = [box for box, _ in search(small, DetectOptions(min_face=64)).faces]

    assert found_tiles([[v * 4000 / 1024 for v in box] for box in boxes], tiles) < len(tiles) / 2


@needs_datasets
def test_a_face_against_the_photos_edge_is_found():
    photo = Image.open(sorted((DATASETS / "lfw_dev").glob("*/*.jpg"))[3]).convert("RGB")
    canvas = Image.new("RGB", (1200, 900), (90, 90, 90))
    canvas.paste(photo, (-60, 300))

    faces = detect_faces(canvas)

    assert len(faces) == 1 and faces[0].box[0] < 120


def test_the_scale_follows_the_smallest_face_wanted():
    assert detection_scale((640, 480), DetectOptions(min_face=64)) == (1.0, 64)
    assert detection_scale((640, 480), DetectOptions(min_face=128))[0] == 0.5
    assert detection_scale((640, 480), DetectOptions(min_face=32))[0] == 2.0


def test_a_photo_beyond_the_pixel_budget_is_searched_coarser_and_says_from_which_size():
    options = DetectOptions(min_face=32, max_megapixels=12)

    scale, smallest = detection_scale((8000, 6000), options)

    assert scale == pytest.approx(0.5)
    assert smallest == 128


def test_a_50_megapixel_photo_is_searched_within_the_budget():
    huge = Image.new("RGB", (8660, 5774), (120, 120, 120))

    result = search(huge, DetectOptions(min_face=32, max_megapixels=4))

    assert result.faces == []
    assert result.scale == pytest.approx((4e6 / (8660 * 5774)) ** 0.5)


@pytest.mark.parametrize(
    "options", [{"detector": "viola-jones"}, {"min_face": 4}, {"max_megapixels": 0}]
)
def test_bad_options_are_refused_with_the_reason(options):
    with pytest.raises(ValueError):
        DetectOptions(**options)


@needs_datasets
def test_several_threads_searching_at_once_get_the_same_faces():
    canvas, _ = phone_group_photo(size=(2400, 1600), columns=4, rows=2, tile=250)
    options = DetectOptions(min_face=64, threads=2)
    expected = search(canvas, options).faces

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: search(canvas, options).faces, range(4)))

    assert all(result == expected for result in results)


def test_faces_come_in_reading_order_rows_top_to_bottom_each_left_to_right():
    boxes = [(300, 20, 50, 50), (10, 30, 60, 60), (150, 10, 40, 40), (40, 200, 50, 50)]
    faces = [Face(box=box, score=1.0) for box in boxes]

    ordered = [face.box for face in in_reading_order(faces)]

    assert ordered == [(10, 30, 60, 60), (150, 10, 40, 40), (300, 20, 50, 50), (40, 200, 50, 50)]


@needs_datasets
def test_the_cnn_looks_again_where_hog_found_no_face():
    # A turned face in a portrait that dlib's HOG detector does not see.
    photo = Image.open(DATASETS / "lfw_dev" / "Jacques_Chirac" / "Jacques_Chirac_0006.jpg")

    assert detect_faces(photo, DetectOptions(detector="hog")) == []
    faces = detect_faces(photo, DetectOptions(detector="hog+cnn"))
    assert len(faces) == 1 and faces[0].size > 60


def test_a_damaged_detector_file_is_a_clear_error_not_a_photo_without_faces(monkeypatch, tmp_path):
    from training.ml import faces, model_files

    data = faces.face_model_path(faces.CNN_DETECTOR_MODEL).read_bytes()
    (tmp_path / faces.CNN_DETECTOR_MODEL).write_bytes(data[:1000])
    monkeypatch.setattr(model_files, "models_folder", lambda: tmp_path)

    with pytest.raises(faces.FaceModelMissing, match="reinstall"):
        detect_faces(Image.new("RGB", (200, 200), (90, 90, 90)), DetectOptions(detector="cnn"))


@needs_datasets
def test_all_30_faces_of_a_team_photo_come_back_in_reading_order():
    canvas, tiles = phone_group_photo(size=(3000, 2000), columns=6, rows=5, tile=300, seed=1)

    faces = in_reading_order(detect_faces(canvas))

    def tile_of(face):
        cx, cy = face.box[0] + face.box[2] / 2, face.box[1] + face.box[3] / 2
        return next(i for i, t in enumerate(tiles) if t[0] <= cx < t[2] and t[1] <= cy < t[3])

    assert [tile_of(face) for face in faces] == list(range(30))


@needs_datasets
@pytest.mark.parametrize("threads", [2, 3, 4])
def test_hog_on_several_threads_finds_the_boxes_of_one_whole_search(threads):
    # The threads share the pyramid's levels: each face comes back as one search would give
    # it, the small faces of a group photo and a face of ~1,200 px across its middle alike.
    photo = Image.open(sorted((DATASETS / "lfw_dev").glob("*/*.jpg"))[5]).convert("RGB")
    (x, y, w, h), _ = search(photo, DetectOptions(detector="hog")).faces[0]
    large = Image.new("RGB", (4000, 3000), (120, 110, 100))
    large.paste(photo.resize((3000, 3000)), (500, 0))
    group, _ = phone_group_photo(size=(2400, 1600), columns=5, rows=3, tile=200, seed=2)

    for canvas in (large, group):
        one = search(canvas, DetectOptions(detector="hog", threads=1)).faces
        several = search(canvas, DetectOptions(detector="hog", threads=threads)).faces

        assert len(several) == len(one) > 0
        for (a, score_a), (b, score_b) in zip(sorted(one), sorted(several), strict=True):
            assert max(abs(u - v) for u, v in zip(a, b, strict=True)) <= 1
            assert score_a == pytest.approx(score_b)
    whole = search(large, DetectOptions(detector="hog", threads=threads)).faces
    assert len(whole) == 1 and iou(whole[0][0], (500 + 12 * x, 12 * y, 12 * w, 12 * h)) > 0.7


def iou(a, b):
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inner = max(0, width) * max(0, height)
    return inner / (a[2] * a[3] + b[2] * b[3] - inner)


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_every_level_is_searched_once_in_colour_below_colour_levels_and_grey_above(threads):
    # Each group is searched as one image: colour or grey. None may straddle the change.
    groups = _colour_then_grey(_level_groups(threads))
    firsts = [first for first, _ in groups]
    assert firsts[0] == 0 and COLOUR_LEVELS in firsts and groups[-1][1] is None
    for (first, levels), (following, _) in zip(groups, groups[1:], strict=False):
        assert first + levels == following
