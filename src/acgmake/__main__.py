from acgmake.cli import console

console()
