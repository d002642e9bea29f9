"""The pipeline: a source's run from extract to publish (`runner`), the one write-audit-publish
path (`publish`), the fused products, compaction, gaps, the analyst catalog and the report. It
stands on the connectors and quality (which stand on `plantlake.core`); only the app imports it."""
