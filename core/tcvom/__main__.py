from tcvom.cli import console

console()
