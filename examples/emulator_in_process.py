# examples/emulator_in_process.py
from pathlib import Path

from runcomfy_client import Client
from runcomfy_client.emulator import Emulator

image = Path("examples/images/valley-day.png").read_bytes()
with Emulator(job_seconds=0.2, faults=["server_error=0.1", "truncate=0.2"], seed=1) as emu:
    url = emu.upload(image, "day.png")  # a stand-in for public storage
    with Client(base_url=emu.base_url, api_key=emu.api_key) as client:
        result = client.run(
            "community/wan-2-1/fusionx/image-to-video",
            {"prompt": "a slow push-in", "image": url},
            download_to="out/emulator",
        )
    print(result.files)
    print(emu.stats()["submissions"])  # also jobs, requests per endpoint, faults
