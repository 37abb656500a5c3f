"""A Lernomatic trainer's epochs on Lightning's loops: the default steps, hand-written loops, bookkeeping."""
