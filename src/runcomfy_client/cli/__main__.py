from runcomfy_client.cli import main

main()
