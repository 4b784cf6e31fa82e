"""Smoother stage: per-window genre probabilities -> a stable displayed genre.

The model emits a probability vector every hop (0.5 s by default) for the last ~3 s of audio.
Shown directly, its arg-max flickers. :class:`Smoother` turns that stream into the genre to
display, using four mechanisms:

1. **EMA in continuous time.** ``smoothed += alpha * (raw - smoothed)`` with
   ``alpha = 1 - exp(-dt / time_constant_s)``, where ``dt`` is the stream time since the previous
   smoothed update. The filter therefore behaves the same (in seconds) for any hop, fixed or
   variable. ``dt == 0`` gives ``alpha == 0``: a repeated time stamp carries no weight.
2. **Hysteresis.** The displayed genre changes only to the smoothed leader, and only when the
   leader's smoothed probability exceeds the displayed genre's by more than ``switch_margin``.
3. **Dwell.** It also changes only after the displayed genre has been shown for ``min_dwell_s``.
4. **Sustained lead.** A leader that has led the smoothed vector continuously for ``sustain_s``
   may take over with a lead below the margin (dwell still applies). Without this a model whose
   outputs are diffuse (new genre 0.30 vs. old genre 0.20) would keep showing the old genre for
   ever; with it the display is wrong for at most ~``sustain_s``.

Silence gate: an update whose ``level_dbfs`` is below ``silence_threshold_dbfs`` is *quiet*. Its
probabilities describe no music and are not fed to the EMA (the display and the EMA are frozen).
Once the quiet run has lasted ``silence_hold_s`` the state becomes ``"silence"`` (genre ``None``)
and the EMA is discarded. When music returns the EMA **restarts from the raw vector** and its
leader is shown at once: silence usually marks a boundary (a new track or programme, a paused
input), so pre-silence evidence is stale and decaying it would only delay showing the new music.
The first non-silent update after construction or :meth:`Smoother.reset` is treated the same way.

Probabilities are not renormalised: sigmoid (multi-label) outputs that do not sum to 1 are valid
input and are smoothed per class as they are; margins and confidences are then on that scale.

Default values (tuned for 0.5 s hops and ~3 s windows; on real music the window itself lags a
genre boundary by ~1.5 s, so the smoother has ~1.5 s of the 3 s budget):

- ``time_constant_s = 1.0``, ``switch_margin = 0.2``: after a clean one-hot step the margin holds
  once ``tau * ln(2 / (1 - margin)) = 0.92 s`` have passed since the last update of the old genre,
  i.e. at the second update of the new genre (0.5 s after the raw arg-max changes at a 0.5 s hop);
  a 0.7/0.2 -> 0.2/0.7 step is shown 1.0 s after. Simulating a 3 s window sliding over a boundary,
  the smoother adds ~1.0-1.2 s to the raw arg-max for confident outputs. On synthetic noise
  (A = 0.55, B = 0.45, each jittered uniformly by +-0.2 every 0.5 s, so the raw arg-max changes on
  ~1/3 of hops) there were zero flips in 5 minutes for all 500 seeds tried; tau = 1.5 s with
  margin 0.1 is ~0.2 s slower for confident outputs and flipped in about a quarter of those seeds.
- ``min_dwell_s = 2.0``: no genre is shown for less than 2 s; it does not delay the first change
  after a long stable stretch, so it costs no latency at a single boundary.
- ``sustain_s = 8.0``: long enough that noise never keeps a wrong leader ahead that long (no
  change in the flip counts above), short enough that a diffuse winner is shown within ~10 s.
- ``silence_threshold_dbfs = -50``, ``silence_hold_s = 1.0``: one or two quiet hops (a pause, a
  drum break) keep the display; a second of quiet blanks it. Leaving silence is immediate.
- ``min_confidence = 0.0`` (off): whether 0.2 is "uncertain" depends on the model's calibration
  and on softmax vs. sigmoid outputs, so the threshold belongs with the model. When set, a
  displayed genre whose smoothed probability is below it is reported with state ``"uncertain"``;
  ``genre`` stays set (the UI may dim it) and hysteresis continues unchanged.

Time comparisons (dwell, sustain, hold) allow 1 ns of slack so that stream times accumulated
from float hops (``k * 0.1``) hit their thresholds exactly.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any, Literal

import numpy as np

__all__ = ["SmoothedEstimate", "Smoother", "SmootherConfig"]

State = Literal["silence", "genre", "uncertain"]

_EPS_T = 1e-9  # slack (seconds) for time thresholds
_PROB_TOL = 1e-6  # tolerated rounding above 1.0
_MAX_SWITCH_LOG = 4096  # switches kept for summary(); ``flips`` counts all of them


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


@dataclass(frozen=True)
class SmootherConfig:
    """Settings of :class:`Smoother` (see the module docstring for why these defaults).

    Parameters
    ----------
    time_constant_s
        EMA time constant in seconds (> 0, finite).
    switch_margin
        Lead (in probability) the smoothed leader needs over the displayed genre to take over;
        in [0, 1).
    min_dwell_s
        Minimum seconds a displayed genre stays before it may change (>= 0, finite).
    sustain_s
        Seconds of continuous smoothed leadership after which a leader may take over with a lead
        below ``switch_margin`` (> 0; ``math.inf`` disables).
    silence_threshold_dbfs
        Level below which an update is quiet (finite, or ``-math.inf`` to disable the gate).
    silence_hold_s
        Seconds a quiet run must last before the display is blanked (>= 0, finite).
    min_confidence
        Smoothed probability of the displayed genre below which the state is ``"uncertain"``;
        in [0, 1], 0 disables.
    """

    time_constant_s: float = 1.0
    switch_margin: float = 0.2
    min_dwell_s: float = 2.0
    sustain_s: float = 8.0
    silence_threshold_dbfs: float = -50.0
    silence_hold_s: float = 1.0
    min_confidence: float = 0.0

    def __post_init__(self) -> None:
        v = {name: _real(name, getattr(self, name)) for name in self.__dataclass_fields__}
        if not (math.isfinite(v["time_constant_s"]) and v["time_constant_s"] > 0):
            raise ValueError(f"time_constant_s must be finite and > 0, got {v['time_constant_s']}")
        if not 0 <= v["switch_margin"] < 1:
            raise ValueError(f"switch_margin must be in [0, 1), got {v['switch_margin']}")
        for name in ("min_dwell_s", "silence_hold_s"):
            if not (math.isfinite(v[name]) and v[name] >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {v[name]}")
        if not v["sustain_s"] > 0:  # also rejects NaN
            raise ValueError(f"sustain_s must be > 0 (math.inf disables), got {v['sustain_s']}")
        thr = v["silence_threshold_dbfs"]
        if math.isnan(thr) or thr == math.inf:
            raise ValueError(f"silence_threshold_dbfs must be finite or -inf, got {thr}")
        if not 0 <= v["min_confidence"] <= 1:
            raise ValueError(f"min_confidence must be in [0, 1], got {v['min_confidence']}")


@dataclass(frozen=True, eq=False)
class SmoothedEstimate:
    """What to display after one update (arrays are read-only copies; equality is identity).

    Attributes
    ----------
    genre
        Displayed genre; ``None`` in silence.
    state
        ``"silence"``, ``"genre"``, or ``"uncertain"`` (genre shown but below ``min_confidence``).
    confidence
        Smoothed probability of the displayed genre (0.0 in silence).
    smoothed
        Smoothed probability vector (all zeros in silence: the EMA is discarded there).
    raw
        The probability vector passed to this update.
    leader
        Arg-max label of ``smoothed``; ``None`` in silence.
    switched
        True when the displayed genre changed from one genre to another at this update. Showing
        a genre at the start or after silence, and blanking for silence, are not switches.
    t
        Stream time (s) of the window end.
    flips
        Number of switches since construction or reset.
    flips_per_minute
        ``flips`` divided by the stream minutes covered so far (0.0 before any time passed).
    last_switch_latency_s
        For the latest switch: its time minus the start of the latest run of updates in which the
        new genre was the raw arg-max (or the start of the music segment, if it never was).
        ``None`` before any switch.
    """

    genre: str | None
    state: State
    confidence: float
    smoothed: np.ndarray
    raw: np.ndarray
    leader: str | None
    switched: bool
    t: float
    flips: int
    flips_per_minute: float
    last_switch_latency_s: float | None


def _frozen(a: np.ndarray) -> np.ndarray:
    out = np.array(a, dtype=np.float64, copy=True)
    out.flags.writeable = False
    return out


class Smoother:
    """Smooth a stream of genre probability vectors into a stable displayed genre.

    Parameters
    ----------
    labels
        Genre names, one per probability-vector entry (unique, non-empty strings).
    config
        Settings; ``SmootherConfig()`` when ``None``.
    """

    def __init__(self, labels: Sequence[str], config: SmootherConfig | None = None) -> None:
        if isinstance(labels, str) or not isinstance(labels, Sequence):
            raise TypeError(f"labels must be a sequence of strings, got {type(labels).__name__}")
        if len(labels) == 0:
            raise ValueError("labels must not be empty")
        if not all(isinstance(x, str) and x for x in labels):
            raise TypeError("labels must all be non-empty strings")
        if len(set(labels)) != len(labels):
            raise ValueError(f"labels must be unique, got {list(labels)}")
        if config is not None and not isinstance(config, SmootherConfig):
            raise TypeError(f"config must be a SmootherConfig or None, got {type(config).__name__}")
        self._labels = tuple(labels)
        self._cfg = config if config is not None else SmootherConfig()
        self.reset()

    @property
    def labels(self) -> tuple[str, ...]:
        """Genre names, in probability-vector order."""
        return self._labels

    @property
    def config(self) -> SmootherConfig:
        """The settings in use."""
        return self._cfg

    def reset(self) -> None:
        """Forget all stream state and statistics (as if newly constructed)."""
        n = len(self._labels)
        self._ema: np.ndarray | None = None  # None: no music segment (start or silence)
        self._t_ema = 0.0  # time of the last EMA update
        self._segment_start = 0.0
        self._display: int | None = None
        self._shown_since = 0.0  # time the displayed genre was first shown (for dwell)
        self._leader = -1
        self._leader_since = 0.0
        self._run_label = -1  # raw arg-max of the previous music update
        self._run_start = np.full(n, np.nan)  # start of each label's latest raw arg-max run
        self._quiet_since: float | None = None
        self._t_first: float | None = None
        self._t_last: float | None = None
        self._updates = 0
        self._flips = 0
        self._last_latency: float | None = None
        self._switches: deque[dict[str, Any]] = deque(maxlen=_MAX_SWITCH_LOG)
        self._seconds = np.zeros(n)
        self._seconds_silence = 0.0

    def _check(self, probs: np.ndarray, level_dbfs: float, t: float) -> tuple[np.ndarray, float, float]:
        try:
            p = np.asarray(probs, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"probs must be a numeric array, got {type(probs).__name__}") from exc
        if p.ndim != 1 or p.shape[0] != len(self._labels):
            raise ValueError(f"probs must have shape ({len(self._labels)},) (one per label), got {p.shape}")
        if not np.all(np.isfinite(p)):
            raise ValueError("probs must be finite (got NaN or inf)")
        if p.min() < 0 or p.max() > 1 + _PROB_TOL:
            raise ValueError(
                f"probs must lie in [0, 1] (probabilities, not logits), got min {p.min():g} max {p.max():g}"
            )
        level = _real("level_dbfs", level_dbfs)
        if math.isnan(level) or level == math.inf:
            raise ValueError(f"level_dbfs must be finite or -inf, got {level}")
        t = _real("t", t)
        if not math.isfinite(t):
            raise ValueError(f"t must be finite, got {t}")
        if self._t_last is not None and t < self._t_last:
            raise ValueError(f"t must not go backwards: got {t} after {self._t_last}")
        return p, level, t

    def _start_segment(self, p: np.ndarray, t: float) -> None:
        self._ema = p.copy()
        self._t_ema = self._segment_start = self._shown_since = self._leader_since = t
        self._leader = self._display = self._run_label = int(np.argmax(p))
        self._run_start[:] = np.nan
        self._run_start[self._run_label] = t

    def _update_segment(self, p: np.ndarray, t: float) -> bool:
        """Feed one music update to the EMA and apply hysteresis; return True on a switch."""
        assert self._ema is not None and self._display is not None
        cfg = self._cfg
        alpha = -math.expm1(-(t - self._t_ema) / cfg.time_constant_s)
        self._ema += alpha * (p - self._ema)
        self._t_ema = t
        am = int(np.argmax(p))
        if am != self._run_label:
            self._run_label = am
            self._run_start[am] = t
        lead = int(np.argmax(self._ema))
        if lead != self._leader:
            self._leader, self._leader_since = lead, t
        cur = self._display
        if lead == cur or t - self._shown_since < cfg.min_dwell_s - _EPS_T:
            return False
        by_margin = self._ema[lead] - self._ema[cur] > cfg.switch_margin
        if not (by_margin or t - self._leader_since >= cfg.sustain_s - _EPS_T):
            return False
        run_start = self._run_start[lead]
        latency = t - (self._segment_start if np.isnan(run_start) else float(run_start))
        self._display, self._shown_since = lead, t
        self._flips += 1
        self._last_latency = latency
        self._switches.append(
            {"t": t, "from": self._labels[cur], "to": self._labels[lead], "latency_s": latency}
        )
        return True

    def process(self, probs: np.ndarray, level_dbfs: float, t: float) -> SmoothedEstimate:
        """Consume one window's probabilities and return what to display.

        Parameters
        ----------
        probs
            Probability per label, shape ``(len(labels),)``, each in [0, 1] (not renormalised).
        level_dbfs
            Level of the audio behind ``probs`` in dBFS (``-inf`` for digital silence).
        t
            Stream time in seconds of the window end; must not decrease between calls.

        Returns
        -------
        SmoothedEstimate

        Raises
        ------
        ValueError
            Wrong shape, non-finite or out-of-range probabilities, NaN level, or ``t`` going back.
        TypeError
            Non-numeric ``probs``, ``level_dbfs`` or ``t``.
        """
        p, level, t = self._check(probs, level_dbfs, t)
        if self._t_last is None:
            self._t_first = t
        else:  # the interval since the last update was showing the state decided then
            if self._display is None:
                self._seconds_silence += t - self._t_last
            else:
                self._seconds[self._display] += t - self._t_last
        self._t_last = t
        self._updates += 1

        switched = False
        if level < self._cfg.silence_threshold_dbfs:
            if self._quiet_since is None:
                self._quiet_since = t
            if self._display is None or t - self._quiet_since >= self._cfg.silence_hold_s - _EPS_T:
                self._ema = self._display = None  # silence: blank and forget the segment
        else:
            self._quiet_since = None
            if self._ema is None:
                self._start_segment(p, t)
            else:
                switched = self._update_segment(p, t)
        return self._estimate(p, t, switched)

    def _estimate(self, p: np.ndarray, t: float, switched: bool) -> SmoothedEstimate:
        assert self._t_first is not None
        minutes = (t - self._t_first) / 60.0
        fpm = self._flips / minutes if minutes > 0 else 0.0
        if self._ema is None or self._display is None:
            genre, state, conf, leader = None, "silence", 0.0, None
            smoothed = np.zeros(len(self._labels))
        else:
            genre, smoothed = self._labels[self._display], self._ema
            conf = float(self._ema[self._display])
            state = "uncertain" if conf < self._cfg.min_confidence else "genre"
            leader = self._labels[int(np.argmax(self._ema))]
        return SmoothedEstimate(
            genre=genre,
            state=state,
            confidence=conf,
            smoothed=_frozen(smoothed),
            raw=_frozen(p),
            leader=leader,
            switched=switched,
            t=t,
            flips=self._flips,
            flips_per_minute=fpm,
            last_switch_latency_s=self._last_latency,
        )

    def summary(self) -> dict[str, Any]:
        """Statistics since construction or reset, as JSON-safe builtins.

        Returns
        -------
        dict
            ``updates``, ``duration_s`` (first to last ``t``), ``flips``, ``flips_per_minute``,
            ``seconds_per_genre`` (label -> seconds displayed, every label present),
            ``seconds_silence`` (seconds with no genre shown), ``switch_latencies_s`` and
            ``switches`` (``{"t", "from", "to", "latency_s"}``), both for the latest
            4096 switches.
        """
        duration = 0.0 if self._t_first is None or self._t_last is None else self._t_last - self._t_first
        return {
            "updates": self._updates,
            "duration_s": duration,
            "flips": self._flips,
            "flips_per_minute": self._flips / (duration / 60.0) if duration > 0 else 0.0,
            "seconds_per_genre": {lab: float(s) for lab, s in zip(self._labels, self._seconds, strict=True)},
            "seconds_silence": self._seconds_silence,
            "switch_latencies_s": [sw["latency_s"] for sw in self._switches],
            "switches": [dict(sw) for sw in self._switches],
        }
