"""Run agents written with other frameworks as errand handlers, in one line.

Each module maps one framework's own stream to errand -- tool calls and steps to
`ctx.progress`, text tokens to content deltas, errand's cancel and `task_timeout` to the
framework's cancellation, provider 429/5xx/connection errors to `TransientError` -- and imports
its framework at the top, so import only the one whose extra you installed:

    errand.adapters.openai_agents   pip install 'errand[openai-agents]'
    errand.adapters.langgraph       pip install 'errand[langgraph]'
    errand.adapters.pydantic_ai     pip install 'errand[pydantic-ai]'
"""
