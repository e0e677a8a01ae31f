"""The demo behind `make demo`: both seed models, end to end, on the local emulator.

Starts the emulator, puts the example images in its stand-in for public storage, runs
community/wan-2-1/fusionx/image-to-video and community/wan-2-2/fun-inpaint through the public
Client, and saves both MP4s under --out. No network and no API key are needed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from runcomfy_client import Client, JobStatus, Queued
from runcomfy_client.emulator import Emulator

IMAGES = Path(__file__).parent / "images"


def show(status: JobStatus) -> None:
    extra = f" (position {status.position})" if isinstance(status, Queued) else ""
    print(f"  {status.request_id[:12]}  {status.status}{extra}", flush=True)


def describe(path: Path) -> str:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return (
            f"{stream.codec_context.name} {stream.width}x{stream.height}, "
            f"{frames} frames at {stream.average_rate} fps"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out"))
    args = parser.parse_args()
    started = time.monotonic()
    with Emulator(workers=2, job_seconds=1.0) as emu:
        print(f"emulator listening on {emu.base_url}")
        day = emu.upload((IMAGES / "valley-day.png").read_bytes(), "valley-day.png")
        dusk = emu.upload((IMAGES / "valley-dusk.png").read_bytes(), "valley-dusk.png")
        with Client(base_url=emu.base_url, api_key=emu.api_key) as client:
            jobs = [
                (
                    "community/wan-2-1/fusionx/image-to-video",
                    {
                        "prompt": "a slow push-in on a house in a green valley",
                        "image": day,
                        "resolution": "720x480",
                        "number_of_frames": 81,
                        "frames_per_second": 16,
                    },
                    args.out / "fusionx",
                ),
                (
                    "community/wan-2-2/fun-inpaint",
                    {
                        "prompt": "day turns to dusk over the valley",
                        "start_image": day,
                        "end_image": dusk,
                        "resolution": (480, 720),
                        "number_of_frames": 81,
                        "frames_per_second": 24,
                    },
                    args.out / "fun-inpaint",
                ),
            ]
            for model_id, inputs, folder in jobs:
                print(f"\n{model_id}")
                result = client.run(
                    model_id, inputs, on_status=show, download_to=folder, timeout=120
                )
                for path in result.files:
                    print(f"  saved {path}  [{describe(path)}]")
    print(f"\ndone in {time.monotonic() - started:.1f}s; open the MP4s above in any browser")


if __name__ == "__main__":
    main()
