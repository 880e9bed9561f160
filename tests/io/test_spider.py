"""SPIDER files built byte by byte from the documented header layout."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sigcore.errors import FormatError
from sigcore.io.spider import SpiderReader, read_spider


def _header(order, nsam, nrow, *, istack=0, maxim=0, imgnum=0, inuse=0):
    labrec = math.ceil(256 / nsam)
    lenbyt = nsam * 4
    labbyt = labrec * lenbyt
    words = np.zeros(labbyt // 4)
    words[0] = 1  # nslice
    words[1] = nrow
    words[4] = 1  # iform: 2D image
    words[11] = nsam
    words[12] = labrec
    words[21] = labbyt
    words[22] = lenbyt
    words[23] = istack if istack else inuse
    words[25] = maxim
    words[26] = imgnum
    return words.astype(f"{order}f4").tobytes()


def _single(order, image):
    nrow, nsam = image.shape
    return _header(order, nsam, nrow) + image.astype(f"{order}f4").tobytes()


def _stack(order, images):
    n, nrow, nsam = images.shape
    parts = [_header(order, nsam, nrow, istack=2, maxim=n)]
    for k, image in enumerate(images):
        parts.append(_header(order, nsam, nrow, imgnum=k + 1, inuse=1))
        parts.append(image.astype(f"{order}f4").tobytes())
    return b"".join(parts)


@pytest.mark.parametrize("order", ["<", ">"])
def test_single_image_both_byte_orders(tmp_path, order):
    image = np.arange(6 * 5, dtype=np.float32).reshape(6, 5)  # 6 rows, 5 columns
    path = tmp_path / "img.spi"
    path.write_bytes(_single(order, image))
    data = read_spider(path)
    assert data.shape == (1, 6, 5)
    np.testing.assert_array_equal(data[0], image)


@pytest.mark.parametrize("order", ["<", ">"])
def test_stack_both_byte_orders(tmp_path, order):
    images = np.random.default_rng(0).standard_normal((3, 8, 8)).astype(np.float32)
    path = tmp_path / "s.stk"
    path.write_bytes(_stack(order, images))
    assert SpiderReader().sniff(path)
    s = SpiderReader().read(path)
    np.testing.assert_array_equal(s.images, images)
    assert s.pixel_size is None


def test_truncated_volume_and_junk(tmp_path):
    images = np.ones((2, 8, 8), np.float32)
    raw = _stack("<", images)
    cut = tmp_path / "cut.stk"
    cut.write_bytes(raw[:-4])
    with pytest.raises(FormatError, match=r"cut\.stk: truncated"):
        read_spider(cut)
    volume = bytearray(_single("<", np.ones((8, 8), np.float32)))
    volume[0:4] = np.float32(4).tobytes()  # nslice = 4
    vol = tmp_path / "vol.spi"
    vol.write_bytes(bytes(volume))
    with pytest.raises(FormatError, match="SPIDER volume"):
        read_spider(vol)
    junk = tmp_path / "junk.spi"
    junk.write_bytes(b"\x01" * 2000)
    with pytest.raises(FormatError, match="not a SPIDER file"):
        read_spider(junk)
    assert not SpiderReader().sniff(junk)
