"""A module's code "on disk" for tests of reloads, without writing files."""

from __future__ import annotations

from vlcp.agent.modules import Source
from vlcp.pipeline import Module


class Disk(Source):
    """What a reload of one module finds: the test changes it (or makes it raise, as a
    syntax error would) and counts the reloads."""

    def __init__(
        self, code: Module | Exception, module: str = "example", attr: str = "MAC_DROP"
    ) -> None:
        super().__init__(module, attr, "example-dist")
        self.__dict__.update(code=code, imports=0)  # beside the frozen dataclass's fields

    def reimport(self) -> Module:
        self.__dict__["imports"] += 1
        if isinstance(self.code, Exception):
            raise self.code
        return self.code

    def change(self, code: Module | Exception) -> None:
        self.__dict__["code"] = code
