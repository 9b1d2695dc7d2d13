"""The derivation cache (memcorr/cache.py): a second derive reads the first, and nothing else does."""

import pickle
import threading

import pytest

import memcorr
from memcorr import cache, pipeline


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMCORR_CACHE", str(tmp_path))
    return tmp_path


def test_a_second_derive_reads_the_first(store, monkeypatch):
    first = memcorr.derive("heavy_ball", params={"beta": "0.5"})
    assert len(list(store.glob("*.pickle"))) == 1
    monkeypatch.setattr(pipeline, "_derive", lambda *a: pytest.fail("derived again"))
    again = memcorr.derive("heavy_ball", params={"beta": "0.5"})
    assert again.to_json() == first.to_json() and again.summary() == first.summary()


def test_options_text_and_code_are_in_the_key(store, monkeypatch):
    memcorr.derive("heavy_ball")
    memcorr.derive("heavy_ball", target="flow")
    memcorr.derive("heavy_ball", params={"beta": "0.5"})
    memcorr.derive(_heavy_ball_text(0.25))
    assert len(list(store.glob("*.pickle"))) == 4
    monkeypatch.setattr(cache, "fingerprint", lambda: "another memcorr")
    memcorr.derive("heavy_ball")
    assert len(list(store.glob("*.pickle"))) == 5


def _heavy_ball_text(beta):
    lines = ["optimizer hb", "step h", f"param beta = {beta} in (0, 1)", "state m = 0", "m = beta * m + g"]
    return "\n".join([*lines, "theta = theta - h * m", ""])


def test_short_forms_and_named_fields_survive_the_disk(store, monkeypatch):
    """AdamW's states are printed with Hess of a sum kept whole, Ψ₀ as a named field and its G reads the
    loss L: an entry read back prints exactly what the derivation printed."""
    fresh = memcorr.derive("adamw")
    monkeypatch.setattr(pipeline, "_derive", lambda *a: pytest.fail("derived again"))
    read = memcorr.derive("adamw")
    assert read is not fresh
    assert (read.summary(), read.to_latex(), read.to_json()) == (fresh.summary(), fresh.to_latex(), fresh.to_json())


def test_off_means_no_files(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMCORR_CACHE", "off")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    memcorr.derive("gd")
    assert not list(tmp_path.rglob("*.pickle"))


def test_a_torn_entry_is_derived_again_and_replaced(store):
    memcorr.derive("gd")
    (entry,) = store.glob("*.pickle")
    entry.write_bytes(b"not a pickle")
    d = memcorr.derive("gd")
    assert pickle.loads(entry.read_bytes()).to_json() == d.to_json()


def test_a_folder_that_cannot_be_written_is_no_cache(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv("MEMCORR_CACHE", str(blocker / "cache"))
    assert memcorr.derive("gd").update is not None
    assert not list(tmp_path.rglob("*.pickle"))


def test_the_per_group_derivation_is_kept_beside_the_derivation(store, monkeypatch):
    """The torch module's map over parameter groups derives the program again with ε and the weight
    decay as fields (``Derivation.grouped``): kept too, read back by the next process."""
    first = memcorr.derive("adamw")
    expansion, names = first.grouped
    assert set(names) == {"eps", "weight_decay"} and len(list(store.glob("*.pickle"))) == 2
    monkeypatch.setattr(pipeline, "expand", lambda *a: pytest.fail("derived the groups again"))
    again = memcorr.derive("adamw")
    assert again.grouped[1] == names and again.grouped[0].corrections == expansion.corrections


def test_a_process_waits_for_the_one_deriving_the_same_entry(store):
    # the test suite's workers: while one derives an entry, another that needs it waits and reads it
    key = ("a program", "its options")
    entry = cache.entry_path(store, key)
    holding, release = threading.Event(), threading.Event()

    def first():
        with cache._turn(entry):
            holding.set()
            release.wait(10)
            cache._store(entry, "derived by the first")

    results = []
    owner = threading.Thread(target=first)
    owner.start()
    holding.wait(10)
    waiter = threading.Thread(target=lambda: results.append(cache.cached(key, lambda: "derived again")))
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive() and not results  # it waits while the first holds the entry's turn
    release.set()
    owner.join(10)
    waiter.join(10)
    assert results == ["derived by the first"]
