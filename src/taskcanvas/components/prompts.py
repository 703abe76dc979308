"""The instructions taskcanvas adds to model prompts, in its own words.

ragflow appends prompt templates for citations, structured output, multi-turn question
rewriting and classification; these say the same things so models behave the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def citation_prompt() -> str:
    return (
        "\n\n# Citations\n"
        "The knowledge above is given as chunks, each with an ID. When a sentence of your answer relies "
        "on a chunk, put its ID right after the sentence in the form [ID:n] (for example [ID:12]). "
        "Cite only IDs that appear in the knowledge, at most four per sentence, and never invent one. "
        "Do not cite when the knowledge is not relevant."
    )


def citation_rewrite_prompt(knowledge: str) -> str:
    return (
        "You add citations to a finished answer. Keep the answer's wording exactly; after each sentence "
        "supported by a chunk below, insert its ID as [ID:n]. Cite only these IDs and never invent one.\n\n"
        f"# Knowledge\n{knowledge}"
    )


def structured_output_prompt(schema: str) -> str:
    return (
        "\n\n# Output format\n"
        "Answer with one JSON object that follows this JSON schema exactly. Output only the JSON, "
        "with no explanation and no markdown around it.\n"
        f"```json\n{schema}\n```"
    )


FORCE_JSON = "\nIMPORTANT: Output ONLY valid JSON. No markdown, no extra text."


def full_question_prompt(conversation: str) -> str:
    return (
        "Rewrite the user's last message as one complete, self-contained question, resolving pronouns "
        "and references from the conversation. Keep the user's language. Output only the question.\n\n"
        f"# Conversation\n{conversation}"
    )


def tool_rounds_exceeded(max_rounds: int) -> str:
    return f"Exceed max rounds: {max_rounds}"


def categorize_prompt(categories: Mapping[str, Mapping[str, Any]]) -> str:
    """The classification system prompt: categories, their descriptions and examples."""
    names = list(categories)
    text = (
        "You are a text classifier. Read the user's input and decide which one category it belongs to.\n\n"
        "# Categories\n - " + "\n - ".join(names) + "\n"
    )
    descriptions = [
        f"\n------\nCategory: {name}\nDescription: {cat.get('description')}"
        for name, cat in categories.items() if cat.get("description")
    ]
    if descriptions:
        text += "\n# Descriptions" + "".join(descriptions) + "\n"
    examples: list[str] = []
    for name, cat in categories.items():
        for example in _examples(cat.get("examples")):
            examples.append(f'USER: "{example.replace(chr(10), "    ")}" → {name}')
    if examples:
        text += "\n# Examples\n" + "\n".join(examples) + "\n"
    text += (
        "\n# Rules\n"
        "- Answer with the category name only, exactly as written above.\n"
        '- Use "Other" only when no other category fits.\n'
    )
    return text


def _examples(value: Any) -> Sequence[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [str(v.get("value", "")) if isinstance(v, dict) else str(v) for v in value if v]
    return []
