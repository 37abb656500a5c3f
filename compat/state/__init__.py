"""What compat keeps on a Lernomatic trainer: its declared histories and its run state, typed."""
