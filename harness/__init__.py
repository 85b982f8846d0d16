"""CLI, run engine and LLM layer of the computer-use agent evaluation harness."""

__version__ = "0.1.0"
