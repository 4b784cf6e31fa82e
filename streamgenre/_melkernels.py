"""Private numba kernels of the mel front end (public API: :mod:`streamgenre.features`).

Everything a kernel needs lives in one caller-owned ``float64`` workspace ``ws`` so that a
``process()`` call passes only three arrays through numba's dispatcher (each array argument
costs about 0.13 µs of unboxing). Integer tables share the same memory through the
``ws.view(np.int64)`` view. Layout (word offsets):

* ``0 .. HEADER``: integer header (``H_*`` slots, ``O_*`` offsets of the sections) and float
  parameters (``F_*`` slots).
* sections: window, FFT twiddles, real-FFT post twiddles, bit-reversal table, CSR mel weights
  (indptr, indices, weights), history of pending samples, one assembly frame, and scratch
  (transform buffers, power spectrum, accumulators).

Frames are transformed ``LANES`` at a time and every inner loop runs across those frames, so
all butterflies, the mel products and the logarithm vectorise (AVX2: 4 doubles) regardless of
the FFT stage. Power-of-two ``n_fft`` use a radix-2² real FFT (complex FFT of ``n_fft / 2``
points plus the real-input unpacking step); other sizes use an exact O(n_fft²) DFT.
All arithmetic is float64; results are cast to float32 on store.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

LANES = 4
"""Frames transformed together (one AVX2 vector of float64 per butterfly)."""

_FASTMATH = {"contract"}  # FMA contraction only: NaN/Inf semantics stay IEEE

# Integer header slots.
H_NFFT, H_HOP, H_NMELS, H_NBINS, H_HALF, H_MODE, H_LOG, H_POWER = range(8)
# Section offsets (integer header slots holding word offsets into ws).
(
    O_WINDOW,
    O_TWIDDLE,
    O_POST,
    O_REV,
    O_INDPTR,
    O_INDICES,
    O_WEIGHTS,
    O_HIST,
    O_FRAME,
    O_RE,
    O_IM,
    O_POW,
    O_ACC,
    O_DFT,
) = range(8, 22)
# Float header slots.
F_LOG_SCALE, F_AMIN, F_POWER = 24, 25, 26
HEADER = 32

MODE_FFT, MODE_DFT = 0, 1
LOG_LOG10P, LOG_DB, LOG_NONE = 0, 1, 2
POWER_2, POWER_1, POWER_ANY = 0, 1, 2

_INV_LN10 = 0.43429448190325176
_LN2 = 0.6931471805599453
_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD  # bit pattern of ~sqrt(0.5)
_INT16_SCALE = 1.0 / 32768.0


# ----------------------------------------------------------------------------- scalar helpers
@intrinsic
def _f64_bits(typingctx, x):
    """Reinterpret a float64 as int64 (register bitcast, vectorises)."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _bits_f64(typingctx, x):
    """Reinterpret an int64 as float64."""
    if x != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


def _sample_scale(x):
    """Factor mapping stored samples to float audio (pure-Python twin of the numba overload)."""
    return _INT16_SCALE if x.dtype == np.int16 else 1.0


@overload(_sample_scale)
def _sample_scale_impl(x):
    scale = _INT16_SCALE if x.dtype == types.int16 else 1.0

    def impl(x):
        return scale

    return impl


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def log10_pos(x):
    """log10 of a positive normal float64 (or +Inf/NaN, returned as is); |rel err| < 1e-13.

    Branch-free (exponent split by bit arithmetic, atanh series on [sqrt(.5), sqrt(2))) so
    that loops calling it vectorise, unlike libm's scalar ``log10``.
    """
    b = _f64_bits(x)
    k = (b - _SQRT_HALF_BITS) >> 52
    m = _bits_f64(b - (k << 52))  # x / 2**k, in [sqrt(.5), sqrt(2))
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    p = 1.0 / 15.0
    p = p * z + 1.0 / 13.0
    p = p * z + 1.0 / 11.0
    p = p * z + 1.0 / 9.0
    p = p * z + 1.0 / 7.0
    p = p * z + 1.0 / 5.0
    p = p * z + 1.0 / 3.0
    p = p * z + 1.0
    ln = np.float64(np.int32(k)) * _LN2 + 2.0 * s * p
    return ln * _INV_LN10 if x < np.inf else x


# ----------------------------------------------------------------------------- input check
@njit(cache=True, fastmath=_FASTMATH)
def _count_nonfinite(x):
    """Number of NaN/Inf entries (0 for integer input); vectorised integer reduction."""
    bad = 0
    for i in range(x.shape[0]):
        d = x[i] - x[i]  # NaN exactly for NaN and +-Inf
        bad += d != d
    return bad


# ----------------------------------------------------------------------------- frame loading
@njit(cache=True, fastmath=_FASTMATH)
def _load_fft(src, off, scale, window, rev, re, im, lane):
    """Window one frame ``src[off:off+n_fft]`` into bit-reversed split-complex lane ``lane``."""
    for n in range(rev.shape[0]):
        p = rev[n] * LANES + lane
        re[p] = (src[off + 2 * n] * scale) * window[2 * n]
        im[p] = (src[off + 2 * n + 1] * scale) * window[2 * n + 1]


@njit(cache=True, fastmath=_FASTMATH)
def _load_dft(src, off, scale, window, frame_mat, lane):
    """Window one frame into column ``lane`` of the (n_fft, LANES) DFT input."""
    for n in range(window.shape[0]):
        frame_mat[n * LANES + lane] = (src[off + n] * scale) * window[n]


# ----------------------------------------------------------------------------- transforms
@njit(cache=True, fastmath=_FASTMATH)
def _fft_lanes(re, im, tw_re, tw_im, half):
    """In-place complex FFT of ``half`` points (power of two) on bit-reversed lanes (DIT, radix-2²)."""
    h = 1
    if half >= 4:  # first radix-2² pass: twiddles are 1 and -i
        for g in range(0, half, 4):
            i0 = g * LANES
            for ln in range(LANES):
                a0r = re[i0 + ln]
                a0i = im[i0 + ln]
                a1r = re[i0 + LANES + ln]
                a1i = im[i0 + LANES + ln]
                a2r = re[i0 + 2 * LANES + ln]
                a2i = im[i0 + 2 * LANES + ln]
                a3r = re[i0 + 3 * LANES + ln]
                a3i = im[i0 + 3 * LANES + ln]
                b0r = a0r + a1r
                b0i = a0i + a1i
                b1r = a0r - a1r
                b1i = a0i - a1i
                b2r = a2r + a3r
                b2i = a2i + a3i
                b3r = a2r - a3r
                b3i = a2i - a3i
                re[i0 + ln] = b0r + b2r
                im[i0 + ln] = b0i + b2i
                re[i0 + 2 * LANES + ln] = b0r - b2r
                im[i0 + 2 * LANES + ln] = b0i - b2i
                re[i0 + LANES + ln] = b1r + b3i  # b1 + (-i) b3
                im[i0 + LANES + ln] = b1i - b3r
                re[i0 + 3 * LANES + ln] = b1r - b3i
                im[i0 + 3 * LANES + ln] = b1i + b3r
        h = 4
    while 4 * h <= half:  # radix-2² pass: stages h and 2h
        for g in range(0, half, 4 * h):
            for j in range(h):
                w1r = tw_re[h + j]
                w1i = tw_im[h + j]
                w2r = tw_re[2 * h + j]
                w2i = tw_im[2 * h + j]
                i0 = (g + j) * LANES
                i1 = i0 + h * LANES
                i2 = i1 + h * LANES
                i3 = i2 + h * LANES
                for ln in range(LANES):
                    a0r = re[i0 + ln]
                    a0i = im[i0 + ln]
                    a1r = re[i1 + ln]
                    a1i = im[i1 + ln]
                    a2r = re[i2 + ln]
                    a2i = im[i2 + ln]
                    a3r = re[i3 + ln]
                    a3i = im[i3 + ln]
                    t1r = w1r * a1r - w1i * a1i
                    t1i = w1r * a1i + w1i * a1r
                    t3r = w1r * a3r - w1i * a3i
                    t3i = w1r * a3i + w1i * a3r
                    b0r = a0r + t1r
                    b0i = a0i + t1i
                    b1r = a0r - t1r
                    b1i = a0i - t1i
                    b2r = a2r + t3r
                    b2i = a2i + t3i
                    b3r = a2r - t3r
                    b3i = a2i - t3i
                    u2r = w2r * b2r - w2i * b2i
                    u2i = w2r * b2i + w2i * b2r
                    u3r = w2r * b3r - w2i * b3i
                    u3i = w2r * b3i + w2i * b3r
                    re[i0 + ln] = b0r + u2r
                    im[i0 + ln] = b0i + u2i
                    re[i2 + ln] = b0r - u2r
                    im[i2 + ln] = b0i - u2i
                    re[i1 + ln] = b1r + u3i  # b1 + (-i) u3
                    im[i1 + ln] = b1i - u3r
                    re[i3 + ln] = b1r - u3i
                    im[i3 + ln] = b1i + u3r
        h *= 4
    if 2 * h <= half:  # one radix-2 stage left when log2(half) is odd
        for g in range(0, half, 2 * h):
            for j in range(h):
                wr = tw_re[h + j]
                wi = tw_im[h + j]
                i0 = (g + j) * LANES
                i1 = i0 + h * LANES
                for ln in range(LANES):
                    a1r = re[i1 + ln]
                    a1i = im[i1 + ln]
                    tr = wr * a1r - wi * a1i
                    ti = wr * a1i + wi * a1r
                    a0r = re[i0 + ln]
                    a0i = im[i0 + ln]
                    re[i0 + ln] = a0r + tr
                    im[i0 + ln] = a0i + ti
                    re[i1 + ln] = a0r - tr
                    im[i1 + ln] = a0i - ti


@njit(cache=True, fastmath=_FASTMATH)
def _rfft_power(re, im, post_c, post_s, half, pw):
    """|X[k]|² (k = 0..half) of the real frames whose packed half-size FFT is in re/im."""
    for ln in range(LANES):
        zr = re[ln]
        zi = im[ln]
        pw[ln] = (zr + zi) * (zr + zi)
        pw[half * LANES + ln] = (zr - zi) * (zr - zi)
    for k in range(1, half // 2 + 1):
        c = post_c[k]
        s = post_s[k]
        ik = k * LANES
        im_ = (half - k) * LANES
        for ln in range(LANES):
            ar = re[ik + ln]
            ai = im[ik + ln]
            br = re[im_ + ln]
            bi = im[im_ + ln]
            er = 0.5 * (ar + br)
            ei = 0.5 * (ai - bi)
            odr = 0.5 * (ai + bi)
            odi = 0.5 * (br - ar)
            tr = c * odr + s * odi  # exp(-2πik/n_fft) * odd part
            ti = c * odi - s * odr
            pw[ik + ln] = (er + tr) * (er + tr) + (ei + ti) * (ei + ti)
            pw[im_ + ln] = (er - tr) * (er - tr) + (ei - ti) * (ei - ti)


@njit(cache=True, fastmath=_FASTMATH)
def _dft_power(frame_mat, cos_tab, sin_tab, n_bins, pw, acc):
    """|X[k]|² by direct O(n_fft²) DFT (any n_fft), using table index (k*n) mod n_fft."""
    n_fft = cos_tab.shape[0]
    for k in range(n_bins):
        for ln in range(2 * LANES):
            acc[ln] = 0.0
        idx = 0
        for n in range(n_fft):
            c = cos_tab[idx]
            s = sin_tab[idx]
            for ln in range(LANES):
                v = frame_mat[n * LANES + ln]
                acc[ln] += c * v
                acc[LANES + ln] -= s * v
            idx += k
            if idx >= n_fft:
                idx -= n_fft
        for ln in range(LANES):
            pw[k * LANES + ln] = acc[ln] * acc[ln] + acc[LANES + ln] * acc[LANES + ln]


@njit(cache=True, fastmath=_FASTMATH)
def _apply_power(pw, n_values, power_kind, power):
    """Turn |X|² into |X|**power in place (no-op for power 2)."""
    if power_kind == POWER_1:
        for i in range(n_values):
            pw[i] = np.sqrt(pw[i])
    elif power_kind == POWER_ANY:
        e = 0.5 * power
        for i in range(n_values):
            pw[i] = pw[i] ** e


@njit(cache=True, fastmath=_FASTMATH)
def _mel_log_store(pw, indptr, indices, weights, log_kind, log_scale, amin, acc, out, row0, n_rows):
    """Sparse mel projection, log compression and float32 store of ``n_rows`` lanes."""
    n_mels = indptr.shape[0] - 1
    for m in range(n_mels):
        for ln in range(LANES):
            acc[ln] = 0.0
        for idx in range(indptr[m], indptr[m + 1]):
            w = weights[idx]
            base = indices[idx] * LANES
            for ln in range(LANES):
                acc[ln] += w * pw[base + ln]
        if log_kind == LOG_LOG10P:
            for ln in range(LANES):
                acc[ln] = log10_pos(1.0 + log_scale * acc[ln])
        elif log_kind == LOG_DB:
            for ln in range(LANES):
                acc[ln] = 10.0 * log10_pos(max(amin, acc[ln]))
        for ln in range(n_rows):
            out[row0 + ln, m] = acc[ln]


# ----------------------------------------------------------------------------- block driver
@njit(cache=True, fastmath=_FASTMATH)
def process_block(x, x_start, pending, out, ws):
    """Emit ``out.shape[0]`` frames of history ``ws[hist][:pending]`` ++ ``x[x_start:]``.

    Frame ``r`` covers positions ``[r*hop, r*hop + n_fft)`` of that concatenation. On return
    the history holds the positions from ``out.shape[0] * hop`` to the end (the caller keeps the
    matching ``pending`` count). Returns 0, or 1 without touching any state when ``x`` holds
    NaN/Inf.
    """
    if _count_nonfinite(x) != 0:
        return 1
    iv = ws.view(np.int64)
    n_fft = iv[H_NFFT]
    hop = iv[H_HOP]
    n_mels = iv[H_NMELS]
    n_bins = iv[H_NBINS]
    half = iv[H_HALF]
    mode = iv[H_MODE]
    log_kind = iv[H_LOG]
    power_kind = iv[H_POWER]
    log_scale = ws[F_LOG_SCALE]
    amin = ws[F_AMIN]
    power = ws[F_POWER]
    window = ws[iv[O_WINDOW] : iv[O_WINDOW] + n_fft]
    tw_re = ws[iv[O_TWIDDLE] : iv[O_TWIDDLE] + half]
    tw_im = ws[iv[O_TWIDDLE] + half : iv[O_TWIDDLE] + 2 * half]
    post_c = ws[iv[O_POST] : iv[O_POST] + half // 2 + 1]
    post_s = ws[iv[O_POST] + half // 2 + 1 : iv[O_POST] + 2 * (half // 2 + 1)]
    rev = iv[iv[O_REV] : iv[O_REV] + half]
    indptr = iv[iv[O_INDPTR] : iv[O_INDPTR] + n_mels + 1]
    nnz = indptr[n_mels]
    indices = iv[iv[O_INDICES] : iv[O_INDICES] + nnz]
    weights = ws[iv[O_WEIGHTS] : iv[O_WEIGHTS] + nnz]
    hist = ws[iv[O_HIST] : iv[O_HIST] + n_fft]
    frame = ws[iv[O_FRAME] : iv[O_FRAME] + n_fft]
    n_work = max(half, n_fft) * LANES
    re = ws[iv[O_RE] : iv[O_RE] + n_work]
    im = ws[iv[O_IM] : iv[O_IM] + n_work]
    pw = ws[iv[O_POW] : iv[O_POW] + n_bins * LANES]
    acc = ws[iv[O_ACC] : iv[O_ACC] + 2 * LANES]
    cos_tab = ws[iv[O_DFT] : iv[O_DFT] + n_fft]
    sin_tab = ws[iv[O_DFT] + n_fft : iv[O_DFT] + 2 * n_fft]
    scale = _sample_scale(x)

    n_new = x.shape[0] - x_start
    total = pending + n_new
    n_frames = out.shape[0]
    for row0 in range(0, n_frames, LANES):
        n_rows = min(LANES, n_frames - row0)
        for ln in range(n_rows):
            start = (row0 + ln) * hop
            if start >= pending:  # frame lies inside the new block
                if mode == MODE_FFT:
                    _load_fft(x, x_start + start - pending, scale, window, rev, re, im, ln)
                else:
                    _load_dft(x, x_start + start - pending, scale, window, re, ln)
            else:  # frame starts in the history: assemble it first
                n_old = pending - start
                for i in range(n_old):
                    frame[i] = hist[start + i]
                for i in range(n_fft - n_old):
                    frame[n_old + i] = x[x_start + i] * scale
                if mode == MODE_FFT:
                    _load_fft(frame, 0, 1.0, window, rev, re, im, ln)
                else:
                    _load_dft(frame, 0, 1.0, window, re, ln)
        if mode == MODE_FFT:
            _fft_lanes(re, im, tw_re, tw_im, half)
            _rfft_power(re, im, post_c, post_s, half, pw)
        else:
            _dft_power(re, cos_tab, sin_tab, n_bins, pw, acc)
        _apply_power(pw, n_bins * LANES, power_kind, power)
        _mel_log_store(pw, indptr, indices, weights, log_kind, log_scale, amin, acc, out, row0, n_rows)

    new_start = n_frames * hop  # keep positions [new_start, total) for the next call
    if new_start < pending:
        n_old = pending - new_start
        for i in range(n_old):
            hist[i] = hist[new_start + i]
        for i in range(n_new):
            hist[n_old + i] = x[x_start + i] * scale
    elif new_start < total:
        skip = new_start - pending
        for i in range(total - new_start):
            hist[i] = x[x_start + skip + i] * scale
    return 0


_SIGNATURES = tuple(
    types.int64(types.Array(dt, 1, "C", readonly=ro), types.int64, types.int64, types.float32[:, ::1], types.float64[::1])
    for dt in (types.float32, types.float64, types.int16)
    for ro in (False, True)
)


def compile_kernels() -> None:
    """Compile (or load from numba's on-disk cache) every supported specialisation, then freeze.

    After this, the dispatcher never compiles again: an unsupported argument type raises
    ``TypeError`` immediately, which the public wrapper turns into a clear error or a conversion.
    """
    if process_block.signatures and not process_block._can_compile:
        return
    for sig in _SIGNATURES:
        process_block.compile(sig)
    log10_array.compile(types.void(types.float64[::1], types.float64[::1]))
    process_block.disable_compile()
    log10_array.disable_compile()


@njit(cache=True, fastmath=_FASTMATH)
def log10_array(x, out):
    """``out[i] = log10_pos(x[i])`` (exposed for tests of the polynomial logarithm)."""
    for i in range(x.shape[0]):
        out[i] = log10_pos(x[i])
