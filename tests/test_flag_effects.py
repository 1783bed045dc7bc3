"""Every flag of neural_style.py has an effect: each case changes one flag from a small
baseline run (in process, real SqueezeNet weights, real images) and checks what it changes."""
import os

import numpy as np
import pytest

import images
import neural_style
from conftest import write_vgg_mat


@pytest.fixture(scope="module")
def runner(small_images, sqz_weights, tmp_path_factory):
    folder = tmp_path_factory.mktemp("flag effects")
    cache = {}

    def run(*extra, base=("--optim", "lbfgs"), width=64, capsys=None):
        key = (tuple(map(str, extra)), base, width)
        if key in cache:
            return cache[key]
        out = folder / f"run{len(cache)}"
        out.mkdir()
        argv = ["--content", small_images["cat.png"], "--styles", small_images["starry_night.jpg"],
                "--network-type", "sqz", "--network-file", sqz_weights, "--iterations", "8",
                "--width", str(width), "--no-collage", *base, *map(str, extra)]
        if "--output" not in argv:
            argv += ["--output", str(out / "out.png")]
        cwd = os.getcwd()
        os.chdir(out)
        try:
            neural_style.main(argv)
        finally:
            os.chdir(cwd)
        files = {p.name: p for p in out.iterdir()}
        image = images.load_image(str(out / "out.png")).astype(float) if "out.png" in files else None
        cache[key] = (image, files)
        return cache[key]
    return run


def differs(a, b, by=0.5):
    return a.shape != b.shape or np.abs(a - b).mean() > by


ADAM = ("--optim", "adam")
IMAGE_FLAGS = [  # (flags, baseline)
    (["--iterations", "16"], None),
    (["--styles", "PLACEHOLDER_SCREAM"], None),
    (["--style-scales", "1.5"], None),
    (["--content-weight-blend", "0.2"], None),
    (["--content-weight", "200"], None),
    (["--style-weight", "5"], None),
    (["--style-distr-weight", "5000"], None),
    (["--style-layer-weight-exp", "2.0"], None),
    (["--style-feat-type", "mean"], None),
    (["--style-feat-type", "distr"], None),
    (["--tv-weight", "5000"], None),
    (["--initial", "PLACEHOLDER_SCREAM"], None),
    (["--initial-noiseblend", "0.5", "--seed", "1"], None),
    (["--preserve-colors", "before"], None),
    (["--preserve-colors", "out"], None),
    (["--preserve-colors", "all"], None),
    (["--pooling", "avg"], None),
    (["--optim", "cg"], None),
    (["--optim", "adam"], None),
    (["--ashift", "100"], None),
    (["--learning-rate", "2"], ADAM),
    (["--beta1", "0.5"], ADAM),
    (["--beta2", "0.9"], ADAM),
    (["--eps", "1000"], ADAM),
    (["--precision", "bfloat16"], None),
]


@pytest.mark.slow  # a run for each flag
@pytest.mark.parametrize("flags, base", IMAGE_FLAGS, ids=[" ".join(f) for f, _ in IMAGE_FLAGS])
def test_flag_changes_the_image(runner, small_images, flags, base):
    flags = [small_images["the_scream.jpg"] if f == "PLACEHOLDER_SCREAM" else f for f in flags]
    base = base or ("--optim", "lbfgs")
    baseline, _ = runner(base=base)
    changed, _ = runner(*flags, base=base)
    assert differs(baseline, changed)


@pytest.mark.slow  # a run for each flag
def test_preserve_colors_before_writes_no_stray_files(runner):
    _, files = runner("--preserve-colors", "before")
    assert list(files) == ["out.png"]


@pytest.mark.slow  # a run for each flag
def test_same_flags_same_image_and_seed_makes_noise_reproducible(runner):
    a, _ = runner("--initial-noiseblend", "0.5", "--seed", "1")
    b, _ = runner("--initial-noiseblend", "0.5", "--seed", "1", "--out-postfix", "again")
    c, _ = runner("--initial-noiseblend", "0.5", "--seed", "2")
    assert np.array_equal(a, b)
    assert differs(a, c)


@pytest.mark.slow  # a run for each flag
def test_interm_and_h_preserve_colors_and_max_hierarchy(runner):
    """These act on the intermediate levels only: a content of 272 px has two levels."""
    single, _ = runner(width=272)
    two_levels, _ = runner("--max-hierarchy", "2", width=272)
    interm, _ = runner("--max-hierarchy", "2", "--preserve-colors", "interm", width=272)
    h_pc, _ = runner("--max-hierarchy", "2", "--h-preserve-colors", width=272)
    assert differs(single, two_levels)
    assert differs(two_levels, interm)
    assert np.array_equal(interm, h_pc)  # the same coefficients, by two routes


@pytest.mark.slow  # a run for each flag
def test_width_output_collage_and_postfix(runner):
    image, _ = runner("--width", "80")
    assert image.shape == (53, 80, 3)  # floor(300 / 451 * 80)
    _, files = runner("--output", "named.jpg")
    assert list(files) == ["named.jpg"]
    _, files = runner("--out-postfix", "v2", "--output", "")
    assert list(files) == ["t_cat.png_starry_night.jpg_lbfgs0008_h1_pmax_sw00500_swe10_cwe10_as000_sqz_v2.jpg"]


def test_no_collage_flag(small_images, sqz_weights, tmp_path):
    argv = ["--content", small_images["cat.png"], "--styles", small_images["starry_night.jpg"], "--network-type",
            "sqz", "--network-file", sqz_weights, "--iterations", "3", "--width", "64"]
    neural_style.main(argv + ["--output", str(tmp_path / "collage.png")])
    neural_style.main(argv + ["--output", str(tmp_path / "plain.png"), "--no-collage"])
    assert images.load_image(str(tmp_path / "collage.png")).shape == (63, 64, 3)
    assert images.load_image(str(tmp_path / "plain.png")).shape == (42, 64, 3)


def test_print_iterations_and_checkpoints(small_images, sqz_weights, tmp_path, capsys):
    neural_style.main(["--content", small_images["cat.png"], "--styles", small_images["starry_night.jpg"],
                       "--network-type", "sqz", "--network-file", sqz_weights, "--iterations", "12", "--width", "64",
                       "--optim", "adam", "--print-iterations", "4", "--checkpoint-iterations", "5",
                       "--checkpoint-output", str(tmp_path / "c%s.jpg"), "--output", str(tmp_path / "o.jpg")])
    assert capsys.readouterr().out.count("total loss:") == 4  # start, 4, 8, end
    assert sorted(p.name for p in tmp_path.glob("c*.jpg")) == ["c0042x0064-0005.jpg", "c0042x0064-0010.jpg",
                                                              "c0042x0064-0012.jpg"]


@pytest.mark.slow  # a run for each flag
def test_scipy_lbfgs_iterations_total_equals_the_flag_when_split(small_images, sqz_weights, tmp_path, capsys):
    """SciPy's L-BFGS-B in checkpoint chunks of 50: 120 iterations run as 50 + 50 + 20, never overshooting."""
    neural_style.main(["--content", small_images["cat.png"], "--styles", small_images["starry_night.jpg"],
                       "--network-type", "sqz", "--network-file", sqz_weights, "--iterations", "120",
                       "--width", "64", "--checkpoint-iterations", "10", "--tv-weight", "1", "--optim", "lbfgs-scipy",
                       "--checkpoint-output", str(tmp_path / "c%s.png"), "--output", str(tmp_path / "o.png")])
    err = capsys.readouterr().err
    assert "raised to 50" in err and "hurts convergence" in err
    assert sorted(p.name for p in tmp_path.glob("c*.png")) == ["c0042x0064-0050.png", "c0042x0064-0100.png",
                                                              "c0042x0064-0120.png"]


@pytest.mark.slow  # a run for each flag
def test_device_lbfgs_checkpoints_do_not_restart_it(small_images, sqz_weights, sqz_net, tmp_path, capsys):
    """--optim lbfgs keeps its history over checkpoints: checkpoints every 10 iterations
    are written (not raised to 50, no warning) and change nothing in the result (compared in
    process, on one stylizer)."""
    from settings import LossWeights, OptimizerSettings
    from stylize import Stylizer, stylize
    argv = ["--content", small_images["cat.png"], "--styles", small_images["starry_night.jpg"], "--network-type", "sqz",
            "--network-file", sqz_weights, "--iterations", "30", "--width", "64", "--no-collage",
            "--optim", "lbfgs", "--output", str(tmp_path / "split.png"), "--checkpoint-iterations", "10",
            "--checkpoint-output", str(tmp_path / "c%s.png")]
    neural_style.main(argv)
    out = capsys.readouterr()
    assert "raised" not in out.err and "hurts convergence" not in out.err
    assert sorted(p.name for p in tmp_path.glob("c*.png")) == ["c0042x0064-0010.png", "c0042x0064-0020.png",
                                                              "c0042x0064-0030.png"]
    content = images.resize_to_width(images.load_image(small_images["cat.png"]).astype(np.float32), 64)
    style = images.resize_to_width(images.load_image(small_images["starry_night.jpg"]).astype(np.float32), 64)
    stylizer = Stylizer(sqz_net, content, [style], [1.0], LossWeights())
    plain, split = (list(stylize(sqz_net, content, content, [style], [1.0], optimizer=OptimizerSettings("lbfgs"), iterations=30,
                                 checkpoint_iterations=every, stylizer=stylizer, quiet=True))
                    for every in (None, 10))
    assert [step.iteration for step in split] == [10, 20, 30]
    np.testing.assert_array_equal(plain[-1].image, split[-1].image)
    np.testing.assert_array_equal(plain[-1].losses, split[-1].losses)


def test_vgg_network_type_and_file(small_images, tmp_path):
    mat = write_vgg_mat(str(tmp_path / "small-vgg.mat"))
    out = tmp_path / "vgg.png"
    neural_style.main(["--content", small_images["cat.png"], "--styles", small_images["starry_night.jpg"],
                       "--network-file", mat, "--iterations", "5", "--width", "48", "--output", str(out),
                       "--no-collage"])
    assert images.load_image(str(out)).shape == (31, 48, 3)
