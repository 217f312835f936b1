import sys

from feasibility.cli.main import main

sys.exit(main())
