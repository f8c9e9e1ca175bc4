"""otmetrics.generative.features.weights: the weight-file lookup any extractor shares, with a spec of its own.

Downloads here use file:// addresses (torch.hub opens them like any other); tests/test_inception.py
runs the same path against an HTTP server on 127.0.0.1 with the FID spec.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch

from otmetrics import OTMetricsWarning
from otmetrics.generative.features import digests, weights
from otmetrics.generative.features.weights import (WeightsNotFoundError, WeightsSpec, cached_paths,
                                                   download_weights, resolve_weights, sha256_file,
                                                   weights_cache_dir)

DATA = b"generated weights " * 1000
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("OTMETRICS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    for name in ("DEMO_WEIGHTS", "DEMO_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def spec(env):
    """A published file: served from a folder through a file:// address."""
    served = env / "server" / f"demo-{DIGEST[:8]}.bin"
    served.parent.mkdir()
    served.write_bytes(DATA)
    return WeightsSpec("demo weights", served.name, served.as_uri(), DIGEST, env="DEMO_WEIGHTS",
                       url_env="DEMO_URL", aliases=("other-name.bin",), size=len(DATA), cli_option="--demo")


def test_spec_is_validated():
    for digest in ("abc", DIGEST.upper(), DIGEST + "0", None):
        with pytest.raises(ValueError, match="^sha256: "):
            WeightsSpec("w", "w.bin", "https://example.org/w.bin", digest)
    for name in ("", "sub/w.bin"):
        with pytest.raises(ValueError, match="^filename: "):
            WeightsSpec("w", name, "https://example.org/w.bin", DIGEST)
    with pytest.raises(ValueError, match="^filename: "):
        WeightsSpec("w", "w.bin", "https://example.org/w.bin", DIGEST, aliases=("../w.bin",))


def test_lookup_order(spec, env, monkeypatch):
    # nothing cached: downloaded into the otmetrics cache through torch.hub, then found there
    path = resolve_weights(spec, progress=False)
    assert path == env / "cache" / spec.filename and path.read_bytes() == DATA
    assert resolve_weights(spec, download=False) == path
    # the environment variable comes before the caches, the argument before both
    other = env / "mine.bin"
    other.write_bytes(b"a converted copy: never hashed")
    monkeypatch.setenv("DEMO_WEIGHTS", str(other))
    assert resolve_weights(spec) == other
    assert resolve_weights(spec, str(path)) == path


def test_cached_paths_without_the_override(spec, env, monkeypatch):
    monkeypatch.delenv("OTMETRICS_CACHE_DIR")
    hub = env / "torch_home" / "hub" / "checkpoints"
    assert weights_cache_dir() == hub
    legacy = env / "xdg" / "otmetrics"  # where otmetrics 0.1 downloaded
    assert cached_paths(spec) == [hub / spec.filename, hub / "other-name.bin", legacy / spec.filename]
    alias = hub / "other-name.bin"
    alias.parent.mkdir(parents=True)
    alias.write_bytes(DATA)
    assert resolve_weights(spec, download=False) == alias


def test_url_from_the_environment(spec, env, monkeypatch):
    mirror = env / "mirror" / spec.filename
    mirror.parent.mkdir()
    mirror.write_bytes(DATA)
    monkeypatch.setenv("DEMO_URL", mirror.as_uri())
    (env / "server" / spec.filename).unlink()  # the spec's address is gone: the mirror serves
    assert download_weights(spec, progress=False).read_bytes() == DATA


def test_expected_digest(spec, env):
    served = env / "server"
    # the spec's file name: the spec's full digest; another name with a hex prefix: that prefix
    prefixed = served / f"copy-{DIGEST[:10]}.bin"
    prefixed.write_bytes(DATA)
    assert download_weights(spec, prefixed.as_uri(), filename="a.bin", progress=False).read_bytes() == DATA
    wrong_prefix = served / "copy-00000000.bin"
    wrong_prefix.write_bytes(DATA)
    with pytest.raises(RuntimeError, match="checksum mismatch.*expected 00000000"):
        download_weights(spec, wrong_prefix.as_uri(), filename="b.bin", progress=False)
    plain = served / "plain.bin"
    plain.write_bytes(DATA)
    with pytest.raises(ValueError, match="^sha256: required"):
        download_weights(spec, plain.as_uri(), progress=False)
    # an explicit digest, in any case
    assert download_weights(spec, plain.as_uri(), sha256=DIGEST.upper(), filename="c.bin",
                            progress=False).exists()
    assert sorted(p.name for p in (env / "cache").iterdir()) == ["a.bin", "c.bin"]


def test_a_failed_check_keeps_torch_hubs_message_and_leaves_nothing(spec, env):
    (env / "server" / spec.filename).write_bytes(DATA[:-1] + b"!")
    with pytest.raises(RuntimeError, match=f"checksum mismatch.*expected {DIGEST}; the file was") as info:
        download_weights(spec, progress=False)
    assert "invalid hash value" in str(info.value.__cause__)  # torch.hub's own check
    assert list((env / "cache").iterdir()) == []


def test_bad_addresses_leave_nothing(spec, env):
    for url in ("no-scheme/demo.bin", (env / "server" / "missing.bin").as_uri()):
        with pytest.raises(RuntimeError, match="^could not download the demo weights from .*curl .*--demo"):
            download_weights(spec, url, sha256=DIGEST, progress=False)
    assert list((env / "cache").iterdir()) == []


def test_not_found_messages(spec, env, monkeypatch):
    with pytest.raises(WeightsNotFoundError, match="^weights: not given, DEMO_WEIGHTS unset and no demo"):
        resolve_weights(spec, download=False)
    bare = WeightsSpec("bare weights", "bare.bin", "https://example.org/bare.bin", DIGEST)
    with pytest.raises(WeightsNotFoundError, match="^weights: not given and no bare weights in") as info:
        resolve_weights(bare, download=False)
    assert "set " not in str(info.value) and "command line" not in str(info.value)
    with pytest.raises(WeightsNotFoundError, match="^weights: no such file"):
        resolve_weights(spec, env / "missing.bin")
    with pytest.raises(ValueError, match="^weights: expected a path"):
        resolve_weights(spec, 42)
    monkeypatch.setenv("DEMO_WEIGHTS", str(env / "missing.bin"))
    with pytest.raises(WeightsNotFoundError, match="^DEMO_WEIGHTS: no such file"):
        resolve_weights(spec)


def test_bad_copies_are_named(spec, env):
    ours = env / "cache" / spec.filename
    ours.parent.mkdir()
    ours.write_bytes(b"bad")
    with pytest.raises(RuntimeError, match="no cached copy of the demo weights passes"):
        resolve_weights(spec, download=False)
    # a good copy later in the order is used, with a warning that names the bad one
    alias = env / "torch_home" / "hub" / "checkpoints" / "other-name.bin"
    alias.parent.mkdir(parents=True)
    alias.write_bytes(DATA)
    with pytest.warns(OTMetricsWarning, match="the cached demo weights .* fail the SHA-256 check"):
        assert resolve_weights(spec, download=False) == alias


def test_a_record_that_cannot_be_written_is_not_needed(spec, env, monkeypatch):
    cached = env / "cache" / spec.filename
    cached.parent.mkdir()
    cached.write_bytes(DATA)
    stat = cached.stat()
    os.utime(cached, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**12))  # settled long ago
    blocker = Path(str(cached) + ".sha256")
    blocker.mkdir()  # the record cannot be written (as in a read-only cache, even for root)
    hashed = []
    monkeypatch.setattr(digests, "sha256_file", lambda path: hashed.append(path) or DIGEST)
    for _ in range(2):
        assert resolve_weights(spec, download=False) == cached
    assert len(hashed) == 1 and blocker.is_dir()  # this process remembers the digest


def test_sha256_file_reads_in_chunks(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(DATA)
    assert sha256_file(path) == sha256_file(path, chunk_size=7) == DIGEST
    with pytest.raises(OSError):
        sha256_file(tmp_path / "missing.bin")


def test_public_names_are_reexported_where_they_were():
    from otmetrics.generative.features import inception

    assert inception.WeightsNotFoundError is WeightsNotFoundError and inception.sha256_file is sha256_file
    assert inception.CACHE_ENV == "OTMETRICS_CACHE_DIR"
    assert issubclass(WeightsNotFoundError, ValueError)
    assert issubclass(WeightsNotFoundError, FileNotFoundError)
    assert Path(weights.__file__).name == "weights.py"
