import sys

from tcvom.cli import main

sys.exit(main())
