# examples/s3_upload.py
from runcomfy_client import Client
from runcomfy_client.uploaders import S3Uploader

uploader = S3Uploader("my-bucket", "runcomfy-inputs/", expires_in=24 * 3600)
with Client(uploader=uploader) as client:
    client.run(
        "community/wan-2-1/fusionx/image-to-video",
        {"prompt": "p", "image": "examples/images/valley-day.png"},
    )
