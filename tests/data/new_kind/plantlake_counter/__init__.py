"""Source kind `counter`: a stand-in for a plant's own protocol, as a kind living outside
plantlake's repository would be written (docs/architecture.md, "Adding a source kind")."""

from plantlake.core.kinds import SourceKind
from plantlake_counter.config import CounterSource

KIND = SourceKind("counter", config=CounterSource, connector="plantlake_counter.connector:CounterConnector",
                  tables=("sensor_readings",))
