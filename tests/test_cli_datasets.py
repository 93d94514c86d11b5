"""``llbench datasets``: list, fetch (manual steps, --archive, loopback download), verify, show,
add and remove, through click's CliRunner on the command group itself."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_datasets_real import img, make_flat, make_lol, make_pairs
from test_download import LoopbackServer

from llbench.cli.datasets import datasets
from llbench.datasets import real, unpaired_sets
from llbench.datasets.folders import Archive, Source


@pytest.fixture
def cli(home, monkeypatch):
    for cls in real.CLASSES:  # tiny fixtures: no expected image counts
        monkeypatch.setattr(cls, "expected", {})
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(datasets, list(args), catch_exceptions=False, terminal_width=200)

    return invoke


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, prefix + str(p.relative_to(folder)))
    return archive


def row(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if f" {name} " in line)


def test_listing_shows_every_dataset_and_where_to_get_it(cli, home):
    res = cli()
    assert res.exit_code == 0, res.output
    for name in ("lol", "lolv2-real", "lsrw", "sice", "lime", "dicm", "lol-unpaired", "voc-dark"):
        assert "absent" in row(res.output, name)
    assert str(home / "data" / "lol") in row(res.output, "lol")
    assert "daooshee.github.io" in row(res.output, "lol")


def test_fetch_without_direct_url_prints_manual_steps(cli, home):
    res = cli("fetch", "lol")
    assert res.exit_code == 2
    out = res.output
    assert "LOLdataset.zip" in out and "drive.google.com" in out
    assert "--archive" in out and str(home / "cache" / "downloads" / "lol") in out


def test_fetch_offline_url_fails_fast_with_steps(cli, home, monkeypatch):
    monkeypatch.setenv("LLBENCH_OFFLINE", "1")
    res = cli("fetch", "voc-dark")
    assert res.exit_code == 2
    assert "VOCtrainval_11-May-2012.tar" in res.output and "e14f7632" in res.output
    assert not (home / "data" / "voc-dark").exists()


def test_fetch_archive_extracts_verifies_and_lists_present(cli, home, tmp_path):
    src = make_lol(tmp_path / "src")
    archive = zip_folder(src, tmp_path / "LOLdataset.zip", prefix="LOLdataset/")
    res = cli("fetch", "lol", "--archive", str(archive))
    assert res.exit_code == 0, res.output
    assert "manifest recorded" in res.output and "lol: verified" in res.output
    assert (home / "data" / "lol" / "LOLdataset" / "our485" / "low" / "1.png").is_file()
    assert "present, verified" in row(cli().output, "lol")
    # change a file: the listing and verify notice; --update accepts it
    img(home / "data" / "lol" / "LOLdataset" / "eval15" / "low" / "100.png", seed=42)
    assert "unverified" in row(cli().output, "lol")
    res = cli("verify", "lol")
    assert res.exit_code == 1 and "changed: LOLdataset/eval15/low/100.png" in res.output
    assert cli("verify", "lol", "--update").exit_code == 0
    assert "present, verified" in row(cli().output, "lol")
    res = cli("show", "lol")
    assert res.exit_code == 0 and "manifest" in res.output and "real-datasets" in res.output


def test_fetch_rejects_a_hostile_archive(cli, home, tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("our485/low/1.png", b"x")
        zf.writestr("../../escape.txt", b"pwned")
    res = cli("fetch", "lol", "--archive", str(bad))
    assert res.exit_code == 2 and "climbs out" in res.output
    assert not (home / "escape.txt").exists() and not (home / "data" / "escape.txt").exists()


def test_fetch_downloads_from_a_url_and_checks_sha256(cli, home, tmp_path, monkeypatch):
    src = make_flat(tmp_path / "src" / "LDR_TEST_IMAGES_DICM", ["01.JPG", "02.JPG", "3.bmp"])
    body = zip_folder(src.parent, tmp_path / "dicm.zip").read_bytes()
    with LoopbackServer() as server:
        server.files["/LDR_TEST_IMAGES_DICM.zip"] = body
        url = server.url("/LDR_TEST_IMAGES_DICM.zip")
        wrong = Source("page", "DICM", (Archive("LDR_TEST_IMAGES_DICM.zip", url, "f" * 64),))
        monkeypatch.setattr(unpaired_sets.DICM, "source", wrong)
        res = cli("fetch", "dicm", "--no-progress")
        assert res.exit_code == 2 and "checksum mismatch" in res.output
        good = Source(
            "page",
            "DICM",
            (Archive("LDR_TEST_IMAGES_DICM.zip", url, hashlib.sha256(body).hexdigest()),),
        )
        monkeypatch.setattr(unpaired_sets.DICM, "source", good)
        res = cli("fetch", "dicm")
        assert res.exit_code == 0, res.output
        assert "dicm: verified" in res.output
    assert (home / "cache" / "downloads" / "dicm" / "LDR_TEST_IMAGES_DICM.zip").read_bytes() == body
    assert "present, verified" in row(cli().output, "dicm")
    assert "not downloading" in cli("fetch", "dicm").output  # the server is gone: no request


def test_verify_reports_damaged_images(cli, home):
    folder = make_flat(home / "data" / "lime", ["1.bmp", "2.png"])
    (folder / "2.png").write_bytes((folder / "2.png").read_bytes()[:40])
    res = cli("verify", "lime")
    assert res.exit_code == 1
    assert "2.png" in res.output and "cannot decode" in res.output


def test_add_paired_and_unpaired_folders(cli, home, tmp_path):
    paired = tmp_path / "mine"
    make_pairs(paired / "train", ["a.png", "b.png"])
    make_pairs(paired / "test", ["c.png"], low="input", high="gt")
    res = cli("add", "my-pairs", str(paired), "--layout", "paired")
    assert res.exit_code == 0, res.output
    assert "train, test" in res.output
    flat = make_flat(tmp_path / "night", ["x.jpg", "y.png"])
    assert cli("add", "night", str(flat), "--layout", "unpaired").exit_code == 0
    listing = cli().output
    assert "unverified" in row(listing, "my-pairs") and "train 2, test 1" in row(
        listing, "my-pairs"
    )
    assert "test 2" in row(listing, "night")
    assert cli("verify", "my-pairs").exit_code == 0
    assert "present, verified" in row(cli().output, "my-pairs")
    res = cli("show", "night")
    assert "user-datasets" in res.output and str(flat) in res.output
    # a built-in name, a second add, and a folder whose pairs do not match are refused
    assert cli("add", "lol", str(flat), "--layout", "unpaired").exit_code == 2
    assert cli("add", "night", str(flat), "--layout", "unpaired").exit_code == 2
    img(paired / "train" / "low" / "orphan.png")
    res = cli("add", "broken", str(paired), "--layout", "paired")
    assert res.exit_code == 2 and "orphan.png" in res.output
    assert cli("remove", "night").exit_code == 0
    assert " night " not in cli().output
    assert flat.is_dir()


def test_unknown_dataset_lists_known_names(cli):
    res = cli("fetch", "lolv3")
    assert res.exit_code == 2 and "lolv2-real" in res.output
