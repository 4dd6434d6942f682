"""Write rendered frames to a video file (MP4 through imageio's ffmpeg, or an animated GIF)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def write_video(path: str | Path, frames: Sequence[np.ndarray], fps: float) -> Path:
    """Write RGB ``frames`` (each (H, W, 3) uint8) to ``path`` (.mp4 or .gif) at ``fps``."""
    path = Path(path)
    if not frames:
        raise ValueError("no frames to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=1000.0 / fps, loop=0)
    elif suffix == ".mp4":
        import imageio.v2 as imageio

        # Even frame sizes keep H.264 encoders happy.
        h, w = (frames[0].shape[0] // 2) * 2, (frames[0].shape[1] // 2) * 2
        with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1) as writer:
            for frame in frames:
                writer.append_data(np.ascontiguousarray(frame[:h, :w]))
    else:
        raise ValueError(f"unsupported video format {suffix!r}: use .mp4 or .gif")
    return path
