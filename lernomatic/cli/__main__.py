"""`python -m lernomatic.cli`: the `lernomatic` command. Importing this module runs nothing."""

import sys

from lernomatic.cli import main

if __name__ == '__main__':
    sys.exit(main())
