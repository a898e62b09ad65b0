"""The map's packed points (explorer/maps/packed.py): what the browser reads into typed arrays."""
import numpy as np
import pytest

from explorer.maps.packed import HEADER, pack_points, unpack_points


@pytest.mark.parametrize("n", [0, 1, 3, 1001])  # odd counts pad the u16 codes to a 4-byte boundary
def test_categories_and_texts_come_back_exactly_and_every_array_stays_aligned(rng, n):
    xy = rng.normal(size=(n, 2)).astype(np.float32)
    codes = rng.integers(0, 65536, n)
    texts = [f"item {i} — café ☕" if i % 3 else "" for i in range(n)]
    packed = pack_points(xy, categories=codes, texts=texts)
    back = unpack_points(packed.blob)
    np.testing.assert_array_equal(back["x"], xy[:, 0])
    np.testing.assert_array_equal(back["y"], xy[:, 1])
    np.testing.assert_array_equal(back["c"], codes)
    assert back["t"] == texts and back["digest"] == packed.digest
    # the browser makes Float32Array / Uint32Array views: the texts' offsets start at a multiple of 4
    offsets_at = HEADER + 8 * n + 2 * n + (-2 * n % 4)
    assert HEADER % 4 == 0 and offsets_at % 4 == 0
    assert np.frombuffer(packed.blob, "<u4", 1, offsets_at + 4 * n)[0] == len(packed.blob) - offsets_at - 4 * (n + 1)


def test_colour_values_keep_nan_and_the_blob_has_no_texts_unless_given(rng):
    values = rng.normal(size=50)
    values[7] = np.nan
    packed = pack_points(rng.normal(size=(50, 2)), values=values)
    back = unpack_points(packed.blob)
    np.testing.assert_allclose(back["c"], values.astype(np.float32), equal_nan=True)
    assert back["c"].dtype == np.float32 and back["t"] is None
    assert len(packed.blob) == HEADER + 50 * 12


def test_the_digest_follows_the_content_and_a_damaged_blob_is_refused(rng):
    xy = rng.normal(size=(100, 2))
    a = pack_points(xy, categories=np.arange(100) % 4)
    assert pack_points(xy.copy(), categories=np.arange(100) % 4).digest == a.digest  # same points, same digest
    assert pack_points(xy, categories=np.arange(100) % 5).digest != a.digest  # recoloured: a new table
    moved = xy.copy()
    moved[42, 0] += 1e-3
    assert pack_points(moved, categories=np.arange(100) % 4).digest != a.digest
    assert pack_points(np.zeros((0, 2)), values=np.zeros(0)).digest != pack_points(np.zeros((0, 2))).digest
    damaged = bytearray(a.blob)
    damaged[HEADER + 5] ^= 1
    with pytest.raises(ValueError, match="digest"):
        unpack_points(bytes(damaged))
    with pytest.raises(ValueError, match="VSPT"):
        unpack_points(b"PK\x03\x04" + a.blob[4:])


def test_bad_arguments_say_what_is_wrong(rng):
    xy = rng.normal(size=(4, 2))
    with pytest.raises(ValueError, match="0..65535"):
        pack_points(xy, categories=np.array([0, 1, 2, 70000]))
    with pytest.raises(ValueError, match="one text per point"):
        pack_points(xy, texts=["a"])
    with pytest.raises(ValueError, match="not both"):
        pack_points(xy, categories=np.zeros(4, int), values=np.zeros(4))
    with pytest.raises(ValueError, match="shape"):
        pack_points(np.zeros(4))


def test_the_app_packs_the_same_points_once_and_new_texts_again(rng, monkeypatch):
    import pages._map as page_map

    calls = []
    monkeypatch.setattr(page_map, "pack_points", lambda xy, **kw: calls.append(1) or pack_points(xy, **kw))
    xy, codes = rng.normal(size=(300, 2)), rng.integers(0, 5, 300)
    texts = [f"item {i}" for i in range(300)]
    first = page_map.packed_points(xy, texts=texts, categories=codes)
    again = page_map.packed_points(xy.copy(), texts=list(texts), categories=codes.copy())  # equal, not the same
    assert len(calls) == 1 and again.blob == first.blob
    renamed = page_map.packed_points(xy, texts=texts[:-1] + ["renamed"], categories=codes)
    recoloured = page_map.packed_points(xy, texts=texts, values=codes.astype(float))
    assert len(calls) == 3 and len({first.digest, renamed.digest, recoloured.digest}) == 3
    assert unpack_points(renamed.blob)["t"][-1] == "renamed"
