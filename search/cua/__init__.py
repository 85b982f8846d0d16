"""Computer-use model APIs as native step agents: Anthropic's `computer` tool (claude.py) and
OpenAI's `computer_use_preview` (openai_cua.py), through the run's LLM client (harness/llm/apis.py).
docs/design/agent-api.md."""
