"""TFLM's integer arithmetic (quantization_util.cc, common.h, gemmlowp fixedpoint.h) on numpy int64.

Values are int32 quantities held in int64 so that the definitions read as TFLM writes them
(a 64-bit product, a nudge, a division truncating toward zero). The board-side code computes
the same results in 32-bit pieces; tests prove the two equal.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier: `real` as a Q31 significand in [2^30, 2^31) and a power-of-two exponent."""
    if real == 0.0:
        return 0, 0
    significand, shift = math.frexp(real)
    fixed = _round_half_away(significand * (1 << 31))
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return INT32_MAX, 30
    return fixed, shift


def _round_half_away(value: float) -> int:
    """std::round: halves away from zero."""
    return int(math.floor(abs(value) + 0.5)) * (1 if value >= 0 else -1)


def tflite_round_float32(value) -> int:
    """TfLiteRound on a float32 value (std::round)."""
    return _round_half_away(float(np.float32(value)))


def srdhm(a, b):
    """SaturatingRoundingDoublingHighMul: round(a * b / 2^31), saturating the one overflow case."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    nudged = a * b
    nudged += np.where(nudged >= 0, 1 << 30, 1 - (1 << 30))
    high = nudged >> 31
    high += (nudged < 0) & ((nudged & ((1 << 31) - 1)) != 0)  # C++ division truncates toward zero, >> floors
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, INT32_MAX, high) if overflow.any() else high


def rounding_divide_by_pot(x, exponent):
    """RoundingDivideByPOT: x / 2^exponent rounded to nearest, halves away from zero."""
    x, exponent = np.asarray(x, np.int64), np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """MultiplyByQuantizedMultiplier (double rounding, TFLM's default build)."""
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = np.asarray(x, np.int64)
    if np.any(left):
        shifted = shifted * (np.int64(1) << left)
        assert np.all((shifted >= INT32_MIN) & (shifted <= INT32_MAX)), "lowering admits only layers whose shifted accumulator fits int32"
    return rounding_divide_by_pot(srdhm(shifted, multiplier), right)


def saturating_shift_left(x, exponent: int):
    """SaturatingRoundingMultiplyByPOT for a positive exponent."""
    x = np.asarray(x, np.int64)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def _wrap32(x):
    """gemmlowp's FixedPoint + and - are plain int32 arithmetic."""
    return ((np.asarray(x, np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    constant_term = 1895147668  # exp(-1/8) in Q0.31
    constant_1_over_3 = 715827883
    x = _wrap32(a + (1 << 28))  # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(_wrap32(srdhm(_wrap32(x4_over_4 + x3), constant_1_over_3) + x2), 1)
    return _wrap32(constant_term + srdhm(constant_term, _wrap32(x + poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int):
    """gemmlowp exp_on_negative_values: a in Q(integer_bits).(31-integer_bits), a <= 0; result in Q0.31."""
    a = np.asarray(a, np.int64)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = _wrap32((a & (one_quarter - 1)) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(saturating_shift_left(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = _wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (fractional_bits + exponent)
            result = np.where(remainder & bit, srdhm(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a):
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: a in Q0.31, [0, 1); result 1/(1+a) in Q0.31."""
    a = np.asarray(a, np.int64)
    total = a + INT32_MAX
    half_denominator = np.where(total >= 0, (total + 1) // 2, -((-(total - 1)) // 2))  # RoundingHalfSum
    constant_48_over_17 = 1515870810  # Q2.29
    constant_neg_32_over_17 = -1010580540
    x = _wrap32(constant_48_over_17 + srdhm(half_denominator, constant_neg_32_over_17))
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus_half_denominator_times_x = _wrap32((1 << 29) - half_denominator_times_x)
        x = _wrap32(x + saturating_shift_left(srdhm(x, one_minus_half_denominator_times_x), 2))
    return saturating_shift_left(x, 1)


def logistic(a, integer_bits: int):
    """gemmlowp logistic: a in Q(integer_bits); result in Q0.31."""
    a = np.asarray(a, np.int64)
    positive = a > 0
    abs_a = np.where(positive, a, _wrap32(-a))
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(_wrap32(-abs_a), integer_bits))
    result_if_negative = _wrap32(INT32_MAX - result_if_positive)
    return np.where(a == 0, 1 << 30, np.where(positive, result_if_positive, result_if_negative))


def count_leading_zeros(x: int) -> int:
    return 32 - int(x).bit_length() if x > 0 else 32


def get_reciprocal(x, x_integer_digits: int):
    """GetReciprocal: (1/x in Q0.31 scaled into [1/2, 1), num_bits_over_unit) for positive x."""
    x = np.asarray(x, np.int64)
    headroom_plus_one = np.array([count_leading_zeros(v) for v in x.reshape(-1)], np.int64).reshape(x.shape)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = _wrap32(((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    max_input_rescaled = 1.0 * ((1 << input_integer_bits) - 1) * (1 << (total_signed_bits - input_integer_bits)) / (1 << input_left_shift)
    return int(math.floor(max_input_rescaled))
