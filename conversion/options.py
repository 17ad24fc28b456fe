"""The options of an original checkpoint's conversion (torch-free: `tvlt convert --help` shows their defaults)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class OriginalOptions:
    """What the original weights cannot tell, with the released models' values as defaults."""

    num_attention_heads: int = 12
    decoder_num_attention_heads: int = 16
    num_frames: int = 8
    # the 4.40.2 TVLT-base value; the original audio pipeline keeps at most 1024 spectrogram frames
    spectrogram_length: int = 2048


__all__ = ["OriginalOptions"]
