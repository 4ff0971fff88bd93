"""The fake OpenAI server's standalone rule (examples' READMEs): a user's turn asks for the tool,
the tool's result gets the answer, streamed word by word."""

from __future__ import annotations

from tests.support.fake_openai import Call, Text, ToolCalls, tool_then_answer


def test_tool_then_answer() -> None:
    rule = tool_then_answer("get_weather", {"city": "Oslo"}, "Cold in Oslo.")
    user = {"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]}
    assert rule(user) == ToolCalls([Call("get_weather", {"city": "Oslo"})])
    after_tool = {**user, "messages": [*user["messages"], {"role": "tool", "content": "cold"}]}
    answer = rule(after_tool)
    assert isinstance(answer, Text) and answer.chunks == ["Cold ", "in ", "Oslo."]
    assert rule({"messages": [{"role": "user", "content": "hi"}]}) == answer  # no tools offered
    assert tool_then_answer(None, {}, "Hi.")(user) == Text(["Hi."], chunk_delay=0.05)
