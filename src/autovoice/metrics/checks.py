"""Report warnings: ``{"code", "message"}`` documents with stable codes, and the rules that raise them.

The thresholds come from measurements on the shared recordings; docs/metrics.md gives the data.
Messages describe the audio and what to do about it; they never name a CLI flag or a server path.
"""

from __future__ import annotations

import math
from typing import TypeAlias

from autovoice.metrics.dnsmos import Dnsmos

#: A report warning: ``{"code": <one of WARNING_CODES>, "message": <a sentence for people>}``.
ReportWarning: TypeAlias = dict[str, str]

#: Every code a report warning can carry.
WARNING_CODES: tuple[str, ...] = (
    "dnsmos_unmeasured",
    "similarity_unmeasured",
    "pitch_unmeasured",
    "quality_degraded",
    "input_not_vocal",
)

#: ``quality_degraded`` when the converted vocal's DNSMOS OVRL is more than this far below the source's.
QUALITY_DROP_MAX = 0.6
#: ``quality_degraded`` when the converted vocal's DNSMOS OVRL is below this, whatever the source's.
QUALITY_MIN_OVRL = 2.0
#: A source whose DNSMOS BAK (background quality) is below this sounds like a full mix, not a vocal.
FULL_MIX_MAX_BAK = 1.6


def report_warning(code: str, message: str) -> ReportWarning:
    """A warning document; ``code`` must be one of :data:`WARNING_CODES`."""
    assert code in WARNING_CODES, code
    return {"code": code, "message": message}


def quality_warnings(source: Dnsmos, converted: Dnsmos) -> list[ReportWarning]:
    """``quality_degraded`` when the converted vocal sounds much worse than its source, or plain bad.

    Fires when the converted OVRL is more than :data:`QUALITY_DROP_MAX` below the source's (both measured
    on the same windows), or below :data:`QUALITY_MIN_OVRL` while the source scored at least that. A
    source that already scores below :data:`QUALITY_MIN_OVRL` (a full mix, a noisy recording) only warns
    on the drop: its own problem is :func:`looks_like_full_mix`'s to report. Unmeasured scores (NaN)
    never warn.
    """
    out, src = converted.ovrl, source.ovrl
    if not math.isfinite(out):
        return []
    reasons = []
    if math.isfinite(src) and src - out > QUALITY_DROP_MAX:
        reasons.append(
            f"its overall quality estimate (DNSMOS OVRL) is {out:.2f}, {src - out:.2f} below the source's "
            f"{src:.2f} (conversions usually lose less than {QUALITY_DROP_MAX})"
        )
    elif out < QUALITY_MIN_OVRL and (not math.isfinite(src) or src >= QUALITY_MIN_OVRL):
        reasons.append(f"its overall quality estimate (DNSMOS OVRL) is {out:.2f}, below {QUALITY_MIN_OVRL}")
    if not reasons:
        return []
    return [
        report_warning(
            "quality_degraded",
            f"The converted vocal sounds degraded: {reasons[0]}. Listen to it; a cleaner source vocal, "
            "another preset or another engine may do better.",
        )
    ]


def looks_like_full_mix(source_dnsmos: Dnsmos) -> bool:
    """Whether a vocal input sounds like a full mix (voice with instruments) rather than a vocal alone.

    DNSMOS rates background quality (BAK, 1..5); accompaniment counts as background. A full mix scores
    BAK well below :data:`FULL_MIX_MAX_BAK`, clean speech and separated vocals well above it (see
    docs/metrics.md). Very noisy recordings score low too, so the warning says "or a very noisy
    recording". ``False`` when BAK was not measured.
    """
    return math.isfinite(source_dnsmos.bak) and source_dnsmos.bak < FULL_MIX_MAX_BAK


def full_mix_warning(source_dnsmos: Dnsmos) -> list[ReportWarning]:
    """``[input_not_vocal]`` when :func:`looks_like_full_mix`, else ``[]``.

    For a conversion that took its input as a vocal without separating it (the caller decides that).
    """
    if not looks_like_full_mix(source_dnsmos):
        return []
    return [
        report_warning(
            "input_not_vocal",
            f"The input sounds like a full mix with instruments, or a very noisy recording (DNSMOS "
            f"background quality {source_dnsmos.bak:.2f}, below {FULL_MIX_MAX_BAK}), but it was converted "
            "as a vocal without separation. Convert a song with vocal separation, or use a clean vocal.",
        )
    ]
