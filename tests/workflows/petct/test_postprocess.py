"""Post-processing of predicted lesion masks: component contrast on analytic phantoms (values by hand, the shell
by SciPy's distance transform), and the cross-validated choice of the threshold on constructed cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from breastseg.workflows.petct.postprocess import (
    ContrastCase,
    choose_min_contrast,
    component_contrasts,
)

SPACING = (4.0, 3.0, 3.0)  # anisotropic on purpose (z, y, x) mm


def _ball(shape: tuple[int, ...], centre: tuple[int, ...], radius_mm: float) -> np.ndarray:
    idx = np.indices(shape).astype(float)
    d2 = sum(((idx[a] - centre[a]) * SPACING[a]) ** 2 for a in range(3))
    return np.asarray(d2 <= radius_mm**2)


def test_contrast_is_mean_over_the_shell_median_computed_by_hand() -> None:
    shape = (30, 40, 40)
    suv = np.full(shape, 2.0, np.float32)  # liver-like background
    suv[:, :20] = 1.0  # a colder half: the shell of a lesion on the border is half of each
    hot = _ball(shape, (15, 30, 12), 8.0)
    suv[hot] = 6.0
    normal = _ball(shape, (15, 30, 30), 8.0)  # marked, but at background uptake (a resolved lesion's site)
    mask = hot | normal
    found = component_contrasts(suv, mask, SPACING)
    by_centre = {
        tuple(np.round(ndimage.center_of_mass(found.labels == c.label)).astype(int)): c for c in found.contrasts
    }
    lesion, resolved = by_centre[(15, 30, 12)], by_centre[(15, 30, 30)]
    assert lesion.mean_suv == pytest.approx(6.0) and lesion.voxels == int(hot.sum())
    assert lesion.background_suv == pytest.approx(2.0) and lesion.contrast == pytest.approx(3.0)
    assert resolved.contrast == pytest.approx(1.0)
    assert found.kept(1.05).sum() == hot.sum() and [c.label for c in found.removed(1.05)] == [resolved.label]
    assert found.kept(None).sum() == mask.sum() and found.removed(None) == []

    # on the border between the warm and the cold half: the shell's median, by SciPy's distance transform
    border = _ball(shape, (15, 20, 25), 8.0)
    suv2 = suv.copy()
    suv2[border] = 3.0
    gap, reach = 4.0, 14.0
    to_component = ndimage.distance_transform_edt(~border, sampling=SPACING)
    shell = (to_component > gap) & (to_component <= reach)
    expected = float(np.median(suv2[shell]))
    (only,) = component_contrasts(suv2, border, SPACING).contrasts
    assert only.background_suv == pytest.approx(expected)
    assert only.contrast == pytest.approx(3.0 / expected)


def test_the_shell_skips_the_halo_other_findings_and_outside_the_body() -> None:
    shape = (30, 40, 40)
    suv = np.full(shape, 1.0, np.float32)
    core = _ball(shape, (15, 20, 20), 6.0)
    halo = ndimage.binary_dilation(core, iterations=1) & ~core  # partial volume, within one voxel (≤ 4 mm)
    suv[core], suv[halo] = 5.0, 3.0
    (c,) = component_contrasts(suv, core, SPACING).contrasts
    assert c.background_suv == pytest.approx(1.0)  # the halo is not background

    # a hot neighbour inside the shell: its voxels and its own halo are not background either
    neighbour = _ball(shape, (15, 20, 29), 4.0)
    suv[neighbour] = 9.0
    suv[ndimage.binary_dilation(neighbour, iterations=1) & ~neighbour & ~core & ~halo] = 4.0
    two = component_contrasts(suv, core | neighbour, SPACING)
    assert all(c.background_suv == pytest.approx(1.0) for c in two.contrasts)

    # in a thin layer of tissue (6 mm) the air (SUV 0) around is left out
    body = np.zeros(shape, bool)
    body[:, 25:, 15:17] = True
    suv[~body] = 0.0
    edge = _ball(shape, (15, 34, 15), 6.0) & body  # a half ball under the skin
    (e,) = component_contrasts(suv, edge, SPACING, body=body, gap_mm=4.0).contrasts
    assert e.background_suv == pytest.approx(1.0)
    (no_body,) = component_contrasts(suv, edge, SPACING, gap_mm=4.0).contrasts
    assert no_body.background_suv is not None and no_body.background_suv < 1.0  # the air pulls the median down
    # nothing around it (the whole field is the finding): kept at any threshold
    everything = component_contrasts(suv, np.ones(shape, bool), SPACING)
    assert everything.contrasts[0].background_suv is None and everything.kept(10.0).all()


def _case(name: str, suv: np.ndarray, pred: np.ndarray, ref: np.ndarray) -> ContrastCase:
    return ContrastCase(name, component_contrasts(suv, pred, SPACING), ref, SPACING)


def test_the_threshold_is_chosen_by_lesion_f1_and_ties_keep_the_milder() -> None:
    shape = (24, 40, 40)
    suv = np.full(shape, 2.0, np.float32)
    lesion = _ball(shape, (12, 10, 10), 8.0)
    faint = _ball(shape, (12, 30, 10), 8.0)  # a true lesion with contrast 1.15
    resolved = _ball(shape, (12, 20, 30), 8.0)  # a false finding at background uptake
    suv[lesion], suv[faint] = 6.0, 2.3
    ref = lesion | faint
    cases = [_case("a", suv, lesion | faint | resolved, ref), _case("b", suv, lesion | faint, ref)]
    choice = choose_min_contrast(cases)
    rows = {row["min_contrast"]: row for row in choice.table}
    assert list(rows) == [None, 1.05, 1.1, 1.2, 1.3, 1.5]
    # by hand: no filter — 4 true lesions found, 1 false → precision 0.8, F1 = 2·1·0.8/1.8
    assert rows[None]["lesion_recall"] == 1.0 and rows[None]["lesion_precision"] == pytest.approx(0.8)
    assert rows[None]["lesion_f1"] == pytest.approx(2 * 0.8 / 1.8)
    assert rows[1.05]["lesion_f1"] == 1.0 and rows[1.1]["lesion_f1"] == 1.0 and rows[1.05]["components_removed"] == 1
    assert rows[1.2]["lesion_recall"] == 0.5  # the faint lesions go too
    assert choice.min_contrast == 1.05  # 1.05 and 1.1 tie: the milder

    # a filter that removes only true findings is not adopted
    clean = choose_min_contrast([_case("b", suv, lesion | faint, ref)])
    assert clean.min_contrast is None
    # nothing to learn from: no reference lesion anywhere
    empty = np.zeros(shape, bool)
    assert choose_min_contrast([_case("c", suv, resolved, empty)]).min_contrast is None


def test_no_choice_on_degenerate_predictions_and_the_card_says_why() -> None:
    from breastseg.workflows.petct.network import postprocessing_markdown

    shape = (24, 40, 40)
    suv = np.full(shape, 2.0, np.float32)
    lesion = _ball(shape, (12, 10, 10), 8.0)
    suv[lesion] = 6.0
    body = np.zeros(shape, bool)
    body[:, 2:38, 2:38] = True
    blob = body.copy()  # a network that has learnt "body", not "lesion"
    cases = [
        ContrastCase("a", component_contrasts(suv, blob, SPACING, body), lesion, SPACING, body),
        _case("b", suv, lesion, lesion),
    ]
    choice = choose_min_contrast(cases)
    assert choice.min_contrast is None and choice.refused is not None
    assert "1 of 2 scans cover more than 20 % of the body (a: 100 %)" in choice.refused
    card = "\n".join(postprocessing_markdown(choice.to_json()))
    assert "not chosen" in card and "has not learnt" in card
    nothing = choose_min_contrast([_case("c", suv, np.zeros(shape, bool), lesion)])
    assert nothing.refused is not None and "marks any voxel" in nothing.refused
    assert choose_min_contrast([_case("b", suv, lesion, lesion)]).refused is None
