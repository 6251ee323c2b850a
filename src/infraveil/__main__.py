from infraveil.cli.main import main

main()
