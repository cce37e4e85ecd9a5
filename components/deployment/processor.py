"""What the processor offers INT8 inference: read from the operating system, recorded with every
quantisation decision so that a model's INT8 behaviour can be traced to the hardware it was checked on.

ONNX Runtime's U8S8 integer kernels on x86-64 use ``VPMADDUBSW`` where the processor has AVX2 or
AVX-512 but no VNNI; its 16-bit intermediate sums can saturate, so a model quantised with the full
8-bit weight range may diverge there while it matches float32 on a VNNI processor. ONNX Runtime's
documentation recommends ``reduce_range`` (7-bit weights) on such processors.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

INTERESTING_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd")


@dataclass(frozen=True)
class ProcessorFeatures:
    model: str
    architecture: str
    flags: tuple[str, ...]  # those of INTERESTING_FLAGS that the processor has

    @property
    def vnni(self) -> bool:
        """Whether integer dot products accumulate in 32 bits (no U8S8 saturation)."""
        return "avx512_vnni" in self.flags or "avx_vnni" in self.flags

    def description(self) -> str:
        flags = ", ".join(self.flags) or "no AVX2/AVX-512/VNNI"
        return f"{self.model} ({self.architecture}; {flags}; VNNI {'yes' if self.vnni else 'no'})"


def parse_cpuinfo(text: str, architecture: str = "") -> ProcessorFeatures:
    """Reads the model name and the flags that matter for INT8 from the text of ``/proc/cpuinfo``."""
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return ProcessorFeatures(
        model or "unknown processor",
        architecture or platform.machine() or "unknown",
        tuple(flag for flag in INTERESTING_FLAGS if flag in flags),
    )


@lru_cache(maxsize=1)
def processor_features() -> ProcessorFeatures:
    """This machine's processor (Linux reads ``/proc/cpuinfo``; elsewhere only the architecture is known)."""
    path = Path("/proc/cpuinfo")
    text = path.read_text(errors="replace") if path.is_file() else ""
    if not text:
        return ProcessorFeatures(platform.processor() or "unknown processor", platform.machine() or "unknown", ())
    return parse_cpuinfo(text)
