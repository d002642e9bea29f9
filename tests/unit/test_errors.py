"""One error taxonomy: every module raises the core's classes, each either transient (retried)
or terminal (a person must act)."""

from __future__ import annotations

import pytest

from plantlake.core import errors

pytestmark = pytest.mark.unit


def test_each_error_is_defined_once_and_is_transient_or_terminal():
    import connectors.erp.connector
    import connectors.mqtt.session
    import connectors.opcua.connector
    import plantlake.core.config
    import plantlake.core.connections
    import plantlake.pipeline.runner
    import quality.audit

    assert connectors.erp.connector.SourceUnavailable is connectors.mqtt.session.SourceUnavailable \
        is connectors.opcua.connector.SourceUnavailable is errors.SourceUnavailable
    terminal = {connectors.erp.connector.SchemaDrift, connectors.erp.connector.CursorMismatch, connectors.opcua.connector.HistoryRefused,
                quality.audit.AuditFailed, plantlake.pipeline.runner.NothingPublished, plantlake.core.config.ConfigError,
                plantlake.core.connections.ConnectionInvalid, plantlake.core.connections.ConnectionNotFound,
                errors.StateInvalid}
    assert all(issubclass(e, errors.Terminal) and not issubclass(e, errors.Transient) for e in terminal)
    assert issubclass(errors.SourceUnavailable, errors.Transient) and not issubclass(errors.SourceUnavailable,
                                                                                      errors.Terminal)
    # callers that catch the builtin kinds keep working
    assert issubclass(errors.SourceUnavailable, ConnectionError) and issubclass(errors.SchemaDrift, ValueError)

