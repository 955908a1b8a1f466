"""What a checkpoint may make ``load`` do: never allocate more than the file holds (a
compressed member is refused before it is inflated), never narrow float64 to float32 without
a word (x64 off: refused, naming ``jax.enable_x64``)."""

import io
import tracemalloc
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnann
from fnann import checkpoint

NET = fnann.MLP([3, 4, 2])


def _bomb(path, expanded: int, name: str = "a0.npy") -> None:
    """A zip whose one member is ``expanded`` bytes of zeros (a float64 .npy), deflated to ~1/1000."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f8", "fortran_order": False,
                                                "shape": (expanded // 8,)})
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open(name, "w", force_zip64=True) as f:
            f.write(head.getvalue())
            for _ in range(expanded >> 20):
                f.write(chunk)


def test_a_deflated_member_is_refused_before_it_is_inflated(tmp_path):
    path = tmp_path / "bomb.npz"
    _bomb(path, 256 << 20)
    assert path.stat().st_size < 2 << 20  # 256 MiB declared, well under 2 MiB on disk
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"bomb\.npz.*member 'a0\.npy' is compressed"):
            fnann.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak  # the 256 MiB were never allocated


def test_a_deflated_copy_of_a_valid_checkpoint_is_refused(tmp_path):
    """Even a compressed member of modest size: save never writes one."""
    good = tmp_path / "good.npz"
    fnann.save(good, NET, fnann.init(jax.random.key(0), NET))
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tmp_path / "z.npz", "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    with zipfile.ZipFile(good) as zf:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())  # what save writes
    with pytest.raises(ValueError, match=r"z\.npz.*is compressed"):
        fnann.load(tmp_path / "z.npz")
    with pytest.raises(ValueError, match=r"z\.npz.*is compressed"):
        checkpoint.read_header(tmp_path / "z.npz")


def _wide(tmp_path):
    with jax.enable_x64(True):
        params = fnann.init(jax.random.key(0), NET, dtype=jnp.float64)
        opt = fnann.adam(1e-3)
        return fnann.save(tmp_path / "wide.npz", NET, params, opt.init(params), meta={"x": 1}), params


def test_a_float64_checkpoint_is_refused_while_x64_is_off(tmp_path):
    path, _ = _wide(tmp_path)
    with pytest.raises(ValueError, match=r"wide\.npz: params\[0\]\.W: holds float64, which JAX narrows to "
                                         r"float32 while x64 is off; load it inside `with jax\.enable_x64"):
        fnann.load(path)
    with pytest.raises(ValueError, match="enable_x64"):
        fnann.load(path, opt=fnann.adam(1e-3))  # the template path refuses alike


def test_a_float64_checkpoint_loads_bit_exactly_under_x64(tmp_path):
    path, params = _wide(tmp_path)
    with jax.enable_x64(True):
        ck = fnann.load(path)
        for got, want in zip(jax.tree.leaves(ck.params), jax.tree.leaves(params)):
            assert got.dtype == jnp.float64
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_an_int64_leaf_is_refused_while_x64_is_off(tmp_path):
    params = fnann.init(jax.random.key(0), NET)
    path = fnann.save(tmp_path / "i.npz", NET, params, {"count": np.int64(3)})
    with pytest.raises(ValueError, match=r"opt_state\['count'\]: holds int64"):
        fnann.load(path)
    with jax.enable_x64(True):
        assert fnann.load(path).opt_state["count"].dtype == jnp.int64


def test_read_header_reads_the_header_alone(tmp_path):
    path = fnann.save(tmp_path / "c.npz", NET, fnann.init(jax.random.key(0), NET), meta={"run": {"dtype": "x"}})
    head = checkpoint.read_header(path)
    assert head["format"] == checkpoint.FORMAT and head["meta"] == {"run": {"dtype": "x"}}
    with pytest.raises(FileNotFoundError):
        checkpoint.read_header(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.npz is not a readable fnann checkpoint"):
        checkpoint.read_header(tmp_path / "junk.npz")
