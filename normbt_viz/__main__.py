import sys

from normbt_viz.cli import main

sys.exit(main())
