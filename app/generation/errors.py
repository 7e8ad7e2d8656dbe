"""The engine's two exceptions, each carrying every problem it found, located."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["AttributesError", "DefinitionError", "Path", "format_path"]

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """``("fields", 3, "dice")`` -> ``"fields.3.dice"``."""
    return ".".join(str(part) for part in path)


class DefinitionError(Exception):
    """A template definition that breaks the definition language's rules.

    ``errors`` lists every problem as ``(path, message)``; the path locates the offending place
    (``("fields", 3, "dice")``; ``("_schema",)`` for the definition as a whole).
    """

    def __init__(self, errors: Iterable[tuple[Path, str]]) -> None:
        unique: list[tuple[Path, str]] = []
        seen: set[tuple[Path, str]] = set()
        for path, message in errors:
            item = (tuple(path), message)
            if item not in seen:
                seen.add(item)
                unique.append(item)
        self.errors: list[tuple[Path, str]] = unique
        shown = "; ".join(f"{format_path(path)}: {message}" for path, message in unique[:5])
        more = f" (and {len(unique) - 5} more)" if len(unique) > 5 else ""
        super().__init__(f"invalid definition: {shown}{more}")

    def as_dict(self) -> dict:
        """Nested errors: ``{"fields": {3: {"dice": ["..."]}}}``; leaves are message lists.

        A place that has both its own messages and nested ones keeps its own under ``_schema``.
        """
        parents = {path[:cut] for path, _ in self.errors for cut in range(1, len(path))}
        tree: dict = {}
        for path, message in self.errors:
            node = tree
            for part in path[:-1]:
                node = node.setdefault(part, {})
            last = path[-1] if path else "_schema"
            if path in parents:
                node = node.setdefault(last, {})
                last = "_schema"
            node.setdefault(last, []).append(message)
        return tree


class AttributesError(Exception):
    """Character attributes (or locks, or rerolls) that the template does not allow.

    ``errors`` maps a field key (or ``"_schema"`` for problems not tied to one field) to its
    messages.
    """

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors: dict[str, list[str]] = errors
        shown = "; ".join(f"{key}: {', '.join(messages)}" for key, messages in errors.items())
        super().__init__(f"invalid attributes: {shown}")
