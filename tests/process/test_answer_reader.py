"""`AnswerReader`: a worker's answers over the invoke lane become outcomes; short plain ones are reused."""

from __future__ import annotations

from plughost.runtime.process_handle import PLAIN_ANSWERS_KEPT, AnswerReader
from plughost.sdk.call import NOTHING, Outcome


def test_answers_read_as_the_outcome_they_carry() -> None:
    reader = AnswerReader()
    assert reader.read(b"{}") is NOTHING
    assert reader.read(b'{"value":true}') == Outcome(True)
    assert reader.read(b'{"value":{"text":"hi"}}') == Outcome({"text": "hi"})
    failed = reader.read(b'{"error":{"code":"plugin_error","message":"boom"}}')
    assert failed is not None and failed.error is not None and failed.error.message == "boom"


def test_a_short_plain_answer_is_read_once_and_others_every_time() -> None:
    reader = AnswerReader()
    assert reader.read(b'{"value":"ok"}') is reader.read(b'{"value":"ok"}')
    first = reader.read(b'{"value":{"n":1}}')
    again = reader.read(b'{"value":{"n":1}}')
    assert first == again and first is not again  # a dict could be changed by whoever gets it
    sends = b'{"sends":[{"action":"send_private_msg","params":{"user_id":1,"message":"x"}}]}'
    assert reader.read(sends) is not reader.read(sends)
    error = b'{"error":{"code":"plugin_error","message":"x"}}'
    assert reader.read(error) is not reader.read(error)


def test_the_remembered_answers_stay_bounded() -> None:
    reader = AnswerReader()
    for n in range(PLAIN_ANSWERS_KEPT * 3):
        assert reader.read(b'{"value":%d}' % n) == Outcome(n)
    assert len(reader._known) <= PLAIN_ANSWERS_KEPT
    assert reader.read(b'{"value":5}') == Outcome(5)


def test_an_answer_that_is_not_json_is_refused_and_forgets_nothing() -> None:
    reader = AnswerReader()
    known = reader.read(b'{"value":1}')
    assert reader.read(b'{"value":') is None
    assert reader.read(b"\xff\xfe") is None
    assert reader.read(b'{"value":1}') is known
    malformed = reader.read(b"[1, 2]")
    assert malformed is not None and malformed.error is not None and malformed.error.code == "protocol_error"
