"""Generation: the native engine, sampling, stop strings, constrained decoding, and backends."""
