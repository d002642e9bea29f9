"""The floor everything stands on: the site model (`config`), connections, the lake store with
its atomic writes and blob stores (`lake`), the DuckDB views over it (`views`) and the typed
errors (`errors`). It imports `schemas` and nothing else of plantlake; connectors, quality, the
pipeline and the app import it."""
