"""Source kind `erp`: an ERP's tables over SQL by change cursor, or its CSV exports (`connector`).
Materials come first in `tables`: orders reference them."""

from connectors.erp.config import ErpSource
from plantlake.core.kinds import SourceKind

KIND = SourceKind("erp", config=ErpSource, connector="connectors.erp.connector:ErpConnector",
                  tables=("materials", "production_orders", "quality_inspections"),
                  discover="connectors.erp.discover:discover")
