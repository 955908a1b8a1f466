import sys

from fnann.cli import main

sys.exit(main())
