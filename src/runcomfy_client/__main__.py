"""``python -m runcomfy_client``: the ``runcomfy-client`` command line."""

from runcomfy_client.cli import main

main()
