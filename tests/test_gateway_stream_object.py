"""core.call.GatewayStream: the iterator stream_message returns, and when it asks for the call to be recorded."""

from ai_cost_optimizer.core.call import GatewayStream


def make(chunks, recorded):
    stream = GatewayStream()

    def reader():
        try:
            yield from chunks
        finally:
            if stream.result is None:
                stream.result = {"recorded_by": "reader"}
                recorded.append("reader")

    def finish():
        recorded.append("finish")
        return {"recorded_by": "finish"}

    stream.bind(reader(), finish)
    return stream


def test_exhausted_stream_is_recorded_once():
    recorded = []
    with make(["a", "b"], recorded) as stream:
        assert list(stream) == ["a", "b"]
    assert recorded == ["reader"]
    assert stream.result == {"recorded_by": "reader"}


def test_closed_midway_is_recorded_by_its_reader():
    recorded = []
    stream = make(["a", "b", "c"], recorded)
    assert next(stream) == "a"
    stream.close()
    stream.close()
    assert recorded == ["reader"]


def test_closed_before_reading_is_recorded_by_finish():
    recorded = []
    with make(["a"], recorded) as stream:
        pass
    assert recorded == ["finish"]
    assert stream.result == {"recorded_by": "finish"}
