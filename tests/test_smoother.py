"""Tests for the smoother stage on synthetic probability sequences with exact expectations.

Switch times are derived in the tests from the EMA algebra: with one-hot input the displayed
genre's smoothed probability after ``n`` updates of a new genre is ``x**n`` (``x = exp(-hop/tau)``)
and the challenger's is ``1 - x**n``, so the margin test ``1 - 2 x**n > margin`` first holds at
``n* = floor(c / hop) + 1`` with ``c = tau * ln(2 / (1 - margin))``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from streamgenre.smoother import SmoothedEstimate, Smoother, SmootherConfig

LABELS = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
A, B, C = 0, 6, 9  # blues, metal, rock
LOUD, QUIET = -20.0, -80.0
HOP = 0.5


def onehot(i: int) -> np.ndarray:
    p = np.zeros(len(LABELS))
    p[i] = 1.0
    return p


def pair(i: int, pi: float, j: int, pj: float) -> np.ndarray:
    p = np.zeros(len(LABELS))
    p[i], p[j] = pi, pj
    return p


def feed(sm: Smoother, items: list[tuple[float, np.ndarray, float]]) -> list[SmoothedEstimate]:
    return [sm.process(p, level, t) for t, p, level in items]


def grid(t0: float, t1: float, hop: float = HOP) -> list[float]:
    """Times t0, t0 + hop, ... strictly below t1 (computed as t0 + k * hop)."""
    n = round((t1 - t0) / hop)
    return [t0 + k * hop for k in range(n)]


def margin_time(cfg: SmootherConfig) -> float:
    """Continuous-time delay c after which a one-hot step satisfies the switch margin."""
    return cfg.time_constant_s * math.log(2.0 / (1.0 - cfg.switch_margin))


def switches(ests: list[SmoothedEstimate]) -> list[SmoothedEstimate]:
    return [e for e in ests if e.switched]


@pytest.mark.parametrize(
    "cfg",
    [
        SmootherConfig(),
        SmootherConfig(time_constant_s=1.5, switch_margin=0.1),
        SmootherConfig(time_constant_s=0.6, switch_margin=0.3, min_dwell_s=0.0),
    ],
)
def test_clean_step_switches_once_at_computed_time(cfg: SmootherConfig) -> None:
    t_step, t_end = 10.0, 20.0
    c = margin_time(cfg)
    assert abs(c / HOP - round(c / HOP)) > 1e-6  # not on a float tie
    n_star = math.floor(c / HOP) + 1
    expected_t = t_step + (n_star - 1) * HOP
    assert t_step >= cfg.min_dwell_s and n_star * HOP < cfg.sustain_s

    sm = Smoother(LABELS, cfg)
    items = [(t, onehot(A), LOUD) for t in grid(0.0, t_step)]
    items += [(t, onehot(B), LOUD) for t in grid(t_step, t_end)]
    ests = feed(sm, items)

    assert ests[0].genre == "blues" and ests[0].state == "genre"  # shown immediately at start
    sw = switches(ests)
    assert len(sw) == 1
    assert sw[0].t == pytest.approx(expected_t, abs=1e-9)
    assert sw[0].genre == "metal" and sw[0].flips == 1
    assert sw[0].last_switch_latency_s == pytest.approx(expected_t - t_step, abs=1e-9)
    assert all(e.genre == "blues" for e in ests if e.t < expected_t)
    assert all(e.genre == "metal" for e in ests if e.t >= expected_t)
    assert ests[-1].flips == 1 and ests[-1].last_switch_latency_s == sw[0].last_switch_latency_s


def test_default_switch_fits_latency_budget() -> None:
    """Defaults add at most 1.5 s after the raw arg-max flips (the window itself lags ~1.5 s)."""
    cfg = SmootherConfig()
    assert (math.floor(margin_time(cfg) / HOP)) * HOP <= 1.5
    # a softer 0.7/0.2 -> 0.2/0.7 step: lead goes from -0.5 to +0.5
    d0, d_inf = -0.5, 0.5
    n_star = math.floor(cfg.time_constant_s / HOP * math.log((d_inf - d0) / (d_inf - cfg.switch_margin))) + 1
    sm = Smoother(LABELS)
    items = [(t, pair(A, 0.7, B, 0.2), LOUD) for t in grid(0.0, 10.0)]
    items += [(t, pair(A, 0.2, B, 0.7), LOUD) for t in grid(10.0, 20.0)]
    sw = switches(feed(sm, items))
    assert len(sw) == 1 and sw[0].t == pytest.approx(10.0 + (n_star - 1) * HOP)
    assert sw[0].t - 10.0 <= 1.5


@pytest.mark.parametrize("hop", [0.1, 0.25, 1.0])
def test_switch_time_in_seconds_independent_of_hop(hop: float) -> None:
    cfg = SmootherConfig()
    c, t_step = margin_time(cfg), 10.0
    sm = Smoother(LABELS, cfg)
    items = [(t, onehot(A), LOUD) for t in grid(0.0, t_step, hop)]
    items += [(t, onehot(B), LOUD) for t in grid(t_step, 20.0, hop)]
    sw = switches(feed(sm, items))
    assert len(sw) == 1
    delay = sw[0].t - t_step
    # the last A update is at t_step - hop; the margin holds once t - (t_step - hop) > c
    assert c - hop < delay <= c + 1e-9
    assert abs(delay - c) <= 1.0  # within one hop of the slowest (1.0 s) setting


def test_variable_hop_switches_at_first_update_past_margin_time() -> None:
    cfg = SmootherConfig()
    c, t_step = margin_time(cfg), 20.0
    rng = np.random.default_rng(7)
    ts = np.cumsum(rng.uniform(0.1, 1.0, size=80))
    ts = ts[ts < 50.0]
    t_prev = ts[ts < t_step][-1]  # last update that saw genre A
    expected = ts[ts > t_prev + c][0]
    assert np.min(np.abs(ts - (t_prev + c))) > 1e-6
    sm = Smoother(LABELS, cfg)
    ests = feed(sm, [(float(t), onehot(A if t < t_step else B), LOUD) for t in ts])
    sw = switches(ests)
    assert len(sw) == 1 and sw[0].t == pytest.approx(expected)
    first_b = ts[ts >= t_step][0]
    assert sw[0].last_switch_latency_s == pytest.approx(expected - first_b)


def _jitter_stream(seed: int, complementary: bool, warm_s: float) -> list[tuple[float, np.ndarray, float]]:
    """A ~ 0.55, B ~ 0.45, jittered by U(-0.2, 0.2) every hop for 5 minutes (after a clean warm-up)."""
    rng = np.random.default_rng(seed)
    items = [(t, pair(A, 0.55, B, 0.45), LOUD) for t in grid(0.0, warm_s)]
    for t in grid(warm_s, warm_s + 300.0):
        pa = 0.55 + rng.uniform(-0.2, 0.2)
        pb = 1.0 - pa if complementary else 0.45 + rng.uniform(-0.2, 0.2)
        items.append((t, pair(A, pa, B, pb), LOUD))
    return items


def _raw_argmax_changes(items: list[tuple[float, np.ndarray, float]]) -> int:
    am = np.array([np.argmax(p) for _, p, _ in items])
    return int(np.count_nonzero(np.diff(am)))


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_jitter_noise_never_flips_once_settled(seed: int) -> None:
    items = _jitter_stream(seed, complementary=False, warm_s=3.0)
    assert _raw_argmax_changes(items) > 150  # the raw arg-max flickers constantly
    sm = Smoother(LABELS)
    ests = feed(sm, items)
    assert ests[-1].flips == 0
    assert all(e.genre == "blues" for e in ests)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_jitter_noise_from_cold_start_corrects_at_most_once(seed: int) -> None:
    items = _jitter_stream(seed, complementary=False, warm_s=0.0)
    sm = Smoother(LABELS)
    ests = feed(sm, items)
    assert ests[-1].flips <= 1  # a wrong first frame may be corrected once
    summ = sm.summary()
    assert summ["seconds_per_genre"]["blues"] >= 0.9 * summ["duration_s"]


def test_complementary_jitter_flips_rarely() -> None:
    """Harsher reading: B = 1 - A, so the lead jitters by +-0.4 around +0.1."""
    items = _jitter_stream(11, complementary=True, warm_s=3.0)
    raw_changes = _raw_argmax_changes(items)
    assert raw_changes > 200
    sm = Smoother(LABELS)
    ests = feed(sm, items)
    assert ests[-1].flips_per_minute <= 1.0
    assert ests[-1].flips * 50 <= raw_changes


@pytest.mark.parametrize("fraction", [0.3, 0.95])
def test_alternating_argmax_below_bound_never_flips(fraction: float) -> None:
    cfg = SmootherConfig()
    a = -math.expm1(-HOP / cfg.time_constant_s)
    # the EMA of a lead alternating +-u oscillates between +-u * a / (2 - a)
    u_max = cfg.switch_margin * (2 - a) / a
    u = fraction * min(u_max, 1.0)
    hi, lo = 0.5 + u / 2, 0.5 - u / 2
    vectors = (pair(A, hi, B, lo), pair(A, lo, B, hi))
    items = [(t, vectors[k % 2], LOUD) for k, t in enumerate(grid(0.0, 300.0))]
    assert _raw_argmax_changes(items) == len(items) - 1
    ests = feed(Smoother(LABELS, cfg), items)
    assert ests[-1].flips == 0


def test_alternating_argmax_above_bound_is_limited_by_dwell() -> None:
    cfg = SmootherConfig()
    items = [(t, onehot(A if k % 2 == 0 else B), LOUD) for k, t in enumerate(grid(0.0, 60.0))]
    ests = feed(Smoother(LABELS, cfg), items)
    sw_t = [e.t for e in switches(ests)]
    assert len(sw_t) >= 1
    assert np.all(np.diff([0.0, *sw_t]) >= cfg.min_dwell_s - 1e-9)
    assert ests[-1].flips <= 60.0 / cfg.min_dwell_s


def test_second_change_waits_for_dwell() -> None:
    cfg = SmootherConfig()
    n_star = math.floor(margin_time(cfg) / HOP) + 1
    t_b = 10.0 + (n_star - 1) * HOP
    t_c = t_b + HOP  # the genre changes again right after the switch
    items = [(t, onehot(A), LOUD) for t in grid(0.0, 10.0)]
    items += [(t, onehot(B), LOUD) for t in grid(10.0, t_c)]
    items += [(t, onehot(C), LOUD) for t in grid(t_c, 20.0)]
    ests = feed(Smoother(LABELS, cfg), items)
    sw = switches(ests)
    assert [e.genre for e in sw] == ["metal", "rock"]
    assert sw[0].t == pytest.approx(t_b)
    # the margin already holds for rock before the dwell ends, yet metal stays
    early = [e for e in ests if t_c <= e.t < t_b + cfg.min_dwell_s - 1e-9]
    assert any(e.smoothed[C] - e.smoothed[B] > cfg.switch_margin and e.genre == "metal" for e in early)
    expected = min(t for t, _, _ in items if t >= t_b + cfg.min_dwell_s - 1e-9)
    assert sw[1].t == pytest.approx(expected)
    assert sw[1].last_switch_latency_s == pytest.approx(expected - t_c)


def test_dwell_applies_from_first_display() -> None:
    cfg = SmootherConfig()
    items = [(0.0, onehot(A), LOUD)] + [(t, onehot(B), LOUD) for t in grid(HOP, 10.0)]
    sw = switches(feed(Smoother(LABELS, cfg), items))
    assert len(sw) == 1 and sw[0].t == pytest.approx(cfg.min_dwell_s)


def test_sustained_small_lead_takes_over_after_sustain() -> None:
    cfg = SmootherConfig()
    d0, d_inf = -0.4, 0.1  # rock vs blues: 0.1/0.5 -> 0.35/0.25, below the 0.2 margin
    assert d_inf < cfg.switch_margin
    n_lead = math.floor(cfg.time_constant_s / HOP * math.log((d_inf - d0) / d_inf)) + 1
    t_lead = 10.0 + (n_lead - 1) * HOP
    expected = t_lead + cfg.sustain_s
    items = [(t, pair(A, 0.5, C, 0.1), LOUD) for t in grid(0.0, 10.0)]
    items += [(t, pair(A, 0.25, C, 0.35), LOUD) for t in grid(10.0, 40.0)]
    ests = feed(Smoother(LABELS, cfg), items)
    assert [e.leader for e in ests if e.t in (t_lead - HOP, t_lead)] == ["blues", "rock"]
    sw = switches(ests)
    assert len(sw) == 1 and sw[0].t == pytest.approx(expected) and sw[0].genre == "rock"
    assert sw[0].last_switch_latency_s == pytest.approx(expected - 10.0)
    # with the fallback disabled the margin alone never lets rock through
    no_sustain = feed(Smoother(LABELS, SmootherConfig(sustain_s=math.inf)), items)
    assert no_sustain[-1].flips == 0 and no_sustain[-1].genre == "blues"


def test_silence_gate_hold_and_return() -> None:
    cfg = SmootherConfig()
    sm = Smoother(LABELS, cfg)
    first = sm.process(onehot(A), QUIET, 0.0)  # nothing to hold at the start
    assert (first.genre, first.state, first.leader, first.confidence) == (None, "silence", None, 0.0)
    assert not first.smoothed.any()
    music = feed(sm, [(t, pair(A, 0.8, B, 0.2), LOUD) for t in grid(HOP, 5.0)])
    assert music[0].genre == "blues" and not music[0].switched

    # quiet blocks shorter than the hold keep the display and do not feed the EMA
    quiet_ts = grid(5.0, 5.0 + cfg.silence_hold_s)
    held = feed(sm, [(t, onehot(C), QUIET) for t in quiet_ts])
    for e in held:
        assert (e.genre, e.state) == ("blues", "genre")
        np.testing.assert_array_equal(e.smoothed, music[-1].smoothed)
    back = sm.process(pair(A, 0.8, B, 0.2), LOUD, quiet_ts[-1] + HOP)
    assert back.genre == "blues" and back.flips == 0

    # a quiet run lasting silence_hold_s blanks the display
    t0 = back.t + HOP
    quiet = feed(sm, [(t, onehot(C), -math.inf) for t in grid(t0, t0 + 5.0)])
    onset = t0 + cfg.silence_hold_s
    assert all(e.genre == "blues" for e in quiet if e.t < onset - 1e-9)
    assert all(e.genre is None and e.state == "silence" for e in quiet if e.t >= onset - 1e-9)

    # leaving silence shows the new leader at once, EMA restarted from the raw vector
    ret = sm.process(pair(B, 0.6, C, 0.3), LOUD, t0 + 5.0)
    assert (ret.genre, ret.state, ret.switched, ret.flips) == ("metal", "genre", False, 0)
    np.testing.assert_array_equal(ret.smoothed, ret.raw)
    assert ret.confidence == pytest.approx(0.6)


def test_uncertain_state_and_unnormalised_sigmoid_outputs() -> None:
    sm = Smoother(LABELS, SmootherConfig(min_confidence=0.5))
    p = np.full(len(LABELS), 0.3)
    p[A] = 0.9  # multi-label sigmoid output: sums to 3.6, used as is
    e = sm.process(p, LOUD, 0.0)
    np.testing.assert_array_equal(e.smoothed, p)
    assert (e.genre, e.state, e.confidence) == ("blues", "genre", pytest.approx(0.9))
    e = sm.process(np.full(len(LABELS), 0.3), LOUD, 100.0)  # EMA converges to 0.3 everywhere
    assert (e.genre, e.state) == ("blues", "uncertain") and e.confidence < 0.5


def test_estimate_arrays_are_read_only_copies() -> None:
    sm = Smoother(LABELS)
    p = onehot(A)
    e = sm.process(p, LOUD, 0.0)
    p[A] = 0.0
    assert e.raw[A] == 1.0
    with pytest.raises(ValueError):
        e.smoothed[0] = 1.0
    with pytest.raises(ValueError):
        e.raw[0] = 1.0
    again = sm.process(onehot(A), LOUD, 0.0)  # equal time stamps are allowed (alpha = 0)
    np.testing.assert_array_equal(again.smoothed, e.smoothed)


@pytest.mark.parametrize(
    ("probs", "match"),
    [
        (np.full(9, 0.1), r"shape \(10,\)"),
        (np.full((1, 10), 0.1), r"shape \(10,\)"),
        (np.r_[np.nan, np.full(9, 0.1)], "finite"),
        (np.r_[np.inf, np.full(9, 0.1)], "finite"),
        (np.r_[-0.1, np.full(9, 0.1)], r"\[0, 1\]"),
        (np.r_[3.0, np.full(9, 0.1)], "logits"),
    ],
)
def test_bad_probs_rejected(probs: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Smoother(LABELS).process(probs, LOUD, 0.0)


def test_bad_types_and_times_rejected() -> None:
    sm = Smoother(LABELS)
    with pytest.raises(TypeError, match="probs"):
        sm.process(["x"] * 10, LOUD, 0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="level_dbfs"):
        sm.process(onehot(A), math.nan, 0.0)
    with pytest.raises(ValueError, match="level_dbfs"):
        sm.process(onehot(A), math.inf, 0.0)
    with pytest.raises(TypeError, match="level_dbfs"):
        sm.process(onehot(A), "loud", 0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="t must be finite"):
        sm.process(onehot(A), LOUD, math.nan)
    sm.process(onehot(A), LOUD, 5.0)
    with pytest.raises(ValueError, match="backwards"):
        sm.process(onehot(A), LOUD, 4.5)
    assert sm.process(onehot(A), LOUD, 5.0).t == 5.0  # the rejected call changed nothing


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"time_constant_s": 0.0}, ValueError, "time_constant_s"),
        ({"time_constant_s": math.inf}, ValueError, "time_constant_s"),
        ({"switch_margin": -0.1}, ValueError, "switch_margin"),
        ({"switch_margin": 1.0}, ValueError, "switch_margin"),
        ({"min_dwell_s": -1.0}, ValueError, "min_dwell_s"),
        ({"min_dwell_s": math.nan}, ValueError, "min_dwell_s"),
        ({"sustain_s": 0.0}, ValueError, "sustain_s"),
        ({"sustain_s": math.nan}, ValueError, "sustain_s"),
        ({"silence_threshold_dbfs": math.nan}, ValueError, "silence_threshold_dbfs"),
        ({"silence_threshold_dbfs": math.inf}, ValueError, "silence_threshold_dbfs"),
        ({"silence_hold_s": -0.5}, ValueError, "silence_hold_s"),
        ({"min_confidence": 1.5}, ValueError, "min_confidence"),
        ({"time_constant_s": "1"}, TypeError, "time_constant_s"),
        ({"min_dwell_s": True}, TypeError, "min_dwell_s"),
    ],
)
def test_bad_config_rejected(kwargs: dict, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        SmootherConfig(**kwargs)


def test_bad_labels_and_config_type_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        Smoother([])
    with pytest.raises(ValueError, match="unique"):
        Smoother(["rock", "rock"])
    with pytest.raises(TypeError, match="strings"):
        Smoother(["rock", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="sequence"):
        Smoother("rock")
    with pytest.raises(TypeError, match="SmootherConfig"):
        Smoother(LABELS, {"time_constant_s": 1.0})  # type: ignore[arg-type]


def test_reset_returns_to_initial_state() -> None:
    items = [(t, onehot(A), LOUD) for t in grid(0.0, 10.0)] + [(t, onehot(B), LOUD) for t in grid(10.0, 20.0)]
    items += [(t, onehot(C), QUIET) for t in grid(20.0, 23.0)]
    used = Smoother(LABELS)
    feed(used, items)
    assert used.summary()["flips"] == 1
    used.reset()
    assert used.summary() == Smoother(LABELS).summary()
    fresh = Smoother(LABELS)
    for a, b in zip(feed(used, items), feed(fresh, items), strict=True):  # t may restart at 0
        assert (a.genre, a.state, a.leader, a.switched, a.t, a.flips) == (
            b.genre,
            b.state,
            b.leader,
            b.switched,
            b.t,
            b.flips,
        )
        assert a.flips_per_minute == b.flips_per_minute
        assert a.last_switch_latency_s == b.last_switch_latency_s
        np.testing.assert_array_equal(a.smoothed, b.smoothed)


def test_summary_numbers_on_constructed_sequence() -> None:
    cfg = SmootherConfig()
    t_step, t_quiet, t_music, t_end = 10.0, 20.5, 25.5, 30.0
    t_sw = t_step + math.floor(margin_time(cfg) / HOP) * HOP
    t_silence = t_quiet + cfg.silence_hold_s
    items = [(t, onehot(A), LOUD) for t in grid(0.0, t_step)]
    items += [(t, onehot(B), LOUD) for t in grid(t_step, t_quiet)]
    items += [(t, onehot(B), QUIET) for t in grid(t_quiet, t_music)]
    items += [(t, onehot(C), LOUD) for t in grid(t_music, t_end + HOP)]
    sm = Smoother(LABELS, cfg)
    ests = feed(sm, items)
    summ = sm.summary()
    json.dumps(summ)  # JSON-safe

    assert summ["updates"] == len(items)
    assert summ["duration_s"] == pytest.approx(t_end)
    assert summ["flips"] == 1  # blues -> metal; silence -> rock is not a flip
    assert summ["flips_per_minute"] == pytest.approx(1 / (t_end / 60.0))
    assert ests[-1].flips_per_minute == pytest.approx(summ["flips_per_minute"])
    expected_seconds = {lab: 0.0 for lab in LABELS}
    expected_seconds.update(blues=t_sw, metal=t_silence - t_sw, rock=t_end - t_music)
    assert summ["seconds_per_genre"] == pytest.approx(expected_seconds)
    assert summ["seconds_silence"] == pytest.approx(t_music - t_silence)
    assert sum(summ["seconds_per_genre"].values()) + summ["seconds_silence"] == pytest.approx(t_end)
    assert summ["switch_latencies_s"] == pytest.approx([t_sw - t_step])
    assert summ["switches"] == [
        {"t": pytest.approx(t_sw), "from": "blues", "to": "metal", "latency_s": pytest.approx(t_sw - t_step)}
    ]
