"""The worker's two kinds of failure text: ``BadInput`` (the request is at fault, its message goes to the client as
it is) and ``error_message`` (any other exception, as one line naming its type)."""


class BadInput(Exception):
    """The request's input (or accept) was rejected; reported as BAD_INPUT with the message as is."""


def error_message(exc):
    """Return ``"ExceptionType: message"`` on one line (at most 4000 characters)."""
    text = " ".join(str(exc).split())
    msg = type(exc).__name__ + (": " + text if text else "")
    return msg[:4000]

