# examples/failed_job.py
from runcomfy_client import Client, JobFailedError

with Client() as client:
    # The job is accepted, then fails: the server cannot fetch its input image.
    handle = client.submit(
        "community/wan-2-1/fusionx/image-to-video",
        {"prompt": "a slow push-in", "image": "http://127.0.0.1:9/missing.png"},
    )
    try:
        handle.wait()
    except JobFailedError as failure:
        print(failure.error_code, failure.error_message)
        print(failure)
