"""Private numba kernels of the mel front end (public API: :mod:`streamgenre.features`).

Data layout
    Everything a kernel needs lives in one caller-owned float64 workspace ``ws``, so a
    ``process()`` call passes only three arrays through numba's dispatcher (each array argument
    costs ~0.13 µs to unbox). Integer tables share its memory through ``ws.view(np.int64)``.
    Words ``0 .. HEADER`` hold the integer header (``H_*``), section offsets (``O_*``) and float
    parameters (``F_*``); then come the sections: window, FFT twiddles, real-FFT twiddles,
    bit-reversal table, CSR mel weights (indptr, indices, weights), the sample buffer (stream
    samples from the next frame start, converted to float64) and scratch.

Vectorisation
    ``LANES`` frames are transformed together and every operation works on a lane vector (one
    value per frame), so all FFT stages vectorise. numba leaves SLP vectorisation off, hence the
    small explicit SIMD layer below: lane vectors are ``UniTuple(float64, LANES)`` values whose
    arithmetic intrinsics emit LLVM ``<LANES x double>`` instructions (folded into plain vector
    code by LLVM; portable to any target LLVM supports).

Transforms
    Power-of-two ``n_fft >= 8``: radix-2² DIT complex FFT of ``n_fft / 2`` points on the
    even/odd-packed frame, then the real-input unpacking step. Other sizes: exact direct DFT,
    O(n_fft²) per frame. All arithmetic is float64; results are cast to float32 on store.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

LANES = 4
"""Frames transformed together (two AVX2 registers of float64 per lane vector)."""

# Integer header slots.
H_NFFT, H_HOP, H_NMELS, H_NBINS, H_HALF, H_MODE, H_LOG, H_POWER, H_CAP = range(9)
# Section offsets (header slots holding word offsets into ws).
O_WINDOW, O_TWIDDLE, O_POST, O_REV, O_INDPTR, O_INDICES, O_WEIGHTS, O_BUF, O_RE, O_IM, O_POW, O_MEL, O_DFT = range(
    9, 22
)
# Float header slots.
F_LOG_SCALE, F_AMIN, F_POWER = 24, 25, 26
HEADER = 32

MODE_FFT, MODE_DFT = 0, 1
LOG_LOG10P, LOG_DB, LOG_NONE = 0, 1, 2
POWER_2, POWER_1, POWER_ANY = 0, 1, 2

_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD  # bit pattern of ~sqrt(0.5)
_INT16_SCALE = 1.0 / 32768.0

# ----------------------------------------------------------------------------- lane vectors
VEC = types.UniTuple(types.float64, LANES)
_F64 = ir.DoubleType()
_I32 = ir.IntType(32)
_VF = ir.VectorType(_F64, LANES)
_VI = ir.VectorType(ir.IntType(64), LANES)


def _splat(value: float) -> ir.Constant:
    return ir.Constant(_VF, [ir.Constant(_F64, value)] * LANES)


def _isplat(value: int) -> ir.Constant:
    return ir.Constant(_VI, [ir.Constant(ir.IntType(64), value)] * LANES)


def _vec(builder, tup):
    v = ir.Constant(_VF, ir.Undefined)
    for i in range(LANES):
        v = builder.insert_element(v, builder.extract_value(tup, i), ir.Constant(_I32, i))
    return v


def _tup(context, builder, vec):
    t = ir.Constant(context.get_value_type(VEC), ir.Undefined)
    for i in range(LANES):
        t = builder.insert_value(t, builder.extract_element(vec, ir.Constant(_I32, i)), i)
    return t


def _vector_intrinsic(builder, name, args):
    fnty = ir.FunctionType(_VF, [_VF] * len(args))
    fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.{name}.v{LANES}f64")
    return builder.call(fn, args)


def _fmuladd(builder, a, b, c):
    return _vector_intrinsic(builder, "fmuladd", [a, b, c])


def _is_f64_array(arr) -> bool:
    return isinstance(arr, types.Array) and arr.dtype == types.float64 and arr.ndim == 1


def _element_ptr(context, builder, arrty, arr, idx, idxty):
    ary = context.make_array(arrty)(context, builder, arr)
    return builder.gep(ary.data, [context.cast(builder, idx, idxty, types.intp)])


def _binary(emit):
    @intrinsic
    def op(typingctx, a, b):
        if a != VEC or b != VEC:
            return None

        def codegen(context, builder, sig, args):
            return _tup(context, builder, emit(builder, _vec(builder, args[0]), _vec(builder, args[1])))

        return VEC(VEC, VEC), codegen

    return op


vadd = _binary(lambda b, x, y: b.fadd(x, y))
vsub = _binary(lambda b, x, y: b.fsub(x, y))
vmul = _binary(lambda b, x, y: b.fmul(x, y))


@intrinsic
def vfma(typingctx, a, b, c):
    """``a * b + c`` (fused where the CPU has FMA)."""
    if a != VEC or b != VEC or c != VEC:
        return None

    def codegen(context, builder, sig, args):
        return _tup(context, builder, _fmuladd(builder, *(_vec(builder, v) for v in args)))

    return VEC(VEC, VEC, VEC), codegen


@intrinsic
def vsplat(typingctx, s):
    """Lane vector with every lane equal to the scalar ``s``."""
    if not isinstance(s, types.Float):
        return None

    def codegen(context, builder, sig, args):
        v = context.cast(builder, args[0], sig.args[0], types.float64)
        return _tup(context, builder, _splat_value(builder, v))

    return VEC(s), codegen


def _splat_value(builder, v):
    vec = builder.insert_element(ir.Constant(_VF, ir.Undefined), v, ir.Constant(_I32, 0))
    return builder.shuffle_vector(vec, ir.Constant(_VF, ir.Undefined), ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


@intrinsic
def vld(typingctx, arr, idx):
    """Load ``arr[idx : idx + LANES]`` (float64, contiguous)."""
    if not (_is_f64_array(arr) and isinstance(idx, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        return _tup(context, builder, builder.load(builder.bitcast(ptr, _VF.as_pointer()), align=8))

    return VEC(arr, idx), codegen


@intrinsic
def vst(typingctx, arr, idx, v):
    """Store lane vector ``v`` to ``arr[idx : idx + LANES]``."""
    if not (_is_f64_array(arr) and isinstance(idx, types.Integer) and v == VEC):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        builder.store(_vec(builder, args[2]), builder.bitcast(ptr, _VF.as_pointer()), align=8)
        return context.get_dummy_value()

    return types.none(arr, idx, v), codegen


@intrinsic
def vgather(typingctx, arr, start, stride):
    """Lane ``l`` = ``arr[start + l * stride]``: the same sample of LANES consecutive frames."""
    if not (_is_f64_array(arr) and isinstance(start, types.Integer) and isinstance(stride, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        i = context.cast(builder, args[1], sig.args[1], types.intp)
        step = context.cast(builder, args[2], sig.args[2], types.intp)
        v = ir.Constant(_VF, ir.Undefined)
        for lane in range(LANES):
            v = builder.insert_element(v, builder.load(builder.gep(ary.data, [i]), align=8), ir.Constant(_I32, lane))
            i = builder.add(i, step)
        return _tup(context, builder, v)

    return VEC(arr, start, stride), codegen


@intrinsic
def vsqrt(typingctx, v):
    """Lane-wise square root."""
    if v != VEC:
        return None

    def codegen(context, builder, sig, args):
        return _tup(context, builder, _vector_intrinsic(builder, "sqrt", [_vec(builder, args[0])]))

    return VEC(VEC), codegen


@intrinsic
def vfloor(typingctx, v, s):
    """``max(s, v)`` lane-wise, NaN lanes kept (as ``np.maximum(s, v)``)."""
    if v != VEC or s != types.float64:
        return None

    def codegen(context, builder, sig, args):
        x = _vec(builder, args[0])
        lo = _splat_value(builder, args[1])
        return _tup(context, builder, builder.select(builder.fcmp_ordered("<", x, lo), lo, x))

    return VEC(VEC, types.float64), codegen


@intrinsic
def vlog10(typingctx, v):
    """log10 of positive normal lanes (+Inf/NaN lanes returned as is), |rel. error| < 1e-13.

    Exponent split by integer arithmetic on the bits, then an atanh series for the mantissa
    in [sqrt(.5), sqrt(2)): branch-free, so it vectorises (numba calls libm per element).
    """
    if v != VEC:
        return None

    def codegen(context, builder, sig, args):
        x = _vec(builder, args[0])
        bits = builder.bitcast(x, _VI)
        k = builder.ashr(builder.sub(bits, _isplat(_SQRT_HALF_BITS)), _isplat(52))
        m = builder.bitcast(builder.sub(bits, builder.shl(k, _isplat(52))), _VF)  # x / 2**k
        f = builder.fsub(m, _splat(1.0))
        s = builder.fdiv(f, builder.fadd(f, _splat(2.0)))
        z = builder.fmul(s, s)
        poly = _splat(1.0 / 15.0)
        for odd in (13, 11, 9, 7, 5, 3, 1):
            poly = _fmuladd(builder, poly, z, _splat(1.0 / odd))
        kf = builder.sitofp(builder.trunc(k, ir.VectorType(_I32, LANES)), _VF)
        ln = _fmuladd(builder, kf, _splat(np.log(2.0)), builder.fmul(builder.fadd(s, s), poly))
        res = builder.fmul(ln, _splat(1.0 / np.log(10.0)))
        finite = builder.fcmp_ordered("<", x, _splat(np.inf))
        return _tup(context, builder, builder.select(finite, res, x))

    return VEC(VEC), codegen


# ----------------------------------------------------------------------------- input helpers
def _sample_scale(x):
    """Factor mapping stored samples to float audio (Python twin of the numba overload)."""
    return _INT16_SCALE if x.dtype == np.int16 else 1.0


@overload(_sample_scale)
def _sample_scale_impl(x):
    scale = _INT16_SCALE if x.dtype == types.int16 else 1.0

    def impl(x):
        return scale

    return impl


@njit(cache=True)
def _count_nonfinite(x):
    """Number of NaN/Inf entries (0 for integer input)."""
    bad = 0
    for i in range(x.shape[0]):
        d = x[i] - x[i]  # NaN exactly for NaN and +-Inf
        bad += d != d
    return bad


# ----------------------------------------------------------------------------- transforms
@njit(cache=True)
def _load_fft(buf, hop, window, rev, re, im):
    """Window LANES frames (``buf[l*hop:]``) into bit-reversed order and run the first two
    DIT stages (a radix-4 pass whose twiddles are 1 and -i) on the way."""
    half = rev.shape[0]
    for g in range(0, half, 4):
        n0 = 2 * rev[g]
        n1 = 2 * rev[g + 1]
        n2 = 2 * rev[g + 2]
        n3 = 2 * rev[g + 3]
        a0r = vmul(vgather(buf, n0, hop), vsplat(window[n0]))
        a0i = vmul(vgather(buf, n0 + 1, hop), vsplat(window[n0 + 1]))
        a1r = vmul(vgather(buf, n1, hop), vsplat(window[n1]))
        a1i = vmul(vgather(buf, n1 + 1, hop), vsplat(window[n1 + 1]))
        a2r = vmul(vgather(buf, n2, hop), vsplat(window[n2]))
        a2i = vmul(vgather(buf, n2 + 1, hop), vsplat(window[n2 + 1]))
        a3r = vmul(vgather(buf, n3, hop), vsplat(window[n3]))
        a3i = vmul(vgather(buf, n3 + 1, hop), vsplat(window[n3 + 1]))
        b0r = vadd(a0r, a1r)
        b0i = vadd(a0i, a1i)
        b1r = vsub(a0r, a1r)
        b1i = vsub(a0i, a1i)
        b2r = vadd(a2r, a3r)
        b2i = vadd(a2i, a3i)
        b3r = vsub(a2r, a3r)
        b3i = vsub(a2i, a3i)
        p = g * LANES
        vst(re, p, vadd(b0r, b2r))
        vst(im, p, vadd(b0i, b2i))
        vst(re, p + 2 * LANES, vsub(b0r, b2r))
        vst(im, p + 2 * LANES, vsub(b0i, b2i))
        vst(re, p + LANES, vadd(b1r, b3i))  # b1 + (-i) b3
        vst(im, p + LANES, vsub(b1i, b3r))
        vst(re, p + 3 * LANES, vsub(b1r, b3i))
        vst(im, p + 3 * LANES, vadd(b1i, b3r))


@njit(cache=True)
def _fft_passes(re, im, tw_re, tw_im, half):
    """Remaining DIT stages (from half-size 4 on) of the complex FFT of ``half`` points."""
    h = 4
    while 4 * h <= half:  # radix-2² pass: stages h and 2h
        for g in range(0, half, 4 * h):
            for j in range(h):
                w1r = vsplat(tw_re[h + j])
                w1i = vsplat(tw_im[h + j])
                w2r = vsplat(tw_re[2 * h + j])
                w2i = vsplat(tw_im[2 * h + j])
                i0 = (g + j) * LANES
                i1 = i0 + h * LANES
                i2 = i1 + h * LANES
                i3 = i2 + h * LANES
                a0r = vld(re, i0)
                a0i = vld(im, i0)
                a1r = vld(re, i1)
                a1i = vld(im, i1)
                a2r = vld(re, i2)
                a2i = vld(im, i2)
                a3r = vld(re, i3)
                a3i = vld(im, i3)
                t1r = vsub(vmul(w1r, a1r), vmul(w1i, a1i))
                t1i = vfma(w1r, a1i, vmul(w1i, a1r))
                t3r = vsub(vmul(w1r, a3r), vmul(w1i, a3i))
                t3i = vfma(w1r, a3i, vmul(w1i, a3r))
                b0r = vadd(a0r, t1r)
                b0i = vadd(a0i, t1i)
                b1r = vsub(a0r, t1r)
                b1i = vsub(a0i, t1i)
                b2r = vadd(a2r, t3r)
                b2i = vadd(a2i, t3i)
                b3r = vsub(a2r, t3r)
                b3i = vsub(a2i, t3i)
                u2r = vsub(vmul(w2r, b2r), vmul(w2i, b2i))
                u2i = vfma(w2r, b2i, vmul(w2i, b2r))
                u3r = vsub(vmul(w2r, b3r), vmul(w2i, b3i))
                u3i = vfma(w2r, b3i, vmul(w2i, b3r))
                vst(re, i0, vadd(b0r, u2r))
                vst(im, i0, vadd(b0i, u2i))
                vst(re, i2, vsub(b0r, u2r))
                vst(im, i2, vsub(b0i, u2i))
                vst(re, i1, vadd(b1r, u3i))  # b1 + (-i) u3
                vst(im, i1, vsub(b1i, u3r))
                vst(re, i3, vsub(b1r, u3i))
                vst(im, i3, vadd(b1i, u3r))
        h *= 4
    if 2 * h <= half:  # one radix-2 stage left when log2(half) is odd
        for g in range(0, half, 2 * h):
            for j in range(h):
                wr = vsplat(tw_re[h + j])
                wi = vsplat(tw_im[h + j])
                i0 = (g + j) * LANES
                i1 = i0 + h * LANES
                a1r = vld(re, i1)
                a1i = vld(im, i1)
                tr = vsub(vmul(wr, a1r), vmul(wi, a1i))
                ti = vfma(wr, a1i, vmul(wi, a1r))
                a0r = vld(re, i0)
                a0i = vld(im, i0)
                vst(re, i0, vadd(a0r, tr))
                vst(im, i0, vadd(a0i, ti))
                vst(re, i1, vsub(a0r, tr))
                vst(im, i1, vsub(a0i, ti))


@njit(cache=True)
def _rfft_power(re, im, post_c, post_s, half, pw):
    """|X[k]|², k = 0..half, of the real frames whose even/odd-packed FFT is in re/im."""
    zr = vld(re, 0)
    zi = vld(im, 0)
    s0 = vadd(zr, zi)
    d0 = vsub(zr, zi)
    vst(pw, 0, vmul(s0, s0))
    vst(pw, half * LANES, vmul(d0, d0))
    hv = vsplat(0.5)
    for k in range(1, half // 2 + 1):
        c = vsplat(post_c[k])
        s = vsplat(post_s[k])
        ik = k * LANES
        imk = (half - k) * LANES
        ar = vld(re, ik)
        ai = vld(im, ik)
        br = vld(re, imk)
        bi = vld(im, imk)
        er = vmul(hv, vadd(ar, br))  # even part
        ei = vmul(hv, vsub(ai, bi))
        odr = vmul(hv, vadd(ai, bi))  # odd part
        odi = vmul(hv, vsub(br, ar))
        tr = vfma(c, odr, vmul(s, odi))  # exp(-2πik/n_fft) * odd part
        ti = vsub(vmul(c, odi), vmul(s, odr))
        pr = vadd(er, tr)
        pi = vadd(ei, ti)
        mr = vsub(er, tr)
        mi = vsub(ei, ti)
        vst(pw, ik, vfma(pr, pr, vmul(pi, pi)))
        vst(pw, imk, vfma(mr, mr, vmul(mi, mi)))


@njit(cache=True)
def _dft_power(buf, hop, window, cos_tab, sin_tab, n_bins, frames, pw):
    """|X[k]|² by direct O(n_fft²) DFT for any n_fft (table index (k*n) mod n_fft)."""
    n_fft = window.shape[0]
    for n in range(n_fft):
        vst(frames, n * LANES, vmul(vgather(buf, n, hop), vsplat(window[n])))
    for k in range(n_bins):
        acc_r = vsplat(0.0)
        acc_i = vsplat(0.0)
        idx = 0
        for n in range(n_fft):
            v = vld(frames, n * LANES)
            acc_r = vfma(vsplat(cos_tab[idx]), v, acc_r)
            acc_i = vfma(vsplat(-sin_tab[idx]), v, acc_i)
            idx += k
            if idx >= n_fft:
                idx -= n_fft
        vst(pw, k * LANES, vfma(acc_r, acc_r, vmul(acc_i, acc_i)))


@njit(cache=True)
def _apply_power(pw, n_bins, power_kind, power):
    """Turn |X|² into |X|**power in place (no-op for power 2)."""
    if power_kind == POWER_1:
        for k in range(n_bins):
            vst(pw, k * LANES, vsqrt(vld(pw, k * LANES)))
    elif power_kind == POWER_ANY:
        e = 0.5 * power
        for i in range(n_bins * LANES):
            pw[i] = pw[i] ** e


@njit(cache=True)
def _mel_log(pw, indptr, indices, weights, log_kind, log_scale, amin, mel):
    """Sparse mel projection and log compression of all lanes into ``mel`` (n_mels, LANES)."""
    scale = vsplat(log_scale)
    one = vsplat(1.0)
    ten = vsplat(10.0)
    for m in range(indptr.shape[0] - 1):
        acc = vsplat(0.0)
        for idx in range(indptr[m], indptr[m + 1]):
            acc = vfma(vsplat(weights[idx]), vld(pw, indices[idx] * LANES), acc)
        if log_kind == LOG_LOG10P:
            acc = vlog10(vfma(scale, acc, one))
        elif log_kind == LOG_DB:
            acc = vmul(ten, vlog10(vfloor(acc, amin)))
        vst(mel, m * LANES, acc)


@njit(cache=True)
def _store_rows(mel, out, row0, n_rows):
    n_mels = out.shape[1]
    for ln in range(n_rows):
        for m in range(n_mels):
            out[row0 + ln, m] = mel[m * LANES + ln]


# ----------------------------------------------------------------------------- block driver
@njit(cache=True)
def process_block(x, x_start, pending, out, ws):
    """Append ``x[x_start:]`` to the ``pending`` buffered samples and emit ``out.shape[0]`` frames.

    The sample buffer holds the stream from the next frame start; frame ``r`` of this call
    covers buffered positions ``[r*hop, r*hop + n_fft)``. The caller tracks ``pending``
    (see ``StreamingMel._emit``). Returns 0, or 1 without touching any state when ``x`` holds
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
    cap = iv[H_CAP]
    window = ws[iv[O_WINDOW] : iv[O_WINDOW] + n_fft]
    tw_re = ws[iv[O_TWIDDLE] : iv[O_TWIDDLE] + half]
    tw_im = ws[iv[O_TWIDDLE] + half : iv[O_TWIDDLE] + 2 * half]
    n_post = half // 2 + 1
    post_c = ws[iv[O_POST] : iv[O_POST] + n_post]
    post_s = ws[iv[O_POST] + n_post : iv[O_POST] + 2 * n_post]
    rev = iv[iv[O_REV] : iv[O_REV] + half]
    indptr = iv[iv[O_INDPTR] : iv[O_INDPTR] + n_mels + 1]
    indices = iv[iv[O_INDICES] : iv[O_INDICES] + indptr[n_mels]]
    weights = ws[iv[O_WEIGHTS] : iv[O_WEIGHTS] + indptr[n_mels]]
    buf = ws[iv[O_BUF] : iv[O_BUF] + cap]
    n_work = max(half, n_fft) * LANES
    re = ws[iv[O_RE] : iv[O_RE] + n_work]
    im = ws[iv[O_IM] : iv[O_IM] + n_work]
    pw = ws[iv[O_POW] : iv[O_POW] + n_bins * LANES]
    mel = ws[iv[O_MEL] : iv[O_MEL] + n_mels * LANES]
    cos_tab = ws[iv[O_DFT] : iv[O_DFT] + n_fft]  # empty (clipped slices) in FFT mode
    sin_tab = ws[iv[O_DFT] + n_fft : iv[O_DFT] + 2 * n_fft]
    scale = _sample_scale(x)

    n = x.shape[0]
    pos = x_start
    fill = pending
    row = 0
    n_out = out.shape[0]
    while True:
        take = min(cap - fill, n - pos)
        for i in range(take):
            buf[fill + i] = x[pos + i] * scale
        fill += take
        pos += take
        if fill < n_fft or row >= n_out:
            break
        n_rows = min((fill - n_fft) // hop + 1, LANES, n_out - row)
        if iv[H_MODE] == MODE_FFT:
            _load_fft(buf, hop, window, rev, re, im)
            _fft_passes(re, im, tw_re, tw_im, half)
            _rfft_power(re, im, post_c, post_s, half, pw)
        else:
            _dft_power(buf, hop, window, cos_tab, sin_tab, n_bins, re, pw)
        _apply_power(pw, n_bins, iv[H_POWER], ws[F_POWER])
        _mel_log(pw, indptr, indices, weights, iv[H_LOG], ws[F_LOG_SCALE], ws[F_AMIN], mel)
        _store_rows(mel, out, row, n_rows)
        row += n_rows
        used = n_rows * hop
        if used <= fill:
            for i in range(fill - used):
                buf[i] = buf[used + i]
            fill -= used
        else:  # hop > n_fft: skip the gap before the next frame (the rest of it in later calls)
            pos += min(used - fill, n - pos)
            fill = 0
    return 0


_SIGNATURES = tuple(
    types.int64(types.Array(dt, 1, "C"), types.int64, types.int64, types.float32[:, ::1], types.float64[::1])
    for dt in (types.float32, types.float64, types.int16)
)


@njit(cache=True)
def log10_lanes(x, out):
    """``out = log10(x)`` through :func:`vlog10` (len multiple of LANES; for tests)."""
    for i in range(0, x.shape[0] - LANES + 1, LANES):
        vst(out, i, vlog10(vld(x, i)))


def compile_kernels() -> None:
    """Compile (or load from numba's disk cache) the supported specialisations, then freeze.

    Afterwards the dispatcher never compiles: an unsupported argument type raises ``TypeError``
    at once, which the public wrappers turn into a conversion or a clear error.
    """
    if not process_block._can_compile:
        return
    for sig in _SIGNATURES:
        process_block.compile(sig)
    log10_lanes.compile(types.void(types.float64[::1], types.float64[::1]))
    process_block.disable_compile()
    log10_lanes.disable_compile()
