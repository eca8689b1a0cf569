from fnx.cli import main

main()
