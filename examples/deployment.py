# examples/deployment.py
from runcomfy_client import Client

# RUNCOMFY_SERVERLESS_BASE_URL and RUNCOMFY_SCHEMA_PATH as exported above.
with Client() as client:
    lighthouse = client.deployment("deployments/lighthouse")  # or its deployment id
    handle = lighthouse.submit(
        {"prompt": "a lighthouse in fog", "seed": 7},  # checked by the derived schema
        overrides={"9": {"inputs": {"filename_prefix": "fog"}}},  # raw, merged with them
    )
    result = handle.wait(timeout=120)
    for file in result.output.files:  # outputs keyed by node, then channel
        print(file.node, file.channel, file.filename)
    print(*result.download("out/fog"))
