"""Private numba kernels of the mel front end (public API: :mod:`streamgenre.features`).

Workspace
    Everything a kernel needs lives in one caller-owned float64 array ``ws``, so a ``process()``
    call passes few arguments through numba's dispatcher (its ~0.45 µs is a tenth of a call).
    Words ``0 .. HEADER`` hold the integer header (``H_*``), word offsets of the
    sections (``O_*``) and float parameters (``F_*``). Integer sections are read through
    ``ws.view(np.int64)``; float sections hold float64 or, in single precision, float32 values
    read through ``ws.view(np.float32)`` at twice the word offset. Sections: window, FFT
    twiddles, real-FFT twiddles, bit-reversal table, CSR mel weights (indptr, indices, weights),
    the sample buffer (the stream from the next frame start on), and scratch.

Precision
    ``H_PREC`` selects float64 (``PREC_F64``: 4 frames per lane vector) or float32 (``PREC_F32``:
    8 frames per vector, about twice as fast). The caller picks float32 only where its rounding
    stays far below the 1e-4 log-domain tolerance (see ``features._use_float32``).

Vectorisation
    Up to ``CHUNK`` frames are transformed together and every operation works on a lane vector
    (one value per frame), so all FFT stages vectorise. numba turns SLP vectorisation off, hence
    the small SIMD layer below: a ``LaneVector`` numba type lowered to LLVM ``<4 x double>`` or
    ``<8 x float>`` (so it stays in registers, also across loop iterations) and intrinsics
    emitting LLVM vector instructions (portable to any target LLVM supports; one AVX2 register
    per lane vector on x86-64).

Transforms
    Power-of-two ``n_fft >= 8``: radix-2² decimation-in-time FFT of ``n_fft / 2`` complex points
    (even/odd samples packed as re/im) and the real-input unpacking step. Other sizes: exact
    direct DFT, O(n_fft²) per frame.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, models, overload, register_model

CHUNK = 8
"""Frames per chunk: one float32 lane vector, or two float64 ones (their FFTs run one after the
other, which keeps the transform's working set in L1)."""

# Integer header slots.
H_NFFT, H_HOP, H_NMELS, H_NBINS, H_HALF, H_MODE, H_LOG, H_POWER, H_CAP, H_PREC = range(10)
# Section word offsets.
O_WINDOW, O_TWIDDLE, O_POST, O_REV, O_INDPTR, O_INDICES, O_WEIGHTS, O_BUF, O_WORK, O_POW, O_MEL, O_DFT = range(10, 22)
# Float header slots (float64).
F_LOG_SCALE, F_AMIN, F_POWER = 24, 25, 26
HEADER = 32

MODE_FFT, MODE_DFT = 0, 1
LOG_LOG10P, LOG_DB, LOG_NONE = 0, 1, 2
POWER_2, POWER_1, POWER_ANY = 0, 1, 2
PREC_F64, PREC_F32 = 0, 1

# ----------------------------------------------------------------------------- lane vectors
_I32 = ir.IntType(32)
# element type -> (LLVM element, lanes, LLVM int of same width, bits of ~sqrt(0.5), mantissa bits)
_ELEMENTS = {
    types.float64: (ir.DoubleType(), 4, ir.IntType(64), 0x3FE6A09E667F3BCD, 52),
    types.float32: (ir.FloatType(), 8, ir.IntType(32), 0x3F3504F3, 23),
}


class LaneVector(types.Type):
    """numba type of a lane vector: an LLVM ``<lanes x float>`` value (stays in registers,
    also across loop iterations, unlike a tuple)."""

    def __init__(self, dtype):
        self.dtype = dtype
        super().__init__(name=f"LaneVector({dtype}x{_ELEMENTS[dtype][1]})")


@register_model(LaneVector)
class _LaneVectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        lt, n = _ELEMENTS[fe_type.dtype][:2]
        super().__init__(dmm, fe_type, ir.VectorType(lt, n))


VEC64 = LaneVector(types.float64)
VEC32 = LaneVector(types.float32)


def lanes_of(arr):
    """Frames per lane vector for a float array (Python twin of the numba overload)."""
    return 8 if arr.dtype == np.float32 else 4


@overload(lanes_of)
def _lanes_of_impl(arr):
    n = _ELEMENTS[arr.dtype][1]

    def impl(arr):
        return n

    return impl


def _array_elem(arr):
    """Element type of a 1-D float32/float64 array type, else None."""
    if isinstance(arr, types.Array) and arr.ndim == 1 and arr.dtype in _ELEMENTS:
        return arr.dtype
    return None


def _vt(ft):
    return VEC32 if ft == types.float32 else VEC64


def _llvm_vec(ft):
    return ir.VectorType(_ELEMENTS[ft][0], _ELEMENTS[ft][1])


def _const(ft, value):
    lt, n = _ELEMENTS[ft][:2]
    return ir.Constant(ir.VectorType(lt, n), [ir.Constant(lt, value)] * n)


def _iconst(ft, value):
    it, n = _ELEMENTS[ft][2], _ELEMENTS[ft][1]
    return ir.Constant(ir.VectorType(it, n), [ir.Constant(it, value)] * n)


def _splat(builder, value, ft):
    n = _ELEMENTS[ft][1]
    v = builder.insert_element(ir.Constant(_llvm_vec(ft), ir.Undefined), value, ir.Constant(_I32, 0))
    mask = ir.Constant(ir.VectorType(_I32, n), [0] * n)
    return builder.shuffle_vector(v, ir.Constant(_llvm_vec(ft), ir.Undefined), mask)


def _call(builder, name, args, ft):
    """Call the overloaded LLVM intrinsic ``llvm.<name>`` on vectors of ``ft``."""
    vt = _llvm_vec(ft)
    suffix = f"v{_ELEMENTS[ft][1]}f{64 if ft == types.float64 else 32}"
    fnty = ir.FunctionType(vt, [vt] * len(args))
    return builder.call(cgutils.get_or_insert_function(builder.module, fnty, f"llvm.{name}.{suffix}"), args)


def _ptr(context, builder, arrty, arr, idx, idxty):
    ary = context.make_array(arrty)(context, builder, arr)
    return builder.gep(ary.data, [context.cast(builder, idx, idxty, types.intp)])


def _shuffle(builder, a, b, mask):
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(_I32, len(mask)), list(mask)))


def _binary(emit):
    @intrinsic
    def op(typingctx, a, b):
        if not isinstance(a, LaneVector) or b != a:
            return None

        def codegen(context, builder, sig, args):
            return emit(builder, *args)

        return a(a, a), codegen

    return op


vadd = _binary(lambda b, x, y: b.fadd(x, y))
vsub = _binary(lambda b, x, y: b.fsub(x, y))
vmul = _binary(lambda b, x, y: b.fmul(x, y))


@intrinsic
def vfma(typingctx, a, b, c):
    """``a * b + c`` (fused where the CPU has FMA)."""
    if not isinstance(a, LaneVector) or b != a or c != a:
        return None

    def codegen(context, builder, sig, args):
        return _call(builder, "fmuladd", list(args), sig.return_type.dtype)

    return a(a, a, a), codegen


@intrinsic
def vfill(typingctx, arr, value):
    """Lane vector of ``arr``'s element type with every lane equal to ``value``."""
    ft = _array_elem(arr)
    if ft is None or not isinstance(value, (types.Float, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        return _splat(builder, context.cast(builder, args[1], sig.args[1], ft), ft)

    return _vt(ft)(arr, value), codegen


@intrinsic
def vbcast(typingctx, arr, idx):
    """Lane vector filled with ``arr[idx]`` (raw address: no negative-index wraparound code)."""
    ft = _array_elem(arr)
    if ft is None or not isinstance(idx, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        return _splat(builder, builder.load(_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])), ft)

    return _vt(ft)(arr, idx), codegen


@intrinsic
def vld(typingctx, arr, idx):
    """Load ``arr[idx : idx + lanes]``."""
    ft = _array_elem(arr)
    if ft is None or not isinstance(idx, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        ptr = _ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        return builder.load(builder.bitcast(ptr, _llvm_vec(ft).as_pointer()), align=4)

    return _vt(ft)(arr, idx), codegen


@intrinsic
def vst(typingctx, arr, idx, v):
    """Store lane vector ``v`` to ``arr[idx : idx + lanes]``."""
    ft = _array_elem(arr)
    if ft is None or not isinstance(idx, types.Integer) or v != _vt(ft):
        return None

    def codegen(context, builder, sig, args):
        ptr = _ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        builder.store(args[2], builder.bitcast(ptr, _llvm_vec(ft).as_pointer()), align=4)
        return context.get_dummy_value()

    return types.none(arr, idx, v), codegen


@intrinsic
def vgather_pair(typingctx, arr, start, stride):
    """(even, odd): lane ``l`` = ``arr[start + l*stride]`` and ``arr[start + l*stride + 1]``.

    One adjacent pair is loaded per frame; the pairs are concatenated in an order that lets a
    single in-lane shuffle (shufps / unpcklpd on x86) split evens from odds in frame order.
    """
    ft = _array_elem(arr)
    if ft is None or not isinstance(start, types.Integer) or not isinstance(stride, types.Integer):
        return None
    vt = _vt(ft)

    def codegen(context, builder, sig, args):
        lt, n = _ELEMENTS[ft][:2]
        pair = ir.VectorType(lt, 2)
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        i = context.cast(builder, args[1], sig.args[1], types.intp)
        step = context.cast(builder, args[2], sig.args[2], types.intp)
        pairs = []
        for _ in range(n):
            pairs.append(builder.load(builder.bitcast(builder.gep(ary.data, [i]), pair.as_pointer()), align=4))
            i = builder.add(i, step)
        if n == 8:  # a = frames 0,1,4,5 and b = 2,3,6,7 (four pairs each)
            a = _shuffle(
                builder,
                _shuffle(builder, pairs[0], pairs[1], range(4)),
                _shuffle(builder, pairs[4], pairs[5], range(4)),
                range(8),
            )
            b = _shuffle(
                builder,
                _shuffle(builder, pairs[2], pairs[3], range(4)),
                _shuffle(builder, pairs[6], pairs[7], range(4)),
                range(8),
            )
            even = (0, 2, 8, 10, 4, 6, 12, 14)
        else:  # a = frames 0,2 and b = 1,3
            a = _shuffle(builder, pairs[0], pairs[2], range(4))
            b = _shuffle(builder, pairs[1], pairs[3], range(4))
            even = (0, 4, 2, 6)
        lo = _shuffle(builder, a, b, even)
        hi = _shuffle(builder, a, b, [e + 1 for e in even])
        return context.make_tuple(builder, sig.return_type, [lo, hi])

    return types.UniTuple(vt, 2)(arr, start, stride), codegen


@intrinsic
def vgather(typingctx, arr, start, stride):
    """Lane ``l`` = ``arr[start + l * stride]``: the same sample of consecutive frames."""
    ft = _array_elem(arr)
    if ft is None or not isinstance(start, types.Integer) or not isinstance(stride, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        i = context.cast(builder, args[1], sig.args[1], types.intp)
        step = context.cast(builder, args[2], sig.args[2], types.intp)
        v = ir.Constant(_llvm_vec(ft), ir.Undefined)
        for lane in range(_ELEMENTS[ft][1]):
            v = builder.insert_element(v, builder.load(builder.gep(ary.data, [i])), ir.Constant(_I32, lane))
            i = builder.add(i, step)
        return v

    return _vt(ft)(arr, start, stride), codegen


@intrinsic
def vsqrt(typingctx, v):
    """Lane-wise square root."""
    if not isinstance(v, LaneVector):
        return None

    def codegen(context, builder, sig, args):
        return _call(builder, "sqrt", list(args), sig.return_type.dtype)

    return v(v), codegen


@intrinsic
def vfloor(typingctx, v, s):
    """``max(s, v)`` lane-wise with NaN lanes kept, as ``np.maximum(s, v)``."""
    if not isinstance(v, LaneVector) or not isinstance(s, types.Float):
        return None

    def codegen(context, builder, sig, args):
        ft = sig.return_type.dtype
        lo = _splat(builder, context.cast(builder, args[1], sig.args[1], ft), ft)
        return builder.select(builder.fcmp_ordered("<", args[0], lo), lo, args[0])

    return v(v, s), codegen


@intrinsic
def vlog10(typingctx, v):
    """log10 of positive normal lanes (+Inf and NaN lanes returned as they are).

    The exponent is split off with integer arithmetic on the bits and the mantissa, reduced
    to [sqrt(.5), sqrt(2)), goes through the atanh series ``ln m = 2 atanh(s)``: branch-free,
    so it vectorises (numba would call libm once per element). Absolute error below 2e-11
    (float64) or about one float32 rounding step (float32).
    """
    if not isinstance(v, LaneVector):
        return None

    def codegen(context, builder, sig, args):
        ft = sig.return_type.dtype
        _, n, it, sqrt_half_bits, mant = _ELEMENTS[ft]
        x = args[0]
        bits = builder.bitcast(x, ir.VectorType(it, n))
        k = builder.ashr(builder.sub(bits, _iconst(ft, sqrt_half_bits)), _iconst(ft, mant))
        m = builder.bitcast(builder.sub(bits, builder.shl(k, _iconst(ft, mant))), _llvm_vec(ft))  # x / 2**k
        f = builder.fsub(m, _const(ft, 1.0))
        s = builder.fdiv(f, builder.fadd(f, _const(ft, 2.0)))
        z = builder.fmul(s, s)
        # atanh series to s**11 (float64; truncation < 2e-11 for |s| <= 3 - 2*sqrt(2)) or to
        # s**9 (float32; < 7e-10, far below float32 rounding)
        odds = (11, 9, 7, 5, 3, 1) if ft == types.float64 else (9, 7, 5, 3, 1)
        poly = _const(ft, 1.0 / odds[0])
        for odd in odds[1:]:
            poly = _call(builder, "fmuladd", [poly, z, _const(ft, 1.0 / odd)], ft)
        if it.width != 32:
            k = builder.trunc(k, ir.VectorType(_I32, n))  # |k| < 1100: int32 converts faster
        kf = builder.sitofp(k, _llvm_vec(ft))
        ln = _call(builder, "fmuladd", [kf, _const(ft, np.log(2.0)), builder.fmul(builder.fadd(s, s), poly)], ft)
        res = builder.fmul(ln, _const(ft, 1.0 / np.log(10.0)))
        return builder.select(builder.fcmp_ordered("<", x, _const(ft, np.inf)), res, x)

    return v(v), codegen


# ----------------------------------------------------------------------------- transforms
@njit(cache=True)
def _count_nonfinite(x):
    """Number of NaN/Inf samples."""
    bad = 0
    for i in range(x.shape[0]):
        d = x[i] - x[i]  # NaN exactly for NaN and +-Inf
        bad += d != d
    return bad


@njit(cache=True)
def _copy(dst, src):
    """``dst[:] = src`` as a plain loop over fresh slices (vectorises; forward order)."""
    for i in range(src.shape[0]):
        dst[i] = src[i]


@njit(cache=True)
def _copy_count_nonfinite(dst, src):
    """:func:`_copy` fused with :func:`_count_nonfinite` of ``src`` (one pass over the block)."""
    bad = 0
    for i in range(src.shape[0]):
        v = src[i]
        dst[i] = v
        d = v - v
        bad += d != d
    return bad


# Complex lane vectors are stored interleaved: point k of the transform has its real lanes at
# z[2*k*L] and its imaginary lanes at z[(2*k + 1)*L], L = lanes_of(z).
@njit(cache=True)
def _load_fft(buf, base, hop, window, rev, z):
    """Window the frames ``buf[base + l*hop:]`` into bit-reversed order and run the first two
    DIT stages (a radix-4 pass whose twiddles are 1 and -i) on the way."""
    lanes = lanes_of(z)
    half = rev.shape[0]
    for g in range(0, half, 4):
        n0 = 2 * rev[np.uint64(g)]
        n1 = 2 * rev[np.uint64(g + 1)]
        n2 = 2 * rev[np.uint64(g + 2)]
        n3 = 2 * rev[np.uint64(g + 3)]
        a0r, a0i = vgather_pair(buf, base + n0, hop)
        a1r, a1i = vgather_pair(buf, base + n1, hop)
        a2r, a2i = vgather_pair(buf, base + n2, hop)
        a3r, a3i = vgather_pair(buf, base + n3, hop)
        a0r = vmul(a0r, vbcast(window, n0))
        a0i = vmul(a0i, vbcast(window, n0 + 1))
        a1r = vmul(a1r, vbcast(window, n1))
        a1i = vmul(a1i, vbcast(window, n1 + 1))
        a2r = vmul(a2r, vbcast(window, n2))
        a2i = vmul(a2i, vbcast(window, n2 + 1))
        a3r = vmul(a3r, vbcast(window, n3))
        a3i = vmul(a3i, vbcast(window, n3 + 1))
        b0r = vadd(a0r, a1r)
        b0i = vadd(a0i, a1i)
        b1r = vsub(a0r, a1r)
        b1i = vsub(a0i, a1i)
        b2r = vadd(a2r, a3r)
        b2i = vadd(a2i, a3i)
        b3r = vsub(a2r, a3r)
        b3i = vsub(a2i, a3i)
        p = 2 * g * lanes
        vst(z, p, vadd(b0r, b2r))
        vst(z, p + lanes, vadd(b0i, b2i))
        vst(z, p + 4 * lanes, vsub(b0r, b2r))
        vst(z, p + 5 * lanes, vsub(b0i, b2i))
        vst(z, p + 2 * lanes, vadd(b1r, b3i))  # b1 + (-i) b3
        vst(z, p + 3 * lanes, vsub(b1i, b3r))
        vst(z, p + 6 * lanes, vsub(b1r, b3i))
        vst(z, p + 7 * lanes, vadd(b1i, b3r))


@njit(cache=True)
def _fft_passes(z, tw_re, tw_im, half):
    """Remaining DIT stages (half-size 4 on) of the complex FFT of ``half`` points, in place."""
    lanes = lanes_of(z)
    h = 4
    while 4 * h <= half:  # radix-2² pass: stages h and 2h
        step = 2 * h * lanes
        for g in range(0, half, 4 * h):
            for j in range(h):
                w1r = vbcast(tw_re, h + j)
                w1i = vbcast(tw_im, h + j)
                w2r = vbcast(tw_re, 2 * h + j)
                w2i = vbcast(tw_im, 2 * h + j)
                i0 = 2 * (g + j) * lanes
                i1 = i0 + step
                i2 = i1 + step
                i3 = i2 + step
                a0r = vld(z, i0)
                a0i = vld(z, i0 + lanes)
                a1r = vld(z, i1)
                a1i = vld(z, i1 + lanes)
                a2r = vld(z, i2)
                a2i = vld(z, i2 + lanes)
                a3r = vld(z, i3)
                a3i = vld(z, i3 + lanes)
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
                vst(z, i0, vadd(b0r, u2r))
                vst(z, i0 + lanes, vadd(b0i, u2i))
                vst(z, i2, vsub(b0r, u2r))
                vst(z, i2 + lanes, vsub(b0i, u2i))
                vst(z, i1, vadd(b1r, u3i))  # b1 + (-i) u3
                vst(z, i1 + lanes, vsub(b1i, u3r))
                vst(z, i3, vsub(b1r, u3i))
                vst(z, i3 + lanes, vadd(b1i, u3r))
        h *= 4
    if 2 * h <= half:  # one radix-2 stage left when log2(half) is odd
        step = 2 * h * lanes
        for g in range(0, half, 2 * h):
            for j in range(h):
                wr = vbcast(tw_re, h + j)
                wi = vbcast(tw_im, h + j)
                i0 = 2 * (g + j) * lanes
                i1 = i0 + step
                a1r = vld(z, i1)
                a1i = vld(z, i1 + lanes)
                tr = vsub(vmul(wr, a1r), vmul(wi, a1i))
                ti = vfma(wr, a1i, vmul(wi, a1r))
                a0r = vld(z, i0)
                a0i = vld(z, i0 + lanes)
                vst(z, i0, vadd(a0r, tr))
                vst(z, i0 + lanes, vadd(a0i, ti))
                vst(z, i1, vsub(a0r, tr))
                vst(z, i1 + lanes, vsub(a0i, ti))


@njit(cache=True)
def _rfft_power(z, post_c, post_s, half, pw):
    """|X[k]|², k = 0..half, of the real frames whose even/odd-packed FFT is in z."""
    lanes = lanes_of(z)
    zr = vld(z, 0)
    zi = vld(z, lanes)
    s0 = vadd(zr, zi)
    d0 = vsub(zr, zi)
    vst(pw, 0, vmul(s0, s0))
    vst(pw, half * lanes, vmul(d0, d0))
    hv = vfill(z, 0.5)
    for k in range(1, half // 2 + 1):
        c = vbcast(post_c, k)
        s = vbcast(post_s, k)
        ik = 2 * k * lanes
        imk = 2 * (half - k) * lanes
        ar = vld(z, ik)
        ai = vld(z, ik + lanes)
        br = vld(z, imk)
        bi = vld(z, imk + lanes)
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
        vst(pw, k * lanes, vfma(pr, pr, vmul(pi, pi)))
        vst(pw, (half - k) * lanes, vfma(mr, mr, vmul(mi, mi)))


@njit(cache=True)
def _dft_power(buf, base, hop, window, cos_tab, sin_tab, n_bins, frames, pw):
    """|X[k]|² by direct O(n_fft²) DFT for any n_fft (table index (k*n) mod n_fft)."""
    lanes = lanes_of(frames)
    n_fft = window.shape[0]
    for n in range(n_fft):
        vst(frames, n * lanes, vmul(vgather(buf, base + n, hop), vbcast(window, n)))
    for k in range(n_bins):
        acc_r = vfill(frames, 0.0)
        acc_i = vfill(frames, 0.0)
        idx = 0
        for n in range(n_fft):
            v = vld(frames, n * lanes)
            acc_r = vfma(vbcast(cos_tab, idx), v, acc_r)
            acc_i = vfma(vbcast(sin_tab, idx), v, acc_i)  # sign irrelevant for |X|²
            idx += k
            if idx >= n_fft:
                idx -= n_fft
        vst(pw, k * lanes, vfma(acc_r, acc_r, vmul(acc_i, acc_i)))


@njit(cache=True)
def _apply_power(pw, n_bins, power_kind, power):
    """Turn |X|² into |X|**power in place (no-op for power 2)."""
    lanes = lanes_of(pw)
    if power_kind == POWER_1:
        for k in range(n_bins):
            vst(pw, k * lanes, vsqrt(vld(pw, k * lanes)))
    elif power_kind == POWER_ANY:
        e = 0.5 * power
        for i in range(n_bins * lanes):
            pw[i] = pw[i] ** e


@njit(cache=True)
def _mel_one(pw, indptr, indices, weights, mel):
    """Sparse mel projection of one lane vector of frames: ``mel[m] = sum_k W[m, k] pw[k]``."""
    lanes = lanes_of(pw)
    for m in range(indptr.shape[0] - 1):
        acc = vfill(pw, 0.0)
        for idx in range(indptr[m], indptr[m + 1]):
            acc = vfma(vbcast(weights, idx), vld(pw, indices[np.uint64(idx)] * lanes), acc)
        vst(mel, m * lanes, acc)


@njit(cache=True)
def _mel_two(pw, indptr, indices, weights, mel):
    """:func:`_mel_one` for two lane vectors at once (shared indices, two independent chains)."""
    lanes = lanes_of(pw)
    n_mels = indptr.shape[0] - 1
    second = pw.shape[0] // 2
    for m in range(n_mels):
        acc0 = vfill(pw, 0.0)
        acc1 = vfill(pw, 0.0)
        for idx in range(indptr[m], indptr[m + 1]):
            w = vbcast(weights, idx)
            k = indices[np.uint64(idx)] * lanes
            acc0 = vfma(w, vld(pw, k), acc0)
            acc1 = vfma(w, vld(pw, second + k), acc1)
        vst(mel, m * lanes, acc0)
        vst(mel, (n_mels + m) * lanes, acc1)


@njit(cache=True)
def _compress(mel, n_values, log_kind, log_scale, amin):
    """Log compression of ``mel[:n_values]`` in place."""
    lanes = lanes_of(mel)
    if log_kind == LOG_LOG10P:
        scale = vfill(mel, log_scale)
        one = vfill(mel, 1.0)
        for i in range(0, n_values, lanes):
            vst(mel, i, vlog10(vfma(scale, vld(mel, i), one)))
    elif log_kind == LOG_DB:
        ten = vfill(mel, 10.0)
        for i in range(0, n_values, lanes):
            vst(mel, i, vmul(ten, vlog10(vfloor(vld(mel, i), amin))))


@njit(cache=True)
def _store_rows(mel, out, row0, n_rows):
    """Copy frames ``0 .. n_rows`` of the chunk (vector-major, lane-minor) to ``out[row0:]``."""
    lanes = lanes_of(mel)
    n_mels = out.shape[1]
    for r in range(n_rows):
        src = (r // lanes) * n_mels * lanes + r % lanes
        for m in range(n_mels):
            out[row0 + r, m] = mel[np.uint64(src + m * lanes)]


@njit(cache=True)
def _run(x, x_start, pending, out, fw, iv, ws, words):
    """Body of :func:`process_block` for one precision (``fw``: float view, ``words``: its
    elements per workspace word). Returns 0, or 1 (state untouched) for NaN/Inf input."""
    n_fft = iv[H_NFFT]
    hop = iv[H_HOP]
    n_mels = iv[H_NMELS]
    n_bins = iv[H_NBINS]
    half = iv[H_HALF]
    cap = iv[H_CAP]
    lanes = lanes_of(fw)
    o = words * iv[O_WINDOW]
    window = fw[o : o + n_fft]
    o = words * iv[O_TWIDDLE]
    tw_re = fw[o : o + half]
    tw_im = fw[o + half : o + 2 * half]
    n_post = half // 2 + 1
    o = words * iv[O_POST]
    post_c = fw[o : o + n_post]
    post_s = fw[o + n_post : o + 2 * n_post]
    rev = iv[iv[O_REV] : iv[O_REV] + half]
    indptr = iv[iv[O_INDPTR] : iv[O_INDPTR] + n_mels + 1]
    indices = iv[iv[O_INDICES] : iv[O_INDICES] + indptr[n_mels]]
    o = words * iv[O_WEIGHTS]
    weights = fw[o : o + indptr[n_mels]]
    o = words * iv[O_BUF]
    buf = fw[o : o + cap]
    o = words * iv[O_WORK]
    work = fw[o : o + n_fft * lanes]
    o = words * iv[O_POW]
    pw = fw[o : o + CHUNK * n_bins]
    o = words * iv[O_MEL]
    mel = fw[o : o + CHUNK * n_mels]
    o = words * iv[O_DFT]
    cos_tab = fw[o : o + n_fft]  # empty (slices clip) in FFT mode
    sin_tab = fw[o + n_fft : o + 2 * n_fft]

    n = x.shape[0]
    if n - x_start <= cap - pending:  # the usual case: the block fits, copy and check at once
        if _count_nonfinite(x[:x_start]) + _copy_count_nonfinite(buf[pending : pending + n - x_start], x[x_start:]):
            return 1  # only buffer space past the pending samples was written
        fill = pending + n - x_start
        pos = n
    else:  # check everything before the first frame moves the buffer
        if _count_nonfinite(x) != 0:
            return 1
        fill = pending
        pos = x_start
    row = 0
    n_out = out.shape[0]
    while True:
        take = min(cap - fill, n - pos)
        _copy(buf[fill : fill + take], x[pos : pos + take])
        fill += take
        pos += take
        if fill < n_fft or row >= n_out:
            break
        n_rows = min((fill - n_fft) // hop + 1, CHUNK, n_out - row)
        n_vec = (n_rows + lanes - 1) // lanes
        for v in range(n_vec):
            pw_v = pw[v * n_bins * lanes : (v + 1) * n_bins * lanes]
            if iv[H_MODE] == MODE_FFT:
                _load_fft(buf, v * lanes * hop, hop, window, rev, work)
                _fft_passes(work, tw_re, tw_im, half)
                _rfft_power(work, post_c, post_s, half, pw_v)
            else:
                _dft_power(buf, v * lanes * hop, hop, window, cos_tab, sin_tab, n_bins, work, pw_v)
            _apply_power(pw_v, n_bins, iv[H_POWER], ws[F_POWER])
        if n_vec == 1:
            _mel_one(pw, indptr, indices, weights, mel)
        else:
            _mel_two(pw, indptr, indices, weights, mel)
        _compress(mel, n_vec * n_mels * lanes, iv[H_LOG], ws[F_LOG_SCALE], ws[F_AMIN])
        _store_rows(mel, out, row, n_rows)
        row += n_rows
        used = n_rows * hop
        if used <= fill:
            _copy(buf[: fill - used], buf[used:fill])  # forward copy: overlap-safe
            fill -= used
        else:  # hop > n_fft: skip the gap before the next frame (the rest of it in later calls)
            pos += min(used - fill, n - pos)
            fill = 0
    return 0


@njit(cache=True)
def process_block(x, x_start, pending, out, ws):
    """Append ``x[x_start:]`` to the ``pending`` buffered samples and emit ``out.shape[0]`` frames.

    The sample buffer holds the stream from the next frame start; frame ``r`` of this call
    covers buffered positions ``[r*hop, r*hop + n_fft)``; the caller sizes ``out`` and tracks
    ``pending`` and the skipped samples ``x[:x_start]`` (see ``StreamingMel.process``). Returns
    0, or 1 without touching any state when ``x`` holds NaN/Inf.
    """
    iv = ws.view(np.int64)
    if iv[H_PREC] == PREC_F32:
        return _run(x, x_start, pending, out, ws.view(np.float32), iv, ws, 2)
    return _run(x, x_start, pending, out, ws, iv, ws, 1)


@njit(cache=True)
def log10_vectors(x, out):
    """``out = log10(x)`` through :func:`vlog10` (length a multiple of 8; for tests)."""
    lanes = lanes_of(x)
    for i in range(0, x.shape[0] - lanes + 1, lanes):
        vst(out, i, vlog10(vld(x, i)))


_SIGNATURE = types.int64(types.float32[::1], types.int64, types.int64, types.float32[:, ::1], types.float64[::1])


_compiled = False


def compile_kernels() -> None:
    """Compile (or load from numba's disk cache) the kernels, then freeze their dispatchers.

    Afterwards nothing compiles at call time: an argument of another type raises ``TypeError``
    at once, which the public wrappers turn into a conversion or a clear error.
    """
    global _compiled
    if _compiled:
        return
    process_block.compile(_SIGNATURE)
    for dt in (types.float32, types.float64):
        log10_vectors.compile(types.void(dt[::1], dt[::1]))
    process_block.disable_compile()
    log10_vectors.disable_compile()
    _compiled = True
