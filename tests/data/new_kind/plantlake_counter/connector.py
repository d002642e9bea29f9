from datetime import timedelta

import pyarrow as pa

from connectors.base import RAW, Connector, Decoded, Extract, State

SCHEMA = pa.schema([("at", pa.timestamp("us", tz="UTC")), ("name", pa.string()), ("count", pa.int64())])


class CounterState(State):
    last: str | None = None  # the end of the last interval read


class CounterConnector(Connector):
    State = CounterState

    def extract(self, interval, state):
        step = timedelta(seconds=self.source.every_s)
        times = []
        t = interval.start
        while t < interval.end:
            times.append(t)
            t += step
        batch = pa.table({"at": times, "name": ["parts"] * len(times), "count": list(range(len(times)))}, schema=SCHEMA)
        return Extract.one(SCHEMA, [batch], state={"last": interval.end.isoformat()})

    def decode(self, raw):
        raw = raw[RAW]
        rows = pa.table({"ts": raw["at"], "source_ref": raw["name"], "value": raw["count"].cast(pa.string()),
                         "source": pa.array([self.kind] * raw.num_rows, pa.string())})
        return Decoded({"sensor_readings": rows})
