"""The output of a run: stdout and stderr read under one cap, keeping the head and the tail."""

from __future__ import annotations


class Output:
    """stdout and stderr under one combined cap: the head and the tail of each are kept."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 0)
        self.seen = {"stdout": 0, "stderr": 0}
        self.head = {"stdout": bytearray(), "stderr": bytearray()}
        self.tail = {"stdout": bytearray(), "stderr": bytearray()}

    @property
    def total(self) -> int:
        return self.seen["stdout"] + self.seen["stderr"]

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def add(self, stream: str, data: bytes) -> bool:
        """Keep ``data``; whether the cap is now exceeded."""
        self.seen[stream] += len(data)
        head, tail = self.head[stream], self.tail[stream]
        room = self.limit - len(head)
        if room > 0:
            head += data[:room]
            data = data[room:]
        if data:
            tail += data
            if len(tail) > self.limit:
                del tail[: len(tail) - self.limit]
        return self.truncated

    def text(self, stream: str) -> str:
        """The stream decoded; when over the cap, its share of it as head, marker, tail."""
        seen, limit = self.seen, self.limit
        budget = {"stdout": seen["stdout"], "stderr": seen["stderr"]}
        if self.truncated:
            budget["stdout"] = min(seen["stdout"], max(limit // 2, limit - seen["stderr"]))
            budget["stderr"] = min(seen["stderr"], limit - budget["stdout"])
        return self._render(stream, budget[stream])

    def _render(self, stream: str, budget: int) -> str:
        head, tail, seen = self.head[stream], self.tail[stream], self.seen[stream]
        if seen <= budget:
            return bytes(head + tail).decode(errors="replace")
        keep_head = budget // 2
        contiguous = seen == len(head) + len(tail)
        end = head + tail if contiguous else tail
        last = end[len(end) - (budget - keep_head) :] if budget > keep_head else b""
        cut = seen - keep_head - len(last)
        return (
            bytes(head[:keep_head]).decode(errors="replace")
            + f"\n[... {cut} bytes cut ...]\n"
            + bytes(last).decode(errors="replace")
        )
