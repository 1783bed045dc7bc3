"""batch.py (every content x style pair, resumable), --show-params, and the installed commands."""
import json
import os
import shutil

import numpy as np
import pytest

import batch
import images
import neural_style
from conftest import ROOT, run_tool
from errors import UsageError


@pytest.fixture
def folders(tmp_path, small_images):
    contents, styles, out = tmp_path / "my photos", tmp_path / "paintings", tmp_path / "results"
    for folder in (contents, styles, out):
        folder.mkdir()
    for name in ("cat.png", "coffee.png"):
        shutil.copy(small_images[name], contents / name)
    for name in ("starry_night.jpg", "the_scream.jpg"):
        shutil.copy(small_images[name], styles / name)
    (contents / "notes.txt").write_text("not an image, and not picked up")
    return contents, styles, out


@pytest.mark.slow  # four pairs, three times
def test_batch_runs_every_pair_and_resumes(folders, sqz_weights, capsys):
    contents, styles, out = folders
    argv = ["--contents", str(contents), "--styles", str(styles), "--output-dir", str(out),
            "--network-type", "sqz", "--network-file", sqz_weights, "--iterations", "3", "--width", "64",
            "--luma-transfer", "yuv", "--collage", "scale"]
    batch.main(argv)
    results = sorted(p.name for p in out.iterdir())
    expected = [f"t_{c}_{s}_lbfgs0003_h1_pmax_sw00500_swe10_cwe10_as000_sqz{suffix}.jpg"
                for c in ("cat.png", "coffee.png") for s in ("starry_night.jpg", "the_scream.jpg")
                for suffix in ("", "_combs", "_pcyuv")]
    assert results == sorted(expected)
    assert "4 of 4 pairs done" in capsys.readouterr().out
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    batch.main(argv)  # everything exists: nothing runs again
    assert capsys.readouterr().out.count("skipping") == 4
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes

    # A stopped batch: one result missing, one partial (interrupted). Only those two run again.
    first, second = sorted(p for p in out.iterdir() if "_pc" not in p.name and "_comb" not in p.name)[:2]
    os.remove(first)
    images.save_image(str(second), np.zeros((8, 8, 3)), json.dumps({"partial": "interrupted"}))
    batch.main(argv)
    assert capsys.readouterr().out.count("skipping") == 2
    assert first.exists() and images.load_image(str(second)).shape[0] > 8


def test_batch_usage_and_failures(folders, sqz_weights, capsys, tmp_path):
    contents, styles, out = folders
    with pytest.raises(Exception, match="--output cannot be used"):
        batch.main(["--contents", str(contents), "--styles", str(styles), "--output", "x.jpg"])
    with pytest.raises(Exception, match="--optim"):
        batch.main(["--contents", str(contents), "--styles", str(styles), "--optim", "sgd"])
    (contents / "broken.jpg").write_text("not really a jpeg")
    with pytest.raises(Exception, match="1 pair\\(s\\) failed"):
        batch.main(["--contents", str(contents / "broken.jpg"), str(contents / "cat.png"), "--styles",
                    str(styles / "the_scream.jpg"), "--output-dir", str(out), "--network-type", "sqz",
                    "--network-file", sqz_weights, "--iterations", "2", "--width", "64"])
    assert "broken.jpg" in capsys.readouterr().err
    assert len(list(out.iterdir())) == 1  # the good pair still ran
    # Checkpoints that would replace an input: refused before any pair runs.
    shutil.copy(contents / "cat.png", contents / "ck_0042x0064-0010.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="would overwrite the content image .*ck_0042x0064-0010.png"):
        batch.main(["--contents", str(contents), "--styles", str(styles), "--output-dir", str(empty),
                    "--network-file", sqz_weights, "--network-type", "sqz", "--checkpoint-iterations", "10",
                    "--checkpoint-output", str(contents / "ck_%s.png")])
    assert list(empty.iterdir()) == []


def test_show_params_prints_what_a_file_was_made_with(small_images, sqz_weights, tmp_path, capsys):
    out = tmp_path / "out.png"
    neural_style.main(["--content", small_images["cat.png"], "--styles", small_images["shipwreck.jpg"],
                       "--network-type", "sqz", "--network-file", sqz_weights, "--iterations", "2",
                       "--width", "64", "--ashift", "25", "--seed", "7", "--output", str(out)])
    capsys.readouterr()
    neural_style.main(["--show-params", str(out)])
    printed = capsys.readouterr().out
    for line in ("ashift: 25.0", "seed: 7", "iterations: 2", "network_type: sqz", f"content: {small_images['cat.png']}"):
        assert line in printed.splitlines()
    plain = tmp_path / "plain.png"
    images.save_image(str(plain), np.zeros((4, 4, 3)))
    result = run_tool("neural_style.py", "--show-params", plain)
    assert result.returncode == 1 and "holds no neural-style parameters" in result.stderr


def test_pyproject_declares_the_commands():
    import tomllib
    project = tomllib.load(open(os.path.join(ROOT, "pyproject.toml"), "rb"))["project"]
    assert project["scripts"] == {"neural-style": "neural_style:cli", "luma-transfer": "luma_transfer:cli",
                                  "build-collage": "build_collage:cli", "neural-style-batch": "batch:cli",
                                  "neural-video": "neural_video:cli"}
    requirements = open(os.path.join(ROOT, "requirements.txt")).read()
    for dependency in project["dependencies"]:
        assert dependency in requirements  # one list of pins, kept in step


def test_package_installs_every_module_and_the_bundled_weights():
    """`pip install .` must carry every module the commands import, and sqz_weights.npz and the
    preview's page where network.install_dirs() and preview.PAGES look for them
    (<prefix>/share/neural-style)."""
    import glob
    import tomllib
    setuptools = tomllib.load(open(os.path.join(ROOT, "pyproject.toml"), "rb"))["tool"]["setuptools"]
    scripts = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "*.py"))} - {"convert_sqz_weights"}
    assert set(setuptools["py-modules"]) == scripts
    assert setuptools["data-files"] == {"share/neural-style": ["sqz_weights.npz", "preview.html"]}
    import network
    import preview
    assert os.path.join(network.sys.prefix, "share", "neural-style") in network.install_dirs()
    assert os.path.join(network.sys.prefix, "share", "neural-style", "preview.html") in preview.PAGES
