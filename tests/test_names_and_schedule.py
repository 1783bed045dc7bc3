"""Auto-generated output names and parsing them back (names.py), the hierarchy schedule and
colour coefficients (hierarchy.py)."""
import pytest

import hierarchy
import names
import neural_style


def name_for(argv):
    return names.auto_output_name(neural_style.settings_from(neural_style.build_parser().parse_args(argv)))


def test_default_name_is_the_spec_example():
    assert name_for(["--content", "cat.jpg", "--styles", "starry.jpg"]) == \
        "t_cat.jpg_starry.jpg_lbfgs1000_h1_pmax_sw00500_swe10_cwe10_as000_vgg.jpg"


@pytest.mark.parametrize("flags, expected", [
    (["--style-distr-weight", "50"], "t_c.png_s.jpg_lbfgs1000_h1_pmax_sw00500_sdw050_swe10_cwe10_as000_vgg.jpg"),
    (["--style-distr-weight", "100"], "t_c.png_s.jpg_lbfgs1000_h1_pmax_sw00500_sdw100_swe10_cwe10_as000_vgg.jpg"),
    (["--style-distr-weight", "2500"], "t_c.png_s.jpg_lbfgs1000_h1_pmax_sw00500_sdw25e2_swe10_cwe10_as000_vgg.jpg"),
    (["--optim", "adam", "--iterations", "50", "--max-hierarchy", "3", "--pooling", "avg", "--style-weight", "1234.9",
      "--style-layer-weight-exp", "0.75", "--content-weight-blend", "0.5", "--ashift", "100",
      "--network-type", "sqz", "--style-feat-type", "distr", "--preserve-colors", "before", "--out-postfix", "v2"],
     "t_c.png_s.jpg_adam0050_h3_pavg_sw01234_swe07_cwe05_as100_sqz_distr_bpc_v2.jpg"),
    (["--preserve-colors", "interm", "--style-feat-type", "mean"],
     "t_c.png_s.jpg_lbfgs1000_h1_pmax_sw00500_swe10_cwe10_as000_vgg_mean_pc.jpg"),
])
def test_name_fields(flags, expected):
    assert name_for(["--content", "photos/c.png", "--styles", "art/s.jpg", "art/other.jpg"] + flags) == expected


@pytest.mark.parametrize("content, style", [
    ("cat.jpg", "starry_night.jpg"),
    ("my_holiday_photo.PNG", "the_scream.jpg"),
    ("img.2024.01.bmp", "style.v2.final.tga"),
    ("photo.jpeg", "seated-nude.jpg"),
    ("a_b_c.jpg", "d_e_f.png"),
])
def test_generated_names_parse_back(content, style):
    generated = name_for(["--content", f"/some dir/{content}", "--styles", style, "--network-type", "sqz"])
    assert names.parse_stylized_name(generated) == (content, style)
    assert names.parse_stylized_name("/x/y/" + names.with_suffix(generated, "_pcyuv")) == (content, style)
    assert names.parse_stylized_name("tiles_" + generated[2:]) == (content, style)


def test_unparseable_names():
    assert names.parse_stylized_name("holiday.jpg") is None
    assert names.parse_stylized_name("t_cat_starry_lbfgs.jpg") is None


@pytest.mark.parametrize("size, iterations, max_h, expected", [
    ((768, 1024), 1000, 1, [(768, 1024, 1000)]),
    ((768, 1024), 1000, 3, [(768, 1024, 1000), (384, 512, 666), (192, 256, 444)]),
    ((768, 1024), 1000, 10, [(768, 1024, 1000), (384, 512, 666), (192, 256, 444), (96, 128, 296)]),
    ((96, 128), 1000, 3, [(96, 128, 1000)]),           # shorter side <= 128: no level added
    ((300, 400), 30, 3, [(300, 400, 30), (150, 200, 25), (75, 100, 25)]),  # at least 25 each
    ((300, 400), 10, 2, [(300, 400, 25), (150, 200, 25)]),
    ((300, 400), 10, 1, [(300, 400, 10)]),
])
def test_hierarchy_schedule(size, iterations, max_h, expected):
    assert hierarchy.levels(size[0], size[1], iterations, max_h) == expected


def test_colour_coefficients():
    cc = hierarchy.color_coefficient
    assert [cc(0, 3, m, False) for m in ("none", "before", "all", "out", "interm")] == [0, 0, 1, 1, 0]
    # Intermediate levels: 1.0 at the smallest, 0.3 just below full size, linear between.
    assert [cc(i, 4, "all", False) for i in (1, 2, 3)] == pytest.approx([0.3, 0.65, 1.0])
    assert [cc(i, 4, "interm", False) for i in (1, 2, 3)] == pytest.approx([0.3, 0.65, 1.0])
    assert [cc(i, 4, "out", False) for i in (1, 2, 3)] == [0, 0, 0]
    assert [cc(i, 4, "none", True) for i in (1, 2, 3)] == pytest.approx([0.3, 0.65, 1.0])
    assert cc(1, 2, "all", False) == 1.0  # two levels: the original divided by zero here
    assert cc(1, 1, "none", False) == 0.0
