# examples/deployment_typed.py
import sys

from runcomfy_client import Client

sys.path.insert(0, "build/workflows")  # where the codegen above wrote the package
from my_workflows.deployments import lighthouse

with Client() as client:
    result = lighthouse.run(
        client, prompt="a lighthouse at night", resolution="1344x768 (7:4)", steps=20
    )
    print(result.status, len(result.urls))
