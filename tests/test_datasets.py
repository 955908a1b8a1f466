"""Tests for fnann.datasets: bundled and synthetic sets, the split, standardization, load_file."""

import math
import os
import sys

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fnann.app import datasets
from fnann.app.datasets import load, load_file

BUNDLED = {  # name: (rows, features, classes or None for regression)
    "digits": (1797, 64, 10),
    "iris": (150, 4, 3),
    "breast_cancer": (569, 30, 2),
    "wine": (178, 13, 3),
    "diabetes": (442, 10, None),
}


def _check_types(ds):
    assert ds.x_train.dtype == ds.x_test.dtype == np.float32
    assert ds.x_train.ndim == ds.x_test.ndim == 2
    assert ds.x_train.shape[1] == ds.x_test.shape[1] == ds.n_features == len(ds.feature_names)
    assert len(ds.x_train) == len(ds.y_train) and len(ds.x_test) == len(ds.y_test)
    if ds.task == "classification":
        assert ds.y_train.dtype == ds.y_test.dtype == np.int32
        assert ds.y_train.ndim == 1 and ds.n_outputs == ds.n_classes == len(ds.classes)
        assert set(np.unique(ds.y_train)) == set(range(ds.n_classes))
    else:
        assert ds.task == "regression" and ds.n_classes is None and ds.classes is None
        assert ds.y_train.dtype == np.float32 and ds.y_train.ndim == 2
        assert ds.n_outputs == ds.y_train.shape[1]


@pytest.mark.parametrize("name", list(BUNDLED))
def test_bundled_sets_load(name):
    rows, features, classes = BUNDLED[name]
    ds = load(name)
    _check_types(ds)
    assert ds.name == name and ds.n_features == features and ds.n_classes == classes
    n_test = math.ceil(0.2 * rows)
    assert (len(ds.x_train), len(ds.x_test)) == (rows - n_test, n_test)


def test_names_are_all_loadable_and_listed():
    assert set(datasets.NAMES) == set(BUNDLED) | {"xor", "spirals", "sine"}
    assert load("iris").classes == ("setosa", "versicolor", "virginica")
    assert load("digits").classes == tuple(range(10))


@given(test_size=st.floats(0.05, 0.9), seed=st.integers(0, 2**31))
def test_split_sizes_and_stratification(test_size, seed):
    raw = load("wine", test_size=test_size, seed=seed, standardize=False)
    n = 178
    n_test = math.ceil(test_size * n)
    assert len(raw.y_test) == n_test and len(raw.y_train) == n - n_test
    counts = np.bincount(np.concatenate([raw.y_train, raw.y_test]), minlength=3)
    assert np.all(np.abs(np.bincount(raw.y_test, minlength=3) - n_test * counts / n) <= 1)


@given(
    labels=st.lists(st.integers(0, 4), min_size=2, max_size=80),
    test_size=st.floats(0.01, 0.99),
    seed=st.integers(0, 1000),
)
def test_stratified_split_property(labels, test_size, seed):
    labels = np.array(labels)
    n, n_test = len(labels), math.ceil(test_size * len(labels))
    assume(n_test < n)
    train, test = datasets._split(labels, n, test_size, seed)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(n))
    assert len(test) == n_test
    for c in np.unique(labels):
        assert abs(np.sum(labels[test] == c) - n_test * np.mean(labels == c)) <= 1


def test_split_is_a_partition_of_the_data():
    from sklearn.datasets import load_iris

    full = load_iris().data.astype(np.float32)
    ds = load("iris", standardize=False)
    got = np.concatenate([ds.x_train, ds.x_test])
    assert np.array_equal(np.unique(got, axis=0), np.unique(full, axis=0))
    assert len(got) == len(full)


def test_same_seed_same_split_other_seed_different():
    a, b, c = load("iris", seed=3), load("iris", seed=3), load("iris", seed=4)
    for x, y in zip(a[1:5], b[1:5]):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.x_test, c.x_test)


@pytest.mark.parametrize("name", ["digits", "diabetes", "sine"])
def test_standardization_uses_train_statistics(name):
    raw, ds = load(name, standardize=False, seed=5), load(name, seed=5)
    x_tr = raw.x_train.astype(np.float64)
    mean, std = x_tr.mean(0), x_tr.std(0)
    varying = np.ptp(x_tr, axis=0) > 0
    std = np.where(varying, std, 1.0)
    np.testing.assert_allclose(ds.x_train, (x_tr - mean) / std, atol=1e-5)
    np.testing.assert_allclose(ds.x_test, (raw.x_test - mean) / std, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(0)[varying], 1, atol=1e-4)
    assert np.all(np.isfinite(ds.x_train)) and np.all(np.isfinite(ds.x_test))
    np.testing.assert_allclose(ds.scale_x(raw.x_test), ds.x_test, atol=1e-5)
    if name == "digits":  # constant pixels stay constant (std 1), no division by zero
        assert not varying.all() and np.all(ds.x_std[~varying] == 1)
    else:  # regression targets are standardized too, and unscale_y maps them back
        np.testing.assert_allclose(ds.y_train.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(ds.unscale_y(ds.y_test), raw.y_test, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("gen,n_default", [(datasets.xor, 400), (datasets.spirals, 400)])
def test_synthetic_classification(gen, n_default):
    x, y = gen()
    assert x.shape == (n_default, 2) and x.dtype == np.float32 and y.dtype == np.int32
    x, y = gen(n_samples=101, noise=0.1, seed=7)
    assert x.shape == (101, 2) and abs(np.sum(y == 0) - np.sum(y == 1)) <= 1
    x2, y2 = gen(n_samples=101, noise=0.1, seed=7)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(x, gen(n_samples=101, noise=0.1, seed=8)[0])


def test_xor_labels_follow_the_signs_without_noise():
    x, y = datasets.xor(n_samples=40, noise=0.0)
    np.testing.assert_array_equal(y, (np.sign(x[:, 0]) != np.sign(x[:, 1])).astype(np.int32))


def test_sine_targets():
    x, y = datasets.sine(n_samples=64, noise=0.0, seed=2)
    assert x.shape == y.shape == (64, 1) and x.dtype == y.dtype == np.float32
    assert np.all(np.abs(x) <= np.pi)
    np.testing.assert_allclose(y, np.sin(x), atol=1e-6)
    np.testing.assert_array_equal(datasets.sine(seed=1)[0], datasets.sine(seed=1)[0])


@pytest.mark.parametrize("name", ["xor", "spirals", "sine"])
def test_load_synthetic(name):
    ds = load(name, n_samples=100, noise=0.05, test_size=0.3, seed=1)
    _check_types(ds)
    assert (len(ds.x_train), len(ds.x_test)) == (70, 30)
    assert ds.n_outputs == (1 if name == "sine" else 2)


def test_load_errors():
    with pytest.raises(ValueError, match="known names: digits, iris.*sine"):
        load("mnist")
    for bad in (0, 1, -0.1, 1.5):
        with pytest.raises(ValueError, match="test_size"):
            load("xor", test_size=bad)
    with pytest.raises(TypeError, match="noise"):
        load("iris", noise=0.1)
    with pytest.raises(ValueError, match="n_samples"):
        datasets.xor(n_samples=2)
    with pytest.raises(ValueError, match="noise"):
        datasets.sine(noise=-1.0)


def test_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r'pip install "fnann\[data\]"'):
        load("iris")
    assert load("spirals", n_samples=50).n_classes == 2


def test_one_hot():
    np.testing.assert_array_equal(datasets.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="0..2"):
        datasets.one_hot(np.array([3]), 3)


# --- load_file -------------------------------------------------------------------------------

def _rows(n=20):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).round(3)
    return x, np.arange(n) % 2 + 5  # labels 5 and 6


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_without_header(tmp_path):
    x, y = _rows()
    p = _write(tmp_path / "plain.csv", [",".join(map(str, [*r, c])) for r, c in zip(x, y)])
    ds = load_file(p, standardize=False, test_size=0.25)
    _check_types(ds)
    assert ds.name == "plain" and ds.classes == (5, 6) and ds.feature_names == ("x0", "x1", "x2")
    assert (len(ds.x_train), len(ds.x_test)) == (15, 5)
    both = np.concatenate([ds.x_train, ds.x_test])
    np.testing.assert_allclose(np.unique(both, axis=0), np.unique(x.astype(np.float32), axis=0))
    ds0 = load_file(p, label=0, task="regression")  # first column as a regression target
    assert ds0.n_features == 3 and ds0.y_train.shape == (16, 1)


def test_csv_with_header_label_by_name_and_index(tmp_path):
    x, y = _rows()
    header = "\ufeffa,label,b,c"  # with the byte-order mark that spreadsheets write
    lines = [header] + [f"{r[0]},{c},{r[1]},{r[2]}" for r, c in zip(x, y)]
    p = _write(tmp_path / "head.csv", lines)
    by_name, by_index = load_file(p, label="label"), load_file(p, label=1)
    assert by_name.feature_names == ("a", "b", "c") and by_name.task == "classification"
    for u, v in zip(by_name[1:5], by_index[1:5]):
        np.testing.assert_array_equal(u, v)
    assert load_file(p, label=-3).classes == (5, 6)


def test_csv_text_labels_and_semicolons(tmp_path):
    lines = [f"{i};{i % 3 * 1.5};{['cat', 'dog'][i % 2]}" for i in range(12)]
    ds = load_file(_write(tmp_path / "pets.txt", lines), delimiter=";")
    assert ds.classes == ("cat", "dog") and ds.n_features == 2  # text labels: no header guessed
    with pytest.raises(ValueError, match="'cat' is not a number"):
        load_file(tmp_path / "pets.txt", delimiter=";", task="regression")


def test_auto_task(tmp_path):
    rng = np.random.default_rng(1)
    reg = [f"{a},{b}" for a, b in rng.normal(size=(30, 2))]
    assert load_file(_write(tmp_path / "r.csv", reg)).task == "regression"
    many = [f"{i},{i}" for i in range(60)]  # 60 distinct integers: regression
    assert load_file(_write(tmp_path / "m.csv", many)).task == "regression"
    assert load_file(tmp_path / "m.csv", task="classification").n_classes == 60


def test_npz(tmp_path):
    x, y = _rows()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_file(tmp_path / "d.npz")
    _check_types(ds)
    assert ds.classes == (5, 6) and ds.n_features == 3
    np.savez(tmp_path / "r.npz", x=x, y=x[:, :2] * 1.5)  # two regression targets
    assert load_file(tmp_path / "r.npz").n_outputs == 2
    np.savez(tmp_path / "bad.npz", x=x, target=y)
    with pytest.raises(ValueError, match=r"bad\.npz: missing key 'y'.*target"):
        load_file(tmp_path / "bad.npz")
    x[3, 1] = np.inf
    np.savez(tmp_path / "inf.npz", x=x, y=y)
    with pytest.raises(ValueError, match="row 3, column 1"):
        load_file(tmp_path / "inf.npz")


@pytest.mark.parametrize(
    "lines,kwargs,pattern",
    [
        ([], {}, "empty"),
        (["a,b,y"], {}, "no data rows"),
        (["1,2,0", "3,4,1", "5,1", "6,7,0"], {}, "line 3 has 2 columns, expected 3"),
        (["# note", "1,2,0", "", "3,4"], {}, "line 4 has 2 columns, expected 3"),
        (["1,,0", "3,4,1"], {}, r"line 1, column 1 \(x1\): '' is not a number"),
        (["a,b,y", "1,2,0", "3,oops,1"], {}, r"line 3, column 1 \(b\): 'oops' is not a number"),
        (["1,2,0", "3,nan,1", "5,6,0"], {}, r"line 2, column 1 \(x1\).*not a finite"),
        (["1,2,0", "3,4,1", "5,6,inf"], {}, r"line 3, column 2.*not a finite"),
        (["a,b,y", "1,2,0", "3,4,1"], {"label": "z"},
         "no label column 'z'; available columns: a, b, y"),
        (["1,2,0", "3,4,1"], {"label": 3}, r"label column 3 does not exist.*0\.\.2"),
        (["1,2,0", "3,4,1"], {"label": "y"}, "no header row"),
        (["1,2,0", "3,4,0", "5,6,0"], {"task": "classification"}, "single class"),
        (["1,2,0", "3,4,1"], {"task": "clustering"}, "task must be one of"),
        (["1,2,0", "3,4,1", "5,6,0"], {"test_size": 2.0}, "test_size"),
    ],
)
def test_load_file_errors(tmp_path, lines, kwargs, pattern):
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=pattern) as info:
        load_file(p, **kwargs)
    if not {"task", "test_size"} & set(kwargs):  # file problems name the file
        assert "bad.csv" in str(info.value)


def test_load_file_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_file(tmp_path / "nope.csv")


@pytest.mark.parametrize("seed,error", [(-1, ValueError), (1.5, TypeError), (True, TypeError), ("0", TypeError)])
@pytest.mark.parametrize("name", ["iris", "xor"])
def test_load_refuses_a_bad_seed_naming_it(name, seed, error):
    with pytest.raises(error, match="seed must be a non-negative int"):
        load(name, seed=seed)


def test_load_file_refuses_a_bad_seed_and_test_size(tmp_path):
    x, y = _rows()
    p = _write(tmp_path / "d.csv", [",".join(map(str, [*r, c])) for r, c in zip(x, y)])
    with pytest.raises(ValueError, match="seed"):
        load_file(p, seed=-3)
    with pytest.raises(ValueError, match="test_size"):
        load_file(p, test_size="0.2")


def test_non_utf8_text_names_the_file_and_the_line(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("a,b,y\n1,2,x\n3,4,caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.csv: line 3 is not UTF-8 text \(byte 0xe9\)"):
        load_file(p)
    with pytest.raises(ValueError, match="line 3 is not UTF-8"):
        datasets.read_features(p)


def test_npz_that_is_not_one_or_holds_complex_numbers(tmp_path):
    (tmp_path / "text.npz").write_text("x,y\n1,2\n")
    np.save(tmp_path / "single.npy", np.ones(3))
    os.replace(tmp_path / "single.npy", tmp_path / "single.npz")
    np.savez(tmp_path / "cx.npz", x=np.ones((6, 2), complex), y=np.arange(6) % 2)
    np.savez(tmp_path / "cy.npz", x=np.ones((6, 2)), y=np.arange(6) * (1 + 1j))
    np.savez(tmp_path / "obj.npz", x=np.array([[1, "a"]], dtype=object), y=np.zeros(1))
    for name, pattern in [("text.npz", r"text\.npz: not a readable \.npz archive"),
                          ("single.npz", r"single\.npz: holds a single array"),
                          ("cx.npz", r"cx\.npz: x must hold real numbers; got dtype complex128"),
                          ("cy.npz", r"cy\.npz: y must hold numbers or class names; got dtype complex128"),
                          ("obj.npz", r"obj\.npz: (not a readable|unreadable)")]:
        with pytest.raises(ValueError, match=pattern):
            load_file(tmp_path / name)
    with pytest.raises(ValueError, match=r"cx\.npz: x must hold real numbers"):
        datasets.read_features(tmp_path / "cx.npz")  # never cast silently to float


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_the_delimiter_is_detected(tmp_path, delimiter):
    lines = ["a{0}b{0}species".format(delimiter)] + [
        f"{i}{delimiter}{i % 3 * 1.5}{delimiter}{['cat', 'dog'][i % 2]}" for i in range(12)]
    ds = load_file(_write(tmp_path / "pets.csv", lines), label="species")
    assert ds.feature_names == ("a", "b") and ds.classes == ("cat", "dog")
    assert datasets.sniff_delimiter("\n".join(lines)) == delimiter
    assert load_file(tmp_path / "pets.csv", label="species", delimiter=delimiter).classes == ("cat", "dog")


def test_a_decimal_comma_gets_a_hint(tmp_path):
    p = _write(tmp_path / "eu.csv", ["a;b;y", "1,5;2;0", "3;4,25;1", "5;6;0"])
    assert datasets.sniff_delimiter(p.read_text()) == ";"  # not ',', though every row has one
    with pytest.raises(ValueError, match=r"line 2, column 0 \(a\): '1,5' is not a number \(a decimal comma"):
        load_file(p)


def test_read_labelled_keeps_every_row_and_allows_one_class(tmp_path):
    p = _write(tmp_path / "one.csv", ["1,2,7", "3,4,7", "5,6,7"])
    t = datasets.read_labelled(p)
    assert t.x.shape == (3, 2) and t.classes == (7,) and t.task == "classification"
    with pytest.raises(ValueError, match="single class"):
        load_file(p)


def test_infer_task_says_why():
    assert datasets.infer_task(np.arange(60)) == (
        "regression", "integer targets with 60 distinct values (more than 50)")
    assert datasets.infer_task(np.array([0.5, 1.0]))[0] == "regression"
    assert datasets.infer_task(np.array(["a", "b"])) == ("classification", "the labels are text")
    assert load("digits").task_reason == "digits is a classification set"


def _fields_equal(a, b):
    for field in a._fields:
        x, y = getattr(a, field), getattr(b, field)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=field)
            assert x.dtype == y.dtype, field
        else:
            assert x == y, field


def test_digits_read_from_the_file_equals_scikit_learns_loader(monkeypatch):
    """The fast path (scikit-learn's data file, read without importing scikit-learn) gives the
    very Dataset that ``sklearn.datasets.load_digits`` gives, for several splits."""
    for seed, test_size in [(0, 0.2), (3, 0.5)]:
        fast = load("digits", seed=seed, test_size=test_size)
        with monkeypatch.context() as m:
            m.setattr(datasets, "_digits_file", lambda: None)
            _fields_equal(fast, load("digits", seed=seed, test_size=test_size))


def test_loading_digits_does_not_import_scikit_learn():
    import subprocess

    code = "import sys; from fnann.app import datasets; datasets.load('digits'); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _table(rows=1797, cols=65, pixel=0.0, classes=10):
    t = np.zeros((rows, cols))
    t[:, -1] = np.arange(rows) % classes
    t[0, 0] = pixel
    return t


@pytest.mark.parametrize("content", [
    b"not gzip at all",
    "wrong shape", "a pixel of 17", "a fractional pixel", "a class missing", "a negative pixel",
])
def test_a_damaged_digits_file_falls_back_to_scikit_learns_loader(tmp_path, monkeypatch, content):
    """A digits file that is not what scikit-learn ships is never trusted: fnann's fast path
    declines it and scikit-learn's own loader decides (here, the real data)."""
    import gzip
    import importlib.util
    import types

    folder = tmp_path / "sklearn" / "datasets" / "data"
    folder.mkdir(parents=True)
    tables = {"wrong shape": _table(cols=64), "a pixel of 17": _table(pixel=17),
              "a fractional pixel": _table(pixel=0.5), "a class missing": _table(classes=9),
              "a negative pixel": _table(pixel=-1)}
    path = folder / "digits.csv.gz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        with gzip.open(path, "wt") as f:
            np.savetxt(f, tables[content], delimiter=",")
    fake = types.SimpleNamespace(submodule_search_locations=[str(tmp_path / "sklearn")])
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: fake if name == "sklearn" else real_find_spec(name, *a))
    assert datasets._digits_file() is None
    monkeypatch.setattr(importlib.util, "find_spec", real_find_spec)
    real = load("digits")
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: fake if name == "sklearn" else real_find_spec(name, *a))
    _fields_equal(load("digits"), real)
