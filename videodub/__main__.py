from videodub.cli import main

main()
