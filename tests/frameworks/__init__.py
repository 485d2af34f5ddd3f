"""The framework matrix: calls made through LangChain, pydantic-ai and the OpenAI Agents SDK
defer as plain SDK calls do, and return what they return live."""
