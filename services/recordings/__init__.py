"""A recording's life: its statuses and their transitions, the chunks that arrive (batched, ordered, within quota),
the finalize that joins them, and the sweepers that finish what a crash or a closed tab left behind."""
