"""Flag validation: every invalid value is a usage error (exit 2, one line) before any work."""
import pytest

import neural_style
from conftest import run_tool
from errors import UsageError

BASE = ["--content", "c.jpg", "--styles", "s1.jpg", "s2.jpg"]


@pytest.mark.parametrize("flags, message", [
    (["--network-type", "resnet"], "--network-type"),
    (["--optim", "sgd"], "--optim"),
    (["--pooling", "min"], "--pooling"),
    (["--preserve-colors", "some"], "--preserve-colors"),
    (["--style-feat-type", "hist"], "--style-feat-type"),
    (["--iterations", "-5"], "--iterations"),
    (["--iterations", "0"], "--iterations"),
    (["--print-iterations", "-1"], "--print-iterations"),
    (["--checkpoint-iterations", "0"], "--checkpoint-iterations"),
    (["--width", "-100"], "--width"),
    (["--max-hierarchy", "0"], "--max-hierarchy"),
    (["--content-weight-blend", "1.5"], "--content-weight-blend"),
    (["--content-weight-blend", "-0.1"], "--content-weight-blend"),
    (["--initial-noiseblend", "2"], "--initial-noiseblend"),
    (["--style-blend-weights", "-0.5", "1.5"], "--style-blend-weights must each be 0 or more"),
    (["--style-blend-weights", "0", "0"], "--style-blend-weights must not all be 0"),
    (["--style-blend-weights", "nan", "1"], "--style-blend-weights"),
    (["--style-blend-weights", "1"], "one value per style"),
    (["--style-scales", "1", "1", "1"], "one value per style"),
    (["--style-scales", "1", "0"], "--style-scales"),
    (["--checkpoint-output", "ckpt.jpg"], "%s"),
    (["--checkpoint-output", "ckpt%d%s.jpg"], "%s"),
    (["--style-weight", "-1"], "--style-weight"),
    (["--tv-weight", "-1"], "--tv-weight"),
    (["--style-layer-weight-exp", "-2"], "--style-layer-weight-exp"),
    (["--learning-rate", "0"], "--learning-rate"),
    (["--beta1", "1"], "--beta1"),
    (["--beta2", "-0.1"], "--beta2"),
    (["--eps", "0"], "--eps"),
    (["--iterations", "ten"], "--iterations"),
])
def test_invalid_values_are_usage_errors(flags, message):
    with pytest.raises(UsageError, match=message.replace("%", "%")):
        neural_style.main(BASE + flags)


def test_content_and_styles_are_required():
    with pytest.raises(UsageError, match="--content"):
        neural_style.main(["--styles", "s.jpg"])
    with pytest.raises(UsageError, match="--styles"):
        neural_style.main(["--content", "c.jpg"])


def test_usage_error_from_the_command_line_is_one_line_exit_2(tmp_path):
    result = run_tool("neural_style.py", *BASE, "--optim", "sgd", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--optim" in lines[0] and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_help_groups_flags_and_gives_defaults():
    text = neural_style.build_parser().format_help()
    for group in ("input and output", "network", "losses", "optimiser", "hierarchy", "colour", "Adam"):
        assert f"{group}:" in text
    assert "(default: lbfgs)" in text and "{lbfgs,lbfgs-scipy,cg,adam}" in text
    assert "(default: 1000)" in text and "(default: 1e-08)" in text


def test_style_blend_weights_are_any_non_negative_numbers_normalised():
    """As in the original: 2 1 weighs the first style twice the second."""
    settings = neural_style.settings_from(neural_style.build_parser().parse_args(BASE + ["--style-blend-weights", "2", "1"]))
    assert list(settings.style_blend_weights) == pytest.approx([2 / 3, 1 / 3])
    assert list(settings.replace(style_blend_weights=[0, 7.5]).style_blend_weights) == [0.0, 1.0]
    assert list(settings.replace(style_blend_weights=None).style_blend_weights) == [0.5, 0.5]


def test_output_or_checkpoint_over_an_input_is_a_usage_error(tmp_path, small_images, monkeypatch):
    """However the path is spelled (relative, through a link, with ./..), the output and the
    checkpoints never replace the content, a style or the initial image; nothing is written."""
    folder = tmp_path / "photos"
    folder.mkdir()
    content, style = folder / "cat.jpg", folder / "ck_0064x0096-0010.png"
    for path, source in ((content, "cat.png"), (style, "starry_night.jpg")):
        path.write_bytes(open(small_images[source], "rb").read())
    (tmp_path / "link").symlink_to(folder)
    monkeypatch.chdir(tmp_path)
    before = {p: p.read_bytes() for p in (content, style)}
    base = ["--content", str(content), "--styles", str(style), "--network-type", "sqz", "--iterations", "1"]
    for flags, message in (
            (["--output", "photos/../photos/cat.jpg"], "--output photos/../photos/cat.jpg would overwrite the content image"),
            (["--output", "link/cat.jpg"], "would overwrite the content image"),
            (["--output", str(style)], "would overwrite the style image"),
            (["--initial", str(folder / "cat.jpg"), "--output", "./photos/cat.jpg"], "would overwrite the content"),
            (["--checkpoint-iterations", "10", "--checkpoint-output", "link/ck_%s.png"],
             "--checkpoint-output link/ck_%s.png would overwrite the style image")):
        result = run_tool("neural_style.py", *base, *flags, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert {p: p.read_bytes() for p in (content, style)} == before
    assert sorted(p.name for p in folder.iterdir()) == ["cat.jpg", "ck_0064x0096-0010.png"]
    # The same in the colour tool.
    result = run_tool("luma_transfer.py", "--content", content, "--stylized", style, "--output", "link/cat.jpg",
                      cwd=tmp_path)
    assert result.returncode == 2 and "would overwrite the content image" in result.stderr
    assert {p: p.read_bytes() for p in (content, style)} == before
