from acgmake.cli import main

main()
