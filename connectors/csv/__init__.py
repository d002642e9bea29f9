"""Source kind `csv`: historian CSV exports dropped in a folder (`connector`)."""

from connectors.csv.config import CsvSource
from plantlake.core.kinds import SourceKind

KIND = SourceKind("csv", config=CsvSource, connector="connectors.csv.connector:CsvExportConnector",
                  tables=("sensor_readings",),
                  discover="connectors.csv.discover:discover")
