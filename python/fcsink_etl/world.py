"""The plugin's entry points: the componentize-py app module.

``fcsink plugin build-python`` copies the user's file next to this package
as the module ``fcsink_user`` and builds with ``componentize fcsink_etl.world``.
The user's module is imported at build time, so a syntax error or a missing
``deal_message`` stops the build instead of the connector.
"""

import wit_world
from componentize_py_types import Err
from wit_world.imports import types

import fcsink_etl as etl
import fcsink_user as user

if not callable(getattr(user, "deal_message", None)):
    raise AttributeError("the plugin's Python file must define deal_message(message)")


def describe(exc):
    """An exception as a dead-letter reason."""
    return f"{type(exc).__name__}: {exc}"


def outcome(record):
    """Calls ``deal_message`` for one record and maps its answer to an outcome."""
    try:
        result = user.deal_message(etl.message_of(record))
        if result is None:
            return types.Outcome_Drop()
        if isinstance(result, list):
            return types.Outcome_Replace(
                [etl.record_of(m, record, types.KafkaRecord, types.Header) for m in result]
            )
        changed = etl.record_of(result, record, types.KafkaRecord, types.Header)
        # Keeping spares the host copying an unchanged record back.
        if changed == record:
            return types.Outcome_Keep()
        return types.Outcome_Replace([changed])
    except Exception as exc:
        return types.Outcome_Fail(describe(exc))


class WitWorld(wit_world.WitWorld):
    def init(self, config):
        settings = dict(config)
        setup = getattr(user, "init", None)
        if setup is None:
            if settings:
                names = ", ".join(f"`{name}`" for name in sorted(settings))
                raise Err(f"unknown config key(s) {names}: this plugin takes none (define init(config) to accept some)")
            return
        try:
            setup(settings)
        except Exception as exc:
            raise Err(describe(exc))

    def transform(self, batch):
        return [outcome(record) for record in batch]
