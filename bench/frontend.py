"""Mel front-end benchmark: the cost of one 100 ms block at musicnn settings.

Run ``python -m bench.frontend [--json PATH] [--seconds N]``. Streams N seconds of real music
(the 16 kHz ``audio16k`` of ``../shared/data/musicnn_ref/*.00000.npz``; white noise when the
data set is absent) in 1600-sample blocks through each candidate, interleaved block by block
(the order rotates) after a warm-up, and reports medians and p99 of the per-block wall time:

* ``StreamingMel.process`` (this package);
* librosa recomputing the log-mel of the last 3 s window for every block (the naive approach);
* a plain vectorised numpy incremental front end (``np.fft.rfft`` of the new frames, dense mel
  matrix product, log), written below;
* Essentia's per-hop chain (Windowing, Spectrum, MelBands per new frame) when
  ``essentia.standard`` imports. Essentia is AGPL: only ever a comparator, never a dependency.

Writes ``{"machine": {...}, "rows": [{"metric", "value", "unit", "target", "met", "note"}],
"notes": [...], ...}`` as JSON (default ``bench/results/frontend.json``, via
:mod:`bench.common`) and prints a table.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import RESULTS_DIR, Row, report
from streamgenre.features import MelConfig, StreamingMel, compute_mel

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = RESULTS_DIR / "frontend.json"
CFG = MelConfig(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96, log="log10p", log_scale=10000.0)
BLOCK = 1600  # 100 ms at 16 kHz
CONTEXT = 3 * 16000  # the window librosa recomputes
WARMUP_BLOCKS = 50
ROUND = 20  # blocks a candidate streams back to back before the next one's turn


def shared_data_dir() -> Path:
    """``$STREAMGENRE_SHARED_DATA`` or ``../shared/data`` beside the repository."""
    override = os.environ.get("STREAMGENRE_SHARED_DATA")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"


def load_audio(seconds: float) -> tuple[np.ndarray, str]:
    """``seconds`` of 16 kHz float32 music (or white noise) plus a description of the source."""
    need = int(seconds * 16000) + CONTEXT
    files = sorted((shared_data_dir() / "musicnn_ref").glob("*.00000.npz"))
    parts, total = [], 0
    for path in files:
        if total >= need:
            break
        with np.load(path) as npz:
            parts.append(np.asarray(npz["audio16k"], dtype=np.float32))
        total += parts[-1].size
    if parts:
        audio = np.concatenate(parts)
        while audio.size < need:  # loop the music when more is asked for than there is
            audio = np.concatenate([audio, audio])
        return audio[:need], f"real music: {len(parts)} GTZAN clips from musicnn_ref (16 kHz)"
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, need).astype(np.float32)
    return noise, "synthetic white noise (shared data set not found)"


class NumpyIncremental:
    """Plain vectorised numpy incremental log-mel (the obvious implementation to beat)."""

    name = "numpy incremental"

    def __init__(self, cfg: MelConfig) -> None:
        import librosa

        self.cfg = cfg
        self.window = librosa.filters.get_window(cfg.window, cfg.n_fft, fftbins=True).astype(np.float32)
        self.mel_t = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels).T.copy()
        self.history = np.zeros(0, dtype=np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        buf = np.concatenate([self.history, block])
        n_frames = 0 if buf.size < cfg.n_fft else (buf.size - cfg.n_fft) // cfg.hop_length + 1
        frames = np.lib.stride_tricks.sliding_window_view(buf, cfg.n_fft)[:: cfg.hop_length][:n_frames]
        spec = np.fft.rfft(frames * self.window, axis=1)
        power = spec.real**2 + spec.imag**2
        self.history = buf[n_frames * cfg.hop_length :]
        return np.log10(1.0 + cfg.log_scale * (power @ self.mel_t))


class LibrosaRecompute:
    """librosa over the whole last 3 s for every block (what a naive live app does)."""

    name = "librosa 3 s recompute"

    def __init__(self, cfg: MelConfig, context: np.ndarray) -> None:
        import librosa

        self.cfg = cfg
        self.melspectrogram = librosa.feature.melspectrogram
        self.window = np.array(context[-CONTEXT:], dtype=np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        self.window = np.concatenate([self.window[block.size :], block])
        mel = self.melspectrogram(
            y=self.window, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_mels=cfg.n_mels
        )
        return np.log10(1.0 + cfg.log_scale * mel)


class EssentiaPerHop:
    """Essentia's standard-mode chain, one call per new frame (comparator only: AGPL)."""

    name = "Essentia per hop"

    def __init__(self, cfg: MelConfig, es: Any) -> None:
        self.cfg = cfg
        self.windowing = es.Windowing(type="hann", size=cfg.n_fft, normalized=False, zeroPhase=False)
        self.spectrum = es.Spectrum(size=cfg.n_fft)
        self.melbands = es.MelBands(
            numberBands=cfg.n_mels,
            sampleRate=cfg.sample_rate,
            inputSize=cfg.n_fft // 2 + 1,
            lowFrequencyBound=0,
            highFrequencyBound=cfg.sample_rate / 2,
            warpingFormula="slaneyMel",
            normalize="unit_tri",
            type="power",
        )
        self.history = np.zeros(0, dtype=np.float32)

    def process(self, block: np.ndarray) -> list[np.ndarray]:
        cfg = self.cfg
        buf = np.concatenate([self.history, block])
        out, start = [], 0
        while start + cfg.n_fft <= buf.size:
            mel = self.melbands(self.spectrum(self.windowing(buf[start : start + cfg.n_fft])))
            out.append(np.log10(1.0 + cfg.log_scale * mel))
            start += cfg.hop_length
        self.history = buf[start:]
        return out


class Streaming:
    """This package's :class:`~streamgenre.features.StreamingMel`."""

    name = "StreamingMel"

    def __init__(self, cfg: MelConfig) -> None:
        StreamingMel.warmup()
        self.mel = StreamingMel(cfg)

    def process(self, block: np.ndarray) -> np.ndarray:
        return self.mel.process(block)


def measure(candidates: list[Any], blocks: list[np.ndarray], warmup: int) -> dict[str, np.ndarray]:
    """Per-block wall times (µs) per candidate.

    Interleaved in rounds of ``ROUND`` consecutive blocks: each candidate streams a round's
    blocks back to back (its caches stay as warm as in a live loop), the candidates take turns
    per round in a rotating order (slow drifts of a shared machine hit all alike), and the
    garbage collector is paused while timing.
    """
    times: dict[str, list[float]] = {c.name: [] for c in candidates}
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for r, start in enumerate(range(0, len(blocks), ROUND)):
            for j in range(len(candidates)):
                cand = candidates[(r + j) % len(candidates)]
                for i in range(start, min(start + ROUND, len(blocks))):
                    t0 = clock()
                    cand.process(blocks[i])
                    dt = clock() - t0
                    if i >= warmup:
                        times[cand.name].append(dt / 1000.0)
    finally:
        gc.enable()
    return {name: np.asarray(v) for name, v in times.items()}


def run(seconds: float) -> tuple[list[Row], dict[str, Any]]:
    """Run the benchmark; returns the rows and extra JSON fields."""
    audio, source = load_audio(seconds)
    context, stream = audio[:CONTEXT], audio[CONTEXT:]
    blocks = [np.ascontiguousarray(stream[i : i + BLOCK]) for i in range(0, stream.size - BLOCK + 1, BLOCK)]
    warmup = min(WARMUP_BLOCKS, len(blocks) // 4)
    notes = [
        f"input: {source}; {len(blocks)} blocks of {BLOCK} samples, the first {warmup} not timed",
        f"wall-clock times, candidates interleaved in rounds of {ROUND} blocks; on a loaded shared "
        "machine the p99 mostly measures preemption",
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    candidates: list[Any] = [Streaming(CFG), LibrosaRecompute(CFG, context), NumpyIncremental(CFG)]
    essentia_version, essentia_note = None, ""
    try:
        import essentia
        import essentia.standard as es

        essentia.log.infoActive = False
        candidates.append(EssentiaPerHop(CFG, es))
        essentia_version = essentia.__version__
    except ImportError:
        essentia_note = "skipped: `import essentia.standard` failed (AGPL comparator, never a dependency)"

    try:  # one BLAS thread for everyone, as in the single-threaded live worker
        from threadpoolctl import threadpool_limits
    except ImportError:
        times = measure(candidates, blocks, warmup)
        notes.append("threadpoolctl missing: BLAS thread count left at its default")
    else:
        with threadpool_limits(limits=1):
            times = measure(candidates, blocks, warmup)

    check = StreamingMel(CFG)  # parity on the very same stream
    streamed = np.concatenate([check.process(b) for b in blocks])
    whole = np.concatenate(blocks)
    parity = float(np.abs(streamed - _librosa_log_mel(whole)).max())
    same = float(np.abs(streamed - compute_mel(whole, CFG)).max())

    med = {name: float(np.median(t)) for name, t in times.items()}
    ours, lib = med["StreamingMel"], med["librosa 3 s recompute"]
    rows = [
        Row(
            "StreamingMel per 100 ms block, median",
            ours,
            "µs",
            f"<= {lib / 200:.3g} (librosa / 200)",
            ours * 200 <= lib,
        ),
        Row("StreamingMel per 100 ms block, p99", float(np.percentile(times["StreamingMel"], 99)), "µs"),
        Row("StreamingMel per 100 ms block, min", float(times["StreamingMel"].min()), "µs"),
        Row("librosa 3 s recompute per block, median", lib, "µs"),
        Row("numpy incremental per block, median", med["numpy incremental"], "µs"),
        Row("Essentia per hop per block, median", med.get("Essentia per hop"), "µs", note=essentia_note),
        Row("speed-up librosa recompute / StreamingMel", lib / ours, "x", ">= 100 (aim 200)", lib / ours >= 100),
    ]
    ratio = med["numpy incremental"] / ours
    rows.append(Row("speed-up numpy incremental / StreamingMel", ratio, "x", "> 1", ratio > 1))
    if "Essentia per hop" in med:
        ratio = med["Essentia per hop"] / ours
        rows.append(Row("speed-up Essentia per hop / StreamingMel", ratio, "x", "> 1", ratio > 1))
    rows.append(Row("max |StreamingMel - librosa| on this stream", parity, "log10", "<= 1e-4", parity <= 1e-4))
    rows.append(Row("max |StreamingMel - compute_mel| (blocks vs whole)", same, "log10", "== 0", same == 0.0))
    import librosa

    extra = {
        "notes": notes,
        "loadavg_1min_at_start": load,
        "librosa": librosa.__version__,
        "essentia": essentia_version,
    }
    return rows, extra


def _librosa_log_mel(signal: np.ndarray) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(
        y=signal, sr=CFG.sample_rate, n_fft=CFG.n_fft, hop_length=CFG.hop_length, n_mels=CFG.n_mels, center=False
    )
    return np.log10(1.0 + CFG.log_scale * mel.T.astype(np.float64))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"output JSON (default {DEFAULT_JSON})")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of audio to stream (default 60)")
    args = parser.parse_args(argv)
    if not 2.0 <= args.seconds <= 3600.0:
        parser.error("--seconds must be between 2 and 3600")
    rows, extra = run(args.seconds)
    title = "mel front end per 100 ms block, musicnn settings (16 kHz, n_fft 512, hop 256, 96 mels, log10p)"
    report(title, rows, args.json, extra)
    for note in extra["notes"]:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
