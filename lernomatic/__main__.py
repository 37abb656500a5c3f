"""`python -m lernomatic`: the `lernomatic` command. Importing this module runs nothing.

That matters beyond tidiness: code that loads checkpoints imports modules by name, and an import
must never be a way to make a program act.
"""

import sys

from lernomatic.cli import main

if __name__ == '__main__':
    sys.exit(main())
