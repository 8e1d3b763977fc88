"""deal_message cases for tests/tests/python_plugins.rs: the value says what to do."""

import json

settings = {}


def init(config):
    if "bad" in config:
        raise ValueError("`bad` is not a setting")
    settings.update(config)


def deal_message(message):
    what = message.get("value")
    if what == "drop":
        return None
    if what == "raise":
        raise ValueError("cannot handle key " + message["key"])
    if what == "same":
        return message
    if what == "describe":
        return {"value": json.dumps(message, sort_keys=True)}
    if what == "move":
        message["topic"] = "elsewhere"
        message["headers"] = message["headers"] + [("seen", "yes"), ("empty", None)]
        message["value"] = b"\x00raw"
        del message["key"]
        return message
    if what == "split":
        return [dict(message, value="one"), dict(message, value="two")]
    if what == "none-of-many":
        return []
    if what == "number":
        return 42
    if what == "text-offset":
        message["offset"] = "7"
        return message
    if what == "setting":
        message["value"] = settings.get("greeting", "no greeting")
        return message
    return message
