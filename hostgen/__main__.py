import sys

from hostgen.cli import main

sys.exit(main())
